namespace PureVlm.Tokenization;

/// <summary>What a vocabulary entry is, with SentencePiece's names (<c>ModelProto.SentencePiece.Type</c>).</summary>
public enum PieceKind : byte
{
    /// <summary>A learned piece, produced by BPE.</summary>
    Normal = 1,
    /// <summary>The unknown piece (<c>&lt;unk&gt;</c>).</summary>
    Unknown = 2,
    /// <summary>A control piece (<c>&lt;bos&gt;</c>, <c>&lt;eos&gt;</c>, <c>&lt;pad&gt;</c>; in tokenizer.json: an added token marked special).</summary>
    Control = 3,
    /// <summary>A user-defined piece, cut out of the text before BPE (in tokenizer.json: a non-special added token).</summary>
    UserDefined = 4,
    /// <summary>An unused piece (SentencePiece only).</summary>
    Unused = 5,
    /// <summary>A byte-fallback piece <c>&lt;0xNN&gt;</c>.</summary>
    Byte = 6,
}

/// <summary>The id ↔ piece tables shared by both file formats.</summary>
sealed class Vocabulary
{
    public readonly string[] Pieces;
    public readonly PieceKind[] Kinds;
    /// <summary>Byte value of each <see cref="PieceKind.Byte"/> piece, -1 for the others.</summary>
    public readonly short[] ByteValue;
    /// <summary>Id of the <c>&lt;0xNN&gt;</c> piece for each byte, -1 if the vocabulary lacks it (Gemma 1/2 has no <c>&lt;0x09&gt;</c>).</summary>
    public readonly int[] ByteToId = new int[256];
    public readonly Dictionary<string, int> PieceToId;
    public readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> SpanToId;

    /// <summary>Builds the tables; <paramref name="pieceToId"/>, if given, is the already checked inverse of <paramref name="pieces"/>.</summary>
    public Vocabulary(string[] pieces, PieceKind[] kinds, string file, Dictionary<string, int>? pieceToId = null)
    {
        Pieces = pieces;
        Kinds = kinds;
        ByteValue = new short[pieces.Length];
        PieceToId = pieceToId ?? new Dictionary<string, int>(pieces.Length, StringComparer.Ordinal);
        Array.Fill(ByteToId, -1);
        for (int id = 0; id < pieces.Length; id++)
        {
            if (pieceToId == null && !PieceToId.TryAdd(pieces[id], id))
                throw new InvalidTokenizerException($"{file}: piece {Quote(pieces[id])} appears twice (ids {PieceToId[pieces[id]]} and {id})");
            int b = kinds[id] == PieceKind.Byte ? ParseBytePiece(pieces[id]) : -1;
            if (kinds[id] == PieceKind.Byte && b < 0)
                throw new InvalidTokenizerException($"{file}: byte piece {id} is {Quote(pieces[id])}, expected <0xNN>");
            ByteValue[id] = (short)b;
            if (b >= 0 && ByteToId[b] < 0) ByteToId[b] = id;
        }
        SpanToId = PieceToId.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>The byte of a piece spelled <c>&lt;0xNN&gt;</c> (hex, either case), or -1.</summary>
    public static int ParseBytePiece(string piece)
    {
        if (piece.Length != 6 || !piece.StartsWith("<0x", StringComparison.Ordinal) || piece[5] != '>') return -1;
        return byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var b) ? b : -1;
    }

    /// <summary>A piece as a JSON string for error messages; only quotes and control characters are escaped, so "&lt;image&gt;" and "▁" stay readable.</summary>
    public static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s, QuoteOptions);

    static readonly System.Text.Json.JsonSerializerOptions QuoteOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
