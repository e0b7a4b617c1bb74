using System.Text;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// LLaVA-1.5's chat format as llava-hf's chat template and <c>LlavaProcessor</c> build it:
/// <c>&lt;s&gt;USER: &lt;image&gt;\n{prompt} ASSISTANT:</c>, each <c>&lt;image&gt;</c> expanded to <c>image_seq_length</c> image tokens.
/// A prompt that already holds <c>&lt;image&gt;</c> markers places the images there (one marker per image, in order);
/// otherwise one image goes before the prompt, as the template puts it.
/// </summary>
public sealed class LlavaPrompt(int imageSeqLength, int imageTokenId) : IPromptFormat
{
    /// <summary>The placeholder the processor expands.</summary>
    public const string ImageMarker = "<image>";

    /// <inheritdoc/>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        bool found = tokenizer.TryGetId(ImageMarker, out int id);
        if (!found || id != imageTokenId)
            throw new InvalidOperationException($"the tokenizer's {ImageMarker} token is {(found ? id.ToString() : "missing")}, config.json's image_token_index is {imageTokenId}");
        if (tokenizer.BosId < 0) throw new InvalidOperationException("the tokenizer has no <s> id, which a LLaVA prompt needs");
        int markers = CountMarkers(prompt);
        if (markers == 0 && images > 0) prompt = string.Concat(Enumerable.Repeat(ImageMarker, images)) + "\n" + prompt;
        else if (markers != images)
            throw new InvalidPromptException($"the prompt has {markers} {ImageMarker} markers for {images} images; give one per image, or none to put the image first");
        var expanded = new StringBuilder("USER: ");
        expanded.Append(prompt.Replace(ImageMarker, string.Concat(Enumerable.Repeat(ImageMarker, imageSeqLength)), StringComparison.Ordinal));
        expanded.Append(" ASSISTANT:");
        // The tokenizer cuts the image tokens out and encodes each text chunk around them with its own dummy prefix, as llava-hf's does.
        return [tokenizer.BosId, .. tokenizer.Encode(expanded.ToString())];
    }

    /// <inheritdoc/>
    /// <remarks>
    /// <c>[bos, text…, image × N per image, text…]</c>: the first ⌊textTokens / 2⌋ ids stand for "USER: ", the rest for
    /// "\n{prompt} ASSISTANT:", the images between them as the template puts a prompt without markers.
    /// </remarks>
    public int[] SyntheticIds(int images, int textTokens, int bos)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        ArgumentOutOfRangeException.ThrowIfNegative(textTokens);
        var text = Enumerable.Range(0, textTokens).Select(IPromptFormat.FillerId).ToArray();
        int before = textTokens / 2;
        return [bos, .. text[..before], .. Enumerable.Repeat(imageTokenId, images * imageSeqLength), .. text[before..]];
    }

    static int CountMarkers(string prompt)
    {
        int count = 0;
        for (int i = prompt.IndexOf(ImageMarker, StringComparison.Ordinal); i >= 0; i = prompt.IndexOf(ImageMarker, i + ImageMarker.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
