using System.Globalization;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Cli.Commands;

static class TraceCommand
{
    const string Help = $$"""
        usage: purevlm trace --model DIR|ID [--revision REV] [--weights FILE] [--image FILE | --video PATH | --pixel-values FILE]
                             (--prompt TEXT [--system TEXT] | --messages FILE | --input-ids IDS) [--generate N]
                             [--lora DIR] --out FILE.safetensors

        Runs one forward pass and writes every named intermediate tensor as F32 (pixel_values,
        vision.embeddings, vision.layers.{i}, projector, text.inputs_embeds, text.layers.{i}, text.norm,
        logits, and each family's own stages), plus input_ids and position_ids, in the layout of the
        golden fixtures, for `purevlm diff`.

        {{CliModel.OptionsHelp}}
          --weights FILE       weights file or directory to use instead of DIR's (e.g. model-bf16.safetensors)
          --image FILE         the image; its resized image is traced as image.resized and,
                               when the preprocessor centre-crops (CLIP), the crop as image.cropped
          --video PATH         Video-LLaVA: a folder of frames or an animated GIF, sampled to the model's frame
                               count; traced as pixel_values_videos and video_tower.*; with --image too, the
                               prompt's <image>/<video> markers give the order
          --pixel-values FILE  a safetensors file with a pixel_values tensor [1, 3, S, S] (Video-LLaVA:
                               pixel_values_images); skips preprocessing
          --prompt TEXT        the user's prompt: the family's processor builds the ids (PaliGemma: image
                               tokens, bos, prompt, "\n"; LLaVA: "USER: <image>\n{prompt} ASSISTANT:";
                               Video-LLaVA: the same with <video> for a video; Gemma 3: its chat template,
                               the image expanded to its soft tokens)
          --system TEXT        a system message before the prompt (chat models)
          --messages FILE      a JSON chat in Hugging Face's format (one image part) instead of --prompt
          --input-ids IDS      comma-separated ids instead of --prompt. PaliGemma: the ids after the image
                               tokens (bos, prompt, "\n"), which the engine puts in front; other models: the
                               whole input, image tokens included
          --generate N         also run N greedy steps (eos ignored) and write input_ids, position_ids,
                               generated_ids and generated_logits
          --out FILE           the trace to write (never one of the inputs)
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable); the adapters are named in
                               the trace's __metadata__ ("adapters") and on stderr
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("trace", args, ["--model", "--revision", "--weights", "--image", "--video", "--pixel-values", "--prompt", "--input-ids", "--generate", "--out", "--lora", .. ChatInput.Options], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        cl.Require("--model");
        string dir = CliModel.Directory(cl);
        string output = cl.Require("--out");
        int generate = cl.Int("--generate", 0, 1 << 16) ?? 0;
        string? prompt = cl.Get("--prompt"), idsText = cl.Get("--input-ids");
        bool hasImage = cl.Get("--image") != null || cl.Get("--pixel-values") != null;
        var messages = ChatInput.Messages(cl, prompt, images: hasImage ? 1 : 0);
        if (new[] { prompt != null, idsText != null, cl.Get("--messages") != null }.Count(given => given) != 1)
            throw new UsageException("give exactly one of --prompt TEXT, --messages FILE and --input-ids IDS");
        if (messages != null && cl.Get("--video") != null) throw new UsageException("--messages and --system take images; with --video give --prompt");
        foreach (var source in new[] { cl.Get("--image"), cl.Get("--video"), cl.Get("--pixel-values"), cl.Get("--weights") })
            if (source != null && Path.GetFullPath(source) == Path.GetFullPath(output))
                throw new UsageException($"--out {output} is one of the inputs; choose another file");

        using var model = cl.Get("--weights") is { } weights
            ? LoadedModel.Load(Path.Combine(dir, "config.json"), weights)
            : LoadedModel.Load(dir);
        var recorder = new TraceRecorder();
        var adapters = cl.GetAll("--lora").Select(lora => LoraAdapter.Load(lora, model)).ToList();
        var session = model.CreateSession(new SessionOptions { Observer = recorder, Adapters = adapters.Count == 0 ? null : new AdapterSet(adapters) });
        var extra = new List<(string, DType, long[], ReadOnlyMemory<byte>)>();

        float[]? features = null;
        int[] input = idsText == null ? [] : ParseIds(idsText);
        if (model.VisionLanguage is { } media && cl.Get("--video") != null)
        {
            if (cl.Get("--pixel-values") != null) throw new UsageException("--pixel-values holds an image's pixels; leave it out with --video");
            if (model.Modules is not IVideoLanguageModel video)
                throw new UsageException($"{dir} has no video tower ({model.Config.ModelType}); give --image");
            var pre = ImagePreprocessor.FromCheckpoint(dir);
            var inputs = MediaArgs.InPromptOrder(cl.GetAll("--image"), cl.GetAll("--video"), prompt);
            features = inputs.SelectMany(m => m.Kind == MediaKind.Image
                ? session.EncodeImage(pre.PixelValues(ImageLoader.Load(m.Path)))
                : session.EncodeVideo(pre.VideoPixelValues(VideoLoader.Load(m.Path, video.FramesPerVideo)))).ToArray();
            if (prompt != null) input = ModelFamilies.PromptFormat(media).Build(VlmModel.LoadTokenizer(dir), prompt, inputs.Select(m => m.Kind).ToList());
        }
        else if (model.VisionLanguage is { } vlm)
        {
            Tensor pixels;
            if (cl.Get("--pixel-values") is { } pvPath)
            {
                using var pv = SafeTensorsFile.Open(pvPath);
                // Video-LLaVA's goldens name an image's pixels as its HF input is named (pixel_values_images).
                pixels = pv[pv.Contains(vlm.ImagePixelValuesName) ? vlm.ImagePixelValuesName : "pixel_values"].ToTensor();
            }
            else
            {
                var image = ImageLoader.Load(cl.Require("--image"));
                var pre = ImagePreprocessor.FromCheckpoint(dir);
                var resized = pre.Resize(image);
                extra.Add(Hwc("image.resized", resized));
                if (pre.ShortestEdge != null) extra.Add(Hwc("image.cropped", pre.CenterCrop(resized)));
                pixels = pre.PixelValues(image);
            }
            features = session.EncodeImage(pixels);
            var format = ModelFamilies.PromptFormat(vlm);
            if (messages != null)
                input = (format as IChatPromptFormat ?? throw new UsageException($"{model.Config.ModelType} has no chat template; give --prompt without --system"))
                    .BuildChat(VlmModel.LoadTokenizer(dir), messages);
            else if (prompt != null) input = format.Build(VlmModel.LoadTokenizer(dir), prompt, images: 1);
            else if (model.Config.IsPaliGemma) input = [.. Enumerable.Repeat(model.Config.ImageTokenIndex, vlm.ImageTokensPerImage), .. input];
        }
        else if (cl.Get("--image") != null || cl.Get("--video") != null || cl.Get("--pixel-values") != null)
            throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); leave out --image, --video and --pixel-values");
        else if (messages != null) throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); --messages and --system need a chat model with a vision tower");
        else if (prompt != null)
        {
            // A text-only LM: bos (when the tokenizer has one) and the prompt, as HF's tokenizers add it.
            var tokenizer = VlmModel.LoadTokenizer(dir);
            input = tokenizer.BosId >= 0 ? [tokenizer.BosId, .. tokenizer.Encode(prompt)] : tokenizer.Encode(prompt);
        }
        int firstPosition = model.Modules.FirstPosition;
        extra.Add(SafeTensorsWriter.I64("input_ids", input.Select(i => (long)i).ToArray(), 1, input.Length));
        extra.Add(SafeTensorsWriter.I64("position_ids", Enumerable.Range(firstPosition, input.Length).Select(i => (long)i).ToArray(), 1, input.Length));

        if (generate == 0) session.Prefill(input, features);
        else
        {
            var tokens = session.Generate(input, features, new GenerationOptions { MaxNewTokens = generate, StopAtEos = false }).Select(t => (long)t.Id).ToArray();
            int vocab = model.Config.Text.VocabSize;
            extra.Add(SafeTensorsWriter.I64("generated_ids", tokens, tokens.Length));
            extra.Add(SafeTensorsWriter.F32("generated_logits", recorder.StepLogits.Take(generate).SelectMany(r => r).ToArray(), generate, vocab));
        }
        // Which adapters shaped the trace travels with it: a trace diffed later must say whether it is the base model's.
        string active = adapters.Count == 0 ? "none" : string.Join(", ", adapters.Select(a => $"{a.Name} ({a.Modality}, {a.Modules.Count} modules)"));
        recorder.Save(output, extra, new Dictionary<string, string> { ["adapters"] = active });
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {recorder.Prefill.Count + extra.Count} tensors to {output} (adapters: {active})"));
        return 0;
    }

    /// <summary>An image's bytes as F32 [H, W, 3], the fixtures' layout for image.* goldens.</summary>
    static (string, DType, long[], ReadOnlyMemory<byte>) Hwc(string name, RgbImage image) =>
        SafeTensorsWriter.F32(name, image.Pixels.Select(b => (float)b).ToArray(), image.Height, image.Width, 3);

    static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UsageException("--input-ids is empty; expected comma-separated token ids like 2,17,42,108");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) && id >= 0
            ? id : throw new UsageException($"--input-ids: '{p}' is not a non-negative integer token id")).ToArray();
    }
}
