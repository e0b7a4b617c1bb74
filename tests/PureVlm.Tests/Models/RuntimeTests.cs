using FsCheck;
using FsCheck.Fluent;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>KV cache, sampling, streaming and context-limit behaviour on the fixtures.</summary>
public class RuntimeTests
{
    static LoadedModel Load(string fixture) => LoadedModel.Load(TestPaths.Fixture(fixture));

    static int[] TextPrompt(GoldenFixture g) => g.Ints("input_ids");

    [Fact]
    public void Prefill_then_decode_equals_one_longer_prefill_gemma2_text()
    {
        // Covers the sliding window (6) of even layers while decoding: n ranges past it.
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = Load("gemma2-text-tiny");
        var ids = TextPrompt(g);
        Prop.ForAll(Gen.Choose(1, ids.Length - 1).ToArbitrary(), Gen.Choose(0, 299).ToArbitrary(), (n, next) =>
        {
            var prompt = ids[..n].Append(next).ToArray();
            var a = model.CreateSession();
            a.Prefill(prompt[..n]);
            var stepped = a.Decode(next).ToArray();
            var whole = model.CreateSession().Prefill(prompt).ToArray();
            var (diff, scale) = GoldenFixture.Compare(stepped, whole);
            return diff <= 1e-5f * scale;
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Decode_after_paligemma_prefix_equals_recompute_with_prefix_length()
    {
        // Decoding a token after the bidirectional prefix = prefilling prefix + token where only the prefix is bidirectional.
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = Load("paligemma-tiny");
        var pali = model.VisionLanguage!;
        var ctx = new ForwardContext();
        var features = pali.EncodeImage(g["pixel_values"].Span, ctx);
        var ids = g.Ints("input_ids");
        var generated = g.Ints("generated_ids");

        var session = model.CreateSession();
        session.Prefill(ids, features);
        session.Decode(generated[0]);
        var stepped = session.Decode(generated[1]).ToArray();

        // Recompute: prefill the prefix, then feed both generated tokens in one call (causal after the prefix).
        var cache = pali.LanguageModel.NewCache();
        pali.Forward(ids, features, cache, ctx);
        var whole = pali.Forward(generated[..2], default, cache, ctx).ToArray();
        var (diff, scale) = GoldenFixture.Compare(stepped, whole);
        Assert.True(diff <= 1e-5f * scale, $"max|diff| {diff:E2}, max|want| {scale}");
    }

    [Fact]
    public void Sampling_with_the_same_seed_repeats_and_other_seeds_differ()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = Load("gemma2-text-tiny");
        int[] Run(ulong seed, float t = 1.5f, int topK = 0, float topP = 1) => model.CreateSession()
            .Generate(TextPrompt(g), null, new GenerationOptions { MaxNewTokens = 12, Temperature = t, TopK = topK, TopP = topP, Seed = seed, StopAtEos = false })
            .Select(x => x.Id).ToArray();
        Assert.Equal(Run(7), Run(7));
        Assert.Equal(Run(7, topK: 20, topP: 0.9f), Run(7, topK: 20, topP: 0.9f));
        Assert.Contains(Enumerable.Range(8, 4), s => !Run((ulong)s).SequenceEqual(Run(7)));
        Assert.Equal(g.Ints("generated_ids"), Run(3, topK: 1)); // top-1 sampling is greedy
    }

    [Fact]
    public void Xoshiro256_and_SplitMix64_follow_their_definitions()
    {
        // xoshiro256** from state {1, 2, 3, 4}, stepped by hand from the algorithm: rotl(2·5, 7)·9 = 11520; then s1 = 0;
        // then s1 = 262149 → rotl(1310745, 7)·9 = 1509978240.
        var rng = Xoshiro256.FromState(1, 2, 3, 4);
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        ulong seed = 0; // SplitMix64's first output from 0 is the finaliser of the golden-ratio increment
        Assert.Equal(0xE220A8397B1DCDAFUL, Xoshiro256.SplitMix64(ref seed));
    }

    [Fact]
    public async Task Async_stream_equals_sync_and_honours_cancellation()
    {
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = Load("paligemma-tiny");
        var session = model.CreateSession();
        var features = session.EncodeImage(g["pixel_values"]);
        var options = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };
        var streamed = new List<GeneratedToken>();
        await foreach (var t in session.GenerateAsync(g.Ints("input_ids"), features, options)) streamed.Add(t);
        Assert.Equal(g.Ints("generated_ids"), streamed.Select(t => t.Id).ToArray());
        Assert.All(streamed, t => Assert.InRange(t.Probability, 0f, 1f));

        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in session.GenerateAsync(g.Ints("input_ids"), features, options, cts.Token))
                if (++seen == 3) cts.Cancel();
        });
        Assert.Equal(3, seen);
    }

    /// <summary>Adds +100 to the eos logit from the third lm_head call on (a per-request adapter at the Linear hook).</summary>
    sealed class ForceEosFromThirdStep : ILinearAdapters
    {
        public int HeadCalls;
        public HashSet<string> Seen { get; } = new();
        public void Apply(Linear linear, ReadOnlySpan<float> x, int m, Span<float> y)
        {
            Seen.Add(linear.ModulePath);
            if (linear.ModulePath == "lm_head" && ++HeadCalls >= 3) y[(m - 1) * linear.OutFeatures + 1] += 100;
        }
    }

    [Fact]
    public void Generation_stops_after_eos_and_adapters_see_every_linear()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = Load("gemma2-text-tiny");
        var adapter = new ForceEosFromThirdStep();
        var ids = model.CreateSession(new SessionOptions { Adapters = adapter })
            .Generate(TextPrompt(g), null, new GenerationOptions { MaxNewTokens = 12 }).Select(t => t.Id).ToArray();
        Assert.Equal(g.Ints("generated_ids")[..2].Append(1), ids);
        Assert.Contains("model.layers.3.mlp.down_proj", adapter.Seen);
        Assert.Contains("model.layers.0.self_attn.q_proj", adapter.Seen);
        Assert.Equal(4 * 7 + 1, adapter.Seen.Count);
    }

    [Fact]
    public void Sessions_on_one_model_run_in_parallel()
    {
        using var g = new GoldenFixture("paligemma2-tiny", "golden.safetensors");
        using var model = Load("paligemma2-tiny");
        var results = new int[4][];
        Parallel.For(0, 4, i =>
        {
            var s = model.CreateSession();
            results[i] = s.Generate(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]), new GenerationOptions { MaxNewTokens = 12, StopAtEos = false })
                .Select(t => t.Id).ToArray();
        });
        Assert.All(results, r => Assert.Equal(g.Ints("generated_ids"), r));
    }

    [Fact]
    public void Prompt_longer_than_the_context_limit_is_rejected()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = Load("gemma2-text-tiny");
        var session = model.CreateSession(new SessionOptions { MaxContextLength = 10 });
        var e = Assert.Throws<ContextLengthException>(() => session.Prefill(TextPrompt(g)));
        Assert.Contains("20", e.Message);
        Assert.Contains("10", e.Message);
        var s2 = model.CreateSession(new SessionOptions { MaxContextLength = 21 });
        s2.Prefill(TextPrompt(g));
        s2.Decode(5);
        Assert.Throws<ContextLengthException>(() => s2.Decode(5));
    }

    [Fact]
    public void Token_id_outside_the_vocabulary_is_rejected()
    {
        using var model = Load("gemma2-text-tiny");
        var e = Assert.Throws<PureVlm.Prompts.InvalidPromptException>(() => model.CreateSession().Prefill([2, 300]));
        Assert.Contains("300", e.Message);
    }
}
