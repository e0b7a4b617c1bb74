using BenchmarkDotNet.Attributes;
using PureVlm.Kernels;

namespace PureVlm.Benchmarks;

/// <summary>
/// One attention call at a long-sequence model shape. FLOP are counted as 4·nq·nk·d per head (QKᵀ and P·V over the full
/// square), so a mask that skips tiles shows up as a higher rate rather than counting against the kernel.
/// </summary>
public readonly record struct AttentionShape(string Model, int Tokens, int Heads, int KvHeads, int D, float SoftCap, AttentionMask Mask)
{
    /// <summary>Floating-point operations counted for one call.</summary>
    public double Flops => 4.0 * Tokens * Tokens * D * Heads;

    /// <inheritdoc/>
    public override string ToString() => $"{Model} n={Tokens} heads={Heads}/{KvHeads} d={D}";

    /// <summary>SigLIP So400m at 896 px (4096 patches, bidirectional) and Gemma 2 2B's prefill of 4101 tokens at 896 px
    /// (image and prompt are one bidirectional prefix; logit soft-cap 50; GQA 8/4).</summary>
    public static readonly AttentionShape[] Long =
    [
        new("siglip-896", 4096, 16, 16, 72, 0f, AttentionMask.Full),
        new("gemma2-896-prefill", 4101, 8, 4, 256, 50f, new AttentionMask(0, 4101, int.MaxValue)),
    ];
}

/// <summary>q, k, v and output buffers of one <see cref="AttentionShape"/>, filled with a fixed pseudo-random pattern.</summary>
public sealed class AttentionOperands(AttentionShape s)
{
    readonly float[] _q = Fill(s.Tokens * s.Heads * s.D, 1), _k = Fill(s.Tokens * s.KvHeads * s.D, 2),
        _v = Fill(s.Tokens * s.KvHeads * s.D, 3), _output = new float[s.Tokens * s.Heads * s.D];

    static float[] Fill(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    /// <summary>One call.</summary>
    public void Run() => Attention.Compute(_q, _k, _v, _output, s.Tokens, s.Tokens, s.Heads, s.KvHeads, s.D, 1f / MathF.Sqrt(s.D), s.SoftCap, s.Mask);
}

/// <summary>Attention at the 896 px shapes (compare its GFLOP/s, 4·n²·d per head, with <see cref="GemmBenchmarks"/>).</summary>
public class AttentionBenchmarks
{
    /// <summary>The shapes measured.</summary>
    public static IEnumerable<AttentionShape> Shapes => AttentionShape.Long;

    [ParamsSource(nameof(Shapes))] public AttentionShape Shape;

    AttentionOperands? operands;

    [GlobalSetup] public void Setup() => operands = new AttentionOperands(Shape);

    /// <summary>One attention call over all heads.</summary>
    [Benchmark] public void Attention() => operands!.Run();
}

/// <summary>
/// A decode step's attention at 896 px: one query row of Gemma 2 2B (8 heads over 4 KV heads, head dim 256, soft-cap 50)
/// against each of 26 layers' caches of 4102 keys, 873 MB in all, so K and V stream from memory as in the model.
/// Compare the weights-per-second figure with the bandwidth probe of <c>--quick</c>.
/// </summary>
[Config(typeof(Config))]
public class DecodeAttentionBenchmarks
{
    const int Keys = 4102, Heads = 8, KvHeads = 4, D = 256, Layers = 26;

    sealed class Config : BenchmarkDotNet.Configs.ManualConfig
    {
        public Config() => AddColumn(new RateColumn("KV GB/s", _ => 2.0 * Layers * Keys * KvHeads * D * sizeof(float) / 1e9));
    }

    float[][] _keys = [], _values = [];
    readonly float[] _query = new float[Heads * D], _output = new float[Heads * D];

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(4);
        float[] Fill(int count)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++) values[i] = random.NextSingle() - 0.5f;
            return values;
        }
        _keys = Enumerable.Range(0, Layers).Select(_ => Fill(Keys * KvHeads * D)).ToArray();
        _values = Enumerable.Range(0, Layers).Select(_ => Fill(Keys * KvHeads * D)).ToArray();
        Fill(Heads * D).CopyTo(_query, 0);
    }

    /// <summary>The attention of one decode step over all 26 layers.</summary>
    [Benchmark]
    public void Step()
    {
        var mask = new AttentionMask(Keys - 1, Keys - 1, int.MaxValue);
        for (int l = 0; l < Layers; l++)
            Attention.Compute(_query, _keys[l], _values[l], _output, 1, Keys, Heads, KvHeads, D, 1f / 16, 50f, mask);
    }
}
