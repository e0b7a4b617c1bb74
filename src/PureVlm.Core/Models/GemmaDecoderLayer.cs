using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaDecoderLayer</c>, <c>Gemma2DecoderLayer</c> and <c>Gemma3DecoderLayer</c>. Gemma 1:
/// <c>x += attn(input_ln(x)); x += mlp(post_attention_ln(x))</c> (its <c>post_attention_layernorm</c> is the pre-MLP norm).
/// Gemma 2 and 3 normalise each block's output too:
/// <c>x += post_attention_ln(attn(input_ln(x))); x += post_feedforward_ln(mlp(pre_feedforward_ln(x)))</c>; Gemma 3's
/// attention adds QK-norm, and its sliding layers use <c>rope_local_base_freq</c> while its global ones use
/// <c>rope_theta</c> with the linear <c>rope_scaling</c>.
/// </summary>
public sealed class GemmaDecoderLayer : IDecoderLayer
{
    readonly int _hidden;
    readonly RmsNorm _inputLayernorm;
    readonly DecoderAttention _selfAttn;
    readonly RmsNorm? _postAttentionLayernorm; // Gemma 2 and 3 only
    readonly RmsNorm _preMlpLayernorm;         // Gemma 1: post_attention_layernorm; Gemma 2, 3: pre_feedforward_layernorm
    readonly GatedMlp _mlp;
    readonly RmsNorm? _postFeedforwardLayernorm; // Gemma 2 and 3 only

    /// <summary>Loads decoder layer <paramref name="layerIdx"/> under <paramref name="scope"/> (<c>…layers.N</c>).</summary>
    public GemmaDecoderLayer(WeightScope scope, TextConfig c, int layerIdx, string traceName)
    {
        _hidden = c.HiddenSize;
        float eps = c.RmsNormEps;
        _inputLayernorm = new RmsNorm(scope.Sub("input_layernorm"), _hidden, eps, addOne: true);
        // Gemma 2 and 3 scale scores by query_pre_attn_scalar^-0.5, may soft-cap them, and slide a window on some layers.
        bool sandwich = c.IsGemma2 || c.IsGemma3, sliding = c.IsSlidingLayer(layerIdx);
        // Gemma 3: local layers keep HF's default RoPE at their own base; only global layers take rope_scaling.
        float ropeTheta = c.IsGemma3 && sliding ? c.RopeLocalBaseFreq : c.RopeTheta;
        float ropeScaling = c.IsGemma3 && !sliding ? c.RopeScalingFactor : 1f;
        _selfAttn = new DecoderAttention(scope.Sub("self_attn"), c,
            scale: (float)(1.0 / Math.Sqrt(sandwich ? c.QueryPreAttnScalar : c.HeadDim)),
            softCap: sandwich ? c.AttnLogitSoftcapping : 0,
            window: sliding ? c.SlidingWindow : int.MaxValue, traceName,
            ropeTheta, ropeScaling, qkNorm: c.IsGemma3);
        _mlp = new GatedMlp(scope.Sub("mlp"), _hidden, c.IntermediateSize, c.HiddenAct, bias: false, traceName);
        var postAttention = new RmsNorm(scope.Sub("post_attention_layernorm"), _hidden, eps, addOne: true);
        if (sandwich)
        {
            _postAttentionLayernorm = postAttention;
            _preMlpLayernorm = new RmsNorm(scope.Sub("pre_feedforward_layernorm"), _hidden, eps, addOne: true);
            _postFeedforwardLayernorm = new RmsNorm(scope.Sub("post_feedforward_layernorm"), _hidden, eps, addOne: true);
        }
        else _preMlpLayernorm = postAttention;
    }

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => _selfAttn.Linears().Concat(_mlp.Linears());

    /// <inheritdoc/>
    public void Forward(Span<float> x, int n, ReadOnlySpan<int> positions, SequenceBatch sequences, int layer, ForwardContext ctx)
    {
        var normed = ctx.Scratch.Span(Slot.Normed, n * _hidden);
        var h = ctx.Scratch.Span(Slot.BlockOut, n * _hidden);
        _inputLayernorm.Forward(x, normed);
        _selfAttn.Forward(normed, n, positions, sequences, layer, h, ctx);
        _postAttentionLayernorm?.Forward(h, h);
        ElementWise.Add(x, h);
        _preMlpLayernorm.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        _postFeedforwardLayernorm?.Forward(h, h);
        ElementWise.Add(x, h);
    }
}
