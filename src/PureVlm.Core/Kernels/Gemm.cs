using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using PureVlm.Tensors;

namespace PureVlm.Kernels;

/// <summary>
/// Matrix products. <see cref="Linear"/> is the one every Linear layer uses:
/// <c>y[m, n] = x[m, k] · W[n, k]ᵀ (+ b[n])</c>, with W as HF stores it ([out, in]) in F32, BF16 or F16.
/// </summary>
/// <remarks>
/// One engine serves all three products. For m > 16 it is a cache-blocked GEMM: per task (a block of up to 128
/// output columns) and per k-block of <see cref="KC"/>, the B operand is packed into a per-thread buffer as
/// k-major panels of NR columns (BF16/F16 widened into that small buffer only), then a broadcast-FMA register tile
/// (8×32 on Vector512, 6×16 on Vector256) runs over the rows of x read in place. For m ≤ 16 (decode, short prompts) a GEMV path
/// streams each weight row once, dotting 4 rows at a time along k. Work is split over <see cref="WorkerPool"/>.
/// </remarks>
public static unsafe class Gemm
{
    const int KC = 512;
    const int MaxPanelsPerTask = 4;
    const int MaxNR = 32;
    // Up to 16 rows, streaming W once without packing beats the packed kernel (m = 8, 9216×2304 BF16: 16 ms -> 8 ms).
    const int GemvMaxRows = 16;

    [ThreadStatic] static ThreadScratch? packScratch;
    [ThreadStatic] static ThreadScratch? pairScratch;

