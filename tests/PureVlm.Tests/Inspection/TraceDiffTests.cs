using PureVlm.Inspection;
using Xunit;

namespace PureVlm.Tests.Inspection;

public class TraceDiffTests
{
    static string Golden(string fixture, string file) => Path.Combine(TestPaths.Fixture(fixture), file);

    [Fact]
    public void Trace_against_itself_is_exactly_equal_in_forward_order()
    {
        var path = Golden("paligemma-tiny", "golden.safetensors");
        var diffs = TraceDiff.Compare(path, path, 0);
        Assert.All(diffs, d => { Assert.Equal(0, d.MaxAbs); Assert.True(d.WithinTolerance); });
        var names = diffs.Select(d => d.Name).ToList();
        Assert.True(names.IndexOf("vision.layers.1") < names.IndexOf("projector"));
        Assert.True(names.IndexOf("text.layers.2") < names.IndexOf("text.norm"));
        Assert.True(names.IndexOf("text.norm") < names.IndexOf("logits"));
    }

    [Fact]
    public void F32_against_bf16_golden_differs_by_the_documented_magnitude()
    {
        // The fixture README: rounding the weights to BF16 moves the logits by 0.026 (1.5 % of their max) on paligemma-tiny.
        var diffs = TraceDiff.Compare(Golden("paligemma-tiny", "golden.safetensors"), Golden("paligemma-tiny", "golden-bf16.safetensors"), 1e-4);
        var logits = diffs.Single(d => d.Name == "logits");
        Assert.InRange(logits.MaxAbs, 0.02, 0.03);
        Assert.False(logits.WithinTolerance);
        Assert.Equal("vision.embeddings", diffs.First(d => !d.WithinTolerance).Name);
    }
}
