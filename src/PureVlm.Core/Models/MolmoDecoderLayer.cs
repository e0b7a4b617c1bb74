using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>MolmoSequentialBlock</c> (<c>model.transformer.blocks.N</c>), a Qwen2 layer under OLMo's names:
/// <c>x += attn_out(attn(att_proj(attn_norm(x))))</c> with q/k/v fused in <c>att_proj</c> (biased),
/// <c>x += ff_out(silu(gate) · up)</c> with <c>[up; gate] = ff_proj(ff_norm(x))</c>; RMSNorm with <c>w</c>.
/// </summary>
public sealed class MolmoDecoderLayer(WeightScope scope, TextConfig c, string traceName) : IDecoderLayer
{
    readonly RmsNorm _attnNorm = new(scope.Sub("attn_norm"), c.HiddenSize, c.RmsNormEps, addOne: false);
    readonly DecoderAttention _attention = DecoderAttention.FusedQkv(scope, c, "att_proj", "attn_out", traceName);
    readonly RmsNorm _ffNorm = new(scope.Sub("ff_norm"), c.HiddenSize, c.RmsNormEps, addOne: false);
    readonly GatedMlp _mlp = GatedMlp.FusedUpGate(scope, c.HiddenSize, c.IntermediateSize, c.HiddenAct, traceName, "ff_proj", "ff_out");

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => _attention.Linears().Concat(_mlp.Linears());

    /// <inheritdoc/>
    public void Forward(Span<float> x, int n, ReadOnlySpan<int> positions, KvCache.LayerCache cache, int prefixLength, ForwardContext ctx)
    {
        var normed = ctx.Scratch.Span(Slot.Normed, n * c.HiddenSize);
        var h = ctx.Scratch.Span(Slot.BlockOut, n * c.HiddenSize);
        _attnNorm.Forward(x, normed);
        _attention.Forward(normed, n, positions, cache, prefixLength, h, ctx);
        ElementWise.Add(x, h);
        _ffNorm.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        ElementWise.Add(x, h);
    }
}
