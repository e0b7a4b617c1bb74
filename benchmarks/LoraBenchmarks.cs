using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Benchmarks;

/// <summary>
/// Decode cost of unmerged LoRA: one token of a synthesized paligemma2-3b-224 (BF16) with no adapter vs an r = 16 adapter on
/// every attention and MLP projection of the language model (182 Linears, two small GEMVs each). Target: ≤ 5 % slower, no
/// allocation added per token. The model comes from <c>PUREVLM_BENCH_MODEL</c> (default
/// /tmp/purevlm-bench/paligemma2-3b-224-bf16) and is synthesized there with <c>weights-tools synth</c> when absent (~6 GB);
/// the adapter is generated next to it. Run: <c>dotnet run -c Release --project benchmarks -- --filter *LoraBenchmarks*</c>.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5, invocationCount: 1)]
public class LoraBenchmarks
{
    const int Steps = 4, Rank = 16;
    static readonly int[] Prompt = [2, 651, 6037, 576, 1105, 603, 108]; // bos + a short prompt + "\n"
    const string Targets = @".*language_model.*\.(q|k|v|o|gate|up|down)_proj";

    LoadedModel? _model;
    InferenceSession? _base, _lora;
    AdapterSet? _deltaSet;
    Models.Linear[] _adapted = [];
    float[] _x = [], _y = [];

    [GlobalSetup]
    public void Setup()
    {
        string modelDir = Environment.GetEnvironmentVariable("PUREVLM_BENCH_MODEL") ?? "/tmp/purevlm-bench/paligemma2-3b-224-bf16";
        if (!File.Exists(Path.Combine(modelDir, "config.json"))) Synthesize(modelDir);
        _model = LoadedModel.Load(modelDir);
        string adapterDir = modelDir.TrimEnd('/') + $"-lora-r{Rank}";
        if (!File.Exists(Path.Combine(adapterDir, "adapter_model.safetensors"))) WriteAdapter(_model.Checkpoint, adapterDir);
        var adapter = LoraAdapter.Load(adapterDir, _model);
        Console.WriteLine($"// adapter: {adapter.Modules.Count} modules, r {Rank}; loadavg {File.ReadAllText("/proc/loadavg").Trim()}");
        _base = _model.CreateSession();
        _lora = _model.CreateSession(new SessionOptions { Adapters = new AdapterSet(adapter) });
        _deltaSet = new AdapterSet(adapter);
        _adapted = adapter.Modules.Select(m => new Models.Linear(m.ModulePath, m.BaseWeight, null)).ToArray();
        _x = new float[adapter.Modules.Max(m => m.InFeatures)];
        _y = new float[adapter.Modules.Max(m => m.OutFeatures)];
        for (int i = 0; i < _x.Length; i++) _x[i] = (i % 7 - 3) * 0.1f;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        Console.WriteLine($"// loadavg {File.ReadAllText("/proc/loadavg").Trim()}");
        _model?.Dispose();
    }

    [IterationSetup(Target = nameof(Base))] public void PrefillBase() => Prefill(_base!);
    [IterationSetup(Target = nameof(Lora))] public void PrefillLora() => Prefill(_lora!);

    static void Prefill(InferenceSession s)
    {
        s.Reset();
        s.Prefill(Prompt);
    }

    /// <summary>One decode step of the base model.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Steps)]
    public float Base() => Decode(_base!);

    /// <summary>One decode step with the r = 16 adapter active.</summary>
    [Benchmark(OperationsPerInvoke = Steps)]
    public float Lora() => Decode(_lora!);

    /// <summary>What the adapter adds to one decode step, alone: its delta on every adapted Linear for one token (m = 1).</summary>
    [Benchmark]
    public float LoraDeltaOnly()
    {
        foreach (var linear in _adapted)
            _deltaSet!.Apply(linear, _x.AsSpan(0, linear.InFeatures), 1, _y.AsSpan(0, linear.OutFeatures));
        return _y[0];
    }

    static float Decode(InferenceSession s)
    {
        float sum = 0;
        for (int k = 0; k < Steps; k++) sum += s.Decode(108 + k)[0];
        return sum;
    }

    static void Synthesize(string modelDir)
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "PureVlm.sln")))
            root = Path.GetDirectoryName(root.TrimEnd('/')) ?? throw new DirectoryNotFoundException($"{modelDir} is missing and PureVlm.sln (for weights-tools) was not found above {AppContext.BaseDirectory}");
        var psi = new ProcessStartInfo("dotnet", ["run", "-c", "Release", "--project", Path.Combine(root, "weights-tools"), "--",
            "synth", "--arch", "paligemma2-3b-224", "--dtype", "bf16", "--out", modelDir]);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"weights-tools synth into {modelDir} failed with exit code {p.ExitCode}");
    }

    /// <summary>A PEFT-format adapter: lora_A ~ U(±1/√in), lora_B ~ U(±0.01), F32, on every language-model projection.</summary>
    static void WriteAdapter(Checkpoint ckpt, string dir)
    {
        var regex = new Regex(@"\A(?:" + Targets + @")\z");
        var headers = new List<TensorHeader>();
        foreach (var t in ckpt.Tensors)
        {
            string module = t.Name.EndsWith(".weight") ? t.Name[..^".weight".Length] : "";
            if (t.Rank != 2 || !regex.IsMatch(module)) continue;
            headers.Add(new($"base_model.model.{module}.lora_A.weight", DType.F32, [Rank, t.Shape[1]]));
            headers.Add(new($"base_model.model.{module}.lora_B.weight", DType.F32, [t.Shape[0], Rank]));
        }
        Directory.CreateDirectory(dir);
        var rng = new Random(16);
        SafeTensorsWriter.WriteStreaming(Path.Combine(dir, "adapter_model.safetensors"), headers, (h, stream) =>
        {
            var data = new float[h.Shape[0] * h.Shape[1]];
            float bound = h.Name.EndsWith(".lora_A.weight") ? 1f / MathF.Sqrt(h.Shape[1]) : 0.01f;
            for (int i = 0; i < data.Length; i++) data[i] = (rng.NextSingle() * 2 - 1) * bound;
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        });
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["r"] = Rank, ["lora_alpha"] = 2 * Rank, ["use_rslora"] = false, ["bias"] = "none",
            ["fan_in_fan_out"] = false, ["use_dora"] = false, ["modules_to_save"] = null, ["target_modules"] = Targets,
        };
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
    }
}
