using PureVlm.Formats;
using PureVlm.Kernels;
using PureVlm.Tensors;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>SiglipVisionEmbeddings</c>: a stride-14 conv (with bias) as a GEMM over im2col patches, flattened row-major over
/// the patch grid, plus the learned position embedding.
/// </summary>
public sealed class SiglipVisionEmbeddings
{
    readonly VisionConfig _c;
    readonly Linear _patchEmbedding;   // conv weight [d, C, p, p] viewed as [d, C·p·p], flattened (c, ky, kx) like im2col
    readonly float[] _positionEmbedding; // [P, d]

    /// <summary>Loads <c>patch_embedding.{weight,bias}</c> and <c>position_embedding.weight</c> under <paramref name="scope"/>.</summary>
    public unsafe SiglipVisionEmbeddings(WeightScope scope, VisionConfig c)
    {
        _c = c;
        int d = c.HiddenSize, p = c.PatchSize, ch = c.NumChannels;
        var conv = scope.Sub("patch_embedding");
        var w = conv.Get("weight", d, ch, p, p);
        var asMatrix = new StoredTensor(w.Name, w.DType, [d, (long)ch * p * p], w.Pointer, w.ByteLength);
        _patchEmbedding = new Linear(conv.Prefix, asMatrix, conv.GetFloats("bias", d));
        _positionEmbedding = scope.Sub("position_embedding").GetFloats("weight", c.NumPatches, d);
    }

    /// <summary>pixels [C, S, S] → x [P, d].</summary>
    public void Forward(ReadOnlySpan<float> pixels, Span<float> x, ForwardContext ctx)
    {
        int p = _c.PatchSize, grid = _c.GridSize, s = _c.ImageSize, ch = _c.NumChannels, k = ch * p * p;
        var patches = ctx.Scratch.Span(Slot.Patches, _c.NumPatches * k); // [P, C·p·p]
        for (int gy = 0; gy < grid; gy++)
            for (int gx = 0; gx < grid; gx++)
            {
                var row = patches.Slice((gy * grid + gx) * k, k);
                for (int c = 0; c < ch; c++)
                    for (int ky = 0; ky < p; ky++)
                        pixels.Slice((c * s + gy * p + ky) * s + gx * p, p).CopyTo(row.Slice((c * p + ky) * p, p));
            }
        _patchEmbedding.Forward(patches, _c.NumPatches, x, ctx);
        ElementWise.Add(x[.._positionEmbedding.Length], _positionEmbedding);
    }
}
