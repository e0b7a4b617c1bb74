using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PureVlm.Adapters;
using PureVlm.Formats.Images;
using PureVlm.Kernels;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Cli.Commands;

static class BenchCommand
{
    const string Help = $$"""
        usage: purevlm bench [--model DIR|ID [--revision REV]] [--quantize 4|8] [--tokens N] [--video] [--lora DIR] [--concurrency N] [--profile]

        Times requests end to end on a synthetic image and a fixed prompt of 4 stand-in text ids (no
        tokenizer needed, so it runs on checkpoints made by `weights-tools synth`), laid out as the model
        family's processor lays out a prompt (PaliGemma: image tokens, bos, text; LLaVA: bos, text, image
        tokens, text). The first request runs right after loading (cold: weights still being paged in from
        the page cache or the disk); a second one, on a shifted image, runs warm and is the one reported as
        ttft_s, image_encode_s and prefill_s; decoding is timed after it. Prints the stages on stderr and, as
        the last line of stdout, one JSON object with load_s, cold_ttft_s, image_encode_s, prefill_s,
        prefill_tok_s, ttft_s, decode_tok_s, prompt_tokens (= prefill_tokens), image_tokens, flop_image and
        flop_prefill (the Linear layers' 2·m·n·k plus attention's 4·n²·d per head over the full square, as
        docs/performance.md explains; divide by the machine's FMA peak for the bound), rss_after_load_mb,
        peak_rss_mb.
        With --concurrency N it then prefills N requests and decodes them together (one forward pass with
        N rows per step, as `purevlm serve` does) and adds aggregate_decode_tok_s (N requests' tokens per
        second together) and aggregate_speedup (that over decode_tok_s of one request alone).
        With --profile the warm request's time is split by kernel (Linear, attention, norms, activations,
        RoPE, softmax, element-wise, and the rest) for the image encode, the prefill and one decode step
        (the decode average), on stderr and as profile_* keys.

        {{CliModel.OptionsHelp}}
        {{CliModel.QuantizeHelp}}
          --tokens N    decode steps after the first token (default 32)
          --video       Video-LLaVA: a synthetic video of the model's frame count instead of the image
                        (image_encode_s then times the video tower, image_tokens counts video tokens)
          --lora DIR    apply a PEFT LoRA adapter, unmerged (repeatable)
          --concurrency N   also time N requests decoding together, 2 to 16
          --cancel      also cancel a request halfway through its prefill and report cancel_latency_s (from
                        the cancellation to the prefill returning) beside prefill_layer_s (one decoder layer's
                        share of the warm prefill)
          --profile     time each kind of kernel in the warm request
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("bench", args, ["--model", "--revision", "--quantize", "--tokens", "--lora", "--concurrency"], ["--video", "--profile", "--cancel"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string dir = CliModel.Directory(cl);
        int tokens = cl.Int("--tokens", 1, 1 << 16) ?? 32;
        int concurrency = cl.Int("--concurrency", 1, BatchDecoder.MaxBatch) ?? 1;

        var clock = Stopwatch.StartNew();
        using var model = LoadedModel.Load(dir, CliModel.Quantization(cl));
        double load = clock.Elapsed.TotalSeconds;
        double rssAfterLoad = Rss("VmRSS");
        var vlm = model.VisionLanguage ?? throw new UsageException($"{dir} is a text-only model ({model.Config.ModelType}); bench needs a vision-language model");
        var config = model.Config;
        var video = cl.Flag("--video") ? model.Modules as IVideoLanguageModel
            ?? throw new UsageException($"{dir} has no video tower ({config.ModelType}); leave out --video") : null;
        // Molmo's image goes through its multi-crop preprocessing: crops of a synthetic 640x480 image.
        var molmo = vlm is IMultiCropVisionModel ? MolmoImageProcessor.FromCheckpoint(dir) : null;
        var crops = molmo?.Process(SyntheticImage(640, 480));
        var pre = crops == null ? ImagePreprocessor.FromCheckpoint(dir) : null;
        // The frames differ (the pattern shifts), and so do the cold and warm requests' images: no stage could be skipped as a repeat.
        object Pixels(int shift) => molmo != null ? molmo.Process(SyntheticImage(640, 480, shift))
            : video == null ? pre!.PixelValues(SyntheticImage(640, 480, shift))
            : pre!.VideoPixelValues(Enumerable.Range(0, video.FramesPerVideo).Select(f => SyntheticImage(640, 480, shift: shift + 16 * f)).ToList());
        // Stand-in text ids even when the directory has a tokenizer: the work is the same for any ids, so a synthesized
        // checkpoint and the published one of the same architecture run the same request, and no tokenizer is needed.
        // Molmo names no bos in config.json (its tokenizer's <|endoftext|> serves): a stand-in id then too.
        int bos = config.BosTokenId >= 0 ? config.BosTokenId : IPromptFormat.FillerId(0);
        int[] ids = crops != null ? MolmoPrompt.SyntheticIds([crops], textTokens: 4, bos, config.ImageTokenIndex)
            : ModelFamilies.PromptFormat(vlm).SyntheticIds([video == null ? MediaKind.Image : MediaKind.Video], textTokens: 4, bos);
        int visualTokens = crops?.ImageTokens ?? (video == null ? vlm.ImageTokensPerImage : video.FramesPerVideo * video.VideoTokensPerFrame);
        var adapters = cl.GetAll("--lora").Select(lora => LoraAdapter.Load(lora, model)).ToList();
        InferenceSession NewSession() => model.CreateSession(new SessionOptions { Adapters = adapters.Count == 0 ? null : new AdapterSet(adapters) });
        Console.Error.WriteLine($"model {dir}: {config.ModelType}, {vlm.Vision.ImageSize} px{(crops != null ? $" crops ({crops.Crops}: a global view + {crops.TileRows}x{crops.TileCols} tiles)" : "")}, {ids.Length} prompt tokens ({visualTokens} "
            + (video == null ? "image" : $"video, {video.FramesPerVideo} frames") + $"), {tokens} decode steps, {Environment.ProcessorCount} threads");

        var cold = Request(NewSession(), Pixels(0), ids, video != null, profile: false);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cold request: time to first token {cold.Encode + cold.Prefill:0.###} s; warm request:"));
        bool profile = cl.Flag("--profile");
        var session = NewSession();
        var warm = Request(session, Pixels(7), ids, video != null, profile);
        int next = warm.FirstToken;
        KernelProfile.Enabled = profile;
        KernelProfile.ResetTimes();
        clock.Restart();
        for (int i = 0; i < tokens; i++) next = ArgMax(session.Decode(next));
        double decode = clock.Elapsed.TotalSeconds;
        KernelProfile.Enabled = false;
        var decodeProfile = profile ? Breakdown(decode).Select(t => (t.Kind, t.Seconds / tokens)).ToList() : null;
        if (decodeProfile != null) PrintBreakdown("decode, per token", decodeProfile);
        var features = warm.Features;
        double aggregate = concurrency > 1 ? DecodeTogether(model, concurrency, NewSession, ids, features, tokens) : 0;
        double cancelLatency = cl.Flag("--cancel") ? CancelLatency(NewSession(), ids, features, warm.Prefill / 2) : 0;

        var result = new Dictionary<string, double>
        {
            ["load_s"] = load,
            ["cold_ttft_s"] = cold.Encode + cold.Prefill,
            ["image_encode_s"] = warm.Encode,
            ["prefill_s"] = warm.Prefill,
            ["prefill_tok_s"] = ids.Length / warm.Prefill,
            ["ttft_s"] = warm.Encode + warm.Prefill,
            ["decode_tok_s"] = tokens / decode,
            ["prompt_tokens"] = ids.Length,
            ["prefill_tokens"] = ids.Length,
            ["image_tokens"] = visualTokens,
            ["flop_image"] = warm.FlopImage,
            ["flop_prefill"] = warm.FlopPrefill,
            ["rss_after_load_mb"] = rssAfterLoad,
            ["peak_rss_mb"] = Rss("VmHWM"),
            ["checkpoint_mb"] = model.Checkpoint.Tensors.Sum(t => t.ByteLength) / 1048576.0,
            ["loadavg_1m"] = LoadAverage(),
        };
        if (profile)
            foreach (var (stage, times) in new[] { ("image", warm.ImageProfile!), ("prefill", warm.PrefillProfile!), ("decode_token", decodeProfile!) })
                foreach (var (kind, seconds) in times) result[$"profile_{stage}_{kind}_s"] = seconds;
        if (cl.Flag("--cancel"))
        {
            result["cancel_latency_s"] = cancelLatency;
            result["prefill_layer_s"] = warm.Prefill / config.Text.NumHiddenLayers;
        }
        if (concurrency > 1)
        {
            result["concurrency"] = concurrency;
            result["aggregate_decode_tok_s"] = aggregate;
            result["aggregate_speedup"] = aggregate / (tokens / decode);
        }
        foreach (var (k, v) in result) Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {k,-30} {v,12:0.###}"));
        Console.Out.WriteLine(JsonSerializer.Serialize(result.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)), CliJson.Options));
        return 0;
    }

    sealed record Timed(double Encode, double Prefill, double FlopImage, double FlopPrefill, int FirstToken, float[] Features,
        List<(string Kind, double Seconds)>? ImageProfile, List<(string Kind, double Seconds)>? PrefillProfile);

    /// <summary>Encodes the image (or video, or crops) and prefills the prompt; times both and counts their FLOP.</summary>
    static Timed Request(InferenceSession session, object pixels, int[] ids, bool video, bool profile)
    {
        KernelProfile.Enabled = profile;
        KernelProfile.ResetTimes();
        long flop0 = KernelProfile.Flops;
        var clock = Stopwatch.StartNew();
        var features = pixels is MultiCropImage crops ? session.EncodeImage(crops) : video ? session.EncodeVideo((Tensor)pixels) : session.EncodeImage((Tensor)pixels);
        double encode = clock.Elapsed.TotalSeconds;
        long flop1 = KernelProfile.Flops;
        var imageProfile = profile ? Breakdown(encode) : null;
        KernelProfile.ResetTimes();
        clock.Restart();
        int first = ArgMax(session.Prefill(ids, features));
        double prefill = clock.Elapsed.TotalSeconds;
        var prefillProfile = profile ? Breakdown(prefill) : null;
        KernelProfile.Enabled = false;
        foreach (var (name, times) in new[] { ("image encode", imageProfile), ("prefill", prefillProfile) })
            if (times != null) PrintBreakdown(name, times);
        return new Timed(encode, prefill, flop1 - flop0, KernelProfile.Flops - flop1, first, features, imageProfile, prefillProfile);
    }

    static void PrintBreakdown(string name, List<(string Kind, double Seconds)> times)
    {
        double total = times.Sum(t => t.Seconds);
        Console.Error.WriteLine($"  {name} by kernel:");
        foreach (var (kind, seconds) in times)
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {kind,-12} {seconds,8:0.0000} s  {seconds / total,6:P1}"));
    }

    /// <summary>Seconds per kernel kind since the last reset, and the rest of <paramref name="total"/> as "other".</summary>
    static List<(string Kind, double Seconds)> Breakdown(double total)
    {
        var times = Enum.GetValues<KernelKind>().Select(k => (k.ToString().ToLowerInvariant(), KernelProfile.Seconds(k))).ToList();
        times.Add(("other", Math.Max(0, total - times.Sum(t => t.Item2))));
        return times;
    }

    /// <summary>
    /// Prefills <paramref name="n"/> requests with the same prompt, then times <paramref name="tokens"/> decode steps of all of them
    /// in one batch; returns their tokens per second together.
    /// </summary>
    static double DecodeTogether(LoadedModel model, int n, Func<InferenceSession> newSession, int[] ids, float[] features, int tokens)
    {
        var sessions = Enumerable.Range(0, n).Select(_ => newSession()).ToList();
        var next = sessions.Select(s => ArgMax(s.Prefill(ids, features))).ToArray();
        var decoder = new BatchDecoder(model);
        int vocab = model.Config.Text.VocabSize;
        Console.Error.WriteLine($"{n} requests prefilled; decoding them together");
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < tokens; i++)
        {
            var logits = decoder.Decode(sessions, next);
            for (int s = 0; s < n; s++) next[s] = ArgMax(logits.Slice(s * vocab, vocab));
        }
        return n * tokens / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Starts a prefill, cancels it after <paramref name="after"/> seconds; returns how long the prefill took to stop.</summary>
    static double CancelLatency(InferenceSession session, int[] ids, float[] features, double after)
    {
        using var cancel = new CancellationTokenSource();
        session.Cancel = cancel.Token;
        long cancelledAt = 0;
        using var timer = new Timer(_ => { cancelledAt = Stopwatch.GetTimestamp(); cancel.Cancel(); }, null, TimeSpan.FromSeconds(after), Timeout.InfiniteTimeSpan);
        try
        {
            session.Prefill(ids, features);
            throw new InvalidOperationException("the prefill finished before it was cancelled");
        }
        catch (OperationCanceledException) { return Stopwatch.GetElapsedTime(cancelledAt).TotalSeconds; }
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
