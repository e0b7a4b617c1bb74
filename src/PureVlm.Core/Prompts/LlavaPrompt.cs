using System.Text;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// LLaVA-1.5's chat format as llava-hf's chat template and <c>LlavaProcessor</c> build it:
/// <c>&lt;s&gt;USER: &lt;image&gt;\n{prompt} ASSISTANT:</c>, each <c>&lt;image&gt;</c> expanded to <c>image_seq_length</c> image tokens.
/// Video-LLaVA's is the same with <c>&lt;video&gt;</c> markers too, each expanded to <c>video_seq_length</c> video tokens
/// (<c>VideoLlavaProcessor</c>). A prompt that already holds markers places the images and videos there (one marker
/// per input, in order); otherwise the inputs go before the prompt, in order, as the template puts them.
/// </summary>
/// <param name="imageSeqLength">Image tokens per image.</param>
/// <param name="imageTokenId">The <c>&lt;image&gt;</c> id.</param>
/// <param name="videoSeqLength">Video tokens per video (Video-LLaVA), or 0 for a family without videos.</param>
/// <param name="videoTokenId">The <c>&lt;video&gt;</c> id, or -1.</param>
public sealed class LlavaPrompt(int imageSeqLength, int imageTokenId, int videoSeqLength = 0, int videoTokenId = -1) : IPromptFormat
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
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(media);
        CheckToken(tokenizer, ImageMarker, imageTokenId, "image_token_index");
        if (media.Contains(MediaKind.Video))
        {
            if (!HasVideo) throw new ArgumentException("this model family takes images only; it has no video tower", nameof(media));
            CheckToken(tokenizer, VideoMarker, videoTokenId, "video_token_index");
        }
        if (tokenizer.BosId < 0) throw new InvalidOperationException("the tokenizer has no <s> id, which a LLaVA prompt needs");
        var markers = Markers(prompt);
        if (markers.Count == 0 && media.Count > 0) prompt = string.Concat(media.Select(Marker)) + "\n" + prompt;
        else if (!markers.SequenceEqual(media))
            throw new ArgumentException(HasVideo
                ? $"the prompt's markers are [{string.Join(", ", markers.Select(Marker))}], the inputs are [{string.Join(", ", media.Select(Marker))}]; give one marker per image or video, in order, or none to put them first"
                : $"the prompt has {markers.Count} {ImageMarker} markers for {media.Count} images; give one per image, or none to put the image first", nameof(prompt));
        var expanded = new StringBuilder("USER: ");
        expanded.Append(prompt.Replace(ImageMarker, string.Concat(Enumerable.Repeat(ImageMarker, imageSeqLength)), StringComparison.Ordinal));
        if (HasVideo) expanded.Replace(VideoMarker, string.Concat(Enumerable.Repeat(VideoMarker, videoSeqLength)));
        expanded.Append(" ASSISTANT:");
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
