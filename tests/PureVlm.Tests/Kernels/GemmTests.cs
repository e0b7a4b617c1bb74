using System.Runtime.Intrinsics;
using FsCheck.Xunit;
using PureVlm.Kernels;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Kernels;

[Collection(KernelSettingsCollection.Name)]
public class GemmTests
{
    static readonly int[] EdgeSizes = [1, 7, 17, 255, 1153];
    static readonly DType[] WeightDTypes = [DType.F32, DType.BF16, DType.F16];
    const double U = 1.0 / (1 << 24); // float32 unit roundoff

    /// <summary>A size from the edge list or a random one, with m·n·k kept small enough for the double reference.</summary>
    static (int M, int N, int K) RandomShape(Random rng)
    {
        while (true)
        {
            int Pick() => rng.Next(2) == 0 ? EdgeSizes[rng.Next(EdgeSizes.Length)] : rng.Next(1, 80);
            int m = Pick(), n = Pick(), k = Pick();
            if ((long)m * n * k <= 3_000_000) return (m, n, k);
        }
    }

    /// <summary>|y − exact| ≤ (k + 2)·u·Σ|x·w| + |b|: the standard bound for a float32 sum of k products.</summary>
    static void AssertLinear(float[] y, (double[] Y, double[] Magnitude) expected, int k, string what)
    {
        for (int i = 0; i < y.Length; i++)
        {
            double bound = (k + 2) * U * expected.Magnitude[i] + 1e-30;
            if (Math.Abs(y[i] - expected.Y[i]) > bound)
                Assert.Fail($"{what}: element {i}: got {y[i]}, expected {expected.Y[i]} ± {bound}");
        }
    }

