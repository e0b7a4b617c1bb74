using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>config.json defaults and errors, weight-name layouts and shape checks.</summary>
public sealed class LoadingTests : IDisposable
{
    readonly string _tmp = Directory.CreateTempSubdirectory("purevlm-models-").FullName;

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    string WriteConfig(string fixture, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture(fixture), "config.json")))!.AsObject();
        edit(json);
        var path = Path.Combine(_tmp, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    static string Weights(string fixture) => Path.Combine(TestPaths.Fixture(fixture), "model.safetensors");

    [Fact]
    public void Paligemma2_uses_text_config_hidden_size_not_the_top_level_one()
    {
        var c = ModelConfig.Load(Path.Combine(TestPaths.Fixture("paligemma2-tiny"), "config.json"));
        Assert.Equal(64, c.Text.HiddenSize);
        Assert.True(c.Text.IsGemma2);
        Assert.Equal(24f, c.Text.QueryPreAttnScalar);
        Assert.Equal(36, c.Vision!.NumPatches);
    }

    [Fact]
    public void Omitted_keys_take_the_hf_config_class_defaults()
    {
        var pali = ModelConfig.Parse("""{"model_type": "paligemma"}""");
        Assert.Equal((1152, 4096, 27, 16, 224, 14, 256), (pali.Vision!.HiddenSize, pali.Vision.IntermediateSize, pali.Vision.NumHiddenLayers,
            pali.Vision.NumAttentionHeads, pali.Vision.ImageSize, pali.Vision.PatchSize, pali.Vision.NumPatches));
        Assert.Equal((2048, 18, 16384, 8, 1, 256, 257152), (pali.Text.HiddenSize, pali.Text.NumHiddenLayers, pali.Text.IntermediateSize,
            pali.Text.NumAttentionHeads, pali.Text.NumKeyValueHeads, pali.Text.HeadDim, pali.Text.VocabSize));
        Assert.Equal(256000, pali.ImageTokenIndex);

        var g2 = ModelConfig.Parse("""{"model_type": "paligemma", "text_config": {"model_type": "gemma2", "hidden_size": 2304}, "vision_config": {"num_image_tokens": 256, "patch_size": 14}}""");
        Assert.Equal((256f, 50f, 30f, 4096, 10000f, 1e-6f), (g2.Text.QueryPreAttnScalar, g2.Text.AttnLogitSoftcapping, g2.Text.FinalLogitSoftcapping,
            g2.Text.SlidingWindow, g2.Text.RopeTheta, g2.Text.RmsNormEps));
        Assert.Equal(224, g2.Vision!.ImageSize); // derived from num_image_tokens and patch_size

        var gemma = ModelConfig.Parse("""{"model_type": "gemma", "eos_token_id": [1, 107]}""");
        Assert.Equal((3072, 256, 256000), (gemma.Text.HiddenSize, gemma.Text.HeadDim, gemma.Text.VocabSize));
        Assert.Equal(new[] { 1, 107 }, gemma.EosTokenIds);
        Assert.Null(gemma.Vision);
    }

    [Fact]
    public void Llava_config_without_sub_configs_is_llava_1_5_7b()
    {
        // LlavaConfig's defaults: CLIP ViT-L/14-336 and LlamaConfig's llama-7b decoder (whose 32000-entry vocabulary
        // must grow to hold <image> = 32000, as llava-1.5-7b-hf's 32064 does).
        var c = ModelConfig.Parse("""{"model_type": "llava", "text_config": {"vocab_size": 32064}}""");
        Assert.Equal((1024, 24, 16, 336, 14, "clip_vision_model", PureVlm.Kernels.Activation.QuickGelu),
            (c.Vision!.HiddenSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.ImageSize, c.Vision.PatchSize, c.Vision.ModelType, c.Vision.HiddenAct));
        Assert.Equal((4096, 11008, 32, 32, 32, 128, 32000, PureVlm.Kernels.Activation.Silu, false),
            (c.Text.HiddenSize, c.Text.IntermediateSize, c.Text.NumHiddenLayers, c.Text.NumAttentionHeads, c.Text.NumKeyValueHeads, c.Text.HeadDim, c.Text.VocabSize - 64, c.Text.HiddenAct, c.Text.TieWordEmbeddings));
        Assert.Equal((-2, "default", PureVlm.Kernels.Activation.GeluErf, 576, 32000, 1), (c.Llava!.VisionFeatureLayer, c.Llava.VisionFeatureSelectStrategy, c.Llava.ProjectorHiddenAct, c.Llava.ImageSeqLength, c.ImageTokenIndex, c.BosTokenId));
        Assert.Equal([2], c.EosTokenIds);
    }

    [Theory]
    [InlineData("""{"text_config": {"model_type": "gemma"}}""", "model_type")]
    [InlineData("""{"model_type": "mistral"}""", "mistral")]
    [InlineData("""{"model_type": "paligemma", "vision_config": {"hidden_size": 30, "num_attention_heads": 4}}""", "vision_config.hidden_size 30")]
    [InlineData("""{"model_type": "gemma2", "num_attention_heads": 8, "num_key_value_heads": 3}""", "num_key_value_heads 3")]
    [InlineData("""{"model_type": "paligemma", "text_config": {"hidden_size": "big"}}""", "text_config.hidden_size")]
    [InlineData("""{"model_type": "paligemma", "vision_config": {"image_size": 224, "num_image_tokens": 100}}""", "num_image_tokens")]
    [InlineData("""{"model_type": "gemma", "num_hidden_layers": 0}""", "num_hidden_layers")]
    [InlineData("""{"model_type": "gemma", "hidden_activation": "relu"}""", "hidden_activation")]
    [InlineData("""{"model_type": "llava", "text_config": {"model_type": "mistral"}}""", "text_config.model_type is 'mistral', expected llama")]
    [InlineData("""{"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"}}""", "vision_config.model_type is 'siglip_vision_model', expected clip_vision_model")]
    [InlineData("""{"model_type": "llava", "vision_feature_layer": [-2, -5]}""", "vision_feature_layer is a list")]
    [InlineData("""{"model_type": "llava", "vision_feature_layer": -30}""", "vision_feature_layer is -30")]
    [InlineData("""{"model_type": "llava", "vision_feature_select_strategy": "cls"}""", "vision_feature_select_strategy is 'cls'")]
    [InlineData("""{"model_type": "llava", "image_seq_length": 577}""", "image_seq_length is 577, but the vision tower gives 576")]
    [InlineData("""{"model_type": "llava", "text_config": {"vocab_size": 32064}, "projector_hidden_act": "relu"}""", "projector_hidden_act is 'relu'")]
    [InlineData("""{"model_type": "llava"}""", "image_token_index 32000 is outside the vocabulary [0, 32000)")]
    [InlineData("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}}""", "rope_scaling")]
    [InlineData("""{"model_type": "llama", "num_attention_heads": 0}""", "num_attention_heads is 0")]
    public void Bad_config_names_the_key(string json, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Tensor_shape_that_disagrees_with_the_config_names_tensor_and_shapes()
    {
        var config = WriteConfig("gemma2-text-tiny", j => j["intermediate_size"] = 100);
        var e = Assert.Throws<InvalidModelFileException>(() => LoadedModel.Load(config, Weights("gemma2-text-tiny")));
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", e.Message);
        Assert.Contains("[128, 64]", e.Message);
        Assert.Contains("[100, 64]", e.Message);
    }

    [Fact]
    public void Missing_tensor_is_named()
    {
        var config = WriteConfig("paligemma-tiny", j => j["text_config"]!["num_hidden_layers"] = 4);
        var e = Assert.Throws<InvalidModelFileException>(() => LoadedModel.Load(config, Weights("paligemma-tiny")));
        Assert.Contains("language_model.model.layers.3.input_layernorm.weight", e.Message);
    }

    [Fact]
    public void Untied_model_without_lm_head_is_an_error_naming_it()
    {
        var config = WriteConfig("paligemma-tiny", j => j["text_config"]!["tie_word_embeddings"] = false);
        var e = Assert.Throws<InvalidModelFileException>(() => LoadedModel.Load(config, Weights("paligemma-tiny")));
        Assert.Contains("language_model.lm_head.weight", e.Message);
    }

    [Theory]
    [InlineData("paligemma-tiny")]
    [InlineData("llava-tiny")]
    public void Newer_transformers_key_layout_loads_and_gives_the_same_tokens(string fixture)
    {
        // Rename hub names to transformers ≥ 4.52 names (its _checkpoint_conversion_mapping, inverted) and write a new safetensors file.
        var dir = TestPaths.Fixture(fixture);
        string renamed = Path.Combine(_tmp, "renamed.safetensors");
        using (var src = SafeTensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            SafeTensorsWriter.Write(renamed, src.Tensors.Select(t => (Rename(t.Name), t)));
        using var g = new GoldenFixture(fixture, "golden.safetensors");
        using var model = LoadedModel.Load(Path.Combine(dir, "config.json"), renamed);
        var s = model.CreateSession();
        var ids = s.Generate(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]), new GenerationOptions { MaxNewTokens = 12, StopAtEos = false }).Select(t => t.Id);
        Assert.Equal(g.Ints("generated_ids"), ids.ToArray());

        static string Rename(string n) =>
            n.StartsWith("language_model.model.") ? "model.language_model." + n["language_model.model.".Length..]
            : n.StartsWith("language_model.lm_head.") ? n["language_model.".Length..]
            : "model." + n;
    }
}

/// <summary>Writes F32 safetensors (test helper: sorted keys, header padded to 8 bytes).</summary>
static class SafeTensorsWriter
{
    public static void Write(string path, IEnumerable<(string Name, StoredTensor Tensor)> tensors)
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var (name, t) in list)
        {
            long bytes = t.ElementCount * 4;
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
                ["shape"] = new JsonArray(t.Shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var text = header.ToJsonString();
        text += new string(' ', (8 - text.Length % 8) % 8);
        using var f = File.Create(path);
        using var w = new BinaryWriter(f);
        w.Write((ulong)text.Length);
        w.Write(System.Text.Encoding.UTF8.GetBytes(text));
        foreach (var (_, t) in list)
        {
            var data = new float[t.ElementCount];
            t.ReadFloats(0, data);
            foreach (var v in data) w.Write(v);
        }
    }
}
