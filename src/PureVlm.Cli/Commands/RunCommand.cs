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
               purevlm run [--model DIR|ID [--revision REV]] --batch REQUESTS.jsonl [options]

        Asks a vision-language model (PaliGemma, LLaVA, Video-LLaVA, Gemma 3, Molmo) about images or videos. The answer streams to stdout;
        loading progress and timings go to stderr. Without --model, the embedded demo model
        (paligemma-shapes) is used.

        {{CliModel.OptionsHelp}}
        {{CliModel.QuantizeHelp}}
          --image FILE         PNG, JPEG, BMP, GIF, WebP or TIFF; repeat it for several images, in the order of the
                               prompt's <image> markers or the messages' image parts (LLaVA, Gemma 3)
          --video PATH         Video-LLaVA: a folder of frame images (sorted by name) or an animated GIF,
                               sampled uniformly to the model's frame count (frame floor(i * n / T));
                               repeatable; the prompt's <image>/<video> markers give the order
          --prompt TEXT        PaliGemma: e.g. "caption en", "detect circle", "answer en what color is the circle?";
                               LLaVA, Gemma 3: the user's words, put into the model's chat template (images
                               first unless <image> markers place them);
                               Molmo: the user's words, e.g. "Point to the cups." (answers with points)
          --system TEXT        a system message before the prompt (chat models)
          --messages FILE      a JSON chat in Hugging Face's format instead of --prompt: [{"role": "system" |
                               "user" | "assistant", "content": [{"type": "text", "text": "..."}, {"type": "image"}]}]
          --max-tokens N       most new tokens (default 64, at least 1)
          --temperature T      0 = greedy (default); > 0 samples
          --top-k K            sample among the K most likely tokens (0 = all)
          --top-p P            sample among the most likely tokens up to probability P (default 1)
          --seed S             sampler seed (default 0): the same seed gives the same answer
          --json               print one JSON object (text, tokens, detections, segments with COCO RLE masks,
                               points, timings) instead
          --annotate OUT.png   write the image with the detected boxes and points drawn (and segment masks filled)
          --seg-decoder FILE   vae-oid.npz, to turn a "segment ..." answer's <seg> codes into masks
                               (default: vae-oid.npz in the model directory, if there)
          --convention C       mask convention: bigvision (default, binary) or demo (soft); see purevlm masks --help
          --masks DIR          write DIR/mask-{i}.png per segment mask
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable: all given are active)
          --batch FILE         answer many requests, one JSON object {"image": FILE, "prompt": TEXT} per line
                               (image paths relative to FILE's folder), decoded together; prints one --json
                               object per line, in order ({"error": …} for a request that failed, exit code 1)
          --max-batch N        with --batch: most requests decoding together, 1 to 16 (default 8)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("run", args,
            ["--model", "--revision", "--quantize", "--image", "--video", "--prompt", "--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--annotate", "--lora",
             "--seg-decoder", "--convention", "--masks", "--batch", "--max-batch", .. ChatInput.Options], ["--json"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        var options = Options(cl);
        if (cl.Get("--batch") is { } batch)
        {
            if (cl.GetAll("--image").Count > 0 || cl.GetAll("--video").Count > 0 || cl.Get("--prompt") != null || ChatInput.Options.Any(o => cl.Get(o) != null)
                || cl.Get("--annotate") != null || cl.Get("--masks") != null || cl.Flag("--json"))
                throw new UsageException("--batch takes its images and prompts from the file and prints JSON; drop --image, --video, --prompt, --messages, --system, --annotate, --masks and --json");
            return RunBatch(cl, batch, options);
        }
        if (cl.Get("--max-batch") != null) throw new UsageException("--max-batch goes with --batch");
        var imagePaths = cl.GetAll("--image");
        var videoPaths = cl.GetAll("--video");
        if (imagePaths.Count == 0 && videoPaths.Count == 0) throw new UsageException("--image or --video is required (see purevlm run --help)");
        string? prompt = cl.Get("--prompt");
        var messages = ChatInput.Messages(cl, prompt, imagePaths.Count);
        if (messages == null && prompt == null) throw new UsageException("--prompt TEXT or --messages FILE is required (see purevlm run --help)");
        if (messages != null && videoPaths.Count > 0) throw new UsageException("--messages and --system take images; with --video give --prompt");
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
        if (json) Console.Out.WriteLine(RunJson.Serialize(result, model.LoadSeconds));
        if (result.Segments.Count > 0 && model.SegmentationDecoder == null) Console.Error.WriteLine(SegmentOutput.NoDecoderNote);
        if (masks != null) Console.Error.WriteLine($"wrote {SegmentOutput.WriteMasks(masks, result.Segments)} mask(s) to {masks}");
        if (annotate != null) Annotate(media[0].Frames[0], result.Detections, result.Segments, annotate, model.PromptFormat is MolmoPrompt || result.Points.Count > 0 ? result.Points : null);
        return 0;
    }

    /// <summary>Half the side of the box marking a point in --annotate, in pixels.</summary>
    const float PointMark = 3;

    /// <summary>Detections as boxes; segments as boxes over their translucent masks; points (Molmo; null: not a pointing family) as small labelled boxes centred on them.</summary>
    internal static void Annotate(RgbImage image, IReadOnlyList<Detection> detections, IReadOnlyList<Segment> segments, string path,
        IReadOnlyList<PointAnswer>? points = null)
    {
        // A segment answer's boxes are also parsed as detections: draw each box once, with its segment's mask.
        var boxes = segments.Count > 0
            ? segments.Select(s => LabelledBox.FromPixels(s.Box, s.Label)).ToList()
            : detections.Select(d => LabelledBox.FromPixels(d.Box, d.Label)).ToList();
        var fills = segments.Count > 0 ? segments.Select(s => s.Mask?.Pixels).ToList() : null;
        int boxCount = boxes.Count;
        // A point is drawn as a small box centred on it, so it shows with its label as the boxes do.
        foreach (var p in points ?? [])
        {
            boxes.Add(LabelledBox.FromPixels([(float)p.X - PointMark, (float)p.Y - PointMark, (float)p.X + PointMark, (float)p.Y + PointMark], p.Label));
            fills?.Add(null);
        }
        PngWriter.Save(ImageAnnotator.Draw(image, boxes, fills), path);
        Console.Error.WriteLine($"wrote {path} with {boxCount} box(es)" + (fills == null ? "" : $" and {fills.Count(f => f != null)} mask(s)")
            + (points != null ? $" and {points.Count} point(s)" : ""));
    }

    static GenerationOptions Options(CommandLine cl) => new()
    {
        MaxNewTokens = cl.Int("--max-tokens", 1, 1 << 20) ?? 64,
        Temperature = cl.Float("--temperature", 0, 1e6f) ?? 0,
        TopK = cl.Int("--top-k", 0) ?? 0,
        TopP = cl.Float("--top-p", float.Epsilon, 1) ?? 1,
        Seed = (ulong)(cl.Int("--seed", 0) ?? 0),
        MaskConvention = SegmentOutput.Convention(cl.Get("--convention")),
    };

    /// <summary>
    /// Every line of <paramref name="path"/> through one <see cref="VlmEngine"/>: all requests are queued at once and decode
    /// together, and their results are printed in the file's order as each completes in turn.
    /// </summary>
    static int RunBatch(CommandLine cl, string path, GenerationOptions options)
    {
        if (!File.Exists(path)) throw new UsageException($"--batch {path}: file not found");
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var lines = File.ReadAllLines(path).Select((text, i) => (Text: text, Line: i + 1)).Where(l => l.Text.Trim().Length > 0).ToList();
        using var model = CliModel.Load(cl, cl.Get("--seg-decoder"));
        options = options with { Adapters = cl.GetAll("--lora").Select(dir => model.LoadAdapter(dir).Name).ToList() };
        using var engine = new VlmEngine(model, cl.Int("--max-batch", 1, BatchDecoder.MaxBatch) ?? 8, maxQueue: lines.Count);
        var answers = lines.Select(l => Submit(engine, l.Text, l.Line, path, folder, options)).ToList();
        int failed = 0;
        foreach (var answer in answers)
        {
            string output;
            try { output = RunJson.Serialize(answer.GetAwaiter().GetResult(), model.LoadSeconds); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failed++;
                output = JsonSerializer.Serialize(new { error = e.Message.ReplaceLineEndings(" ") }, CliJson.Options);
            }
            Console.Out.WriteLine(output);
        }
        Console.Error.WriteLine($"{answers.Count - failed} of {answers.Count} requests answered");
        return failed == 0 ? 0 : 1;
    }

    static Task<GenerationResult> Submit(VlmEngine engine, string line, int number, string path, string folder, GenerationOptions options)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            string Field(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
                ? v.GetString()! : throw new FormatException($"{path}:{number}: \"{name}\" (a string) is missing");
            var image = ImageLoader.Load(Path.Combine(folder, Field("image")));
            return engine.GenerateAsync(image, Field("prompt"), options);
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or InvalidImageException or ArgumentException or ContextLengthException)
        {
            return Task.FromException<GenerationResult>(e is JsonException ? new FormatException($"{path}:{number}: not a JSON object ({e.Message})") : e);
        }
    }
}
