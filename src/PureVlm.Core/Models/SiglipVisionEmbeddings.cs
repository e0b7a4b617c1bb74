using PureVlm.Formats;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>HF <c>SiglipVisionEmbeddings</c>: the patch conv (with bias) plus the learned position embedding.</summary>
public sealed class SiglipVisionEmbeddings(WeightScope scope, VisionConfig c)
{
    readonly PatchEmbedding _patchEmbedding = new(scope.Sub("patch_embedding"), c.HiddenSize, c.NumChannels, c.PatchSize, c.GridSize, bias: true);
    readonly float[] _positionEmbedding = scope.Sub("position_embedding").GetFloats("weight", c.NumPatches, c.HiddenSize); // [P, d]

    /// <summary>pixels [C, S, S] → x [P, d].</summary>
    public void Forward(ReadOnlySpan<float> pixels, Span<float> x, ForwardContext ctx)
    {
        _patchEmbedding.Forward(pixels, x, ctx);
        ElementWise.Add(x[.._positionEmbedding.Length], _positionEmbedding);
    }
}
