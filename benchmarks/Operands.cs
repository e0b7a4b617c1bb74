using System.Runtime.InteropServices;
using PureVlm.Kernels;
using PureVlm.Tensors;

namespace PureVlm.Benchmarks;

/// <summary>
/// Random x, W (F32 or BF16, in native memory) and y for one shape; free with <see cref="Dispose"/>.
/// With several copies of W, <see cref="RunAllCopies"/> streams weights that cannot all sit in cache.
/// </summary>
public sealed unsafe class Operands : IDisposable
{
    public readonly GemmShape Shape;
    public readonly float[] X, Y;
    public readonly StoredTensor W;
    public readonly StoredTensor[] Copies;
    readonly void* weights;

    public Operands(GemmShape s, DType dtype, int copies = 1)
    {
        Shape = s;
        X = new float[s.M * s.K];
        Y = new float[s.M * s.N];
        long count = (long)s.N * s.K;
        weights = NativeMemory.AlignedAlloc((nuint)(count * dtype.Size() * copies), 64);
        uint state = 12345;
        for (int i = 0; i < X.Length; i++) X[i] = Next(ref state);
        if (dtype == DType.F32) for (long i = 0; i < count; i++) ((float*)weights)[i] = Next(ref state);
        else for (long i = 0; i < count; i++) ((ushort*)weights)[i] = Tensors.Convert.F32ToBf16(Next(ref state));
        for (int c = 1; c < copies; c++)
            Buffer.MemoryCopy(weights, (byte*)weights + c * count * dtype.Size(), count * dtype.Size(), count * dtype.Size());
        Copies = new StoredTensor[copies];
        for (int c = 0; c < copies; c++)
            Copies[c] = new StoredTensor($"bench.{s.K}x{s.N}.{c}", dtype, [s.N, s.K], (byte*)weights + c * count * dtype.Size(), count * dtype.Size());
        W = Copies[0];
    }

    /// <summary>One Linear call per copy of W.</summary>
    public void RunAllCopies()
    {
        foreach (var w in Copies) Gemm.Linear(X, Shape.M, w, default, Y);
    }

    static float Next(ref uint state)
    {
        state = state * 1664525 + 1013904223;
        return (state >> 8) * (1f / (1 << 24)) - 0.5f;
    }

    /// <summary>One Linear call.</summary>
    public void Run() => Gemm.Linear(X, Shape.M, W, default, Y);

    public void Dispose() => NativeMemory.AlignedFree(weights);
}

/// <summary>
/// Random x and y and a W of random 4- or 8-bit integers with BF16 scales and biases (MLX's layout, repacked; for a
/// partial last group, random floats quantized) for one shape; several copies stream weights that cannot all sit in
/// cache, as for <see cref="Operands"/>.
/// </summary>
public sealed class QuantizedOperands : IDisposable
{
    public readonly GemmShape Shape;
    public readonly float[] X, Y;
    public readonly QuantizedTensor[] Copies;

    public QuantizedOperands(GemmShape s, int bits, int copies = 1)
    {
        Shape = s;
        X = new float[s.M * s.K];
        Y = new float[s.M * s.N];
        var rng = new Random(12345);
        for (int i = 0; i < X.Length; i++) X[i] = rng.NextSingle() - 0.5f;
        Copies = new QuantizedTensor[copies];
        if (s.K % 64 != 0)
        {
            // MLX's layout holds whole groups only: a partial last group (SigLIP's fc2) is quantized from random floats.
            var w = new float[(long)s.N * s.K];
            for (int i = 0; i < w.Length; i++) w[i] = rng.NextSingle() - 0.5f;
            for (int c = 0; c < copies; c++)
            {
                Copies[c] = new QuantizedTensor($"bench.q{bits}.{s.K}x{s.N}.{c}", s.N, s.K, bits, 64, DType.BF16);
                Copies[c].QuantizeRows(0, s.N, w);
            }
            return;
        }
        int groups = s.K / 64;
        var packed = new byte[(long)s.N * s.K * bits / 8];
        rng.NextBytes(packed);
        var scales = new ushort[s.N * groups];
        var biases = new ushort[s.N * groups];
        for (int i = 0; i < scales.Length; i++)
        {
            scales[i] = Tensors.Convert.F32ToBf16(0.01f * rng.NextSingle());
            biases[i] = Tensors.Convert.F32ToBf16(-0.05f * rng.NextSingle());
        }
        for (int c = 0; c < copies; c++)
        {
            Copies[c] = new QuantizedTensor($"bench.q{bits}.{s.K}x{s.N}.{c}", s.N, s.K, bits, 64, DType.BF16);
            Copies[c].WriteMlxRows(0, s.N, packed, MemoryMarshal.AsBytes(scales.AsSpan()), MemoryMarshal.AsBytes(biases.AsSpan()));
        }
    }

    /// <summary>Bytes of one copy's panels (integers, scales and biases).</summary>
    public long Bytes => Copies[0].ByteLength;

    /// <summary>One Linear call.</summary>
    public void Run() => QuantizedGemm.Linear(X, Shape.M, Copies[0], default, Y);

    /// <summary>One Linear call per copy of W.</summary>
    public void RunAllCopies()
    {
        foreach (var w in Copies) QuantizedGemm.Linear(X, Shape.M, w, default, Y);
    }

    public void Dispose()
    {
        foreach (var w in Copies) w.Dispose();
    }
}
