using PureVlm.Formats;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>
/// HF <c>CLIPVisionEmbeddings</c>: <c>class_embedding</c> prepended to the patch conv's rows (the conv has no bias),
/// plus the learned position embedding of P + 1 rows (row 0 is the class token's).
/// </summary>
public sealed class ClipVisionEmbeddings(WeightScope scope, VisionConfig c)
{
    readonly float[] _classEmbedding = scope.GetFloats("class_embedding", c.HiddenSize);
    readonly PatchEmbedding _patchEmbedding = new(scope.Sub("patch_embedding"), c.HiddenSize, c.NumChannels, c.PatchSize, c.GridSize, bias: false);
    readonly float[] _positionEmbedding = scope.Sub("position_embedding").GetFloats("weight", c.NumPatches + 1, c.HiddenSize); // [P + 1, d]

    /// <summary>pixels [C, S, S] → x [P + 1, d].</summary>
    public void Forward(ReadOnlySpan<float> pixels, Span<float> x, ForwardContext ctx)
    {
        _classEmbedding.CopyTo(x);
        _patchEmbedding.Forward(pixels, x[c.HiddenSize..], ctx);
        ElementWise.Add(x[.._positionEmbedding.Length], _positionEmbedding);
    }
}
