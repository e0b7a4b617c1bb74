using PureVlm.Models;

namespace PureVlm.Runtime;

/// <summary>
/// Decodes one token for each of several sessions of one model in a single forward pass with m = number of sessions
/// rows, so every weight is read once per step instead of once per session (decode is bound by reading weights). Each
/// session keeps its own KV cache, positions and adapters; its logits row equals what <see cref="InferenceSession.Decode"/>
/// gives it alone, so greedy answers do not depend on what else is in the batch. Not thread-safe: one per decode loop.
/// </summary>
public sealed class BatchDecoder
{
    /// <summary>
    /// The most sessions per step. The kernels stream the weights once for up to 16 rows (their GEMV path); more rows
    /// would switch to the blocked GEMM, whose different summation order could change a greedy answer.
    /// </summary>
    public const int MaxBatch = 16;

    readonly LoadedModel _model;
    readonly ForwardContext _ctx = new();

    /// <summary>A decoder for sessions of <paramref name="model"/>.</summary>
    public BatchDecoder(LoadedModel model) => _model = model;

    /// <summary>
    /// Feeds <paramref name="tokens"/>[s] to <paramref name="sessions"/>[s] (each prefilled, without an observer) and returns
    /// logits [sessions, vocab], valid until the next call. If anything throws, every session holds what it held before.
    /// </summary>
    public ReadOnlySpan<float> Decode(IReadOnlyList<InferenceSession> sessions, ReadOnlySpan<int> tokens)
    {
        int m = sessions.Count;
        if (m == 0 || m > MaxBatch) throw new ArgumentOutOfRangeException(nameof(sessions), $"{m} sessions, expected 1 to {MaxBatch}");
        if (tokens.Length != m) throw new ArgumentException($"{tokens.Length} tokens for {m} sessions", nameof(tokens));
        var caches = new KvCache[m];
        var adapters = new ILinearAdapters?[m];
        for (int s = 0; s < m; s++)
        {
            var session = sessions[s];
            if (session.Model != _model) throw new ArgumentException($"session {s} belongs to another model", nameof(sessions));
            if (session.Context.Observer != null) throw new ArgumentException($"session {s} has an observer; observed sessions decode alone", nameof(sessions));
            caches[s] = session.Cache;
            adapters[s] = session.Context.Adapters;
        }
        if (caches.Distinct().Count() != m) throw new ArgumentException("a session appears twice in the batch", nameof(sessions));
        _ctx.Adapters = adapters.Any(a => a != null) ? new RowAdapters(adapters) : null;
        var lengths = caches.Select(c => c.Length).ToArray();
        int begun = 0;
        try
        {
            for (; begun < m; begun++) sessions[begun].BeginDecode();
            return _model.Modules.DecodeBatch(tokens, caches, _ctx);
        }
        catch
        {
            for (int s = 0; s < begun; s++) sessions[s].CancelDecode(lengths[s]);
            throw;
        }
    }

    /// <summary>Each row's own adapters: row s of every Linear gets sequence s's delta, computed as it would be alone.</summary>
    sealed class RowAdapters(ILinearAdapters?[] rows) : ILinearAdapters
    {
        public void Apply(Linear linear, ReadOnlySpan<float> x, int m, Span<float> y)
        {
            int inDim = linear.InFeatures, outDim = linear.OutFeatures;
            for (int s = 0; s < m; s++)
                rows[s]?.Apply(linear, x.Slice(s * inDim, inDim), 1, y.Slice(s * outDim, outDim));
        }
    }
}
