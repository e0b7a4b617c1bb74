using System.Text;

namespace PureVlm.Tokenization;

/// <summary>Which file a <see cref="SentencePieceTokenizer"/> was loaded from; encoding and decoding follow that format's rules.</summary>
public enum TokenizerFormat
{
    /// <summary>A SentencePiece <c>tokenizer.model</c> (protobuf <c>ModelProto</c>, BPE), with the <c>added_tokens.json</c> beside it if there is one.</summary>
    SentencePiece,
    /// <summary>A Hugging Face <c>tokenizer.json</c> (BPE), plain or gzipped.</summary>
    HuggingFaceJson,
}

/// <summary>
/// A SentencePiece-style BPE tokenizer: Gemma / PaliGemma (<c>tokenizer.model</c> or Hugging Face
/// <c>tokenizer.json</c>(<c>.gz</c>)) and LLaMA / LLaVA-1.5 (<c>tokenizer.model</c> plus <c>added_tokens.json</c>) are
/// configurations of it. Encoding, as Hugging Face's tokenizers do it: added tokens (tokenizer.json <c>added_tokens</c>,
/// special or not, or the entries of added_tokens.json) are cut out of the raw text first, leftmost-longest; each
/// chunk in between is normalized on its own: spaces become "▁" (runs kept) and, if the .model says
/// <c>add_dummy_prefix</c> (LLaMA; not Gemma), a "▁" is put in front, so every chunk after an added token starts with
/// one. SentencePiece USER_DEFINED pieces are then cut out of the normalized chunk, and each stretch left is BPE (by
/// piece score for .model, by merge rank for .json); characters without a piece become <c>&lt;0xNN&gt;</c> byte pieces.
/// Never adds bos/eos. A lone UTF-16 surrogate is encoded as U+FFFD (as a UTF-8 encoder would replace it). Instances
/// are immutable and thread-safe.
/// </summary>
public sealed class SentencePieceTokenizer
{
    const char SpaceMark = '\u2581';

    readonly Vocabulary _vocab;
    readonly TokenTrie _addedTokens;
    readonly TokenTrie _userDefined;
    readonly Bpe _bpe;
    readonly bool _escapeSpaces;
    readonly bool _dummyPrefix;
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

    SentencePieceTokenizer(TokenizerFormat format, Vocabulary vocab, TokenTrie addedTokens, TokenTrie userDefined, Bpe bpe,
        bool escapeSpaces, bool dummyPrefix, bool[] special, string unkSurface, int bos, int eos, int pad, int unk)
    {
        (Format, _vocab, _addedTokens, _userDefined, _bpe) = (format, vocab, addedTokens, userDefined, bpe);
        (_escapeSpaces, _dummyPrefix, _special, _unkSurface) = (escapeSpaces, dummyPrefix, special, unkSurface);
        (BosId, EosId, PadId, UnkId) = (bos, eos, pad, unk);
    }

