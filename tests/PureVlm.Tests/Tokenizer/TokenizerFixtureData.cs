using System.Text.Json;
using PureVlm.Tokenization;

namespace PureVlm.Tests.Tokenizer;

/// <summary>
/// The tokenizers and cases of tests/data/tokenizer-fixtures, loaded once per test run, plus "llava": LLaMA's
/// configuration, the llava-tiny fixture's tokenizer.model with its added_tokens.json.
/// </summary>
static class TokenizerFixtureData
{
    public sealed record EncodeCase(int Line, string Text, int[] Ids, string[] Pieces, string Decoded);
    public sealed record DecodeCase(int Line, int[] Ids, string Decoded, string? DecodedSkipSpecial);

    public static readonly string LlavaModelFile = Path.Combine(TestPaths.Fixture("llava-tiny"), "tokenizer.model");

    static readonly Lazy<SentencePieceTokenizer> SpmTiny = new(() => SentencePieceTokenizer.Load(TokenizerFile("spm-tiny")));
    static readonly Lazy<SentencePieceTokenizer> Gemma = new(() => SentencePieceTokenizer.Load(TokenizerFile("gemma")));
    static readonly Lazy<SentencePieceTokenizer> Gemma3 = new(() => SentencePieceTokenizer.Load(TokenizerFile("gemma3")));
    static readonly Lazy<SentencePieceTokenizer> Llava = new(() => SentencePieceTokenizer.Load(LlavaModelFile));

    public static string TokenizerFile(string set) =>
        Path.Combine(TestPaths.TokenizerFixture(set), set == "spm-tiny" ? "tokenizer.model" : "tokenizer.json.gz");

    public static SentencePieceTokenizer Loaded(string set) => set switch
    {
        "spm-tiny" => SpmTiny.Value,
        "gemma" => Gemma.Value,
        "gemma3" => Gemma3.Value,
        "llava" => Llava.Value,
        _ => throw new ArgumentException(set),
    };

    public static IEnumerable<EncodeCase> EncodeCases(string set) =>
        File.ReadLines(Path.Combine(TestPaths.TokenizerFixture(set), "cases.jsonl")).Select((line, i) =>
        {
            var e = JsonDocument.Parse(line).RootElement;
            return new EncodeCase(i + 1, e.GetProperty("text").GetString()!, Ints(e.GetProperty("ids")),
                e.GetProperty("pieces").EnumerateArray().Select(p => p.GetString()!).ToArray(), e.GetProperty("decoded").GetString()!);
        });

    public static IEnumerable<DecodeCase> DecodeCases(string set) =>
        File.ReadLines(Path.Combine(TestPaths.TokenizerFixture(set), "decode_cases.jsonl")).Select((line, i) =>
        {
            var e = JsonDocument.Parse(line).RootElement;
            return new DecodeCase(i + 1, Ints(e.GetProperty("ids")), e.GetProperty("decoded").GetString()!,
                e.TryGetProperty("decoded_skip_special", out var s) ? s.GetString() : null);
        });

    static int[] Ints(JsonElement array) => array.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    public static string Show(string s) => JsonSerializer.Serialize(s.Length > 80 ? s[..80] + "…" : s);
    public static string Show(IEnumerable<int> ids) => "[" + string.Join(",", ids.Take(20)) + "]";
}
