using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>HF <c>GemmaRMSNorm</c>: <c>x · rsqrt(mean(x²) + eps) · (1 + w)</c> in float32 (the 1 + w is Gemma's, not w).</summary>
public sealed class GemmaRmsNorm(WeightScope scope, int dim, float eps)
{
    readonly float[] _weight = scope.GetFloats("weight", dim);

    /// <summary>y [n, dim] = norm(x [n, dim]); y may be x.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => ElementWise.RmsNorm(x, _weight, eps, y);
}
