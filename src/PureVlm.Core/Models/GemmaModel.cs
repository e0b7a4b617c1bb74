using PureVlm.Formats;
using PureVlm.Kernels;
using PureVlm.Tensors;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaModel</c> / <c>Gemma2Model</c> plus the LM head: inputs_embeds × sqrt(hidden), decoder layers, final norm,
/// logits (tied to <c>embed_tokens</c> unless an <c>lm_head</c> exists), Gemma 2's final soft-cap.
/// </summary>
public sealed class GemmaModel
{
    /// <summary>The config it was built from.</summary>
    public TextConfig Config { get; }
    /// <summary><c>embed_tokens.weight</c> [vocab, hidden].</summary>
    public StoredTensor EmbedTokens { get; }
    /// <summary>The output projection (<c>lm_head</c>, or <c>embed_tokens</c> when tied).</summary>
    public Linear LmHead { get; }
    readonly GemmaDecoderLayer[] _layers;
    readonly GemmaRmsNorm _norm;
    readonly string[] _layerNames;
    // HF multiplies by torch.tensor(hidden_size ** 0.5, dtype): the float32 rounding of the square root.
    readonly float _normalizer;

    /// <summary>Loads the decoder under <paramref name="scope"/>; <paramref name="lmHead"/> is <c>(module path, weight)</c> of a separate head, or null when tied.</summary>
    public GemmaModel(WeightScope scope, TextConfig c, string lmHeadPath, StoredTensor? lmHead)
    {
        Config = c;
        EmbedTokens = scope.Sub("embed_tokens").Get("weight", c.VocabSize, c.HiddenSize);
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"text.layers.{i}").ToArray();
        var layers = scope.Sub("layers");
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new GemmaDecoderLayer(layers.Sub(i), c, i, _layerNames[i])).ToArray();
        _norm = new GemmaRmsNorm(scope.Sub("norm"), c.HiddenSize, c.RmsNormEps);
        LmHead = new Linear(lmHeadPath, lmHead ?? EmbedTokens, null);
        _normalizer = (float)Math.Sqrt(c.HiddenSize);
    }

    /// <summary>A KV cache sized for this decoder (empty; it grows with use).</summary>
    public KvCache NewCache() => new(Config.NumHiddenLayers, Config.NumKeyValueHeads * Config.HeadDim);

    /// <summary>x [n, hidden] = embed_tokens[ids] (before the sqrt(hidden) normalizer).</summary>
    public void Embed(ReadOnlySpan<int> ids, Span<float> x)
    {
        int d = Config.HiddenSize;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at index {i} is outside the vocabulary [0, {Config.VocabSize})");
            EmbedTokens.ReadFloats((long)ids[i] * d, x.Slice(i * d, d));
        }
    }

    /// <summary>
    /// Runs n new tokens whose embeddings are in <paramref name="x"/> [n, hidden] (overwritten) at RoPE positions
    /// <paramref name="positions"/>. Returns logits [1, vocab] of the last token, or [n, vocab] when an observer is attached.
    /// </summary>
    public ReadOnlySpan<float> Forward(float[] x, int n, ReadOnlySpan<int> positions, KvCache cache, ForwardContext ctx)
    {
        int d = Config.HiddenSize, vocab = Config.VocabSize;
        var xs = x.AsSpan(0, n * d);
        ElementWise.Scale(xs, _normalizer);
        ctx.Report("text.inputs_embeds", x, 1, n, d);
        for (int i = 0; i < _layers.Length; i++)
        {
            _layers[i].Forward(xs, n, positions, cache[i], cache.PrefixLength, ctx);
            ctx.Report(_layerNames[i], x, 1, n, d);
        }
        _norm.Forward(xs, xs);
        ctx.Report("text.norm", x, 1, n, d);

        int rows = ctx.Observer is { WantsAllLogits: true } ? n : 1;
        var logits = ctx.Scratch.Get(Slot.Logits, rows * vocab);
        var ls = logits.AsSpan(0, rows * vocab);
        LmHead.Forward(xs[((n - rows) * d)..], rows, ls, ctx);
        FinalSoftCap(ls);
        ctx.Report("logits", logits, 1, rows, vocab);
        return ls[((rows - 1) * vocab)..];
    }

    /// <summary>
    /// The logit lens: <paramref name="logits"/> [vocab] = soft-cap(lm_head(norm(<paramref name="hiddenRow"/> [hidden]))), the model's own
    /// final norm and output layer applied to one row of any layer's residual stream (<c>text.layers.{i}</c>). Applied to the
    /// last layer's row it gives that row's logits. For inspection: it allocates a row and uses no adapters.
    /// </summary>
    public void Logits(ReadOnlySpan<float> hiddenRow, Span<float> logits)
    {
        int d = Config.HiddenSize, vocab = Config.VocabSize;
        if (hiddenRow.Length != d) throw new ArgumentException($"the hidden row has {hiddenRow.Length} values, expected hidden_size {d}", nameof(hiddenRow));
        if (logits.Length != vocab) throw new ArgumentException($"the logits span has {logits.Length} values, expected vocab_size {vocab}", nameof(logits));
        var normed = new float[d];
        _norm.Forward(hiddenRow, normed);
        LmHead.Forward(normed, 1, logits, new ForwardContext());
        FinalSoftCap(logits);
    }

    void FinalSoftCap(Span<float> logits)
    {
        if (Config.FinalLogitSoftcapping > 0) ElementWise.SoftCap(logits, Config.FinalLogitSoftcapping);
    }
}
