using PureVlm.Inspection;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Models;

/// <summary>Every traced stage and the 12-token greedy generation of each golden fixture (README: rtol 1e-4, ids exact).</summary>
public class FixtureParityTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, string> Fixtures => new()
    {
        { "paligemma-tiny", "model.safetensors", "golden.safetensors" },
        { "paligemma-tiny", "model-bf16.safetensors", "golden-bf16.safetensors" },
        { "paligemma2-tiny", "model.safetensors", "golden.safetensors" },
        { "paligemma2-tiny", "model-bf16.safetensors", "golden-bf16.safetensors" },
        { "gemma2-text-tiny", "model.safetensors", "golden.safetensors" },
        { "gemma2-text-tiny", "model-bf16.safetensors", "golden-bf16.safetensors" },
        { "llava-tiny", "model.safetensors", "golden.safetensors" },
        { "llava-tiny", "model-bf16.safetensors", "golden-bf16.safetensors" },
        { "video-llava-tiny", "model.safetensors", "golden-image.safetensors" },
        { "video-llava-tiny", "model-bf16.safetensors", "golden-image-bf16.safetensors" },
        { "video-llava-tiny", "model.safetensors", "golden-video.safetensors" },
        { "video-llava-tiny", "model-bf16.safetensors", "golden-video-bf16.safetensors" },
        { "gemma3-tiny", "model.safetensors", "golden.safetensors" },
        { "gemma3-tiny", "model-bf16.safetensors", "golden-bf16.safetensors" },
    };

    [Theory, MemberData(nameof(Fixtures))]
    public void Every_traced_stage_matches_golden(string fixture, string weights, string golden)
    {
        using var g = new GoldenFixture(fixture, golden);
        using var model = LoadedModel.Load(Path.Combine(g.Dir, "config.json"), Path.Combine(g.Dir, weights));
        var observer = new TraceRecorder();
        var session = model.CreateSession(new SessionOptions { Observer = observer });
        var features = g.EncodeInputs(session);
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
        // Every activation the golden file holds must have been reported, so no stage can silently go unchecked.
        string[] notActivations = ["image.resized", "image.cropped", "input_ids", "position_ids", "generated_ids", "generated_logits"];
        foreach (var name in g.Names.Except(notActivations)) Assert.Contains(name, observer.Names);
        output.WriteLine($"{fixture} {weights}:\n" + string.Join("\n", report));
        Assert.True(ok, $"{fixture} {weights}:\n" + string.Join("\n", report));
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Greedy_generation_matches_golden_ids_and_logits(string fixture, string weights, string golden)
    {
        using var g = new GoldenFixture(fixture, golden);
        using var model = LoadedModel.Load(Path.Combine(g.Dir, "config.json"), Path.Combine(g.Dir, weights));
        var session = model.CreateSession();
        var features = g.EncodeInputs(session);
        var options = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };
        var tokens = session.Generate(g.Ints("input_ids"), features, options).ToList();
        Assert.Equal(g.Ints("generated_ids"), tokens.Select(t => t.Id).ToArray());

        // Replay step by step to compare each logit row with generated_logits.
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
        output.WriteLine($"{fixture} {weights}:\n" + string.Join("\n", report));
        Assert.True(ok, $"{fixture} {weights}:\n" + string.Join("\n", report));
    }
}
