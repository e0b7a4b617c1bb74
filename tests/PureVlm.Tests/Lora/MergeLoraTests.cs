using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>weights-tools merge-lora: dtype and layout of the output, rounding, refusals.</summary>
public sealed class MergeLoraTests : IDisposable
{
    const string Fixture = "paligemma-tiny";
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static int Run(out string stdout, out string stderr, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = PureVlm.WeightsTools.Program.Run(args, o, e);
        (stdout, stderr) = (o.ToString(), e.ToString());
        return code;
    }

    [Fact]
    public void Bf16_base_stays_bf16_adapted_weights_are_w_plus_scale_b_a_rounded_once_and_the_rest_is_copied()
    {
        string baseDir = _tmp.File("base-bf16");
        Directory.CreateDirectory(baseDir);
        File.Copy(Path.Combine(TestPaths.Fixture(Fixture), "config.json"), Path.Combine(baseDir, "config.json"));
        File.Copy(Path.Combine(TestPaths.Fixture(Fixture), "model-bf16.safetensors"), Path.Combine(baseDir, "model.safetensors"));
        string adapter = LoraGoldens.AdapterDir(Fixture, "text");
        string outDir = _tmp.File("merged");
        Assert.Equal(0, Run(out _, out string err, "merge-lora", "--model", baseDir, "--lora", adapter, "--out", outDir));
        Assert.Equal("", err);

        using var before = SafeTensorsFile.Open(Path.Combine(baseDir, "model.safetensors"));
        using var after = SafeTensorsFile.Open(Path.Combine(outDir, "model.safetensors"));
        using var lora = SafeTensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors"));
        Assert.Equal(before.Names, after.Names);
        Assert.True(File.Exists(Path.Combine(outDir, "config.json")));
        int changed = 0, offByOneUlp = 0;
        foreach (var name in before.Names)
        {
            var w = before[name];
            var m = after[name];
            Assert.Equal((w.DType, w.ShapeString), (m.DType, m.ShapeString));
            string module = name[..^".weight".Length];
            if (!lora.TryGet($"base_model.model.{module}.lora_A.weight", out var a))
            {
                Assert.True(w.Bytes.SequenceEqual(m.Bytes), $"{name} changed but is not adapted");
                continue;
            }
            changed++;
            // Independent restatement in float64: W' = W + 2 · B·A (alpha 8 / r 4), then one RNE rounding to BF16.
            var wf = w.ToTensor().Data; var af = a.ToTensor().Data; var bf = lora[$"base_model.model.{module}.lora_B.weight"].ToTensor().Data;
            int rows = (int)w.Shape[0], k = (int)w.Shape[1], r = (int)a.Shape[0];
            var got = m.As<ushort>();
            for (int o = 0; o < rows; o++)
                for (int i = 0; i < k; i++)
                {
                    double d = 0;
                    for (int j = 0; j < r; j++) d += (double)bf[o * r + j] * af[j * k + i];
                    ushort want = Tensors.Convert.F32ToBf16((float)(wf[o * k + i] + 2 * d));
                    int diff = Math.Abs(got[o * k + i] - want);
                    Assert.True(diff <= 1, $"{name}[{o}, {i}]: got bf16 0x{got[o * k + i]:X4}, want 0x{want:X4}");
                    offByOneUlp += diff;
                }
        }
        Assert.Equal(21, changed);
        Assert.True(offByOneUlp <= 20, $"{offByOneUlp} elements one bf16 ulp away (float32 vs float64 merge at a rounding tie)");
    }

    [Fact]
    public void Sharded_base_keeps_its_shards_and_index_and_matches_the_golden()
    {
        // Split the fixture into two shards (vision + projector | language model) with an index, as save_pretrained would.
        string baseDir = _tmp.File("sharded");
        Directory.CreateDirectory(baseDir);
        File.Copy(Path.Combine(TestPaths.Fixture(Fixture), "config.json"), Path.Combine(baseDir, "config.json"));
        var all = AdapterFiles.Read(Path.Combine(TestPaths.Fixture(Fixture), "model.safetensors"));
        var map = new JsonObject();
        foreach (var (shard, part) in new[] { ("model-00001-of-00002.safetensors", all.Where(t => !t.Name.StartsWith("language_model"))), ("model-00002-of-00002.safetensors", all.Where(t => t.Name.StartsWith("language_model"))) })
        {
            AdapterFiles.Write(Path.Combine(baseDir, shard), part);
            foreach (var t in part) map[t.Name] = shard;
        }
        File.WriteAllText(Path.Combine(baseDir, Checkpoint.IndexFileName), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = map }.ToJsonString());

        string outDir = _tmp.File("merged");
        MergeLoraCommand.Merge(baseDir, [LoraGoldens.AdapterDir(Fixture, "text"), LoraGoldens.AdapterDir(Fixture, "vision")], outDir);
        Assert.Equal(Directory.GetFiles(baseDir).Select(Path.GetFileName).Order(), Directory.GetFiles(outDir).Select(Path.GetFileName).Order());
        using var model = LoadedModel.Load(outDir);
        var (ok, _, report) = LoraGoldens.Compare(model, () => null, Fixture, "golden-text+vision.safetensors");
        Assert.True(ok, string.Join("\n", report));
    }

    [Fact]
    public void Output_into_an_input_directory_is_refused()
    {
        string adapter = LoraGoldens.AdapterDir(Fixture, "vision");
        Assert.Equal(1, Run(out _, out string e1, "merge-lora", "--model", TestPaths.Fixture(Fixture), "--lora", adapter, "--out", TestPaths.Fixture(Fixture)));
        Assert.Contains("input directory", e1);
        Assert.Equal(1, Run(out _, out string e2, "merge-lora", "--model", TestPaths.Fixture(Fixture), "--lora", adapter, "--out", adapter + "/"));
        Assert.Contains("input directory", e2);
    }

    [Fact]
    public void Missing_lora_option_is_a_usage_error_and_a_bad_adapter_names_the_field()
    {
        Assert.Equal(2, Run(out _, out string e, "merge-lora", "--model", TestPaths.Fixture(Fixture), "--out", _tmp.File("x")));
        Assert.Contains("--lora", e);
        string bad = AdapterFiles.Copy(Fixture, "vision", _tmp.File("dora"), c => c["use_dora"] = true);
        Assert.Equal(1, Run(out _, out string e2, "merge-lora", "--model", TestPaths.Fixture(Fixture), "--lora", bad, "--out", _tmp.File("y")));
        Assert.Contains("use_dora", e2);
    }
}
