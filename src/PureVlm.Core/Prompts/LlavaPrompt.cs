using System.Text;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// LLaVA-1.5's chat format as llava-hf's chat template and <c>LlavaProcessor</c> build it:
/// <c>&lt;s&gt;USER: &lt;image&gt;\n{prompt} ASSISTANT:</c>, each <c>&lt;image&gt;</c> expanded to <c>image_seq_length</c> image tokens.
/// Video-LLaVA's is the same with <c>&lt;video&gt;</c> markers too, each expanded to <c>video_seq_length</c> video tokens
/// (<c>VideoLlavaProcessor</c>). A prompt that already holds markers places the images and videos there (one marker
/// per input, in order); otherwise the inputs go before the prompt, in order, as the template puts them. Chats render as
/// llava-hf's chat template: <c>{system} USER: &lt;image&gt;\n{text} ASSISTANT: {answer} USER: … ASSISTANT:</c>.
/// </summary>
/// <param name="imageSeqLength">Image tokens per image.</param>
/// <param name="imageTokenId">The <c>&lt;image&gt;</c> id.</param>
/// <param name="videoSeqLength">Video tokens per video (Video-LLaVA), or 0 for a family without videos.</param>
/// <param name="videoTokenId">The <c>&lt;video&gt;</c> id, or -1.</param>
public sealed class LlavaPrompt(int imageSeqLength, int imageTokenId, int videoSeqLength = 0, int videoTokenId = -1) : IChatPromptFormat
{
    /// <summary>The image placeholder the processor expands.</summary>
    public const string ImageMarker = "<image>";
    /// <summary>The video placeholder the processor expands.</summary>
    public const string VideoMarker = "<video>";

    bool HasVideo => videoTokenId >= 0;

    /// <inheritdoc/>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images) =>
        Build(tokenizer, prompt, Enumerable.Repeat(MediaKind.Image, images).ToArray());

    /// <inheritdoc/>
    public int[] Build(SentencePieceTokenizer tokenizer, string prompt, IReadOnlyList<MediaKind> media)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(media);
        if (media.Contains(MediaKind.Video) && !HasVideo) throw new ArgumentException("this model family takes images only; it has no video tower", nameof(media));
        var markers = Markers(prompt);
        if (markers.Count == 0 && media.Count > 0) prompt = string.Concat(media.Select(Marker)) + "\n" + prompt;
        else if (!markers.SequenceEqual(media))
            throw new InvalidPromptException(HasVideo
                ? $"the prompt's markers are [{string.Join(", ", markers.Select(Marker))}], the inputs are [{string.Join(", ", media.Select(Marker))}]; give one marker per image or video, in order, or none to put them first"
                : $"the prompt has {markers.Count} {ImageMarker} markers for {media.Count} images; give one per image, or none to put the image first");
        return Encode(tokenizer, "USER: " + prompt + " ASSISTANT:", media.Contains(MediaKind.Video));
    }

    /// <inheritdoc/>
    /// <remarks>Each message's images come before its text (the template renders them first); a system message has no role prefix.</remarks>
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var text = new StringBuilder();
        foreach (var m in messages)
        {
            if (m.Role != "system") text.Append(m.Role.ToUpperInvariant()).Append(": ");
            foreach (var _ in m.Content.Where(p => p.IsImage)) text.Append(ImageMarker).Append('\n');
            foreach (var p in m.Content.Where(p => !p.IsImage)) text.Append(p.Text).Append(' ');
        }
        return text.Append("ASSISTANT:").ToString();
    }

    /// <inheritdoc/>
    public int[] BuildChat(SentencePieceTokenizer tokenizer, IReadOnlyList<ChatMessage> messages) => Encode(tokenizer, Render(messages), videos: false);

    /// <summary>&lt;s&gt; and the ids of <paramref name="text"/> with each marker expanded to its image (or video) tokens.</summary>
    int[] Encode(SentencePieceTokenizer tokenizer, string text, bool videos)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        CheckToken(tokenizer, ImageMarker, imageTokenId, "image_token_index");
        if (videos) CheckToken(tokenizer, VideoMarker, videoTokenId, "video_token_index");
        if (tokenizer.BosId < 0) throw new InvalidOperationException("the tokenizer has no <s> id, which a LLaVA prompt needs");
        var expanded = new StringBuilder(text.Replace(ImageMarker, string.Concat(Enumerable.Repeat(ImageMarker, imageSeqLength)), StringComparison.Ordinal));
        if (HasVideo) expanded.Replace(VideoMarker, string.Concat(Enumerable.Repeat(VideoMarker, videoSeqLength)));
        // The tokenizer cuts the image/video tokens out and encodes each text chunk around them with its own dummy prefix, as llava-hf's does.
        return [tokenizer.BosId, .. tokenizer.Encode(expanded.ToString())];
    }

    static void CheckToken(SentencePieceTokenizer tokenizer, string marker, int configId, string key)
    {
        bool found = tokenizer.TryGetId(marker, out int id);
        if (!found || id != configId)
            throw new InvalidOperationException($"the tokenizer's {marker} token is {(found ? id.ToString() : "missing")}, config.json's {key} is {configId}");
    }

    /// <inheritdoc/>
    public int[] SyntheticIds(int images, int textTokens, int bos)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        return SyntheticIds(Enumerable.Repeat(MediaKind.Image, images).ToArray(), textTokens, bos);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// <c>[bos, text…, tokens of each input, text…]</c>: the first ⌊textTokens / 2⌋ ids stand for "USER: ", the rest for
    /// "\n{prompt} ASSISTANT:", the inputs between them as the template puts a prompt without markers.
    /// </remarks>
    public int[] SyntheticIds(IReadOnlyList<MediaKind> media, int textTokens, int bos)
    {
        ArgumentNullException.ThrowIfNull(media);
        ArgumentOutOfRangeException.ThrowIfNegative(textTokens);
        if (media.Contains(MediaKind.Video) && !HasVideo) throw new ArgumentException("this model family takes images only; it has no video tower", nameof(media));
        var text = Enumerable.Range(0, textTokens).Select(IPromptFormat.FillerId).ToArray();
        int before = textTokens / 2;
        var tokens = media.SelectMany(m => m == MediaKind.Image ? Enumerable.Repeat(imageTokenId, imageSeqLength) : Enumerable.Repeat(videoTokenId, videoSeqLength));
        return [bos, .. text[..before], .. tokens, .. text[before..]];
    }

    static string Marker(MediaKind kind) => kind == MediaKind.Image ? ImageMarker : VideoMarker;

    /// <summary>The kinds of the markers in <paramref name="prompt"/>, in order (<c>&lt;video&gt;</c> only counts for a family with videos).</summary>
    List<MediaKind> Markers(string prompt)
    {
        var found = new List<MediaKind>();
        for (int i = 0; i < prompt.Length; i++)
        {
            if (string.CompareOrdinal(prompt, i, ImageMarker, 0, ImageMarker.Length) == 0) found.Add(MediaKind.Image);
            else if (HasVideo && string.CompareOrdinal(prompt, i, VideoMarker, 0, VideoMarker.Length) == 0) found.Add(MediaKind.Video);
        }
        return found;
    }
}
