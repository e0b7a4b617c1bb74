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
    // A channels-last kernel taken into HF's order (pinned: the Linear reads it by address).
    readonly float[]? _reordered;

    /// <summary>
    /// Loads <c>weight</c> [d, C, p, p] (and <c>bias</c> [d] when <paramref name="bias"/>) under <paramref name="scope"/>;
    /// a kernel stored channels-last, [d, p, p, C], as mlx-vlm converts it, is reordered once into a float32 copy.
    /// </summary>
    public unsafe PatchEmbedding(WeightScope scope, int hidden, int channels, int patch, int grid, bool bias)
    {
        long k = (long)channels * patch * patch;
        var stored = scope.Find("weight");
        StoredTensor w;
        if (stored != null && channels != patch && stored.Shape.AsSpan().SequenceEqual(new long[] { hidden, patch, patch, channels })
            && stored.DType is DType.F32 or DType.BF16 or DType.F16)
        {
            _reordered = GC.AllocateUninitializedArray<float>(checked((int)(hidden * k)), pinned: true);
            var row = new float[k];
            for (int o = 0; o < hidden; o++)
            {
                stored.ReadFloats(o * k, row);
                for (int y = 0; y < patch; y++)
                    for (int x = 0; x < patch; x++)
                        for (int c = 0; c < channels; c++) _reordered[o * k + (c * patch + y) * patch + x] = row[(y * patch + x) * channels + c];
            }
            fixed (float* p = _reordered) w = new StoredTensor(stored.Name, DType.F32, [hidden, channels, patch, patch], (byte*)p, _reordered.Length * 4L);
        }
        else w = scope.Get("weight", hidden, channels, patch, patch);
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
