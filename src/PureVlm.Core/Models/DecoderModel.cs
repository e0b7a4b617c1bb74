using PureVlm.Formats;
using PureVlm.Kernels;
using PureVlm.Tensors;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>One decoder layer: updates the residual stream of n new tokens in place, appending their keys and values to its cache.</summary>
public interface IDecoderLayer
{
    /// <summary>
    /// x [n, hidden] += the layer's attention and MLP blocks, at RoPE <paramref name="positions"/>; the rows belong to
    /// <paramref name="sequences"/>, whose caches of decoder layer <paramref name="layer"/> (this one) receive their keys and values.
    /// </summary>
    void Forward(Span<float> x, int n, ReadOnlySpan<int> positions, SequenceBatch sequences, int layer, ForwardContext ctx);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    IEnumerable<Linear> Linears();
}

/// <summary>
/// What HF's decoder-only LMs share (<c>LlamaModel</c>, <c>GemmaModel</c>, … plus the LM head): embed_tokens, an optional
/// embedding scale, the decoder layers, the final norm, the output projection (its own <c>lm_head</c> or tied to
/// embed_tokens) and an optional final soft-cap. Each architecture supplies its layers and those two constants.
/// </summary>
public abstract class DecoderModel
{
    /// <summary>The config it was built from.</summary>
    public TextConfig Config { get; }
    /// <summary><c>embed_tokens.weight</c> [vocab, hidden] (quantized when the model is).</summary>
    public IWeightMatrix EmbedTokens { get; }
    /// <summary>The output projection (<c>lm_head</c>, or <c>embed_tokens</c> when tied).</summary>
    public Linear LmHead { get; }
    /// <summary>The decoder layers, in order.</summary>
    public IReadOnlyList<IDecoderLayer> Layers => _layers;
    readonly IDecoderLayer[] _layers;
    readonly RmsNorm _norm;
    readonly string[] _layerNames;
    readonly float _embedScale, _finalSoftCap;

