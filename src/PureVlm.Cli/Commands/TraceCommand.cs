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
    const string Help = """
        usage: purevlm trace --model DIR [--weights FILE] [--image FILE | --pixel-values FILE]
                             (--prompt TEXT | --input-ids IDS) [--generate N] [--lora DIR] --out FILE.safetensors

        Runs one forward pass and writes every named intermediate tensor as F32 (pixel_values,
        vision.embeddings, vision.layers.{i}, projector, text.inputs_embeds, text.layers.{i}, text.norm,
        logits, and each family's own stages), plus input_ids and position_ids, in the layout of the
        golden fixtures, for `purevlm diff`.

          --model DIR          model directory (config.json + weights)
          --weights FILE       weights file or directory to use instead of DIR's (e.g. model-bf16.safetensors)
          --image FILE         the image; its resized image is traced as image.resized and,
                               when the preprocessor centre-crops (CLIP), the crop as image.cropped
          --pixel-values FILE  a safetensors file with a pixel_values tensor [1, 3, S, S]; skips preprocessing
          --prompt TEXT        the user's prompt: the family's processor builds the ids (PaliGemma: image
                               tokens, bos, prompt, "\n"; LLaVA: "USER: <image>\n{prompt} ASSISTANT:";
                               Molmo: <|endoftext|>, the image's blocks, " User: {prompt} Assistant:")
          --input-ids IDS      comma-separated ids instead of --prompt. PaliGemma: the ids after the image
                               tokens (bos, prompt, "\n"), which the engine puts in front; other models: the
                               whole input, image tokens included
          --generate N         also run N greedy steps (eos ignored) and write input_ids, position_ids,
                               generated_ids and generated_logits
          --out FILE           the trace to write (never one of the inputs)
          --lora DIR           apply a PEFT LoRA adapter, unmerged (repeatable)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("trace", args, ["--model", "--weights", "--image", "--pixel-values", "--prompt", "--input-ids", "--generate", "--out", "--lora"], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = cl.Require("--model");
        string output = cl.Require("--out");
        int generate = cl.Int("--generate", 0, 1 << 16) ?? 0;
        string? prompt = cl.Get("--prompt"), idsText = cl.Get("--input-ids");
        if ((prompt == null) == (idsText == null)) throw new UsageException("give exactly one of --prompt TEXT and --input-ids IDS");
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
        int[] input = prompt != null ? [] : ParseIds(idsText!);
        if (model.VisionLanguage is IMultiCropVisionModel)
        {
            if (cl.Get("--pixel-values") != null) throw new UsageException($"{dir} is a multi-crop model ({model.Config.ModelType}): give --image, not --pixel-values");
            var image = ImageLoader.Load(cl.Require("--image"));
            var cropper = MolmoImageProcessor.FromCheckpoint(dir);
            var (rows, cols) = cropper.Tiling(image);
            var (tilesH, tilesW) = cropper.TileCanvasSize(rows, cols);
            extra.Add(Hwc("image.tiles_resized", MolmoImageProcessor.ResizeAndPad(image, tilesH, tilesW).Canvas, tilesH, tilesW));
            extra.Add(Hwc("image.global_resized", MolmoImageProcessor.ResizeAndPad(image, cropper.CropSize, cropper.CropSize).Canvas, cropper.CropSize, cropper.CropSize));
            var crops = cropper.Process(image);
            features = session.EncodeImage(crops);
            if (prompt != null) input = ((MolmoPrompt)ModelFamilies.PromptFormat(model.VisionLanguage)).Build(VlmModel.LoadTokenizer(dir), prompt, [crops]);
            int patches = crops.Masks.Length / crops.Crops, cells = crops.CellTokens.Length / crops.Crops;
            extra.Add(SafeTensorsWriter.F32("image_masks", crops.Masks, 1, crops.Crops, patches));
            // As the reference's image_input_idx: the position in input_ids each cell is added to, −100 for a dropped cell.
            var patchPositions = Enumerable.Range(0, input.Length).Where(i => input[i] == model.Config.ImageTokenIndex).ToArray();
            if (patchPositions.Length != crops.ImageTokens)
                throw new UsageException($"the input has {patchPositions.Length} <im_patch> tokens, the image gives {crops.ImageTokens} features");
            extra.Add(SafeTensorsWriter.I64("image_input_idx", crops.CellTokens.Select(t => t < 0 ? -100L : patchPositions[t]).ToArray(), 1, crops.Crops, cells));
        }
        else if (model.VisionLanguage is { } vlm)
        {
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
                extra.Add(Hwc("image.resized", resized.Pixels.Select(b => (float)b).ToArray(), resized.Height, resized.Width));
                if (pre.ShortestEdge != null)
                {
                    var cropped = pre.CenterCrop(resized);
                    extra.Add(Hwc("image.cropped", cropped.Pixels.Select(b => (float)b).ToArray(), cropped.Height, cropped.Width));
                }
                pixels = pre.PixelValues(image);
            }
            features = session.EncodeImage(pixels);
            if (prompt != null) input = ModelFamilies.PromptFormat(vlm).Build(VlmModel.LoadTokenizer(dir), prompt, images: 1);
            else if (model.Config.IsPaliGemma) input = [.. Enumerable.Repeat(model.Config.ImageTokenIndex, vlm.ImageTokensPerImage), .. input];
        }
        else if (cl.Get("--image") != null || cl.Get("--pixel-values") != null)
            throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); leave out --image and --pixel-values");
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
        recorder.Save(output, extra);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {recorder.Prefill.Count + extra.Count} tensors to {output}"));
        return 0;
    }

    /// <summary>An image's values as F32 [H, W, 3], the fixtures' layout for image.* goldens (bytes, or Molmo's 0..1 canvases).</summary>
    static (string, DType, long[], ReadOnlyMemory<byte>) Hwc(string name, float[] values, int height, int width) =>
        SafeTensorsWriter.F32(name, values, height, width, 3);

    static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UsageException("--input-ids is empty; expected comma-separated token ids like 2,17,42,108");
        return parts.Select(p => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) && id >= 0
            ? id : throw new UsageException($"--input-ids: '{p}' is not a non-negative integer token id")).ToArray();
    }
}
