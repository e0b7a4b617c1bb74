using System.Text;

namespace PureVlm.Tokenization;

/// <summary>
/// Decodes ids one at a time for streaming output. Bytes of a UTF-8 character split over several byte pieces are
/// held back until the character is complete (or known to be invalid), so no call returns half a character. The
/// concatenation of every <see cref="Push"/> result and <see cref="Flush"/> equals <see cref="SentencePieceTokenizer.Decode"/>
/// of the same ids. Not thread-safe; make one per stream.
/// </summary>
public sealed class StreamingDecoder
{
    readonly SentencePieceTokenizer _tokenizer;
    readonly bool _skipSpecial;
    readonly bool _errorPerByte;
    byte[] _pending = new byte[16]; // bytes of an unfinished character, and a byte-level piece's bytes being decoded
    int _pendingCount;
    bool _atStart = true;
    readonly StringBuilder _text = new();

    internal StreamingDecoder(SentencePieceTokenizer tokenizer, bool skipSpecial)
    {
        _tokenizer = tokenizer;
        _skipSpecial = skipSpecial;
        _errorPerByte = tokenizer.Format == TokenizerFormat.SentencePiece;
    }

    /// <summary>Adds one id and returns the text it completes (possibly ""; always "" for an id ≥ VocabSize). A negative id throws.</summary>
    public string Push(int id)
    {
        _text.Clear();
        Append(id, _text);
        return _text.ToString();
    }

    /// <summary>Ends the stream: returns held-back bytes of an unfinished character as U+FFFD, and resets.</summary>
    public string Flush()
    {
        _text.Clear();
        Finish(_text);
        return _text.ToString();
    }

    /// <remarks>
    /// Ids at or past <see cref="SentencePieceTokenizer.VocabSize"/> give "" and do not end a run of byte pieces, as HF fast
    /// tokenizers skip ids they have no token for: PaliGemma's lm_head has 257216 rows, its tokenizer 257152 pieces.
    /// </remarks>
    internal void Append(int id, StringBuilder text)
    {
        if (id >= _tokenizer.VocabSize) return;
        bool atStart = _atStart;
        // Every piece but a control piece shows something (a byte piece at the latest when the next piece flushes it).
        _atStart &= _tokenizer.IsControl(id);
        if (_tokenizer.BytesOf(id) is { } bytes)
        {
            if (_pendingCount + bytes.Length > _pending.Length) Array.Resize(ref _pending, 2 * (_pendingCount + bytes.Length));
            bytes.CopyTo(_pending, _pendingCount);
            _pendingCount += bytes.Length;
            DecodePending(final: false, text);
            return;
        }
        int b = _tokenizer.ByteOf(id);
        if (b >= 0)
        {
            _pending[_pendingCount++] = (byte)b;
            DecodePending(final: false, text);
            return;
        }
        string? surface = _tokenizer.SurfaceOf(id, _skipSpecial, atStart);
        if (surface == null) return;
        DecodePending(final: true, text);
        text.Append(surface);
    }

    internal void Finish(StringBuilder text)
    {
        DecodePending(final: true, text);
        _atStart = true;
    }

    /// <summary>
    /// Decodes the held bytes; unless <paramref name="final"/>, keeps a trailing valid-but-incomplete sequence
    /// (at most 3 bytes). Invalid bytes become U+FFFD: one per byte (SentencePiece) or one per maximal invalid
    /// subsequence (WHATWG TextDecoder, as the tokenizer.json reference does).
    /// </summary>
    void DecodePending(bool final, StringBuilder text)
    {
        var bytes = _pending.AsSpan(0, _pendingCount);
        int i = 0;
        while (i < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes[i..], out var rune, out int used);
            if (status == System.Buffers.OperationStatus.Done) { text.Append(rune.ToString()); i += used; continue; }
            if (status == System.Buffers.OperationStatus.NeedMoreData && !final) break;
            text.Append('\uFFFD');
            i += _errorPerByte ? 1 : used;
        }
        bytes[i..].CopyTo(_pending);
        _pendingCount = bytes.Length - i;
    }
}