    /// <summary>
    /// Loads <c>tokenizer.model</c>, <c>tokenizer.json</c> or <c>tokenizer.json.gz</c>; the format is told from the
    /// content (gzip magic, a leading <c>{</c>, else protobuf). A <c>tokenizer.model</c>'s vocabulary is extended by the
    /// <c>added_tokens.json</c> in the same directory, if there is one. Throws <see cref="InvalidTokenizerException"/>
    /// naming the file for a corrupt, truncated, inconsistent or unsupported file.
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
        var modelVocab = new Vocabulary(m.Pieces, m.Kinds, file);
        string addedFile = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, AddedTokensJsonReader.FileName);
        string[] added = File.Exists(addedFile) ? AddedTokensJsonReader.Read(addedFile, file, m.Pieces, modelVocab.PieceToId) : [];
        // added_tokens.json tokens are special in tokenizer_config.json, so they decode like control pieces.
        var vocab = added.Length == 0 ? modelVocab
            : new Vocabulary([.. m.Pieces, .. added], [.. m.Kinds, .. Enumerable.Repeat(PieceKind.Control, added.Length)], file);
        var addedTrie = new TokenTrie();
        for (int i = 0; i < added.Length; i++) addedTrie.Add(added[i], m.Pieces.Length + i);
        var userDefined = new TokenTrie();
        for (int id = 0; id < m.Pieces.Length; id++)
            if (m.Kinds[id] == PieceKind.UserDefined) userDefined.Add(m.Pieces[id], id);
        int CheckId(int id, string name, PieceKind kind)
        {
            if (id < 0) return -1;
            if (id >= m.Pieces.Length || m.Kinds[id] != kind)
                throw new InvalidTokenizerException($"{file}: trainer_spec.{name} is {id}, which is not a {kind} piece");
            return id;
        }
        int unk = CheckId(m.UnkId, "unk_id", PieceKind.Unknown);
        var special = Array.ConvertAll(vocab.Kinds, k => k == PieceKind.Control);
        return new SentencePieceTokenizer(TokenizerFormat.SentencePiece, vocab, addedTrie, userDefined, new ScoreBpe(vocab, m.Scores, m.ByteFallback, unk),
            m.EscapeWhitespaces, m.AddDummyPrefix, special, m.UnkSurface,
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
        return new SentencePieceTokenizer(TokenizerFormat.HuggingFaceJson, vocab, trie, new TokenTrie(), new RankBpe(vocab, m.Merges, m.ByteFallback, m.UnkId, m.FuseUnk),
            m.EscapeSpaces, dummyPrefix: false, special, m.UnkId >= 0 ? m.Pieces[m.UnkId] : "", IdOf("<bos>"), IdOf("<eos>"), IdOf("<pad>"), m.UnkId);
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

    void EncodeInto(string text, List<int> ids) => EncodeCutting(ReplaceLoneSurrogates(text), normalized: false, ids, new Bpe.Workspace());

    /// <summary>
    /// Cuts the tokens of one level out of <paramref name="text"/> and encodes the stretches in between: raw text loses
    /// its added tokens and each chunk left is normalized and cut again; normalized text loses its user-defined pieces
    /// and each stretch left is BPE.
    /// </summary>
    void EncodeCutting(ReadOnlySpan<char> text, bool normalized, List<int> ids, Bpe.Workspace work)
    {
        var trie = normalized ? _userDefined : _addedTokens;
        int stretch = 0;
        for (int i = 0; i < text.Length;)
        {
            var (length, id) = trie.LongestMatch(text[i..]);
            if (length == 0) { i++; continue; }
            EncodeStretch(text[stretch..i], normalized, ids, work);
            ids.Add(id);
            i += length;
            stretch = i;
        }
        EncodeStretch(text[stretch..], normalized, ids, work);
    }

    void EncodeStretch(ReadOnlySpan<char> text, bool normalized, List<int> ids, Bpe.Workspace work)
    {
        // An empty chunk gives nothing, not a lone dummy prefix: SentencePiece encodes "" as no pieces.
        if (text.IsEmpty) return;
        if (normalized) _bpe.Encode(text, ids, work);
        else EncodeCutting(Normalize(text), normalized: true, ids, work);
    }

    /// <summary>SentencePiece's normalization as far as supported: the dummy prefix, then spaces escaped as "▁".</summary>
    char[] Normalize(ReadOnlySpan<char> raw)
    {
        int prefix = _dummyPrefix ? 1 : 0;
        var normalized = new char[prefix + raw.Length];
        if (_dummyPrefix) normalized[0] = ' ';
        raw.CopyTo(normalized.AsSpan(prefix));
        if (_escapeSpaces) normalized.AsSpan().Replace(' ', SpaceMark);
        return normalized;
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
    /// invalid UTF-8 from byte pieces gives one U+FFFD per byte; with <c>add_dummy_prefix</c> the first piece that
    /// shows anything loses a leading "▁" (so <see cref="Encode"/>'s ids decode to the text, not " " + text).
    /// tokenizer.json rules: every id gives its token text (special ones dropped if <paramref name="skipSpecial"/>),
    /// invalid UTF-8 gives one U+FFFD per maximal invalid subsequence. Both: "▁" becomes a space, runs of byte pieces are decoded together, ids ≥ <see cref="VocabSize"/>
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

    /// <summary>
    /// Whether <paramref name="id"/> is a control piece (.model), a token of added_tokens.json or a special added
    /// token (.json), e.g. <c>&lt;bos&gt;</c>.
    /// </summary>
    public bool IsControl(int id) => _special[CheckId(id)];

    /// <summary>The kind of <paramref name="id"/> (byte, user-defined, control, …).</summary>
    public PieceKind KindOf(int id) => _vocab.Kinds[CheckId(id)];

    // Ids come from callers and from files (e.g. a trace's input_ids), so a bad one is an input error like any other.
    int CheckId(int id) => (uint)id < (uint)_vocab.Pieces.Length ? id
        : throw new Prompts.InvalidPromptException($"token id {id} is outside the vocabulary (0..{_vocab.Pieces.Length - 1})");

    /// <summary>Byte value of a byte piece, or -1 (used by <see cref="StreamingDecoder"/>).</summary>
    internal int ByteOf(int id) => _vocab.ByteValue[CheckId(id)];

    /// <summary>
    /// Text of a non-byte piece, or null if it is skipped without ending a run of byte pieces. <paramref name="atStart"/>:
    /// nothing but control pieces came before it, so the dummy prefix's "▁" is dropped as SentencePiece does.
    /// </summary>
    internal string? SurfaceOf(int id, bool skipSpecial, bool atStart)
    {
        if (Format == TokenizerFormat.SentencePiece)
            return _vocab.Kinds[id] switch
            {
                PieceKind.Control => "",
                PieceKind.Unknown => _unkSurface,
                _ when atStart && _dummyPrefix && _vocab.Pieces[id][0] == SpaceMark => _vocab.Pieces[id][1..].Replace(SpaceMark, ' '),
                _ => _vocab.Pieces[id].Replace(SpaceMark, ' '),
            };
        return skipSpecial && _special[id] ? null : _vocab.Pieces[id].Replace(SpaceMark, ' ');
    }
}