    [Property(MaxTest = 15)]
    public void Linear_matches_double_reference_on_every_isa_for_f32_bf16_and_f16(int seed)
    {
        var rng = new Random(seed);
        var (m, n, k) = RandomShape(rng);
        var dtype = WeightDTypes[rng.Next(WeightDTypes.Length)];
        bool withBias = rng.Next(2) == 0;
        var x = Reference.RandomFloats(rng, m * k);
        using var w = new TestWeights(Reference.RandomFloats(rng, n * k), n, k, dtype);
        var bias = withBias ? Reference.RandomFloats(rng, n) : null;
        var expected = Reference.Linear(x, m, w.Values, n, k, bias);
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa);
            var y = new float[m * n];
            Gemm.Linear(x, m, w.Stored, bias, y);
            AssertLinear(y, expected, k, $"{isa} {dtype} m={m} n={n} k={k} bias={withBias}");
        }
    }

    [Theory]
    [InlineData(1, 2304, 256, 1)]   // decode GEMV, uneven split
    [InlineData(1, 70, 45, 2)]      // decode GEMV: 16-row groups with a k tail of 13, then 6 rows left
    [InlineData(4, 100, 33, 3)]     // GEMV with several rows, more threads than cores
    [InlineData(266, 130, 300, 2)]  // packed path: row tail of 2, column tail of 2, two k-blocks
    [InlineData(9, 1153, 17, 1)]    // single thread, many column tasks
    public void Linear_matches_reference_at_named_shapes_and_thread_counts(int m, int n, int k, int threads)
    {
        var rng = new Random(m * 31 + n);
        var x = Reference.RandomFloats(rng, m * k);
        foreach (var dtype in WeightDTypes)
        {
            using var w = new TestWeights(Reference.RandomFloats(rng, n * k), n, k, dtype);
            var bias = Reference.RandomFloats(rng, n);
            var expected = Reference.Linear(x, m, w.Values, n, k, bias);
            foreach (var isa in SettingsScope.AllPaths)
            {
                using var scope = new SettingsScope(isa, threads);
                var y = new float[m * n];
                Gemm.Linear(x, m, w.Stored, bias, y);
                AssertLinear(y, expected, k, $"{isa} {dtype} threads={threads}");
            }
        }
    }

    [Property(MaxTest = 10)]
    public void MatMulTransB_and_MatMulAccumulate_match_reference_with_strides(int seed)
    {
        var rng = new Random(seed);
        int m = rng.Next(1, 90), n = rng.Next(1, 90), k = rng.Next(1, 90), pad = rng.Next(0, 5);
        int lda = k + pad, ldb = k + pad, ldc = n + pad, ldv = n + pad;
        var a = Reference.RandomFloats(rng, m * lda);
        var b = Reference.RandomFloats(rng, n * ldb);   // [n, k] for TransB
        var bv = Reference.RandomFloats(rng, k * ldv);  // [k, n] for Accumulate
        var c0 = Reference.RandomFloats(rng, m * ldc);
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa);
            var c = (float[])c0.Clone();
            Gemm.MatMulTransB(a, lda, b, ldb, c, ldc, m, n, k);
            var acc = (float[])c0.Clone();
            Gemm.MatMulAccumulate(a, lda, bv, ldv, acc, ldc, m, n, k);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < ldc; j++)
                {
                    if (j >= n) { Assert.Equal(c0[i * ldc + j], c[i * ldc + j]); Assert.Equal(c0[i * ldc + j], acc[i * ldc + j]); continue; }
                    double s = 0, sMag = 0, t = c0[i * ldc + j], tMag = Math.Abs(t);
                    for (int p = 0; p < k; p++)
                    {
                        double x1 = (double)a[i * lda + p] * b[j * ldb + p]; s += x1; sMag += Math.Abs(x1);
                        double x2 = (double)a[i * lda + p] * bv[p * ldv + j]; t += x2; tMag += Math.Abs(x2);
                    }
                    Assert.True(Math.Abs(c[i * ldc + j] - s) <= (k + 2) * U * sMag + 1e-30, $"{isa} TransB [{i},{j}] {c[i * ldc + j]} vs {s}");
                    Assert.True(Math.Abs(acc[i * ldc + j] - t) <= (k + 3) * U * tMag + 1e-30, $"{isa} Accumulate [{i},{j}] {acc[i * ldc + j]} vs {t}");
                }
        }
    }

    [Fact]
    public unsafe void F16_weights_widen_exactly_for_every_bit_pattern_on_every_load_width()
    {
        var bits = new ushort[1 << 16];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        fixed (ushort* p = bits)
            for (int i = 0; i < bits.Length; i += 16)
            {
                var v512 = F16Format.Load512((byte*)p, i);
                var v256 = F16Format.Load256((byte*)p, i + 8);
                for (int j = 0; j < 16; j++)
                {
                    uint expected = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf(bits[i + j]));
                    float scalar = F16Format.Load((byte*)p, i + j);
                    float vector = j < 8 ? v512.GetElement(j) : v256.GetElement(j - 8);
                    if (float.IsNaN(scalar)) { Assert.True(float.IsNaN(vector) && float.IsNaN(v512.GetElement(j)), $"0x{i + j:X4}"); continue; }
                    Assert.Equal(expected, BitConverter.SingleToUInt32Bits(scalar));
                    Assert.True(expected == BitConverter.SingleToUInt32Bits(vector) && expected == BitConverter.SingleToUInt32Bits(v512.GetElement(j)),
                        $"0x{i + j:X4}: expected 0x{expected:X8}, vector 0x{BitConverter.SingleToUInt32Bits(vector):X8}");
                }
            }
    }

    [Fact]
    public void Linear_rejects_mismatched_sizes_naming_the_weight()
    {
        using var w = new TestWeights(new float[12], 3, 4, DType.F32);
        var e = Assert.Throws<ArgumentException>(() => Gemm.Linear(new float[7], 2, w.Stored, default, new float[6]));
        Assert.Contains("test.f32", e.Message);
        Assert.Throws<ArgumentException>(() => Gemm.Linear(new float[8], 2, w.Stored, new float[2], new float[6]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(64)]
    public void Warm_linear_call_allocates_nothing(int m)
    {
        int n = 512, k = 256;
        var rng = new Random(5);
        var x = Reference.RandomFloats(rng, m * k);
        var y = new float[m * n];
        var bias = Reference.RandomFloats(rng, n);
        using var w = new TestWeights(Reference.RandomFloats(rng, n * k), n, k, DType.BF16);
        // Past the JIT's 30-call tier-up threshold, so the measured calls run the final code.
        for (int i = 0; i < 40; i++) Gemm.Linear(x, m, w.Stored, bias, y);
        // One call on this thread alone: its per-thread scratch (one small object, once per thread) is then in place
        // whichever tasks the pool hands it later.
        int threads = KernelSettings.Threads;
        KernelSettings.Threads = 1;
        try { Gemm.Linear(x, m, w.Stored, bias, y); }
        finally { KernelSettings.Threads = threads; }
        long beforeAll = GC.GetTotalAllocatedBytes(true);
        Assert.Equal(0, AllocationProbe.MinimumAllocated(() => Gemm.Linear(x, m, w.Stored, bias, y), calls: 10));
        // Whole-process count as well; other test classes may run concurrently, so only a loose check.
        Assert.True(GC.GetTotalAllocatedBytes(true) - beforeAll < 1 << 20);
    }
}
