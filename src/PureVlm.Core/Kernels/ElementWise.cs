using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PureVlm.Kernels;

/// <summary>
/// The element-wise and row-wise operations of the model blocks, all in float32 as HF computes them.
/// Rows are the last dimension. Each is vectorized (TensorPrimitives, or Vector512 when <see cref="KernelSettings.Isa"/>
/// is <see cref="Isa.Avx512"/>) and allocates nothing.
/// </summary>
[SkipLocalsInit]
public static class ElementWise
{
    const int Chunk = 256;

    /// <summary>RMSNorm per row: <c>x · rsqrt(mean(x²) + eps) · w</c> (Gemma's <c>1 + w</c> is folded into w by the model when it loads).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        using var time = KernelProfile.Time(KernelKind.Norm);
        int d = CheckRows(x.Length, weight.Length, y.Length, nameof(RmsNorm));
        for (int r = 0; r < x.Length / d; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / d + eps);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }

    /// <summary>LayerNorm per row with weight and bias (two-pass variance).</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        using var time = KernelProfile.Time(KernelKind.Norm);
        int d = CheckRows(x.Length, weight.Length, y.Length, nameof(LayerNorm));
        if (bias.Length != d) throw new ArgumentException($"LayerNorm: bias has {bias.Length} elements, weight has {d}");
        for (int r = 0; r < x.Length / d; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float mean = TensorPrimitives.Sum(xr) / d;
            TensorPrimitives.Subtract(xr, mean, yr);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / d + eps);
            TensorPrimitives.Multiply(yr, inv, yr);
            TensorPrimitives.FusedMultiplyAdd(yr, weight, bias, yr);
        }
    }

    /// <summary>
    /// GELU, tanh approximation (PyTorch's gelu(approximate="tanh")), in place. Evaluated as the identical
    /// <c>x · sigmoid(2u)</c>, u = √(2/π)(x + 0.044715x³), which keeps relative accuracy where tanh saturates.
    /// </summary>
    public static void GeluTanh(Span<float> x)
    {
        const float twoC = 2 * 0.7978845608028654f; // 2·sqrt(2/pi)
        Span<float> u = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            var xs = x.Slice(i, Math.Min(Chunk, x.Length - i));
            var us = u[..xs.Length];
            TensorPrimitives.Multiply(xs, xs, us);                  // x²
            TensorPrimitives.Multiply(us, 0.044715f, us);
            TensorPrimitives.Add(us, 1f, us);                       // 1 + 0.044715x²
            TensorPrimitives.Multiply(us, xs, us);                  // x + 0.044715x³
            TensorPrimitives.Multiply(us, twoC, us);                // 2u
            TensorPrimitives.Sigmoid(us, us);
            TensorPrimitives.Multiply(xs, us, xs);
        }
    }

    /// <summary>
    /// Applies <paramref name="activation"/> in place. Long spans are split over the worker threads at multiples of the
    /// 256-element chunk every activation already works in, so the result is the same bits as one thread's.
    /// </summary>
    public static void Activate(Span<float> x, Activation activation) => ActivateRows(x, Chunk, activation);

    /// <summary>
    /// Applies <paramref name="activation"/> to each row of <paramref name="rowLength"/> elements as a span of its own
    /// (a row's values then never depend on the rows beside it), rows split over the worker threads.
    /// </summary>
    public static unsafe void ActivateRows(Span<float> x, int rowLength, Activation activation)
    {
        if (rowLength <= 0) throw new ArgumentException($"ActivateRows: row length {rowLength}");
        using var time = KernelProfile.Time(KernelKind.Activation);
        const int MinTaskElements = 16384;
        int rows = (x.Length + rowLength - 1) / rowLength;
        int rowsPerTask = Math.Max(1, MinTaskElements / rowLength);
        if (rows < 2 * rowsPerTask || KernelSettings.Threads == 1) { ActivateEachRow(x, rowLength, activation); return; }
        fixed (float* p = x)
        {
            var job = new ActivateJob(p, x.Length, rowLength, rowsPerTask, activation);
            WorkerPool.Run(ref job, (rows + rowsPerTask - 1) / rowsPerTask);
        }
    }

    static void ActivateEachRow(Span<float> x, int rowLength, Activation activation)
    {
        for (int start = 0; start < x.Length; start += rowLength)
            ActivateRange(x.Slice(start, Math.Min(rowLength, x.Length - start)), activation);
    }

    unsafe readonly struct ActivateJob(float* x, int length, int rowLength, int rowsPerTask, Activation activation) : IParallelJob
    {
        public void Run(int task)
        {
            long start = (long)task * rowsPerTask * rowLength;
            int count = (int)Math.Min((long)rowsPerTask * rowLength, length - start);
            ActivateEachRow(new Span<float>(x + start, count), rowLength, activation);
        }
    }

    static void ActivateRange(Span<float> x, Activation activation)
    {
        switch (activation)
        {
            case Activation.GeluTanh: GeluTanh(x); break;
            case Activation.GeluErf: GeluErf(x); break;
            case Activation.QuickGelu: SigmoidGate(x, 1.702f); break;
            case Activation.Silu: SigmoidGate(x, 1f); break;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        }
    }

    /// <summary><c>max(x, 0)</c> in place.</summary>
    public static void Relu(Span<float> x)
    {
        using var time = KernelProfile.Time(KernelKind.Activation);
        TensorPrimitives.Max(x, 0f, x);
    }

    /// <summary><c>x · sigmoid(a·x)</c> in place: SiLU for a = 1, CLIP's quick_gelu for a = 1.702.</summary>
    static void SigmoidGate(Span<float> x, float a)
    {
        Span<float> u = stackalloc float[Chunk];
        for (int i = 0; i < x.Length; i += Chunk)
        {
            var xs = x.Slice(i, Math.Min(Chunk, x.Length - i));
            var us = u[..xs.Length];
            if (a == 1f) TensorPrimitives.Sigmoid(xs, us);
            else { TensorPrimitives.Multiply(xs, a, us); TensorPrimitives.Sigmoid(us, us); }
            TensorPrimitives.Multiply(xs, us, xs);
        }
    }

    /// <summary>
    /// The exact GELU <c>x · ½(1 + erf(x/√2))</c> (PyTorch's default), in place. erf is evaluated in float64 from
    /// erfc's Chebyshev-fitted exponential form (relative error below 1.2e-7), so the float32 result is as close as
    /// float32 allows; .NET has no erf of its own.
    /// </summary>
    public static void GeluErf(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            x[i] = (float)(0.5 * v * Erfc(-v * 0.70710678118654752)); // 1 + erf(z) = erfc(-z), accurate where it is tiny
        }
    }

    static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                   + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }

    /// <summary>Softmax of each row of length <paramref name="d"/>, in place.</summary>
    public static void Softmax(Span<float> x, int d)
    {
        using var time = KernelProfile.Time(KernelKind.Softmax);
        if (d <= 0 || x.Length % d != 0) throw new ArgumentException($"Softmax: {x.Length} elements are not rows of {d}");
        for (int r = 0; r < x.Length / d; r++) TensorPrimitives.SoftMax(x.Slice(r * d, d), x.Slice(r * d, d));
    }

    /// <summary>Soft-capping <c>c · tanh(x / c)</c>, in place.</summary>
    public static void SoftCap(Span<float> x, float cap)
    {
        using var time = KernelProfile.Time(KernelKind.Softmax);
        TensorPrimitives.Divide(x, cap, x);
        Tanh(x);
        TensorPrimitives.Multiply(x, cap, x);
    }

    /// <summary>
    /// tanh in place, to a few ulp relative everywhere: an odd Taylor polynomial below |z| = 0.4 (where the
    /// exp form loses relative accuracy; TensorPrimitives.Tanh does there), <c>sign(z)(1 − 2/(e^{2|z|} + 1))</c> above.
    /// </summary>
    internal static void Tanh(Span<float> x)
    {
        int i = 0;
        if (KernelSettings.Isa == Isa.Avx512)
            for (; i + 16 <= x.Length; i += 16) Tanh(Vector512.Create(x[i..])).CopyTo(x[i..]);
        for (; i < x.Length; i++) x[i] = MathF.Tanh(x[i]);
    }

    /// <summary>The vector body of <see cref="Tanh(Span{float})"/>.</summary>
    internal static Vector512<float> Tanh(Vector512<float> z)
    {
        var a = Vector512.Abs(z);
        var z2 = z * z;
        var c = Vector512.Create(21844f / 6081075);
        c = c * z2 + Vector512.Create(-1382f / 155925);
        c = c * z2 + Vector512.Create(62f / 2835);
        c = c * z2 + Vector512.Create(-17f / 315);
        c = c * z2 + Vector512.Create(2f / 15);
        c = c * z2 + Vector512.Create(-1f / 3);
        var poly = z + z * z2 * c;
        // Soft-capped attention scores mostly lie below 0.4 · cap: skip the exp and the division (same bits per lane).
        if (Vector512.LessThanAll(a, Vector512.Create(0.4f))) return poly;
        var large = Vector512<float>.One - Vector512.Create(2f) / (Vector512.Exp(a + a) + Vector512<float>.One);
        large = Vector512.ConditionalSelect(Vector512.LessThan(z, Vector512<float>.Zero), -large, large);
        return Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(0.4f)), poly, large);
    }

    /// <summary>
    /// e^x for the softmax's x = score − max ≤ 0 (AVX-512): x = n·ln 2 + r with |r| ≤ ln 2 / 2 (Cody–Waite, ln 2 in two
    /// parts), e^r by its degree-7 Taylor polynomial (remainder below 5·10⁻⁹ relative), 2ⁿ by <c>vscalefps</c>.
    /// About half the instructions of Vector512.Exp, within 2 ulp of it; x below −110 (−∞ for masked keys) gives 0.
    /// </summary>
    internal static Vector512<float> ExpNonPositive(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(-110f));
        var n = Avx512F.RoundScale(x * Vector512.Create(1.44269504f), 0); // to nearest
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693145751953125f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-1.42860677e-6f), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(1f / 5040), r, Vector512.Create(1f / 720));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }

    /// <summary>x += y.</summary>
    public static void Add(Span<float> x, ReadOnlySpan<float> y)
    {
        using var time = KernelProfile.Time(KernelKind.ElementWise);
        TensorPrimitives.Add(x, y, x);
    }

    /// <summary>x *= y.</summary>
    public static void Multiply(Span<float> x, ReadOnlySpan<float> y)
    {
        using var time = KernelProfile.Time(KernelKind.ElementWise);
        TensorPrimitives.Multiply(x, y, x);
    }

    /// <summary>x *= s.</summary>
    public static void Scale(Span<float> x, float s)
    {
        using var time = KernelProfile.Time(KernelKind.ElementWise);
        TensorPrimitives.Multiply(x, s, x);
    }

    /// <summary>
    /// Rotary position embedding, "rotate_half" layout (dims i and i + d/2 form a pair), in place on
    /// x [n, heads, d] with one position per row. As HF in float32: inv_freq[i] = 1 / theta^(2i/d), divided by
    /// <paramref name="linearScaling"/> (HF's "linear" rope_scaling factor; 1 = none), angle = pos · inv_freq[i], then
    /// cos and sin of the angle; x₀' = x₀cos − x₁sin, x₁' = x₁cos + x₀sin.
    /// </summary>
    public static void Rope(Span<float> x, int n, int heads, int d, ReadOnlySpan<int> positions, float theta, float linearScaling = 1f)
    {
        using var time = KernelProfile.Time(KernelKind.Rope);
        if (d <= 0 || d % 2 != 0 || d > 2048) throw new ArgumentException($"Rope: head dim {d} must be even and at most 2048");
        if (x.Length < (long)n * heads * d) throw new ArgumentException($"Rope: x has {x.Length} elements, expected {n}×{heads}×{d}");
        if (positions.Length < n) throw new ArgumentException($"Rope: {positions.Length} positions for {n} rows");
        int half = d / 2;
        Span<float> invFreq = stackalloc float[half], cos = stackalloc float[half], sin = stackalloc float[half];
        for (int i = 0; i < half; i++) invFreq[i] = 1f / MathF.Pow(theta, 2f * i / d) / linearScaling;
        for (int t = 0; t < n; t++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = positions[t] * invFreq[i];
                (sin[i], cos[i]) = MathF.SinCos(angle);
            }
            for (int h = 0; h < heads; h++)
            {
                var row = x.Slice((t * heads + h) * d, d);
                Rotate(row[..half], row[half..], cos, sin);
            }
        }
    }

    static void Rotate(Span<float> x0, Span<float> x1, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int i = 0;
        if (KernelSettings.Isa == Isa.Avx512)
            for (; i + 16 <= x0.Length; i += 16)
            {
                var a = Vector512.Create(x0[i..]); var b = Vector512.Create(x1[i..]);
                var c = Vector512.Create(cos[i..]); var s = Vector512.Create(sin[i..]);
                (a * c - b * s).CopyTo(x0[i..]);
                (b * c + a * s).CopyTo(x1[i..]);
            }
        for (; i < x0.Length; i++)
        {
            float a = x0[i], b = x1[i];
            x0[i] = a * cos[i] - b * sin[i];
            x1[i] = b * cos[i] + a * sin[i];
        }
    }

    static int CheckRows(int xLength, int d, int yLength, string op)
    {
        if (d <= 0 || xLength % d != 0) throw new ArgumentException($"{op}: input of {xLength} elements is not rows of the weight length {d}");
        if (yLength < xLength) throw new ArgumentException($"{op}: output has {yLength} elements, expected {xLength}");
        return d;
    }
}
