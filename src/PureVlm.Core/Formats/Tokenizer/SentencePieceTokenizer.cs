using System.Text;

namespace PureVlm.Tokenization;

/// <summary>Which file a <see cref="SentencePieceTokenizer"/> was loaded from; encoding and decoding follow that format's rules.</summary>
public enum TokenizerFormat
{
    /// <summary>A SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>, BPE).</summary>
    SentencePiece,
    /// <summary>A Hugging Face <c>tokenizer.json</c> (BPE), plain or gzipped.</summary>
    HuggingFaceJson,
}

/// <summary>
/// The Gemma / PaliGemma tokenizer, loaded from either a SentencePiece <c>tokenizer.model</c> or a Hugging Face
/// <c>tokenizer.json</c>(<c>.gz</c>). Encoding: spaces become "▁" (no dummy prefix, runs kept); tokens that
/// must stay whole are cut out first, leftmost-longest (SentencePiece USER_DEFINED pieces in the normalized
/// text; tokenizer.json <c>added_tokens</c>, special or not, in the raw text); each stretch in between is BPE
/// (by piece score for .model, by merge rank for .json); characters without a piece become
/// <c>&lt;0xNN&gt;</c> byte pieces. Never adds bos/eos. A lone UTF-16 surrogate is encoded as U+FFFD (as a
/// UTF-8 encoder would replace it). Instances are immutable and thread-safe.
/// </summary>
public sealed class SentencePieceTokenizer
{
    const char SpaceMark = '\u2581';

    readonly Vocabulary _vocab;
    readonly TokenTrie _cutTokens;
    readonly Bpe _bpe;
    readonly bool _escapeSpaces;
    readonly bool[] _special;
    readonly string _unkSurface;

    /// <summary>The format the tokenizer was loaded from.</summary>
    public TokenizerFormat Format { get; }
    /// <summary>Number of ids (0 .. VocabSize-1).</summary>
    public int VocabSize => _vocab.Pieces.Length;
    /// <summary>Id of <c>&lt;bos&gt;</c>, or -1.</summary>
    public int BosId { get; }
    /// <summary>Id of <c>&lt;eos&gt;</c>, or -1.</summary>
    public int EosId { get; }
    /// <summary>Id of <c>&lt;pad&gt;</c>, or -1.</summary>
    public int PadId { get; }
    /// <summary>Id of <c>&lt;unk&gt;</c>, or -1.</summary>
    public int UnkId { get; }

    SentencePieceTokenizer(TokenizerFormat format, Vocabulary vocab, TokenTrie cutTokens, Bpe bpe, bool escapeSpaces, bool[] special,
        string unkSurface, int bos, int eos, int pad, int unk)
    {
        (Format, _vocab, _cutTokens, _bpe, _escapeSpaces, _special, _unkSurface) = (format, vocab, cutTokens, bpe, escapeSpaces, special, unkSurface);
        (BosId, EosId, PadId, UnkId) = (bos, eos, pad, unk);
    }

    /// <summary>
    /// Loads <c>tokenizer.model</c>, <c>tokenizer.json</c> or <c>tokenizer.json.gz</c>; the format is told from the
    /// content (gzip magic, a leading <c>{</c>, else protobuf). Throws <see cref="InvalidTokenizerException"/>
    /// naming the file for a corrupt, truncated or unsupported file.
    /// </summary>
    public static SentencePieceTokenizer Load(string path)
    {
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidTokenizerException($"{path}: cannot read tokenizer: {e.Message}", e);
        }
        if (HfTokenizerJsonReader.IsGzip(data)) return FromJson(HfTokenizerJsonReader.Gunzip(data, path), path);
        int first = Array.FindIndex(data, b => b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'));
        if (first >= 0 && (data[first] == (byte)'{' || (data[first] == 0xEF && data.Length > first + 3 && data[first + 3] == (byte)'{')))
            return FromJson(data, path);
        return FromSentencePiece(data, path);
    }

    static SentencePieceTokenizer FromSentencePiece(byte[] data, string file)
    {
        var m = SentencePieceModelReader.Read(data, file);
        var vocab = new Vocabulary(m.Pieces, m.Kinds, file);
        var trie = new TokenTrie();
        for (int id = 0; id < m.Pieces.Length; id++)
            if (m.Kinds[id] == PieceKind.UserDefined) trie.Add(m.Pieces[id], id);
        int CheckId(int id, string name, PieceKind kind)
        {
            if (id < 0) return -1;
            if (id >= m.Pieces.Length || m.Kinds[id] != kind)
                throw new InvalidTokenizerException($"{file}: trainer_spec.{name} is {id}, which is not a {kind} piece");
            return id;
        }
        int unk = CheckId(m.UnkId, "unk_id", PieceKind.Unknown);
        var special = Array.ConvertAll(m.Kinds, k => k == PieceKind.Control);
        return new SentencePieceTokenizer(TokenizerFormat.SentencePiece, vocab, trie, new ScoreBpe(vocab, m.Scores, m.ByteFallback, unk),
            m.EscapeWhitespaces, special, m.UnkSurface,
            CheckId(m.BosId, "bos_id", PieceKind.Control), CheckId(m.EosId, "eos_id", PieceKind.Control), CheckId(m.PadId, "pad_id", PieceKind.Control), unk);
    }

