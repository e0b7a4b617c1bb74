using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.Models;
using Xunit;

namespace PureVlm.Tests.Inspection;

/// <summary>The grown-up observer hook: every named point once per step in forward order, and interventions that change the output as computed by hand.</summary>
public class ObservationPointTests
{
    /// <summary>Logs (name, step, shape) of every report; optionally asks for every sub-layer point, and runs an edit on each live tensor.</summary>
    sealed class Log(bool wantsEverything, Action<string, Tensor, int>? edit = null) : IForwardObserver
    {
        public List<(string Name, int Step, int[] Shape)> Events { get; } = new();
        public Dictionary<(string, int), float[]> Copies { get; } = new();
        public bool WantsAttentionProbabilities => wantsEverything;
        public bool WantsAttentionOutputs => wantsEverything;
        public bool WantsMlpActivations => wantsEverything;
        public void OnTensor(string name, Tensor tensor, int step)
        {
            Events.Add((name, step, (int[])tensor.Shape.Clone()));
            edit?.Invoke(name, tensor, step);
            Copies[(name, step)] = tensor.Data.AsSpan(0, tensor.Length).ToArray();
        }
        public List<string> Names(int step) => Events.Where(e => e.Step == step).Select(e => e.Name).ToList();
    }

    static List<string> Layer(string prefix, int i, bool subPoints) =>
        subPoints ? [$"{prefix}.{i}.attn_probs", $"{prefix}.{i}.attn_output", $"{prefix}.{i}.mlp.hidden", $"{prefix}.{i}"] : [$"{prefix}.{i}"];

