using FsCheck;
using FsCheck.Xunit;
using PureVlm.Kernels;
using Xunit;

namespace PureVlm.Tests.Kernels;

[Collection(KernelSettingsCollection.Name)]
public class AttentionTests
{
    public static TheoryData<string, int, int, int, int, int, float, AttentionMask> Cases => new()
    {
        // name, nq, nk, heads, kvHeads, d, softCap, mask
        { "full (vision encoder)", 150, 150, 2, 2, 72, 0f, AttentionMask.Full },
        { "causal", 130, 130, 4, 2, 16, 0f, new AttentionMask(0, 0, int.MaxValue) },
        { "prefix-LM with softcap and GQA", 140, 140, 4, 1, 24, 50f, new AttentionMask(0, 70, int.MaxValue) },
        { "sliding window", 200, 200, 2, 1, 8, 30f, new AttentionMask(0, 0, 40) },
        { "sliding window over a prefix", 150, 150, 2, 2, 8, 0f, new AttentionMask(0, 90, 50) },
        { "decode step", 1, 97, 8, 4, 32, 50f, new AttentionMask(96, 20, int.MaxValue) },
        { "decode steps, 6 query heads per KV head, head dim 72", 2, 97, 12, 2, 72, 0f, new AttentionMask(95, 20, int.MaxValue) },
        { "chunk of queries after a cache", 9, 140, 4, 2, 16, 0f, new AttentionMask(131, 10, 64) },
        { "image blocks in a causal mask", 150, 150, 4, 2, 16, 0f, new AttentionMask(0, 0, int.MaxValue) { Blocks = [7, 23, 70, 136] } },
        { "image block longer than the window", 150, 150, 2, 1, 8, 0f, new AttentionMask(0, 0, 20) { Blocks = [10, 90] } },
        { "head dim above 128 (64-key tiles), prefix and soft-cap", 150, 150, 2, 1, 160, 50f, new AttentionMask(0, 70, int.MaxValue) },
        { "head dim 72 (a 16-wide last value panel), causal", 200, 200, 2, 2, 72, 0f, new AttentionMask(0, 0, int.MaxValue) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Tiled_attention_matches_naive_double_reference(string name, int nq, int nk, int heads, int kvHeads, int d, float softCap, AttentionMask mask)
    {
        var rng = new Random(name.Length * 7 + nq);
        var q = Reference.RandomFloats(rng, nq * heads * d, 2f);
        var k = Reference.RandomFloats(rng, nk * kvHeads * d, 2f);
        var v = Reference.RandomFloats(rng, nk * kvHeads * d);
        float scale = 1f / MathF.Sqrt(d);
        var (expected, expectedProbs) = Reference.Attention(q, k, v, nq, nk, heads, kvHeads, d, scale, softCap, mask);
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa);
            var output = new float[nq * heads * d];
            Attention.Compute(q, k, v, output, nq, nk, heads, kvHeads, d, scale, softCap, mask);
            AssertClose(expected, output, 2e-5, $"{name} {isa} tiled");

            var withProbs = new float[nq * heads * d];
            var probs = new float[heads * nq * nk];
            Attention.Compute(q, k, v, withProbs, nq, nk, heads, kvHeads, d, scale, softCap, mask, probs);
            AssertClose(expected, withProbs, 2e-5, $"{name} {isa} with probs");
            AssertClose(expectedProbs, probs, 2e-5, $"{name} {isa} probs");
            for (int row = 0; row < heads * nq; row++)
            {
                double sum = 0;
                for (int j = 0; j < nk; j++) sum += probs[row * nk + j];
                Assert.True(Math.Abs(sum - 1) < 1e-5, $"{name}: probs row {row} sums to {sum}");
            }
        }
    }

