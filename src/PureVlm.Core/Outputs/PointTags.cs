using System.Globalization;
using System.Text.RegularExpressions;

namespace PureVlm.Outputs;

/// <summary>
/// A labelled point in pixels of the original image, with the percentages the model wrote.
/// </summary>
/// <param name="Label">The <c>alt</c> attribute, or the element's text when there is none.</param>
/// <param name="X">Pixels from the left: <c>XPercent / 100 · width</c>.</param>
/// <param name="Y">Pixels from the top: <c>YPercent / 100 · height</c>.</param>
/// <param name="XPercent">The x the model wrote, in percent of the image width.</param>
/// <param name="YPercent">The y the model wrote, in percent of the image height.</param>
public sealed record PointAnswer(string Label, double X, double Y, double XPercent, double YPercent);

/// <summary>
/// Parses Molmo's pointing answers: <c>&lt;point x="61.5" y="40.2" alt="…"&gt;label&lt;/point&gt;</c> and
/// <c>&lt;points x1=".." y1=".." x2=".." y2=".." … alt="…"&gt;label&lt;/points&gt;</c>, values in percent of the original
/// image. As allenai/molmo's <c>extract_points</c>: every <c>x\d*="v" y\d*="v"</c> pair counts, a point with a value
/// above 100 is dropped, pixels are <c>value / 100 · side</c>. Text without points gives an empty list.
/// </summary>
public static partial class PointTags
{
    [GeneratedRegex(@"<(points?)\b([^>]*)>(.*?)</\1>", RegexOptions.Singleline)]
    private static partial Regex ElementPattern();

    [GeneratedRegex(@"x\d*=""\s*([0-9]+(?:\.[0-9]+)?)""\s+y\d*=""\s*([0-9]+(?:\.[0-9]+)?)""")]
    private static partial Regex CoordinatePattern();

    [GeneratedRegex(@"\balt=""([^""]*)""")]
    private static partial Regex AltPattern();

    /// <summary>The points of <paramref name="text"/>, in order, in pixels of a <paramref name="width"/> × <paramref name="height"/> image.</summary>
    public static IReadOnlyList<PointAnswer> Parse(string text, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(text);
        var points = new List<PointAnswer>();
        foreach (Match element in ElementPattern().Matches(text))
        {
            string attributes = element.Groups[2].Value;
            var alt = AltPattern().Match(attributes);
            string label = (alt.Success ? alt.Groups[1].Value : element.Groups[3].Value).Trim();
            foreach (Match c in CoordinatePattern().Matches(attributes))
            {
                double x = double.Parse(c.Groups[1].Value, CultureInfo.InvariantCulture), y = double.Parse(c.Groups[2].Value, CultureInfo.InvariantCulture);
                if (Math.Max(x, y) > 100) continue;
                points.Add(new PointAnswer(label, x / 100 * width, y / 100 * height, x, y));
            }
        }
        return points;
    }
}
