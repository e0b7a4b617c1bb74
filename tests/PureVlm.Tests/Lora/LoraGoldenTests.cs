using PureVlm.Adapters;
using PureVlm.Runtime;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Lora;

/// <summary>
/// Every LoRA golden (text, vision, rslora, text+vision on paligemma-tiny and paligemma2-tiny) reproduced stage by stage
/// (rtol 1e-4), with identical greedy ids, applied unmerged and merged by weights-tools merge-lora.
/// </summary>
public class LoraGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var f in LoraGoldens.Fixtures)
            foreach (var (golden, _) in LoraGoldens.Cases) data.Add(f, golden);
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Unmerged_lora_matches_golden_stage_by_stage_and_greedy_ids(string fixture, string golden)
    {
        using var model = LoadedModel.Load(TestPaths.Fixture(fixture));
        var adapters = LoraGoldens.Load(model, fixture, LoraGoldens.AdaptersOf(golden));
        var (ok, maxRel, report) = LoraGoldens.Compare(model, () => new AdapterSet(adapters), fixture, golden);
        output.WriteLine($"{fixture} {golden} unmerged: max rel {maxRel:E2}\n" + string.Join("\n", report));
        Assert.True(ok, $"{fixture} {golden} unmerged:\n" + string.Join("\n", report));
    }

    [Theory, MemberData(nameof(Cases))]
    public void Merged_checkpoint_matches_golden_stage_by_stage_and_greedy_ids(string fixture, string golden)
    {
        using var tmp = new TempDir();
        string merged = tmp.File("merged");
        var dirs = LoraGoldens.AdaptersOf(golden).Select(a => LoraGoldens.AdapterDir(fixture, a)).ToList();
        MergeLoraCommand.Merge(TestPaths.Fixture(fixture), dirs, merged);
        using var model = LoadedModel.Load(merged);
        var (ok, maxRel, report) = LoraGoldens.Compare(model, () => null, fixture, golden);
        output.WriteLine($"{fixture} {golden} merged: max rel {maxRel:E2}\n" + string.Join("\n", report));
        Assert.True(ok, $"{fixture} {golden} merged:\n" + string.Join("\n", report));
    }

    [Theory, MemberData(nameof(FixtureNames))]
    public void Switching_adapters_between_requests_on_one_model_gives_each_golden_in_turn(string fixture)
    {
        using var model = LoadedModel.Load(TestPaths.Fixture(fixture));
        var all = new[] { "text", "vision", "rslora" }.ToDictionary(a => a, a => LoraAdapter.Load(LoraGoldens.AdapterDir(fixture, a), model));
        foreach (var golden in new[] { "golden-text.safetensors", "golden-vision.safetensors", "golden-text+vision.safetensors", "golden-rslora.safetensors", "golden-text.safetensors" })
        {
            var set = LoraGoldens.AdaptersOf(golden).Select(a => all[a]).ToArray();
            var (ok, _, report) = LoraGoldens.Compare(model, () => new AdapterSet(set), fixture, golden);
            Assert.True(ok, $"{fixture} {golden}:\n" + string.Join("\n", report));
        }
        // No adapter after all of them: the base golden's ids.
        using var g = new Models.GoldenFixture(fixture, "golden.safetensors");
        var s = model.CreateSession();
        var ids = s.Generate(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]), new Runtime.GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), ids.Select(t => t.Id).ToArray());
    }

    public static TheoryData<string> FixtureNames() => new(LoraGoldens.Fixtures);

    [Fact]
    public void Parallel_sessions_with_different_adapter_sets_on_one_model_each_match_their_golden()
    {
        const string fixture = "paligemma2-tiny";
        using var model = LoadedModel.Load(TestPaths.Fixture(fixture));
        var all = new[] { "text", "vision", "rslora" }.ToDictionary(a => a, a => LoraAdapter.Load(LoraGoldens.AdapterDir(fixture, a), model));
        var goldens = LoraGoldens.Cases.Select(c => c.Golden).ToArray();
        var results = new (bool Ok, double MaxRel, List<string> Report)[goldens.Length * 2];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = results.Length }, i =>
        {
            string golden = goldens[i % goldens.Length];
            var set = LoraGoldens.AdaptersOf(golden).Select(a => all[a]).ToArray();
            results[i] = LoraGoldens.Compare(model, () => new AdapterSet(set), fixture, golden);
        });
        for (int i = 0; i < results.Length; i++)
            Assert.True(results[i].Ok, $"{goldens[i % goldens.Length]}:\n" + string.Join("\n", results[i].Report));
    }
}