    /// <summary><c>y = x · Wᵀ + bias</c>. x is [m, k] row-major, y is [m, n]; bias may be empty.</summary>
    public static void Linear(ReadOnlySpan<float> x, int m, StoredTensor w, ReadOnlySpan<float> bias, Span<float> y)
    {
        if (w.Rank != 2) throw new ArgumentException($"{w.Name}: Linear weight must be 2-D, got {w.ShapeString}");
        if (w.DType is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"{w.Name}: Linear weight must be F32, BF16 or F16, got {w.DType.Name()}");
        if (w.Shape[0] > int.MaxValue || w.Shape[1] > int.MaxValue) throw new ArgumentException($"{w.Name}: shape {w.ShapeString} too large");
        int n = (int)w.Shape[0], k = (int)w.Shape[1];
        if (w.ByteLength < (long)n * k * w.DType.Size()) throw new ArgumentException($"{w.Name}: {w.ByteLength} bytes, expected {(long)n * k * w.DType.Size()} for {w.ShapeString}");
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), $"{w.Name}: m = {m}");
        if (x.Length < (long)m * k) throw new ArgumentException($"{w.Name}: input has {x.Length} elements, expected {m}×{k}");
        if (y.Length < (long)m * n) throw new ArgumentException($"{w.Name}: output has {y.Length} elements, expected {m}×{n}");
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"{w.Name}: bias has {bias.Length} elements, expected {n}");
        KernelProfile.AddFlops(2.0 * m * n * k);
        using var time = KernelProfile.Time(KernelKind.Linear);
        fixed (float* px = x, pb = bias, py = y)
        {
            var job = new Job(px, k, m, k, w.Pointer, k, true, n, bias.IsEmpty ? null : pb, py, n, false);
            switch (w.DType)
            {
                case DType.BF16: job.Execute<Bf16Format>(); break;
                case DType.F16: job.Execute<F16Format>(); break;
                default: job.Execute<F32Format>(); break;
            }
        }
    }

    /// <summary>
    /// <c>c[i, j] = Σ_p a[i, p] · b[j, p]</c> over float spans with row strides (lda, ldb, ldc), as attention's QKᵀ needs.
    /// </summary>
    public static void MatMulTransB(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, int m, int n, int k)
    {
        CheckStrided(a.Length, lda, m, k, nameof(a));
        CheckStrided(b.Length, ldb, n, k, nameof(b));
        CheckStrided(c.Length, ldc, m, n, nameof(c));
        fixed (float* pa = a, pb = b, pc = c)
            new Job(pa, lda, m, k, (byte*)pb, ldb, true, n, null, pc, ldc, false).Execute<F32Format>();
    }

    /// <summary>
    /// <c>c[i, j] += Σ_p a[i, p] · b[p, j]</c> over float spans with row strides, as attention's P·V needs.
    /// </summary>
    public static void MatMulAccumulate(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, int m, int n, int k)
    {
        CheckStrided(a.Length, lda, m, k, nameof(a));
        CheckStrided(b.Length, ldb, k, n, nameof(b));
        CheckStrided(c.Length, ldc, m, n, nameof(c));
        fixed (float* pa = a, pb = b, pc = c)
            new Job(pa, lda, m, k, (byte*)pb, ldb, false, n, null, pc, ldc, true).Execute<F32Format>();
    }

    static void CheckStrided(int length, int ld, int rows, int cols, string name)
    {
        if (rows < 0 || cols < 0) throw new ArgumentOutOfRangeException(name, $"{name}: negative size {rows}×{cols}");
        if (rows > 0 && cols > 0 && (ld < cols || length < (long)(rows - 1) * ld + cols))
            throw new ArgumentException($"{name}: {length} elements with row stride {ld} cannot hold {rows}×{cols}", name);
    }

    /// <summary>
    /// One product <c>c (+)= a · op(b) (+ bias)</c>: a is [m, k] (stride lda); b is [n, k] when
    /// <see cref="bRowsAreColumns"/> (a Linear weight, QKᵀ) or [k, n] otherwise (PV), stride ldb, in dtype TW.
    /// </summary>
    readonly struct Job(float* a, nint lda, int m, int k, byte* b, nint ldb, bool bRowsAreColumns, int n,
        float* bias, float* c, nint ldc, bool accumulate)
    {
        readonly float* a = a, bias = bias, c = c;
        readonly byte* b = b;
        readonly nint lda = lda, ldb = ldb, ldc = ldc;
        readonly int m = m, k = k, n = n;
        readonly bool bRowsAreColumns = bRowsAreColumns, accumulate = accumulate;

        public void Execute<TW>() where TW : struct, IWeightFormat
        {
            if (m == 0 || n == 0) return;
            if (k == 0) { if (!accumulate) for (int i = 0; i < m; i++) StoreRow(c + i * ldc, n, bias); return; }
            var isa = KernelSettings.Isa;
            int threads = KernelSettings.Threads;
            if (bRowsAreColumns && (isa == Isa.Scalar || m <= GemvMaxRows))
            {
                // About 8 tasks per thread, each whole 16-row groups (the BF16 decode kernel's).
                int rowsPerTask = Math.Max(16, (n + 8 * threads - 1) / (8 * threads) + 15 & ~15);
                float* pairs = typeof(TW) == typeof(Bf16Format) && isa == Isa.Avx512 ? SplitEvenOdd(a, lda, m, k) : null;
                var job = new RowsJob<TW>(this, isa, rowsPerTask, pairs);
                WorkerPool.Run(ref job, (n + rowsPerTask - 1) / rowsPerTask);
            }
            else
            {
                int nr = isa == Isa.Avx512 ? 32 : 16;
                int panels = (n + nr - 1) / nr;
                int perTask = MaxPanelsPerTask;
                while (perTask > 1)
                {
                    int tasks = (panels + perTask - 1) / perTask;
                    if (tasks >= 8 * threads || tasks % threads == 0) break;
                    perTask--;
                }
                var job = new PackedJob<TW>(this, isa, nr, perTask * nr);
                WorkerPool.Run(ref job, (panels + perTask - 1) / perTask);
            }
        }

        void StoreRow(float* row, int count, float* add)
        {
            for (int j = 0; j < count; j++) row[j] = add == null ? 0 : add[j];
        }

        /// <summary>GEMV-style: each task dots a contiguous range of W rows with every row of x.</summary>
        readonly struct RowsJob<TW>(Job g, Isa isa, int rowsPerTask, float* pairs) : IParallelJob where TW : struct, IWeightFormat
        {
            public void Run(int task)
            {
                int r0 = task * rowsPerTask, r1 = Math.Min(g.n, r0 + rowsPerTask);
                nint rowBytes = g.ldb * TW.Size;
                float* sums = stackalloc float[16];
                for (int r = r0; r < r1;)
                {
                    // BF16 decode takes 16 rows at a time, one stream each: 8 → 16 rows took the 2304-wide rows from
                    // 34 to 37 GB/s with the same run's probe at 52 (4 → 8 rows had taken 9216×2304 from 20 to 25).
                    // Several rows of x (batched decode) take the same kernel, the 16 weight rows then coming from L2, so
                    // a sequence gets the same bits alone or in a batch.
                    if (pairs != null && r + 16 <= r1)
                    {
                        Prefetch(g.b + (r + 16) * rowBytes, rowBytes, Math.Min(16, r1 - r - 16));
                        for (int i = 0; i < g.m; i++)
                        {
                            Dot16Bf16Pairs(g.a + i * g.lda, pairs + (nint)i * (g.k & ~31), g.b + r * rowBytes, rowBytes, g.k, sums);
                            for (int t = 0; t < 16; t += 4) Store(i, r + t, Vector128.Load(sums + t), 4);
                        }
                        r += 16;
                        continue;
                    }
                    int count = Math.Min(4, r1 - r);
                    byte* w0 = g.b + r * rowBytes;
                    byte* w1 = count > 1 ? w0 + rowBytes : w0, w2 = count > 2 ? w0 + 2 * rowBytes : w0, w3 = count > 3 ? w0 + 3 * rowBytes : w0;
                    Prefetch(w0 + 4 * rowBytes, rowBytes, Math.Min(4, r1 - r - 4));
                    for (int i = 0; i < g.m; i++)
                    {
                        var s = pairs != null
                            ? Dot4Bf16Pairs(g.a + i * g.lda, pairs + (nint)i * (g.k & ~31), w0, w1, w2, w3, g.k)
                            : isa switch
                        {
                            Isa.Avx512 => Dot4x512<TW>(g.a + i * g.lda, w0, w1, w2, w3, g.k),
                            Isa.Avx2 => Dot4x256<TW>(g.a + i * g.lda, w0, w1, w2, w3, g.k),
                            _ => Dot4Scalar<TW>(g.a + i * g.lda, w0, w1, w2, w3, g.k),
                        };
                        Store(i, r, s, count);
                    }
                    r += 4;
                }
            }

            void Store(int i, int r, Vector128<float> s, int count)
            {
                float* y = g.c + i * g.ldc + r;
                for (int t = 0; t < count; t++)
                {
                    float v = s.GetElement(t) + (g.bias == null ? 0 : g.bias[r + t]);
                    y[t] = g.accumulate ? y[t] + v : v;
                }
            }

            // Start the next rows' streams early: a BF16 row is only ~4 KB, so the hardware prefetcher's ramp-up at
            // every new row cost ~10 % of decode bandwidth (9216×2304: 24 -> 27 GB/s).
            static void Prefetch(byte* first, nint rowBytes, int rows)
            {
                if (!Sse.IsSupported) return;
                for (int q = 0; q < rows; q++)
                    for (int line = 0; line < 512; line += 64) Sse.Prefetch0(first + q * rowBytes + line);
            }
        }

        /// <summary>Cache-blocked GEMM over a block of <c>nc</c> output columns per task.</summary>
        readonly struct PackedJob<TW>(Job g, Isa isa, int nr, int nc) : IParallelJob where TW : struct, IWeightFormat
        {
            public void Run(int task)
            {
                float* pack = (packScratch ??= new()).Get(KC * MaxPanelsPerTask * MaxNR);
                int n0 = task * nc, cols = Math.Min(nc, g.n - n0);
                int mr = isa switch { Isa.Avx512 => 8, Isa.Avx2 => 6, _ => 4 };
                for (int k0 = 0; k0 < g.k; k0 += KC)
                {
                    int kc = Math.Min(KC, g.k - k0);
                    if (g.bRowsAreColumns && isa == Isa.Avx512) PackRowsAsColumns512<TW>(g.b, g.ldb, n0, cols, k0, kc, pack);
                    else if (g.bRowsAreColumns) PackRowsAsColumns<TW>(g.b, g.ldb, n0, cols, k0, kc, nr, pack);
                    else PackRows(g.b, g.ldb, n0, cols, k0, kc, nr, pack);
                    bool overwrite = !g.accumulate && k0 == 0;
                    for (int i0 = 0; i0 < g.m; i0 += mr)
                    {
                        int rows = Math.Min(mr, g.m - i0);
                        float* a = g.a + i0 * g.lda + k0;
                        for (int j0 = 0; j0 < cols; j0 += nr)
                        {
                            var t = new Tile(a, g.lda, pack + j0 * kc, kc, g.c + i0 * g.ldc + n0 + j0, g.ldc,
                                Math.Min(nr, cols - j0), overwrite, overwrite && g.bias != null ? g.bias + n0 + j0 : null);
                            if (isa == Isa.Avx512) TileKernels.Run512(t, rows);
                            else if (isa == Isa.Avx2) TileKernels.Run256(t, rows);
                            else TileKernels.RunScalar(t, rows);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs columns [n0, n0 + cols) × k-range [k0, k0 + kc) of a B stored as rows-per-output-column ([n, k], a Linear
    /// weight) into panels of <paramref name="nr"/> columns, each k-major: dst[panel][p][j]; missing columns are zero.
    /// </summary>
    static void PackRowsAsColumns<TW>(byte* b, nint ldb, int n0, int cols, int k0, int kc, int nr, float* dst) where TW : struct, IWeightFormat
    {
        int padded = (cols + nr - 1) / nr * nr;
        for (int j = 0; j < padded; j++)
        {
            float* d = dst + (j / nr) * kc * nr + j % nr;
            if (j < cols)
            {
                byte* row = b + (n0 + j) * ldb * TW.Size;
                for (int p = 0; p < kc; p++) d[p * nr] = TW.Load(row, k0 + p);
            }
            else
                for (int p = 0; p < kc; p++) d[p * nr] = 0;
        }
    }

    /// <summary>
    /// <see cref="PackRowsAsColumns{TW}"/> for 32-wide panels with 16×16 register transposes: packing touches every
    /// weight once per call, and element by element it cost a quarter of a prefill GEMM's time.
    /// </summary>
    static void PackRowsAsColumns512<TW>(byte* b, nint ldb, int n0, int cols, int k0, int kc, float* dst) where TW : struct, IWeightFormat
    {
        const int nr = 32;
        int fullGroups = cols / 16, k16 = kc & ~15;
        nint rowBytes = ldb * TW.Size;
        var rows = stackalloc Vector512<float>[16];
        for (int g = 0; g < fullGroups; g++)
        {
            int j0 = g * 16;
            float* panel = dst + (j0 / nr) * kc * nr + j0 % nr;
            byte* first = b + (n0 + j0) * rowBytes;
            for (int p = 0; p < k16; p += 16)
            {
                for (int r = 0; r < 16; r++) rows[r] = TW.Load512(first + r * rowBytes, k0 + p);
                Transpose16(rows);
                for (int q = 0; q < 16; q++) rows[q].Store(panel + (p + q) * nr);
            }
            for (int j = 0; j < 16; j++)
                for (int p = k16; p < kc; p++) panel[p * nr + j] = TW.Load(first + j * rowBytes, k0 + p);
        }
        // Ragged last columns and the zero padding of the last panel.
        int done = fullGroups * 16, padded = (cols + nr - 1) / nr * nr;
        for (int j = done; j < padded; j++)
        {
            float* d = dst + (j / nr) * kc * nr + j % nr;
            byte* row = b + (n0 + j) * rowBytes;
            for (int p = 0; p < kc; p++) d[p * nr] = j < cols ? TW.Load(row, k0 + p) : 0;
        }
    }

    /// <summary>In-register transpose of a 16×16 float block: v[r][c] becomes v[c][r].</summary>
    static void Transpose16(Vector512<float>* v)
    {
        var t = stackalloc Vector512<float>[16];
        for (int i = 0; i < 16; i += 2)
        {
            t[i] = Avx512F.UnpackLow(v[i], v[i + 1]);      // rows i, i+1 interleaved: columns 4L, 4L+1 per 128-bit lane L
            t[i + 1] = Avx512F.UnpackHigh(v[i], v[i + 1]); // columns 4L+2, 4L+3
        }
        for (int i = 0; i < 16; i += 4)
        {
            // u[i + c] holds column 4L + c of rows i..i+3 in lane L.
            v[i] = Avx512F.UnpackLow(t[i].AsDouble(), t[i + 2].AsDouble()).AsSingle();
            v[i + 1] = Avx512F.UnpackHigh(t[i].AsDouble(), t[i + 2].AsDouble()).AsSingle();
            v[i + 2] = Avx512F.UnpackLow(t[i + 1].AsDouble(), t[i + 3].AsDouble()).AsSingle();
            v[i + 3] = Avx512F.UnpackHigh(t[i + 1].AsDouble(), t[i + 3].AsDouble()).AsSingle();
        }
        for (int c = 0; c < 4; c++)
        {
            // Gather lane L of rows 0-3, 4-7, 8-11, 12-15 for columns 4L + c.
            var a0 = Avx512F.Shuffle4x128(v[c], v[4 + c], 0x88);      // [r0-3 L0, r0-3 L2, r4-7 L0, r4-7 L2]
            var a1 = Avx512F.Shuffle4x128(v[c], v[4 + c], 0xDD);      // [L1, L3, L1, L3]
            var a2 = Avx512F.Shuffle4x128(v[8 + c], v[12 + c], 0x88);
            var a3 = Avx512F.Shuffle4x128(v[8 + c], v[12 + c], 0xDD);
            t[c] = Avx512F.Shuffle4x128(a0, a2, 0x88);      // column c
            t[8 + c] = Avx512F.Shuffle4x128(a0, a2, 0xDD);  // column 8 + c
            t[4 + c] = Avx512F.Shuffle4x128(a1, a3, 0x88);  // column 4 + c
            t[12 + c] = Avx512F.Shuffle4x128(a1, a3, 0xDD); // column 12 + c
        }
        for (int i = 0; i < 16; i++) v[i] = t[i];
    }

    /// <summary>Same panels from a B stored [k, n] (n contiguous): each panel row is a copy.</summary>
    static void PackRows(byte* b, nint ldb, int n0, int cols, int k0, int kc, int nr, float* dst)
    {
        float* src = (float*)b;
        for (int j0 = 0; j0 < cols; j0 += nr)
        {
            int w = Math.Min(nr, cols - j0);
            float* d = dst + j0 * kc;
            for (int p = 0; p < kc; p++)
            {
                new ReadOnlySpan<float>(src + (k0 + p) * ldb + n0 + j0, w).CopyTo(new Span<float>(d + p * nr, w));
                if (w < nr) new Span<float>(d + p * nr + w, nr - w).Clear();
            }
        }
    }

    static Vector128<float> Dot4x512<TW>(float* x, byte* w0, byte* w1, byte* w2, byte* w3, int k) where TW : struct, IWeightFormat
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            var xv = Vector512.Load(x + p);
            s0 = Vector512.FusedMultiplyAdd(xv, TW.Load512(w0, p), s0);
            s1 = Vector512.FusedMultiplyAdd(xv, TW.Load512(w1, p), s1);
            s2 = Vector512.FusedMultiplyAdd(xv, TW.Load512(w2, p), s2);
            s3 = Vector512.FusedMultiplyAdd(xv, TW.Load512(w3, p), s3);
        }
        return Vector128.Create(Vector512.Sum(s0), Vector512.Sum(s1), Vector512.Sum(s2), Vector512.Sum(s3)) + DotTail<TW>(x, w0, w1, w2, w3, p, k);
    }

    /// <summary>
    /// The first k &amp; ~31 elements of each row of x, split into 16-element groups of even then odd indices, so that a
    /// BF16 weight vector loaded as 16 uint pairs widens with one shift (even elements) and one mask (odd elements)
    /// instead of a per-element zero-extension. Kept in a per-thread buffer, grown once.
    /// </summary>
    static float* SplitEvenOdd(float* x, nint ldx, int m, int k)
    {
        int k32 = k & ~31;
        nint need = (nint)m * k32;
        float* pairBuffer = (pairScratch ??= new()).Get(need);
        for (int i = 0; i < m; i++)
        {
            float* src = x + i * ldx, dst = pairBuffer + (nint)i * k32;
            for (int p = 0; p < k32; p += 32, dst += 32)
                for (int j = 0; j < 16; j++) { dst[j] = src[p + 2 * j]; dst[16 + j] = src[p + 2 * j + 1]; }
        }
        return pairBuffer;
    }

    /// <summary>Four BF16 row dots over x given as even/odd groups (see <see cref="SplitEvenOdd"/>), tail from x itself.</summary>
    static Vector128<float> Dot4Bf16Pairs(float* x, float* pairs, byte* w0, byte* w1, byte* w2, byte* w3, int k)
    {
        var high = Vector512.Create(0xFFFF0000u);
        Vector512<float> e0 = default, e1 = default, e2 = default, e3 = default, o0 = default, o1 = default, o2 = default, o3 = default;
        int k32 = k & ~31;
        for (int p = 0; p < k32; p += 32, pairs += 32)
        {
            var xe = Vector512.Load(pairs);
            var xo = Vector512.Load(pairs + 16);
            // Little-endian: element 2j is the low half of uint j, element 2j + 1 the high half.
            var v0 = Vector512.Load((uint*)(w0 + 2 * p)); var v1 = Vector512.Load((uint*)(w1 + 2 * p));
            var v2 = Vector512.Load((uint*)(w2 + 2 * p)); var v3 = Vector512.Load((uint*)(w3 + 2 * p));
            e0 = Vector512.FusedMultiplyAdd(xe, (v0 << 16).AsSingle(), e0); o0 = Vector512.FusedMultiplyAdd(xo, (v0 & high).AsSingle(), o0);
            e1 = Vector512.FusedMultiplyAdd(xe, (v1 << 16).AsSingle(), e1); o1 = Vector512.FusedMultiplyAdd(xo, (v1 & high).AsSingle(), o1);
            e2 = Vector512.FusedMultiplyAdd(xe, (v2 << 16).AsSingle(), e2); o2 = Vector512.FusedMultiplyAdd(xo, (v2 & high).AsSingle(), o2);
            e3 = Vector512.FusedMultiplyAdd(xe, (v3 << 16).AsSingle(), e3); o3 = Vector512.FusedMultiplyAdd(xo, (v3 & high).AsSingle(), o3);
        }
        return Vector128.Create(Vector512.Sum(e0 + o0), Vector512.Sum(e1 + o1), Vector512.Sum(e2 + o2), Vector512.Sum(e3 + o3))
            + DotTail<Bf16Format>(x, w0, w1, w2, w3, k32, k);
    }

    /// <summary>
    /// Sixteen consecutive BF16 rows (rowBytes apart) dotted with one x given as even/odd groups, into
    /// <paramref name="sums"/>; one accumulator per row (its two FMAs per step in sequence: 16 chains hide the latency).
    /// </summary>
    static void Dot16Bf16Pairs(float* x, float* pairs, byte* w, nint rowBytes, int k, float* sums)
    {
        var high = Vector512.Create(0xFFFF0000u);
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector512<float> s8 = default, s9 = default, s10 = default, s11 = default, s12 = default, s13 = default, s14 = default, s15 = default;
        int k32 = k & ~31;
        for (int p = 0; p < k32; p += 32, pairs += 32)
        {
            var xe = Vector512.Load(pairs);
            var xo = Vector512.Load(pairs + 16);
            byte* q = w + 2 * p;
            var v = Vector512.Load((uint*)q); s0 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s0)); q += rowBytes;
            v = Vector512.Load((uint*)q); s1 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s1)); q += rowBytes;
            v = Vector512.Load((uint*)q); s2 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s2)); q += rowBytes;
            v = Vector512.Load((uint*)q); s3 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s3)); q += rowBytes;
            v = Vector512.Load((uint*)q); s4 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s4)); q += rowBytes;
            v = Vector512.Load((uint*)q); s5 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s5)); q += rowBytes;
            v = Vector512.Load((uint*)q); s6 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s6)); q += rowBytes;
            v = Vector512.Load((uint*)q); s7 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s7)); q += rowBytes;
            v = Vector512.Load((uint*)q); s8 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s8)); q += rowBytes;
            v = Vector512.Load((uint*)q); s9 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s9)); q += rowBytes;
            v = Vector512.Load((uint*)q); s10 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s10)); q += rowBytes;
            v = Vector512.Load((uint*)q); s11 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s11)); q += rowBytes;
            v = Vector512.Load((uint*)q); s12 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s12)); q += rowBytes;
            v = Vector512.Load((uint*)q); s13 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s13)); q += rowBytes;
            v = Vector512.Load((uint*)q); s14 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s14)); q += rowBytes;
            v = Vector512.Load((uint*)q); s15 = Vector512.FusedMultiplyAdd(xo, (v & high).AsSingle(), Vector512.FusedMultiplyAdd(xe, (v << 16).AsSingle(), s15));
        }
        sums[0] = Vector512.Sum(s0); sums[1] = Vector512.Sum(s1); sums[2] = Vector512.Sum(s2); sums[3] = Vector512.Sum(s3);
        sums[4] = Vector512.Sum(s4); sums[5] = Vector512.Sum(s5); sums[6] = Vector512.Sum(s6); sums[7] = Vector512.Sum(s7);
        sums[8] = Vector512.Sum(s8); sums[9] = Vector512.Sum(s9); sums[10] = Vector512.Sum(s10); sums[11] = Vector512.Sum(s11);
        sums[12] = Vector512.Sum(s12); sums[13] = Vector512.Sum(s13); sums[14] = Vector512.Sum(s14); sums[15] = Vector512.Sum(s15);
        for (int t = 0; t < 16; t += 4)
        {
            byte* r = w + t * rowBytes;
            (Vector128.Load(sums + t) + DotTail<Bf16Format>(x, r, r + rowBytes, r + 2 * rowBytes, r + 3 * rowBytes, k32, k)).Store(sums + t);
        }
    }

    static Vector128<float> Dot4x256<TW>(float* x, byte* w0, byte* w1, byte* w2, byte* w3, int k) where TW : struct, IWeightFormat
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        int p = 0;
        for (; p + 8 <= k; p += 8)
        {
            var xv = Vector256.Load(x + p);
            s0 = Vector256.FusedMultiplyAdd(xv, TW.Load256(w0, p), s0);
            s1 = Vector256.FusedMultiplyAdd(xv, TW.Load256(w1, p), s1);
            s2 = Vector256.FusedMultiplyAdd(xv, TW.Load256(w2, p), s2);
            s3 = Vector256.FusedMultiplyAdd(xv, TW.Load256(w3, p), s3);
        }
        return Vector128.Create(Vector256.Sum(s0), Vector256.Sum(s1), Vector256.Sum(s2), Vector256.Sum(s3)) + DotTail<TW>(x, w0, w1, w2, w3, p, k);
    }

    static Vector128<float> Dot4Scalar<TW>(float* x, byte* w0, byte* w1, byte* w2, byte* w3, int k) where TW : struct, IWeightFormat
        => DotTail<TW>(x, w0, w1, w2, w3, 0, k);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector128<float> DotTail<TW>(float* x, byte* w0, byte* w1, byte* w2, byte* w3, int p, int k) where TW : struct, IWeightFormat
    {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (; p < k; p++)
        {
            float xv = x[p];
            s0 += xv * TW.Load(w0, p); s1 += xv * TW.Load(w1, p); s2 += xv * TW.Load(w2, p); s3 += xv * TW.Load(w3, p);
        }
        return Vector128.Create(s0, s1, s2, s3);
    }
}

