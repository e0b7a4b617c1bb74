using PureVlm.Outputs;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// How a model family turns a user's prompt and images into the ids its processor would give, and what structure it
/// reads out of an answer (PaliGemma's boxes and masks). One per family; see <see cref="Runtime.ModelFamilies.PromptFormat"/>.
/// </summary>
public interface IPromptFormat
{
    /// <summary>The tokenizer's spelling of the image token (config.json's <c>image_token_index</c>).</summary>
    string ImageToken => "<image>";

    /// <summary>The ids of <paramref name="prompt"/> with <paramref name="images"/> images, image tokens expanded, bos included.</summary>
    int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images);

    /// <summary>
    /// The ids of <paramref name="prompt"/> with images and videos in the order of <paramref name="media"/>, their tokens
    /// expanded, bos included. Families without videos accept images only.
    /// </summary>
    int[] Build(SentencePieceTokenizer tokenizer, string prompt, IReadOnlyList<MediaKind> media) =>
        Build(tokenizer, prompt, ImagesOnly(media));

    /// <summary>
    /// Ids laid out as <see cref="Build(SentencePieceTokenizer, string, int)"/> lays them out, without a tokenizer: <paramref name="images"/> images'
    /// image tokens, <paramref name="bos"/> and <paramref name="textTokens"/> stand-in text ids (<see cref="FillerId"/>),
    /// each where the family's processor puts them. For benchmarks and tests on checkpoints that ship no tokenizer.
    /// </summary>
    int[] SyntheticIds(int images, int textTokens, int bos);

    /// <summary>As <see cref="SyntheticIds(int, int, int)"/> with images and videos in the order of <paramref name="media"/>.</summary>
    int[] SyntheticIds(IReadOnlyList<MediaKind> media, int textTokens, int bos) => SyntheticIds(ImagesOnly(media), textTokens, bos);

    /// <summary>The number of images in <paramref name="media"/>, which must hold no video.</summary>
    protected static int ImagesOnly(IReadOnlyList<MediaKind> media)
    {
        ArgumentNullException.ThrowIfNull(media);
        if (media.Contains(MediaKind.Video)) throw new ArgumentException("this model family takes images only; it has no video tower", nameof(media));
        return media.Count;
    }

    /// <summary>
    /// The i-th stand-in text id, 8 + i mod 40: above the special ids of every supported tokenizer (Gemma's 0..3,
    /// LLaMA's 0..2) and below 48, so inside even the test models' vocabularies and clear of their image tokens.
    /// </summary>
    static int FillerId(int i) => 8 + i % 40;

    /// <summary>Labelled boxes in pixels of a <paramref name="width"/> × <paramref name="height"/> image, if the family answers with any.</summary>
    IReadOnlyList<Detection> ParseDetections(string answer, int width, int height) => [];

    /// <summary>Labelled boxes with mask codes, if the family answers with any.</summary>
    IReadOnlyList<Segment> ParseSegments(string answer, int width, int height) => [];
}
