using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>What a loaded adapter reports, both key layouts, and the error for each unsupported or inconsistent input.</summary>
public sealed class LoraLoadingTests : IDisposable
{
    const string Fixture = "paligemma-tiny";
    readonly TempDir _tmp = new();
    readonly LoadedModel _model = LoadedModel.Load(TestPaths.Fixture(Fixture));

    public void Dispose() { _model.Dispose(); _tmp.Dispose(); }

    string Dir() => _tmp.File(Guid.NewGuid().ToString("N"));

    InvalidModelFileException Refused(string adapter, Action<JsonObject>? config = null, Func<List<AdapterFiles.Entry>, IEnumerable<AdapterFiles.Entry>>? tensors = null)
    {
        string dir = AdapterFiles.Copy(Fixture, adapter, Dir(), config, tensors);
        return Assert.Throws<InvalidModelFileException>(() => LoraAdapter.Load(dir, _model));
    }

    [Fact]
    public void Fixture_adapters_report_modality_base_target_names_ranks_and_scales()
    {
        var text = LoraAdapter.Load(LoraGoldens.AdapterDir(Fixture, "text"), _model);
        var vision = LoraAdapter.Load(LoraGoldens.AdapterDir(Fixture, "vision"), _model);
        var rslora = LoraAdapter.Load(LoraGoldens.AdapterDir(Fixture, "rslora"), _model);
        Assert.Equal(("text", AdapterModality.Text, 21), (text.Name, text.Modality, text.TargetModules.Count));
        Assert.Equal(("vision", AdapterModality.Vision, 13), (vision.Name, vision.Modality, vision.TargetModules.Count));
        Assert.Equal(AdapterModality.Text, rslora.Modality);
        Assert.Contains("language_model.model.layers.2.mlp.down_proj", text.TargetModules);
        Assert.Contains("multi_modal_projector.linear", vision.TargetModules);
        Assert.All(text.Modules, m => Assert.Equal((4, 2f), (m.Rank, m.Scale)));
        // README: rslora scale alpha/sqrt(r) = 4, rank_pattern r = 2 → 8/sqrt(2), alpha_pattern alpha = 16 → 16/2.
        var scales = rslora.Modules.ToDictionary(m => m.ModulePath, m => (m.Rank, m.Scale));
        Assert.Equal((2, (float)(8 / Math.Sqrt(2))), scales["language_model.model.layers.1.self_attn.q_proj"]);
        Assert.Equal((4, 8f), scales["language_model.model.layers.0.self_attn.v_proj"]);
        Assert.Equal((4, 4f), scales["language_model.model.layers.2.self_attn.q_proj"]);
        Assert.False(text.UsesNewKeyLayout);
    }

    [Fact]
    public void Newer_key_layout_adapters_on_a_hub_layout_base_match_the_goldens()
    {
        // A transformers ≥ 4.52 save names modules model.language_model.…; its target_modules and pattern keys are
        // written against those names (here: the full module names, and patterns without the old "model." prefix).
        string Renamed(string adapter) => AdapterFiles.Copy(Fixture, adapter, Dir(),
            config: c =>
            {
                var keys = AdapterFiles.Read(Path.Combine(LoraGoldens.AdapterDir(Fixture, adapter), "adapter_model.safetensors"));
                c["target_modules"] = new JsonArray(keys.Where(k => k.Name.EndsWith(".lora_A.weight"))
                    .Select(k => (JsonNode)AdapterFiles.ToNewLayout(k.Name["base_model.model.".Length..^".lora_A.weight".Length])).ToArray());
                foreach (var field in new[] { "rank_pattern", "alpha_pattern" })
                    c[field] = new JsonObject(c[field]!.AsObject().Select(p => KeyValuePair.Create<string, JsonNode?>("language_" + p.Key, p.Value!.DeepClone())));
            },
            tensors: list => list.Select(e => e with { Name = "base_model.model." + AdapterFiles.ToNewLayout(e.Name["base_model.model.".Length..]) }));
        var text = LoraAdapter.Load(Renamed("text"), _model);
        var vision = LoraAdapter.Load(Renamed("vision"), _model);
        var rslora = LoraAdapter.Load(Renamed("rslora"), _model);
        Assert.True(text.UsesNewKeyLayout);
        Assert.Contains("language_model.model.layers.0.self_attn.q_proj", text.TargetModules); // base names
        foreach (var (golden, set) in new[] { ("golden-text+vision.safetensors", new[] { text, vision }), ("golden-rslora.safetensors", new[] { rslora }) })
        {
            var (ok, _, report) = LoraGoldens.Compare(_model, () => new AdapterSet(set), Fixture, golden);
            Assert.True(ok, golden + ":\n" + string.Join("\n", report));
        }
    }

