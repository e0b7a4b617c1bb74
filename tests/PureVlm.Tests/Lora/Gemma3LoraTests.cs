using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;
using GoldenFixture = PureVlm.Tests.Models.GoldenFixture;

namespace PureVlm.Tests.Lora;

/// <summary>
/// LoRA on Gemma 3: a random PEFT adapter for gemma3-tiny on every q_proj (whose output QK-norm then normalises) and the
/// SigLIP fc1s, in transformers ≥ 4.52 names, applied unmerged, gives the logits of weights-tools merge-lora's checkpoint.
/// </summary>
public sealed class Gemma3LoraTests : IDisposable
{
    const string Fixture = "gemma3-tiny";
    const int Rank = 4, Alpha = 8;
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>Adapted modules (new-layout names) and their [out, in]: text q_proj 64 × 72, vision fc1 64 × 32.</summary>
    static readonly (string Module, int Out, int In)[] Targets =
    [
        .. Enumerable.Range(0, 7).Select(i => ($"model.language_model.layers.{i}.self_attn.q_proj", 64, 72)),
        .. Enumerable.Range(0, 2).Select(i => ($"model.vision_tower.vision_model.encoder.layers.{i}.mlp.fc1", 64, 32)),
    ];

    string WriteAdapter()
    {
        string dir = _tmp.File("adapter");
        Directory.CreateDirectory(dir);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["r"] = Rank, ["lora_alpha"] = Alpha, ["lora_dropout"] = 0.0, ["bias"] = "none",
            ["target_modules"] = @".*(language_model.*\.q_proj|fc1)",
        };
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
        var rng = new Random(20250312);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * 0.3)).ToArray();
        SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), Targets.SelectMany(t => new[]
        {
            SafeTensorsWriter.F32($"base_model.model.{t.Module}.lora_A.weight", Random(Rank * t.In), Rank, t.In),
            SafeTensorsWriter.F32($"base_model.model.{t.Module}.lora_B.weight", Random(t.Out * Rank), t.Out, Rank),
        }));
        return dir;
    }

    static float[] PrefillLogits(LoadedModel model, ILinearAdapters? adapters)
    {
        using var g = new GoldenFixture(Fixture, "golden.safetensors");
        var session = model.CreateSession(new SessionOptions { Adapters = adapters });
        return session.Prefill(g.Ints("input_ids"), session.EncodeImage(g["pixel_values"])).ToArray();
    }

    [Fact]
    public void Unmerged_adapter_equals_merge_lora_and_moves_the_logits()
    {
        using var model = LoadedModel.Load(TestPaths.Fixture(Fixture));
        string adapterDir = WriteAdapter();
        var adapter = LoraAdapter.Load(adapterDir, model);
        Assert.True(adapter.UsesNewKeyLayout);
        Assert.Equal(AdapterModality.Both, adapter.Modality);
        Assert.Equal(9, adapter.Modules.Count);

        var got = PrefillLogits(model, new AdapterSet(adapter));
        var plain = PrefillLogits(model, null);
        MergeLoraCommand.Merge(TestPaths.Fixture(Fixture), [adapterDir], _tmp.File("merged"));
        using var merged = LoadedModel.Load(_tmp.File("merged"));
        var want = PrefillLogits(merged, null);
        var (diff, scale) = GoldenFixture.Compare(got, want);
        Assert.True(diff <= 1e-5f * scale, $"max|unmerged − merged| {diff:E2}, max|merged| {scale:E2}");
        var (moved, _) = GoldenFixture.Compare(plain, want);
        Assert.True(moved > 1e-2f * scale, $"the adapter moves the logits only {moved:E2}; the comparison would prove nothing");
    }
}
