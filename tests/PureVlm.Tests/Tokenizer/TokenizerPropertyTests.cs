using System.Diagnostics;
using System.Text;
using FsCheck;
using FsCheck.Xunit;
using PureVlm.Tokenization;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>Round trips and robustness on generated strings, plus the linear-time guarantee.</summary>
public class TokenizerPropertyTests
{
    static readonly string[] Fragments =
    [
        " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "<bos>", "<eos>", "<unk>", "<image>", "<loc0123>", "<loc1024>",
        "<seg042>", "<start_of_turn>", "<end_of_turn>", "<table>", "1234567890", "caption en", "e\u0301", "👨‍👩‍👧", "🇩🇪", "\u0000",
    ];

    /// <summary>A random string mixing ASCII, whitespace runs, special-token text, scripts, astral characters and any scalar value.</summary>
    static string RandomText(int seed, bool withLoneSurrogatesAndSpaceMark)
    {
        var rng = new Random(seed);
        var sb = new StringBuilder();
        int parts = rng.Next(0, 25);
        for (int i = 0; i < parts; i++)
        {
            switch (rng.Next(withLoneSurrogatesAndSpaceMark ? 9 : 8))
            {
                case 0: sb.Append((char)rng.Next(0x20, 0x7F)); break;
                case 1: sb.Append(' ', rng.Next(1, 40)); break;
                case 2: sb.Append(Fragments[rng.Next(Fragments.Length)]); break;
                case 3: sb.Append((char)rng.Next(0xA0, 0x250)); break;
                case 4: sb.Append((char)rng.Next(0x4E00, 0x9FFF)); break;
                case 5: sb.Append(char.ConvertFromUtf32(rng.Next(0x1F300, 0x1FAFF))); break;
                case 6: sb.Append(Rune(rng)); break;
                case 7: sb.Append(rng.Next(10)); break;
                default: sb.Append(rng.Next(3) switch { 0 => '\uD83D', 1 => '\uDC00', _ => '\u2581' }); break;
            }
        }
        return sb.ToString();
    }

    static string Rune(Random rng)
    {
        while (true)
        {
            int v = rng.Next(1, 0x110000);
            if (v is < 0xD800 or > 0xDFFF && v != 0x2581) return char.ConvertFromUtf32(v);
        }
    }

    [Property(MaxTest = 300)]
    public void Tokenizer_spm_tiny_decode_of_encode_is_identity_without_literal_space_mark(int seed)
    {
        var tok = Loaded("spm-tiny");
        string text = RandomText(seed, withLoneSurrogatesAndSpaceMark: false);
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }

    [Property(MaxTest = 300)]
    public void Tokenizer_gemma_json_decode_of_encode_is_identity_without_literal_space_mark(int seed)
    {
        var tok = Loaded("gemma");
        string text = RandomText(seed, withLoneSurrogatesAndSpaceMark: false);
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }

    /// <summary>Added tokens decode as nothing, so they are left out; the dummy prefix must not come back as a space.</summary>
    [Property(MaxTest = 300)]
    public void Tokenizer_llava_decode_of_encode_is_identity_without_added_tokens_or_literal_space_mark(int seed)
    {
        var tok = Loaded("llava");
        string text = RandomText(seed, withLoneSurrogatesAndSpaceMark: false).Replace("<image>", "");
        Assert.Equal(text, tok.Decode(tok.Encode(text)));
    }

    /// <summary>A lone surrogate is encoded as U+FFFD would be, so it decodes to U+FFFD.</summary>
    [Property(MaxTest = 200)]
    public void Tokenizer_encode_never_throws_and_lone_surrogates_become_replacement_characters(int seed)
    {
        string text = RandomText(seed, withLoneSurrogatesAndSpaceMark: true);
        string expected = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text)).Replace('\u2581', ' ');
        foreach (var set in new[] { "spm-tiny", "gemma", "gemma3", "llava" })
        {
            var tok = Loaded(set);
            var ids = tok.Encode(text);
            Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
            if (set == "spm-tiny") Assert.Equal(expected, tok.Decode(ids));
        }
    }

    [Fact]
    public void Tokenizer_lone_surrogate_encodes_like_U_FFFD()
    {
        foreach (var set in new[] { "spm-tiny", "gemma", "llava" })
        {
            var tok = Loaded(set);
            Assert.Equal(tok.Encode("a\uFFFDb\uFFFD"), tok.Encode("a\uD800b\uDC00"));
        }
    }

    [Theory]
    [InlineData("spm-tiny")]
    [InlineData("gemma")]
    [InlineData("llava")]
    public void Tokenizer_encoding_200k_characters_without_spaces_is_not_quadratic(string set)
    {
        var tok = Loaded(set);
        string text = new string('a', 100_000) + string.Concat(Enumerable.Repeat("漢字かな", 25_000));
        tok.Encode(text[..1000]);
        var clock = Stopwatch.StartNew();
        var ids = tok.Encode(text);
        // A quadratic merge loop needs ~10^10 steps here (minutes); the priority queue takes well under a second.
        Assert.True(clock.Elapsed.TotalSeconds < 10, $"took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(text, tok.Decode(ids));
    }
}
