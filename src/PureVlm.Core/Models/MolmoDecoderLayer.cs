using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>MolmoSequentialBlock</c> (<c>model.transformer.blocks.N</c>): a Qwen2 layer under OLMo's names —
/// <c>x += attn_out(attn(att_proj(attn_norm(x))))</c> with q/k/v fused in <c>att_proj</c> (biased, rows [q; k; v]),
/// <c>x += ff_out(silu(gate) · up)</c> with <c>[up; gate] = ff_proj(ff_norm(x))</c>; RMSNorm with <c>w</c>.
/// </summary>
public static class MolmoDecoderLayer
{
    /// <summary>Loads block <paramref name="scope"/> as the <see cref="LlamaDecoderLayer"/> it computes.</summary>
    public static IDecoderLayer Load(WeightScope scope, TextConfig c, string traceName) => new LlamaDecoderLayer(c,
        new RmsNorm(scope.Sub("attn_norm"), c.HiddenSize, c.RmsNormEps, addOne: false),
        DecoderAttention.FusedQkv(scope, c, "att_proj", "attn_out", traceName),
        new RmsNorm(scope.Sub("ff_norm"), c.HiddenSize, c.RmsNormEps, addOne: false),
        GatedMlp.FusedUpGate(scope, c.HiddenSize, c.IntermediateSize, c.HiddenAct, traceName, "ff_proj", "ff_out"));
}
