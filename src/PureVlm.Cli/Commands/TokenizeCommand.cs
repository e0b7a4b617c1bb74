using System.Text.Json;
using PureVlm.Tokenization;

namespace PureVlm.Cli.Commands;

/// <summary>
/// <c>purevlm tokenize --tokenizer FILE [--decode] [--add-bos]</c>: JSON lines in on stdin, JSON lines out.
/// Encoding reads <c>{"text": …}</c> and writes <c>{"ids": […], "pieces": […]}</c>; decoding reads
/// <c>{"ids": […]}</c> and writes <c>{"text": …}</c>.
/// </summary>
public static class TokenizeCommand
{
    const string Usage =
        "usage: purevlm tokenize --tokenizer FILE [--decode] [--add-bos]\n" +
        "  Reads JSON lines on stdin and writes one JSON line per input line on stdout.\n" +
        "  encode (default): {\"text\": \"...\"}  ->  {\"ids\": [...], \"pieces\": [...]}\n" +
        "  --decode:         {\"ids\": [...]}    ->  {\"text\": \"...\"}\n" +
        "  --tokenizer FILE  tokenizer.model (SentencePiece), tokenizer.json or tokenizer.json.gz\n" +
        "  --add-bos         put <bos> before the ids when encoding (by default no bos/eos is added)\n" +
        "  Exit codes: 0 ok, 1 bad input or tokenizer file, 2 bad usage.";


    /// <summary>Runs on the process's stdin/stdout/stderr; returns the exit code.</summary>
    public static int Run(string[] args) => Run(args, Console.In, Console.Out, Console.Error);

    /// <summary>Runs on the given streams; returns 0, 1 (bad input or tokenizer file) or 2 (bad usage).</summary>
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        string? path = null;
        bool decode = false, addBos = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-h" or "--help": stdout.WriteLine(Usage); return 0;
                case "--decode": decode = true; break;
                case "--add-bos": addBos = true; break;
                case "--tokenizer" when i + 1 < args.Length: path = args[++i]; break;
                default: return UsageError(stderr, $"unexpected argument '{args[i]}'");
            }
        }
        if (path == null) return UsageError(stderr, "--tokenizer FILE is required");
        if (decode && addBos) return UsageError(stderr, "--add-bos applies to encoding only");

        SentencePieceTokenizer tokenizer;
        try { tokenizer = SentencePieceTokenizer.Load(path); }
        catch (InvalidTokenizerException e) { return Fail(stderr, e.Message); }
        if (addBos && tokenizer.BosId < 0) return Fail(stderr, $"{path}: --add-bos given but the tokenizer has no <bos>");

        int lineNumber = 0;
        for (string? line; (line = stdin.ReadLine()) != null;)
        {
            lineNumber++;
            string result;
            try { result = decode ? DecodeLine(tokenizer, line) : EncodeLine(tokenizer, line, addBos); }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or ArgumentException or PureVlmException)
            {
                return Fail(stderr, $"line {lineNumber}: {e.Message.ReplaceLineEndings(" ")}");
            }
            stdout.WriteLine(result);
        }
        stdout.Flush();
        return 0;
    }

    static string EncodeLine(SentencePieceTokenizer tokenizer, string line, bool addBos)
    {
        var text = Field(line, "text", JsonValueKind.String).GetString()!;
        var (ids, pieces) = tokenizer.EncodeWithPieces(text);
        if (addBos)
        {
            ids = [tokenizer.BosId, .. ids];
            pieces = [tokenizer.IdToPiece(tokenizer.BosId), .. pieces];
        }
        return JsonSerializer.Serialize(new { ids, pieces }, CliJson.Options);
    }

    static string DecodeLine(SentencePieceTokenizer tokenizer, string line)
    {
        var ids = Field(line, "ids", JsonValueKind.Array).EnumerateArray()
            .Select(e => e.TryGetInt32(out int id) ? id : throw new FormatException($"\"ids\" holds {e.GetRawText()}, expected integers")).ToArray();
        return JsonSerializer.Serialize(new { text = tokenizer.Decode(ids) }, CliJson.Options);
    }

    static JsonElement Field(string line, string name, JsonValueKind kind)
    {
        using var doc = JsonDocument.Parse(line);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(name, out var value) || value.ValueKind != kind)
            throw new FormatException($"expected a JSON object with \"{name}\" ({kind.ToString().ToLowerInvariant()})");
        return value.Clone();
    }

    static int UsageError(TextWriter stderr, string message)
    {
        stderr.WriteLine($"purevlm tokenize: {message} (see --help)");
        return 2;
    }

    static int Fail(TextWriter stderr, string message)
    {
        stderr.WriteLine($"purevlm tokenize: {message}");
        return 1;
    }
}
