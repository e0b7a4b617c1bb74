using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using GoldenFixture = PureVlm.Tests.Models.GoldenFixture;
using MolmoModelTests = PureVlm.Tests.Models.MolmoModelTests;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>
/// LoRA on Molmo's fused modules: a random PEFT adapter for molmo-tiny on every block's att_proj and ff_proj (the
/// names PEFT sees in the remote code) plus the projector's w1, applied unmerged, must give the logits of the
/// checkpoint weights-tools merge-lora writes (W + scale·B·A), and differ from the base model's.
/// </summary>
public sealed class MolmoLoraTests : IDisposable
{
    const int Rank = 4, Alpha = 8;
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static readonly (string Module, int Out, int In)[] Targets =
    [
        .. Enumerable.Range(0, 3).SelectMany(i => new[]
        {
            ($"model.transformer.blocks.{i}.att_proj", 128, 64),
            ($"model.transformer.blocks.{i}.ff_proj", 192, 64),
        }),
        ("model.vision_backbone.image_projector.w1", 96, 32),
    ];

    string WriteAdapter()
    {
        string dir = _tmp.File("adapter");
        Directory.CreateDirectory(dir);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = Rank, ["lora_alpha"] = Alpha, ["lora_dropout"] = 0.0,
            ["bias"] = "none", ["fan_in_fan_out"] = false, ["use_rslora"] = false, ["use_dora"] = false,
            ["target_modules"] = @".*(att_proj|ff_proj|image_projector\.w1)",
        };
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
        var rng = new Random(20251130);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * 0.3)).ToArray();
        SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), Targets.SelectMany(t => new[]
        {
            SafeTensorsWriter.F32($"base_model.model.{t.Module}.lora_A.weight", Random(Rank * t.In), Rank, t.In),
            SafeTensorsWriter.F32($"base_model.model.{t.Module}.lora_B.weight", Random(t.Out * Rank), t.Out, Rank),
        }));
        return dir;
    }

    static float[] Logits(LoadedModel model, ILinearAdapters? adapters)
    {
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        var session = model.CreateSession(new SessionOptions { Adapters = adapters });
        var logits = session.Prefill(g.Ints("input_ids"), session.EncodeImage(MolmoModelTests.GoldenCrops(g))).ToArray();
        return [.. logits, .. session.Decode(Array.IndexOf(logits, logits.Max())).ToArray()];
    }

    [Fact]
    public void Unmerged_adapter_on_the_fused_modules_equals_the_merged_checkpoint()
    {
        string fixture = TestPaths.Fixture("molmo-tiny"), adapterDir = WriteAdapter();
        using var baseModel = LoadedModel.Load(fixture);
        var adapter = LoraAdapter.Load(adapterDir, baseModel);
        Assert.Equal(AdapterModality.Both, adapter.Modality);
        Assert.Equal(Targets.Select(t => t.Module).Order(), adapter.TargetModules.Order());

        MergeLoraCommand.Merge(fixture, [adapterDir], _tmp.File("merged"));
        using var merged = LoadedModel.Load(_tmp.File("merged"));
        var want = Logits(merged, null);
        var got = Logits(baseModel, new AdapterSet(adapter));
        var (diff, scale) = GoldenFixture.Compare(got, want);
        Assert.True(diff <= GoldenFixture.Rtol * scale, $"unmerged vs merged: max|diff| {diff:E2} (rel {diff / scale:E2})");
        var (change, _) = GoldenFixture.Compare(Logits(baseModel, null), want);
        Assert.True(change > 100 * diff, $"the adapter moves the logits by only {change:E2}");
    }
}
