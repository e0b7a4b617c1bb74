using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>The module names inside a pre-LN ViT block: HF's (<see cref="Hf"/>) or Molmo's <c>ResidualAttentionBlock</c> (<see cref="Molmo"/>).</summary>
public sealed record EncoderLayerNames(string Norm1, string Attention, string Q, string K, string V, string Out, string Norm2, string Mlp, string Fc1, string Fc2)
{
    /// <summary>HF <c>SiglipEncoderLayer</c> / <c>CLIPEncoderLayer</c>.</summary>
    public static readonly EncoderLayerNames Hf = new("layer_norm1", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj", "layer_norm2", "mlp", "fc1", "fc2");
    /// <summary>Molmo's <c>image_vit.transformer.resblocks.N</c> (the same block under allenai/molmo's names).</summary>
    public static readonly EncoderLayerNames Molmo = new("attention_norm", "attention", "wq", "wk", "wv", "wo", "ffn_norm", "feed_forward", "w1", "w2");
}

/// <summary>
/// HF <c>SiglipEncoderLayer</c> / <c>CLIPEncoderLayer</c> (pre-LN; they differ only in the MLP's activation): <c>x += attn(LN1(x)); x += mlp(LN2(x))</c>.
/// <paramref name="names"/> (default <see cref="EncoderLayerNames.Hf"/>) names its modules in the checkpoint.
/// </summary>
public sealed class EncoderLayer(WeightScope scope, VisionConfig c, string traceName, EncoderLayerNames? names = null)
{
    static EncoderLayerNames N(EncoderLayerNames? names) => names ?? EncoderLayerNames.Hf;
    readonly LayerNorm _layerNorm1 = new(scope.Sub(N(names).Norm1), c.HiddenSize, c.LayerNormEps);
    readonly EncoderAttention _selfAttn = new(scope.Sub(N(names).Attention), c, traceName, N(names));
    readonly LayerNorm _layerNorm2 = new(scope.Sub(N(names).Norm2), c.HiddenSize, c.LayerNormEps);
    readonly Mlp _mlp = new(scope.Sub(N(names).Mlp), c.HiddenSize, c.IntermediateSize, c.HiddenAct, traceName, N(names).Fc1, N(names).Fc2);

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
