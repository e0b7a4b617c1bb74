using System.Security.Cryptography;
using System.Text.Json;
using Xunit;

namespace PureVlm.Tests.Cli;

/// <summary>Console redirection is process-wide, so these run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection { public const string Name = "Console"; }

[Collection(ConsoleCollection.Name)]
public class CliTests
{
    static string Sample(string file) => Path.Combine(TestPaths.DemoModel, "samples", file);

    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    /// <summary>A failure is exactly one line on stderr, naming what is wrong, and no stack trace.</summary>
    static void AssertOneLineError((int Code, string Out, string Err) r, params string[] mentions)
    {
        Assert.NotEqual(0, r.Code);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.DoesNotContain("   at ", r.Err);
        foreach (var m in mentions) Assert.Contains(m, r.Err);
    }

    public static TheoryData<int> SampleIndices() => Demo.DemoModelTests.SampleIndices();

    [Theory]
    [MemberData(nameof(SampleIndices))]
    public void Run_prints_each_samples_reference_answer_and_only_that_on_stdout(int index)
    {
        var s = Demo.DemoModelTests.Samples[index];
        var r = Run("run", "--image", Sample(s.Image), "--prompt", s.Prompt);
        Assert.Equal(0, r.Code);
        Assert.Equal(s.Expected + Environment.NewLine, r.Out);
        Assert.Contains("prefill", r.Err);
    }

    [Fact]
    public void Run_json_gives_tokens_detections_and_timings()
    {
        var s = Demo.DemoModelTests.Samples.Single(x => x.Image == "02-blue-square.png" && x.Prompt == "detect square");
        var r = Run("run", "--image", Sample(s.Image), "--prompt", s.Prompt, "--json");
        Assert.Equal(0, r.Code);
        using var doc = JsonDocument.Parse(r.Out);
        var root = doc.RootElement;
        Assert.Equal(s.Expected, root.GetProperty("text").GetString()); // <loc0072><loc0078><loc0365><loc0365> square
        Assert.Contains("\"text\":\"<loc0072>", r.Out); // readable: < as it is, not \u003C
        Assert.Equal(5, root.GetProperty("tokens").GetArrayLength());
        Assert.All(root.GetProperty("tokens").EnumerateArray(), t => Assert.InRange(t.GetProperty("probability").GetDouble(), 0, 1));
        var box = root.GetProperty("detections")[0].GetProperty("box").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        // 112×112 image: x0 = 78/1024·112, y0 = 72/1024·112, x1 = y1 = 365/1024·112
        Assert.Equal(new[] { 8.53125, 7.875, 39.921875, 39.921875 }, box.Select(v => Math.Round(v, 6)));
        Assert.True(root.GetProperty("timings").GetProperty("prefill_s").GetDouble() > 0);
    }

    [Fact]
    public void Annotate_writes_a_png_and_leaves_the_input_untouched()
    {
        string input = Sample("03-green-triangle.png");
        var before = SHA256.HashData(File.ReadAllBytes(input));
        string output = Path.Combine(Path.GetTempPath(), $"purevlm-annotate-{Guid.NewGuid():N}.png");
        try
        {
            var r = Run("run", "--image", input, "--prompt", "detect triangle", "--annotate", output);
            Assert.Equal(0, r.Code);
            var annotated = PureVlm.Formats.Images.ImageLoader.Load(output);
            Assert.Equal((160, 160), (annotated.Width, annotated.Height));
            Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(input)));
            AssertOneLineError(Run("run", "--image", input, "--prompt", "detect triangle", "--annotate", input), "overwrite");
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void Every_command_has_help()
    {
        foreach (var command in new[] { "run", "info", "trace", "diff", "bench", "tokenize", "explain", "masks", "serve", "quality" })
        {
            var r = Run(command, "--help");
            Assert.True(r.Code == 0, $"{command} --help exited {r.Code}: {r.Err}");
            Assert.Contains("usage: purevlm " + command, r.Out);
        }
    }

    [Fact]
    public void Info_reports_the_demo_model_parameters()
    {
        var r = Run("info", "--layers");
        Assert.Equal(0, r.Code);
        Assert.Contains("3,336,448", r.Out); // the parameter count its README gives
        Assert.Contains("language_model.model.layers.3.mlp.down_proj", r.Out);
    }

