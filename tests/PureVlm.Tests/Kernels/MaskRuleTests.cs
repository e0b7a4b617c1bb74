using PureVlm.Kernels;
using Xunit;

namespace PureVlm.Tests.Kernels;

/// <summary>
/// The attention masks written out by hand from the rules in tests/data/fixtures/README.md, checked against both
/// AttentionMask.Allows and what the tiled kernel actually attends to (so the rule is not only tested against itself).
/// </summary>
[Collection(KernelSettingsCollection.Name)]
public class MaskRuleTests
{
    // PaliGemma prefix-LM, 3 prefix tokens then 2 generated: allowed(i, j) = j <= i or (i < 3 and j < 3).
    static readonly string[] PrefixLm = ["11100", "11100", "11100", "11110", "11111"];

    // Gemma 2 sliding window 3, causal, no prefix: 0 <= i - j < 3.
    static readonly string[] SlidingCausal = ["10000", "11000", "11100", "01110", "00111"];

    // Window 3 over a 4-token bidirectional prefix (HF: only keys with i - j >= 3 are cut; later prefix keys stay visible).
    static readonly string[] SlidingPrefix = ["111100", "111100", "111100", "011100", "001110", "000111"];

    public static TheoryData<string, int, int> Cases => new()
    {
        { nameof(PrefixLm), 3, int.MaxValue },
        { nameof(SlidingCausal), 0, 3 },
        { nameof(SlidingPrefix), 4, 3 },
    };

    static string[] Table(string name) => name switch
    {
        nameof(PrefixLm) => PrefixLm,
        nameof(SlidingCausal) => SlidingCausal,
        _ => SlidingPrefix,
    };

    [Theory, MemberData(nameof(Cases))]
    public void Mask_rule_matches_the_hand_written_table(string name, int prefix, int window)
    {
        var table = Table(name);
        var mask = new AttentionMask(0, prefix, window);
        for (int i = 0; i < table.Length; i++)
            for (int j = 0; j < table.Length; j++)
                Assert.True(mask.Allows(i, j) == (table[i][j] == '1'), $"{name}: query {i}, key {j}");
    }

    [Theory, MemberData(nameof(Cases))]
    public void Kernel_attends_exactly_to_the_hand_written_keys(string name, int prefix, int window)
    {
        var table = Table(name);
        int n = table.Length;
        // q = k = 0 makes every allowed key equally likely; v = one-hot key index makes out[i, j] the weight on key j.
        var q = new float[n * n];
        var k = new float[n * n];
        var v = new float[n * n];
        for (int j = 0; j < n; j++) v[j * n + j] = 1;
        var output = new float[n * n];
        Attention.Compute(q, k, v, output, n, n, 1, 1, n, 1f, 0f, new AttentionMask(0, prefix, window));
        for (int i = 0; i < n; i++)
        {
            int visible = table[i].Count(c => c == '1');
            for (int j = 0; j < n; j++)
                Assert.Equal(table[i][j] == '1' ? 1f / visible : 0f, output[i * n + j], 6);
        }

        // A decode step: the last row alone, placed by QueryStart, sees what the table's last row says.
        var last = new float[n];
        Attention.Compute(q.AsSpan(0, n), k, v, last, 1, n, 1, 1, n, 1f, 0f, new AttentionMask(n - 1, prefix, window));
        for (int j = 0; j < n; j++)
            Assert.Equal(table[n - 1][j] == '1' ? 1f / table[n - 1].Count(c => c == '1') : 0f, last[j], 6);
    }
}
