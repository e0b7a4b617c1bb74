using PureVlm.Outputs;
using Xunit;

namespace PureVlm.Tests.Inspection;

public class LocationTokensTests
{
    [Fact]
    public void Detect_answer_becomes_pixel_boxes_scaled_by_1024()
    {
        var d = LocationTokens.ParseDetections("<loc0512><loc0256><loc0817><loc0593> circle ; <loc0000><loc0000><loc1023><loc1023> big dog", 200, 100);
        Assert.Equal(2, d.Count);
        Assert.Equal("circle", d[0].Label);
        // x0 = 256/1024·200, y0 = 512/1024·100, x1 = 593/1024·200, y1 = 817/1024·100
        Assert.Equal(new[] { 50f, 50f, 115.8203125f, 79.78515625f }, d[0].Box);
        Assert.Equal("big dog", d[1].Label);
        Assert.Equal(1023f / 1024 * 200, d[1].Box[2]);
    }

    [Theory]
    [InlineData("blue circle")]
    [InlineData("<loc0512><loc0256> circle")]
    [InlineData("")]
    [InlineData("<loc12><loc0256><loc0817><loc0593> x")]
    public void Text_without_a_full_box_gives_no_detections(string text) =>
        Assert.Empty(LocationTokens.ParseDetections(text, 100, 100));

    [Fact]
    public void Segment_answer_keeps_the_16_codes_in_order()
    {
        var codes = Enumerable.Range(0, 16).Select(i => i * 8).ToArray();
        string text = "<loc0100><loc0200><loc0300><loc0400>" + string.Concat(codes.Select(c => $"<seg{c:000}>")) + " cat";
        var s = Assert.Single(LocationTokens.ParseSegments(text, 1024, 1024));
        Assert.Equal("cat", s.Label);
        Assert.Equal(codes, s.Codes);
        Assert.Equal(new[] { 200f, 100f, 400f, 300f }, s.Box);
        Assert.Empty(LocationTokens.ParseSegments("<loc0100><loc0200><loc0300><loc0400> cat", 10, 10));
    }
}