    /// <summary>
    /// Loads embed_tokens and the final norm under <paramref name="scope"/> and builds the layers with <paramref name="layer"/>
    /// (scope of <c>layers.N</c>, N, trace name). <paramref name="lmHead"/> is a separate head's weight, or null when tied.
    /// The last three name the embedding weight, the layer list and the final norm under the scope (HF's names by default).
    /// </summary>
    protected DecoderModel(WeightScope scope, TextConfig c, string lmHeadPath, IWeightMatrix? lmHead, bool normAddsOne,
        float embedScale, float finalSoftCap, Func<WeightScope, int, string, IDecoderLayer> layer,
        string embedTokensWeight = "embed_tokens.weight", string layersName = "layers", string normName = "norm")
    {
        Config = c;
        EmbedTokens = scope.GetMatrix(embedTokensWeight, c.VocabSize, c.HiddenSize, embedding: true);
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"text.layers.{i}").ToArray();
        var layers = scope.Sub(layersName);
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => layer(layers.Sub(i), i, _layerNames[i])).ToArray();
        _norm = new RmsNorm(scope.Sub(normName), c.HiddenSize, c.RmsNormEps, normAddsOne);
        LmHead = new Linear(lmHeadPath, lmHead ?? EmbedTokens, null);
        (_embedScale, _finalSoftCap) = (embedScale, finalSoftCap);
    }

    /// <summary>Its Linear modules, in forward order: every decoder layer's, then the output layer (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => _layers.SelectMany(l => l.Linears()).Append(LmHead);

    /// <summary>A KV cache sized for this decoder (empty; it grows with use).</summary>
    public KvCache NewCache() => new(Config.NumHiddenLayers, Config.NumKeyValueHeads * Config.HeadDim);

    /// <summary>x [n, hidden] = embed_tokens[ids] (before any embedding scale).</summary>
    public virtual void Embed(ReadOnlySpan<int> ids, Span<float> x)
    {
        int d = Config.HiddenSize;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at index {i} is outside the vocabulary [0, {Config.VocabSize})");
            EmbedTokens.ReadFloats((long)ids[i] * d, x.Slice(i * d, d));
        }
    }

    /// <summary>The factor the token embeddings are multiplied by (sqrt(hidden) for Gemma, 1 for LLaMA).</summary>
    public float EmbedScale => _embedScale;

    /// <summary>
    /// Runs n new tokens of one sequence whose embeddings are in <paramref name="x"/> [n, hidden] (overwritten) at RoPE
    /// positions <paramref name="positions"/>; <paramref name="scaled"/> says the caller already applied <see cref="EmbedScale"/>
    /// (to the rows that take it). Returns logits [1, vocab] of the last token, or [n, vocab] when an observer asks for all rows.
    /// </summary>
    public ReadOnlySpan<float> Forward(float[] x, int n, ReadOnlySpan<int> positions, KvCache cache, ForwardContext ctx, bool scaled = false) =>
        Forward(x, positions[..n], new SequenceBatch(cache, n), ctx, scaled);

    /// <summary>
    /// Runs the new rows of <paramref name="sequences"/>, whose embeddings are in <paramref name="x"/> [rows, hidden]
    /// (overwritten), at RoPE <paramref name="positions"/> [rows]; each sequence attends with its cache's mask
    /// (<see cref="KvCache.Mask"/>), as a single run does. <paramref name="scaled"/> as above. Returns the logits of each
    /// sequence's last row, [sequences, vocab], or of every row [rows, vocab] when an observer of a single sequence asks for all.
    /// </summary>
    public ReadOnlySpan<float> Forward(float[] x, ReadOnlySpan<int> positions, SequenceBatch sequences, ForwardContext ctx, bool scaled = false)
    {
        int n = sequences.TotalRows, d = Config.HiddenSize, vocab = Config.VocabSize;
        if (positions.Length != n) throw new ArgumentException($"{positions.Length} positions for {n} rows", nameof(positions));
        // Reports are the activations of one request; several sequences' rows mixed in one tensor would mislead an observer.
        if (sequences.Count > 1 && ctx.Observer != null) throw new InvalidOperationException("an observer watches one sequence; batched forwards take none");
        var xs = x.AsSpan(0, n * d);
        if (_embedScale != 1f && !scaled) ElementWise.Scale(xs, _embedScale);
        ctx.Report("text.inputs_embeds", x, 1, n, d);
        sequences.BeginPass();
        for (int i = 0; i < _layers.Length; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            _layers[i].Forward(xs, n, positions, sequences, i, ctx);
            ctx.Report(_layerNames[i], x, 1, n, d);
        }
        _norm.Forward(xs, xs);
        ctx.Report("text.norm", x, 1, n, d);

        int rows = ctx.Observer is { WantsAllLogits: true } ? n : sequences.Count;
        if (rows < n)
        {
            // Gather each sequence's last row to the front (row s ≤ its source row, so in place is safe).
            for (int s = 0; s < sequences.Count; s++)
            {
                int last = sequences.Start(s) + sequences.Rows(s) - 1;
                if (last != s) xs.Slice(last * d, d).CopyTo(xs.Slice(s * d, d));
            }
        }
        var logits = ctx.Scratch.Get(Slot.Logits, rows * vocab);
        var ls = logits.AsSpan(0, rows * vocab);
        LmHead.Forward(xs, rows, ls, ctx);
        // Row by row: element-wise kernels finish a span's tail in scalar code, so a row must be its own span to come
        // out the same whatever rows share the pass (batched greedy answers equal single ones).
        for (int r = 0; r < rows; r++) FinalSoftCap(ls.Slice(r * vocab, vocab));
        ctx.Report("logits", logits, 1, rows, vocab);
        return sequences.Count == 1 ? ls[((rows - 1) * vocab)..] : ls;
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
        if (_finalSoftCap > 0) ElementWise.SoftCap(logits, _finalSoftCap);
    }

    /// <summary>The separate <c>lm_head.weight</c> under <paramref name="headPath"/> if present; null means tied; absent and untied is an error.</summary>
    public static IWeightMatrix? LmHeadWeight(WeightScope root, string headPath, TextConfig c)
    {
        var head = root.Sub(headPath);
        if (head.Contains("weight")) return head.GetMatrix("weight", c.VocabSize, c.HiddenSize, embedding: true);
        if (!c.TieWordEmbeddings)
            throw new InvalidModelFileException($"missing tensor '{head.FullName("weight")}': tie_word_embeddings is false, so a separate lm_head is expected");
        return null;
    }
}
