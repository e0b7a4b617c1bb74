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

    /// <summary>Loads <c>{q,k,v,out}_proj</c> under <paramref name="scope"/>; <paramref name="traceName"/> prefixes the attn_probs report.</summary>
    public EncoderAttention(WeightScope scope, VisionConfig c, string traceName)
    {
        int d = c.HiddenSize;
        _qProj = new Linear(scope.Sub("q_proj"), d, d, bias: true);
        _kProj = new Linear(scope.Sub("k_proj"), d, d, bias: true);
        _vProj = new Linear(scope.Sub("v_proj"), d, d, bias: true);
        _outProj = new Linear(scope.Sub("out_proj"), d, d, bias: true);
        _heads = c.NumAttentionHeads; _headDim = c.HeadDim;
        _scale = (float)(1.0 / Math.Sqrt(_headDim));
        _probsName = traceName + ".attn_probs";
        _outputName = traceName + ".attn_output";
    }

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_qProj, _kProj, _vProj, _outProj];

    /// <summary>
    /// y [n, d] = out_proj(attention(x [n, d])), each of <paramref name="sequences"/> equal blocks of rows attending only
    /// within itself; attn_probs are reported as [heads, s, s] for one sequence, [sequences, heads, s, s] for several.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx, int sequences = 1)
    {
        int d = _heads * _headDim, s = n / sequences;
        if (s * sequences != n) throw new ArgumentException($"{n} rows do not split into {sequences} sequences", nameof(sequences));
        var q = ctx.Scratch.Span(Slot.Q, n * d); // [n, heads, head_dim]
        var k = ctx.Scratch.Span(Slot.K, n * d);
        var v = ctx.Scratch.Span(Slot.V, n * d);
        var o = ctx.Scratch.Span(Slot.AttnOut, n * d);
        _qProj.Forward(x, n, q, ctx);
        _kProj.Forward(x, n, k, ctx);
        _vProj.Forward(x, n, v, ctx);
        bool wantsProbs = ctx.WantsProbs;
        int probsPer = _heads * s * s;
        var probs = wantsProbs ? ctx.Scratch.Span(Slot.Probs, sequences * probsPer) : default; // [sequences, heads, s, s]
        for (int b = 0; b < sequences; b++)
        {
            int rows = b * s * d;
            Attention.Compute(q.Slice(rows, s * d), k.Slice(rows, s * d), v.Slice(rows, s * d), o.Slice(rows, s * d), s, s, _heads, _heads, _headDim,
                _scale, 0, AttentionMask.Full, wantsProbs ? probs.Slice(b * probsPer, probsPer) : default);
        }
        if (wantsProbs && sequences == 1) ctx.Report(_probsName, ctx.Scratch.Get(Slot.Probs, 0), _heads, s, s);
        else if (wantsProbs) ctx.Report(_probsName, ctx.Scratch.Get(Slot.Probs, 0), sequences, _heads, s, s);
        if (ctx.WantsAttentionOutputs) ctx.Report(_outputName, ctx.Scratch.Get(Slot.AttnOut, 0), sequences, s, d);
        _outProj.Forward(o, n, y, ctx);
    }
}
