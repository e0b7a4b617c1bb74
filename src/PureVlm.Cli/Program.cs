using PureVlm.Cli.Commands;

namespace PureVlm.Cli;

/// <summary>The purevlm command line: one verb per command, each in Commands/.</summary>
public static class Program
{
    static readonly (string Name, string Summary, Func<string[], int> Run)[] Commands =
    [
        ("run", "ask a model about an image and stream the answer", RunCommand.Run),
        ("info", "architecture, dtype, parameters and memory of a model", InfoCommand.Run),
        ("trace", "write every named intermediate tensor of a forward pass to safetensors", TraceCommand.Run),
        ("tokenize", "encode or decode JSON lines with a tokenizer", TokenizeCommand.Run),
        ("bench", "time load, image encode, prefill and decode", BenchCommand.Run),
        ("explain", "write an HTML/JSON report of what the model looked at for each token", ExplainCommand.Run),
        ("diff", "compare two traces tensor by tensor", DiffCommand.Run),
        ("masks", "decode the masks of a PaliGemma segment answer (vae-oid.npz)", MasksCommand.Run),
        ("serve", "serve a model over HTTP: OpenAI-compatible API, native API and a web page", ServeCommand.Run),
        ("quality", "compare quantized models with the float one: KL divergence, top-1, answers, boxes", QualityCommand.Run),
    ];

    /// <summary>Entry point; returns the process exit code (0 on success, 1 on failure, 2 on a wrong command line).</summary>
    public static int Main(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.Out.WriteLine("usage: purevlm <command> [options]   (purevlm <command> --help for details)\n");
            foreach (var c in Commands) Console.Out.WriteLine($"  {c.Name,-10} {c.Summary}");
            return args.Length == 0 ? 2 : 0;
        }
        var command = Commands.FirstOrDefault(c => c.Name == args[0]);
        if (command.Run == null)
        {
            Console.Error.WriteLine($"purevlm: unknown command '{args[0]}' (expected one of: {string.Join(", ", Commands.Select(c => c.Name))})");
            return 2;
        }
        try
        {
            return command.Run(args[1..]);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"purevlm {args[0]}: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"purevlm {args[0]}: {OneLine(e)}");
            return 1;
        }
    }

    /// <summary>
    /// Runs a command line with stdout and stderr sent to the given writers (for tests and hosts). Console output is
    /// process-wide, so concurrent calls would mix their output.
    /// </summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var (oldOut, oldError) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try { return Main(args); }
        finally { Console.SetOut(oldOut); Console.SetError(oldError); }
    }

    static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ");
}
