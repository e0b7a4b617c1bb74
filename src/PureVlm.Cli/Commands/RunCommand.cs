using System.Globalization;
using System.Text.Json;
using PureVlm.Formats.Images;
using PureVlm.Outputs;
using PureVlm.Prompts;
using PureVlm.Runtime;

namespace PureVlm.Cli.Commands;

static class RunCommand
{
    const string Help = $$"""
        usage: purevlm run [--model DIR|ID [--revision REV]] (--image FILE | --video PATH) [...] (--prompt TEXT [--system TEXT] | --messages FILE) [options]

        Asks a vision-language model (PaliGemma, LLaVA, Video-LLaVA, Gemma 3) about images or videos. The answer streams to stdout;
        loading progress and timings go to stderr. Without --model, the embedded demo model
        (paligemma-shapes) is used.

        {{CliModel.OptionsHelp}}
          --image FILE         PNG, JPEG, BMP or GIF; repeat it for several images, in the order of the
                               prompt's <image> markers or the messages' image parts (LLaVA, Gemma 3)
          --video PATH         Video-LLaVA: a folder of frame images (sorted by name) or an animated GIF,
                               sampled uniformly to the model's frame count (frame floor(i * n / T));
                               repeatable; the prompt's <image>/<video> markers give the order
          --prompt TEXT        PaliGemma: e.g. "caption en", "detect circle", "answer en what color is the circle?";
                               LLaVA, Gemma 3: the user's words, put into the model's chat template (images
                               first unless <image> markers place them)
          --system TEXT        a system message before the prompt (chat models)
          --messages FILE      a JSON chat in Hugging Face's format instead of --prompt: [{"role": "system" |
                               "user" | "assistant", "content": [{"type": "text", "text": "..."}, {"type": "image"}]}]
          --max-tokens N       most new tokens (default 64, at least 1)
          --temperature T      0 = greedy (default); > 0 samples
          --top-k K            sample among the K most likely tokens (0 = all)
          --top-p P            sample among the most likely tokens up to probability P (default 1)
          --seed S             sampler seed (default 0): the same seed gives the same answer
          --json               print one JSON object (text, tokens, detections, segments with COCO RLE masks,
                               timings) instead
          --annotate OUT.png   write the image with the detected boxes drawn (and segment masks filled)
          --seg-decoder FILE   vae-oid.npz, to turn a "segment ..." answer's <seg> codes into masks
                               (default: vae-oid.npz in the model directory, if there)
          --convention C       mask convention: bigvision (default, binary) or demo (soft); see purevlm masks --help
          --masks DIR          write DIR/mask-{i}.png per segment mask
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable: all given are active)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("run", args,
            ["--model", "--revision", "--image", "--video", "--prompt", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--annotate", "--lora",
             "--seg-decoder", "--convention", "--masks", .. ChatInput.Options], ["--json"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        var imagePaths = cl.GetAll("--image");
        var videoPaths = cl.GetAll("--video");
        if (imagePaths.Count == 0 && videoPaths.Count == 0) throw new UsageException("--image or --video is required (see purevlm run --help)");
        string? prompt = cl.Get("--prompt");
        var messages = ChatInput.Messages(cl, prompt, imagePaths.Count);
        if (messages == null && prompt == null) throw new UsageException("--prompt TEXT or --messages FILE is required (see purevlm run --help)");
        if (messages != null && videoPaths.Count > 0) throw new UsageException("--messages and --system take images; with --video give --prompt");
        var options = new GenerationOptions
        {
            MaxNewTokens = cl.Int("--max-tokens", 1, 1 << 20) ?? 64,
            Temperature = cl.Float("--temperature", 0, 1e6f) ?? 0,
            TopK = cl.Int("--top-k", 0) ?? 0,
            TopP = cl.Float("--top-p", float.Epsilon, 1) ?? 1,
            Seed = (ulong)(cl.Int("--seed", 0) ?? 0),
            MaskConvention = SegmentOutput.Convention(cl.Get("--convention")),
        };
        string? masks = cl.Get("--masks");
        string? annotate = cl.Get("--annotate");
        bool json = cl.Flag("--json");

        if (annotate != null && imagePaths.Concat(videoPaths).Any(path => Path.GetFullPath(annotate) == Path.GetFullPath(path)))
            throw new UsageException($"--annotate {annotate} would overwrite an input; choose another file");
        using var model = CliModel.Load(cl, cl.Get("--seg-decoder"));
        var media = MediaArgs.InPromptOrder(imagePaths, videoPaths, prompt)
            .Select(m => m.Kind == MediaKind.Image ? MediaInput.Image(ImageLoader.Load(m.Path)) : model.LoadVideo(m.Path)).ToList();
        options = options with { Adapters = cl.GetAll("--lora").Select(dir => model.LoadAdapter(dir).Name).ToList() };

        Action<string>? stream = json ? null : piece => { Console.Out.Write(piece); Console.Out.Flush(); };
        var result = messages != null ? model.Generate(media.Select(m => m.Frames[0]).ToList(), messages, options, stream) : model.Generate(media, prompt!, options, stream);
        if (!json) Console.Out.WriteLine();
        var t = result.Timings;
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load {model.LoadSeconds:0.000} s, image encode {t.ImageEncodeSeconds:0.000} s, prefill {t.PrefillTokens} tokens {t.PrefillSeconds:0.000} s, decode {t.DecodedTokens} tokens {t.DecodeTokensPerSecond:0.0} tok/s"));
        if (json) Console.Out.WriteLine(ToJson(result, model.LoadSeconds));
        if (result.Segments.Count > 0 && model.SegmentationDecoder == null) Console.Error.WriteLine(SegmentOutput.NoDecoderNote);
        if (masks != null) Console.Error.WriteLine($"wrote {SegmentOutput.WriteMasks(masks, result.Segments)} mask(s) to {masks}");
        if (annotate != null) Annotate(media[0].Frames[0], result.Detections, result.Segments, annotate);
        return 0;
    }

    /// <summary>Detections as boxes; segments as boxes over their translucent masks.</summary>
    internal static void Annotate(RgbImage image, IReadOnlyList<Detection> detections, IReadOnlyList<Segment> segments, string path)
    {
        // A segment answer's boxes are also parsed as detections: draw each box once, with its segment's mask.
        var boxes = segments.Count > 0
            ? segments.Select(s => LabelledBox.FromPixels(s.Box, s.Label)).ToList()
            : detections.Select(d => LabelledBox.FromPixels(d.Box, d.Label)).ToList();
        var fills = segments.Count > 0 ? segments.Select(s => s.Mask?.Pixels).ToList() : null;
        PngWriter.Save(ImageAnnotator.Draw(image, boxes, fills), path);
        Console.Error.WriteLine($"wrote {path} with {boxes.Count} box(es)" + (fills == null ? "" : $" and {fills.Count(f => f != null)} mask(s)"));
    }

    static string ToJson(GenerationResult r, double loadSeconds)
    {
        var doc = new
        {
            text = r.Text,
            tokens = r.Tokens.Select(t => new { id = t.Id, text = t.Text, probability = t.Probability }),
            detections = r.Detections.Select(d => new { label = d.Label, box = d.Box }),
            segments = r.Segments.Select(SegmentOutput.Json),
            timings = new
            {
                load_s = loadSeconds,
                image_encode_s = r.Timings.ImageEncodeSeconds,
                prefill_s = r.Timings.PrefillSeconds,
                prefill_tokens = r.Timings.PrefillTokens,
                decode_s = r.Timings.DecodeSeconds,
                decode_tokens = r.Timings.DecodedTokens,
                decode_tok_s = r.Timings.DecodeTokensPerSecond,
            },
        };
        return JsonSerializer.Serialize(doc, CliJson.Options);
    }
}
