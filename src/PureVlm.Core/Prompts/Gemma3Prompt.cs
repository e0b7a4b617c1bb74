using System.Text;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// Gemma 3's chat template (gemma-3-4b-it's <c>chat_template</c> with <c>add_generation_prompt</c>) and
/// <c>Gemma3Processor</c> with pan-and-scan off:
/// <c>&lt;bos&gt;&lt;start_of_turn&gt;user\n{system}\n\n{user parts}&lt;end_of_turn&gt;\n…&lt;start_of_turn&gt;model\n</c>,
/// each image part written <c>&lt;start_of_image&gt;</c> and then expanded to
/// <c>"\n\n&lt;start_of_image&gt;" + tokens × &lt;image_soft_token&gt; + "&lt;end_of_image&gt;\n\n"</c>; the whole string is
/// tokenized at once, so newline runs around an image merge with their neighbours.
/// </summary>
/// <param name="tokensPerImage"><c>mm_tokens_per_image</c>.</param>
/// <param name="imageTokenId"><c>image_token_index</c> (<c>&lt;image_soft_token&gt;</c>, from added_tokens.json).</param>
/// <param name="boiTokenId"><c>boi_token_index</c> (<c>&lt;start_of_image&gt;</c>).</param>
/// <param name="eoiTokenId"><c>eoi_token_index</c> (<c>&lt;end_of_image&gt;</c>).</param>
public sealed class Gemma3Prompt(int tokensPerImage, int imageTokenId, int boiTokenId, int eoiTokenId) : IChatPromptFormat
{
    const string Bos = "<bos>", StartOfTurn = "<start_of_turn>", EndOfTurn = "<end_of_turn>", Boi = "<start_of_image>", Eoi = "<end_of_image>";

    /// <inheritdoc/>
    public string ImageToken => "<image_soft_token>";

    /// <inheritdoc/>
    /// <remarks>The prompt is one user turn; <c>&lt;image&gt;</c> markers place the images among its text, else they go first.</remarks>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images) => BuildChat(tokenizer, ChatMessage.FromPrompt(prompt, null, images));

    /// <inheritdoc/>
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ChatFormatException("the chat has no messages");
        var text = new StringBuilder(Bos);
        string firstUserPrefix = "";
        int first = 0;
        if (messages[0].Role == "system")
        {
            // The template takes the system message's first part's text, untrimmed, into the first turn.
            if (messages[0].Content is not [{ IsImage: false } part, ..])
                throw new ChatFormatException("the system message must start with a text part (Gemma 3's template puts its text into the first user turn)");
            firstUserPrefix = part.Text + "\n\n";
            first = 1;
        }
        for (int i = first; i < messages.Count; i++)
        {
            var m = messages[i];
            if ((m.Role == "user") != ((i - first) % 2 == 0))
                throw new ChatFormatException($"message {i} is a {m.Role} message; Gemma 3's template needs roles alternating user/assistant/user/assistant/... (after an optional first system message)");
            text.Append(StartOfTurn).Append(m.Role == "assistant" ? "model" : m.Role).Append('\n');
            if (i == first) text.Append(firstUserPrefix);
            foreach (var p in m.Content) text.Append(p.IsImage ? Boi : p.Text!.Trim());
            text.Append(EndOfTurn).Append('\n');
        }
        return text.Append(StartOfTurn).Append("model\n").ToString();
    }

    /// <inheritdoc/>
    public int[] BuildChat(SentencePieceTokenizer tokenizer, IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        CheckToken(tokenizer, Bos, tokenizer.BosId, "the tokenizer's bos");
        CheckToken(tokenizer, Boi, boiTokenId, "config.json's boi_token_index");
        CheckToken(tokenizer, Eoi, eoiTokenId, "config.json's eoi_token_index");
        CheckToken(tokenizer, ImageToken, imageTokenId, "config.json's image_token_index");
        string expanded = Render(messages).Replace(Boi, "\n\n" + Boi + string.Concat(Enumerable.Repeat(ImageToken, tokensPerImage)) + Eoi + "\n\n", StringComparison.Ordinal);
        // <bos> is a control piece, which the tokenizer does not cut out of text: the template's leading <bos> goes in by id.
        return [tokenizer.BosId, .. tokenizer.Encode(expanded[Bos.Length..])];
    }

    /// <inheritdoc/>
    /// <remarks>
    /// <c>[bos, text…, boi, image × N, eoi, text…]</c> per image: the first ⌊textTokens / 2⌋ ids stand for the turn's opening
    /// and the newlines before the image, the rest for the newlines after it, the prompt and the closing turn markers.
    /// </remarks>
    public int[] SyntheticIds(int images, int textTokens, int bos)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        ArgumentOutOfRangeException.ThrowIfNegative(textTokens);
        var text = Enumerable.Range(0, textTokens).Select(IPromptFormat.FillerId).ToArray();
        int before = textTokens / 2;
        var image = (int[])[boiTokenId, .. Enumerable.Repeat(imageTokenId, tokensPerImage), eoiTokenId];
        return [bos, .. text[..before], .. Enumerable.Repeat(image, images).SelectMany(i => i), .. text[before..]];
    }

    static void CheckToken(SentencePieceTokenizer tokenizer, string piece, int configId, string what)
    {
        if (!tokenizer.TryGetId(piece, out int id) || id != configId)
            throw new InvalidOperationException($"the tokenizer's {piece} is {(tokenizer.TryGetId(piece, out id) ? id.ToString() : "missing")}, {what} is {configId}");
    }
}
