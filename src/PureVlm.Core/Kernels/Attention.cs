using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace PureVlm.Kernels;

/// <summary>
/// Which keys a query may see. Query i (absolute position <c>QueryStart + i</c> in the sequence) sees key j when
/// <c>j ≤ q</c> (causal) or both lie in the bidirectional prefix (<c>q, j &lt; PrefixLength</c>), and, with a
/// sliding window, only when <c>q − j &lt; Window</c>. Besides, q sees every key of its own bidirectional block
/// (<see cref="Blocks"/>), window or not.
/// </summary>
/// <param name="QueryStart">Sequence index of the first query row.</param>
/// <param name="PrefixLength">Tokens that attend bidirectionally (PaliGemma's image + prompt; int.MaxValue for an encoder).</param>
/// <param name="Window">Sliding-window size, or int.MaxValue for global attention.</param>
public readonly record struct AttentionMask(int QueryStart, int PrefixLength, int Window)
{
    /// <summary>Every query sees every key (a vision encoder).</summary>
    public static AttentionMask Full => new(0, int.MaxValue, int.MaxValue);

    /// <summary>
    /// Disjoint spans of the sequence whose tokens see each other, as <c>[start0, end0, start1, end1, …]</c> in increasing
    /// order (end exclusive), or null. A block is OR'ed over the causal and windowed rule rather than cut by the window,
    /// so a block longer than the window stays whole.
    /// </summary>
    public int[]? Blocks { get; init; }

    /// <summary>True when query row <paramref name="i"/> may attend to key <paramref name="j"/>.</summary>
    public bool Allows(int i, int j)
    {
        int q = QueryStart + i;
        bool visible = j <= q || (q < PrefixLength && j < PrefixLength);
        if (visible && (long)q - j < Window) return true;
        var (start, end) = BlockOf(q);
        return j >= start && j < end;
    }

    /// <summary>
    /// The keys query row <paramref name="i"/> sees form one interval [Start, End) (the same rule as <see cref="Allows"/>;
    /// not clipped to the number of keys). Both ends never decrease as i grows.
    /// </summary>
    public (int Start, int End) KeyRange(int i)
    {
        long q = (long)QueryStart + i;
        long start = Math.Max(0, q - Window + 1);
        long end = q < PrefixLength ? Math.Max(q + 1, PrefixLength) : q + 1;
        // The block holds q, so it overlaps [start, end) and the union is still one interval.
        var (blockStart, blockEnd) = BlockOf(q);
        if (blockEnd > blockStart) (start, end) = (Math.Min(start, blockStart), Math.Max(end, blockEnd));
        return ((int)Math.Min(start, int.MaxValue), (int)Math.Min(end, int.MaxValue));
    }

    /// <summary>The block holding position <paramref name="q"/>, or an empty one.</summary>
    (int Start, int End) BlockOf(long q)
    {
        if (Blocks is { } b)
            for (int k = 0; k + 1 < b.Length && b[k] <= q; k += 2)
                if (q < b[k + 1]) return (b[k], b[k + 1]);
        return (0, 0);
    }
}

/// <summary>Scaled dot-product attention with grouped KV heads, optional logit soft-capping and a mask.</summary>
/// <remarks>
/// Flash-style: each task takes one head and a tile of <see cref="QueryTile"/> queries and walks the visible key
/// tiles (<see cref="KeyTile"/> keys) with an online softmax, so no [heads, nq, nk] score matrix exists.
/// Key tiles outside every row's <see cref="AttentionMask.KeyRange"/> are skipped. Per-thread scratch is reused.
/// </remarks>
public static unsafe class Attention
{
    const int QueryTile = 64, KeyTile = 64;

    [ThreadStatic] static ThreadScratch? scratch;