    [Fact]
    public void Info_describes_a_llava_checkpoint_part_by_part()
    {
        var r = Run("info", "--layers", "--model", TestPaths.Fixture("llava-tiny"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("type       llava (text llama, vision clip)\n", r.Out);
        Assert.Contains("56x56 px, patch 14 -> 16 image tokens; hidden 32, 3 layers, 4 heads, mlp 128", r.Out);
        Assert.Contains("hidden 64, 3 layers, 4 heads / 4 kv heads x 16, mlp 172, vocab 384", r.Out);
        // From the shapes in the fixture's README, F32 (4 bytes each):
        //   vision: class 32 + patch 32·3·14·14 = 18,816 + positions 17·32 = 544 + pre/post LayerNorm 2·64
        //     + 3 layers × (q/k/v/out 4·(32² + 32) = 4,224 + LayerNorms 128 + fc1 128·32 + 128 = 4,224 + fc2 32·128 + 32 = 4,128) = 38,112 → 57,632
        //   projector: 64·32 + 64 = 2,112 + 64·64 + 64 = 4,160 → 6,272
        //   language model: embed 384·64 = 24,576 + 3 × (4·64² + 3·172·64 + 2·64 = 49,536) + norm 64 → 173,248; lm_head 384·64 = 24,576
        //   total 261,728
        Assert.Matches(@"vision_tower\s+57,632\s+230,528\n", r.Out);
        Assert.Matches(@"projector\s+6,272\s+25,088\n", r.Out);
        Assert.Matches(@"language_model\s+173,248\s+692,992\n", r.Out);
        Assert.Matches(@"lm_head\s+24,576\s+98,304\n", r.Out);
        Assert.Matches(@"total\s+261,728\s+1,046,912\n", r.Out);
        Assert.Contains("vision_tower.vision_model.pre_layrnorm\n", r.Out);
    }

    [Fact]
    public void Bench_runs_on_a_llava_checkpoint_with_the_family_layout()
    {
        var r = Run("bench", "--model", TestPaths.Fixture("llava-tiny"), "--tokens", "2");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out.TrimEnd().Split('\n')[^1]);
        var root = doc.RootElement;
        Assert.Equal(16, root.GetProperty("image_tokens").GetDouble());
        Assert.Equal(1 + 4 + 16, root.GetProperty("prompt_tokens").GetDouble()); // bos, 4 stand-in text ids, 16 image tokens
        foreach (var key in new[] { "load_s", "image_encode_s", "prefill_s", "ttft_s", "decode_tok_s", "peak_rss_mb" })
            Assert.True(root.GetProperty(key).GetDouble() > 0, key);
        Assert.Contains("llava, 56 px, 21 prompt tokens (16 image)", r.Err);
    }

    [Fact]
    public void Info_and_bench_describe_a_gemma3_checkpoint()
    {
        var r = Run("info", "--model", TestPaths.Fixture("gemma3-tiny"));
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("type       gemma3 (text gemma3_text, vision siglip)\n", r.Out);
        Assert.Contains("projector  avg pool 4x4 (16x16 patches -> 4x4), mm_soft_emb_norm, x @ mm_input_projection_weight; image tokens: boi 13, 16 x 352, eoi 14", r.Out);
        Assert.Contains("sliding window 20 on 6 of 7 layers (RoPE base 10000), global layers RoPE base 1000000 / 8, query_pre_attn_scalar 18, QK-norm", r.Out);
        // From the README's shapes, F32: projector 32 + 32·72 = 2,336; language model: embed 384·72 = 27,648 + 7 × (q/o 2·64·72
        // + k/v 2·32·72 = 13,824 + q/k norms 32 + mlp 3·96·72 = 20,736 + 4 norms 288 = 34,880) + norm 72 = 271,880 (tied: no lm_head)
        Assert.Matches(@"projector\s+2,336\s+9,344\n", r.Out);
        Assert.Matches(@"language_model\s+271,880\s+1,087,520\n", r.Out);

        var b = Run("bench", "--model", TestPaths.Fixture("gemma3-tiny"), "--tokens", "2");
        Assert.True(b.Code == 0, b.Err);
        using var doc = JsonDocument.Parse(b.Out.TrimEnd().Split('\n')[^1]);
        Assert.Equal(1 + 4 + 1 + 16 + 1, doc.RootElement.GetProperty("prompt_tokens").GetDouble()); // bos, 4 stand-in text ids, boi, 16 image tokens, eoi
        Assert.Contains("gemma3, 112 px, 23 prompt tokens (16 image)", b.Err);
    }

    [Fact]
    public void Chat_options_that_do_not_fit_are_one_line_errors()
    {
        string g3 = TestPaths.Fixture("gemma3-tiny"), image = Path.Combine(g3, "input.png");
        string messages = Path.Combine(Path.GetTempPath(), $"purevlm-messages-{Guid.NewGuid():N}.json");
        File.WriteAllText(messages, """[{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same?"}]}]""");
        try
        {
            AssertOneLineError(Run("run", "--model", g3, "--image", image, "--messages", messages), "2 image parts for 1 --image");
            AssertOneLineError(Run("run", "--model", g3, "--image", image, "--messages", messages, "--system", "Be brief."), "--system goes with --prompt");
            AssertOneLineError(Run("run", "--model", g3, "--image", image, "--messages", messages, "--prompt", "hi"), "either --messages FILE or --prompt TEXT");
            AssertOneLineError(Run("run", "--model", g3, "--image", image, "--prompt", "<image> and <image>"), "2 <image> markers for 1 images");
            AssertOneLineError(Run("run", "--model", g3, "--image", image, "--messages", Path.Combine(g3, "config.json")), "config.json: expected a non-empty JSON list of messages");
            AssertOneLineError(Run("run", "--image", Sample("02-blue-square.png"), "--prompt", "caption en", "--system", "Be brief."), "paligemma has no chat template");
            var r = Run("run", "--model", g3, "--image", image, "--image", image, "--messages", messages, "--max-tokens", "2");
            Assert.True(r.Code == 0, r.Err);
            using var model = VlmModel.Load(g3);
            var ids = model.PromptIds(PureVlm.Prompts.ChatMessage.Load(messages));
            Assert.Equal(32, ids.Count(id => id == 352));
            Assert.Contains($"prefill {ids.Length} tokens", r.Err);
        }
        finally { File.Delete(messages); }
    }

    [Fact]
    public void Prompt_longer_than_the_context_is_a_clear_error()
    {
        string prompt = string.Concat(Enumerable.Repeat("red ", 9000)); // the demo model's context is 8192 tokens
        AssertOneLineError(Run("run", "--image", Sample("02-blue-square.png"), "--prompt", prompt), "context", "8192");
    }

    [Fact]
    public void Missing_image_is_a_clear_error() =>
        AssertOneLineError(Run("run", "--image", "/nonexistent/cat.png", "--prompt", "caption en"), "/nonexistent/cat.png");

    [Fact]
    public void Corrupt_image_is_a_clear_error()
    {
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-corrupt-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10, 0, 0, 0]);
        try { AssertOneLineError(Run("run", "--image", path, "--prompt", "caption en"), path); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Directory_without_config_is_a_clear_error()
    {
        string dir = Directory.CreateTempSubdirectory("purevlm-empty-").FullName;
        try { AssertOneLineError(Run("run", "--model", dir, "--image", Sample("02-blue-square.png"), "--prompt", "caption en"), "config.json"); }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Unknown_architecture_is_a_clear_error()
    {
        string dir = CopyDemoModel();
        try
        {
            string config = Path.Combine(dir, "config.json");
            File.WriteAllText(config, File.ReadAllText(config).Replace("\"model_type\": \"paligemma\"", "\"model_type\": \"mllama\""));
            AssertOneLineError(Run("run", "--model", dir, "--image", Sample("02-blue-square.png"), "--prompt", "caption en"), "mllama", "paligemma, llava, video_llava, gemma3, molmo, gemma, gemma2, gemma3_text, llama");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Tokenizer_that_does_not_fit_the_model_is_a_clear_error()
    {
        string dir = CopyDemoModel();
        try
        {
            // spm-tiny has 3000 pieces; the demo model's vocabulary has 1536 rows.
            File.Copy(Path.Combine(TestPaths.TokenizerFixture("spm-tiny"), "tokenizer.model"), Path.Combine(dir, "tokenizer.model"), overwrite: true);
            AssertOneLineError(Run("run", "--model", dir, "--image", Sample("02-blue-square.png"), "--prompt", "caption en"), "3000", "1536");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("--max-tokens", "0", "--max-tokens")]
    [InlineData("--temperature", "-1", "--temperature")]
    [InlineData("--top-p", "1.5", "--top-p")]
    [InlineData("--bogus", "1", "--bogus")]
    public void Bad_options_are_usage_errors(string option, string value, string mention)
    {
        var r = Run("run", "--image", Sample("02-blue-square.png"), "--prompt", "caption en", option, value);
        Assert.Equal(2, r.Code);
        AssertOneLineError(r, mention);
    }

    static string CopyDemoModel()
    {
        string dir = Directory.CreateTempSubdirectory("purevlm-model-").FullName;
        foreach (var f in new[] { "config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.model" })
            File.Copy(Path.Combine(TestPaths.DemoModel, f), Path.Combine(dir, f));
        return dir;
    }
}

[Collection(ConsoleCollection.Name)]
public class TraceCliTests
{
    [Theory]
    [InlineData("text")]
    [InlineData("vision")]
    [InlineData("rslora")]
    public void Trace_with_lora_matches_the_adapter_golden_stage_by_stage(string adapter)
    {
        string fixture = TestPaths.Fixture("paligemma-tiny");
        string output = Path.Combine(Path.GetTempPath(), $"purevlm-trace-{Guid.NewGuid():N}.safetensors");
        try
        {
            var o = new StringWriter();
            int code = PureVlm.Cli.Program.Run(["trace", "--model", fixture, "--image", Path.Combine(fixture, "input.png"),
                "--input-ids", "2,17,251,42,9,133,108", "--generate", "12", "--lora", Path.Combine(fixture, "lora", adapter), "--out", output], o, new StringWriter());
            Assert.Equal(0, code);
            code = PureVlm.Cli.Program.Run(["diff", Path.Combine(fixture, "lora", $"golden-{adapter}.safetensors"), output], o, new StringWriter());
            Assert.True(code == 0, o.ToString());
            Assert.Contains("generated_ids", o.ToString());
        }
        finally { File.Delete(output); }
    }
}
