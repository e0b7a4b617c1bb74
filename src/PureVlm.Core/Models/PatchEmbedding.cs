using PureVlm.Tensors;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// A ViT's <c>patch_embedding</c>: a conv whose stride equals its kernel, computed as one GEMM over im2col patches
/// (the weight [d, C, p, p] viewed as [d, C·p·p], flattened (c, ky, kx) like the patches), rows in row-major grid order.
/// </summary>
public sealed class PatchEmbedding
{
    readonly Linear _conv;
    readonly int _channels, _patch, _grid;

    /// <summary>Loads <c>weight</c> [d, C, p, p] (and <c>bias</c> [d] when <paramref name="bias"/>) under <paramref name="scope"/>.</summary>
    public unsafe PatchEmbedding(WeightScope scope, int hidden, int channels, int patch, int grid, bool bias)
    {
        long k = (long)channels * patch * patch;
        var w = scope.GetConvKernel("weight", hidden, channels, patch);
        var asMatrix = new StoredTensor(w.Name, w.DType, [hidden, k], w.Pointer, w.ByteLength);
        _conv = new Linear(scope.Prefix, asMatrix, bias ? scope.GetFloats("bias", hidden) : null);
        (_channels, _patch, _grid) = (channels, patch, grid);
    }

    /// <summary>pixels [C, S, S] with S = grid · patch → x [grid², d].</summary>
    public void Forward(ReadOnlySpan<float> pixels, Span<float> x, ForwardContext ctx)
    {
        int p = _patch, grid = _grid, s = grid * p, k = _channels * p * p;
        var patches = ctx.Scratch.Span(Slot.Patches, grid * grid * k); // [P, C·p·p]
        for (int gy = 0; gy < grid; gy++)
            for (int gx = 0; gx < grid; gx++)
            {
                var row = patches.Slice((gy * grid + gx) * k, k);
                for (int c = 0; c < _channels; c++)
                    for (int ky = 0; ky < p; ky++)
                        pixels.Slice((c * s + gy * p + ky) * s + gx * p, p).CopyTo(row.Slice((c * p + ky) * p, p));
            }
        _conv.Forward(patches, grid * grid, x, ctx);
    }
}
