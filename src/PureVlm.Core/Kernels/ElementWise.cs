using System.Numerics.Tensors;

namespace PureVlm.Kernels;

/// <summary>The element-wise and row-wise operations of the model blocks. Rows are the last dimension.</summary>
public static class ElementWise
{
    /// <summary>Gemma's RMSNorm per row: <c>x · rsqrt(mean(x²) + eps) · (1 + w)</c> (HF multiplies by 1 + w, not w).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        int d = weight.Length;
        for (int r = 0; r < x.Length / d; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float ms = TensorPrimitives.SumOfSquares(xr) / d;
            float inv = 1f / MathF.Sqrt(ms + eps);
            for (int i = 0; i < d; i++) yr[i] = xr[i] * inv * (1f + weight[i]);
        }
    }

    /// <summary>LayerNorm per row with weight and bias.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, float eps, Span<float> y)
    {
        int d = weight.Length;
        for (int r = 0; r < x.Length / d; r++)
        {
            var xr = x.Slice(r * d, d);
            var yr = y.Slice(r * d, d);
            float mean = TensorPrimitives.Sum(xr) / d;
            float var = 0;
            for (int i = 0; i < d; i++) { float c = xr[i] - mean; var += c * c; }
            float inv = 1f / MathF.Sqrt(var / d + eps);
            for (int i = 0; i < d; i++) yr[i] = (xr[i] - mean) * inv * weight[i] + bias[i];
        }
    }

    /// <summary>GELU, tanh approximation (PyTorch's gelu(approximate="tanh")), in place.</summary>
    public static void GeluTanh(Span<float> x)
    {
        const float c = 0.7978845608028654f; // sqrt(2/pi)
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            x[i] = 0.5f * v * (1f + MathF.Tanh(c * (v + 0.044715f * v * v * v)));
        }
    }

    /// <summary>Softmax of each row of length <paramref name="d"/>, in place.</summary>
    public static void Softmax(Span<float> x, int d)
    {
        for (int r = 0; r < x.Length / d; r++) TensorPrimitives.SoftMax(x.Slice(r * d, d), x.Slice(r * d, d));
    }

    /// <summary>Soft-capping <c>c · tanh(x / c)</c>, in place.</summary>
    public static void SoftCap(Span<float> x, float cap)
    {
        for (int i = 0; i < x.Length; i++) x[i] = cap * MathF.Tanh(x[i] / cap);
    }

    /// <summary>x += y.</summary>
    public static void Add(Span<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Add(x, y, x);

    /// <summary>x *= y.</summary>
    public static void Multiply(Span<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Multiply(x, y, x);

    /// <summary>x *= s.</summary>
    public static void Scale(Span<float> x, float s) => TensorPrimitives.Multiply(x, s, x);

    /// <summary>
    /// Rotary position embedding, "rotate_half" layout (dims i and i + d/2 form a pair), in place on
    /// x [n, heads, d] with one position per row; angles in float32 as HF computes them.
    /// </summary>
    public static void Rope(Span<float> x, int n, int heads, int d, ReadOnlySpan<int> positions, float theta)
    {
        int half = d / 2;
        for (int t = 0; t < n; t++)
        {
            for (int i = 0; i < half; i++)
            {
                float invFreq = 1f / MathF.Pow(theta, 2f * i / d);
                float angle = positions[t] * invFreq;
                float cos = MathF.Cos(angle), sin = MathF.Sin(angle);
                for (int h = 0; h < heads; h++)
                {
                    int b = (t * heads + h) * d;
                    float x0 = x[b + i], x1 = x[b + i + half];
                    x[b + i] = x0 * cos - x1 * sin;
                    x[b + i + half] = x1 * cos + x0 * sin;
                }
            }
        }
    }
}