/// <summary>
/// One register-tile invocation: rows of a (stride lda, from column k0 already applied) times a packed B panel
/// (kc × NR, k-major) into c (stride ldc), <see cref="Cols"/> of the NR columns valid. When <see cref="Overwrite"/>,
/// c = tile (+ bias), otherwise c += tile.
/// </summary>
internal readonly unsafe struct Tile(float* a, nint lda, float* b, int kc, float* c, nint ldc, int cols, bool overwrite, float* bias)
{
    public readonly float* A = a, B = b, C = c, Bias = bias;
    public readonly nint Lda = lda, Ldc = ldc;
    public readonly int Kc = kc, Cols = cols;
    public readonly bool Overwrite = overwrite;
}

/// <summary>A compile-time row count for the register tiles (the JIT folds <c>N</c> and drops unused accumulators).</summary>
internal interface IRows { static abstract int N { get; } }
internal struct R1 : IRows { public static int N => 1; }
internal struct R2 : IRows { public static int N => 2; }
internal struct R3 : IRows { public static int N => 3; }
internal struct R4 : IRows { public static int N => 4; }
internal struct R5 : IRows { public static int N => 5; }
internal struct R6 : IRows { public static int N => 6; }
internal struct R7 : IRows { public static int N => 7; }
internal struct R8 : IRows { public static int N => 8; }
