using PureVlm.Inspection;
using PureVlm.Adapters;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tests.Models;

namespace PureVlm.Tests.Lora;

/// <summary>The LoRA fixtures (tests/data/fixtures/*/lora, see their README.md) and a stage-by-stage comparison with a golden.</summary>
static class LoraGoldens
{
    /// <summary>golden file → adapters it was computed with (README "Goldens").</summary>
    public static readonly (string Golden, string[] Adapters)[] Cases =
    [
        ("golden-text.safetensors", ["text"]),
        ("golden-vision.safetensors", ["vision"]),
        ("golden-rslora.safetensors", ["rslora"]),
        ("golden-text+vision.safetensors", ["text", "vision"]),
    ];

    public static readonly string[] Fixtures = ["paligemma-tiny", "paligemma2-tiny"];

    public static string AdapterDir(string fixture, string adapter) => Path.Combine(TestPaths.Fixture(fixture), "lora", adapter);

    public static string[] AdaptersOf(string golden) => Cases.Single(c => c.Golden == golden).Adapters;

    /// <summary>
    /// Runs image encoding and prefill with an observer, then the 12-token greedy generation step by step, on
    /// <paramref name="model"/> with <paramref name="adapters"/> (null: none), and compares every traced stage present in the
    /// golden, every generated_logits row (rtol 1e-4) and generated_ids (exact). Returns one line per tensor, the largest
    /// relative difference and whether everything passed.
    /// </summary>
    public static (bool Ok, double MaxRel, List<string> Report) Compare(LoadedModel model, Func<ILinearAdapters?> adapters, string fixture, string golden)
    {
        using var g = new GoldenFixture(fixture, Path.Combine("lora", golden));
        using var inputs = new GoldenFixture(fixture, "golden.safetensors"); // pixel_values are not in the LoRA goldens
        var report = new List<string>();
        bool ok = true;
        double maxRel = 0;
        void Check(string name, ReadOnlySpan<float> got, ReadOnlySpan<float> want)
        {
            var (diff, scale) = GoldenFixture.Compare(got, want);
            bool pass = diff <= GoldenFixture.Rtol * scale;
            ok &= pass;
            maxRel = Math.Max(maxRel, diff / scale);
            report.Add($"{name}: max|diff| {diff:E2} (rel {diff / scale:E2}){(pass ? "" : "  FAIL")}");
        }

        var observer = new TraceRecorder();
        var traced = model.CreateSession(new SessionOptions { Observer = observer, Adapters = adapters() });
        traced.Prefill(inputs.Ints("input_ids"), traced.EncodeImage(inputs["pixel_values"]));
        int compared = 0;
        foreach (var name in observer.Names)
        {
            if (!g.Has(name)) continue;
            Check(name, observer[name].Span, g[name].Span);
            compared++;
        }
        if (compared < 8) { ok = false; report.Add($"only {compared} traced stages found in the golden"); }

        var session = model.CreateSession(new SessionOptions { Adapters = adapters() });
        var ids = session.Generate(inputs.Ints("input_ids"), session.EncodeImage(inputs["pixel_values"]),
            new Runtime.GenerationOptions { MaxNewTokens = 12, StopAtEos = false }).Select(t => t.Id).ToArray();
        var wantIds = g.Ints("generated_ids");
        bool idsOk = ids.SequenceEqual(wantIds);
        ok &= idsOk;
        report.Add($"generated_ids: {string.Join(' ', ids)}{(idsOk ? "" : $"  FAIL, want {string.Join(' ', wantIds)}")}");

        var wantLogits = g["generated_logits"];
        int vocab = wantLogits.Shape[1];
        session.Reset();
        var features = session.EncodeImage(inputs["pixel_values"]);
        var logits = session.Prefill(inputs.Ints("input_ids"), features);
        for (int k = 0; k < wantIds.Length; k++)
        {
            if (k > 0) logits = session.Decode(wantIds[k - 1]);
            Check($"generated_logits[{k}]", logits, wantLogits.Span.Slice(k * vocab, vocab));
        }
        return (ok, maxRel, report);
    }

    /// <summary>Loads the named adapters of a fixture for <paramref name="model"/>.</summary>
    public static LoraAdapter[] Load(LoadedModel model, string fixture, params string[] adapters) =>
        adapters.Select(a => LoraAdapter.Load(AdapterDir(fixture, a), model)).ToArray();
}
