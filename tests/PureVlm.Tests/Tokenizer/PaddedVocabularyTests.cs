using PureVlm.Tokenization;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>
/// A model can emit ids past the tokenizer (PaliGemma: 257216 logits, 257152 pieces). HF fast tokenizers skip them
/// when decoding; so do we, without breaking a run of byte pieces.
/// </summary>
public class PaddedVocabularyTests
{
    [Theory]
    [InlineData("spm-tiny")]
    public void Ids_past_the_tokenizer_decode_as_nothing_and_keep_a_byte_run_whole(string set)
    {
        var tok = Loaded(set);
        int pad = tok.VocabSize, lastPad = tok.VocabSize + 63;
        Assert.True(tok.TryGetId("<0xC3>", out int c3));
        Assert.True(tok.TryGetId("<0xA9>", out int a9));
        var ids = tok.Encode("caption en");
        Assert.Equal(tok.Decode(ids), tok.Decode([.. ids, pad, lastPad]));
        Assert.Equal("é", tok.Decode([c3, pad, a9])); // 0xC3 0xA9 is é; the padding id must not flush 0xC3 as U+FFFD

        var stream = tok.CreateStreamingDecoder();
        Assert.Equal("", stream.Push(c3));
        Assert.Equal("", stream.Push(lastPad));
        Assert.Equal("é", stream.Push(a9));
        Assert.Equal("", stream.Flush());
    }

    [Fact]
    public void TryIdToPiece_is_false_outside_the_vocabulary_and_IdToPiece_throws()
    {
        var tok = Loaded("spm-tiny");
        Assert.True(tok.TryIdToPiece(tok.VocabSize - 1, out var piece));
        Assert.Equal(tok.IdToPiece(tok.VocabSize - 1), piece);
        Assert.False(tok.TryIdToPiece(tok.VocabSize, out piece));
        Assert.Null(piece);
        Assert.False(tok.TryIdToPiece(-1, out _));
        Assert.Throws<PureVlm.Prompts.InvalidPromptException>(() => tok.IdToPiece(tok.VocabSize));
    }
}
