using PureVlm.Formats;

namespace PureVlm.WeightsTools;

/// <summary>The weights-tools command line: inspect, convert and synthesize safetensors checkpoints.</summary>
public static class Program
{
    static readonly (string Name, string Summary, Func<string[], TextWriter, int> Run)[] Commands =
    [
        ("inspect", "list every tensor of a safetensors file or checkpoint directory, with totals", InspectCommand.Run),
        ("convert", "convert a checkpoint's float tensors to f32, bf16 or f16", ConvertCommand.Run),
        ("synth", "write a random checkpoint with the real shapes of a PaliGemma or LLaVA model", SynthCommand.Run),
        ("merge-lora", "merge PEFT LoRA adapters into a copy of a checkpoint", MergeLoraCommand.Run),
        ("quantize", "write a copy of a checkpoint with 4- or 8-bit weights (MLX affine layout)", QuantizeCommand.Run),
    ];

    /// <summary>Entry point; exit code 0 on success, 1 when the work failed, 2 on a usage error.</summary>
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs a command line, writing results to <paramref name="stdout"/> and a one-line error to <paramref name="stderr"/>.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            stdout.WriteLine("usage: weights-tools <command> [options]   (weights-tools <command> --help for details)\n");
            foreach (var c in Commands) stdout.WriteLine($"  {c.Name,-8} {c.Summary}");
            return args.Length == 0 ? 2 : 0;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command.Run == null)
        {
            stderr.WriteLine($"weights-tools: unknown command '{args[0]}' (expected one of: {string.Join(", ", Commands.Select(c => c.Name))})");
            return 2;
        }
        try
        {
            return command.Run(args[1..], stdout);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"weights-tools {args[0]}: {OneLine(e)} (see weights-tools {args[0]} --help)");
            return 2;
        }
        catch (Exception e) when (e is PureVlmException or IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException or System.Text.Json.JsonException)
        {
            stderr.WriteLine($"weights-tools {args[0]}: {OneLine(e)}");
            return 1;
        }
    }

    static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ");
}

/// <summary>A wrong command line: exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>A minimal "--name value" parser: every option takes one value; positional arguments are kept in order.</summary>
sealed class Options
{
    readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);
    readonly List<string> _positional = new();

    /// <summary>True when --help or -h was given.</summary>
    public bool Help { get; }

    public Options(string[] args, params string[] known)
    {
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a is "-h" or "--help") { Help = true; continue; }
            if (!a.StartsWith("--")) { _positional.Add(a); continue; }
            if (!known.Contains(a)) throw new UsageException($"unknown option '{a}'");
            if (i + 1 >= args.Length) throw new UsageException($"option '{a}' needs a value");
            if (!_values.TryAdd(a, args[++i])) throw new UsageException($"option '{a}' given twice");
        }
    }

    public IReadOnlyList<string> Positional => _positional;

    public string? Get(string name) => _values.GetValueOrDefault(name);

    public string Require(string name) => Get(name) ?? throw new UsageException($"missing {name}");

    /// <summary>
    /// The checkpoint <paramref name="path"/> names, with <c>--revision</c>: a .safetensors file or model folder as
    /// given, else a Hugging Face repo id's snapshot in the local hub cache (<see cref="HfCache.ResolveModel"/>).
    /// </summary>
    public string Model(string path) => File.Exists(path) && Get("--revision") == null ? path : HfCache.ResolveModel(path, Get("--revision"));

    public long GetLong(string name, long fallback, long min)
    {
        string? s = Get(name);
        if (s == null) return fallback;
        if (!long.TryParse(s, out long v) || v < min) throw new UsageException($"{name} '{s}' is not an integer >= {min}");
        return v;
    }
}
