using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>SiglipEncoderLayer</c> / <c>CLIPEncoderLayer</c> (pre-LN; they differ only in the MLP's activation): <c>x += attn(LN1(x)); x += mlp(LN2(x))</c>.</summary>
public sealed class EncoderLayer(WeightScope scope, VisionConfig c, string traceName)
{
    readonly LayerNorm _layerNorm1 = new(scope.Sub("layer_norm1"), c.HiddenSize, c.LayerNormEps);
    readonly EncoderAttention _selfAttn = new(scope.Sub("self_attn"), c, traceName);
    readonly LayerNorm _layerNorm2 = new(scope.Sub("layer_norm2"), c.HiddenSize, c.LayerNormEps);
    readonly Mlp _mlp = new(scope.Sub("mlp"), c.HiddenSize, c.IntermediateSize, c.HiddenAct, traceName);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => _selfAttn.Linears().Concat(_mlp.Linears());

    /// <summary>
    /// Updates the residual stream x [n, d] in place: <paramref name="sequences"/> independent sequences of n / sequences
    /// rows each (a video's frames), which share every Linear's GEMM and attend only within themselves.
    /// </summary>
    public void Forward(Span<float> x, int n, ForwardContext ctx, int sequences = 1)
    {
        int len = n * c.HiddenSize;
        var normed = ctx.Scratch.Span(Slot.Normed, len);
        var h = ctx.Scratch.Span(Slot.BlockOut, len);
        _layerNorm1.Forward(x, normed);
        _selfAttn.Forward(normed, n, h, ctx, sequences);
        ElementWise.Add(x, h);
        _layerNorm2.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        ElementWise.Add(x, h);
    }
}
