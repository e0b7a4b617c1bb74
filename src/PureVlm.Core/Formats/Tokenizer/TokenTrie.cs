namespace PureVlm.Tokenization;

/// <summary>
/// The strings that are cut out of the text before BPE (SentencePiece user-defined pieces, or tokenizer.json
/// added tokens), matched leftmost-longest: at each position the longest string that starts there wins.
/// </summary>
sealed class TokenTrie
{
    // Edge key: (node << 16) | UTF-16 unit.
    readonly Dictionary<long, int> _edges = new();
    readonly List<int> _terminalId = [-1];

    public void Add(string token, int id)
    {
        int node = 0;
        foreach (char c in token)
        {
            long key = ((long)node << 16) | c;
            if (!_edges.TryGetValue(key, out int next))
            {
                next = _terminalId.Count;
                _terminalId.Add(-1);
                _edges.Add(key, next);
            }
            node = next;
        }
        _terminalId[node] = id;
    }

    /// <summary>Length and id of the longest token starting at <paramref name="text"/>[0], or (0, -1).</summary>
    public (int Length, int Id) LongestMatch(ReadOnlySpan<char> text)
    {
        int node = 0, bestLength = 0, bestId = -1;
        for (int i = 0; i < text.Length && _edges.TryGetValue(((long)node << 16) | text[i], out node); i++)
        {
            int id = _terminalId[node];
            if (id >= 0) (bestLength, bestId) = (i + 1, id);
        }
        return (bestLength, bestId);
    }
}