    /// <summary>
    /// out[i, h, :] = Σ_j softmax_j(cap(scale · q[i, h]·k[j, g])) v[j, g] with g = h / (heads / kvHeads).
    /// q is [nq, heads, d], k and v are [nk, kvHeads, d], out is [nq, heads, d].
    /// When <paramref name="probs"/> is not empty it receives the probabilities as [heads, nq, nk].
    /// A query row that sees no key gets zeros.
    /// </summary>
    public static void Compute(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int nq, int nk, int heads, int kvHeads, int d, float scale, float softCap, AttentionMask mask, Span<float> probs = default)
    {
        if (nq < 0 || nk < 0 || heads <= 0 || kvHeads <= 0 || d <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"attention: invalid sizes nq={nq} nk={nk} heads={heads} kvHeads={kvHeads} d={d} (heads must be a multiple of kvHeads)");
        Check(q.Length, (long)nq * heads * d, nameof(q));
        Check(k.Length, (long)nk * kvHeads * d, nameof(k));
        Check(v.Length, (long)nk * kvHeads * d, nameof(v));
        Check(output.Length, (long)nq * heads * d, nameof(output));
        if (!probs.IsEmpty) Check(probs.Length, (long)heads * nq * nk, nameof(probs));
        if (nq == 0) return;
        fixed (float* pq = q, pk = k, pv = v, po = output, pp = probs)
        {
            var shape = new Shape(pq, pk, pv, po, nq, nk, heads, kvHeads, d, scale, softCap, mask);
            if (probs.IsEmpty)
            {
                var job = new FlashJob(shape);
                WorkerPool.Run(ref job, heads * ((nq + QueryTile - 1) / QueryTile));
            }
            else
            {
                var job = new ProbsJob(shape, pp);
                WorkerPool.Run(ref job, heads * nq);
            }
        }
    }

    static void Check(int length, long expected, string name)
    {
        if (length < expected) throw new ArgumentException($"attention: {name} has {length} elements, expected {expected}", name);
    }

    readonly struct Shape(float* q, float* k, float* v, float* o, int nq, int nk, int heads, int kvHeads, int d, float scale, float softCap, AttentionMask mask)
    {
        public readonly float* Q = q, K = k, V = v, O = o;
        public readonly int Nq = nq, Nk = nk, Heads = heads, KvHeads = kvHeads, D = d;
        public readonly float Scale = scale, SoftCap = softCap;
        public readonly AttentionMask Mask = mask;

        /// <summary>Query row i of head h: d floats, rows Heads·D apart.</summary>
        public ReadOnlySpan<float> QueryRows(int i, int h, int rows) => new(Q + ((long)i * Heads + h) * D, (rows - 1) * Heads * D + D);
        /// <summary>Key (or value) rows [j, j + rows) of kv head g, KvHeads·D apart.</summary>
        public ReadOnlySpan<float> KvRows(float* kv, int j, int g, int rows) => new(kv + ((long)j * KvHeads + g) * D, (rows - 1) * KvHeads * D + D);
        /// <summary>Visible keys of query row i, clipped to [0, Nk).</summary>
        public (int Start, int End) Keys(int i)
        {
            var (s, e) = Mask.KeyRange(i);
            return (Math.Min(s, Nk), Math.Min(e, Nk));
        }

        /// <summary>Scores of keys [j0, j0 + s.Length) for one query row: scale, soft-cap (before the mask, as HF), mask to −∞.</summary>
        public void Transform(Span<float> s, int j0, (int Start, int End) keys)
        {
            TensorPrimitives.Multiply(s, Scale, s);
            if (SoftCap > 0)
            {
                TensorPrimitives.Divide(s, SoftCap, s);
                ElementWise.Tanh(s);
                TensorPrimitives.Multiply(s, SoftCap, s);
            }
            int visibleFrom = Math.Clamp(keys.Start - j0, 0, s.Length), visibleTo = Math.Clamp(keys.End - j0, visibleFrom, s.Length);
            s[..visibleFrom].Fill(float.NegativeInfinity);
            s[visibleTo..].Fill(float.NegativeInfinity);
        }
    }

    static float* Scratch(int floats) => (scratch ??= new()).Get(floats);

