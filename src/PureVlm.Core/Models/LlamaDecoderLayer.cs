using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>LlamaDecoderLayer</c>: <c>x += attn(input_ln(x)); x += mlp(post_attention_ln(x))</c>, SwiGLU MLP, scale head_dim^-0.5.</summary>
public sealed class LlamaDecoderLayer(WeightScope scope, TextConfig c, string traceName) : IDecoderLayer
{
    readonly RmsNorm _inputLayernorm = new(scope.Sub("input_layernorm"), c.HiddenSize, c.RmsNormEps, addOne: false);
    readonly DecoderAttention _selfAttn = new(scope.Sub("self_attn"), c, (float)(1.0 / Math.Sqrt(c.HeadDim)), softCap: 0, window: int.MaxValue, traceName);
    readonly RmsNorm _postAttentionLayernorm = new(scope.Sub("post_attention_layernorm"), c.HiddenSize, c.RmsNormEps, addOne: false);
    readonly GatedMlp _mlp = new(scope.Sub("mlp"), c.HiddenSize, c.IntermediateSize, c.HiddenAct, c.MlpBias, traceName);

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => _selfAttn.Linears().Concat(_mlp.Linears());

    /// <inheritdoc/>
    public void Forward(Span<float> x, int n, ReadOnlySpan<int> positions, KvCache.LayerCache cache, AttentionMask mask, ForwardContext ctx)
    {
        var normed = ctx.Scratch.Span(Slot.Normed, n * c.HiddenSize);
        var h = ctx.Scratch.Span(Slot.BlockOut, n * c.HiddenSize);
        _inputLayernorm.Forward(x, normed);
        _selfAttn.Forward(normed, n, positions, cache, mask, h, ctx);
        ElementWise.Add(x, h);
        _postAttentionLayernorm.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        ElementWise.Add(x, h);
    }
}
