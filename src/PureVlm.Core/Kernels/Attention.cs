using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

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
/// Flash-style: K and V are packed once per call into the register tiles' panel layout (keys as columns for QKᵀ,
/// value dimensions as columns for P·V), then each task takes one head and a tile of <see cref="QueryTile"/> queries
/// and walks the visible key tiles (64 or 128 keys, <see cref="KeyTile"/>) with an online softmax, so no [heads, nq, nk] score
/// matrix exists and no tile is packed twice. Key tiles outside every row's <see cref="AttentionMask.KeyRange"/> are
/// skipped. The packed copy and the per-thread scratch are reused across calls.
/// </remarks>
public static unsafe class Attention
{
    const int QueryTile = 64;

    /// <summary>
    /// Keys per tile: 128 for head dims up to 128 (SigLIP's 72: the softmax's per-row work and the P·V tiles' set-up
    /// are spread over twice the keys, 141 → 151 GFLOP/s at 896 px), 64 above (Gemma's 256: a 64×128 score tile beside
    /// the 64×256 accumulator no longer fits L1, 168 → 146).
    /// </summary>
    static int KeyTile(int d) => d <= 128 ? 128 : 64;
    // Up to this many query rows (decode steps) read K and V in place: packing the whole cache for one row cost more
    // than the row's own work (paligemma2-3b-448 decoded 4.1 tokens/s against 5.5 at 224 px).
    const int FewQueries = 4;

