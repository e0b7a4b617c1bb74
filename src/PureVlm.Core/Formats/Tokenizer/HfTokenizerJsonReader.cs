using PureVlm.Formats;
using System.Buffers;
using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace PureVlm.Tokenization;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> (BPE model) with a streaming <see cref="Utf8JsonReader"/>:
/// the 256k vocabulary strings are the only per-entry allocations; merges are resolved to id pairs through
/// span lookups. Two pipelines are accepted: Gemma's (normalizer <c>Replace " " → "▁"</c> or none, pre-tokenizer none
/// or <c>Split " "</c>, decoder <c>Replace "▁" → " "</c>, <c>ByteFallback</c>, <c>Fuse</c>) and Qwen2's byte-level one
/// (normalizer <c>NFC</c> or none, pre-tokenizer <c>Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)]</c>,
/// decoder <c>ByteLevel</c>).
/// </summary>
static class HfTokenizerJsonReader
{
    /// <summary>An added token: matched in the raw text before normalization.</summary>
    public readonly record struct AddedToken(int Id, string Content, bool Special);

    /// <summary>
    /// One merge, as the id it makes and where its text splits into left and right (its rank is its index).
    /// Two symbols merge iff their texts are exactly those halves, so this is the (left, right) pair without
    /// looking both halves up while loading.
    /// </summary>
    public readonly record struct Merge(int Result, int LeftLength);

    /// <summary>
    /// The parsed file. <paramref name="ByteLevel"/>: the byte-level pipeline, whose pieces spell UTF-8 bytes in GPT-2's
    /// <c>bytes_to_unicode</c> characters; <paramref name="SplitPattern"/> is its pre-tokenizer regex and <paramref name="Nfc"/> its NFC normalizer.
    /// </summary>
    public sealed record Model(
        string[] Pieces, PieceKind[] Kinds, Dictionary<string, int> PieceToId, AddedToken[] AddedTokens, Merge[] Merges,
        int UnkId, bool ByteFallback, bool FuseUnk, bool EscapeSpaces, bool ByteLevel = false, string? SplitPattern = null, bool Nfc = false);

    /// <summary>Largest decompressed tokenizer.json accepted.</summary>
    public const long MaxUncompressedBytes = 256L << 20;

    public static bool IsGzip(ReadOnlySpan<byte> data) => data.Length >= 2 && data[0] == 0x1F && data[1] == 0x8B;

    public static byte[] Gunzip(byte[] data, string file)
    {
        try
        {
            using var gz = new GZipStream(new MemoryStream(data), CompressionMode.Decompress);
            var output = new MemoryStream(data.Length * 4);
            var chunk = new byte[1 << 16];
            int read;
            while ((read = gz.Read(chunk)) > 0)
            {
                // Real tokenizer.json files are 17-33 MB; a small gzip bomb must not exhaust memory.
                if (output.Length + read > MaxUncompressedBytes)
                    throw new InvalidTokenizerException($"{file}: decompresses to more than {MaxUncompressedBytes / (1 << 20)} MB; not a tokenizer.json");
                output.Write(chunk, 0, read);
            }
            return output.ToArray();
        }
        catch (InvalidDataException e) { throw new InvalidTokenizerException($"{file}: corrupt gzip stream: {e.Message}", e); }
    }

