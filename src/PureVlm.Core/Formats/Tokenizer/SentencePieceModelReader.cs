using System.Text;

namespace PureVlm.Tokenization;

/// <summary>
/// Reads a SentencePiece <c>tokenizer.model</c>: a protobuf <c>ModelProto</c> with
/// 1: repeated SentencePiece { 1: piece, 2: score, 3: type }, 2: TrainerSpec, 3: NormalizerSpec.
/// Only the fields the encoder needs are read; every other field is skipped by wire type.
/// </summary>
static class SentencePieceModelReader
{
    /// <summary>Everything taken from the file.</summary>
    public sealed record Model(
        string[] Pieces, float[] Scores, PieceKind[] Kinds,
        bool ByteFallback, int UnkId, int BosId, int EosId, int PadId, string UnkSurface, bool EscapeWhitespaces, bool AddDummyPrefix);

    const int BpeModelType = 2;

    public static Model Read(byte[] data, string file)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var kinds = new List<PieceKind>();
        // Proto2 defaults of TrainerSpec / NormalizerSpec, used when a field is absent.
        int modelType = 1, unkId = 0, bosId = 1, eosId = 2, padId = -1;
        bool byteFallback = false, addDummyPrefix = true, removeExtra = true, escape = true;
        string unkSurface = " \u2047 ", normalizerName = "";
        int charsMapBytes = 0;

        var top = new ProtoReader(data, file, "ModelProto");
        while (top.Next(out int field, out int wire))
        {
            if (field == 1 && wire == 2)
            {
                var p = top.Message("SentencePiece");
                string? piece = null; float score = 0; int type = 1;
                while (p.Next(out int f, out int w))
                {
                    if (f == 1 && w == 2) piece = p.String();
                    else if (f == 2 && w == 5) score = p.Float();
                    else if (f == 3 && w == 0) type = (int)p.Varint();
                    else p.Skip(w);
                }
                if (piece == null) throw new InvalidTokenizerException($"{file}: piece {pieces.Count} has no text");
                if (type < 1 || type > 6) throw new InvalidTokenizerException($"{file}: piece {pieces.Count} ({Vocabulary.Quote(piece)}) has type {type}, expected 1..6");
                pieces.Add(piece); scores.Add(score); kinds.Add((PieceKind)type);
            }
            else if (field == 2 && wire == 2)
            {
                var t = top.Message("TrainerSpec");
                while (t.Next(out int f, out int w))
                {
                    switch (f, w)
                    {
                        case (3, 0): modelType = (int)t.Varint(); break;
                        case (35, 0): byteFallback = t.Varint() != 0; break;
                        case (40, 0): unkId = (int)t.Varint(); break;
                        case (41, 0): bosId = (int)t.Varint(); break;
                        case (42, 0): eosId = (int)t.Varint(); break;
                        case (43, 0): padId = (int)t.Varint(); break;
                        case (44, 2): unkSurface = t.String(); break;
                        default: t.Skip(w); break;
                    }
                }
            }
            else if (field == 3 && wire == 2)
            {
                var n = top.Message("NormalizerSpec");
                while (n.Next(out int f, out int w))
                {
                    switch (f, w)
                    {
                        case (1, 2): normalizerName = n.String(); break;
                        case (2, 2): charsMapBytes = n.Bytes().Length; break;
                        case (3, 0): addDummyPrefix = n.Varint() != 0; break;
                        case (4, 0): removeExtra = n.Varint() != 0; break;
                        case (5, 0): escape = n.Varint() != 0; break;
                        default: n.Skip(w); break;
                    }
                }
            }
            else top.Skip(wire);
        }

        if (pieces.Count == 0) throw new InvalidTokenizerException($"{file}: no pieces (not a SentencePiece model?)");
        if (modelType != BpeModelType)
            throw new InvalidTokenizerException($"{file}: model_type is {modelType}, only BPE (2) is supported");
        // Gemma's and LLaMA's normalizers are both the identity map without whitespace removal (they differ only in
        // add_dummy_prefix); anything else would need the charsmap's trie and whitespace folding, which are not implemented.
        if (charsMapBytes != 0 || removeExtra)
            throw new InvalidTokenizerException(
                $"{file}: normalizer '{normalizerName}' (precompiled_charsmap {charsMapBytes} bytes, remove_extra_whitespaces {removeExtra}) " +
                "is not supported; expected the identity normalizer (no charsmap) with remove_extra_whitespaces false, as Gemma and LLaMA have");
        return new Model(pieces.ToArray(), scores.ToArray(), kinds.ToArray(), byteFallback, unkId, bosId, eosId, padId, unkSurface, escape, addDummyPrefix);
    }

    /// <summary>A bounds-checked cursor over one protobuf message.</summary>
    ref struct ProtoReader(ReadOnlySpan<byte> data, string file, string message)
    {
        readonly ReadOnlySpan<byte> _data = data;
        int _pos;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= _data.Length) return false;
            ulong key = Varint();
            field = (int)Math.Min(key >> 3, int.MaxValue);
            wire = (int)(key & 7);
            if (field == 0) throw Bad("field number 0");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length) throw Bad("truncated varint");
                byte b = _data[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw Bad("varint longer than 10 bytes");
        }

        public float Float() => BitConverter.Int32BitsToSingle((int)Fixed(4));

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _pos)) throw Bad($"length {length} runs past the end ({_data.Length - _pos} bytes left)");
            var span = _data.Slice(_pos, (int)length);
            _pos += (int)length;
            return span;
        }

        public string String()
        {
            var bytes = Bytes();
            try { return Strict.GetString(bytes); }
            catch (DecoderFallbackException) { throw Bad("string is not valid UTF-8"); }
        }

        public ProtoReader Message(string name) => new(Bytes(), file, name);

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Fixed(8); break;
                case 2: Bytes(); break;
                case 5: Fixed(4); break;
                default: throw Bad($"unsupported wire type {wire}");
            }
        }

        ulong Fixed(int size)
        {
            if (_data.Length - _pos < size) throw Bad($"truncated {size}-byte field");
            ulong v = 0;
            for (int i = size - 1; i >= 0; i--) v = (v << 8) | _data[_pos + i];
            _pos += size;
            return v;
        }

        readonly InvalidTokenizerException Bad(string problem) =>
            new($"{file}: corrupt SentencePiece model: {problem} in {message} at byte {_pos}");
    }

    static readonly UTF8Encoding Strict = new(false, true);
}
