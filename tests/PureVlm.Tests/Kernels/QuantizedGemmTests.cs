using System.Runtime.InteropServices;
using FsCheck.Xunit;
using PureVlm.Kernels;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Kernels;

[Collection(KernelSettingsCollection.Name)]
public class QuantizedGemmTests
{
    static readonly DType[] ScaleTypes = [DType.F32, DType.BF16, DType.F16];
    const double U = 1.0 / (1 << 24);

    static QuantizedTensor RandomQuantized(Random rng, int n, int k, int bits, int groupSize, DType scaleType, out float[] source)
    {
        source = Reference.RandomFloats(rng, n * k);
        var q = new QuantizedTensor("w", n, k, bits, groupSize, scaleType);
        q.QuantizeRows(0, n, source);
        return q;
    }

    /// <summary>
    /// The product computed independently in double: x quantized per group as the kernel documents (symmetric, scale
    /// max|x|/L with L = 127 for 4-bit and 32,767 for 8-bit weights, round half to even), each term sx·q_x·(s·q_w + b)
    /// from the stored integers and scales.
    /// </summary>
    static (double[] Y, double[] Magnitude) Expected(float[] x, int m, QuantizedTensor w, float[]? bias)
    {
        int n = w.Rows, k = w.Columns, gs = w.GroupSize;
        var y = new double[m * n];
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int g = 0; g * gs < k; g++)
            {
                int width = Math.Min(gs, k - g * gs); // a partial last group counts its real columns only
                float max = 0;
                for (int j = 0; j < width; j++) max = Math.Max(max, Math.Abs(x[i * k + g * gs + j]));
                int levels = w.Bits == 8 ? short.MaxValue : sbyte.MaxValue;
                float inv = max == 0 ? 0 : levels / max, sx = max / levels;
                var qx = new int[width];
                for (int j = 0; j < width; j++) qx[j] = (int)Math.Round((double)(x[i * k + g * gs + j] * inv), MidpointRounding.ToEven);
                for (int c = 0; c < n; c++)
                {
                    var (s, b) = w.ScaleAndBias(c, g);
                    for (int j = 0; j < width; j++)
                    {
                        double term = (double)sx * qx[j] * ((double)s * w.Quant(c, g * gs + j) + b);
                        y[i * n + c] += term;
                        magnitude[i * n + c] += Math.Abs((double)sx * qx[j] * s * w.Quant(c, g * gs + j)) + Math.Abs((double)sx * qx[j] * b);
                    }
                }
            }
        if (bias != null)
            for (int i = 0; i < m; i++)
                for (int c = 0; c < n; c++) { y[i * n + c] += bias[c]; magnitude[i * n + c] += Math.Abs(bias[c]); }
        return (y, magnitude);
    }

    /// <summary>
    /// The scalar path's output, after checking it against <see cref="Expected"/> within (2·groups + 4) float32 roundings
    /// of the terms' magnitude (two fused multiply-adds per group, the bias, the conversions).
    /// </summary>
    static float[] ScalarPathCheckedAgainstDouble(float[] x, int m, QuantizedTensor w, float[]? bias, string what)
    {
        var reference = new float[m * w.Rows];
        using (new SettingsScope(Isa.Scalar, threads: 1)) QuantizedGemm.Linear(x, m, w, bias, reference);
        var (expected, magnitude) = Expected(x, m, w, bias);
        for (int i = 0; i < reference.Length; i++)
        {
            double bound = (2 * w.Groups + 4) * U * magnitude[i] + 1e-30;
            if (Math.Abs(reference[i] - expected[i]) > bound) Assert.Fail($"{what}: element {i}: got {reference[i]}, expected {expected[i]} ± {bound}");
        }
        return reference;
    }

    [Property(MaxTest = 25)]
    public void Every_isa_and_thread_count_gives_the_scalar_paths_bits_and_matches_the_double_reference(int seed)
    {
        var rng = new Random(seed);
        int bits = rng.Next(2) == 0 ? 4 : 8;
        int groupSize = QuantizedTensor.GroupSizes[rng.Next(3)];
        int m = rng.Next(3) == 0 ? rng.Next(9, 40) : rng.Next(1, 9), n = rng.Next(1, 50), k = groupSize * rng.Next(1, 5);
        if (rng.Next(3) == 0) k -= rng.Next(1, groupSize); // a partial last group (quantized at load, e.g. SigLIP's fc2)
        var scaleType = ScaleTypes[rng.Next(ScaleTypes.Length)];
        using var w = RandomQuantized(rng, n, k, bits, groupSize, scaleType, out _);
        var x = Reference.RandomFloats(rng, m * k, range: rng.Next(2) == 0 ? 1f : 40f);
        var bias = rng.Next(2) == 0 ? Reference.RandomFloats(rng, n) : null;
        string what = $"Q{bits} g{groupSize} {scaleType} m={m} n={n} k={k} bias={bias != null}";

        var reference = ScalarPathCheckedAgainstDouble(x, m, w, bias, what);
        foreach (var isa in SettingsScope.AllPaths)
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var scope = new SettingsScope(isa, threads);
                var y = new float[m * n];
                QuantizedGemm.Linear(x, m, w, bias, y);
                for (int i = 0; i < y.Length; i++)
                    if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(reference[i]))
                        Assert.Fail($"{what} {isa} threads={threads}: element {i} is {y[i]}, the scalar path gives {reference[i]}");
            }
    }

    /// <summary>
    /// Rows long enough that the kernel splits them into runs of groups (each resuming from the float sums the one before
    /// left in y), over several row blocks: still the scalar path's bits and the double reference's values.
    /// </summary>
    [Theory]
    [InlineData(4, 64, 176)]
    [InlineData(8, 64, 100)]
    [InlineData(8, 32, 90)]
    public void Long_rows_split_into_runs_of_groups_keep_the_bits(int bits, int groupSize, int groups)
    {
        var rng = new Random(bits * 1000 + groups);
        int m = 100, n = 20, k = groupSize * groups;
        using var w = RandomQuantized(rng, n, k, bits, groupSize, DType.BF16, out _);
        var x = Reference.RandomFloats(rng, m * k);
        var bias = Reference.RandomFloats(rng, n);
        var reference = ScalarPathCheckedAgainstDouble(x, m, w, bias, $"Q{bits} g{groupSize} k={k}");
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa, threads: 2);
            var y = new float[m * n];
            QuantizedGemm.Linear(x, m, w, bias, y);
            Assert.Equal(reference, y);
        }
    }

    /// <summary>
    /// Worst-case operands: every weight at its largest q and every activation at the top of its range (±127 for 4-bit
    /// weights, ±32,767 for 8-bit ones), so each int16 pair sum and int16 running sum of the 4-bit path and each int32
    /// group sum of the 8-bit path is at its extreme. With scale 1 and bias 0 the output is the exact integer dot
    /// (representable in float32 here), which saturation or wrap-around anywhere would change.
    /// </summary>
    [Theory]
    [InlineData(4, 32)]
    [InlineData(4, 128)]
    [InlineData(8, 32)]
    [InlineData(8, 128)]
    public void Extreme_operands_do_not_saturate_on_any_path(int bits, int groupSize)
    {
        int n = 16, groups = bits == 4 ? 4 : 1, k = groups * groupSize, m = 9, top = (1 << bits) - 1;
        int levels = bits == 8 ? short.MaxValue : sbyte.MaxValue;
        using var w = new QuantizedTensor("w", n, k, bits, groupSize, DType.F32);
        var packed = new byte[n * k * bits / 8];
        Array.Fill(packed, (byte)0xFF);
        var scales = new byte[n * groups * 4];
        MemoryMarshal.Cast<byte, float>(scales.AsSpan()).Fill(1f);
        w.WriteMlxRows(0, n, packed, scales, new byte[scales.Length]);
        // Rows: all +, all −, and + then − half by half (per group for 4 bits, within the group for 8).
        var x = new float[m * k];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < k; j++)
                x[i * k + j] = i % 3 == 0 ? levels : i % 3 == 1 ? -levels : ((bits == 4 ? j / groupSize : j / (groupSize / 2)) % 2 == 0 ? levels : -levels);
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa);
            var y = new float[m * n];
            QuantizedGemm.Linear(x, m, w, null, y);
            for (int i = 0; i < m; i++)
            {
                long exact = 0;
                for (int j = 0; j < k; j++) exact += (long)top * (x[i * k + j] > 0 ? levels : -levels);
                // x = ±L quantizes to ±L with scale 1, so the output is the integer dot itself.
                Assert.True(y[i * n] == exact, $"{isa} Q{bits} row {i}: {y[i * n]}, expected {exact}");
                for (int c = 1; c < n; c++) Assert.Equal(y[i * n], y[i * n + c]);
            }
        }
    }

    /// <summary>Decode and prefill calls allocate nothing once their per-thread buffers exist.</summary>
    [Theory]
    [InlineData(4, 1)]
    [InlineData(8, 1)]
    [InlineData(4, 100)]
    [InlineData(8, 100)]
    public void Linear_allocates_nothing(int bits, int m)
    {
        var rng = new Random(7);
        int n = 80, k = 256;
        using var w = RandomQuantized(rng, n, k, bits, 64, DType.BF16, out _);
        var x = Reference.RandomFloats(rng, m * k);
        var bias = Reference.RandomFloats(rng, n);
        var y = new float[m * n];
        using var scope = new SettingsScope(KernelSettings.Isa, threads: 2);
        Assert.Equal(0, AllocationProbe.MinimumAllocated(() => QuantizedGemm.Linear(x, m, w, bias, y), calls: 10));
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void Mlx_packing_puts_the_first_value_in_the_lowest_bits(int bits)
    {
        int n = 3, k = 64, perWord = 32 / bits;
        var rng = new Random(bits);
        var q = new int[n, k];
        var words = new uint[n * k / perWord];
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
            {
                q[r, c] = rng.Next(1 << bits);
                words[(r * k + c) / perWord] |= (uint)q[r, c] << (bits * (c % perWord));
            }
        var scales = new float[n];
        var biases = new float[n];
        for (int r = 0; r < n; r++) { scales[r] = 0.5f + r; biases[r] = -r; }
        using var w = new QuantizedTensor("w", n, k, bits, 64, DType.F32);
        w.WriteMlxRows(0, n, MemoryMarshal.AsBytes(words.AsSpan()), MemoryMarshal.AsBytes(scales.AsSpan()), MemoryMarshal.AsBytes(biases.AsSpan()));
        var values = new float[n * k];
        w.ReadFloats(0, values);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
            {
                Assert.Equal(q[r, c], w.Quant(r, c));
                Assert.Equal(scales[r] * q[r, c] + biases[r], values[r * k + c]);
            }
    }

    /// <summary>
    /// A partial last group (70 columns in groups of 64) is quantized from its 6 real columns alone, and MLX's file layout,
    /// which holds whole groups only, is refused for it with the name and the numbers; the recipe quantizes such a
    /// weight in memory but not for a file, and leaves a weight narrower than one group in float.
    /// </summary>
    [Fact]
    public void A_partial_last_group_uses_its_real_columns_and_is_refused_in_mlx_layout()
    {
        var values = new float[70];
        for (int j = 0; j < 70; j++) values[j] = j < 64 ? 100 : j - 64; // the last group is 0 … 5
        using var w = new QuantizedTensor("fc2.weight", 1, 70, 8, 64, DType.F32);
        Assert.Equal(2, w.Groups);
        Assert.Equal(128, w.PaddedColumns);
        w.QuantizeRows(0, 1, values);
        var back = new float[70];
        w.ReadFloats(0, back);
        for (int j = 64; j < 70; j++) Assert.True(Math.Abs(back[j] - values[j]) <= 5f / 255, $"column {j}: {back[j]} for {values[j]}");
        var e = Assert.Throws<InvalidOperationException>(() => w.WriteMlxRows(0, 1, new byte[70], new byte[8], new byte[8]));
        Assert.Contains("fc2.weight", e.Message);
        Assert.Contains("70 columns", e.Message);
        Assert.Equal(8, new QuantizationRecipe(8).BitsFor("fc2.weight", 4304, embedding: false));
        Assert.Equal(0, new QuantizationRecipe(8).BitsFor("narrow.weight", 48, embedding: false)); // under one group: float
        var forFiles = new QuantizationRecipe(8, WholeGroupsOnly: true);
        Assert.Equal(0, forFiles.BitsFor("fc2.weight", 4304, embedding: false));
        Assert.Equal(8, forFiles.BitsFor("fc1.weight", 1152, embedding: false));
    }

    /// <summary>
    /// MLX's rule worked by hand on a group from −0.5 to 1: the max is the edge (|min| is smaller), so the scale is
    /// negative, −1.5/15 = −0.1, 1/−0.1 rounds to −10 so the scale stays −1/10, and the bias is the edge: 0 is q = 10.
    /// </summary>
    [Fact]
    public void Quantizing_follows_mlx_affine_rule()
    {
        var values = new float[64];
        for (int j = 0; j < 64; j++) values[j] = -0.5f + 1.5f * j / 63;
        values[10] = 0;
        using var w = new QuantizedTensor("w", 1, 64, 4, 64, DType.F32);
        w.QuantizeRows(0, 1, values);
        var (scale, bias) = w.ScaleAndBias(0, 0);
        Assert.Equal(1f / -10f, scale);
        Assert.Equal(1f, bias);
        Assert.Equal(10, w.Quant(0, 10)); // 0.0 exactly: 1 + 10 · (−1/10)
        Assert.Equal(0, w.Quant(0, 63)); // the edge itself
        Assert.Equal(15, w.Quant(0, 0)); // the other end
        var back = new float[64];
        w.ReadFloats(0, back);
        Assert.True(Math.Abs(back[10]) < 1e-7f, $"0 dequantizes to {back[10]}");
        for (int j = 0; j < 64; j++) Assert.True(Math.Abs(back[j] - values[j]) <= 0.05f + 1e-6f, $"column {j}: {back[j]} for {values[j]}");
    }
}
