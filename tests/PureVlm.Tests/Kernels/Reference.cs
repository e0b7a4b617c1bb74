using System.Runtime.InteropServices;
using PureVlm.Kernels;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Kernels;

/// <summary>Plain scalar, double-accumulating versions of the kernels: the independent references of the tests.</summary>
static class Reference
{
    /// <summary>y = x·Wᵀ + b in double; also Σ|x·w| + |b| per output, the scale of the float32 rounding error.</summary>
    public static (double[] Y, double[] Magnitude) Linear(float[] x, int m, float[] w, int n, int k, float[]? bias)
    {
        var y = new double[m * n];
        var mag = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias?[j] ?? 0, a = Math.Abs(bias?[j] ?? 0);
                for (int p = 0; p < k; p++) { double t = (double)x[i * k + p] * w[j * k + p]; s += t; a += Math.Abs(t); }
                y[i * n + j] = s;
                mag[i * n + j] = a;
            }
        return (y, mag);
    }

    /// <summary>Naive attention in double, with the probabilities [heads, nq, nk].</summary>
    public static (double[] Out, double[] Probs) Attention(float[] q, float[] k, float[] v, int nq, int nk, int heads, int kvHeads, int d,
        float scale, float softCap, AttentionMask mask)
    {
        var output = new double[nq * heads * d];
        var probs = new double[heads * nq * nk];
        var scores = new double[nk];
        for (int h = 0; h < heads; h++)
        {
            int g = h / (heads / kvHeads);
            for (int i = 0; i < nq; i++)
            {
                double max = double.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    if (!mask.Allows(i, j)) { scores[j] = double.NegativeInfinity; continue; }
                    double s = 0;
                    for (int p = 0; p < d; p++) s += (double)q[(i * heads + h) * d + p] * k[(j * kvHeads + g) * d + p];
                    s *= scale;
                    if (softCap > 0) s = softCap * Math.Tanh(s / softCap);
                    scores[j] = s;
                    max = Math.Max(max, s);
                }
                double sum = 0;
                for (int j = 0; j < nk; j++) { scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max); sum += scores[j]; }
                for (int j = 0; j < nk; j++)
                {
                    double pj = scores[j] / sum;
                    probs[(h * nq + i) * nk + j] = pj;
                    for (int p = 0; p < d; p++) output[(i * heads + h) * d + p] += pj * v[(j * kvHeads + g) * d + p];
                }
            }
        }
        return (output, probs);
    }

    public static float[] RandomFloats(Random rng, int count, float range = 1f)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * range;
        return a;
    }
}

/// <summary>Weights as a StoredTensor over pinned memory, in F32, BF16 or F16 (the float values are rounded to the dtype first).</summary>
sealed unsafe class TestWeights : IDisposable
{
    public readonly StoredTensor Stored;
    /// <summary>The exact float values the kernel sees (rounded to BF16 or F16 when stored so).</summary>
    public readonly float[] Values;
    GCHandle handle;

    public TestWeights(float[] values, int n, int k, DType dtype)
    {
        if (dtype is DType.BF16 or DType.F16)
        {
            var bits = new ushort[values.Length];
            Values = new float[values.Length];
            for (int i = 0; i < bits.Length; i++)
            {
                // The reference widening is independent of the kernel's: BF16 by shift, F16 by .NET's Half.
                bits[i] = dtype == DType.BF16 ? Tensors.Convert.F32ToBf16(values[i]) : BitConverter.HalfToUInt16Bits((Half)values[i]);
                Values[i] = dtype == DType.BF16 ? BitConverter.UInt32BitsToSingle((uint)bits[i] << 16) : (float)BitConverter.UInt16BitsToHalf(bits[i]);
            }
            handle = GCHandle.Alloc(bits, GCHandleType.Pinned);
            Stored = new StoredTensor($"test.{dtype.Name().ToLowerInvariant()}", dtype, [n, k], (byte*)handle.AddrOfPinnedObject(), (long)bits.Length * 2);
        }
        else
        {
            Values = (float[])values.Clone();
            handle = GCHandle.Alloc(Values, GCHandleType.Pinned);
            Stored = new StoredTensor("test.f32", DType.F32, [n, k], (byte*)handle.AddrOfPinnedObject(), (long)Values.Length * 4);
        }
    }

    public void Dispose() => handle.Free();
}

/// <summary>Tests that change <see cref="KernelSettings"/> run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelSettingsCollection
{
    public const string Name = "KernelSettings";
}

/// <summary>Sets the ISA (and optionally the thread count) for a using-block and restores both.</summary>
readonly struct SettingsScope : IDisposable
{
    readonly Isa isa;
    readonly int threads;

    public SettingsScope(Isa isa, int? threads = null)
    {
        this.isa = KernelSettings.Isa;
        this.threads = KernelSettings.Threads;
        KernelSettings.Isa = isa;
        if (threads is int t) KernelSettings.Threads = t;
    }

    public void Dispose()
    {
        KernelSettings.Isa = isa;
        KernelSettings.Threads = threads;
    }

    /// <summary>The kernel paths this CPU can run (a path it lacks would silently fall back to the next one).</summary>
    public static readonly Isa[] AllPaths = [.. new[] { Isa.Avx512, Isa.Avx2, Isa.Scalar }.Where(CanRun)];

    /// <summary>True when the CPU has <paramref name="isa"/>'s instructions.</summary>
    public static bool CanRun(Isa isa) => isa >= KernelSettings.Best;

    /// <summary>Skips the calling test, naming the path, when this CPU cannot run <paramref name="isa"/>.</summary>
    public static void SkipUnlessCpuRuns(Isa isa) =>
        Skip.IfNot(CanRun(isa), $"this CPU cannot run the {isa} kernels (its best path is {KernelSettings.Best}); they were not tested here");
}

/// <summary>Says, as a skipped test, when kernel paths could not be tested because this CPU lacks them.</summary>
public class KernelPathCoverageTests
{
    [SkippableFact]
    public void Every_kernel_path_runs_on_this_cpu()
    {
        var missing = new[] { Isa.Avx512, Isa.Avx2 }.Where(isa => !SettingsScope.CanRun(isa)).ToList();
        Skip.If(missing.Count > 0, $"the {string.Join(" and ", missing)} kernels could not run on this CPU, so the tests that loop over every path covered only {string.Join(", ", SettingsScope.AllPaths)}");
        Assert.Equal([Isa.Avx512, Isa.Avx2, Isa.Scalar], SettingsScope.AllPaths);
    }
}
