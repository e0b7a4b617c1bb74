using PureVlm.Tensors;

namespace PureVlm.Kernels;

/// <summary>
/// Matrix products. <see cref="Linear"/> is the one every Linear layer uses:
/// <c>y[m, n] = x[m, k] · W[n, k]ᵀ (+ b[n])</c>, with W as HF stores it ([out, in]) in F32 or BF16.
/// </summary>
public static class Gemm
{
    /// <summary><c>y = x · Wᵀ + bias</c>. x is [m, k] row-major, y is [m, n]; bias may be empty.</summary>
    public static unsafe void Linear(ReadOnlySpan<float> x, int m, StoredTensor w, ReadOnlySpan<float> bias, Span<float> y)
    {
        if (w.Rank != 2) throw new ArgumentException($"{w.Name}: Linear weight must be 2-D, got {w.ShapeString}");
        int n = (int)w.Shape[0], k = (int)w.Shape[1];
        if (x.Length < m * k) throw new ArgumentException($"{w.Name}: input has {x.Length} elements, expected {m}×{k}");
        if (y.Length < m * n) throw new ArgumentException($"{w.Name}: output has {y.Length} elements, expected {m}×{n}");
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"{w.Name}: bias has {bias.Length} elements, expected {n}");
        var row = new float[k];
        for (int j = 0; j < n; j++)
        {
            w.ReadFloats((long)j * k, row);
            for (int i = 0; i < m; i++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += x[i * k + p] * row[p];
                y[i * n + j] = s + (bias.IsEmpty ? 0 : bias[j]);
            }
        }
    }

    /// <summary>
    /// <c>c[i, j] = Σ_p a[i, p] · b[j, p]</c> over float spans with row strides (lda, ldb, ldc), as attention's QKᵀ needs.
    /// </summary>
    public static void MatMulTransB(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += a[i * lda + p] * b[j * ldb + p];
                c[i * ldc + j] = s;
            }
    }

    /// <summary>
    /// <c>c[i, j] += Σ_p a[i, p] · b[p, j]</c> over float spans with row strides, as attention's P·V needs.
    /// </summary>
    public static void MatMulAccumulate(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int p = 0; p < k; p++)
            {
                float av = a[i * lda + p];
                for (int j = 0; j < n; j++) c[i * ldc + j] += av * b[p * ldb + j];
            }
    }
}
