using BenchmarkDotNet.Attributes;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Benchmarks;

/// <summary>
/// The glass-box hook's cost on the demo model: image encoding, prefill and 16 decode steps with no observer against an
/// observer that wants nothing and ignores every tensor. (Any attached observer makes prefill compute logits for every
/// prompt row, not just the last: that is part of what the no-op column measures.)
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 12)]
public class ObserverBenchmarks
{
    /// <summary>What is attached to the session.</summary>
    public enum Hook { Null, NoOp }

    sealed class NoOpObserver : IForwardObserver
    {
        public bool WantsAttentionProbabilities => false;
        public void OnTensor(string name, Tensor tensor, int step) { }
    }

    const int DecodeSteps = 16;

    [Params(Hook.Null, Hook.NoOp)] public Hook Observer;

    VlmModel? _model;
    InferenceSession? _session;
    Tensor? _pixels;
    float[] _features = [];
    int[] _ids = [];

    [GlobalSetup]
    public void Setup()
    {
        _model = VlmModel.Load();
        var image = ImageLoader.Load(Path.Combine(_model.Directory, "samples", "04-red-circle.png"));
        _pixels = _model.Preprocessor.PixelValues(image);
        _ids = _model.PromptIds("caption en");
        _session = _model.Loaded.CreateSession(new SessionOptions { Observer = Observer == Hook.NoOp ? new NoOpObserver() : null });
        _features = _session.EncodeImage(_pixels);
    }

    [GlobalCleanup] public void Cleanup() => _model?.Dispose();

    /// <summary>SigLIP and the projector on one image.</summary>
    [Benchmark] public float[] EncodeImage() => _session!.EncodeImage(_pixels!);

    /// <summary>The 68-token prompt (64 image tokens + bos + "caption en" + "\n") on an empty cache.</summary>
    [Benchmark]
    public float Prefill()
    {
        _session!.Reset();
        return _session.Prefill(_ids, _features)[0];
    }

    [IterationSetup(Target = nameof(Decode))]
    public void PrefillForDecode()
    {
        _session!.Reset();
        _session.Prefill(_ids, _features);
    }

    /// <summary>16 decode steps after the prefill (each feeds token 1485, "▁red").</summary>
    [Benchmark(OperationsPerInvoke = DecodeSteps)]
    public float Decode()
    {
        float sum = 0;
        for (int i = 0; i < DecodeSteps; i++) sum += _session!.Decode(1485)[0];
        return sum;
    }
}
