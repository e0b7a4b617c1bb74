using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using GoldenFixture = PureVlm.Tests.Models.GoldenFixture;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>
/// LoRA on LLaVA: a random PEFT adapter for llava-tiny (q_proj/v_proj of every LLaMA layer plus the projector's linear_1),
/// written in either key layout, applied unmerged or merged by weights-tools merge-lora, must give the logits of a
/// checkpoint with W + scale·B·A merged by hand.
/// </summary>
public sealed class LlavaLoraTests : IDisposable
{
    const string Fixture = "llava-tiny";
    const int Rank = 4, Alpha = 8, TextLayers = 3;
    const float Scale = (float)Alpha / Rank;
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    /// <summary>The adapted modules (hub names) and their [out, in] in llava-tiny (text hidden 64, 4 heads × 16, vision hidden 32).</summary>
    static readonly (string Module, int Out, int In)[] Targets =
    [
        .. Enumerable.Range(0, TextLayers).SelectMany(i => new[]
        {
            ($"language_model.model.layers.{i}.self_attn.q_proj", 64, 64),
            ($"language_model.model.layers.{i}.self_attn.v_proj", 64, 64),
        }),
        ("multi_modal_projector.linear_1", 64, 32),
    ];

    /// <summary>transformers ≥ 4.52 spelling of a llava hub name.</summary>
    static string NewName(string hub) => hub.StartsWith("language_model.model.") ? "model.language_model." + hub["language_model.model.".Length..] : "model." + hub;

    /// <summary>Random lora_A [r, in] and lora_B [out, r] per target, the same for every run.</summary>
    static Dictionary<string, (float[] A, float[] B)> RandomWeights()
    {
        var rng = new Random(20250607);
        float Next(double amplitude) => (float)((rng.NextDouble() * 2 - 1) * amplitude);
        return Targets.ToDictionary(t => t.Module, t => (
            Enumerable.Range(0, Rank * t.In).Select(_ => Next(0.3)).ToArray(),
            Enumerable.Range(0, t.Out * Rank).Select(_ => Next(0.3)).ToArray()));
    }

    /// <summary>A PEFT adapter directory: adapter_config.json (a regex target, as usual for a VLM) + adapter_model.safetensors.</summary>
    string WriteAdapter(Dictionary<string, (float[] A, float[] B)> weights, bool newLayout)
    {
        string dir = _tmp.File(newLayout ? "adapter-new" : "adapter-hub");
        Directory.CreateDirectory(dir);
        var config = new JsonObject
        {
            ["peft_type"] = "LORA", ["task_type"] = "CAUSAL_LM", ["r"] = Rank, ["lora_alpha"] = Alpha, ["lora_dropout"] = 0.0,
            ["bias"] = "none", ["fan_in_fan_out"] = false, ["use_rslora"] = false, ["use_dora"] = false,
            ["target_modules"] = @".*(language_model.*\.(q_proj|v_proj)|multi_modal_projector\.linear_1)",
        };
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
        var tensors = Targets.SelectMany(t =>
        {
            string name = "base_model.model." + (newLayout ? NewName(t.Module) : t.Module);
            var (a, b) = weights[t.Module];
            return new[] { SafeTensorsWriter.F32(name + ".lora_A.weight", a, Rank, t.In), SafeTensorsWriter.F32(name + ".lora_B.weight", b, t.Out, Rank) };
        });
        SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        return dir;
    }

