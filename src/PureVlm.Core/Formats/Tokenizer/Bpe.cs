using System.Text;

namespace PureVlm.Tokenization;

/// <summary>
/// Byte-pair encoding of one stretch of normalized text (the text between cut-out tokens), as a doubly linked
/// list of symbols plus a priority queue of candidate merges: O(n log n) in the stretch length. The two formats
/// differ only in which merges exist and in what order they apply (<see cref="TryMerge"/>); ties go to the
/// leftmost pair in both. Symbols left without an id become byte pieces (or the unknown id).
/// </summary>
abstract class Bpe(Vocabulary vocab, bool byteFallback, int unkId, bool fuseUnk)
{
    protected readonly Vocabulary Vocab = vocab;

    /// <summary>Id of a one-character symbol, or -1 if it is not a piece BPE may use.</summary>
    protected abstract int SymbolId(ReadOnlySpan<char> character);

    /// <summary>Whether two adjacent symbols merge, into which id, and how urgently (smaller first).</summary>
    protected abstract bool TryMerge(ReadOnlySpan<char> merged, int leftId, int rightId, out int id, out float priority);

    internal struct Symbol
    {
        public int Start, Length, Prev, Next, Id;
    }

    /// <summary>Scratch space for one <c>Encode</c> call; stretches reuse it.</summary>
    public sealed class Workspace
    {
        internal Symbol[] Symbols = [];
        internal readonly PriorityQueue<(int Left, int Right, int Length), (float Priority, int Left)> Queue = new();
    }

    /// <summary>Appends the ids of <paramref name="text"/> (normalized, non-empty) to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> output, Workspace work)
    {
        if (work.Symbols.Length < text.Length) work.Symbols = new Symbol[Math.Max(text.Length, 2 * work.Symbols.Length)];
        var symbols = work.Symbols;
        int count = 0;
        for (int i = 0; i < text.Length;)
        {
            int length = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            symbols[count] = new Symbol { Start = i, Length = length, Prev = count - 1, Next = count + 1, Id = SymbolId(text.Slice(i, length)) };
            count++;
            i += length;
        }
        symbols[count - 1].Next = -1;

        var queue = work.Queue;
        queue.Clear();
        for (int s = 0; s + 1 < count; s++) Enqueue(text, symbols, s, s + 1, queue);
        while (queue.TryDequeue(out var pair, out _))
        {
            ref var left = ref symbols[pair.Left];
            ref var right = ref symbols[pair.Right];
            // Stale if either side has been merged away or grown since the pair was queued.
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != pair.Length) continue;
            TryMerge(text.Slice(left.Start, pair.Length), left.Id, right.Id, out int id, out _);
            left.Length = pair.Length;
            left.Id = id;
            left.Next = right.Next;
            right.Length = 0;
            if (left.Next >= 0) symbols[left.Next].Prev = pair.Left;
            if (left.Prev >= 0) Enqueue(text, symbols, left.Prev, pair.Left, queue);
            if (left.Next >= 0) Enqueue(text, symbols, pair.Left, left.Next, queue);
        }

        for (int s = 0; s >= 0; s = symbols[s].Next)
        {
            if (symbols[s].Id >= 0) output.Add(symbols[s].Id);
            else AddFallback(text.Slice(symbols[s].Start, symbols[s].Length), output);
        }
    }

    void Enqueue(ReadOnlySpan<char> text, Symbol[] symbols, int left, int right, PriorityQueue<(int, int, int), (float, int)> queue)
    {
        int length = symbols[left].Length + symbols[right].Length;
        if (TryMerge(text.Slice(symbols[left].Start, length), symbols[left].Id, symbols[right].Id, out _, out float priority))
            queue.Enqueue((left, right, length), (priority, left));
    }

    /// <summary>A character with no piece: its UTF-8 bytes as byte pieces if all exist, else the unknown id.</summary>
    void AddFallback(ReadOnlySpan<char> character, List<int> output)
    {
        if (byteFallback)
        {
            Span<byte> utf8 = stackalloc byte[4];
            int n = Encoding.UTF8.GetBytes(character, utf8);
            bool all = true;
            for (int i = 0; i < n; i++) all &= Vocab.ByteToId[utf8[i]] >= 0;
            if (all)
            {
                for (int i = 0; i < n; i++) output.Add(Vocab.ByteToId[utf8[i]]);
                return;
            }
        }
        if (unkId < 0) throw new InvalidOperationException($"character U+{char.ConvertToUtf32(character.ToString(), 0):X4} has no piece, and the tokenizer has neither byte pieces for it nor an unknown piece");
        if (fuseUnk && output.Count > 0 && output[^1] == unkId) return;
        output.Add(unkId);
    }
}

/// <summary>
/// SentencePiece BPE: merge the adjacent pair whose concatenation is the NORMAL piece with the highest score.
/// UNUSED pieces are never formed (SentencePiece forms them and splits them back afterwards; Gemma has none
/// that BPE could reach, and this difference is not reproduced).
/// </summary>
sealed class ScoreBpe(Vocabulary vocab, float[] scores, bool byteFallback, int unkId)
    : Bpe(vocab, byteFallback, unkId, fuseUnk: false)
{
    protected override int SymbolId(ReadOnlySpan<char> character) => NormalId(character);

    protected override bool TryMerge(ReadOnlySpan<char> merged, int leftId, int rightId, out int id, out float priority)
    {
        id = NormalId(merged);
        priority = id >= 0 ? -scores[id] : 0;
        return id >= 0;
    }

    int NormalId(ReadOnlySpan<char> piece) =>
        Vocab.SpanToId.TryGetValue(piece, out int id) && Vocab.Kinds[id] == PieceKind.Normal ? id : -1;
}

/// <summary>tokenizer.json BPE: merge the adjacent pair with the lowest rank in <c>model.merges</c>.</summary>
sealed class RankBpe : Bpe
{
    // The merges making each id, rank order: _firstMerge[id] .. _firstMerge[id + 1] index _leftLength/_rank.
    readonly int[] _firstMerge;
    readonly int[] _leftLength;
    readonly int[] _rank;

    public RankBpe(Vocabulary vocab, HfTokenizerJsonReader.Merge[] merges, bool byteFallback, int unkId, bool fuseUnk)
        : base(vocab, byteFallback, unkId, fuseUnk)
    {
        _firstMerge = new int[vocab.Pieces.Length + 1];
        foreach (var m in merges) _firstMerge[m.Result + 1]++;
        for (int id = 0; id < vocab.Pieces.Length; id++) _firstMerge[id + 1] += _firstMerge[id];
        var next = _firstMerge[..^1];
        _leftLength = new int[merges.Length];
        _rank = new int[merges.Length];
        for (int rank = 0; rank < merges.Length; rank++)
        {
            int slot = next[merges[rank].Result]++;
            (_leftLength[slot], _rank[slot]) = (merges[rank].LeftLength, rank);
        }
    }

    protected override int SymbolId(ReadOnlySpan<char> character) => Vocab.SpanToId.TryGetValue(character, out int id) ? id : -1;

    protected override bool TryMerge(ReadOnlySpan<char> merged, int leftId, int rightId, out int id, out float priority)
    {
        (id, priority) = (-1, 0);
        if (leftId < 0 || rightId < 0 || !Vocab.SpanToId.TryGetValue(merged, out int result)) return false;
        int leftLength = Vocab.Pieces[leftId].Length;
        for (int m = _firstMerge[result]; m < _firstMerge[result + 1]; m++)
        {
            if (_leftLength[m] != leftLength) continue;
            (id, priority) = (result, _rank[m]);
            return true;
        }
        return false;
    }
}
