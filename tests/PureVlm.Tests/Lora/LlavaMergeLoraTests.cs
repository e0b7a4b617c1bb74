using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>
/// weights-tools merge-lora on the llava-tiny fixture, with an adapter made here (the fixture ships none): one module
/// in each part (CLIP MLP, projector linear_1, LLaMA q_proj), merged and unmerged giving the same logits.
/// </summary>
public sealed class LlavaMergeLoraTests : IDisposable
{
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static readonly string[] Targets =
        ["vision_tower.vision_model.encoder.layers.0.mlp.fc1", "multi_modal_projector.linear_1", "language_model.model.layers.0.self_attn.q_proj"];

    /// <summary>A PEFT adapter, r 4, alpha 8 (scale 2), A and B drawn from a seeded generator.</summary>
    static string WriteAdapter(string dir, SafeTensorsFile model)
    {
        Directory.CreateDirectory(dir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(LoraGoldens.AdapterDir("paligemma2-tiny", "text"), "adapter_config.json")))!.AsObject();
        config["target_modules"] = new JsonArray(Targets.Select(t => (JsonNode)t).ToArray());
        config["base_model_name_or_path"] = "llava-tiny";
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config.ToJsonString());
        var tensors = new List<AdapterFiles.Entry>();
        foreach (var target in Targets)
        {
            long outDim = model[target + ".weight"].Shape[0], inDim = model[target + ".weight"].Shape[1];
            foreach (var (ab, shape) in new[] { ("A", new[] { 4, inDim }), ("B", new[] { outDim, 4L }) })
            {
                string name = $"base_model.model.{target}.lora_{ab}.weight";
                var values = new float[shape[0] * shape[1]];
                new NormalGenerator(11, name).Fill(values, 0, 0.1f);
                var bytes = new byte[values.Length * 4];
                Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                tensors.Add(new(name, DType.F32, shape, bytes));
            }
        }
        AdapterFiles.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        return dir;
    }

    [Fact]
    public void Merged_llava_changes_only_the_adapted_weights_and_gives_the_unmerged_logits()
    {
        string fixture = TestPaths.Fixture("llava-tiny"), adapter, merged = _tmp.File("merged");
        using (var f = SafeTensorsFile.Open(Path.Combine(fixture, "model.safetensors")))
            adapter = WriteAdapter(_tmp.File("adapter"), f);
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.True(PureVlm.WeightsTools.Program.Run(["merge-lora", "--model", fixture, "--lora", adapter, "--out", merged], o, e) == 0, e.ToString());
        Assert.Contains($"into {Targets.Length} of 89 tensors", o.ToString());

        using (var before = SafeTensorsFile.Open(Path.Combine(fixture, "model.safetensors")))
        using (var after = SafeTensorsFile.Open(Path.Combine(merged, "model.safetensors")))
        using (var lora = SafeTensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors")))
        {
            Assert.Equal(before.Names, after.Names);
            foreach (var name in before.Names)
            {
                string module = name[..name.LastIndexOf('.')];
                if (!Targets.Contains(module) || !name.EndsWith(".weight", StringComparison.Ordinal))
                {
                    Assert.True(before[name].Bytes.SequenceEqual(after[name].Bytes), $"{name} changed but is not an adapted weight");
                    continue;
                }
                // W' = W + 2 · B·A, restated in float64.
                var w = before[name].ToTensor().Data; var got = after[name].ToTensor().Data;
                var a = lora[$"base_model.model.{module}.lora_A.weight"].ToTensor().Data;
                var b = lora[$"base_model.model.{module}.lora_B.weight"].ToTensor().Data;
                int rows = (int)before[name].Shape[0], k = (int)before[name].Shape[1];
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < k; c++)
                    {
                        double d = 0;
                        for (int j = 0; j < 4; j++) d += (double)b[r * 4 + j] * a[j * k + c];
                        Assert.True(Math.Abs(got[r * k + c] - (w[r * k + c] + 2 * d)) <= 1e-6, $"{name}[{r}, {c}]");
                    }
            }
        }
        foreach (var file in new[] { "config.json", "preprocessor_config.json", "tokenizer.model" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(fixture, file)), File.ReadAllBytes(Path.Combine(merged, file)));

        float[] Logits(string dir, bool withAdapter)
        {
            using var model = LoadedModel.Load(dir);
            var vlm = model.VisionLanguage!;
            var session = model.CreateSession(new SessionOptions { Adapters = withAdapter ? new AdapterSet([LoraAdapter.Load(adapter, model)]) : null });
            var pixels = ImagePreprocessor.FromCheckpoint(dir).PixelValues(ImageLoader.Load(Path.Combine(fixture, "input.png")));
            return session.Prefill(ModelFamilies.PromptFormat(vlm).SyntheticIds(1, 6, model.Config.BosTokenId), session.EncodeImage(pixels)).ToArray();
        }
        var unmerged = Logits(fixture, withAdapter: true);
        var fromMerged = Logits(merged, withAdapter: false);
        var plain = Logits(fixture, withAdapter: false);
        double max = unmerged.Max(Math.Abs);
        Assert.True(unmerged.Zip(fromMerged).Max(p => Math.Abs(p.First - p.Second)) <= 1e-4 * max);
        Assert.True(unmerged.Zip(plain).Max(p => Math.Abs(p.First - p.Second)) > 1e-2 * max, "the adapter should move the logits");
    }
}