    /// <summary>llava-tiny with W' = W + scale · B·A (float64 sums, one rounding to float32) for every target, written by hand.</summary>
    string WriteMerged(Dictionary<string, (float[] A, float[] B)> weights)
    {
        string dir = _tmp.File("merged");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(TestPaths.Fixture(Fixture), "config.json"), Path.Combine(dir, "config.json"));
        var entries = AdapterFiles.Read(Path.Combine(TestPaths.Fixture(Fixture), "model.safetensors")).Select(e =>
        {
            var target = Targets.FirstOrDefault(t => t.Module + ".weight" == e.Name);
            if (target.Module == null) return e;
            Assert.Equal(DType.F32, e.DType);
            Assert.Equal(new long[] { target.Out, target.In }, e.Shape);
            var w = MemoryMarshal.Cast<byte, float>(e.Bytes).ToArray();
            var (a, b) = weights[target.Module];
            for (int o = 0; o < target.Out; o++)
                for (int i = 0; i < target.In; i++)
                {
                    double delta = 0;
                    for (int j = 0; j < Rank; j++) delta += (double)b[o * Rank + j] * a[j * target.In + i];
                    w[o * target.In + i] = (float)(w[o * target.In + i] + Scale * delta);
                }
            return e with { Bytes = MemoryMarshal.AsBytes(w.AsSpan()).ToArray() };
        });
        AdapterFiles.Write(Path.Combine(dir, "model.safetensors"), entries);
        return dir;
    }

    /// <summary>Prefill logits of every row, then 4 greedy decode steps' logits, from the golden input_ids and pixel_values.</summary>
    static List<float[]> Logits(LoadedModel model, ILinearAdapters? adapters)
    {
        using var g = new GoldenFixture(Fixture, "golden.safetensors");
        var trace = new TraceRecorder();
        var session = model.CreateSession(new SessionOptions { Observer = trace, Adapters = adapters });
        var ids = g.Ints("input_ids");
        var logits = new List<float[]> { session.Prefill(ids, session.EncodeImage(g["pixel_values"])).ToArray() };
        var all = trace["logits"].Span.ToArray(); // [1, L, V]
        for (int k = 0; k < 4; k++)
        {
            int next = Array.IndexOf(logits[^1], logits[^1].Max());
            logits.Add(session.Decode(next).ToArray());
        }
        logits.Insert(0, all);
        return logits;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Unmerged_adapter_in_either_key_layout_equals_the_hand_merged_checkpoint(bool newLayout)
    {
        var weights = RandomWeights();
        using var baseModel = LoadedModel.Load(TestPaths.Fixture(Fixture));
        string adapterDir = WriteAdapter(weights, newLayout);
        var adapter = LoraAdapter.Load(adapterDir, baseModel);
        Assert.Equal(newLayout, adapter.UsesNewKeyLayout);
        Assert.Equal(AdapterModality.Both, adapter.Modality);
        Assert.Equal(Targets.Select(t => t.Module).Order(), adapter.TargetModules.Order()); // base (hub) names, whatever the file used
        Assert.All(adapter.Modules, m => Assert.Equal((Rank, Scale), (m.Rank, m.Scale)));

        using var merged = LoadedModel.Load(WriteMerged(weights));
        var want = Logits(merged, null);
        var got = Logits(baseModel, new AdapterSet(adapter));
        var plain = Logits(baseModel, null);
        MergeLoraCommand.Merge(TestPaths.Fixture(Fixture), [adapterDir], _tmp.File("merge-lora"));
        using var tool = LoadedModel.Load(_tmp.File("merge-lora"));
        var byTool = Logits(tool, null);
        Assert.Equal(want.Count, got.Count);
        for (int k = 0; k < want.Count; k++)
        {
            var (diff, scale) = GoldenFixture.Compare(got[k], want[k]);
            Assert.True(diff <= 1e-5f * scale, $"logits {k}: max|unmerged − merged| {diff:E2}, max|merged| {scale:E2}");
            (diff, _) = GoldenFixture.Compare(byTool[k], want[k]);
            Assert.True(diff <= 1e-5f * scale, $"logits {k}: max|merge-lora − merged by hand| {diff:E2}, max|merged| {scale:E2}");
            var (moved, _) = GoldenFixture.Compare(plain[k], want[k]);
            Assert.True(moved > 1e-2f * scale, $"logits {k}: the adapter moves them only {moved:E2}; the comparison would prove nothing");
        }
    }

    [Fact]
    public void Module_tree_lists_every_linear_weight_of_each_fixture_once_plus_the_output_layer()
    {
        // The old way, kept here as the oracle: every 2-D "….weight" except embeddings is a Linear, and so is the LM head.
        foreach (var fixture in new[] { "paligemma-tiny", "paligemma2-tiny", "llava-tiny", "gemma2-text-tiny", "gemma3-tiny" })
        {
            using var model = LoadedModel.Load(TestPaths.Fixture(fixture));
            var fromNames = model.Checkpoint.Tensors
                .Where(t => t.Rank == 2 && t.Name.EndsWith(".weight") && !t.Name.EndsWith("embed_tokens.weight") && !t.Name.EndsWith("position_embedding.weight"))
                .Select(t => t.Name[..^".weight".Length]).Append(model.Modules.LanguageModel.LmHead.ModulePath).Distinct().Order().ToList();
            var fromTree = model.Modules.Linears().Select(l => l.ModulePath).ToList();
            Assert.Equal(fromTree.Count, fromTree.Distinct().Count());
            Assert.Equal(fromNames, fromTree.Order().ToList());
            Assert.Same(model.Modules.LanguageModel.LmHead, model.Modules.Linears().Last());
        }
    }
}
