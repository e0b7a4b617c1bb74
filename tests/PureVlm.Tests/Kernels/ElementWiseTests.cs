using PureVlm.Kernels;
using Xunit;

namespace PureVlm.Tests.Kernels;

/// <summary>Each element-wise kernel against its float64 formula, within 1e-6 relative of the terms' magnitude.</summary>
[Collection(KernelSettingsCollection.Name)]
public class ElementWiseTests
{
    const double Rel = 1e-6;

    static void AssertNear(double expected, float actual, double scale, string what)
    {
        if (!(Math.Abs(expected - actual) <= Rel * scale + 1e-12))
            Assert.Fail($"{what}: got {actual}, expected {expected} (scale {scale})");
    }

    [Theory]
    [InlineData(3, 2304)]
    [InlineData(2, 17)]
    public void RmsNorm_matches_float64_formula_with_the_weight(int rows, int d)
    {
        var rng = new Random(d);
        var x = Reference.RandomFloats(rng, rows * d, 3f);
        var w = Reference.RandomFloats(rng, d);
        var y = new float[rows * d];
        ElementWise.RmsNorm(x, w, 1e-6f, y);
        for (int r = 0; r < rows; r++)
        {
            double ms = 0;
            for (int i = 0; i < d; i++) ms += (double)x[r * d + i] * x[r * d + i];
            double inv = 1 / Math.Sqrt(ms / d + 1e-6);
            for (int i = 0; i < d; i++)
            {
                double e = x[r * d + i] * inv * w[i];
                AssertNear(e, y[r * d + i], Math.Abs(e), $"rmsnorm[{r},{i}]");
            }
        }
    }

