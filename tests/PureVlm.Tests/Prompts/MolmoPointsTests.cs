using System.Text.Json;
using PureVlm.Outputs;
using Xunit;

namespace PureVlm.Tests.Prompts;

/// <summary>Every pointing answer of molmo-tiny's README (checks.json → pointing) parsed to its points on the 139 × 57 image.</summary>
public class MolmoPointsTests
{
    public static TheoryData<string, double[][], double[][]> Answers()
    {
        var data = new TheoryData<string, double[][], double[][]>();
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture("molmo-tiny"), "checks.json")));
        static double[][] Points(JsonElement e) => e.EnumerateArray().Select(p => p.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        foreach (var c in doc.RootElement.GetProperty("pointing").EnumerateArray())
            data.Add(c.GetProperty("text").GetString()!, Points(c.GetProperty("points_percent")), Points(c.GetProperty("points_pixels")));
        return data;
    }

    [Theory, MemberData(nameof(Answers))]
    public void Parses_to_the_reference_points(string answer, double[][] percent, double[][] pixels)
    {
        var points = PointTags.Parse(answer, 139, 57);
        Assert.Equal(percent.Length, points.Count);
        for (int i = 0; i < points.Count; i++)
        {
            Assert.Equal(percent[i], new[] { points[i].XPercent, points[i].YPercent });
            Assert.True(Math.Abs(points[i].X - pixels[i][0]) <= 1e-9 && Math.Abs(points[i].Y - pixels[i][1]) <= 1e-9,
                $"{answer}: point {i} is ({points[i].X}, {points[i].Y}), expected ({pixels[i][0]}, {pixels[i][1]})");
        }
    }

    [Fact]
    public void Labels_come_from_alt_or_else_the_text()
    {
        Assert.Equal(["red disc"], PointTags.Parse("<point x=\"61.5\" y=\"40.2\" alt=\"red disc\">disc</point>", 100, 100).Select(p => p.Label));
        Assert.Equal(["cups", "cups"], PointTags.Parse("<points x1=\"1\" y1=\"2\" x2=\"3\" y2=\"4\">cups</points>", 100, 100).Select(p => p.Label));
    }
}