    static SentencePieceTokenizer FromJson(byte[] json, string file)
    {
        var m = HfTokenizerJsonReader.Read(json, file);
        var vocab = new Vocabulary(m.Pieces, m.Kinds, file, m.PieceToId);
        var trie = new TokenTrie();
        var special = new bool[m.Pieces.Length];
        foreach (var t in m.AddedTokens)
        {
            trie.Add(t.Content, t.Id);
            special[t.Id] = t.Special;
        }
        int IdOf(string piece) => vocab.PieceToId.TryGetValue(piece, out int id) ? id : -1;
        return new SentencePieceTokenizer(TokenizerFormat.HuggingFaceJson, vocab, trie, new RankBpe(vocab, m.Merges, m.ByteFallback, m.UnkId, m.FuseUnk),
            m.EscapeSpaces, special, m.UnkId >= 0 ? m.Pieces[m.UnkId] : "", IdOf("<bos>"), IdOf("<eos>"), IdOf("<pad>"), m.UnkId);
    }

    /// <summary>Token ids of <paramref name="text"/>, without bos/eos.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        EncodeInto(text, ids);
        return ids.ToArray();
    }

    /// <summary>Token ids of <paramref name="text"/> and their pieces (spaces as "▁", bytes as <c>&lt;0xNN&gt;</c>).</summary>
    public (int[] Ids, string[] Pieces) EncodeWithPieces(string text)
    {
        var ids = Encode(text);
        return (ids, Array.ConvertAll(ids, IdToPiece));
    }

    void EncodeInto(string text, List<int> ids)
    {
        // raw, normalized: [n]; normalization maps one UTF-16 unit to one, so offsets agree.
        char[] raw = ReplaceLoneSurrogates(text);
        char[] normalized = _escapeSpaces ? Array.ConvertAll(raw, c => c == ' ' ? SpaceMark : c) : raw;
        // SentencePiece matches user-defined pieces after normalization, tokenizer.json added tokens before it.
        char[] matched = Format == TokenizerFormat.SentencePiece ? normalized : raw;
        var work = new Bpe.Workspace();
        int stretch = 0;
        for (int i = 0; i < matched.Length;)
        {
            var (length, id) = _cutTokens.LongestMatch(matched.AsSpan(i));
            if (length == 0) { i++; continue; }
            if (i > stretch) _bpe.Encode(normalized.AsSpan(stretch, i - stretch), ids, work);
            ids.Add(id);
            i += length;
            stretch = i;
        }
        if (matched.Length > stretch) _bpe.Encode(normalized.AsSpan(stretch), ids, work);
    }

    static char[] ReplaceLoneSurrogates(string text)
    {
        var chars = text.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (!char.IsSurrogate(chars[i])) continue;
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) i++;
            else chars[i] = '\uFFFD';
        }
        return chars;
    }

    /// <summary>
    /// Text of <paramref name="ids"/>. SentencePiece rules for a .model: control ids give "", unk gives " ⁇ ",
    /// invalid UTF-8 from byte pieces gives one U+FFFD per byte. tokenizer.json rules: every id gives its token
    /// text (special ones dropped if <paramref name="skipSpecial"/>), invalid UTF-8 gives one U+FFFD per maximal
    /// invalid subsequence. Both: "▁" becomes a space, runs of byte pieces are decoded together, ids ≥ <see cref="VocabSize"/>
    /// (the model's padded vocabulary can be larger) give "" as in HF fast tokenizers; a negative id throws.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecial = false)
    {
        var decoder = CreateStreamingDecoder(skipSpecial);
        var text = new StringBuilder();
        foreach (int id in ids) decoder.Append(id, text);
        decoder.Finish(text);
        return text.ToString();
    }

    /// <summary>A decoder for streaming that returns text as soon as it is complete, never half a character.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecial = false) => new(this, skipSpecial);

    /// <summary>The piece of <paramref name="id"/> as stored ("▁" for spaces, <c>&lt;0xNN&gt;</c> for bytes); throws outside 0..VocabSize-1.</summary>
    public string IdToPiece(int id) => _vocab.Pieces[CheckId(id)];

    /// <summary>
    /// The piece of <paramref name="id"/>, or false for an id the tokenizer has no piece for (negative, or in the
    /// model's padding past <see cref="VocabSize"/>, which a sampler can still pick).
    /// </summary>
    public bool TryIdToPiece(int id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? piece)
    {
        piece = (uint)id < (uint)_vocab.Pieces.Length ? _vocab.Pieces[id] : null;
        return piece != null;
    }

    /// <summary>The id of a piece spelled exactly <paramref name="piece"/>.</summary>
    public bool TryGetId(string piece, out int id) => _vocab.PieceToId.TryGetValue(piece, out id);

    /// <summary>Whether <paramref name="id"/> is a control piece (.model) or a special added token (.json), e.g. <c>&lt;bos&gt;</c>.</summary>
    public bool IsControl(int id) => _special[CheckId(id)];

    /// <summary>The kind of <paramref name="id"/> (byte, user-defined, control, …).</summary>
    public PieceKind KindOf(int id) => _vocab.Kinds[CheckId(id)];

    int CheckId(int id) => (uint)id < (uint)_vocab.Pieces.Length ? id
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is outside the vocabulary (0..{_vocab.Pieces.Length - 1})");

    /// <summary>Byte value of a byte piece, or -1 (used by <see cref="StreamingDecoder"/>).</summary>
    internal int ByteOf(int id) => _vocab.ByteValue[CheckId(id)];

    /// <summary>Text of a non-byte piece, or null if it is skipped without ending a run of byte pieces.</summary>
    internal string? SurfaceOf(int id, bool skipSpecial)
    {
        if (Format == TokenizerFormat.SentencePiece)
            return _vocab.Kinds[id] switch
            {
                PieceKind.Control => "",
                PieceKind.Unknown => _unkSurface,
                _ => _vocab.Pieces[id].Replace(SpaceMark, ' '),
            };
        return skipSpecial && _special[id] ? null : _vocab.Pieces[id].Replace(SpaceMark, ' ');
    }
}
