using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Models;

/// <summary>Molmo's model against molmo-tiny's goldens, fed the golden crops, masks and ids (README: rtol 1e-4, ids exact).</summary>
public class MolmoModelTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Weights => new()
    {
        { "model.safetensors", "golden.safetensors" },
        { "model-bf16.safetensors", "golden-bf16.safetensors" },
    };

    /// <summary>The golden <c>images</c>, <c>image_masks</c> and <c>image_input_idx</c> as a <see cref="MultiCropImage"/>.</summary>
    internal static MultiCropImage GoldenCrops(GoldenFixture g)
    {
        int[] ids = g.Ints("input_ids"), idx = g.Ints("image_input_idx");
        // image_input_idx holds positions in input_ids; the model wants the index among the <im_patch> tokens.
        var patchPositions = Enumerable.Range(0, ids.Length).Where(i => ids[i] == 386).ToList();
        var cellTokens = idx.Select(p => p < 0 ? -1 : patchPositions.IndexOf(p)).ToArray();
        return new MultiCropImage(g["images"].Data.ToArray(), g["image_masks"].Data.ToArray(), cellTokens, 4, 1, 3, [(3, 3), (3, 5)]);
    }

    [Theory, MemberData(nameof(Weights))]
    public void Every_traced_stage_matches_golden(string weights, string golden)
    {
        using var g = new GoldenFixture("molmo-tiny", golden);
        using var pre = new GoldenFixture("molmo-tiny", "golden.safetensors"); // preprocessing does not depend on the weights
        using var model = LoadedModel.Load(Path.Combine(g.Dir, "config.json"), Path.Combine(g.Dir, weights));
        var observer = new TraceRecorder();
        var session = model.CreateSession(new SessionOptions { Observer = observer });
        var features = session.EncodeImage(GoldenCrops(pre));
        session.Prefill(g.Ints("input_ids"), features);

        var report = new List<string>();
        bool ok = true;
        foreach (var name in observer.Names)
        {
            if (!g.Has(name)) continue;
            var want = g[name];
            var got = observer[name];
            Assert.Equal(want.Shape, got.Shape);
            var (diff, scale) = GoldenFixture.Compare(got.Span, want.Span);
            bool pass = diff <= GoldenFixture.Rtol * scale;
            ok &= pass;
            report.Add($"{name}: max|diff| {diff:E2} (rel {diff / scale:E2}){(pass ? "" : "  FAIL")}");
        }
        string[] notActivations = ["image.tiles_resized", "image.global_resized", "image_masks", "image_input_idx", "input_ids", "position_ids", "generated_ids", "generated_logits"];
        foreach (var name in g.Names.Except(notActivations)) Assert.Contains(name, observer.Names);
        output.WriteLine($"{weights}:\n" + string.Join("\n", report));
        Assert.True(ok, $"{weights}:\n" + string.Join("\n", report));
    }

    [Fact]
    public void Generate_from_the_image_file_and_prompt_gives_the_reference_ids()
    {
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        using var model = VlmModel.Load(g.Dir);
        var image = ImageLoader.Load(Path.Combine(g.Dir, "input.png"));
        Assert.Equal(g.Ints("input_ids"), model.PromptIds("Point to the red disc.", [image]));
        var answer = model.Generate(image, "Point to the red disc.", new GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), answer.Tokens.Select(t => t.Id));
        Assert.Equal(model.Tokenizer.Decode(g.Ints("generated_ids")), answer.Text);
    }

    [Fact]
    public void A_text_only_prompt_is_bos_and_the_message_and_image_counts_need_the_images()
    {
        using var model = VlmModel.Load(TestPaths.Fixture("molmo-tiny"));
        Assert.Equal([356, 220, 311, 25, 347, 272, 262, 304, 286, 13, 318, 25], model.PromptIds("Point to the red disc.", images: 0));
        Assert.Contains("depend on each image's size", Assert.Throws<ArgumentException>(() => model.PromptIds("Point", images: 1)).Message);
    }

    [Theory, MemberData(nameof(Weights))]
    public void Greedy_generation_matches_golden_ids_and_logits(string weights, string golden)
    {
        using var g = new GoldenFixture("molmo-tiny", golden);
        using var pre = new GoldenFixture("molmo-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(Path.Combine(g.Dir, "config.json"), Path.Combine(g.Dir, weights));
        var session = model.CreateSession();
        var features = session.EncodeImage(GoldenCrops(pre));
        var tokens = session.Generate(g.Ints("input_ids"), features, new GenerationOptions { MaxNewTokens = 12, StopAtEos = false }).ToList();
        Assert.Equal(g.Ints("generated_ids"), tokens.Select(t => t.Id).ToArray());

        var wantLogits = g["generated_logits"];
        int vocab = wantLogits.Shape[1];
        session.Reset();
        var logits = session.Prefill(g.Ints("input_ids"), features);
        var report = new List<string>();
        bool ok = true;
        for (int k = 0; k < tokens.Count; k++)
        {
            if (k > 0) logits = session.Decode(tokens[k - 1].Id);
            var (diff, scale) = GoldenFixture.Compare(logits, wantLogits.Span.Slice(k * vocab, vocab));
            bool pass = diff <= GoldenFixture.Rtol * scale;
            ok &= pass;
            report.Add($"generated_logits[{k}]: max|diff| {diff:E2} (rel {diff / scale:E2}){(pass ? "" : "  FAIL")}");
        }
        output.WriteLine($"{weights}:\n" + string.Join("\n", report));
        Assert.True(ok, $"{weights}:\n" + string.Join("\n", report));
    }
}
