namespace PureVlm.Benchmarks;

/// <summary><c>benchmarks -- fuzz KIND|all --seconds N [--seed S] [--no-save]</c>: prints one line per kind.</summary>
static class FuzzCommand
{
    public static int Run(string[] args)
    {
        string kind = args.Length > 1 ? args[1] : "all";
        double seconds = Option(args, "--seconds") ?? 10;
        int seed = (int)(Option(args, "--seed") ?? Environment.TickCount);
        string root = TokenizerBenchmarks.RepoRoot();
        var kinds = kind == "all" ? Fuzzer.Kinds : [kind];
        using var fuzzer = new Fuzzer(root, seed);
        int failed = 0;
        Console.WriteLine($"seed {seed}, {seconds} s per kind, load average {LoadAverage()}");
        foreach (var k in kinds)
        {
            var r = fuzzer.Run(k, TimeSpan.FromSeconds(seconds), args.Contains("--no-save") ? null : Fuzzer.CrasherFolder(root, k));
            Console.WriteLine($"{k}: {r.Runs} inputs, {r.Accepted} worked, {r.Refused} refused with a PureVlmException, {r.Crashes.Count} distinct crashes; slowest input {r.SlowestSeconds:F2} s");
            foreach (var c in r.Crashes) Console.WriteLine("  crash: " + c);
            failed += r.Crashes.Count;
        }
        return failed == 0 ? 0 : 1;
    }

    static double? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
