using System.Globalization;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Cli.Commands;

static class TraceCommand
{
    const string Help = """
        usage: purevlm trace --model DIR [--weights FILE] [--image FILE | --pixel-values FILE] --input-ids IDS
                             [--generate N] [--lora DIR] --out FILE.safetensors

        Runs one forward pass and writes every named intermediate tensor as F32 (pixel_values,
        vision.embeddings, vision.layers.{i}, vision.post_layernorm, projector, text.inputs_embeds,
        text.layers.{i}, text.norm, logits), in the layout of the golden fixtures, for `purevlm diff`.

          --model DIR          model directory (config.json + weights)
          --weights FILE       weights file or directory to use instead of DIR's (e.g. model-bf16.safetensors)
          --image FILE         the image (PaliGemma); its resized image is traced as image.resized and,
                               when the preprocessor centre-crops (CLIP), the crop as image.cropped
          --pixel-values FILE  a safetensors file with a pixel_values tensor [1, 3, S, S]; skips preprocessing
          --input-ids IDS      comma-separated ids after the image tokens (bos, prompt, "\n"), or the whole
                               input of a text-only model; the image tokens are put in front by the engine
          --generate N         also run N greedy steps (eos ignored) and write input_ids, position_ids,
                               generated_ids and generated_logits
          --out FILE           the trace to write (never one of the inputs)
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("trace", args, ["--model", "--weights", "--image", "--pixel-values", "--input-ids", "--generate", "--out", "--lora"], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = cl.Require("--model");
        string output = cl.Require("--out");
        int generate = cl.Int("--generate", 0, 1 << 16) ?? 0;
        int[] ids = ParseIds(cl.Require("--input-ids"));
        foreach (var source in new[] { cl.Get("--image"), cl.Get("--pixel-values"), cl.Get("--weights") })
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
        int[] input = ids;
        int firstPosition = 0;
        if (model.PaliGemma is { } pali)
        {
            var vision = model.Config.Vision!;
            Tensor pixels;
            if (cl.Get("--pixel-values") is { } pvPath)
            {
                using var pv = SafeTensorsFile.Open(pvPath);
                pixels = pv["pixel_values"].ToTensor();
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
            input = Enumerable.Repeat(model.Config.ImageTokenIndex, vision.NumPatches).Concat(ids).ToArray();
            firstPosition = 1; // HF PaliGemma positions are 1-based
        }
        else if (cl.Get("--image") != null || cl.Get("--pixel-values") != null)
            throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); leave out --image and --pixel-values");

        if (generate == 0) session.Prefill(input, features);
        else
        {
            var tokens = session.Generate(input, features, new GenerationOptions { MaxNewTokens = generate, StopAtEos = false }).Select(t => (long)t.Id).ToArray();
            int vocab = model.Config.Text.VocabSize;
            extra.Add(SafeTensorsWriter.I64("input_ids", input.Select(i => (long)i).ToArray(), 1, input.Length));
            extra.Add(SafeTensorsWriter.I64("position_ids", Enumerable.Range(firstPosition, input.Length).Select(i => (long)i).ToArray(), 1, input.Length));
            extra.Add(SafeTensorsWriter.I64("generated_ids", tokens, tokens.Length));
            extra.Add(SafeTensorsWriter.F32("generated_logits", recorder.StepLogits.Take(generate).SelectMany(r => r).ToArray(), generate, vocab));
        }
        recorder.Save(output, extra);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {recorder.Prefill.Count + extra.Count} tensors to {output}"));
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
