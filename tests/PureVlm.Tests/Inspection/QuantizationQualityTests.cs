using System.Text.Json;
using PureVlm.Inspection;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.Cli;
using Xunit;

namespace PureVlm.Tests.Inspection;

[Collection(ConsoleCollection.Name)]
public class QuantizationQualityTests
{
    /// <summary>p = softmax(0, 0) = (½, ½), q = softmax(ln 3, 0) = (¾, ¼): KL = ½ ln(⅔) + ½ ln 2 = ½ ln(4/3).</summary>
    [Fact]
    public void Kl_divergence_of_two_small_distributions_matches_the_hand_computed_value()
    {
        Assert.Equal(0.5 * Math.Log(4.0 / 3), QuantizationQuality.KlDivergence([0f, 0f], [MathF.Log(3), 0f]), 6);
        Assert.Equal(0, QuantizationQuality.KlDivergence([1f, 2f, 3f], [11f, 12f, 13f]), 12); // a shift does not change a softmax
    }

    [Fact]
    public void Box_iou_and_pairing_in_order()
    {
        Assert.Equal(1.0 / 7, QuantizationQuality.Iou([0, 0, 2, 2], [1, 1, 3, 3]), 12);
        Assert.Equal(0, QuantizationQuality.Iou([0, 0, 1, 1], [2, 2, 3, 3]));
        var a = new Outputs.Detection("a", [0, 0, 2, 2]);
        var b = new Outputs.Detection("b", [10, 10, 12, 12]);
        Assert.Equal(0.5, QuantizationQuality.PairedIou([a], [a, b])!.Value, 12); // the unpaired box counts 0
        Assert.Null(QuantizationQuality.PairedIou([], [])); // no boxes on either side: nothing to compare
    }

    /// <summary>The requirement: at 8 bits the demo model answers all its samples exactly as the float model does.</summary>
    [Fact]
    public void The_demo_model_at_8_bits_answers_every_sample_as_the_float_model_does()
    {
        var cases = Demo.DemoModelTests.Samples.Select(s => new QualityCase(Path.Combine(TestPaths.DemoModel, "samples", s.Image), s.Prompt)).ToList();
        using var reference = VlmModel.Load(TestPaths.DemoModel);
        using var q8 = VlmModel.Load(TestPaths.DemoModel, quantize: new QuantizationRecipe(8));
        var r = QuantizationQuality.Compare(reference, q8, "Q8", cases);
        Assert.Equal(cases.Count, r.IdenticalAnswers);
        Assert.Equal(8, r.DetectCases);
        Assert.Equal(1.0, r.MeanIou!.Value, 6);
        Assert.True(r.Positions > cases.Count && r.MeanKl >= 0 && r.MaxKl < 0.01 && r.Top1Agreement == 1.0, $"{r}");
        foreach (var c in r.PerCase) Assert.Equal(Demo.DemoModelTests.Samples.First(s => c.Case.ImagePath.EndsWith(s.Image) && s.Prompt == c.Case.Prompt).Expected, c.Reference);
    }

    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    [Fact]
    public void Quality_command_prints_readable_json_with_every_figure()
    {
        var r = Run("quality", "--quantize", "8", "--json");
        Assert.True(r.Code == 0, r.Err);
        var root = JsonDocument.Parse(r.Out).RootElement;
        Assert.Equal(24, root.GetProperty("cases").GetInt32());
        var q8 = root.GetProperty("results")[0];
        Assert.Equal("Q8", q8.GetProperty("label").GetString());
        Assert.Equal(24, q8.GetProperty("identical_answers").GetInt32());
        foreach (var key in new[] { "mean_kl", "max_kl", "top1_agreement", "mean_iou", "positions" }) Assert.True(q8.TryGetProperty(key, out _), key);
        Assert.Contains("<loc0", r.Out); // answers with location tokens, not \u003Cloc
    }

    [Fact]
    public void A_bad_prompts_line_is_one_error_naming_the_file_and_line()
    {
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-quality-{Guid.NewGuid():N}.jsonl");
        File.WriteAllText(path, "{\"image\": \"x.png\", \"prompt\": \"caption en\"}\n[1, 2]\n");
        try
        {
            var r = Run("quality", "--quantize", "8", "--prompts", path);
            Assert.Equal(1, r.Code);
            Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"{path}:1: image", r.Err); // the first line's image is missing
            File.WriteAllText(path, "[1, 2]\n");
            r = Run("quality", "--quantize", "8", "--prompts", path);
            Assert.Equal(1, r.Code);
            Assert.Contains($"{path}:1: expected an object", r.Err);
            r = Run("quality", "--quantize", "3");
            Assert.Equal(2, r.Code);
            Assert.Contains("--quantize '3'", r.Err);
        }
        finally { File.Delete(path); }
    }
}
