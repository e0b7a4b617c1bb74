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
