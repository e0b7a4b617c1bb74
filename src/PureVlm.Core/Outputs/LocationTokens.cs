using PureVlm.Segmentation;
using System.Text.RegularExpressions;

namespace PureVlm.Outputs;

/// <summary>A labelled box in pixels of the original image: [x0, y0, x1, y1].</summary>
public sealed record Detection(string Label, float[] Box);

/// <summary>
/// A labelled box plus the 16 <c>&lt;segNNN&gt;</c> codes of PaliGemma's mask VQ-VAE, in order; <paramref name="Loc"/> holds
/// the four <c>&lt;locNNNN&gt;</c> values as written (y1, x1, y2, x2), which the mask conventions convert each their own way.
/// </summary>
public sealed record Segment(string Label, float[] Box, int[] Codes, int[] Loc)
{
    /// <summary>The decoded mask over the whole image, or null: no decoder was given, or the box or codes are invalid.</summary>
    public SegmentMask? Mask { get; init; }
}

/// <summary>
/// Parses PaliGemma's location answers: <c>&lt;locY0&gt;&lt;locX0&gt;&lt;locY1&gt;&lt;locX1&gt; label ; …</c>, optionally
/// followed by 16 <c>&lt;segNNN&gt;</c> codes before the label. Each value n becomes n / 1024 × the image side,
/// as the official PaliGemma demo converts them. Text that holds no box gives an empty list.
/// </summary>
public static partial class LocationTokens
{
    [GeneratedRegex(@"<loc(\d{4})><loc(\d{4})><loc(\d{4})><loc(\d{4})>((?:<seg\d{3}>){16})?\s*([^;<]*)")]
    private static partial Regex BoxPattern();

    [GeneratedRegex(@"<seg(\d{3})>")]
    private static partial Regex SegPattern();

    /// <summary>Boxes of a <c>detect …</c> answer (also the boxes of a <c>segment …</c> answer).</summary>
    public static IReadOnlyList<Detection> ParseDetections(string text, int imageWidth, int imageHeight) =>
        BoxPattern().Matches(text).Select(m => new Detection(m.Groups[6].Value.Trim(), ToBox(m, imageWidth, imageHeight))).ToList();

    /// <summary>Segments of a <c>segment …</c> answer: only boxes followed by 16 seg codes.</summary>
    public static IReadOnlyList<Segment> ParseSegments(string text, int imageWidth, int imageHeight) =>
        BoxPattern().Matches(text).Where(m => m.Groups[5].Success)
            .Select(m => new Segment(m.Groups[6].Value.Trim(), ToBox(m, imageWidth, imageHeight),
                SegPattern().Matches(m.Groups[5].Value).Select(s => int.Parse(s.Groups[1].Value)).ToArray(),
                [int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value), int.Parse(m.Groups[3].Value), int.Parse(m.Groups[4].Value)]))
            .ToList();

    static float[] ToBox(Match m, int width, int height)
    {
        float Value(int group, int side) => int.Parse(m.Groups[group].Value) / 1024f * side;
        return [Value(2, width), Value(1, height), Value(4, width), Value(3, height)];
    }
}
