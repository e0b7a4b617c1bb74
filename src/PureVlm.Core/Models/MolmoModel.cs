using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>
/// Molmo's decoder (<c>model.transformer</c>) plus its output layer <c>ff_out</c> (untied): one embedding table made of
/// <c>wte.embedding</c> (the <c>embedding_size</c> rows the head also has) followed by <c>wte.new_embedding</c> (the
/// image tokens), <see cref="MolmoDecoderLayer"/> blocks, <c>ln_f</c>, no embedding scale.
/// </summary>
public sealed class MolmoModel : DecoderModel
{
    readonly StoredTensor _newEmbedding;

    /// <summary>Loads the decoder under <paramref name="scope"/> (<c>model.transformer</c>) with <paramref name="additionalVocab"/> rows of <c>wte.new_embedding</c>.</summary>
    public MolmoModel(WeightScope scope, TextConfig c, int additionalVocab)
        : base(scope, c, scope.FullName("ff_out"), scope.Sub("ff_out").Get("weight", c.VocabSize, c.HiddenSize), normAddsOne: false,
            embedScale: 1f, finalSoftCap: 0, (layer, _, name) => MolmoDecoderLayer.Load(layer, c, name), "wte.embedding", "blocks", "ln_f")
    {
        _newEmbedding = scope.Get("wte.new_embedding", additionalVocab, c.HiddenSize);
    }

    /// <summary>Rows of the embedding table: <c>embedding_size</c> + <c>additional_vocab_size</c>.</summary>
    public int EmbeddingRows => Config.VocabSize + (int)_newEmbedding.Shape[0];

    /// <summary>x [n, hidden] = cat(wte.embedding, wte.new_embedding)[ids].</summary>
    public override void Embed(ReadOnlySpan<int> ids, Span<float> x)
    {
        int d = Config.HiddenSize, vocab = Config.VocabSize;
        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)EmbeddingRows)
                throw new ArgumentOutOfRangeException(nameof(ids), $"token id {ids[i]} at index {i} is outside the embedding table [0, {EmbeddingRows})");
            var row = x.Slice(i * d, d);
            if (ids[i] < vocab) EmbedTokens.ReadFloats((long)ids[i] * d, row);
            else _newEmbedding.ReadFloats((long)(ids[i] - vocab) * d, row);
        }
    }
}
