using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>The sampler follows HF's warper order (temperature, top-k, top-p on the top-k survivors) and stays finite.</summary>
public class SamplerWarperTests
{
    // Weights w, logits ln w: token 0..5 = 1, 5, 3, 2, 4, 0.5.
    static readonly float[] Logits = [0f, MathF.Log(5), MathF.Log(3), MathF.Log(2), MathF.Log(4), MathF.Log(0.5f)];

    static int[] Counts(GenerationOptions o, float[] logits, int draws = 3000)
    {
        var sampler = new Sampler(o, logits.Length);
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[sampler.Next(logits, out _)]++;
        return counts;
    }

    [Fact]
    public void Top_p_runs_on_probabilities_renormalised_over_the_top_k()
    {
        // top_k = 3 keeps 1, 4, 2 (5, 4, 3 of 12): renormalised 5/12 = .417, then .417 + 4/12 = .75 ≥ .6 → {1, 4}.
        // Top-p over the full softmax (sum 15.5) would keep 2 as well: 5/15.5 + 4/15.5 = .581 < .6.
        var counts = Counts(new GenerationOptions { Temperature = 1, TopK = 3, TopP = 0.6f, Seed = 1 }, Logits);
        Assert.Equal(0, counts[0] + counts[2] + counts[3] + counts[5]);
        Assert.InRange(counts[1] / 3000.0, 5 / 9.0 - 0.05, 5 / 9.0 + 0.05); // 1 and 4 in proportion 5 : 4
    }

    [Fact]
    public void Temperature_applies_before_top_k_and_top_p()
    {
        // T = 0.5 squares the weights: top 3 → 25, 16, 9 of 50; token 1 alone has .5 ≥ .45 → only token 1.
        // Tempering after top-p would keep {1, 4} (5/12 = .417 < .45).
        var counts = Counts(new GenerationOptions { Temperature = 0.5f, TopK = 3, TopP = 0.45f, Seed = 2 }, Logits, 500);
        Assert.Equal(500, counts[1]);
    }

    [Fact]
    public void Top_k_keeps_every_token_tied_with_the_kth_as_hf_does()
    {
        // HF removes logits < the k-th largest: with top_k = 1 and three tied maxima, all three survive.
        var counts = Counts(new GenerationOptions { Temperature = 1, TopK = 1, Seed = 3 }, [2f, 0f, 2f, 2f, -1f], 600);
        Assert.Equal(0, counts[1] + counts[4]);
        Assert.All(new[] { counts[0], counts[2], counts[3] }, c => Assert.InRange(c, 100, 300));
    }

    [Fact]
    public void Top_p_alone_keeps_the_smallest_set_reaching_p()
    {
        // Full softmax over 15.5: 5, 4 → .581 < .6, + 3 → .774: keeps {1, 4, 2}.
        var counts = Counts(new GenerationOptions { Temperature = 1, TopP = 0.6f, Seed = 4 }, Logits);
        Assert.Equal(0, counts[0] + counts[3] + counts[5]);
        Assert.True(counts[2] > 0);
    }

    [Theory]
    [InlineData(1e-39f)]
    [InlineData(1e-30f)]
    [InlineData(1e-6f)]
    public void Tiny_temperature_is_greedy_and_finite(float temperature)
    {
        float[] logits = [1f, 3f, 2.999f, -5f];
        foreach (var (k, p) in new[] { (0, 1f), (2, 1f), (0, 0.9f), (3, 0.5f) })
        {
            var sampler = new Sampler(new GenerationOptions { Temperature = temperature, TopK = k, TopP = p, Seed = 5 }, logits.Length);
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal(1, sampler.Next(logits, out float logprob));
                Assert.True(float.IsFinite(logprob) && logprob < 0, $"logprob {logprob}");
            }
        }
    }

    [Fact]
    public void Logprob_is_the_untempered_log_softmax()
    {
        float[] logits = [0.5f, -1f, 2f, 0f];
        double z = logits.Sum(l => Math.Exp(l));
        var sampler = new Sampler(new GenerationOptions { Temperature = 3, TopK = 2, TopP = 0.9f, Seed = 6 }, logits.Length);
        for (int i = 0; i < 20; i++)
        {
            int id = sampler.Next(logits, out float logprob);
            Assert.Equal(Math.Log(Math.Exp(logits[id]) / z), logprob, 5);
        }
    }

    [Theory]
    [InlineData(40, 0.9f)]
    [InlineData(0, 0.9f)]
    [InlineData(0, 1f)]
    public void Sampling_the_paligemma_vocabulary_allocates_nothing(int topK, float topP)
    {
        var rng = new Random(7);
        var logits = new float[257216];
        for (int i = 0; i < logits.Length; i++) logits[i] = (float)(rng.NextDouble() * 20 - 10);
        var sampler = new Sampler(new GenerationOptions { Temperature = 0.8f, TopK = topK, TopP = topP, Seed = 8 }, logits.Length);
        sampler.Next(logits, out _);
        Assert.Equal(0, AllocationProbe.MinimumAllocated(() => sampler.Next(logits, out _), calls: 3));
    }
}
