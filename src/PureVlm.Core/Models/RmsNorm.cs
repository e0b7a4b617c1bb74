using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>
/// HF <c>LlamaRMSNorm</c> (<c>x · rsqrt(mean(x²) + eps) · w</c>) and <c>GemmaRMSNorm</c> (<c>… · (1 + w)</c>). Gemma's
/// <c>1 + w</c> is computed once at load, in float32 as HF computes it on every call, so both are this one block.
/// </summary>
public sealed class RmsNorm
{
    readonly float[] _weight;
    readonly float _eps;

    /// <summary>Loads <c>weight</c> [dim] under <paramref name="scope"/>; <paramref name="addOne"/> for Gemma's <c>1 + w</c>.</summary>
    public RmsNorm(WeightScope scope, int dim, float eps, bool addOne)
    {
        _weight = scope.GetFloats("weight", dim);
        if (addOne) for (int i = 0; i < dim; i++) _weight[i] += 1f;
        _eps = eps;
    }

    /// <summary>y [n, dim] = norm(x [n, dim]); y may be x.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => ElementWise.RmsNorm(x, _weight, _eps, y);
}
