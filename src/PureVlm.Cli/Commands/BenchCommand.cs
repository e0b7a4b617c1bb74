using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PureVlm.Adapters;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;

namespace PureVlm.Cli.Commands;

static class BenchCommand
{
    const string Help = $$"""
        usage: purevlm bench [--model DIR|ID [--revision REV]] [--tokens N] [--video] [--lora DIR]

        Times one request end to end on a synthetic image and a fixed prompt of 4 stand-in text ids (no
        tokenizer needed, so it runs on checkpoints made by `weights-tools synth`), laid out as the model
        family's processor lays out a prompt (PaliGemma: image tokens, bos, text; LLaVA: bos, text, image
        tokens, text): load, image encode, prefill, time to first token, decode. Prints the stages on
        stderr and, as the last line of stdout, one JSON object with load_s, image_encode_s, prefill_s,
        prefill_tok_s, ttft_s, decode_tok_s, prompt_tokens, image_tokens, rss_after_load_mb, peak_rss_mb.

        {{CliModel.OptionsHelp}}
          --tokens N    decode steps after the first token (default 32)
          --video       Video-LLaVA: a synthetic video of the model's frame count instead of the image
                        (image_encode_s then times the video tower, image_tokens counts video tokens)
          --lora DIR    apply a PEFT LoRA adapter, unmerged (repeatable)
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("bench", args, ["--model", "--revision", "--tokens", "--lora"], ["--video"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = CliModel.Directory(cl);
        int tokens = cl.Int("--tokens", 1, 1 << 16) ?? 32;

        var clock = Stopwatch.StartNew();
        using var model = LoadedModel.Load(dir);
        double load = clock.Elapsed.TotalSeconds;
        double rssAfterLoad = Rss("VmRSS");
        var vlm = model.VisionLanguage ?? throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); bench needs a vision-language model");
        var config = model.Config;
        var pre = ImagePreprocessor.FromCheckpoint(dir);
        var video = cl.Flag("--video") ? model.Modules as IVideoLanguageModel
            ?? throw new UsageException($"{dir} has no video tower ({config.ModelType}); leave out --video") : null;
        // The frames differ (the pattern shifts), so no stage could be skipped as a repeat.
        var pixels = video == null ? pre.PixelValues(SyntheticImage(640, 480))
            : pre.VideoPixelValues(Enumerable.Range(0, video.FramesPerVideo).Select(f => SyntheticImage(640, 480, shift: 16 * f)).ToList());
        // Stand-in text ids even when the directory has a tokenizer: the work is the same for any ids, so a synthesized
        // checkpoint and the published one of the same architecture run the same request, and no tokenizer is needed.
        int[] ids = ModelFamilies.PromptFormat(vlm).SyntheticIds([video == null ? MediaKind.Image : MediaKind.Video], textTokens: 4, config.BosTokenId);
        int visualTokens = video == null ? vlm.ImageTokensPerImage : video.FramesPerVideo * video.VideoTokensPerFrame;
        var adapters = cl.GetAll("--lora").Select(lora => LoraAdapter.Load(lora, model)).ToList();
        var session = model.CreateSession(new SessionOptions { Adapters = adapters.Count == 0 ? null : new AdapterSet(adapters) });
        Console.Error.WriteLine($"model {dir}: {config.ModelType}, {vlm.Vision.ImageSize} px, {ids.Length} prompt tokens ({visualTokens} "
            + (video == null ? "image" : $"video, {video.FramesPerVideo} frames") + $"), {tokens} decode steps, {Environment.ProcessorCount} threads");

        clock.Restart();
        var features = video == null ? session.EncodeImage(pixels) : session.EncodeVideo(pixels);
        double encode = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var logits = session.Prefill(ids, features);
        int next = ArgMax(logits);
        double prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        for (int i = 0; i < tokens; i++) next = ArgMax(session.Decode(next));
        double decode = clock.Elapsed.TotalSeconds;

        var result = new Dictionary<string, double>
        {
            ["load_s"] = load,
            ["image_encode_s"] = encode,
            ["prefill_s"] = prefill,
            ["prefill_tok_s"] = ids.Length / prefill,
            ["ttft_s"] = encode + prefill,
            ["decode_tok_s"] = tokens / decode,
            ["prompt_tokens"] = ids.Length,
            ["image_tokens"] = visualTokens,
            ["rss_after_load_mb"] = rssAfterLoad,
            ["peak_rss_mb"] = Rss("VmHWM"),
            ["checkpoint_mb"] = model.Checkpoint.Tensors.Sum(t => t.ByteLength) / 1048576.0,
            ["loadavg_1m"] = LoadAverage(),
        };
        foreach (var (k, v) in result) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {k,-18} {v,10:0.###}"));
        Console.Out.WriteLine(JsonSerializer.Serialize(result.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)), CliJson.Options));
        return 0;
    }

    static int ArgMax(ReadOnlySpan<float> x) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(x);

    static RgbImage SyntheticImage(int width, int height, int shift = 0)
    {
        var rgb = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int i = (y * width + x) * 3;
                rgb[i] = (byte)((x + shift) % width * 255 / width); rgb[i + 1] = (byte)(y * 255 / height); rgb[i + 2] = (byte)((x ^ y) & 255);
            }
        return RgbImage.FromPixels(width, height, rgb);
    }

    /// <summary>A line of /proc/self/status in MB (VmRSS now, VmHWM peak); 0 where /proc is absent.</summary>
    static double Rss(string key)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        // "VmHWM:\t14856340 kB": a tab after the colon, and the space padding before the number is gone from 8 digits (≥ 10 GB) on.
        return line == null ? 0 : double.Parse(line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
    }

    static double LoadAverage() =>
        File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture) : 0;
}
