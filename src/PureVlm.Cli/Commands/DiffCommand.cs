using System.Globalization;
using PureVlm.Inspection;

namespace PureVlm.Cli.Commands;

static class DiffCommand
{
    const string Help = """
        usage: purevlm diff A.safetensors B.safetensors [--tol T]

        Compares two traces (from `purevlm trace` or a golden file) tensor by tensor in forward order:
        shape, max |B - A|, max |B - A| / max |A|, cosine similarity. Reports the first tensor whose
        relative difference exceeds the tolerance (default 1e-4) and exits 1 when any does.
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("diff", args, ["--tol"], []);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(2, "two trace files A.safetensors B.safetensors");
        var files = cl.Positionals;
        double tol = cl.Float("--tol", 0, float.MaxValue) ?? 1e-4f;

        var diffs = TraceDiff.Compare(files[0], files[1], tol);
        Console.Out.WriteLine($"{"tensor",-28} {"shape",-18} {"max|diff|",11} {"max rel",11} {"cosine",12}");
        foreach (var d in diffs)
        {
            string shape = d.ShapeB == null ? $"{d.ShapeA} (missing in B)" : d.ShapeA == d.ShapeB ? d.ShapeA : $"{d.ShapeA} vs {d.ShapeB}";
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{d.Name,-28} {shape,-18} {d.MaxAbs,11:0.000e+00} {d.MaxRel,11:0.000e+00} {d.Cosine,12:0.000000000}{(d.WithinTolerance ? "" : "  <-- over tolerance")}"));
        }
        var first = diffs.FirstOrDefault(d => !d.WithinTolerance);
        if (first == null)
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"all {diffs.Count} tensors within relative tolerance {tol:g3}"));
            return 0;
        }
        Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first tensor past tolerance {tol:g3}: {first.Name}"));
        return 1;
    }
}
