using PureVlm.Tokenization;
using PureVlm.Prompts;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>Every case of tests/data/tokenizer-fixtures, made by SentencePiece and by @lenml/tokenizers, must match exactly.</summary>
public class TokenizerFixtureTests
{
    [Theory]
    [InlineData("spm-tiny", 417)]
    [InlineData("gemma", 442)]
    [InlineData("gemma3", 442)]
    public void Tokenizer_encode_cases_match_reference_ids_pieces_and_decoded_text(string set, int expectedCases)
    {
        var tok = Loaded(set);
        var failures = new List<string>();
        int cases = 0;
        foreach (var c in EncodeCases(set))
        {
            cases++;
            var (ids, pieces) = tok.EncodeWithPieces(c.Text);
            if (!ids.SequenceEqual(c.Ids)) failures.Add($"line {c.Line} {Show(c.Text)}: ids {Show(ids)}, expected {Show(c.Ids)}");
            else if (!pieces.SequenceEqual(c.Pieces)) failures.Add($"line {c.Line} {Show(c.Text)}: pieces differ");
            string decoded = tok.Decode(c.Ids);
            if (decoded != c.Decoded) failures.Add($"line {c.Line} {Show(c.Text)}: decoded {Show(decoded)}, expected {Show(c.Decoded)}");
        }
        Assert.Equal(expectedCases, cases);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {set}:\n" + string.Join("\n", failures.Take(15)));
    }

    [Theory]
    [InlineData("spm-tiny")]
    [InlineData("gemma")]
    [InlineData("gemma3")]
    public void Tokenizer_decode_cases_match_reference_with_and_without_skip_special(string set)
    {
        var tok = Loaded(set);
        var failures = new List<string>();
        int cases = 0;
        foreach (var c in DecodeCases(set))
        {
            cases++;
            string decoded = tok.Decode(c.Ids);
            if (decoded != c.Decoded) failures.Add($"line {c.Line} {Show(c.Ids)}: {Show(decoded)}, expected {Show(c.Decoded)}");
            if (c.DecodedSkipSpecial is { } skip && tok.Decode(c.Ids, skipSpecial: true) is var skipped && skipped != skip)
                failures.Add($"line {c.Line} {Show(c.Ids)} skip_special: {Show(skipped)}, expected {Show(skip)}");
        }
        Assert.Equal(34, cases);
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches in {set}:\n" + string.Join("\n", failures));
    }

    [Theory]
    [InlineData("spm-tiny")]
    [InlineData("gemma")]
    public void Tokenizer_streaming_decoder_concatenation_equals_decode_and_never_splits_a_character(string set)
    {
        var tok = Loaded(set);
        var all = EncodeCases(set).Select(c => c.Ids).Concat(DecodeCases(set).Select(c => c.Ids));
        foreach (var ids in all)
        {
            var stream = tok.CreateStreamingDecoder();
            var chunks = ids.Select(stream.Push).ToList();
            chunks.Add(stream.Flush());
            Assert.Equal(tok.Decode(ids), string.Concat(chunks));
            foreach (var chunk in chunks)
                Assert.False(chunk.Length > 0 && (char.IsHighSurrogate(chunk[^1]) || char.IsLowSurrogate(chunk[0])), $"chunk {Show(chunk)} splits a surrogate pair");
        }
    }

    [Theory]
    [InlineData("spm-tiny")]
    [InlineData("gemma")]
    public void Tokenizer_streaming_decoder_holds_bytes_of_an_unfinished_character(string set)
    {
        var tok = Loaded(set);
        int Byte(int b) { Assert.True(tok.TryGetId($"<0x{b:X2}>", out int id)); return id; }
        var stream = tok.CreateStreamingDecoder();
        Assert.Equal("", stream.Push(Byte(0xF0)));
        Assert.Equal("", stream.Push(Byte(0x9F)));
        Assert.Equal("", stream.Push(Byte(0x8D)));
        Assert.Equal("🍕", stream.Push(Byte(0x95)));
        Assert.Equal("", stream.Push(Byte(0xC3)));
        Assert.Equal("\uFFFD", stream.Flush());
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void Tokenizer_paligemma_prompt_matches_demo_model_prompt_ids_for_all_24_samples()
    {
        var tok = SentencePieceTokenizer.Load(Path.Combine(TestPaths.DemoModel, "tokenizer.model"));
        Assert.True(tok.TryGetId("<image>", out int image));
        Assert.Equal(4, image);
        var lines = File.ReadLines(Path.Combine(TestPaths.DemoModel, "samples", "expected.jsonl")).ToList();
        Assert.Equal(24, lines.Count);
        foreach (var line in lines)
        {
            var e = System.Text.Json.JsonDocument.Parse(line).RootElement;
            var expected = e.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var ids = PaliGemmaPrompt.Build(tok, e.GetProperty("prompt").GetString()!, 64, image);
            Assert.Equal(Enumerable.Repeat(image, 64), ids.Take(64));
            Assert.Equal(expected, ids.Skip(64));
        }
    }

    [Fact]
    public void Tokenizer_paligemma_prompt_puts_bos_by_id_and_newline_108_with_gemma_json()
    {
        var tok = Loaded("gemma");
        var ids = PaliGemmaPrompt.Build(tok, "caption en", 3, 0);
        Assert.Equal([0, 0, 0, 2], ids[..4]);
        Assert.Equal(108, ids[^1]);
        Assert.Equal("caption en\n", tok.Decode(ids.AsSpan(4)));
    }

    [Fact]
    public void Tokenizer_special_ids_come_from_each_file()
    {
        foreach (var set in new[] { "spm-tiny", "gemma", "gemma3" })
        {
            var tok = Loaded(set);
            Assert.Equal((0, 1, 2, 3), (tok.PadId, tok.EosId, tok.BosId, tok.UnkId));
            Assert.True(tok.IsControl(tok.BosId));
            Assert.False(tok.IsControl(tok.Encode("a")[0]));
        }
        Assert.Equal(3000, Loaded("spm-tiny").VocabSize);
        Assert.Equal(256000, Loaded("gemma").VocabSize);
        Assert.Equal(262145, Loaded("gemma3").VocabSize);
    }
}
