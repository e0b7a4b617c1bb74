using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>LlamaDecoderLayer</c>: <c>x += attn(input_ln(x)); x += mlp(post_attention_ln(x))</c>, SwiGLU MLP, scale head_dim^-0.5.
/// Qwen2's layer is the same with q/k/v biases, and so is Molmo's block under other names (<see cref="MolmoDecoderLayer"/>).
/// </summary>
public sealed class LlamaDecoderLayer : IDecoderLayer
{
    readonly RmsNorm _inputLayernorm, _postAttentionLayernorm;
    readonly DecoderAttention _selfAttn;
    readonly GatedMlp _mlp;
    readonly int _hidden;

    /// <summary>Loads the layer under <paramref name="scope"/> (<c>layers.N</c>) with HF's module names.</summary>
    public LlamaDecoderLayer(WeightScope scope, TextConfig c, string traceName)
        : this(c, new RmsNorm(scope.Sub("input_layernorm"), c.HiddenSize, c.RmsNormEps, addOne: false),
            new DecoderAttention(scope.Sub("self_attn"), c, (float)(1.0 / Math.Sqrt(c.HeadDim)), softCap: 0, window: int.MaxValue, traceName),
            new RmsNorm(scope.Sub("post_attention_layernorm"), c.HiddenSize, c.RmsNormEps, addOne: false),
            new GatedMlp(scope.Sub("mlp"), c.HiddenSize, c.IntermediateSize, c.HiddenAct, c.MlpBias, traceName)) { }

    /// <summary>The layer from its four parts, however the checkpoint names them.</summary>
    internal LlamaDecoderLayer(TextConfig c, RmsNorm inputLayernorm, DecoderAttention selfAttn, RmsNorm postAttentionLayernorm, GatedMlp mlp)
    {
        (_inputLayernorm, _selfAttn, _postAttentionLayernorm, _mlp, _hidden) = (inputLayernorm, selfAttn, postAttentionLayernorm, mlp, c.HiddenSize);
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
        ElementWise.Add(x, h);
        _postAttentionLayernorm.Forward(x, normed);
        _mlp.Forward(normed, n, h, ctx);
        ElementWise.Add(x, h);
    }
}