    [Fact]
    public void Hub_layout_adapters_on_a_newer_layout_base_match_the_goldens()
    {
        string baseDir = Dir();
        Directory.CreateDirectory(baseDir);
        File.Copy(Path.Combine(TestPaths.Fixture(Fixture), "config.json"), Path.Combine(baseDir, "config.json"));
        AdapterFiles.Write(Path.Combine(baseDir, "model.safetensors"),
            AdapterFiles.Read(Path.Combine(TestPaths.Fixture(Fixture), "model.safetensors")).Select(e => e with { Name = AdapterFiles.ToNewLayout(e.Name) }));
        using var model = LoadedModel.Load(baseDir);
        var set = LoraGoldens.Load(model, Fixture, "text", "vision");
        Assert.Contains("model.language_model.layers.0.self_attn.q_proj", set[0].TargetModules);
        var (ok, _, report) = LoraGoldens.Compare(model, () => new AdapterSet(set), Fixture, "golden-text+vision.safetensors");
        Assert.True(ok, string.Join("\n", report));
    }

    [Theory]
    [InlineData("use_dora", "true")]
    [InlineData("fan_in_fan_out", "true")]
    [InlineData("lora_bias", "true")]
    [InlineData("bias", "\"all\"")]
    [InlineData("layers_to_transform", "[0, 1]")]
    [InlineData("layers_pattern", "\"layers\"")]
    [InlineData("layer_replication", "[[0, 2]]")]
    [InlineData("peft_type", "\"IA3\"")]
    [InlineData("r", "0")]
    [InlineData("lora_alpha", "\"eight\"")]
    [InlineData("rank_pattern", "[1]")]
    [InlineData("target_modules", "null")]
    public void Unsupported_or_invalid_config_field_is_refused_naming_it(string field, string json)
    {
        var e = Refused("text", config: c => c[field] = JsonNode.Parse(json));
        Assert.Contains($"'{field}'", e.Message);
        Assert.Contains("adapter_config.json", e.Message);
    }

    [Fact]
    public void Bad_target_regex_is_refused_naming_the_field_and_pattern()
    {
        var e = Refused("vision", config: c => c["target_modules"] = "vision_tower.(.*_proj");
        Assert.Contains("target_modules", e.Message);
        Assert.Contains("vision_tower.(.*_proj", e.Message);
    }

    [Fact]
    public void Unknown_config_fields_are_ignored()
    {
        string dir = AdapterFiles.Copy(Fixture, "vision", Dir(), c => { c["future_option"] = new JsonObject { ["x"] = 1 }; c["lora_dropout"] = 0.3; });
        Assert.Equal(13, LoraAdapter.Load(dir, _model).Modules.Count);
    }

    [Fact]
    public void Regex_target_modules_select_modules_as_peft_fullmatch_does()
    {
        // Equivalent to the vision list: a regex over full names (fullmatch), not a search.
        string dir = AdapterFiles.Copy(Fixture, "vision", Dir(), c => c["target_modules"] = @"vision_tower\..*\.(q|k|v|out)_proj|.*\.fc[12]|multi_modal_projector\.linear");
        Assert.Equal(13, LoraAdapter.Load(dir, _model).Modules.Count);
        // "fc1" alone fullmatches no module name, so the tensors are left without a target.
        var e = Refused("vision", config: c => c["target_modules"] = "fc1|fc2|q_proj|k_proj|v_proj|out_proj|multi_modal_projector.linear");
        Assert.Contains("does not select", e.Message);
    }

    [Fact]
    public void Missing_lora_B_is_refused_naming_the_module()
    {
        const string module = "language_model.model.layers.1.mlp.up_proj";
        var e = Refused("text", tensors: l => l.Where(t => t.Name != $"base_model.model.{module}.lora_B.weight"));
        Assert.Contains(module, e.Message);
        Assert.Contains("lora_B", e.Message);
    }

    [Fact]
    public void Target_without_tensors_is_refused_naming_the_module()
    {
        const string module = "language_model.model.layers.2.self_attn.o_proj";
        var e = Refused("text", tensors: l => l.Where(t => !t.Name.Contains(module + ".")));
        Assert.Contains(module, e.Message);
        Assert.Contains("target_modules", e.Message);
    }

    [Fact]
    public void Tensors_for_an_untargeted_module_are_refused_naming_the_module()
    {
        const string module = "language_model.model.layers.0.self_attn.k_proj"; // rslora targets only q_proj and v_proj
        var e = Refused("rslora", tensors: l => l.Concat(
        [
            new($"base_model.model.{module}.lora_A.weight", DType.F32, [4, 64], new byte[4 * 64 * 4]),
            new($"base_model.model.{module}.lora_B.weight", DType.F32, [32, 4], new byte[32 * 4 * 4]),
        ]));
        Assert.Contains(module, e.Message);
        Assert.Contains("does not select", e.Message);
    }

    [Fact]
    public void Tensors_for_a_module_the_base_lacks_are_refused_naming_it()
    {
        const string module = "language_model.model.layers.7.self_attn.q_proj";
        var e = Refused("rslora", tensors: l => l.Concat(
        [
            new($"base_model.model.{module}.lora_A.weight", DType.F32, [4, 64], new byte[4 * 64 * 4]),
            new($"base_model.model.{module}.lora_B.weight", DType.F32, [64, 4], new byte[64 * 4 * 4]),
        ]));
        Assert.Contains(module, e.Message);
        Assert.Contains("not a Linear of the base model", e.Message);
    }

