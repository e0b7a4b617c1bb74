using System.Text.Json;
using System.Text.RegularExpressions;
using PureVlm.Cli;
using PureVlm.Formats.Images;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Inspection;

/// <summary>purevlm explain on the demo model: report.json follows docs/report-schema.md and report.html is self-contained.</summary>
[Collection(PureVlm.Tests.Cli.ConsoleCollection.Name)] // explain writes the answer to Console.Out, which other tests redirect
public sealed class ExplainReportTests : IDisposable
{
    readonly string _out = Directory.CreateTempSubdirectory("purevlm-explain-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    static readonly Demo.DemoModelTests.Sample Caption = Demo.DemoModelTests.Samples.Single(s => s.Image == "04-red-circle.png" && s.Prompt == "caption en");
    static readonly string Image = Path.Combine(TestPaths.DemoModel, "samples", Caption.Image);

    // docs/report-schema.md, as key → kind per object.
    static readonly Dictionary<string, JsonValueKind> Root = new()
    {
        ["schema"] = JsonValueKind.String, ["model"] = JsonValueKind.Object, ["request"] = JsonValueKind.Object,
        ["answer"] = JsonValueKind.Object, ["tokens"] = JsonValueKind.Array, ["detections"] = JsonValueKind.Array, ["segments"] = JsonValueKind.Array,
    };
    static readonly Dictionary<string, JsonValueKind> Model = Kinds(JsonValueKind.String, "directory", "model_type", "text_model_type")
        .Concat(Kinds(JsonValueKind.Number, "image_size", "patch_size", "patch_grid", "image_tokens", "text_layers", "text_heads", "hidden_size", "vocab_size")).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Request = Kinds(JsonValueKind.String, "image", "prompt")
        .Concat(Kinds(JsonValueKind.Number, "image_width", "image_height", "prompt_tokens", "max_new_tokens", "layer")).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Answer = Kinds(JsonValueKind.String, "text")
        .Concat(Kinds(JsonValueKind.Number, "token_count", "mean_logprob", "min_probability", "min_probability_index"))
        .Append(new("stopped_at_eos", JsonValueKind.True)).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Token = Kinds(JsonValueKind.String, "piece", "text")
        .Concat(Kinds(JsonValueKind.Number, "index", "id", "probability", "logprob", "entropy"))
        .Concat(Kinds(JsonValueKind.Array, "top", "logit_lens")).Append(new("attention", JsonValueKind.Object)).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> TokenProbability = Kinds(JsonValueKind.Number, "id", "probability").Append(new("piece", JsonValueKind.String)).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Attention = Kinds(JsonValueKind.Array, "layers", "mean", "image_share").ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Lens = Kinds(JsonValueKind.Number, "layer", "chosen_probability").Append(new("top", JsonValueKind.Object)).ToDictionary();
    static readonly Dictionary<string, JsonValueKind> Detection = new() { ["label"] = JsonValueKind.String, ["box"] = JsonValueKind.Array };

    static IEnumerable<KeyValuePair<string, JsonValueKind>> Kinds(JsonValueKind kind, params string[] keys) => keys.Select(k => KeyValuePair.Create(k, kind));

    static void AssertShape(JsonElement e, Dictionary<string, JsonValueKind> schema)
    {
        Assert.Equal(JsonValueKind.Object, e.ValueKind);
        Assert.Equal(schema.Keys.Order(), e.EnumerateObject().Select(p => p.Name).Order());
        foreach (var (key, kind) in schema)
        {
            var actual = e.GetProperty(key).ValueKind;
            if (kind == JsonValueKind.True) Assert.True(actual is JsonValueKind.True or JsonValueKind.False, $"{key} is {actual}, expected a bool");
            else Assert.True(actual == kind, $"{key} is {actual}, expected {kind}");
        }
    }

    static double[] Numbers(JsonElement array) => array.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    [Fact]
    public void Explain_detect_writes_a_report_that_follows_the_schema_and_agrees_with_generation()
    {
        Assert.Equal(0, Program.Main(["explain", "--model", TestPaths.DemoModel, "--image", Image, "--prompt", "detect circle", "--out", _out, "--layer", "2", "--max-tokens", "16"]));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "report.json")));
        var root = doc.RootElement;
        AssertShape(root, Root);
        Assert.Equal("purevlm.explain/1", root.GetProperty("schema").GetString());
        AssertShape(root.GetProperty("model"), Model);
        AssertShape(root.GetProperty("request"), Request);
        AssertShape(root.GetProperty("answer"), Answer);
        Assert.Equal(2, root.GetProperty("request").GetProperty("layer").GetInt32());

        // The same request without the recorder: the report must describe exactly this answer.
        using var model = VlmModel.Load(TestPaths.DemoModel);
        var plain = model.Generate(ImageLoader.Load(Image), "detect circle", new GenerationOptions { MaxNewTokens = 16 });
        Assert.Equal(plain.Text, root.GetProperty("answer").GetProperty("text").GetString());
        var tokens = root.GetProperty("tokens").EnumerateArray().ToList();
        Assert.Equal(plain.Tokens.Count, tokens.Count);
        double logprobSum = 0, minP = 1;
        for (int k = 0; k < tokens.Count; k++)
        {
            var t = tokens[k];
            AssertShape(t, Token);
            Assert.Equal(plain.Tokens[k].Id, t.GetProperty("id").GetInt32());
            double p = t.GetProperty("probability").GetDouble();
            Assert.Equal(plain.Tokens[k].Probability, p, 1e-5);
            logprobSum += Math.Log(p); minP = Math.Min(minP, p);
            var top = t.GetProperty("top").EnumerateArray().ToList();
            Assert.Equal(5, top.Count);
            top.ForEach(a => AssertShape(a, TokenProbability));
            Assert.Equal(plain.Tokens[k].Id, top[0].GetProperty("id").GetInt32()); // greedy: the chosen token is the most likely
            Assert.True(top.Zip(top.Skip(1)).All(pair => pair.First.GetProperty("probability").GetDouble() >= pair.Second.GetProperty("probability").GetDouble()));
            double entropy = t.GetProperty("entropy").GetDouble();
            Assert.InRange(entropy, 0, Math.Log(1536));

            var attention = t.GetProperty("attention");
            AssertShape(attention, Attention);
            var layers = attention.GetProperty("layers").EnumerateArray().Select(Numbers).ToList();
            Assert.Equal(4, layers.Count);
            Assert.All(layers, l => Assert.Equal(64, l.Length));
            var mean = Numbers(attention.GetProperty("mean"));
            for (int j = 0; j < 64; j++) Assert.Equal(layers.Average(l => l[j]), mean[j], 1e-6);
            var share = Numbers(attention.GetProperty("image_share"));
            for (int i = 0; i < 4; i++) { Assert.Equal(layers[i].Sum(), share[i], 1e-5); Assert.InRange(share[i], 0, 1 + 1e-5); }

            var lens = t.GetProperty("logit_lens").EnumerateArray().ToList();
            Assert.Equal(Enumerable.Range(0, 4), lens.Select(l => l.GetProperty("layer").GetInt32()));
            lens.ForEach(l => { AssertShape(l, Lens); AssertShape(l.GetProperty("top"), TokenProbability); });
            // The last layer's lens is the real distribution.
            Assert.Equal(plain.Tokens[k].Id, lens[^1].GetProperty("top").GetProperty("id").GetInt32());
            Assert.Equal(p, lens[^1].GetProperty("chosen_probability").GetDouble(), 1e-5);
        }
        var answer = root.GetProperty("answer");
        Assert.Equal(logprobSum / tokens.Count, answer.GetProperty("mean_logprob").GetDouble(), 1e-9);
        Assert.Equal(minP, answer.GetProperty("min_probability").GetDouble(), 1e-12);
        Assert.True(answer.GetProperty("stopped_at_eos").GetBoolean());

        var detections = root.GetProperty("detections").EnumerateArray().ToList();
        Assert.Equal(plain.Detections.Count, detections.Count);
        Assert.NotEmpty(detections);
        detections.ForEach(d => { AssertShape(d, Detection); Assert.Equal(4, d.GetProperty("box").GetArrayLength()); });
    }

    [Fact]
    public void Explain_html_is_self_contained_with_inline_png_images()
    {
        Assert.Equal(0, Program.Main(["explain", "--model", TestPaths.DemoModel, "--image", Image, "--prompt", "caption en", "--out", _out]));
        string html = File.ReadAllText(Path.Combine(_out, "report.html"));
        Assert.DoesNotContain("http:", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https:", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        var sources = Regex.Matches(html, "src=\"([^\"]*)\"").Select(m => m.Groups[1].Value).ToList();
        // Per token (the caption has two): layer heatmap, mean heatmap and 4 per-layer thumbnails; plus the input and the model's view.
        Assert.Equal(2 + 2 * 6, sources.Count);
        Assert.All(sources, s => Assert.StartsWith("data:image/png;base64,", s));
        var png = Convert.FromBase64String(sources[0]["data:image/png;base64,".Length..]);
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Contains(Caption.Expected, html);
    }

    [Fact]
    public void Explain_rejects_a_layer_the_model_does_not_have()
    {
        Assert.Equal(2, Program.Main(["explain", "--model", TestPaths.DemoModel, "--image", Image, "--prompt", "caption en", "--out", _out, "--layer", "4"]));
        Assert.False(File.Exists(Path.Combine(_out, "report.json")));
    }
}