    [ThreadStatic] static ThreadScratch? scratch;
    [ThreadStatic] static ThreadScratch? packed;

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
        KernelProfile.AddFlops(4.0 * nq * nk * d * heads);
        using var time = KernelProfile.Time(KernelKind.Attention);
        fixed (float* pq = q, pk = k, pv = v, po = output, pp = probs)
        {
            var shape = new Shape(pq, pk, pv, po, nq, nk, heads, kvHeads, d, scale, softCap, mask);
            if (probs.IsEmpty && nq <= FewQueries)
            {
                var job = new FewQueriesJob(shape);
                WorkerPool.Run(ref job, kvHeads * nq);
            }
            else if (probs.IsEmpty)
            {
                var layout = new PackedKv(KernelSettings.Isa, nk, kvHeads, d);
                // Owned by the calling thread: concurrent callers (several sessions) each pack into their own copy.
                var pack = new PackJob(shape, layout, (packed ??= new()).Get(layout.Floats));
                WorkerPool.Run(ref pack, 2 * kvHeads);
                var job = new FlashJob(shape, pack.Layout, pack.Destination);
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

    static float* Scratch(nint floats) => (scratch ??= new()).Get(floats);

    /// <summary>
    /// Where each kv head's K and V live once packed: K as panels of <see cref="Nr"/> keys, each [d][Nr] (keys are the
    /// columns of QKᵀ); V as panels of <see cref="Nr"/> value dimensions, each [keys][Nr] (the columns of P·V). Padding
    /// keys and dimensions are zero.
    /// </summary>
    readonly struct PackedKv(Isa isa, int nk, int kvHeads, int d)
    {
        public readonly Isa Isa = isa;
        public readonly int Nr = isa == Isa.Avx512 ? 32 : 16;
        public int Mr => Isa switch { Isa.Avx512 => 8, Isa.Avx2 => 6, _ => 4 };
        public int PaddedKeys => (nk + Nr - 1) / Nr * Nr;
        /// <summary>
        /// Width of the value panel starting at dimension <paramref name="c0"/> (a multiple of <see cref="Nr"/>): Nr, or 16
        /// for a last panel of at most 16 dimensions on Vector512 (<see cref="TileKernels.Run512x16"/>).
        /// </summary>
        public int ValuePanelWidth(int c0) => Nr == 32 && d - c0 <= 16 ? 16 : Nr;
        public int PaddedDims => d / Nr * Nr + (d % Nr == 0 ? 0 : ValuePanelWidth(d / Nr * Nr));
        public nint KeysPerHead => (nint)PaddedKeys * d;
        public nint ValuesPerHead => (nint)PaddedKeys * PaddedDims;
        public nint Floats => kvHeads * (KeysPerHead + ValuesPerHead);
        public float* Keys(float* at, int g) => at + g * KeysPerHead;
        public float* Values(float* at, int g) => at + kvHeads * KeysPerHead + g * ValuesPerHead;

        public void RunTile(float* a, nint lda, float* b, int kc, float* c, nint ldc, int rows, int cols, bool overwrite, int panelWidth)
        {
            var t = new Tile(a, lda, b, kc, c, ldc, cols, overwrite, null);
            if (Isa == Isa.Avx512) { if (panelWidth == 16) TileKernels.Run512x16(t, rows); else TileKernels.Run512(t, rows); }
            else if (Isa == Isa.Avx2) TileKernels.Run256(t, rows);
            else TileKernels.RunScalar(t, rows);
        }
    }

    /// <summary>Task 2g packs kv head g's keys, task 2g + 1 its values.</summary>
    readonly struct PackJob(Shape a, PackedKv layout, float* destination) : IParallelJob
    {
        public readonly PackedKv Layout = layout;
        public readonly float* Destination = destination;

        public void Run(int task)
        {
            int g = task / 2, d = a.D, nr = Layout.Nr, stride = a.KvHeads * d;
            if (task % 2 == 0)
            {
                float* dst = Layout.Keys(Destination, g);
                for (int j = 0; j < Layout.PaddedKeys; j++)
                {
                    float* panel = dst + (nint)(j / nr) * nr * d + j % nr;
                    float* key = a.K + ((nint)j * a.KvHeads + g) * d;
                    for (int p = 0; p < d; p++) panel[p * nr] = j < a.Nk ? key[p] : 0;
                }
            }
            else
            {
                float* dst = Layout.Values(Destination, g);
                int keys = Layout.PaddedKeys;
                for (int c0 = 0; c0 < d; c0 += nr)
                {
                    int panelWidth = Layout.ValuePanelWidth(c0), width = Math.Min(panelWidth, d - c0);
                    float* panel = dst + (nint)c0 * keys;
                    for (int j = 0; j < keys; j++)
                    {
                        var row = new Span<float>(panel + (nint)j * panelWidth, panelWidth);
                        if (j < a.Nk) new ReadOnlySpan<float>(a.V + (nint)j * stride + g * d + c0, width).CopyTo(row);
                        row[(j < a.Nk ? width : 0)..].Clear();
                    }
                }
            }
        }
    }

    /// <summary>One head × one query tile, online softmax over the visible key tiles.</summary>
    readonly struct FlashJob(Shape a, PackedKv layout, float* packedKv) : IParallelJob
    {
        public void Run(int task)
        {
            int qTiles = (a.Nq + QueryTile - 1) / QueryTile;
            int h = task / qTiles, i0 = task % qTiles * QueryTile, rows = Math.Min(QueryTile, a.Nq - i0);
            int g = h / (a.Heads / a.KvHeads), d = a.D, nr = layout.Nr, mr = layout.Mr;
            float* keys = layout.Keys(packedKv, g), values = layout.Values(packedKv, g);
            int keyTile = KeyTile(d);
            float* s = Scratch(QueryTile * keyTile + QueryTile * d + 2 * QueryTile);
            float* acc = s + QueryTile * keyTile, rowMax = acc + QueryTile * d, rowSum = rowMax + QueryTile;
            new Span<float>(acc, rows * d).Clear();
            new Span<float>(rowMax, rows).Fill(float.NegativeInfinity);
            new Span<float>(rowSum, rows).Clear();
            float* query = a.Q + ((nint)i0 * a.Heads + h) * d;
            nint ldq = (nint)a.Heads * d;
            // Tiles start on a panel boundary; keys before the first visible one are masked like any other.
            int lo = a.Keys(i0).Start / nr * nr, hi = a.Keys(i0 + rows - 1).End;
            for (int j0 = lo; j0 < hi; j0 += keyTile)
            {
                int cols = Math.Min(keyTile, hi - j0);
                // scores[r, c] = q[i0 + r, h] · k[j0 + c, g]
                for (int r = 0; r < rows; r += mr)
                    for (int c = 0; c < cols; c += nr)
                        layout.RunTile(query + r * ldq, ldq, keys + (nint)(j0 + c) * d, d, s + r * keyTile + c, keyTile,
                            Math.Min(mr, rows - r), Math.Min(nr, cols - c), overwrite: true, nr);
                for (int r = 0; r < rows; r++)
                {
                    float* row = s + r * keyTile;
                    var (from, to) = a.Keys(i0 + r);
                    float tileMax = layout.Isa == Isa.Avx512
                        ? TransformMax512(row, cols, from - j0, to - j0, a.Scale, a.SoftCap)
                        : TransformMax(a, new Span<float>(row, cols), j0, (from, to));
                    if (float.IsNegativeInfinity(tileMax)) { new Span<float>(row, cols).Clear(); continue; }
                    float newMax = Math.Max(rowMax[r], tileMax);
                    float correction = MathF.Exp(rowMax[r] - newMax);
                    float tileSum = layout.Isa == Isa.Avx512 ? ExpSum512(row, cols, newMax) : ExpSum(new Span<float>(row, cols), newMax);
                    rowSum[r] = rowSum[r] * correction + tileSum;
                    if (correction != 1f) TensorPrimitives.Multiply(new Span<float>(acc + r * d, d), correction, new Span<float>(acc + r * d, d));
                    rowMax[r] = newMax;
                }
                // acc[r, :] += p[r, c] · v[j0 + c, g]
                for (int r = 0; r < rows; r += mr)
                    for (int c0 = 0; c0 < d; c0 += nr)
                    {
                        int width = layout.ValuePanelWidth(c0);
                        layout.RunTile(s + r * keyTile, keyTile, values + (nint)c0 * layout.PaddedKeys + (nint)j0 * width, cols, acc + r * d + c0, d,
                            Math.Min(mr, rows - r), Math.Min(width, d - c0), overwrite: false, width);
                    }
            }
            for (int r = 0; r < rows; r++)
            {
                var o = new Span<float>(a.O + ((long)(i0 + r) * a.Heads + h) * d, d);
                if (rowSum[r] > 0) TensorPrimitives.Divide(new ReadOnlySpan<float>(acc + r * d, d), rowSum[r], o);
                else o.Clear();
            }
        }
    }

    static float TransformMax(in Shape a, Span<float> row, int j0, (int Start, int End) keys)
    {
        a.Transform(row, j0, keys);
        return TensorPrimitives.Max(row);
    }

    static float ExpSum(Span<float> row, float max)
    {
        TensorPrimitives.Subtract(row, max, row);
        TensorPrimitives.Exp(row, row);
        return TensorPrimitives.Sum(row);
    }

    /// <summary>
    /// <see cref="Shape.Transform"/> and the maximum in one pass of whole vectors over a score row of a tile (row stride
    /// <see cref="KeyTile"/>(d) floats): lanes outside [from, to) — masked keys and the columns past <paramref name="cols"/> —
    /// become −∞ whatever the buffer held there.
    /// </summary>
    static float TransformMax512(float* row, int cols, int from, int to, float scale, float softCap)
    {
        var max = Vector512.Create(float.NegativeInfinity);
        var lane = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        var lo = Vector512.Create(from);
        var hi = Vector512.Create(Math.Min(to, cols));
        for (int c = 0; c < cols; c += 16)
        {
            var v = Vector512.Load(row + c) * scale;
            if (softCap > 0) v = ElementWise.Tanh(v / softCap) * softCap;
            var index = lane + Vector512.Create(c);
            var visible = Vector512.GreaterThanOrEqual(index, lo) & Vector512.LessThan(index, hi);
            v = Vector512.ConditionalSelect(visible.AsSingle(), v, Vector512.Create(float.NegativeInfinity));
            v.Store(row + c);
            max = Vector512.Max(max, v);
        }
        return HorizontalMax(max);
    }

    static float HorizontalMax(Vector512<float> v)
    {
        var half = Vector256.Max(v.GetLower(), v.GetUpper());
        var quarter = Vector128.Max(half.GetLower(), half.GetUpper());
        return MathF.Max(MathF.Max(quarter[0], quarter[1]), MathF.Max(quarter[2], quarter[3]));
    }

    /// <summary>row = exp(row − max) over whole vectors (the lanes past <paramref name="cols"/> are −∞ and become 0); returns the sum.</summary>
    static float ExpSum512(float* row, int cols, float max)
    {
        var sum = Vector512<float>.Zero;
        var m = Vector512.Create(max);
        for (int c = 0; c < cols; c += 16)
        {
            var e = ElementWise.ExpNonPositive(Vector512.Load(row + c) - m);
            e.Store(row + c);
            sum += e;
        }
        return Vector512.Sum(sum);
    }

    /// <summary>
    /// One KV head × one query row: the query heads that share the KV head (GQA) go together, so each key and value row
    /// is read from the cache once for all of them; K and V are read in place (no packing, no probabilities kept).
    /// </summary>
    readonly struct FewQueriesJob(Shape a) : IParallelJob
    {
        public void Run(int task)
        {
            int g = task / a.Nq, i = task % a.Nq, d = a.D, group = a.Heads / a.KvHeads, h0 = g * group;
            var o = new Span<float>(a.O + ((long)i * a.Heads + h0) * d, group * d);
            var (from, to) = a.Keys(i);
            int n = to - from;
            if (n <= 0) { o.Clear(); return; }
            float* scores = Scratch((nint)group * n);
            // scores[t, j] = q[i, h0 + t] · k[from + j, g]: a GEMV over the key rows with one row per head of the group
            // (inline: this already runs in a job).
            Gemm.MatMulTransB(new ReadOnlySpan<float>(a.Q + ((long)i * a.Heads + h0) * d, group * d), d, a.KvRows(a.K, from, g, n), a.KvHeads * d,
                new Span<float>(scores, group * n), n, group, n, d);
            for (int t = 0; t < group; t++)
            {
                var row = new Span<float>(scores + (nint)t * n, n);
                a.Transform(row, from, (from, to));
                TensorPrimitives.Subtract(row, TensorPrimitives.Max(row), row);
                TensorPrimitives.Exp(row, row);
            }
            WeightedSum(scores, n, group, a.V + ((long)from * a.KvHeads + g) * d, (nint)a.KvHeads * d, n, d, a.O + ((long)i * a.Heads + h0) * d);
            for (int t = 0; t < group; t++)
                TensorPrimitives.Divide(o.Slice(t * d, d), TensorPrimitives.Sum(new ReadOnlySpan<float>(scores + (nint)t * n, n)), o.Slice(t * d, d));
        }
    }

    /// <summary>
    /// o[t, :] = Σ_j p[t, j] · v[j, :] for t &lt; heads (p rows <paramref name="n"/> apart, v rows <paramref name="vStride"/>
    /// apart, o rows d apart): the decode step's P·V. On Vector512 each block of up to 64 columns is summed over all keys
    /// for up to 4 heads at once in registers, so V is read once, 256 contiguous bytes of a key at a time (16-column
    /// blocks read one line per key, 4 KB apart, and took most of a decode step's attention).
    /// </summary>
    static void WeightedSum(float* p, nint pStride, int heads, float* v, nint vStride, int n, int d, float* o)
    {
        int c0 = 0;
        if (KernelSettings.Isa == Isa.Avx512)
        {
            for (int c = 0; c + 16 <= d; c += 64)
                for (int t = 0; t < heads; t += 4)
                    WeightedSumBlock(p + t * pStride, pStride, Math.Min(4, heads - t), v + c, vStride, n, Math.Min(4, (d - c) / 16), o + t * d + c, d);
            c0 = d / 16 * 16;
        }
        // Columns left over (and other paths): key by key.
        for (int t = 0; t < heads; t++) new Span<float>(o + t * d + c0, d - c0).Clear();
        if (c0 == d) return;
        for (int j = 0; j < n; j++)
        {
            var x = new ReadOnlySpan<float>(v + j * vStride + c0, d - c0);
            for (int t = 0; t < heads; t++)
            {
                var ot = new Span<float>(o + t * d + c0, d - c0);
                TensorPrimitives.MultiplyAdd(x, p[t * pStride + j], ot, ot);
            }
        }
    }

    /// <summary>o[t, 0, 16·vectors) = Σ_j p[t, j] · v[j, 0, 16·vectors) for t &lt; heads ≤ 4, vectors ≤ 4 (o rows d apart).</summary>
    static void WeightedSumBlock(float* p, nint pStride, int heads, float* v, nint vStride, int n, int vectors, float* o, int d)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a30 = default, a31 = default, a32 = default, a33 = default;
        float* p0 = p, p1 = p + pStride, p2 = p1 + pStride, p3 = p2 + pStride;
        for (int j = 0; j < n; j++, v += vStride)
        {
            var x0 = Vector512.Load(v);
            var x1 = vectors > 1 ? Vector512.Load(v + 16) : default;
            var x2 = vectors > 2 ? Vector512.Load(v + 32) : default;
            var x3 = vectors > 3 ? Vector512.Load(v + 48) : default;
            var w = Vector512.Create(p0[j]);
            a00 = Vector512.FusedMultiplyAdd(w, x0, a00); a01 = Vector512.FusedMultiplyAdd(w, x1, a01);
            a02 = Vector512.FusedMultiplyAdd(w, x2, a02); a03 = Vector512.FusedMultiplyAdd(w, x3, a03);
            if (heads < 2) continue;
            w = Vector512.Create(p1[j]);
            a10 = Vector512.FusedMultiplyAdd(w, x0, a10); a11 = Vector512.FusedMultiplyAdd(w, x1, a11);
            a12 = Vector512.FusedMultiplyAdd(w, x2, a12); a13 = Vector512.FusedMultiplyAdd(w, x3, a13);
            if (heads < 3) continue;
            w = Vector512.Create(p2[j]);
            a20 = Vector512.FusedMultiplyAdd(w, x0, a20); a21 = Vector512.FusedMultiplyAdd(w, x1, a21);
            a22 = Vector512.FusedMultiplyAdd(w, x2, a22); a23 = Vector512.FusedMultiplyAdd(w, x3, a23);
            if (heads < 4) continue;
            w = Vector512.Create(p3[j]);
            a30 = Vector512.FusedMultiplyAdd(w, x0, a30); a31 = Vector512.FusedMultiplyAdd(w, x1, a31);
            a32 = Vector512.FusedMultiplyAdd(w, x2, a32); a33 = Vector512.FusedMultiplyAdd(w, x3, a33);
        }
        Store(o, a00, a01, a02, a03);
        if (heads > 1) Store(o + d, a10, a11, a12, a13);
        if (heads > 2) Store(o + 2 * d, a20, a21, a22, a23);
        if (heads > 3) Store(o + 3 * d, a30, a31, a32, a33);

        void Store(float* row, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
        {
            s0.Store(row);
            if (vectors > 1) s1.Store(row + 16);
            if (vectors > 2) s2.Store(row + 32);
            if (vectors > 3) s3.Store(row + 48);
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
