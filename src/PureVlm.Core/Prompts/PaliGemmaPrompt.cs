using PureVlm.Outputs;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// The PaliGemma input sequence, as HF <c>PaliGemmaProcessor</c> builds it: <c>&lt;image&gt;</c>×N per image, <c>&lt;bos&gt;</c>,
/// prompt, "\n"; answers may hold <c>&lt;locNNNN&gt;</c> boxes and <c>&lt;segNNN&gt;</c> mask codes.
/// </summary>
public sealed class PaliGemmaPrompt(int imageTokensPerImage, int imageTokenId) : IPromptFormat
{
    /// <inheritdoc/>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images) => Build(tokenizer, prompt, images * imageTokensPerImage, imageTokenId);

    /// <inheritdoc/>
    /// <remarks><c>[image × images·N, bos, text…]</c>: the text ids stand for the prompt and its "\n".</remarks>
    public int[] SyntheticIds(int images, int textTokens, int bos)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        ArgumentOutOfRangeException.ThrowIfNegative(textTokens);
        return [.. Enumerable.Repeat(imageTokenId, images * imageTokensPerImage), bos, .. Enumerable.Range(0, textTokens).Select(IPromptFormat.FillerId)];
    }

    /// <inheritdoc/>
    public IReadOnlyList<Detection> ParseDetections(string answer, int width, int height) => LocationTokens.ParseDetections(answer, width, height);

    /// <inheritdoc/>
    public IReadOnlyList<Segment> ParseSegments(string answer, int width, int height) => LocationTokens.ParseSegments(answer, width, height);

    /// <summary>
    /// Ids <c>[imageTokenId × numImageTokens, BosId, Encode(prompt + "\n")...]</c>. Bos is inserted by id, never
    /// by text; "\n" is encoded with the prompt, so it becomes Gemma's "\n" piece (108; 5 in the demo model).
    /// </summary>
    public static int[] Build(SentencePieceTokenizer tokenizer, string prompt, int numImageTokens, int imageTokenId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentOutOfRangeException.ThrowIfNegative(numImageTokens);
        if ((uint)imageTokenId >= (uint)tokenizer.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(imageTokenId), imageTokenId, $"image token id is outside the vocabulary (0..{tokenizer.VocabSize - 1})");
        if (tokenizer.BosId < 0) throw new InvalidOperationException("the tokenizer has no <bos> id, which a PaliGemma prompt needs");
        var text = tokenizer.Encode(prompt + "\n");
        // The image tokens go before bos, one per image feature; one typed into the text would have no feature to take.
        if (text.AsSpan().Contains(imageTokenId))
            throw new InvalidPromptException($"the prompt's text holds the image token {Vocabulary.Quote(tokenizer.IdToPiece(imageTokenId))}; PaliGemma puts the image before the text by itself, so leave it out");
        var ids = new int[numImageTokens + 1 + text.Length];
        ids.AsSpan(0, numImageTokens).Fill(imageTokenId);
        ids[numImageTokens] = tokenizer.BosId;
        text.CopyTo(ids, numImageTokens + 1);
        return ids;
    }
}
