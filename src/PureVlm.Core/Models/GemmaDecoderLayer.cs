using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaDecoderLayer</c> and <c>Gemma2DecoderLayer</c>. Gemma 1: <c>x += attn(input_ln(x)); x += mlp(post_attention_ln(x))</c>
/// (its <c>post_attention_layernorm</c> is the pre-MLP norm). Gemma 2 normalises each block's output too:
/// <c>x += post_attention_ln(attn(input_ln(x))); x += post_feedforward_ln(mlp(pre_feedforward_ln(x)))</c>.
/// </summary>
public sealed class GemmaDecoderLayer
{
    readonly int _hidden;
    readonly GemmaRmsNorm _inputLayernorm;
    readonly GemmaAttention _selfAttn;
    readonly GemmaRmsNorm? _postAttentionLayernorm; // Gemma 2 only
    readonly GemmaRmsNorm _preMlpLayernorm;         // Gemma 1: post_attention_layernorm; Gemma 2: pre_feedforward_layernorm
    readonly GemmaMlp _mlp;
    readonly GemmaRmsNorm? _postFeedforwardLayernorm; // Gemma 2 only

    /// <summary>Loads decoder layer <paramref name="layerIdx"/> under <paramref name="scope"/> (<c>…layers.N</c>).</summary>
    public GemmaDecoderLayer(WeightScope scope, TextConfig c, int layerIdx, string traceName)
    {
        _hidden = c.HiddenSize;
        float eps = c.RmsNormEps;
        _inputLayernorm = new GemmaRmsNorm(scope.Sub("input_layernorm"), _hidden, eps);
        _selfAttn = new GemmaAttention(scope.Sub("self_attn"), c, layerIdx, traceName);
        _mlp = new GemmaMlp(scope.Sub("mlp"), c, traceName);
        var postAttention = new GemmaRmsNorm(scope.Sub("post_attention_layernorm"), _hidden, eps);
        if (c.IsGemma2)
        {
            _postAttentionLayernorm = postAttention;
            _preMlpLayernorm = new GemmaRmsNorm(scope.Sub("pre_feedforward_layernorm"), _hidden, eps);
            _postFeedforwardLayernorm = new GemmaRmsNorm(scope.Sub("post_feedforward_layernorm"), _hidden, eps);
        }
        else _preMlpLayernorm = postAttention;
    }

    /// <summary>Updates the residual stream x [n, hidden] in place for n new tokens.</summary>
    public void Forward(Span<float> x, int n, ReadOnlySpan<int> positions, KvCache.LayerCache cache, int prefixLength, ForwardContext ctx)
    {
        var normed = ctx.Scratch.Span(Slot.Normed, n * _hidden);
        var h = ctx.Scratch.Span(Slot.BlockOut, n * _hidden);
        _inputLayernorm.Forward(x, normed);
        _selfAttn.Forward(normed, n, positions, cache, prefixLength, h, ctx);
        _postAttentionLayernorm?.Forward(h, h);
        ElementWise.Add(x, h);
        _preMlpLayernorm.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        _postFeedforwardLayernorm?.Forward(h, h);
        ElementWise.Add(x, h);
    }
}
