using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using PureVlm.Tokenization;

namespace PureVlm.Benchmarks;

/// <summary>Loading the Gemma 1/2 tokenizer.json.gz (256k pieces, 580k merges) and encoding 100 KB of mixed text.</summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    string _fixtures = "";
    SentencePieceTokenizer _gemma = null!, _spmTiny = null!;
    string _text = "";

    [GlobalSetup]
    public void Setup()
    {
        _fixtures = Path.Combine(RepoRoot(), "tests", "data", "tokenizer-fixtures");
        _gemma = SentencePieceTokenizer.Load(Path.Combine(_fixtures, "gemma", "tokenizer.json.gz"));
        _spmTiny = SentencePieceTokenizer.Load(Path.Combine(_fixtures, "spm-tiny", "tokenizer.model"));
        // 100 KB cut from the fixture strings: many scripts, code, emoji, whitespace runs, special-token text.
        var text = new StringBuilder();
        var cases = File.ReadLines(Path.Combine(_fixtures, "gemma", "cases.jsonl"))
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!).ToList();
        for (int i = 0; text.Length < 100_000; i++) text.Append(cases[i % cases.Count]);
        _text = text.ToString(0, 100_000);
    }

    [Benchmark]
    public SentencePieceTokenizer Load_gemma_tokenizer_json_gz() => SentencePieceTokenizer.Load(Path.Combine(_fixtures, "gemma", "tokenizer.json.gz"));

    [Benchmark]
    public int[] Encode_100KB_gemma_json() => _gemma.Encode(_text);

    [Benchmark]
    public int[] Encode_100KB_spm_tiny_model() => _spmTiny.Encode(_text);

    internal static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PureVlm.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("PureVlm.sln not found above " + AppContext.BaseDirectory);
    }
}
