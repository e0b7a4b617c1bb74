using PureVlm.Benchmarks;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Fuzz;

/// <summary>
/// A short run of the fuzz harness (benchmarks/Fuzz.cs, compiled in here) per kind of input, 4 s each and 48 s in
/// all, and every crasher it ever found (tests/data/fuzz/crashers) replayed: each must work or raise a one-line
/// <see cref="PureVlmException"/>.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Kinds() => new(Fuzzer.Kinds);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_short_fuzz_run_finds_no_crash(string kind)
    {
        using var fuzzer = new Fuzzer(TestPaths.RepoRoot, seed: kind.GetHashCode(StringComparison.Ordinal));
        var r = fuzzer.Run(kind, TimeSpan.FromSeconds(4), saveTo: null);
        output.WriteLine($"{kind}: {r.Runs} inputs, {r.Accepted} worked, {r.Refused} refused");
        Assert.True(r.Runs > 0);
        Assert.Empty(r.Crashes);
    }

    public static TheoryData<string, string> Crashers()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in Fuzzer.Kinds)
            if (Directory.Exists(Fuzzer.CrasherFolder(TestPaths.RepoRoot, kind)))
                foreach (var f in Directory.EnumerateFiles(Fuzzer.CrasherFolder(TestPaths.RepoRoot, kind)).Order(StringComparer.Ordinal))
                    data.Add(kind, Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Crashers))]
    public void A_kept_crasher_now_works_or_is_refused(string kind, string file)
    {
        using var fuzzer = new Fuzzer(TestPaths.RepoRoot, seed: 0);
        Assert.Null(fuzzer.Check(kind, File.ReadAllBytes(Path.Combine(Fuzzer.CrasherFolder(TestPaths.RepoRoot, kind), file)), out _));
    }
}
