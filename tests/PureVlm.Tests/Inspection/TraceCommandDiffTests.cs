using PureVlm.Cli;
using PureVlm.Inspection;
using Xunit;

namespace PureVlm.Tests.Inspection;

/// <summary>purevlm trace then purevlm diff on paligemma-tiny: a trace equals itself, and BF16 weights move the logits as the fixtures README says.</summary>
[Collection(PureVlm.Tests.Cli.ConsoleCollection.Name)] // trace and diff write to the console, which other tests redirect
public sealed class TraceCommandDiffTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-trace-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static readonly string Fixture = TestPaths.Fixture("paligemma-tiny");

    string Trace(string file, params string[] extra)
    {
        string output = Path.Combine(_dir, file);
        string[] args = ["trace", "--model", Fixture, "--pixel-values", Path.Combine(Fixture, "golden.safetensors"),
            "--input-ids", "2,17,251,42,9,133,108", "--out", output, .. extra];
        Assert.Equal(0, Program.Main(args));
        return output;
    }

    [Fact]
    public void Two_f32_traces_diff_to_exactly_zero_and_bf16_weights_move_the_logits_by_about_0_026()
    {
        string a = Trace("a.safetensors"), b = Trace("b.safetensors");
        var same = TraceDiff.Compare(a, b, 0);
        Assert.Contains(same, d => d.Name == "logits");
        Assert.All(same, d => { Assert.Equal(0, d.MaxAbs); Assert.True(d.WithinTolerance, d.Name); });
        Assert.Equal(0, Program.Main(["diff", a, b, "--tol", "0"]));

        string bf16 = Trace("bf16.safetensors", "--weights", Path.Combine(Fixture, "model-bf16.safetensors"));
        var diffs = TraceDiff.Compare(a, bf16, 1e-4);
        // tests/data/fixtures/README.md: BF16 weights move paligemma-tiny's logits by 0.026 abs (1.5 % of their max).
        Assert.InRange(diffs.Single(d => d.Name == "logits").MaxAbs, 0.02, 0.03);
        Assert.Equal("vision.embeddings", diffs.First(d => !d.WithinTolerance).Name);
        Assert.Equal(1, Program.Main(["diff", a, bf16]));
    }

    [Theory]
    [InlineData("model.safetensors", "golden.safetensors")]
    [InlineData("model-bf16.safetensors", "golden-bf16.safetensors")]
    public void Llava_trace_from_the_image_file_and_the_prompt_text_matches_every_golden_tensor(string weights, string golden)
    {
        // From input.png and the user's words alone: CLIP preprocessing, LLaVA's chat template, LLaMA's tokenizer, the model.
        string llava = TestPaths.Fixture("llava-tiny"), output = Path.Combine(_dir, "llava.safetensors");
        Assert.Equal(0, Program.Main(["trace", "--model", llava, "--weights", Path.Combine(llava, weights), "--image", Path.Combine(llava, "input.png"),
            "--prompt", "What is in the picture?", "--generate", "12", "--out", output]));
        var diffs = TraceDiff.Compare(Path.Combine(llava, golden), output, 1e-4);
        Assert.Equal(21, diffs.Count); // every golden tensor is in the trace
        Assert.All(diffs, d => Assert.True(d.WithinTolerance, $"{d.Name}: max|diff| {d.MaxAbs:E2}, relative {d.MaxRel:E2}"));
        foreach (var exact in new[] { "image.resized", "image.cropped", "pixel_values", "input_ids", "position_ids", "generated_ids" })
            Assert.Equal(0, diffs.Single(d => d.Name == exact).MaxAbs);
        Assert.Equal(["image.resized", "image.cropped", "pixel_values", "vision.embeddings", "vision.pre_layrnorm", "vision.layers.0"], diffs.Take(6).Select(d => d.Name));
    }

    [Theory]
    [InlineData("model.safetensors", "golden.safetensors")]
    [InlineData("model-bf16.safetensors", "golden-bf16.safetensors")]
    public void Molmo_trace_from_the_image_file_and_the_prompt_text_matches_every_golden_tensor(string weights, string golden)
    {
        // From input.png and the user's words alone: tiling, crops, masks, Molmo's message format, byte-level BPE, the model.
        string molmo = TestPaths.Fixture("molmo-tiny"), output = Path.Combine(_dir, "molmo.safetensors");
        Assert.Equal(0, Program.Main(["trace", "--model", molmo, "--weights", Path.Combine(molmo, weights), "--image", Path.Combine(molmo, "input.png"),
            "--prompt", "Point to the red disc.", "--generate", "12", "--out", output]));
        var diffs = TraceDiff.Compare(Path.Combine(molmo, golden), output, 1e-4);
        Assert.Equal(golden == "golden.safetensors" ? 31 : 15, diffs.Count); // every golden tensor is in the trace
        Assert.All(diffs, d => Assert.True(d.WithinTolerance, $"{d.Name}: max|diff| {d.MaxAbs:E2}, relative {d.MaxRel:E2}"));
        foreach (var exact in new[] { "image_masks", "image_input_idx", "input_ids", "position_ids", "generated_ids" })
            if (diffs.SingleOrDefault(d => d.Name == exact) is { } d) Assert.Equal(0, d.MaxAbs); // the bf16 goldens hold only the ids of these
    }

    [Theory]
    [InlineData("model.safetensors", "golden.safetensors")]
    [InlineData("model-bf16.safetensors", "golden-bf16.safetensors")]
    public void Gemma3_trace_from_the_image_file_and_the_chat_messages_matches_every_golden_tensor(string weights, string golden)
    {
        // From input.png and HF's messages alone: bilinear preprocessing, Gemma 3's chat template and processor, the tokenizer, the model.
        string gemma3 = TestPaths.Fixture("gemma3-tiny"), output = Path.Combine(_dir, "gemma3.safetensors"), messages = Path.Combine(_dir, "messages.json");
        using (var checks = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(gemma3, "checks.json"))))
            File.WriteAllText(messages, checks.RootElement.GetProperty("messages").GetRawText());
        Assert.Equal(0, Program.Main(["trace", "--model", gemma3, "--weights", Path.Combine(gemma3, weights), "--image", Path.Combine(gemma3, "input.png"),
            "--messages", messages, "--generate", "12", "--out", output]));
        var diffs = TraceDiff.Compare(Path.Combine(gemma3, golden), output, 1e-4);
        Assert.Equal(weights == "model.safetensors" ? 26 : 25, diffs.Count); // every golden tensor is in the trace (image.resized only in golden.safetensors)
        Assert.All(diffs, d => Assert.True(d.WithinTolerance, $"{d.Name}: max|diff| {d.MaxAbs:E2}, relative {d.MaxRel:E2}"));
        foreach (var exact in new[] { "pixel_values", "input_ids", "token_type_ids", "position_ids", "text.mask_full", "text.mask_sliding", "generated_ids" })
            Assert.Equal(0, diffs.Single(d => d.Name == exact).MaxAbs);
    }
}