    /// <summary>
    /// Random shapes (ragged tiles, head dims that are not a multiple of the register panels, GQA, a chunk of queries after
    /// a cache) with every mask kind (full, causal, prefix, window, blocks) and soft-cap on or off, on every kernel path,
    /// against the double-precision reference.
    /// </summary>
    [Property(MaxTest = 30)]
    public void Tiled_attention_matches_the_reference_on_random_shapes_and_masks(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        int kvHeads = rng.Next(1, 4), heads = kvHeads * rng.Next(1, 7), d = rng.Next(1, 90), nk = rng.Next(1, 200);
        int nq = rng.Next(4) == 0 ? rng.Next(1, nk + 1) : nk, queryStart = nk - nq;
        int prefix = rng.Next(4) switch { 0 => int.MaxValue, 1 => 0, _ => rng.Next(0, nk + 1) };
        int window = rng.Next(3) == 0 ? rng.Next(1, nk + 1) : int.MaxValue;
        int[]? blocks = null;
        if (rng.Next(3) == 0)
        {
            int a = rng.Next(nk), b = rng.Next(a + 1, nk + 1);
            blocks = b + 2 < nk ? [a, b, b + 1, rng.Next(b + 2, nk + 1)] : [a, b];
        }
        var mask = new AttentionMask(queryStart, prefix, window) { Blocks = blocks };
        float softCap = rng.Next(2) == 0 ? 0f : 20f;
        var q = Reference.RandomFloats(rng, nq * heads * d, 2f);
        var k = Reference.RandomFloats(rng, nk * kvHeads * d, 2f);
        var v = Reference.RandomFloats(rng, nk * kvHeads * d);
        float scale = 1f / MathF.Sqrt(d);
        var (expected, _) = Reference.Attention(q, k, v, nq, nk, heads, kvHeads, d, scale, softCap, mask);
        string name = $"nq={nq} nk={nk} heads={heads}/{kvHeads} d={d} {mask} blocks=[{string.Join(",", blocks ?? [])}] cap={softCap}";
        foreach (var isa in SettingsScope.AllPaths)
        {
            using var scope = new SettingsScope(isa);
            var output = new float[nq * heads * d];
            Attention.Compute(q, k, v, output, nq, nk, heads, kvHeads, d, scale, softCap, mask);
            AssertClose(expected, output, 2e-5, $"{name} {isa}");
        }
    }

    /// <summary>Outputs are convex combinations of values in [−1, 1], so an absolute tolerance is the right scale.</summary>
    static void AssertClose(double[] expected, float[] actual, double tolerance, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tolerance))
                Assert.Fail($"{what}: element {i}: got {actual[i]}, expected {expected[i]}");
    }

    [Fact]
    public void Mask_key_range_agrees_with_allows()
    {
        var masks = new[] { AttentionMask.Full, new AttentionMask(0, 0, int.MaxValue), new AttentionMask(3, 10, 4), new AttentionMask(0, 12, int.MaxValue), new AttentionMask(20, 5, 7),
            new AttentionMask(0, 0, 4) { Blocks = [2, 5, 9, 20] }, new AttentionMask(6, 0, int.MaxValue) { Blocks = [0, 3, 8, 12] } };
        foreach (var mask in masks)
        {
            var previous = (Start: 0, End: 0);
            for (int i = 0; i < 30; i++)
            {
                var (start, end) = mask.KeyRange(i);
                for (int j = 0; j < 40; j++) Assert.Equal(mask.Allows(i, j), j >= start && j < end);
                // The tiled kernel reads the key tiles of a query tile from its first row's start to its last row's end.
                Assert.True(start >= previous.Start && end >= previous.End, $"{mask}: row {i} range [{start}, {end}) after [{previous.Start}, {previous.End})");
                previous = (start, end);
            }
        }
    }

    [Fact]
    public void Warm_attention_call_allocates_nothing_on_the_calling_thread()
    {
        int n = 130, heads = 2, d = 16;
        var rng = new Random(1);
        var q = Reference.RandomFloats(rng, n * heads * d);
        var output = new float[n * heads * d];
        Attention.Compute(q, q, q, output, n, n, heads, heads, d, 0.25f, 50f, new AttentionMask(0, 0, int.MaxValue));
        Assert.Equal(0, AllocationProbe.MinimumAllocated(
            () => Attention.Compute(q, q, q, output, n, n, heads, heads, d, 0.25f, 50f, new AttentionMask(0, 0, int.MaxValue)), calls: 5));
    }
}