    [Theory]
    [InlineData(3, 1152)]
    [InlineData(2, 19)]
    public void LayerNorm_matches_float64_formula(int rows, int d)
    {
        var rng = new Random(d);
        var x = Reference.RandomFloats(rng, rows * d, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 2f; // a non-zero mean
        var w = Reference.RandomFloats(rng, d);
        var b = Reference.RandomFloats(rng, d);
        var y = new float[rows * d];
        ElementWise.LayerNorm(x, w, b, 1e-6f, y);
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < d; i++) mean += x[r * d + i];
            mean /= d;
            for (int i = 0; i < d; i++) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
            double inv = 1 / Math.Sqrt(var / d + 1e-6);
            for (int i = 0; i < d; i++)
            {
                double n = (x[r * d + i] - mean) * inv * w[i];
                // x − mean is rounded relative to |x| + |mean|, so that is the magnitude the error scales with.
                AssertNear(n + b[i], y[r * d + i], (Math.Abs(x[r * d + i]) + Math.Abs(mean)) * inv * Math.Abs(w[i]) + Math.Abs(b[i]), $"layernorm[{r},{i}]");
            }
        }
    }

    [Fact]
    public void GeluTanh_matches_float64_formula()
    {
        var x = new float[2001];
        for (int i = 0; i < x.Length; i++) x[i] = -6f + 12f * i / (x.Length - 1);
        var y = (float[])x.Clone();
        ElementWise.GeluTanh(y);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double u = Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v);
            double e = 0.5 * v * (1 + Math.Tanh(u));
            // u itself is rounded to float32 (as in HF); where tanh saturates (u ≪ 0) that rounding is amplified by
            // d ln(1 + tanh u)/d ln u = 2|u|(1 − σ(2u)), so the error scale includes that conditioning.
            double conditioning = 1 + 2 * Math.Abs(u) * (1 - 1 / (1 + Math.Exp(-2 * u)));
            AssertNear(e, y[i], Math.Abs(e) * conditioning, $"gelu({v})");
        }
    }

    /// <summary>erfc(y) = 2/√π ∫_y^∞ e^(−t²) dt by composite Simpson in float64 (relative error ~1e-12 where it matters here).</summary>
    static double Erfc(double y)
    {
        if (y < 0) return 2 - Erfc(-y);
        const int n = 20000;
        double h = 10.0 / n, sum = Math.Exp(-y * y) + Math.Exp(-(y + 10) * (y + 10));
        for (int i = 1; i < n; i++) sum += (i % 2 == 1 ? 4 : 2) * Math.Exp(-(y + i * h) * (y + i * h));
        return 2 / Math.Sqrt(Math.PI) * sum * h / 3;
    }

    /// <summary>A long span is split over the worker threads; the bits must not depend on it (batched answers equal single ones).</summary>
    [Theory]
    [InlineData(Activation.GeluTanh)]
    [InlineData(Activation.GeluErf)]
    [InlineData(Activation.QuickGelu)]
    [InlineData(Activation.Silu)]
    public void Activations_on_several_threads_give_the_bits_of_one(Activation activation)
    {
        var x = Reference.RandomFloats(new Random(7), 261 * 9216 + 5, 6f);
        var one = (float[])x.Clone();
        using (new SettingsScope(KernelSettings.Isa, threads: 1)) ElementWise.Activate(one, activation);
        var several = (float[])x.Clone();
        using (new SettingsScope(KernelSettings.Isa, threads: 4)) ElementWise.Activate(several, activation);
        Assert.Equal(one, several);

        // Rows of a length that is no multiple of any vector or chunk: each row as a span of its own, on any thread.
        const int rowLength = 1001;
        var rows = x.AsSpan(0, 300 * rowLength).ToArray();
        var rowByRow = (float[])rows.Clone();
        using (new SettingsScope(KernelSettings.Isa, threads: 1))
            for (int r = 0; r < 300; r++) ElementWise.Activate(rowByRow.AsSpan(r * rowLength, rowLength), activation);
        using (new SettingsScope(KernelSettings.Isa, threads: 4)) ElementWise.ActivateRows(rows, rowLength, activation);
        Assert.Equal(rowByRow, rows);
    }

    [Theory]
    [InlineData(Activation.GeluErf)]
    [InlineData(Activation.QuickGelu)]
    [InlineData(Activation.Silu)]
    public void Activations_match_float64_formulas(Activation activation)
    {
        var x = new float[2001];
        for (int i = 0; i < x.Length; i++) x[i] = -6f + 12f * i / (x.Length - 1);
        var y = (float[])x.Clone();
        ElementWise.Activate(y, activation);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double e = activation switch
            {
                Activation.GeluErf => 0.5 * v * Erfc(-v / Math.Sqrt(2)), // 1 + erf(z) = erfc(−z)
                Activation.QuickGelu => v / (1 + Math.Exp(-1.702 * v)),
                _ => v / (1 + Math.Exp(-v)),
            };
            // As for tanh GELU: where the sigmoid saturates, the float32 rounding of its argument is amplified by |a·x|.
            double conditioning = 1 + 2 * Math.Abs(v) * (e < 0 ? 1 : 0);
            AssertNear(e, y[i], Math.Abs(e) * conditioning, $"{activation}({v})");
        }
    }

    [Fact]
    public void Softmax_rows_match_float64_formula()
    {
        var rng = new Random(3);
        int d = 37;
        var x = Reference.RandomFloats(rng, 3 * d, 4f);
        var y = (float[])x.Clone();
        ElementWise.Softmax(y, d);
        for (int r = 0; r < 3; r++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int i = 0; i < d; i++) max = Math.Max(max, x[r * d + i]);
            for (int i = 0; i < d; i++) sum += Math.Exp(x[r * d + i] - max);
            for (int i = 0; i < d; i++)
            {
                double e = Math.Exp(x[r * d + i] - max) / sum;
                AssertNear(e, y[r * d + i], e, $"softmax[{r},{i}]");
            }
        }
    }

    [SkippableTheory]
    [InlineData(Isa.Avx512)]
    [InlineData(Isa.Avx2)]
    [InlineData(Isa.Scalar)]
    public void SoftCap_matches_float64_formula_on_every_isa(Isa isa)
    {
        SettingsScope.SkipUnlessCpuRuns(isa);
        using var scope = new SettingsScope(isa);
        var rng = new Random(4);
        var x = Reference.RandomFloats(rng, 1000, 120f);
        for (int i = 0; i < 100; i++) x[i] *= 1e-3f; // near zero, where tanh needs relative accuracy
        var y = (float[])x.Clone();
        ElementWise.SoftCap(y, 50f);
        for (int i = 0; i < x.Length; i++)
        {
            double e = 50 * Math.Tanh(x[i] / 50.0);
            AssertNear(e, y[i], Math.Abs(e), $"{isa} softcap({x[i]})");
        }
    }

    [SkippableFact]
    public void ExpNonPositive_is_within_2_ulp_of_exp_and_masked_keys_give_zero()
    {
        SettingsScope.SkipUnlessCpuRuns(Isa.Avx512);
        var rng = new Random(5);
        var x = new float[16 * 4096];
        for (int i = 0; i < x.Length; i++) x[i] = -(float)Math.Pow(rng.NextDouble(), 3) * 120; // dense near 0, down to −120
        float[] exact = [0f, -0f, float.NegativeInfinity, -87.3f, -103.9f, -110f, -1e-8f, -0.34657359f, -0.34657362f, -1000f];
        exact.CopyTo(x, 0);
        for (int v = 0; v < x.Length; v += 16)
        {
            var y = ElementWise.ExpNonPositive(System.Runtime.Intrinsics.Vector512.Create(x, v));
            for (int i = 0; i < 16; i++)
            {
                double e = Math.Exp(x[v + i]);
                float got = y[i];
                // Relative within 2 ulp where e^x is a normal float; below, within the smallest normal (2^-126).
                bool ok = e >= 1.1754944e-38 ? Math.Abs(got - e) <= 2.4e-7 * e : Math.Abs(got - e) <= 1.1754944e-38;
                Assert.True(ok, $"exp({x[v + i]}): got {got}, expected {e}");
            }
        }
        Assert.Equal(1f, ElementWise.ExpNonPositive(System.Runtime.Intrinsics.Vector512.Create(0f))[0]);
        Assert.Equal(0f, ElementWise.ExpNonPositive(System.Runtime.Intrinsics.Vector512.Create(float.NegativeInfinity))[0]);
    }

    [SkippableTheory]
    [InlineData(Isa.Avx512)]
    [InlineData(Isa.Avx2)]
    [InlineData(Isa.Scalar)]
    public void Bf16ToF32_widens_every_bit_pattern_exactly_on_every_isa(Isa isa)
    {
        SettingsScope.SkipUnlessCpuRuns(isa);
        using var scope = new SettingsScope(isa);
        var bits = new ushort[(1 << 16) + 5]; // a tail after the vector loop
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var y = new float[bits.Length];
        PureVlm.Tensors.Convert.Bf16ToF32(bits, y);
        for (int i = 0; i < bits.Length; i++)
            Assert.True((uint)bits[i] << 16 == BitConverter.SingleToUInt32Bits(y[i]), $"{isa} 0x{bits[i]:X4}: got 0x{BitConverter.SingleToUInt32Bits(y[i]):X8}");
    }

    [Fact]
    public void Add_multiply_scale_match_scalar_loops()
    {
        var rng = new Random(6);
        var a = Reference.RandomFloats(rng, 70);
        var b = Reference.RandomFloats(rng, 70);
        var sum = (float[])a.Clone(); ElementWise.Add(sum, b);
        var prod = (float[])a.Clone(); ElementWise.Multiply(prod, b);
        var scaled = (float[])a.Clone(); ElementWise.Scale(scaled, 3.5f);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(a[i] + b[i], sum[i]);
            Assert.Equal(a[i] * b[i], prod[i]);
            Assert.Equal(a[i] * 3.5f, scaled[i]);
        }
    }

    [SkippableTheory]
    [InlineData(256, 10000f, Isa.Avx512)]
    [InlineData(72, 10000f, Isa.Avx512)]
    [InlineData(6, 500f, Isa.Avx512)]
    [InlineData(256, 10000f, Isa.Avx2)]
    [InlineData(256, 10000f, Isa.Scalar)]
    [InlineData(72, 10000f, Isa.Scalar)]
    public void Rope_rotates_half_pairs_with_float32_angles(int d, float theta, Isa isa)
    {
        SettingsScope.SkipUnlessCpuRuns(isa);
        using var scope = new SettingsScope(isa);
        int n = 5, heads = 3, half = d / 2;
        var rng = new Random(d);
        var x = Reference.RandomFloats(rng, n * heads * d);
        int[] positions = [0, 1, 7, 300, 4095];
        var y = (float[])x.Clone();
        ElementWise.Rope(y, n, heads, d, positions, theta);
        for (int t = 0; t < n; t++)
            for (int i = 0; i < half; i++)
            {
                // HF: inv_freq = 1 / theta^(2i/d) and angle = pos · inv_freq, both rounded to float32.
                float invFreq = 1f / MathF.Pow(theta, (float)(2 * i) / d);
                double angle = (float)(positions[t] * invFreq);
                double c = Math.Cos(angle), s = Math.Sin(angle);
                for (int h = 0; h < heads; h++)
                {
                    int b = (t * heads + h) * d;
                    double x0 = x[b + i], x1 = x[b + i + half];
                    double scale = Math.Abs(x0) + Math.Abs(x1);
                    AssertNear(x0 * c - x1 * s, y[b + i], scale, $"rope t={t} i={i} first");
                    AssertNear(x1 * c + x0 * s, y[b + i + half], scale, $"rope t={t} i={i} second");
                }
            }
    }
}
