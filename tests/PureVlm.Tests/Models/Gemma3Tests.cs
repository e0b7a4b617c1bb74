using System.Text.Json;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Prompts;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>Gemma 3 through the front door: config, processor, chat template and generation against gemma3-tiny's checks.json and goldens.</summary>
public class Gemma3Tests
{
    static readonly string Dir = TestPaths.Fixture("gemma3-tiny");
    static readonly JsonElement Checks = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "checks.json"))).RootElement;
    static IReadOnlyList<ChatMessage> FixtureMessages => ChatMessage.Parse(Checks.GetProperty("messages").GetRawText());

    [Fact]
    public void Config_reads_layer_types_both_rope_bases_scaling_and_the_image_tokens()
    {
        var c = ModelConfig.Load(Path.Combine(Dir, "config.json"));
        var t = c.Text;
        Assert.Equal("gemma3_text", t.ModelType);
        Assert.Equal([true, true, true, true, true, false, true], Enumerable.Range(0, 7).Select(t.IsSlidingLayer));
        Assert.Equal((1e6f, 1e4f, 8f, 18f, 20, 0f, 0f), (t.RopeTheta, t.RopeLocalBaseFreq, t.RopeScalingFactor, t.QueryPreAttnScalar, t.SlidingWindow, t.AttnLogitSoftcapping, t.FinalLogitSoftcapping));
        Assert.Equal(new Gemma3Config(16, 13, 14), c.Gemma3);
        Assert.Equal((352, 2, 0), (c.ImageTokenIndex, c.BosTokenId, c.PadTokenId));
        Assert.Equal([1, 7], c.EosTokenIds);
    }

    [Fact]
    public void A_bare_config_takes_transformers_defaults_and_the_pattern_marks_every_sixth_layer_global()
    {
        var c = ModelConfig.Parse("""{"model_type": "gemma3", "vision_config": {"image_size": 896, "patch_size": 14}}""");
        Assert.Equal((256, 255_999, 256_000, 262_144), (c.Gemma3!.MmTokensPerImage, c.Gemma3.BoiTokenIndex, c.Gemma3.EoiTokenIndex, c.ImageTokenIndex));
        Assert.Equal((262_208, 26, 4096, 256f, 1f), (c.Text.VocabSize, c.Text.NumHiddenLayers, c.Text.SlidingWindow, c.Text.QueryPreAttnScalar, c.Text.RopeScalingFactor));
        Assert.Equal([5, 11, 17, 23], Enumerable.Range(0, 26).Where(i => !c.Text.IsSlidingLayer(i)));
        var text = ModelConfig.Parse("""{"model_type": "gemma3_text", "num_hidden_layers": 3, "sliding_window_pattern": 2}""");
        Assert.Equal([true, false, true], Enumerable.Range(0, 3).Select(text.Text.IsSlidingLayer));
    }

    [Theory]
    [InlineData("""{"model_type": "gemma3", "text_config": {"rope_scaling": {"rope_type": "dynamic", "factor": 2}}}""", "text_config.rope_scaling.rope_type is 'dynamic', expected linear or default")]
    [InlineData("""{"model_type": "gemma3", "text_config": {"num_hidden_layers": 2, "layer_types": ["full_attention"]}}""", "text_config.layer_types has 1 entries, expected num_hidden_layers = 2")]
    [InlineData("""{"model_type": "gemma3", "text_config": {"num_hidden_layers": 1, "layer_types": ["chunked_attention"]}}""", "text_config.layer_types[0] is 'chunked_attention'")]
    [InlineData("""{"model_type": "gemma3", "mm_tokens_per_image": 15}""", "mm_tokens_per_image is 15, expected a square")]
    [InlineData("""{"model_type": "gemma3", "text_config": {"model_type": "gemma2"}}""", "text_config.model_type is 'gemma2', expected gemma3_text")]
    public void Bad_gemma3_configs_are_one_line_errors_naming_the_key(string json, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Bilinear_resize_of_the_test_card_is_bit_exact_with_PIL()
    {
        using var g = new GoldenFixture("gemma3-tiny", "golden.safetensors");
        var pre = ImagePreprocessor.FromCheckpoint(Dir);
        Assert.Equal(PilFilter.Bilinear, pre.Resample);
        var resized = pre.Resize(ImageLoader.Load(Path.Combine(Dir, "input.png")));
        Assert.Equal(g["image.resized"].Data, resized.Pixels.Select(b => (float)b));
    }

    [Fact]
    public void Chat_template_processor_and_tokenizer_give_the_reference_text_pieces_and_ids()
    {
        using var g = new GoldenFixture("gemma3-tiny", "golden.safetensors");
        using var model = VlmModel.Load(Dir);
        var format = Assert.IsType<Gemma3Prompt>(model.PromptFormat);
        Assert.Equal(Checks.GetProperty("chat_template_output").GetString(), format.Render(FixtureMessages));
        var ids = model.PromptIds(FixtureMessages);
        Assert.Equal(g.Ints("input_ids"), ids);
        Assert.Equal(Checks.GetProperty("prompt_pieces").EnumerateArray().Select(p => p.GetString()), ids.Select(model.Tokenizer.IdToPiece));
        // The --prompt shorthand is the same one-turn chat: the image first, or where <image> puts it.
        Assert.Equal(ids, model.PromptIds("Describe the picture."));
        Assert.Equal(ids, model.PromptIds("<image>\nDescribe the picture."));
    }

    [Fact]
    public void A_system_message_opens_the_first_user_turn_and_roles_must_alternate()
    {
        var format = new Gemma3Prompt(16, 352, 13, 14);
        var chat = ChatMessage.FromPrompt("Describe the picture.", "Be brief.", images: 1);
        Assert.Equal("<bos><start_of_turn>user\nBe brief.\n\n<start_of_image>Describe the picture.<end_of_turn>\n<start_of_turn>model\n", format.Render(chat));
        var turns = ChatMessage.Parse("""
            [{"role": "user", "content": "  Hi  "}, {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
             {"role": "user", "content": [{"type": "text", "text": "Look:"}, {"type": "image", "url": "ignored.png"}]}]
            """);
        Assert.Equal("<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nLook:<start_of_image><end_of_turn>\n<start_of_turn>model\n", format.Render(turns));
        var e = Assert.Throws<ChatFormatException>(() => format.Render([ChatMessage.FromText("user", "a"), ChatMessage.FromText("user", "b")]));
        Assert.Contains("message 1 is a user message", e.Message);
    }

    [Theory]
    [InlineData("""{"role": "user"}""", "message 0: content is missing")]
    [InlineData("""[{"role": "robot", "content": "x"}]""", "message 0: role is \"robot\"")]
    [InlineData("""[{"role": "user", "content": [{"type": "video"}]}]""", "message 0, part 0 is {\"type\":\"video\"}")]
    [InlineData("""[{"role": "user", "content": [{"type": "text"}]}]""", "a text part needs a string \"text\"")]
    public void Bad_message_files_are_one_line_errors(string json, string expected)
    {
        var e = Assert.Throws<ChatFormatException>(() => ChatMessage.Parse(json.StartsWith('{') ? "[" + json + "]" : json, "m.json"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("m.json: ", e.Message);
    }

    [Fact]
    public void Generate_from_the_image_file_and_the_chat_gives_the_reference_ids()
    {
        using var g = new GoldenFixture("gemma3-tiny", "golden.safetensors");
        using var model = VlmModel.Load(Dir);
        var image = ImageLoader.Load(Path.Combine(Dir, "input.png"));
        var answer = model.Generate([image], FixtureMessages, new GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), answer.Tokens.Select(t => t.Id));
        Assert.Throws<ArgumentException>(() => model.Generate([image, image], FixtureMessages));
    }

    [Fact]
    public void Explain_over_the_chat_maps_attention_onto_the_pooled_grid_and_only_the_global_layer_reaches_the_image()
    {
        using var g = new GoldenFixture("gemma3-tiny", "golden.safetensors");
        using var model = VlmModel.Load(Dir);
        var e = PureVlm.Inspection.ExplainReport.Create(model, ImageLoader.Load(Path.Combine(Dir, "input.png")), FixtureMessages,
            new PureVlm.Inspection.ExplainOptions { MaxNewTokens = 3 });
        var report = e.Report;
        Assert.Equal((4, 16), (report.Model.PatchGrid, report.Model.ImageTokens)); // the 16 pooled tokens, 4 × 4
        Assert.Equal((Checks.GetProperty("chat_template_output").GetString(), 43), (report.Request.Prompt, report.Request.PromptTokens));
        Assert.Equal(g.Ints("generated_ids")[..3], report.Tokens.Select(t => t.Id));
        foreach (var token in report.Tokens)
        {
            // Image tokens sit at 7..22 and the query at 43 or later: the 20-token window of layers 0–4 and 6 cannot see them.
            Assert.All(Enumerable.Range(0, 7).Where(l => l != 5), l => Assert.All(token.Attention.Layers[l], p => Assert.Equal(0, p)));
            Assert.True(token.Attention.ImageShare[5] > 0);
        }
    }

    [Fact]
    public void Two_images_are_two_blocks_each_bidirectional_inside_and_causal_between()
    {
        using var model = VlmModel.Load(Dir);
        var ids = model.PromptIds("<image> or <image>?", images: 2);
        var image = Enumerable.Range(0, ids.Length).Where(i => ids[i] == model.Loaded.Config.ImageTokenIndex).ToArray();
        Assert.Equal(32, image.Length);
        int[] first = image[..16], second = image[16..];
        Assert.True(second[0] > first[^1] + 1); // <end_of_image>, text and <start_of_image> between them
        var trace = new PureVlm.Inspection.TraceRecorder();
        var session = model.Loaded.CreateSession(new SessionOptions { Observer = trace });
        var pixels = model.Preprocessor.PixelValues(ImageLoader.Load(Path.Combine(Dir, "input.png")));
        float[] features = [.. session.EncodeImage(pixels), .. session.EncodeImage(pixels)];
        session.Prefill(ids, features);
        var mask = trace["text.mask_full"];
        int n = ids.Length;
        bool Sees(int i, int j) => mask.Data[i * n + j] == 1;
        Assert.True(Sees(first[0], first[^1]) && Sees(second[0], second[^1])); // each block sees itself ahead
        Assert.False(Sees(first[0], second[0]));                               // but not the next image
        Assert.True(Sees(second[0], first[^1]));                               // which sees the earlier one causally
        Assert.False(Sees(first[^1] + 1, second[0]));                          // and text stays causal
    }

    [Fact]
    public void Llava_renders_chats_with_its_template_and_a_one_turn_chat_equals_the_plain_prompt()
    {
        using var model = VlmModel.Load(TestPaths.Fixture("llava-tiny"));
        const string prompt = "What is in the picture?";
        Assert.Equal(model.PromptIds(prompt), model.PromptIds(ChatMessage.FromPrompt(prompt, null, images: 1)));
        var format = Assert.IsAssignableFrom<IChatPromptFormat>(model.PromptFormat);
        var chat = ChatMessage.Parse("""
            [{"role": "system", "content": "Answer briefly."},
             {"role": "user", "content": [{"type": "text", "text": "What is it?"}, {"type": "image"}]},
             {"role": "assistant", "content": "A card."}, {"role": "user", "content": "Colours?"}]
            """);
        // llava-hf's template: no prefix for system, each message's images before its text, each text followed by a space.
        Assert.Equal("Answer briefly. USER: <image>\nWhat is it? ASSISTANT: A card. USER: Colours? ASSISTANT:", format.Render(chat));
        Assert.Equal(16, model.PromptIds(chat).Count(id => id == model.Loaded.Config.ImageTokenIndex));
    }

    [Fact]
    public void PaliGemma_has_no_chat_template()
    {
        using var model = VlmModel.Load(TestPaths.DemoModel);
        var e = Assert.Throws<ChatFormatException>(() => model.PromptIds(ChatMessage.FromPrompt("caption en", null, 1)));
        Assert.Contains("paligemma has no chat template", e.Message);
    }
}

/// <summary>The text-only <c>gemma3_text</c> checkpoint (HF <c>Gemma3ForCausalLM</c>, weights under <c>model.</c>).</summary>
public class Gemma3TextTests
{
    [Fact]
    public void A_gemma3_text_checkpoint_gives_the_logits_of_the_multimodal_decoder_on_a_prompt_without_images()
    {
        string dir = Directory.CreateTempSubdirectory("purevlm-gemma3-text-").FullName;
        try
        {
            string fixture = TestPaths.Fixture("gemma3-tiny");
            // The fixture's decoder alone: text_config as the top-level config, language_model.model.* renamed model.*.
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "config.json")))!["text_config"]!;
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            using (var weights = SafeTensorsFile.Open(Path.Combine(fixture, "model.safetensors")))
                PureVlm.Formats.SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), weights.Tensors
                    .Where(t => t.Name.StartsWith("language_model.model.", StringComparison.Ordinal))
                    .Select(t => (Name: "model." + t.Name["language_model.model.".Length..], t.DType, t.Shape, Data: (ReadOnlyMemory<byte>)t.Bytes.ToArray())).ToList());
            int[] ids = [2, 6, 332, 321, 275, 8, 347, 283, 326, 7, 8, 6, 334, 325, 327, 317, 328, 8, 9, 10, 11, 12, 13, 14, 15];
            using var text = LoadedModel.Load(dir);
            Assert.IsType<PureVlm.Models.CausalLM>(text.Modules);
            using var multimodal = LoadedModel.Load(fixture);
            var want = multimodal.CreateSession().Prefill(ids).ToArray();
            Assert.Equal(want, text.CreateSession().Prefill(ids).ToArray());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