    public static Model Read(byte[] json, string file)
    {
        try { return new Parser(file).Parse(json); }
        // The parser's own message quotes the offending bytes, which can hold line breaks: say where instead.
        catch (JsonException e) when (e.LineNumber is long line)
        {
            throw new InvalidTokenizerException($"{file}: invalid tokenizer JSON at line {line + 1}, byte {e.BytePositionInLine + 1}", e);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidTokenizerException($"{file}: invalid tokenizer JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    sealed class Parser(string file)
    {
        readonly Dictionary<string, int> _vocab = new(StringComparer.Ordinal);
        readonly List<AddedToken> _added = new();
        // Merges are kept as text (one char pool, offsets) until the vocabulary is known: keys may come in any order.
        char[] _mergeChars = new char[1 << 20];
        int _mergeCharCount;
        readonly List<(int Start, int LeftLength, int RightLength)> _mergeText = new();
        string? _modelType, _unkToken;
        bool _byteFallback, _fuseUnk, _escapeSpaces, _sawModel, _nfc, _byteLevel;
        string? _splitPattern;

        public Model Parse(byte[] json)
        {
            var r = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, MaxDepth = 64 });
            Expect(ref r, JsonTokenType.StartObject, "the top level");
            JsonElement? normalizer = null, preTokenizer = null, decoder = null;
            while (Read(ref r) && r.TokenType == JsonTokenType.PropertyName)
            {
                string name = r.GetString()!;
                Read(ref r);
                switch (name)
                {
                    case "added_tokens": ReadAddedTokens(ref r); break;
                    case "model": ReadModel(ref r); break;
                    case "normalizer": normalizer = JsonElement.ParseValue(ref r); break;
                    case "pre_tokenizer": preTokenizer = JsonElement.ParseValue(ref r); break;
                    case "decoder": decoder = JsonElement.ParseValue(ref r); break;
                    default: r.Skip(); break;
                }
            }
            if (!_sawModel) throw Bad("no \"model\" object");
            if (_modelType != "BPE") throw Bad($"model.type is {Vocabulary.Quote(_modelType ?? "(missing)")}, only \"BPE\" is supported");
            if (IsByteLevel(decoder))
            {
                _byteLevel = true;
                _nfc = CheckByteLevelNormalizer(normalizer);
                _splitPattern = CheckByteLevelPreTokenizer(preTokenizer);
            }
            else
            {
                _escapeSpaces = CheckNormalizer(normalizer);
                CheckPreTokenizer(preTokenizer);
                CheckDecoder(decoder);
            }
            return Build();
        }

        void ReadAddedTokens(ref Utf8JsonReader r)
        {
            Expect(ref r, JsonTokenType.StartArray, "added_tokens");
            while (Read(ref r) && r.TokenType == JsonTokenType.StartObject)
            {
                int id = -1; string? content = null; bool special = false, normalized = false, lstrip = false, rstrip = false, singleWord = false;
                while (Read(ref r) && r.TokenType == JsonTokenType.PropertyName)
                {
                    string name = r.GetString()!;
                    Read(ref r);
                    switch (name)
                    {
                        case "id": id = r.TryGetInt32(out int v) && v >= 0 ? v : throw Bad("added token id is not a non-negative integer"); break;
                        case "content": content = r.GetString(); break;
                        case "special": special = r.GetBoolean(); break;
                        case "normalized": normalized = r.GetBoolean(); break;
                        case "lstrip": lstrip = r.GetBoolean(); break;
                        case "rstrip": rstrip = r.GetBoolean(); break;
                        case "single_word": singleWord = r.GetBoolean(); break;
                        default: r.Skip(); break;
                    }
                }
                if (id < 0 || string.IsNullOrEmpty(content)) throw Bad($"added token #{_added.Count} lacks an id or content");
                if (normalized || lstrip || rstrip || singleWord)
                    throw Bad($"added token {Vocabulary.Quote(content)} sets normalized/lstrip/rstrip/single_word, which is not supported");
                _added.Add(new AddedToken(id, content, special));
            }
        }

        void ReadModel(ref Utf8JsonReader r)
        {
            _sawModel = true;
            Expect(ref r, JsonTokenType.StartObject, "model");
            while (Read(ref r) && r.TokenType == JsonTokenType.PropertyName)
            {
                string name = r.GetString()!;
                Read(ref r);
                switch (name)
                {
                    case "type": _modelType = r.GetString(); break;
                    case "unk_token": _unkToken = r.TokenType == JsonTokenType.Null ? null : r.GetString(); break;
                    case "byte_fallback": _byteFallback = r.GetBoolean(); break;
                    case "fuse_unk": _fuseUnk = r.GetBoolean(); break;
                    case "dropout": RequireNull(ref r, "model.dropout"); break;
                    case "continuing_subword_prefix": RequireNullOrEmpty(ref r, "model.continuing_subword_prefix"); break;
                    case "end_of_word_suffix": RequireNullOrEmpty(ref r, "model.end_of_word_suffix"); break;
                    case "ignore_merges": if (r.GetBoolean()) throw Bad("model.ignore_merges true is not supported"); break;
                    case "vocab": ReadVocab(ref r); break;
                    case "merges": ReadMerges(ref r); break;
                    default: r.Skip(); break;
                }
            }
        }

        void ReadVocab(ref Utf8JsonReader r)
        {
            Expect(ref r, JsonTokenType.StartObject, "model.vocab");
            while (Read(ref r) && r.TokenType == JsonTokenType.PropertyName)
            {
                string piece = r.GetString()!;
                Read(ref r);
                if (!r.TryGetInt32(out int id) || id < 0) throw Bad($"model.vocab[{Vocabulary.Quote(piece)}] is not a non-negative integer id");
                if (!_vocab.TryAdd(piece, id)) throw Bad($"model.vocab has {Vocabulary.Quote(piece)} twice");
            }
        }

        void ReadMerges(ref Utf8JsonReader r)
        {
            Expect(ref r, JsonTokenType.StartArray, "model.merges");
            while (Read(ref r) && r.TokenType != JsonTokenType.EndArray)
            {
                int start = _mergeCharCount;
                if (r.TokenType == JsonTokenType.String)
                {
                    int length = AppendString(ref r);
                    int space = _mergeChars.AsSpan(start, length).IndexOf(' ');
                    if (space < 0 || _mergeChars.AsSpan(start + space + 1, length - space - 1).Contains(' '))
                        throw Bad($"merge #{_mergeText.Count} {Vocabulary.Quote(new string(_mergeChars, start, length))} is not two tokens separated by one space");
                    // Store without the separator so that left+right is the merged piece.
                    _mergeChars.AsSpan(start + space + 1, length - space - 1).CopyTo(_mergeChars.AsSpan(start + space));
                    _mergeCharCount--;
                    _mergeText.Add((start, space, length - space - 1));
                }
                else if (r.TokenType == JsonTokenType.StartArray)
                {
                    Read(ref r); int left = r.TokenType == JsonTokenType.String ? AppendString(ref r) : throw Bad($"merge #{_mergeText.Count} is not [string, string]");
                    Read(ref r); int right = r.TokenType == JsonTokenType.String ? AppendString(ref r) : throw Bad($"merge #{_mergeText.Count} is not [string, string]");
                    Read(ref r); if (r.TokenType != JsonTokenType.EndArray) throw Bad($"merge #{_mergeText.Count} has more than two parts");
                    _mergeText.Add((start, left, right));
                }
                else throw Bad($"merge #{_mergeText.Count} is a {r.TokenType}, expected a string or an array");
            }
        }

        int AppendString(ref Utf8JsonReader r)
        {
            int maxChars = r.HasValueSequence ? checked((int)r.ValueSequence.Length) : r.ValueSpan.Length; // UTF-16 units never exceed UTF-8 bytes
            if (_mergeChars.Length - _mergeCharCount < maxChars)
                Array.Resize(ref _mergeChars, Math.Max(_mergeChars.Length * 2, _mergeCharCount + maxChars));
            int n = r.CopyString(_mergeChars.AsSpan(_mergeCharCount));
            _mergeCharCount += n;
            return n;
        }

        Model Build()
        {
            int size = 0;
            foreach (var id in _vocab.Values) size = Math.Max(size, id + 1);
            foreach (var t in _added) size = Math.Max(size, t.Id + 1);
            if (size > _vocab.Count + _added.Count) throw Bad($"ids go up to {size - 1} but only {_vocab.Count} vocab entries and {_added.Count} added tokens exist");
            var pieces = new string[size];
            var kinds = new PieceKind[size];
            foreach (var (piece, id) in _vocab)
            {
                if (pieces[id] != null) throw Bad($"id {id} is used by {Vocabulary.Quote(pieces[id])} and {Vocabulary.Quote(piece)}");
                pieces[id] = piece;
                kinds[id] = Vocabulary.ParseBytePiece(piece) >= 0 ? PieceKind.Byte : PieceKind.Normal;
            }
            foreach (var t in _added)
            {
                if (pieces[t.Id] != null && pieces[t.Id] != t.Content)
                    throw Bad($"added token {Vocabulary.Quote(t.Content)} has id {t.Id}, which the vocab gives to {Vocabulary.Quote(pieces[t.Id])}");
                if (_vocab.TryGetValue(t.Content, out int other) && other != t.Id)
                    throw Bad($"added token {Vocabulary.Quote(t.Content)} has id {t.Id} but is id {other} in the vocab");
                _vocab[t.Content] = t.Id;
                pieces[t.Id] = t.Content;
                kinds[t.Id] = t.Special ? PieceKind.Control : PieceKind.UserDefined;
            }
            for (int id = 0; id < size; id++)
                if (pieces[id] == null) throw Bad($"id {id} has no token (ids must be 0..{size - 1} without gaps)");

            int unkId = -1;
            if (_unkToken != null && !_vocab.TryGetValue(_unkToken, out unkId)) throw Bad($"model.unk_token {Vocabulary.Quote(_unkToken)} is not in the vocab");
            if (unkId >= 0) kinds[unkId] = PieceKind.Unknown;

            var lookup = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
            var merges = new Merge[_mergeText.Count];
            for (int i = 0; i < merges.Length; i++)
            {
                var (start, leftLength, rightLength) = _mergeText[i];
                if (leftLength == 0 || rightLength == 0 || !lookup.TryGetValue(_mergeChars.AsSpan(start, leftLength + rightLength), out int result))
                    throw Bad($"merge #{i} ({Vocabulary.Quote(new string(_mergeChars, start, leftLength))}, " +
                              $"{Vocabulary.Quote(new string(_mergeChars, start + leftLength, rightLength))}) has an empty part or makes a token missing from the vocab");
                merges[i] = new Merge(result, leftLength);
            }
            return new Model(pieces, kinds, _vocab, _added.ToArray(), merges, unkId, _byteFallback, _fuseUnk, _escapeSpaces, _byteLevel, _splitPattern, _nfc);
        }

        bool CheckNormalizer(JsonElement? n)
        {
            if (n is not { ValueKind: JsonValueKind.Object } e) return false;
            if (IsReplace(e, " ", "\u2581")) return true;
            throw Bad($"normalizer {Short(e)} is not supported (expected Replace \" \" → \"▁\" or null)");
        }

        void CheckPreTokenizer(JsonElement? p)
        {
            if (p is not { ValueKind: JsonValueKind.Object } e) return;
            // Split on " " cannot split anything once the normalizer has turned every space into "▁".
            if (_escapeSpaces && Str(e, "type") == "Split" && e.TryGetProperty("pattern", out var pat) && Str(pat, "String") == " ") return;
            throw Bad($"pre_tokenizer {Short(e)} is not supported (expected null, or Split \" \" after the Replace normalizer)");
        }

        void CheckDecoder(JsonElement? d)
        {
            if (d is { ValueKind: JsonValueKind.Object } e && Str(e, "type") == "Sequence" && e.TryGetProperty("decoders", out var list) &&
                list.ValueKind == JsonValueKind.Array && list.GetArrayLength() == 3 &&
                IsReplace(list[0], "\u2581", " ") && Str(list[1], "type") == "ByteFallback" && Str(list[2], "type") == "Fuse")
                return;
            throw Bad($"decoder {(d is { } x ? Short(x) : "null")} is not supported (expected Sequence [Replace \"▁\" → \" \", ByteFallback, Fuse])");
        }

        static bool IsByteLevel(JsonElement? d) => d is { ValueKind: JsonValueKind.Object } e && Str(e, "type") == "ByteLevel";

        bool CheckByteLevelNormalizer(JsonElement? n)
        {
            if (n is not { ValueKind: JsonValueKind.Object } e) return false;
            if (Str(e, "type") == "NFC") return true;
            throw Bad($"normalizer {Short(e)} is not supported with the ByteLevel decoder (expected NFC or null)");
        }

        /// <summary>The split regex of <c>Sequence [Split(Regex, Isolated), ByteLevel(use_regex false)]</c> (Qwen2's structure).</summary>
        string CheckByteLevelPreTokenizer(JsonElement? p)
        {
            const string expected = "(expected Sequence [Split(Regex, Isolated), ByteLevel(add_prefix_space false, use_regex false)])";
            if (p is not { ValueKind: JsonValueKind.Object } e) throw Bad($"pre_tokenizer is null; {expected}");
            bool NoPrefix(JsonElement b) => !(b.TryGetProperty("add_prefix_space", out var a) && a.ValueKind == JsonValueKind.True);
            bool UsesRegex(JsonElement b) => !(b.TryGetProperty("use_regex", out var u) && u.ValueKind == JsonValueKind.False);
            if (Str(e, "type") == "Sequence" && e.TryGetProperty("pretokenizers", out var list) && list.ValueKind == JsonValueKind.Array &&
                list.GetArrayLength() == 2 && Str(list[0], "type") == "Split" && Str(list[0], "behavior") == "Isolated" &&
                !(list[0].TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True) &&
                list[0].TryGetProperty("pattern", out var pat) && Str(pat, "Regex") is { } regex &&
                Str(list[1], "type") == "ByteLevel" && NoPrefix(list[1]) && !UsesRegex(list[1]))
                return regex;
            throw Bad($"pre_tokenizer {Short(e)} is not supported {expected}");
        }

        static bool IsReplace(JsonElement e, string from, string to) =>
            Str(e, "type") == "Replace" && e.TryGetProperty("pattern", out var p) && Str(p, "String") == from && Str(e, "content") == to;

        static string? Str(JsonElement e, string name) =>
            e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        static string Short(JsonElement e) => JsonValueText.Show(e, 200);

        void RequireNullOrEmpty(ref Utf8JsonReader r, string what)
        {
            // Qwen2's tokenizer.json spells "no prefix" as "", Gemma's as null.
            if (r.TokenType == JsonTokenType.String && r.ValueTextEquals(""u8)) return;
            if (r.TokenType != JsonTokenType.Null) throw Bad($"{what} must be null or \"\" (found {r.TokenType})");
        }

        void RequireNull(ref Utf8JsonReader r, string what)
        {
            if (r.TokenType != JsonTokenType.Null) throw Bad($"{what} must be null (found {r.TokenType})");
        }

        bool Read(ref Utf8JsonReader r) => r.Read() ? true : throw Bad("truncated JSON");

        void Expect(ref Utf8JsonReader r, JsonTokenType type, string what)
        {
            if (r.TokenType == JsonTokenType.None) Read(ref r);
            if (r.TokenType != type) throw Bad($"{what} is a {r.TokenType}, expected {type}");
        }

        InvalidTokenizerException Bad(string problem) => new($"{file}: {problem}");
    }
}