    static List<string> Decoder(int layers, bool subPoints) =>
        ["text.inputs_embeds", .. Enumerable.Range(0, layers).SelectMany(i => Layer("text.layers", i, subPoints)), "text.norm", "logits"];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_named_point_is_reported_once_per_step_in_forward_order(bool subPoints)
    {
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var log = new Log(subPoints);
        var s = model.CreateSession(new SessionOptions { Observer = log });
        s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]));
        s.Decode(7);
        s.Decode(8);

        List<string> step0 = ["pixel_values", "vision.embeddings", .. Enumerable.Range(0, 2).SelectMany(i => Layer("vision.layers", i, subPoints)),
            "vision.post_layernorm", "projector", .. Decoder(3, subPoints)];
        Assert.Equal(step0, log.Names(0));
        Assert.Equal(Decoder(3, subPoints), log.Names(1));
        Assert.Equal(Decoder(3, subPoints), log.Names(2));
        Assert.Equal(new[] { 0, 1, 2 }, log.Events.Select(e => e.Step).Distinct());
        if (!subPoints) return;
        // paligemma-tiny: 16 image tokens; text 4 heads × 16, mlp 128; prompt 23 tokens.
        var shapes = log.Events.ToDictionary(e => (e.Name, e.Step), e => e.Shape);
        var v = model.Config.Vision!;
        Assert.Equal(new[] { 1, 16, v.HiddenSize }, shapes[("vision.layers.1.attn_output", 0)]);
        Assert.Equal(new[] { 1, 16, v.IntermediateSize }, shapes[("vision.layers.1.mlp.hidden", 0)]);
        Assert.Equal(new[] { 1, 23, 64 }, shapes[("text.layers.2.attn_output", 0)]);
        Assert.Equal(new[] { 1, 23, 128 }, shapes[("text.layers.2.mlp.hidden", 0)]);
        Assert.Equal(new[] { 1, 1, 128 }, shapes[("text.layers.0.mlp.hidden", 2)]);
        Assert.Equal(new[] { 4, 1, 25 }, shapes[("text.layers.0.attn_probs", 2)]); // 23 prefix + 2 generated keys
    }

    [Fact]
    public void Decode_attention_sums_to_one_over_the_prefix_earlier_tokens_and_itself()
    {
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var log = new Log(true);
        var s = model.CreateSession(new SessionOptions { Observer = log });
        s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]));
        s.Decode(7);
        for (int layer = 0; layer < 3; layer++)
        {
            var probs = log.Copies[($"text.layers.{layer}.attn_probs", 1)]; // [4, 1, 24]
            Assert.Equal(4 * 24, probs.Length);
            for (int h = 0; h < 4; h++)
            {
                var row = probs.AsSpan(h * 24, 24);
                Assert.All(row.ToArray(), p => Assert.True(p > 0)); // prefix-LM: a generated token sees all 23 prefix keys and itself
                Assert.Equal(1f, row.ToArray().Sum(), 1e-5f);
            }
        }
        var vision = log.Copies[("vision.layers.0.attn_probs", 0)]; // [4, 16, 16], no mask
        for (int r = 0; r < 4 * 16; r++) Assert.Equal(1f, vision.AsSpan(r * 16, 16).ToArray().Sum(), 1e-5f);
    }

    [Fact]
    public void Zeroing_the_last_layer_output_gives_the_logits_of_a_zero_residual()
    {
        // RMSNorm(0) = 0 and the tied head has no bias, so every logit must be exactly 0.
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var zero = new Log(false, (name, t, _) => { if (name == "text.layers.2") t.Data.AsSpan(0, t.Length).Clear(); });
        var s = model.CreateSession(new SessionOptions { Observer = zero });
        var logits = s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"])).ToArray();
        Assert.All(logits, l => Assert.Equal(0f, l));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    public void Ablating_one_head_of_the_last_layer_matches_an_independent_computation(int head)
    {
        // paligemma-tiny's Gemma 1 decoder: hidden 64, 4 heads × 16, mlp 128, vocab 300, tied head, 3 layers.
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var ids = g.Ints("input_ids");
        var baseline = new Log(true);
        var s = model.CreateSession(new SessionOptions { Observer = baseline });
        var baseLogits = s.Prefill(ids, s.EncodeImage(g["pixel_values"])).ToArray();

        var ablate = new Log(true, (name, t, _) => { if (name == "text.layers.2.attn_output") for (int r = 0; r < t.Shape[1]; r++) t.Data.AsSpan(r * 64 + head * 16, 16).Clear(); });
        var s2 = model.CreateSession(new SessionOptions { Observer = ablate });
        var got = s2.Prefill(ids, s2.EncodeImage(g["pixel_values"])).ToArray();

        int last = ids.Length - 1;
        var residualIn = baseline.Copies[("text.layers.1", 0)].AsSpan(last * 64, 64).ToArray();
        var attnOut = baseline.Copies[("text.layers.2.attn_output", 0)].AsSpan(last * 64, 64).ToArray();
        using var weights = SafeTensorsFile.Open(Path.Combine(g.Dir, "model.safetensors"));
        var reference = new LastLayerReference(weights, "language_model.model", 2);
        // The reference must reproduce the unablated logits before its ablated result means anything.
        Assert.True(GoldenFixture.Compare(reference.Logits(residualIn, attnOut), baseLogits).Diff < 1e-4f);
        attnOut.AsSpan(head * 16, 16).Clear();
        var want = reference.Logits(residualIn, attnOut);
        var (diff, scale) = GoldenFixture.Compare(got, want);
        Assert.True(diff <= 1e-4f * scale, $"ablated logits differ from the hand computation by {diff} (scale {scale})");
        Assert.True(GoldenFixture.Compare(got, baseLogits).Diff > 1e-3f, "ablating a head must change the logits");
    }

    /// <summary>
    /// Gemma 1's last decoder layer after attention, the final norm and the tied head, written out naively in double from the
    /// checkpoint: x1 = r + o_proj(a); x2 = x1 + down(gelu_tanh(gate(n)) · up(n)), n = rms(x1)·(1+w); logits = E · rms(x2)·(1+w_final).
    /// </summary>
    sealed class LastLayerReference(SafeTensorsFile w, string prefix, int layer)
    {
        float[] Get(string name) => w[name].ToTensor().Data;
        string L(string name) => $"{prefix}.layers.{layer}.{name}";

        public float[] Logits(float[] residual, float[] attnOut)
        {
            var x1 = Add(residual, MatVec(Get(L("self_attn.o_proj.weight")), attnOut));
            var n = Rms(x1, Get(L("post_attention_layernorm.weight")));
            var gate = MatVec(Get(L("mlp.gate_proj.weight")), n);
            var up = MatVec(Get(L("mlp.up_proj.weight")), n);
            var h = gate.Select((x, i) => Gelu(x) * up[i]).ToArray();
            var x2 = Add(x1, MatVec(Get(L("mlp.down_proj.weight")), h));
            return MatVec(Get($"{prefix}.embed_tokens.weight"), Rms(x2, Get($"{prefix}.norm.weight")));
        }

        static float[] MatVec(float[] m, float[] x)
        {
            var y = new float[m.Length / x.Length];
            for (int o = 0; o < y.Length; o++)
            {
                double acc = 0;
                for (int i = 0; i < x.Length; i++) acc += (double)m[o * x.Length + i] * x[i];
                y[o] = (float)acc;
            }
            return y;
        }

        static float[] Add(float[] a, float[] b) => a.Select((x, i) => x + b[i]).ToArray();

        static float[] Rms(float[] x, float[] weight)
        {
            double ms = x.Sum(v => (double)v * v) / x.Length;
            double inv = 1 / Math.Sqrt(ms + 1e-6);
            return x.Select((v, i) => (float)(v * inv * (1 + weight[i]))).ToArray();
        }

        static float Gelu(float x) => (float)(0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * Math.Pow(x, 3)))));
    }

    [Fact]
    public void Logit_lens_of_the_last_layer_is_the_models_own_logits_with_final_softcap()
    {
        using var g = new GoldenFixture("paligemma2-tiny", "golden.safetensors"); // Gemma 2: final soft-cap 30
        using var model = LoadedModel.Load(g.Dir);
        var log = new Log(false);
        var s = model.CreateSession(new SessionOptions { Observer = log });
        var logits = s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"])).ToArray();
        int d = model.Config.Text.HiddenSize, last = g.Ints("input_ids").Length - 1;
        var lens = new float[model.Config.Text.VocabSize];
        model.Modules.LanguageModel.Logits(log.Copies[("text.layers.3", 0)].AsSpan(last * d, d), lens);
        // Only the summation order differs (one row through the GEMV path against all rows through the GEMM).
        var (diff, scale) = GoldenFixture.Compare(lens, logits);
        Assert.True(diff <= 1e-5f * scale, $"lens {diff} away from the logits (scale {scale})");
        Assert.Throws<ArgumentException>(() => model.Modules.LanguageModel.Logits(new float[d - 1], lens));
    }

    static string Answer(VlmModel model, string image, string prompt, IForwardObserver? observer = null) =>
        model.Generate(ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", image)), prompt, new GenerationOptions { MaxNewTokens = 8, Observer = observer }).Text;

    [Fact]
    public void Demo_blanking_the_image_tokens_changes_the_colour_answer_and_swapping_them_in_from_another_image_moves_it()
    {
        using var model = VlmModel.Load(TestPaths.DemoModel);
        const string prompt = "answer en what color is the circle?";
        var yellow = Demo.DemoModelTests.Samples.Single(s => s.Image == "05-yellow-circle.png" && s.Prompt == prompt);
        var blue = Demo.DemoModelTests.Samples.Single(s => s.Image == "01-blue-circle.png" && s.Prompt == prompt);
        Assert.Equal(yellow.Expected, Answer(model, yellow.Image, prompt));

        var blank = new Log(false, (name, t, step) => { if (name == "projector") t.Data.AsSpan(0, t.Length).Clear(); });
        Assert.NotEqual(yellow.Expected, Answer(model, yellow.Image, prompt, blank));

        var donor = new Log(false);
        Assert.Equal(blue.Expected, Answer(model, blue.Image, prompt, donor));
        var blueFeatures = donor.Copies[("projector", 0)];
        var swap = new Log(false, (name, t, step) => { if (name == "projector") blueFeatures.CopyTo(t.Data.AsSpan(0, t.Length)); });
        Assert.Equal(blue.Expected, Answer(model, yellow.Image, prompt, swap));
    }

    [Fact]
    public async Task Streaming_request_takes_its_observer_from_the_options_and_sees_each_decode_step()
    {
        using var model = VlmModel.Load(TestPaths.DemoModel);
        var s = Demo.DemoModelTests.Samples[1]; // a detect prompt: six tokens with eos
        var log = new Log(false);
        var pieces = new List<string>();
        await foreach (var piece in model.GenerateStreaming(ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", s.Image)), s.Prompt,
                           new GenerationOptions { Observer = log })) pieces.Add(piece);
        Assert.Equal(s.Expected, string.Concat(pieces));
        // Prefill (step 0) gives the first token and each decode step one more, up to eos; eos itself is never fed back.
        Assert.Equal(Enumerable.Range(0, s.ExpectedIds.Length), log.Events.Where(e => e.Name == "logits").Select(e => e.Step));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-3)]
    public void Max_new_tokens_below_one_is_refused_where_the_options_are_made(int max)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new GenerationOptions { MaxNewTokens = max });
        Assert.Contains($"MaxNewTokens is {max}, expected at least 1", e.Message);
    }
}
