using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// The self-attention of HF's decoders (<c>LlamaAttention</c>, <c>GemmaAttention</c>, <c>Gemma2Attention</c>,
/// <c>Gemma3Attention</c>): q/k/v/o, RoPE (rotate_half), grouped KV heads, KV cache. What differs between them is passed
/// in: the score scale, an optional logit soft-cap (0 = off), an optional sliding window, and Gemma 3's per-layer RoPE
/// base, linear RoPE scaling and QK-norm. Molmo fuses q/k/v into one Linear (<see cref="FusedQkv"/>).
/// </summary>
public sealed class DecoderAttention
{
    // Either q, k and v, or one Linear whose output rows are [q; k; v].
    readonly Linear? _qProj, _kProj, _vProj, _qkvProj;
    readonly Linear _oProj;
    readonly int _heads, _kvHeads, _headDim;
    readonly float _scale, _softCap, _ropeTheta, _ropeScaling;
    readonly RmsNorm? _qNorm, _kNorm;
    readonly int _window;
    readonly string _probsName, _outputName;

    /// <summary>
    /// Loads <c>{q,k,v,o}_proj</c> under <paramref name="scope"/>, all four with a bias when <c>attention_bias</c> (as
    /// LlamaAttention). RoPE uses <paramref name="ropeTheta"/> (default <c>rope_theta</c>) with its frequencies divided by
    /// <paramref name="ropeScaling"/> (linear scaling; 1 = none). <paramref name="qkNorm"/> loads <c>q_norm</c> / <c>k_norm</c>
    /// (RMSNorm over head_dim with <c>1 + w</c>, applied per head before RoPE, as Gemma 3).
    /// </summary>
    public DecoderAttention(WeightScope scope, TextConfig c, float scale, float softCap, int window, string traceName,
        float? ropeTheta = null, float ropeScaling = 1f, bool qkNorm = false)
    {
        _heads = c.NumAttentionHeads; _kvHeads = c.NumKeyValueHeads; _headDim = c.HeadDim;
        _qProj = new Linear(scope.Sub("q_proj"), c.HiddenSize, _heads * _headDim, c.AttentionBias);
        _kProj = new Linear(scope.Sub("k_proj"), c.HiddenSize, _kvHeads * _headDim, c.AttentionBias);
        _vProj = new Linear(scope.Sub("v_proj"), c.HiddenSize, _kvHeads * _headDim, c.AttentionBias);
        _oProj = new Linear(scope.Sub("o_proj"), _heads * _headDim, c.HiddenSize, c.AttentionBias);
        (_scale, _softCap, _window, _ropeTheta, _ropeScaling) = (scale, softCap, window, ropeTheta ?? c.RopeTheta, ropeScaling);
        if (qkNorm)
        {
            _qNorm = new RmsNorm(scope.Sub("q_norm"), _headDim, c.RmsNormEps, addOne: true);
            _kNorm = new RmsNorm(scope.Sub("k_norm"), _headDim, c.RmsNormEps, addOne: true);
        }
        _probsName = traceName + ".attn_probs";
        _outputName = traceName + ".attn_output";
    }

    DecoderAttention(WeightScope scope, TextConfig c, string qkv, string o, string traceName)
    {
        _heads = c.NumAttentionHeads; _kvHeads = c.NumKeyValueHeads; _headDim = c.HeadDim;
        _qkvProj = new Linear(scope.Sub(qkv), c.HiddenSize, (_heads + 2 * _kvHeads) * _headDim, c.AttentionBias);
        _oProj = new Linear(scope.Sub(o), _heads * _headDim, c.HiddenSize, bias: false);
        (_scale, _softCap, _window, _ropeTheta, _ropeScaling) = ((float)(1.0 / Math.Sqrt(_headDim)), 0, int.MaxValue, c.RopeTheta, 1f);
        _probsName = traceName + ".attn_probs";
        _outputName = traceName + ".attn_output";
    }

    /// <summary>
    /// Molmo's attention: <paramref name="qkv"/> [(heads + 2·kv_heads)·head_dim, hidden] holds q's rows, then k's, then v's
    /// (bias when <c>attention_bias</c>), <paramref name="o"/> has no bias; scale head_dim^-0.5, no soft-cap, no window.
    /// </summary>
    public static DecoderAttention FusedQkv(WeightScope scope, TextConfig c, string qkv, string o, string traceName) => new(scope, c, qkv, o, traceName);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => _qkvProj != null ? [_qkvProj, _oProj] : [_qProj!, _kProj!, _vProj!, _oProj];

