using System.Numerics.Tensors;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>
/// HF <c>Gemma3MultiModalProjector</c>: the patch grid average-pooled with kernel = patches per side / sqrt(tokens per
/// image), then <c>mm_soft_emb_norm</c> (RMSNorm, <c>1 + w</c>, the vision tower's eps) and <c>x @ mm_input_projection_weight</c>.
/// The projection is a bare parameter stored [vision hidden, text hidden], not an <c>nn.Linear</c>, so no adapter attaches to it.
/// </summary>
public sealed class Gemma3MultiModalProjector
{
    readonly RmsNorm _softEmbNorm;
    readonly float[] _projection; // [vision hidden, text hidden]
    readonly int _visionHidden, _textHidden, _gridSide, _kernel;

    /// <summary>Loads the norm and the projection under <paramref name="scope"/> (<c>…multi_modal_projector</c>).</summary>
    public Gemma3MultiModalProjector(WeightScope scope, int visionHidden, int textHidden, int gridSide, int tokensPerImage, float eps)
    {
        (_visionHidden, _textHidden, _gridSide) = (visionHidden, textHidden, gridSide);
        _kernel = gridSide / (int)Math.Round(Math.Sqrt(tokensPerImage));
        _softEmbNorm = new RmsNorm(scope.Sub("mm_soft_emb_norm"), visionHidden, eps, addOne: true);
        _projection = scope.GetFloats("mm_input_projection_weight", visionHidden, textHidden);
    }

    /// <summary>Pooled tokens per image.</summary>
    public int Tokens => (_gridSide / _kernel) * (_gridSide / _kernel);

    /// <summary>
    /// y [tokens, text hidden] = projector(x [patches, vision hidden]); reports <c>projector.pooled</c> and <c>projector.normed</c>.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, Span<float> y, ForwardContext ctx)
    {
        int side = _gridSide / _kernel, d = _visionHidden, t = Tokens;
        var pooled = new float[t * d];
        // Patch p sits at row p / grid, column p % grid; each output cell sums its kernel² patches row by row, as
        // avg_pool2d does, then divides by their count.
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++)
            {
                var cell = pooled.AsSpan((r * side + c) * d, d);
                for (int dr = 0; dr < _kernel; dr++)
                    for (int dc = 0; dc < _kernel; dc++)
                        ElementWise.Add(cell, x.Slice(((r * _kernel + dr) * _gridSide + c * _kernel + dc) * d, d));
                TensorPrimitives.Divide(cell, _kernel * _kernel, cell);
            }
        ctx.Report("projector.pooled", pooled, 1, t, d);
        _softEmbNorm.Forward(pooled, pooled);
        ctx.Report("projector.normed", pooled, 1, t, d);
        var output = y[..(t * _textHidden)];
        output.Clear();
        Gemm.MatMulAccumulate(pooled, d, _projection, _textHidden, output, _textHidden, t, _textHidden, d);
    }
}
