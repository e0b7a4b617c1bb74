using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>SiglipAttention</c> / <c>CLIPAttention</c>: multi-head self-attention with biased q/k/v/out projections, no mask, scale head_dim^-0.5.</summary>
public sealed class EncoderAttention
{
    readonly Linear _qProj, _kProj, _vProj, _outProj;
    readonly int _heads, _headDim;
    readonly float _scale;
    readonly string _probsName, _outputName;

    /// <summary>
    /// Loads <c>{q,k,v,out}_proj</c> (or the projections <paramref name="names"/> gives) under <paramref name="scope"/>;
    /// <paramref name="traceName"/> prefixes the attn_probs report.
    /// </summary>
    public EncoderAttention(WeightScope scope, VisionConfig c, string traceName, EncoderLayerNames? names = null)
    {
        int d = c.HiddenSize;
        names ??= EncoderLayerNames.Hf;
        _qProj = new Linear(scope.Sub(names.Q), d, d, bias: true);
        _kProj = new Linear(scope.Sub(names.K), d, d, bias: true);
        _vProj = new Linear(scope.Sub(names.V), d, d, bias: true);
        _outProj = new Linear(scope.Sub(names.Out), d, d, bias: true);
        _heads = c.NumAttentionHeads; _headDim = c.HeadDim;
        _scale = (float)(1.0 / Math.Sqrt(_headDim));
        _probsName = traceName + ".attn_probs";
        _outputName = traceName + ".attn_output";
    }

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_qProj, _kProj, _vProj, _outProj];

    /// <summary>
    /// y [n, d] = out_proj(attention(x [n, d])); with <paramref name="sequences"/> &gt; 1 the rows are that many equal
    /// sequences, each attending only to itself (probabilities then report as [sequences · heads, len, len]).
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx, int sequences = 1)
    {
        if (sequences <= 0 || n % sequences != 0) throw new ArgumentException($"{n} rows do not split into {sequences} equal sequences", nameof(sequences));
        int d = _heads * _headDim;
        var q = ctx.Scratch.Span(Slot.Q, n * d); // [n, heads, head_dim]
        var k = ctx.Scratch.Span(Slot.K, n * d);
        var v = ctx.Scratch.Span(Slot.V, n * d);
        var o = ctx.Scratch.Span(Slot.AttnOut, n * d);
        _qProj.Forward(x, n, q, ctx);
        _kProj.Forward(x, n, k, ctx);
        _vProj.Forward(x, n, v, ctx);
        bool wantsProbs = ctx.WantsProbs;
        int len = n / sequences, rows = len * d;
        var probs = wantsProbs ? ctx.Scratch.Span(Slot.Probs, sequences * _heads * len * len) : default; // [sequences, heads, len, len]
        for (int s = 0; s < sequences; s++)
            Attention.Compute(q.Slice(s * rows, rows), k.Slice(s * rows, rows), v.Slice(s * rows, rows), o.Slice(s * rows, rows),
                len, len, _heads, _heads, _headDim, _scale, 0, AttentionMask.Full,
                wantsProbs ? probs.Slice(s * _heads * len * len, _heads * len * len) : default);
        if (wantsProbs) ctx.Report(_probsName, ctx.Scratch.Get(Slot.Probs, 0), sequences * _heads, len, len);
        if (ctx.WantsAttentionOutputs) ctx.Report(_outputName, ctx.Scratch.Get(Slot.AttnOut, 0), 1, n, d);
        _outProj.Forward(o, n, y, ctx);
    }
}
