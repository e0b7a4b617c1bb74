using PureVlm.Tests.Models;
using PureVlm.Tokenization;
using Xunit;
using static PureVlm.Tests.Tokenizer.TokenizerFixtureData;

namespace PureVlm.Tests.Tokenizer;

/// <summary>
/// LLaMA's SentencePiece configuration (add_dummy_prefix, added_tokens.json) with the llava-tiny fixture; expected ids
/// and pieces are those of tests/data/fixtures/llava-tiny/README.md, "Inputs and the prefill sequence".
/// </summary>
public sealed class LlamaTokenizerTests : IDisposable
{
    const string Question = "\nWhat is in the picture? ASSISTANT:";

    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-llama-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Llava_prompt_with_bos_encodes_to_the_golden_input_ids()
    {
        var tok = Loaded("llava");
        string prompt = "USER: " + string.Concat(Enumerable.Repeat("<image>", 16)) + Question;
        using var golden = new GoldenFixture("llava-tiny", "golden.safetensors");
        int[] ids = [tok.BosId, .. tok.Encode(prompt)];
        Assert.Equal(golden.Ints("input_ids"), ids);
    }

    [Theory]
    [InlineData("USER: ", "▁ US ER : ▁", "310 303 300 333 310")]
    [InlineData("<image>", "<image>", "352")]
    [InlineData("<image><image>", "<image> <image>", "352 352")]
    [InlineData(Question, "▁ <0x0A> W h at ▁is ▁i n ▁the ▁picture ? ▁A SS IST ANT :", "310 13 344 317 278 270 264 319 263 288 338 290 302 307 306 333")]
    [InlineData("<image>" + Question, "<image> ▁ <0x0A> W h at ▁is ▁i n ▁the ▁picture ? ▁A SS IST ANT :", "352 310 13 344 317 278 270 264 319 263 288 338 290 302 307 306 333")]
    public void Every_chunk_between_added_tokens_gets_the_dummy_prefix(string text, string pieces, string ids)
    {
        var (gotIds, gotPieces) = Loaded("llava").EncodeWithPieces(text);
        Assert.Equal(pieces.Split(' '), gotPieces);
        Assert.Equal(ids.Split(' ').Select(int.Parse), gotIds);
    }

    [Fact]
    public void Special_ids_come_from_the_model_and_added_tokens_extend_the_vocabulary()
    {
        var tok = Loaded("llava");
        Assert.Equal((1, 2, 0), (tok.BosId, tok.EosId, tok.UnkId));
        Assert.Equal(("<s>", "</s>"), (tok.IdToPiece(tok.BosId), tok.IdToPiece(tok.EosId)));
        Assert.Equal(354, tok.VocabSize);
        Assert.True(tok.TryGetId("<image>", out int image));
        Assert.True(tok.TryGetId("<pad>", out int pad));
        Assert.Equal((352, 353), (image, pad));
        Assert.Equal(("<image>", "<pad>"), (tok.IdToPiece(352), tok.IdToPiece(353)));
        Assert.True(tok.IsControl(352) && tok.IsControl(353));
        Assert.Equal(PieceKind.Control, tok.KindOf(352));
        Assert.False(tok.TryIdToPiece(354, out _));
    }

    [Theory]
    [InlineData("What is in the picture?")]
    [InlineData("USER: ")]
    [InlineData(Question)]
    [InlineData(" leading space and  two spaces ")]
    [InlineData("héllo wörld 🍕\ttab")]
    public void Decode_gives_the_text_back_without_the_dummy_prefix(string text)
    {
        var tok = Loaded("llava");
        var ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Equal(text, tok.Decode([tok.BosId, .. ids]));
        var stream = tok.CreateStreamingDecoder();
        Assert.Equal(text, string.Concat(ids.Select(stream.Push)) + stream.Flush());
    }

    [Fact]
    public void Added_tokens_decode_as_nothing_like_control_pieces()
    {
        var tok = Loaded("llava");
        Assert.Equal("", tok.Decode([352, 353]));
        // Only the first visible piece loses its "▁": the one after <image> keeps it, as SentencePiece decodes.
        Assert.Equal("USER:  \nWhat is in the picture? ASSISTANT:", tok.Decode(tok.Encode("USER: <image>" + Question)));
        Assert.Equal("\n", tok.Decode([1, 352, 310, 13]));
    }

    [Fact]
    public void Without_added_tokens_json_the_model_alone_is_loaded()
    {
        string model = CopyModel();
        var tok = SentencePieceTokenizer.Load(model);
        Assert.Equal(352, tok.VocabSize);
        Assert.False(tok.TryGetId("<image>", out _));
        Assert.DoesNotContain(352, tok.Encode("<image>"));
    }

    [Theory]
    [InlineData("""{"<image>": 352, "<pad>": 355}""", "token \"<pad>\" has id 355, expected 353")]
    [InlineData("""{"<image>": 353}""", "token \"<image>\" has id 353, expected 352")]
    [InlineData("""{"<image>": 352, "<pad>": 352}""", "tokens \"<image>\" and \"<pad>\" both have id 352")]
    [InlineData("""{"<image>": 7}""", "token \"<image>\" has id 7, which is \"<0x04>\" in tokenizer.model; expected ids from 352 on")]
    [InlineData("""{"<s>": 352}""", "token \"<s>\" is already piece 1 of tokenizer.model")]
    [InlineData("""{"<image>": 352, "<image>": 353}""", "token \"<image>\" appears twice")]
    [InlineData("""{"<image>": "352"}""", "token \"<image>\" has \"352\", expected a non-negative integer id")]
    [InlineData("""{"<image>": -1}""", "token \"<image>\" has -1, expected a non-negative integer id")]
    [InlineData("""{"": 352}""", "token \"\" is empty")]
    [InlineData("""[352]""", "the top level is a Array, expected an object")]
    [InlineData("""{"<image>": 352""", "invalid JSON")]
    public void Inconsistent_added_tokens_json_is_rejected_naming_the_file_token_and_ids(string json, string problem)
    {
        string model = CopyModel();
        string added = Path.Combine(_dir, "added_tokens.json");
        File.WriteAllText(added, json);
        var e = Assert.Throws<InvalidTokenizerException>(() => SentencePieceTokenizer.Load(model));
        Assert.StartsWith(added + ":", e.Message);
        Assert.Contains(problem, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    // Appended NormalizerSpec messages (field 3), which protobuf merges into the first: remove_extra_whitespaces (field 4) = 1;
    // precompiled_charsmap (field 2) = two bytes.
    [InlineData(new byte[] { 0x1A, 0x02, 0x20, 0x01 }, "remove_extra_whitespaces True")]
    [InlineData(new byte[] { 0x1A, 0x04, 0x12, 0x02, 0xAB, 0xCD }, "precompiled_charsmap 2 bytes")]
    public void Normalizers_other_than_identity_without_whitespace_removal_are_still_rejected(byte[] normalizer, string problem)
    {
        string model = CopyModel();
        using (var f = new FileStream(model, FileMode.Append)) f.Write(normalizer);
        var e = Assert.Throws<InvalidTokenizerException>(() => SentencePieceTokenizer.Load(model));
        Assert.StartsWith(model + ":", e.Message);
        Assert.Contains(problem, e.Message);
    }

    string CopyModel()
    {
        string model = Path.Combine(_dir, "tokenizer.model");
        File.Copy(LlavaModelFile, model);
        return model;
    }
}
