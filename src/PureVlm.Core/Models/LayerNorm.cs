using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>HF <c>nn.LayerNorm</c> with weight and bias (SigLIP, CLIP).</summary>
public sealed class LayerNorm(WeightScope scope, int dim, float eps)
{
    readonly float[] _weight = scope.GetFloats("weight", dim);
    readonly float[] _bias = scope.GetFloats("bias", dim);

    /// <summary>y [n, dim] = LN(x [n, dim]); y may be x.</summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y) => ElementWise.LayerNorm(x, _weight, _bias, eps, y);
}
