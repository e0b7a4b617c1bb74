using PureVlm.Formats;
using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.Models;
using Xunit;

namespace PureVlm.Tests.Inspection;

/// <summary>
/// explain's core (recorder → token explanations) on llava-tiny, driven with the fixture's golden input_ids and pixel_values
/// (no tokenizer needed): image tokens found after "USER: ", heatmaps over the 4×4 grid, LLaMA's norm and head in the lens.
/// </summary>
[Collection(PureVlm.Tests.Cli.ConsoleCollection.Name)] // explain writes the answer to Console.Out, which other tests redirect
public sealed class ExplainLlavaTests
{
    const string Fixture = "llava-tiny";
    const int ImageToken = 352, Grid = 4, Layers = 3, Heads = 4;

    /// <summary>Copies the producing row of every text layer's attention probabilities [heads, nk], per step; no reuse of the recorder's code.</summary>
    sealed class ProbsCopy : IForwardObserver
    {
        public List<float[][]> Steps { get; } = new(); // [step][layer] → [heads · nk]
        public List<int> Keys { get; } = new();        // nk per step
        public bool WantsAttentionProbabilities => true;
        public void OnTensor(string name, Tensor tensor, int step)
        {
            if (!name.StartsWith("text.layers.") || !name.EndsWith(".attn_probs")) return;
            int layer = int.Parse(name.Split('.')[2]);
            if (step == Steps.Count) { Steps.Add(new float[Layers][]); Keys.Add(tensor.Shape[2]); }
            int nq = tensor.Shape[1], nk = tensor.Shape[2];
            var data = tensor.Contiguous().Span;
            var rows = new float[tensor.Shape[0] * nk];
            for (int h = 0; h < tensor.Shape[0]; h++) data.Slice((h * nq + nq - 1) * nk, nk).CopyTo(rows.AsSpan(h * nk, nk));
            Steps[step][layer] = rows;
        }
    }

    sealed class Both(IForwardObserver a, IForwardObserver b) : IForwardObserver
    {
        public bool WantsAttentionProbabilities => true;
        public void OnTensor(string name, Tensor tensor, int step) { a.OnTensor(name, tensor, step); b.OnTensor(name, tensor, step); }
    }

    /// <summary>Generates <paramref name="n"/> greedy tokens with both observers attached and explains them.</summary>
    static (List<TokenExplanation> Tokens, ProbsCopy Probs, List<GeneratedToken> Generated) Explain(LoadedModel model, int[] ids, Tensor pixels, int n)
    {
        var vlm = model.VisionLanguage!;
        var recorder = ExplainRecorder.For(vlm, ids);
        var probs = new ProbsCopy();
        var session = model.CreateSession(new SessionOptions { Observer = new Both(recorder, probs) });
        var features = session.EncodeImage(pixels);
        var generated = session.Generate(ids, features, new GenerationOptions { MaxNewTokens = n, StopAtEos = false }).ToList();
        var answer = generated.Select(t => new AnswerToken(t.Id, "", t.Probability)).ToList();
        return (ExplainReport.ExplainTokens(vlm, recorder, answer, id => $"<{id}>", topK: 3), probs, generated);
    }

    /// <summary>Each layer's heatmap is the head mean of the producing row at <paramref name="patchRows"/>, its share their sum.</summary>
    static void AssertHeatmapsReadRows(List<TokenExplanation> tokens, ProbsCopy probs, int[] patchRows)
    {
        Assert.Equal(probs.Steps.Count, tokens.Count);
        for (int k = 0; k < tokens.Count; k++)
        {
            var attention = tokens[k].Attention;
            Assert.Equal(Layers, attention.Layers.Count);
            int nk = probs.Keys[k];
            for (int i = 0; i < Layers; i++)
            {
                var rows = probs.Steps[k][i];
                double mass = 0, total = 0;
                for (int j = 0; j < Grid * Grid; j++)
                {
                    double want = Enumerable.Range(0, Heads).Average(h => (double)rows[h * nk + patchRows[j]]);
                    Assert.Equal(want, attention.Layers[i][j], 1e-6);
                    mass += want;
                }
                for (int key = 0; key < nk; key++) total += Enumerable.Range(0, Heads).Average(h => (double)rows[h * nk + key]);
                Assert.Equal(1, total, 1e-5);                      // the row is a distribution over every key …
                Assert.Equal(mass, attention.ImageShare[i], 1e-5); // … and the share is the part on the patches
                Assert.InRange(attention.ImageShare[i], 0, 1 - 1e-4); // text keys (bos, "USER: ", the question) get some too
                for (int j = 0; j < Grid * Grid; j++)
                    Assert.Equal(Enumerable.Range(0, Layers).Average(l => (double)attention.Layers[l][j]), attention.Mean[j], 1e-6);
            }
        }
    }

