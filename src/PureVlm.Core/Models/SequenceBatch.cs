namespace PureVlm.Models;

/// <summary>
/// Which rows of a decoder forward pass belong to which sequence: sequence s owns rows [<see cref="Start"/>(s),
/// <see cref="Start"/>(s) + <see cref="Rows"/>(s)) and has its own KV cache. One sequence is a prefill or one request's
/// decode step; several are a batched decode step (one row each). Every Linear runs once over all the rows, so each weight
/// is read once per step whatever the number of sequences; attention runs per sequence over its own cache.
/// </summary>
public sealed class SequenceBatch
{
    readonly KvCache[] _caches;
    readonly int[] _starts; // [Count + 1]
    readonly Kernels.AttentionMask[] _masks;

    /// <summary>One sequence of <paramref name="rows"/> new tokens.</summary>
    public SequenceBatch(KvCache cache, int rows)
    {
        _caches = [cache];
        _starts = [0, rows];
        _masks = new Kernels.AttentionMask[1];
    }

    /// <summary>One new token for each of <paramref name="caches"/> (a batched decode step), in order.</summary>
    public SequenceBatch(IReadOnlyList<KvCache> caches)
    {
        if (caches.Count == 0) throw new ArgumentException("a batch needs at least one sequence", nameof(caches));
        _caches = caches.ToArray();
        _starts = Enumerable.Range(0, caches.Count + 1).ToArray();
        _masks = new Kernels.AttentionMask[caches.Count];
    }

    /// <summary>Number of sequences.</summary>
    public int Count => _caches.Length;
    /// <summary>Rows of all sequences together (the m of every Linear).</summary>
    public int TotalRows => _starts[^1];
    /// <summary>Sequence <paramref name="s"/>'s KV cache.</summary>
    public KvCache Cache(int s) => _caches[s];
    /// <summary>The first row of sequence <paramref name="s"/>.</summary>
    public int Start(int s) => _starts[s];
    /// <summary>The number of new rows of sequence <paramref name="s"/>.</summary>
    public int Rows(int s) => _starts[s + 1] - _starts[s];

    /// <summary>
    /// Sequence <paramref name="s"/>'s mask for the pass under way (its cache's <see cref="KvCache.Mask"/> as the pass began:
    /// prefix, bidirectional blocks, queries after the cached tokens), before any layer's sliding window.
    /// </summary>
    public Kernels.AttentionMask Mask(int s) => _masks[s];

    /// <summary>Takes every sequence's mask from its cache before the first layer appends (<see cref="DecoderModel"/> calls it).</summary>
    internal void BeginPass()
    {
        for (int s = 0; s < _caches.Length; s++) _masks[s] = _caches[s].Mask;
    }
}
