using PureVlm.Outputs;
using PureVlm.Tokenization;

namespace PureVlm.Prompts;

/// <summary>
/// How a model family turns a user's prompt and images into the ids its processor would give, and what structure it
/// reads out of an answer (PaliGemma's boxes and masks). One per family; see <see cref="Runtime.ModelFamilies.PromptFormat"/>.
/// </summary>
public interface IPromptFormat
{
    /// <summary>The ids of <paramref name="prompt"/> with <paramref name="images"/> images, image tokens expanded, bos included.</summary>
    int[] Build(SentencePieceTokenizer tokenizer, string prompt, int images);

    /// <summary>Labelled boxes in pixels of a <paramref name="width"/> × <paramref name="height"/> image, if the family answers with any.</summary>
    IReadOnlyList<Detection> ParseDetections(string answer, int width, int height) => [];

    /// <summary>Labelled boxes with mask codes, if the family answers with any.</summary>
    IReadOnlyList<Segment> ParseSegments(string answer, int width, int height) => [];
}