    [Fact]
    public void Heatmaps_cover_the_16_image_rows_after_user_and_sum_to_their_attention_mass()
    {
        using var golden = new GoldenFixture(Fixture, "golden.safetensors");
        using var model = LoadedModel.Load(golden.Dir);
        var ids = golden.Ints("input_ids");
        var patchRows = Enumerable.Range(6, 16).ToArray();
        Assert.Equal(patchRows, ExplainRecorder.PatchPositions(model.VisionLanguage!, ids));

        var (tokens, probs, generated) = Explain(model, ids, golden["pixel_values"], 4);
        Assert.Equal(golden.Ints("generated_ids")[..4], generated.Select(t => t.Id));
        AssertHeatmapsReadRows(tokens, probs, patchRows);

        var wantLogits = golden["generated_logits"].Span;
        for (int k = 0; k < tokens.Count; k++)
        {
            var t = tokens[k];
            Assert.All(t.Attention.Layers, l => Assert.Equal(Grid * Grid, l.Length));
            Assert.Equal(generated[k].Id, t.Top[0].Id);
            Assert.Equal(generated[k].Probability, t.Probability, 1e-5);
            // Softmax of the golden row, restated in double: the report's probability and entropy must match it.
            var row = wantLogits.Slice(k * 384, 384).ToArray().Select(x => (double)x).ToArray();
            double max = row.Max(), z = row.Sum(x => Math.Exp(x - max));
            var p = row.Select(x => Math.Exp(x - max) / z).ToArray();
            Assert.Equal(p[generated[k].Id], t.Probability, 1e-4);
            Assert.Equal(-p.Where(q => q > 0).Sum(q => q * Math.Log(q)), t.Entropy, 1e-3);
            // The lens of the last layer goes through LLaMA's own norm and lm_head: it is the real distribution.
            Assert.Equal(Enumerable.Range(0, Layers), t.LogitLens.Select(l => l.Layer));
            Assert.Equal(generated[k].Id, t.LogitLens[^1].Top.Id);
            Assert.Equal(t.Probability, t.LogitLens[^1].ChosenProbability, 1e-5);
        }
    }

    [Fact]
    public void Full_strategy_keeps_the_class_token_in_the_prompt_but_not_in_the_heatmaps()
    {
        using var golden = new GoldenFixture(Fixture, "golden.safetensors");
        var config = ModelConfig.Load(Path.Combine(golden.Dir, "config.json"));
        config = config with { Llava = config.Llava! with { VisionFeatureSelectStrategy = "full", ImageSeqLength = 17 } };
        using var checkpoint = Checkpoint.Open(Path.Combine(golden.Dir, "model.safetensors"));
        using var model = LoadedModel.Load(config, checkpoint);
        var vlm = model.VisionLanguage!;
        Assert.Equal((17, Grid), (vlm.ImageTokensPerImage, vlm.ImageTokenGridSide));

        // One more image token: the class token is position 6, the patches 7..22.
        var ids = golden.Ints("input_ids").ToList();
        ids.Insert(6, ImageToken);
        var patchRows = Enumerable.Range(7, 16).ToArray();
        Assert.Equal(patchRows, ExplainRecorder.PatchPositions(vlm, ids.ToArray()));
        var (tokens, probs, _) = Explain(model, ids.ToArray(), golden["pixel_values"], 2);
        AssertHeatmapsReadRows(tokens, probs, patchRows);

        var described = ReportModel.Of("dir", vlm);
        Assert.Equal(new ReportModel("dir", "llava", "llama", 56, 14, Grid, 17, Layers, Heads, 64, 384), described);
    }

    [Fact]
    public void Report_model_describes_llava_and_a_prompt_without_one_image_is_refused()
    {
        using var model = LoadedModel.Load(TestPaths.Fixture(Fixture));
        var vlm = model.VisionLanguage!;
        Assert.Equal(new ReportModel("d", "llava", "llama", 56, 14, Grid, 16, Layers, Heads, 64, 384), ReportModel.Of("d", vlm));
        int[] fifteen = [1, 310, .. Enumerable.Repeat(ImageToken, 15), 333];
        var e = Assert.Throws<ArgumentException>(() => ExplainRecorder.PatchPositions(vlm, fifteen));
        Assert.StartsWith("the prompt has 15 image tokens (id 352), expected 16 (one image)", e.Message);
    }

    [Fact]
    public void Explain_command_on_llava_writes_a_report_over_the_patch_grid()
    {
        string dir = TestPaths.Fixture(Fixture), output = Directory.CreateTempSubdirectory("purevlm-explain-llava-").FullName;
        try
        {
            Assert.Equal(0, PureVlm.Cli.Program.Main(["explain", "--model", dir, "--image", Path.Combine(dir, "input.png"),
                "--prompt", "What is in the picture?", "--max-tokens", "3", "--out", output]));
            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
            var root = doc.RootElement;
            Assert.Equal("llava", root.GetProperty("model").GetProperty("model_type").GetString());
            Assert.Equal("llama", root.GetProperty("model").GetProperty("text_model_type").GetString());
            Assert.Equal(38, root.GetProperty("request").GetProperty("prompt_tokens").GetInt32()); // the fixture's input_ids
            using var g = new GoldenFixture(Fixture, "golden.safetensors");
            var tokens = root.GetProperty("tokens").EnumerateArray().ToList();
            Assert.Equal(g.Ints("generated_ids").Take(3), tokens.Select(t => t.GetProperty("id").GetInt32()));
            Assert.All(tokens, t => Assert.Equal(Grid * Grid, t.GetProperty("attention").GetProperty("mean").GetArrayLength()));
        }
        finally { Directory.Delete(output, recursive: true); }
    }
}