    [Fact]
    public void A_non_lora_tensor_is_refused_naming_it_and_modules_to_save()
    {
        const string name = "base_model.model.multi_modal_projector.linear.weight";
        var e = Refused("vision", c => c["modules_to_save"] = new JsonArray("multi_modal_projector"),
            l => l.Append(new AdapterFiles.Entry(name, DType.F32, [64, 32], new byte[64 * 32 * 4])));
        Assert.Contains(name, e.Message);
        Assert.Contains("modules_to_save", e.Message);
        var plain = Refused("vision", tensors: l => l.Append(new AdapterFiles.Entry(name, DType.F32, [64, 32], new byte[64 * 32 * 4])));
        Assert.Contains(name, plain.Message);
    }

    [Fact]
    public void Shape_disagreeing_with_the_base_is_refused_naming_the_module()
    {
        const string module = "vision_tower.vision_model.encoder.layers.1.mlp.fc2"; // in 64 → lora_A [2, 64]
        var e = Refused("vision", tensors: l => l.Select(t => t.Name == $"base_model.model.{module}.lora_A.weight"
            ? t with { Shape = [4, 32] } : t));
        Assert.Contains(module, e.Message);
        Assert.Contains("lora_A has shape [4, 32], expected [2, 64]", e.Message);
    }

    [Fact]
    public void Rank_disagreeing_with_r_is_refused_naming_the_module_and_r()
    {
        var e = Refused("vision", config: c => c["r"] = 3);
        Assert.Contains("lora_A has shape [2,", e.Message);
        Assert.Contains("r = 3", e.Message);
    }

    [Fact]
    public void Pickle_only_adapter_is_refused_naming_the_file()
    {
        string dir = Dir();
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(LoraGoldens.AdapterDir(Fixture, "text"), "adapter_config.json"), Path.Combine(dir, "adapter_config.json"));
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.bin"), [0x80, 0x02]);
        var e = Assert.Throws<InvalidModelFileException>(() => LoraAdapter.Load(dir, _model));
        Assert.Contains("adapter_model.bin", e.Message);
    }

    [Fact]
    public void Adapter_for_another_model_is_refused_by_shape()
    {
        using var other = LoadedModel.Load(TestPaths.Fixture("paligemma2-tiny"));
        var e = Assert.Throws<InvalidModelFileException>(() => LoraAdapter.Load(LoraGoldens.AdapterDir(Fixture, "vision"), other));
        // Modules are resolved in the base's forward order, so the first mismatch is in the vision tower (d 32 vs 48).
        Assert.Contains("module 'vision_tower.vision_model.encoder.layers.0.self_attn.q_proj': lora_A has shape [2, 32], expected [2, 48]", e.Message);
    }

    [Fact]
    public void Requests_select_adapters_by_name_and_an_unknown_name_lists_the_loaded_ones()
    {
        var loaded = LoraGoldens.Load(_model, Fixture, "text", "vision");
        Assert.Null(AdapterSet.Select(loaded, []));
        Assert.Equal(["vision", "text"], AdapterSet.Select(loaded, ["vision", "text"])!.Adapters.Select(a => a.Name));
        var e = Assert.Throws<ArgumentException>(() => AdapterSet.Select(loaded, ["rslora"]));
        Assert.Contains("'rslora'", e.Message);
        Assert.Contains("text, vision", e.Message);
    }

    [Fact]
    public void Same_adapter_twice_in_a_set_is_refused()
    {
        var a = LoraAdapter.Load(LoraGoldens.AdapterDir(Fixture, "vision"), _model);
        Assert.Throws<ArgumentException>(() => new AdapterSet(a, a));
    }

    [Fact]
    public void Adapter_and_base_files_are_never_modified_by_loading_applying_or_merging()
    {
        string loraRoot = Path.Combine(TestPaths.Fixture(Fixture), "lora");
        var before = AdapterFiles.Hashes(loraRoot);
        var baseBefore = AdapterFiles.Hashes(TestPaths.Fixture(Fixture));
        var set = LoraGoldens.Load(_model, Fixture, "text", "vision", "rslora");
        var (ok, _, _) = LoraGoldens.Compare(_model, () => new AdapterSet(set), Fixture, "golden-text.safetensors");
        Assert.False(ok); // three adapters are not the text golden: the deltas were really applied
        PureVlm.WeightsTools.MergeLoraCommand.Merge(TestPaths.Fixture(Fixture), [LoraGoldens.AdapterDir(Fixture, "text"), LoraGoldens.AdapterDir(Fixture, "vision")], _tmp.File("merged"));
        Assert.Equal(before, AdapterFiles.Hashes(loraRoot));
        Assert.Equal(baseBefore, AdapterFiles.Hashes(TestPaths.Fixture(Fixture)));
    }
}
