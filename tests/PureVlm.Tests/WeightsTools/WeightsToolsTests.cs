using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.WeightsTools;

public class WeightsToolsTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.WeightsTools(args);

    static string Fixture(string dir, string file) => Path.Combine(TestPaths.Fixture(dir), file);

    [Fact]
    public void Inspect_lists_every_tensor_and_totals()
    {
        var (code, output, err) = Run("inspect", Fixture("paligemma-tiny", "model.safetensors"));
        Assert.Equal(0, code);
        Assert.Empty(err);
        using var f = SafeTensorsFile.Open(Fixture("paligemma-tiny", "model.safetensors"));
        Assert.Contains("language_model.model.embed_tokens.weight\tF32\t[300, 64]\t76800\tmodel.safetensors", output);
        Assert.Contains($"tensors: {f.Names.Count}\n", output);
        Assert.Contains($"bytes: {f.FileLength - f.DataOffset}\n", output);
        Assert.Contains($"parameters: {(f.FileLength - f.DataOffset) / 4}\n", output);
    }

    [Fact]
    public void Inspect_of_a_malformed_file_exits_1_with_one_line_naming_it()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, [16, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']);
        var (code, output, err) = Run("inspect", path);
        Assert.Equal(1, code);
        Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.Contains(path, err);
        Assert.Contains("runs past the end of the file", err);
        Assert.DoesNotContain(" at ", err);
    }

    [Theory]
    [InlineData("inspect")]
    [InlineData("convert")]
    [InlineData("synth")]
    [InlineData("quantize")]
    [InlineData("merge-lora")]
    public void Every_command_has_help_and_rejects_bad_usage_with_exit_2(string command)
    {
        var (code, output, _) = Run(command, "--help");
        Assert.Equal(0, code);
        Assert.StartsWith($"usage: weights-tools {command}", output);
        var (bad, _, err) = Run(command, "--no-such-option", "x");
        Assert.Equal(2, bad);
        Assert.Single(err.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void Unknown_command_and_no_arguments_exit_2()
    {
        Assert.Equal(2, Run("frobnicate").Code);
        Assert.Equal(2, Run().Code);
        Assert.Equal(2, Run("synth", "--arch", "paligemma-9b", "--dtype", "bf16", "--out", "x").Code);
        Assert.Equal(2, Run("convert", "--in", "a", "--out", "b", "--dtype", "f8").Code);
        var (bits, _, err) = Run("quantize", "--model", "a", "--out", "b", "--bits", "3");
        Assert.Equal(2, bits);
        Assert.Contains("--bits '3'", err);
        Assert.Equal(2, Run("quantize", "--model", "a", "--out", "b", "--bits", "4", "--group-size", "48").Code);
        Assert.Equal(2, Run("quantize", "--model", "a", "--out", "b", "--bits", "4", "--skip", "(").Code);
    }

    [Theory]
    [InlineData("paligemma-tiny")]
    [InlineData("paligemma2-tiny")]
    [InlineData("gemma2-text-tiny")]
    [InlineData("llava-tiny")]
    public void Convert_f32_to_bf16_matches_the_PyTorch_rounded_fixture_byte_for_byte(string fixture)
    {
        using var dir = new TempDir();
        var (code, _, err) = Run("convert", "--in", Fixture(fixture, "model.safetensors"), "--out", dir.Path, "--dtype", "bf16");
        Assert.True(code == 0, err);
        Assert.Equal(File.ReadAllBytes(Fixture(fixture, "model-bf16.safetensors")), File.ReadAllBytes(dir.File("model.safetensors")));
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
        Assert.Equal("bfloat16", (string?)config["torch_dtype"]);
    }

    [Fact]
    public void Convert_bf16_to_f32_is_exact_and_refuses_to_overwrite_its_input()
    {
        using var dir = new TempDir();
        Assert.Equal(0, Run("convert", "--in", Fixture("paligemma-tiny", "model-bf16.safetensors"), "--out", dir.Path, "--dtype", "f32").Code);
        using var a = SafeTensorsFile.Open(dir.File("model-bf16.safetensors"));
        using var b = SafeTensorsFile.Open(Fixture("paligemma-tiny", "model-bf16.safetensors"));
        foreach (var t in b.Tensors)
        {
            var expected = new float[t.ElementCount];
            t.ReadFloats(0, expected);
            Assert.Equal(DType.F32, a[t.Name].DType);
            Assert.Equal(expected, a[t.Name].As<float>().ToArray());
        }
        string copy = dir.File("model-bf16.safetensors");
        byte[] before = File.ReadAllBytes(copy);
        var (code, _, err) = Run("convert", "--in", copy, "--out", dir.Path, "--dtype", "f16");
        Assert.Equal(1, code);
        Assert.Contains("input", err);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    static readonly PaliGemmaArch Tiny = PaliGemmaArch.PaliGemma2_3b224 with
    {
        Name = "tiny", ImageSize = 28, VisionHidden = 8, VisionLayers = 2, VisionHeads = 2, VisionIntermediate = 16,
        TextHidden = 12, TextLayers = 2, Heads = 2, KvHeads = 1, HeadDim = 6, TextIntermediate = 24, Vocab = 50, ImageTokenIndex = 49,
    };

    [Fact]
    public void Synth_tiny_writes_a_sharded_checkpoint_that_loads_and_converts_keeping_shards()
    {
        using var dir = new TempDir();
        string synth = Path.Combine(dir.Path, "synth"), converted = Path.Combine(dir.Path, "f32");
        var shards = SynthCommand.Synthesize(Tiny, DType.BF16, synth, seed: 7, maxShardBytes: 2000);
        Assert.True(shards.Count > 1);
        Assert.Equal($"model-00001-of-{shards.Count:D5}.safetensors", shards[0]);
        using (var ckpt = Checkpoint.Open(synth))
        {
            var expected = Tiny.Tensors().ToList();
            Assert.Equal(expected.Select(t => t.Name).Order(StringComparer.Ordinal), ckpt.Names.Order(StringComparer.Ordinal));
            foreach (var t in expected) Assert.Equal(t.Shape, ckpt[t.Name].Shape);
            var w = new float[ckpt["language_model.model.embed_tokens.weight"].ElementCount];
            ckpt["language_model.model.embed_tokens.weight"].ReadFloats(0, w);
            double mean = w.Average(), std = Math.Sqrt(w.Select(x => (x - mean) * (x - mean)).Average());
            Assert.InRange(mean, -0.005, 0.005);
            Assert.InRange(std, 0.017, 0.023);
            var ln = ckpt["vision_tower.vision_model.post_layernorm.weight"].ToTensor();
            Assert.All(ln.Span.ToArray(), x => Assert.InRange(x, 0.9f, 1.1f));
            var index = JsonNode.Parse(File.ReadAllText(Path.Combine(synth, Checkpoint.IndexFileName)))!;
            Assert.Equal(ckpt.Tensors.Sum(t => t.ByteLength), (long)index["metadata"]!["total_size"]!);
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(synth, "config.json")))!;
        Assert.Equal("gemma2", (string?)config["text_config"]!["model_type"]);
        Assert.Equal(4, (int)config["vision_config"]!["num_image_tokens"]!);

        var again = Path.Combine(dir.Path, "again");
        SynthCommand.Synthesize(Tiny, DType.BF16, again, seed: 7, maxShardBytes: 2000);
        Assert.Equal(File.ReadAllBytes(Path.Combine(synth, shards[^1])), File.ReadAllBytes(Path.Combine(again, shards[^1])));

        Assert.Equal(0, Run("convert", "--in", synth, "--out", converted, "--dtype", "f32").Code);
        Assert.Equal(shards.Append(Checkpoint.IndexFileName).Append("config.json").Append("preprocessor_config.json").Order(),
            Directory.GetFiles(converted).Select(Path.GetFileName).Order());
        using var f32 = Checkpoint.Open(converted);
        using var bf16 = Checkpoint.Open(synth);
        var x = bf16["multi_modal_projector.linear.weight"].ToTensor();
        Assert.Equal(x.Span.ToArray(), f32["multi_modal_projector.linear.weight"].As<float>().ToArray());
        var (code, output, _) = Run("inspect", converted);
        Assert.Equal(0, code);
        Assert.Contains($"files: {shards.Count}", output);
    }

    [Theory]
    [InlineData("paligemma-3b-224", "language_model.model.layers.17.self_attn.k_proj.weight", new long[] { 256, 2048 })]
    [InlineData("paligemma-3b-224", "language_model.model.embed_tokens.weight", new long[] { 257216, 2048 })]
    [InlineData("paligemma-3b-224", "multi_modal_projector.linear.weight", new long[] { 2048, 1152 })]
    [InlineData("paligemma2-3b-224", "language_model.model.layers.25.self_attn.k_proj.weight", new long[] { 1024, 2304 })]
    [InlineData("paligemma2-3b-224", "language_model.model.layers.25.self_attn.o_proj.weight", new long[] { 2304, 2048 })]
    [InlineData("paligemma2-3b-224", "language_model.model.layers.0.mlp.down_proj.weight", new long[] { 2304, 9216 })]
    [InlineData("paligemma2-3b-448", "vision_tower.vision_model.embeddings.position_embedding.weight", new long[] { 1024, 1152 })]
    [InlineData("paligemma2-3b-896", "vision_tower.vision_model.embeddings.position_embedding.weight", new long[] { 4096, 1152 })]
    [InlineData("paligemma2-3b-896", "vision_tower.vision_model.encoder.layers.26.mlp.fc1.weight", new long[] { 4304, 1152 })]
    [InlineData("paligemma2-3b-896", "vision_tower.vision_model.embeddings.patch_embedding.weight", new long[] { 1152, 3, 14, 14 })]
    [InlineData("paligemma2-10b-224", "language_model.model.layers.41.self_attn.q_proj.weight", new long[] { 4096, 3584 })]
    [InlineData("paligemma2-10b-224", "language_model.model.layers.41.self_attn.k_proj.weight", new long[] { 2048, 3584 })]
    [InlineData("paligemma2-10b-224", "language_model.model.layers.0.mlp.down_proj.weight", new long[] { 3584, 14336 })]
    [InlineData("paligemma2-10b-224", "multi_modal_projector.linear.weight", new long[] { 3584, 1152 })]
    [InlineData("paligemma2-10b-448", "vision_tower.vision_model.embeddings.position_embedding.weight", new long[] { 1024, 1152 })]
    [InlineData("llava-1.5-7b", "vision_tower.vision_model.embeddings.class_embedding", new long[] { 1024 })]
    [InlineData("llava-1.5-7b", "vision_tower.vision_model.embeddings.patch_embedding.weight", new long[] { 1024, 3, 14, 14 })]
    [InlineData("llava-1.5-7b", "vision_tower.vision_model.embeddings.position_embedding.weight", new long[] { 577, 1024 })]
    [InlineData("llava-1.5-7b", "vision_tower.vision_model.encoder.layers.23.mlp.fc1.weight", new long[] { 4096, 1024 })]
    [InlineData("llava-1.5-7b", "vision_tower.vision_model.post_layernorm.weight", new long[] { 1024 })]
    [InlineData("llava-1.5-7b", "multi_modal_projector.linear_1.weight", new long[] { 4096, 1024 })]
    [InlineData("llava-1.5-7b", "multi_modal_projector.linear_2.bias", new long[] { 4096 })]
    [InlineData("llava-1.5-7b", "language_model.model.embed_tokens.weight", new long[] { 32064, 4096 })]
    [InlineData("llava-1.5-7b", "language_model.model.layers.31.self_attn.k_proj.weight", new long[] { 4096, 4096 })]
    [InlineData("llava-1.5-7b", "language_model.model.layers.31.mlp.down_proj.weight", new long[] { 4096, 11008 })]
    [InlineData("llava-1.5-7b", "language_model.lm_head.weight", new long[] { 32064, 4096 })]
    [InlineData("molmo-7b-d", "model.transformer.wte.embedding", new long[] { 152064, 3584 })]
    [InlineData("molmo-7b-d", "model.transformer.wte.new_embedding", new long[] { 128, 3584 })]
    [InlineData("molmo-7b-d", "model.transformer.blocks.27.att_proj.weight", new long[] { 4608, 3584 })]
    [InlineData("molmo-7b-d", "model.transformer.blocks.27.ff_proj.weight", new long[] { 37888, 3584 })]
    [InlineData("molmo-7b-d", "model.transformer.ff_out.weight", new long[] { 152064, 3584 })]
    [InlineData("molmo-7b-d", "model.vision_backbone.image_vit.positional_embedding", new long[] { 577, 1024 })]
    [InlineData("molmo-7b-d", "model.vision_backbone.image_vit.patch_embedding.weight", new long[] { 1024, 588 })]
    [InlineData("molmo-7b-d", "model.vision_backbone.image_vit.transformer.resblocks.22.feed_forward.w1.weight", new long[] { 4096, 1024 })]
    [InlineData("molmo-7b-d", "model.vision_backbone.image_pooling_2d.wq.weight", new long[] { 1024, 2048 })]
    [InlineData("molmo-7b-d", "model.vision_backbone.image_projector.w2.weight", new long[] { 3584, 18944 })]
    [InlineData("gemma-3-4b-it", "vision_tower.vision_model.embeddings.position_embedding.weight", new long[] { 4096, 1152 })]
    [InlineData("gemma-3-4b-it", "multi_modal_projector.mm_input_projection_weight", new long[] { 1152, 2560 })]
    [InlineData("gemma-3-4b-it", "language_model.model.embed_tokens.weight", new long[] { 262208, 2560 })]
    [InlineData("gemma-3-4b-it", "language_model.model.layers.33.self_attn.k_proj.weight", new long[] { 1024, 2560 })]
    [InlineData("gemma-3-4b-it", "language_model.model.layers.33.self_attn.o_proj.weight", new long[] { 2560, 2048 })]
    [InlineData("gemma-3-4b-it", "language_model.model.layers.33.self_attn.q_norm.weight", new long[] { 256 })]
    public void Real_arch_has_the_published_shapes(string arch, string tensor, long[] shape)
    {
        var t = SynthArch.Known[arch].Tensors().Single(x => x.Name == tensor);
        Assert.Equal(shape, t.Shape);
    }

    /// <summary>llava-1.5-7b with the llava-tiny fixture's sizes (the table in its README).</summary>
    static readonly LlavaArch LlavaTiny = LlavaArch.Llava15_7b with
    {
        Name = "llava-tiny", ImageSize = 56, VisionHidden = 32, VisionLayers = 3, VisionHeads = 4, VisionIntermediate = 128, VisionProjectionDim = 64,
        TextHidden = 64, TextLayers = 3, Heads = 4, KvHeads = 4, HeadDim = 16, TextIntermediate = 172, Vocab = 384, ImageTokenIndex = 352, PadTokenId = 353,
    };

    /// <summary>molmo-7b-d with the molmo-tiny fixture's sizes (the table in its README).</summary>
    static readonly MolmoArch MolmoTiny = MolmoArch.Molmo7bD with
    {
        Name = "molmo-tiny", ImageSize = 84, VisionHidden = 32, VisionLayers = 9, VisionHeads = 4, VisionIntermediate = 64,
        TextHidden = 64, TextLayers = 3, Heads = 4, KvHeads = 2, TextIntermediate = 96, Vocab = 384, TokensPerSide = 3, Margin = 2,
    };

    [Fact]
    public void Molmo_7b_d_has_the_published_parameter_count() => Assert.Equal(8_021_025_280, MolmoArch.Molmo7bD.Parameters); // molmo-tiny README: 8.02 B in 32.08 GB F32

    [Fact]
    public void Synth_molmo_at_the_fixture_sizes_writes_the_fixture_layout_and_configs()
    {
        using var dir = new TempDir();
        Assert.Equal(["model.safetensors"], SynthCommand.Synthesize(MolmoTiny, DType.F32, dir.Path, seed: 1, SynthCommand.DefaultMaxShardBytes));
        using (var synth = SafeTensorsFile.Open(dir.File("model.safetensors")))
        using (var fixture = SafeTensorsFile.Open(Fixture("molmo-tiny", "model.safetensors")))
        {
            Assert.Equal(fixture.Names.Order(StringComparer.Ordinal), synth.Names.Order(StringComparer.Ordinal));
            foreach (var t in fixture.Tensors) Assert.Equal(t.Shape, synth[t.Name].Shape);
        }
        var config = ReadJson(dir.File("config.json")).AsObject();
        var expected = ReadJson(Fixture("molmo-tiny", "config.json")).AsObject();
        Assert.True(JsonNode.DeepEquals(expected, config), $"synth:\n{config}\nfixture:\n{expected}");
        Assert.True(JsonNode.DeepEquals(ReadJson(Fixture("molmo-tiny", "preprocessor_config.json")), ReadJson(dir.File("preprocessor_config.json"))));
    }

    [Fact]
    public void Synth_molmo_sharded_bf16_loads_and_runs_a_forward_pass_over_crops()
    {
        using var dir = new TempDir();
        Assert.True(SynthCommand.Synthesize(MolmoTiny, DType.BF16, dir.Path, seed: 3, maxShardBytes: 100_000).Count > 1);
        using var model = LoadedModel.Load(dir.Path);
        var crops = MolmoImageProcessor.FromCheckpoint(dir.Path).Process(RgbImage.FromPixels(70, 50, new byte[70 * 50 * 3]));
        int[] ids = PureVlm.Prompts.MolmoPrompt.SyntheticIds([crops], textTokens: 4, bos: 8, model.Config.ImageTokenIndex);
        var session = model.CreateSession();
        var logits = session.Prefill(ids, session.EncodeImage(crops)).ToArray();
        Assert.Equal(384, logits.Length);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        Assert.Contains(logits, x => x != 0);
    }

    static JsonNode ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    [Fact]
    public void Synth_llava_at_the_fixture_sizes_writes_the_fixture_layout_and_configs_and_no_tokenizer()
    {
        using var dir = new TempDir();
        var shards = SynthCommand.Synthesize(LlavaTiny, DType.F32, dir.Path, seed: 1, SynthCommand.DefaultMaxShardBytes);
        Assert.Equal(["model.safetensors"], shards);
        Assert.Equal(new[] { "config.json", "model.safetensors", "preprocessor_config.json" }, Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order());
        using (var synth = SafeTensorsFile.Open(dir.File("model.safetensors")))
        using (var fixture = SafeTensorsFile.Open(Fixture("llava-tiny", "model.safetensors")))
        {
            Assert.Equal(fixture.Names.Order(StringComparer.Ordinal), synth.Names.Order(StringComparer.Ordinal));
            foreach (var t in fixture.Tensors)
            {
                Assert.Equal(t.Shape, synth[t.Name].Shape);
                Assert.Equal(DType.F32, synth[t.Name].DType);
            }
        }
        // config.json: the fixture's, key for key and value for value (both float32).
        var config = ReadJson(dir.File("config.json")).AsObject();
        var expected = ReadJson(Fixture("llava-tiny", "config.json")).AsObject();
        Assert.True(JsonNode.DeepEquals(expected, config), $"synth:\n{config}\nfixture:\n{expected}");
        Assert.True(JsonNode.DeepEquals(ReadJson(Fixture("llava-tiny", "preprocessor_config.json")), ReadJson(dir.File("preprocessor_config.json"))));
    }

    [Fact]
    public void Synth_llava_sharded_bf16_loads_and_runs_a_forward_pass()
    {
        using var dir = new TempDir();
        var shards = SynthCommand.Synthesize(LlavaTiny, DType.BF16, dir.Path, seed: 3, maxShardBytes: 100_000);
        Assert.True(shards.Count > 1);
        using var model = LoadedModel.Load(dir.Path);
        var vlm = Assert.IsAssignableFrom<PureVlm.Models.IVisionLanguageModel>(model.VisionLanguage);
        Assert.Equal(16, vlm.ImageTokensPerImage);
        Assert.Equal(DType.BF16, model.Checkpoint["language_model.lm_head.weight"].DType);
        var pixels = ImagePreprocessor.FromCheckpoint(dir.Path).PixelValues(RgbImage.FromPixels(70, 50, new byte[70 * 50 * 3]));
        int[] ids = ModelFamilies.PromptFormat(vlm).SyntheticIds(images: 1, textTokens: 4, model.Config.BosTokenId);
        var session = model.CreateSession();
        var logits = session.Prefill(ids, session.EncodeImage(pixels)).ToArray();
        Assert.Equal(384, logits.Length);
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        Assert.Contains(logits, x => x != 0);
        Assert.Equal(384, session.Decode(System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits)).Length);
    }

    static string AnyLayer(string name) => Regex.Replace(name, @"\.layers\.\d+\.", ".layers.N.");

    [Fact]
    public void Llava_1_5_7b_has_the_fixtures_names_the_published_size_and_three_shards()
    {
        var arch = LlavaArch.Llava15_7b;
        var tensors = arch.Tensors().ToList();
        using var fixture = SafeTensorsFile.Open(Fixture("llava-tiny", "model.safetensors"));
        Assert.Equal(fixture.Names.Select(AnyLayer).Distinct().Order(StringComparer.Ordinal), tensors.Select(t => AnyLayer(t.Name)).Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(24, tensors.Select(t => t.Name).Where(n => n.StartsWith("vision_tower.", StringComparison.Ordinal)).Select(AnyLayer).Count(n => n.EndsWith(".layers.N.mlp.fc1.weight", StringComparison.Ordinal)));
        Assert.Equal(32, tensors.Count(t => AnyLayer(t.Name) == "language_model.model.layers.N.input_layernorm.weight"));
        Assert.Equal(tensors.Count, tensors.Select(t => t.Name).Distinct().Count());
        // By hand from the shapes:
        //   vision: class 1024 + patch 1024·3·14·14 = 602,112 + positions 577·1024 = 590,848 + pre/post LayerNorm 2·2048
        //     + 24 layers × (q/k/v/out 4·(1024² + 1024) = 4,198,400 + LayerNorms 4096 + fc1 4096·1024 + 4096 = 4,198,400
        //       + fc2 1024·4096 + 1024 = 4,195,328 = 12,596,224) = 302,309,376            → 303,507,456
        //   projector: 4096·1024 + 4096 = 4,198,400 + 4096² + 4096 = 16,781,312          →  20,979,712
        //   language model: embed_tokens and lm_head 2 · 32064·4096 = 262,668,288 + norm 4096
        //     + 32 layers × (q/k/v/o 4·4096² = 67,108,864 + gate/up/down 3·11008·4096 = 135,266,304 + norms 8192
        //       = 202,383,360) = 6,476,267,520                                               → 6,738,939,904
        //   total 7,063,427,072 (≈ 7.06 B; BF16 14,126,854,144 bytes, the hub's 4.99 + 4.96 + 4.18 GB shards).
        Assert.Equal(7_063_427_072, arch.Parameters);
        var shards = SynthCommand.Shard(tensors, DType.BF16, SynthCommand.DefaultMaxShardBytes);
        Assert.Equal(3, shards.Count);
        Assert.Equal(2 * 7_063_427_072, shards.Sum(s => s.Sum(t => t.Shape.Aggregate(2L, (a, b) => a * b))));
    }

    /// <summary>gemma-3-4b-it with the gemma3-tiny fixture's sizes (the table in its README).</summary>
    static readonly Gemma3Arch Gemma3Tiny = Gemma3Arch.Gemma3_4b with
    {
        Name = "gemma3-tiny", ImageSize = 112, PatchSize = 7, VisionHidden = 32, VisionLayers = 2, VisionHeads = 4, VisionIntermediate = 64, MmTokensPerImage = 16,
        TextHidden = 72, TextLayers = 7, Heads = 4, KvHeads = 2, HeadDim = 16, TextIntermediate = 96, Vocab = 384, QueryPreAttnScalar = 18, SlidingWindow = 20,
        BoiTokenIndex = 13, EoiTokenIndex = 14, ImageTokenIndex = 352, EosTokenIds = [1, 7],
    };

    [Fact]
    public void Synth_gemma3_at_the_fixture_sizes_writes_the_fixture_layout_and_configs_and_runs()
    {
        using var dir = new TempDir();
        Assert.Equal(["model.safetensors"], SynthCommand.Synthesize(Gemma3Tiny, DType.F32, dir.Path, seed: 1, SynthCommand.DefaultMaxShardBytes));
        using (var synth = SafeTensorsFile.Open(dir.File("model.safetensors")))
        using (var fixture = SafeTensorsFile.Open(Fixture("gemma3-tiny", "model.safetensors")))
        {
            Assert.Equal(fixture.Names.Order(StringComparer.Ordinal), synth.Names.Order(StringComparer.Ordinal));
            foreach (var t in fixture.Tensors) Assert.Equal(t.Shape, synth[t.Name].Shape);
        }
        var config = ReadJson(dir.File("config.json"));
        Assert.True(JsonNode.DeepEquals(ReadJson(Fixture("gemma3-tiny", "config.json")), config), $"synth:\n{config}");
        Assert.True(JsonNode.DeepEquals(ReadJson(Fixture("gemma3-tiny", "preprocessor_config.json")), ReadJson(dir.File("preprocessor_config.json"))));

        using var model = LoadedModel.Load(dir.Path);
        var vlm = Assert.IsAssignableFrom<PureVlm.Models.IVisionLanguageModel>(model.VisionLanguage);
        var pixels = ImagePreprocessor.FromCheckpoint(dir.Path).PixelValues(RgbImage.FromPixels(70, 50, new byte[70 * 50 * 3]));
        int[] ids = ModelFamilies.PromptFormat(vlm).SyntheticIds(images: 1, textTokens: 4, model.Config.BosTokenId);
        Assert.Equal([2, 8, 9, 13], ids[..4]); // bos, two stand-in ids, boi
        var session = model.CreateSession();
        var logits = session.Prefill(ids, session.EncodeImage(pixels)).ToArray();
        Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        Assert.Contains(logits, x => x != 0);
    }

    [Fact]
    public void Gemma_3_4b_has_the_fixtures_names_and_the_published_size()
    {
        var arch = Gemma3Arch.Gemma3_4b;
        var tensors = arch.Tensors().ToList();
        using var fixture = SafeTensorsFile.Open(Fixture("gemma3-tiny", "model.safetensors"));
        Assert.Equal(fixture.Names.Select(AnyLayer).Distinct().Order(StringComparer.Ordinal), tensors.Select(t => AnyLayer(t.Name)).Distinct().Order(StringComparer.Ordinal));
        // By hand from the shapes:
        //   vision: patch 1152·3·14·14 + 1152 = 678,528 + positions 4096·1152 = 4,718,592 + post LayerNorm 2304
        //     + 27 layers × (q/k/v/out 4·(1152² + 1152) = 5,313,024 + LayerNorms 4608 + fc1 4304·1152 + 4304 = 4,962,512
        //       + fc2 1152·4304 + 1152 = 4,959,360 = 15,239,504) = 411,466,608                      → 416,866,032
        //   projector: 1152·2560 + 1152                                                              →   2,950,272
        //   language model: embed 262208·2560 = 671,252,480 + norm 2560
        //     + 34 layers × (q/o 2·2048·2560 = 10,485,760 + k/v 2·1024·2560 = 5,242,880 + q/k norms 512
        //       + gate/up/down 3·10240·2560 = 78,643,200 + 4 norms 10,240 = 94,382,592) = 3,209,008,128 → 3,880,263,168
        //   total 4,300,079,472 (≈ 4.3 B as published; BF16 8.6 GB)
        Assert.Equal(4_300_079_472, arch.Parameters);
    }
}