    /// <summary>One head × one query tile, online softmax over the visible key tiles.</summary>
    readonly struct FlashJob(Shape a) : IParallelJob
    {
        public void Run(int task)
        {
            int qTiles = (a.Nq + QueryTile - 1) / QueryTile;
            int h = task / qTiles, i0 = task % qTiles * QueryTile, rows = Math.Min(QueryTile, a.Nq - i0);
            int g = h / (a.Heads / a.KvHeads), d = a.D;
            float* s = Scratch(QueryTile * KeyTile + QueryTile * d + 2 * QueryTile);
            float* acc = s + QueryTile * KeyTile, rowMax = acc + QueryTile * d, rowSum = rowMax + QueryTile;
            new Span<float>(acc, rows * d).Clear();
            new Span<float>(rowMax, rows).Fill(float.NegativeInfinity);
            new Span<float>(rowSum, rows).Clear();
            int lo = a.Keys(i0).Start, hi = a.Keys(i0 + rows - 1).End;
            for (int j0 = lo; j0 < hi; j0 += KeyTile)
            {
                int cols = Math.Min(KeyTile, hi - j0);
                var scores = new Span<float>(s, QueryTile * KeyTile);
                // scores[r, c] = q[i0 + r, h] · k[j0 + c, g]
                Gemm.MatMulTransB(a.QueryRows(i0, h, rows), a.Heads * d, a.KvRows(a.K, j0, g, cols), a.KvHeads * d, scores, KeyTile, rows, cols, d);
                for (int r = 0; r < rows; r++)
                {
                    var row = scores.Slice(r * KeyTile, cols);
                    a.Transform(row, j0, a.Keys(i0 + r));
                    float tileMax = TensorPrimitives.Max(row);
                    if (float.IsNegativeInfinity(tileMax)) { row.Clear(); continue; }
                    float newMax = Math.Max(rowMax[r], tileMax);
                    float correction = MathF.Exp(rowMax[r] - newMax);
                    TensorPrimitives.Subtract(row, newMax, row);
                    TensorPrimitives.Exp(row, row);
                    rowSum[r] = rowSum[r] * correction + TensorPrimitives.Sum(row);
                    if (correction != 1f) TensorPrimitives.Multiply(new Span<float>(acc + r * d, d), correction, new Span<float>(acc + r * d, d));
                    rowMax[r] = newMax;
                }
                // acc[r, :] += p[r, c] · v[j0 + c, g]
                Gemm.MatMulAccumulate(scores, KeyTile, a.KvRows(a.V, j0, g, cols), a.KvHeads * d, new Span<float>(acc, rows * d), d, rows, d, cols);
            }
            for (int r = 0; r < rows; r++)
            {
                var o = new Span<float>(a.O + ((long)(i0 + r) * a.Heads + h) * d, d);
                if (rowSum[r] > 0) TensorPrimitives.Divide(new ReadOnlySpan<float>(acc + r * d, d), rowSum[r], o);
                else o.Clear();
            }
        }
    }

    /// <summary>One head × one query row, materialising that row's probabilities into probs[h, i, :].</summary>
    readonly struct ProbsJob(Shape a, float* probs) : IParallelJob
    {
        public void Run(int task)
        {
            int h = task / a.Nq, i = task % a.Nq, g = h / (a.Heads / a.KvHeads), d = a.D;
            var row = new Span<float>(probs + ((long)h * a.Nq + i) * a.Nk, a.Nk);
            var o = new Span<float>(a.O + ((long)i * a.Heads + h) * d, d);
            o.Clear();
            var keys = a.Keys(i);
            if (keys.Start >= keys.End || a.Nk == 0) { row.Clear(); return; }
            Gemm.MatMulTransB(a.QueryRows(i, h, 1), d, a.KvRows(a.K, 0, g, a.Nk), a.KvHeads * d, row, a.Nk, 1, a.Nk, d);
            a.Transform(row, 0, keys);
            TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
            TensorPrimitives.Exp(row, row);
            TensorPrimitives.Divide(row, TensorPrimitives.Sum(row), row);
            Gemm.MatMulAccumulate(row, a.Nk, a.KvRows(a.V, 0, g, a.Nk), a.KvHeads * d, o, d, 1, d, a.Nk);
        }
    }
}
