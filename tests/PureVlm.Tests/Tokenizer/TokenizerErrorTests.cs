using System.IO.Compression;
using System.Text;
using FsCheck;
using FsCheck.Xunit;
using PureVlm.Tokenization;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>Corrupt, truncated and unsupported tokenizer files fail with <see cref="InvalidTokenizerException"/> naming the file.</summary>
public sealed class TokenizerErrorTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    static InvalidTokenizerException LoadFails(string path, string problem)
    {
        var e = Assert.Throws<InvalidTokenizerException>(() => SentencePieceTokenizer.Load(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(problem, e.Message);
        return e;
    }

    [Fact]
    public void Tokenizer_missing_file_names_the_path() => LoadFails(Path.Combine(_dir, "nope.model"), "cannot read");

    [Fact]
    public void Tokenizer_truncated_model_names_the_file_and_the_problem()
    {
        var bytes = File.ReadAllBytes(TokenizerFile("spm-tiny"));
        LoadFails(Write("cut.model", bytes[..(bytes.Length / 2 + 3)]), "corrupt SentencePiece model");
    }

    [Fact]
    public void Tokenizer_non_protobuf_bytes_are_rejected() => LoadFails(Write("junk.model", Encoding.ASCII.GetBytes("not a tokenizer at all")), "");

    [Fact]
    public void Tokenizer_truncated_json_gz_names_the_file()
    {
        var bytes = File.ReadAllBytes(TokenizerFile("gemma3"));
        LoadFails(Write("cut.json.gz", bytes[..(bytes.Length / 3)]), "");
    }

    [Fact]
    public void Tokenizer_truncated_json_names_the_file()
    {
        string json = """{"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0, "b": 1""";
        LoadFails(Write("cut.json", Encoding.UTF8.GetBytes(json)), "invalid tokenizer JSON");
    }

    [Theory]
    [InlineData("""{"model": {"type": "Unigram", "vocab": {}}}""", "only \"BPE\"")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "normalizer": {"type": "NFKC"}}""", "normalizer")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}""", "decoder")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, DECODER}""", "merge #0")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a  b"]}, DECODER}""", "merge #0")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []}, DECODER}""", "ids go up to 5")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "added_tokens": [{"id": 2, "content": "a"}], DECODER}""", "is id 0 in the vocab")]
    public void Tokenizer_unsupported_or_inconsistent_json_is_rejected_with_the_reason(string json, string problem)
    {
        const string gemmaDecoder = """
            "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
                                                          {"type": "ByteFallback"}, {"type": "Fuse"}]}
            """;
        LoadFails(Write("bad.json", Encoding.UTF8.GetBytes(json.Replace("DECODER", gemmaDecoder))), problem);
    }

    [Property(MaxTest = 60)]
    public void Tokenizer_damaged_model_loads_or_throws_InvalidTokenizerException(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        var bytes = File.ReadAllBytes(TokenizerFile("spm-tiny"));
        for (int i = rng.Next(1, 4); i > 0; i--) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
        if (rng.Next(4) == 0) bytes = bytes[..rng.Next(bytes.Length)];
        string path = Write($"damaged-{seed.Get}.model", bytes);
        try
        {
            var tok = SentencePieceTokenizer.Load(path);
            tok.Decode(tok.Encode("caption en <loc0001> 🍕 äöü"));
        }
        catch (InvalidTokenizerException e)
        {
            Assert.StartsWith(path + ":", e.Message);
        }
    }

    [Fact]
    public void Tokenizer_negative_id_in_decode_is_an_argument_error()
    {
        var tok = Loaded("spm-tiny");
        Assert.Throws<PureVlm.Prompts.InvalidPromptException>(() => tok.Decode([5, -1]));
        Assert.Throws<PureVlm.Prompts.InvalidPromptException>(() => tok.CreateStreamingDecoder().Push(-1));
    }
}