    /// <summary>
    /// y [n, hidden] = o_proj(attention(x [n, hidden])) for the n new rows of <paramref name="sequences"/> at RoPE
    /// <paramref name="positions"/>: the projections run once over all rows, then each sequence appends its rows' K/V to its
    /// own cache of decoder layer <paramref name="layer"/> and attends over it alone, with its mask
    /// (<see cref="SequenceBatch.Mask"/>) plus this layer's window.
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, ReadOnlySpan<int> positions, SequenceBatch sequences, int layer, Span<float> y, ForwardContext ctx)
    {
        int qDim = _heads * _headDim, kvDim = _kvHeads * _headDim;
        var q = ctx.Scratch.Span(Slot.Q, n * qDim);  // [n, heads, head_dim]
        var k = ctx.Scratch.Span(Slot.K, n * kvDim); // [n, kv_heads, head_dim]
        var v = ctx.Scratch.Span(Slot.V, n * kvDim);
        if (_qkvProj != null) ProjectFused(x, n, q, k, v, ctx);
        else
        {
            _qProj!.Forward(x, n, q, ctx);
            _kProj!.Forward(x, n, k, ctx);
            _vProj!.Forward(x, n, v, ctx);
        }
        _qNorm?.Forward(q, q); // rows of head_dim: one norm per head
        _kNorm?.Forward(k, k);
        ElementWise.Rope(q, n, _heads, _headDim, positions, _ropeTheta, _ropeScaling);
        ElementWise.Rope(k, n, _kvHeads, _headDim, positions, _ropeTheta, _ropeScaling);

        var o = ctx.Scratch.Span(Slot.AttnOut, n * qDim);
        bool wantsProbs = ctx.WantsProbs;
        for (int s = 0; s < sequences.Count; s++)
        {
            var kv = sequences.Cache(s);
            var cache = kv[layer];
            int r0 = sequences.Start(s), rows = sequences.Rows(s);
            var mask = sequences.Mask(s);
            if (mask.QueryStart != cache.Length)
                throw new ArgumentException($"sequence {s}'s mask queries start at {mask.QueryStart}, its cache holds {cache.Length} tokens", nameof(sequences));
            cache.Append(k[(r0 * kvDim)..], v[(r0 * kvDim)..], rows);
            int nk = cache.Length;
            mask = mask with { Window = _window };
            // Probabilities are an observer's, and an observer watches one request: DecoderModel refuses observers on batches.
            var probs = wantsProbs ? ctx.Scratch.Span(Slot.Probs, _heads * rows * nk) : default; // [heads, rows, nk]
            Attention.Compute(q.Slice(r0 * qDim, rows * qDim), cache.Keys, cache.Values, o.Slice(r0 * qDim, rows * qDim),
                rows, nk, _heads, _kvHeads, _headDim, _scale, _softCap, mask, probs);
            if (wantsProbs) ctx.Report(_probsName, ctx.Scratch.Get(Slot.Probs, 0), _heads, rows, nk);
        }
        if (ctx.WantsAttentionOutputs) ctx.Report(_outputName, ctx.Scratch.Get(Slot.AttnOut, 0), 1, n, qDim);
        _oProj.Forward(o, n, y, ctx);
    }

    /// <summary>Runs the fused q/k/v Linear (into the MLP's scratch, idle during attention) and splits each row into q, k and v.</summary>
    void ProjectFused(ReadOnlySpan<float> x, int n, Span<float> q, Span<float> k, Span<float> v, ForwardContext ctx)
    {
        int qDim = _heads * _headDim, kvDim = _kvHeads * _headDim, width = qDim + 2 * kvDim;
        var qkv = ctx.Scratch.Span(Slot.Up, n * width); // [n, q | k | v]
        _qkvProj!.Forward(x, n, qkv, ctx);
        for (int r = 0; r < n; r++)
        {
            var row = qkv.Slice(r * width, width);
            row[..qDim].CopyTo(q.Slice(r * qDim, qDim));
            row.Slice(qDim, kvDim).CopyTo(k.Slice(r * kvDim, kvDim));
            row.Slice(qDim + kvDim, kvDim).CopyTo(v.Slice(r * kvDim, kvDim));
        }
    }
}
