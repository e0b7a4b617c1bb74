using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using PureVlm.Tensors;

namespace PureVlm.Kernels;

/// <summary>
/// <c>y = x · Wᵀ + b</c> for a <see cref="QuantizedTensor"/> W, in integers: each row of x is quantized per group of
/// W's group size to symmetric integers (scale = max|x| / L, round half to even; L = 127, int8, for 4-bit weights,
/// L = 32,767, int16, for 8-bit weights, whose kernel multiplies int16 anyway), each group's dot Σ q_w·q_x is summed
/// exactly in integers, and the groups are combined in float32 in one fixed order:
/// <c>acc = fma(sx·s_w, dot, acc); acc = fma(b_w, sx·Σq_x, acc)</c>, since x·w = sx·q_x·(s_w·q_w + b_w).
/// Every instruction-set path performs exactly these operations, so all of them give the same bits as the scalar one.
/// </summary>
/// <remarks>
/// 4 bits: <c>vpmaddubsw</c> multiplies the unsigned nibbles by the signed int8 activations into int16 pair sums of at
/// most 2·15·127 = 3,810, and eight of them (32 columns) are added in int16 (≤ 30,480 &lt; 32,767) before
/// <c>vpmaddwd</c> widens to int32. 8 bits: q up to 255 would saturate <c>vpmaddubsw</c> (2·255·127 &gt; 32,767), so the
/// weights are zero-extended to int16 and multiplied with int16 activations by <c>vpmaddwd</c>: |pair| ≤ 2·255·32,767,
/// a group of 128 at most 1.07·10⁹ &lt; 2³¹, exact in int32. With int8 activations the demo model's 8-bit answers
/// differed from the float ones on 1 of 24 samples; with int16 on none, at the same speed.
/// The same code serves decode (one row) and prefill: rows are taken up to 8 (Vector512), 4 (Vector256) at a time
/// against one 16-row panel of W over the whole k (6 rows for 8 bits, see Job).
/// </remarks>
[SkipLocalsInit]
public static unsafe class QuantizedGemm
{
    [ThreadStatic] static ThreadScratch? activationScratch;
    // Rows of quantized x a task keeps hot while it walks its panels: about half of a 1 MB L2 of activations.
    const int ActivationBlockBytes = 512 * 1024;

    /// <summary><c>y = x · Wᵀ + bias</c>: x is [m, k] with k = W.Columns, y is [m, n] with n = W.Rows; bias may be empty.</summary>
    public static void Linear(ReadOnlySpan<float> x, int m, QuantizedTensor w, ReadOnlySpan<float> bias, Span<float> y)
    {
        int n = w.Rows, k = w.Columns;
        if (m < 0) throw new ArgumentOutOfRangeException(nameof(m), $"{w.Name}: m = {m}");
        if (x.Length < (long)m * k) throw new ArgumentException($"{w.Name}: input has {x.Length} elements, expected {m}×{k}");
        if (y.Length < (long)m * n) throw new ArgumentException($"{w.Name}: output has {y.Length} elements, expected {m}×{n}");
        if (!bias.IsEmpty && bias.Length != n) throw new ArgumentException($"{w.Name}: bias has {bias.Length} elements, expected {n}");
        if (m == 0) return;
        KernelProfile.AddFlops(2.0 * m * n * k);
        using var time = KernelProfile.Time(KernelKind.Linear);
        int groups = w.Groups, ldq = w.PaddedColumns;
        // One buffer: int8 (4-bit) or int16 (8-bit) activations, rows padded to whole groups, then the per-group scales
        // and scaled sums.
        int xBytes = w.Bits == 8 ? 2 : 1;
        nint qFloats = ((nint)m * ldq * xBytes + 3) / 4;
        float* scratch = (activationScratch ??= new()).Get(qFloats + 2 * (nint)m * groups);
        var a = new Activations((byte*)scratch, m, k, ldq, w.GroupSize, xBytes, scratch + qFloats, scratch + qFloats + (nint)m * groups);
        fixed (float* px = x, pb = bias, py = y)
        {
            var quantize = new QuantizeJob(px, a);
            WorkerPool.Run(ref quantize, (m + 15) / 16);
            var isa = KernelSettings.Isa;
            if (isa == Isa.Avx512 && !Avx512BW.IsSupported) isa = Isa.Avx2;
            // Blocks of up to 96 rows (a multiple of both tile heights), and runs of groups that keep such a block's
            // activations within about half of L2: the panels then stream from memory once per block, not per 8 rows.
            int rowsPerBlock = Math.Min(96, (m + 23) / 24 * 24);
            int groupsPerRun = Math.Clamp(ActivationBlockBytes / (rowsPerBlock * w.GroupSize * xBytes), 1, groups);
            int rowBlocks = (m + rowsPerBlock - 1) / rowsPerBlock;
            int panels = w.PanelCount, threads = KernelSettings.Threads;
            // Enough tasks to balance the threads, each still a run of whole panels.
            int panelsPerTask = Math.Max(1, panels / Math.Max(1, 4 * threads / rowBlocks));
            int chunks = (panels + panelsPerTask - 1) / panelsPerTask;
            switch (w.ScaleType)
            {
                case DType.BF16: Run<Bf16Format>(w, a, bias.IsEmpty ? null : pb, py, isa, rowsPerBlock, groupsPerRun, panelsPerTask, chunks, rowBlocks); break;
                case DType.F16: Run<F16Format>(w, a, bias.IsEmpty ? null : pb, py, isa, rowsPerBlock, groupsPerRun, panelsPerTask, chunks, rowBlocks); break;
                default: Run<F32Format>(w, a, bias.IsEmpty ? null : pb, py, isa, rowsPerBlock, groupsPerRun, panelsPerTask, chunks, rowBlocks); break;
            }
        }
    }

    /// <summary>
    /// x [m, k] quantized per row and group: q (int8 or int16 per element, rows of <see cref="Ldq"/> = k rounded up to
    /// whole groups, the padding zero), scales sx and sx·Σq ([m, groups]).
    /// </summary>
    internal readonly struct Activations(byte* q, int m, int k, int ldq, int groupSize, int bytesPerValue, float* scales, float* scaledSums)
    {
        public readonly byte* Q = q;
        public readonly float* Scales = scales, ScaledSums = scaledSums;
        public readonly int M = m, K = k, Ldq = ldq, GroupSize = groupSize, BytesPerValue = bytesPerValue;
        public int Groups => Ldq / GroupSize;
    }

    readonly struct QuantizeJob(float* x, Activations a) : IParallelJob
    {
        public void Run(int task)
        {
            int r1 = Math.Min(a.M, task * 16 + 16);
            for (int r = task * 16; r < r1; r++) QuantizeRow(x + (nint)r * a.K, a, r);
        }
    }

    /// <summary>
    /// Quantizes row <paramref name="r"/> of x into <paramref name="a"/>. Vector and scalar steps compute the same
    /// integers: max|x| is exact, x · (L / max) is one float multiply, and both round half to even.
    /// </summary>
    internal static void QuantizeRow(float* x, in Activations a, int r)
    {
        int gs = a.GroupSize;
        bool wide = a.BytesPerValue == 2;
        for (int g = 0; g < a.Groups; g++)
        {
            float* v = x + g * gs;
            int width = Math.Min(gs, a.K - g * gs); // a partial last group: the padding stays zero
            float max = 0;
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                var m = Vector256<float>.Zero;
                for (; i + 8 <= width; i += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(v + i)));
                var h = Vector128.Max(m.GetLower(), m.GetUpper());
                max = Math.Max(Math.Max(h[0], h[1]), Math.Max(h[2], h[3]));
            }
            for (; i < width; i++) max = Math.Max(max, Math.Abs(v[i]));
            if (!float.IsFinite(max)) max = float.MaxValue; // inf/NaN inputs saturate instead of poisoning the group
            int levels = wide ? short.MaxValue : sbyte.MaxValue;
            float inv = max == 0 ? 0 : levels / max;
            nint at = (nint)r * a.Ldq + g * gs;
            int sum = 0, j = 0;
            if (Avx2.IsSupported)
            {
                var scale = Vector256.Create(inv);
                var sums = Vector256<int>.Zero;
                var top = Vector256.Create(levels);
                var bottom = Vector256.Create(-levels);
                for (; j + 8 <= width; j += 8)
                {
                    // vcvtps2dq rounds half to even (the default MXCSR mode), as MathF.Round below.
                    var q = Vector256.Min(Vector256.Max(Avx.ConvertToVector256Int32(Vector256.Load(v + j) * scale), bottom), top);
                    sums += q;
                    if (wide) Vector128.Narrow(q.GetLower(), q.GetUpper()).Store((short*)a.Q + at + j);
                    else
                    {
                        var s16 = Vector128.Narrow(q.GetLower(), q.GetUpper());
                        *(long*)((sbyte*)a.Q + at + j) = Vector128.Narrow(s16, s16).AsInt64().ToScalar();
                    }
                }
                sum = Vector256.Sum(sums);
            }
            for (; j < width; j++)
            {
                int q = (int)Math.Clamp(MathF.Round(v[j] * inv), -levels, levels);
                sum += q;
                if (wide) ((short*)a.Q)[at + j] = (short)q;
                else ((sbyte*)a.Q)[at + j] = (sbyte)q;
            }
            if (width < gs) new Span<byte>(a.Q + at * a.BytesPerValue + width * a.BytesPerValue, (gs - width) * a.BytesPerValue).Clear();
            float xScale = max / levels;
            a.Scales[(nint)r * a.Groups + g] = xScale;
            a.ScaledSums[(nint)r * a.Groups + g] = xScale * sum;
        }
    }

    static void Run<TS>(QuantizedTensor w, Activations a, float* bias, float* y, Isa isa, int rowsPerBlock, int groupsPerRun, int panelsPerTask, int chunks, int rowBlocks)
        where TS : struct, IWeightFormat
    {
        var job = new Job<TS>(w.Panels, w, a, bias, y, isa, rowsPerBlock, groupsPerRun, panelsPerTask, chunks);
        WorkerPool.Run(ref job, rowBlocks * chunks);
    }

    /// <summary>The product over tasks of (block of x rows) × (run of W panels), scales and biases in format TS.</summary>
    readonly struct Job<TS>(byte* panels, QuantizedTensor w, Activations a, float* bias, float* y, Isa isa, int rowsPerBlock, int groupsPerRun,
        int panelsPerTask, int chunks) : IParallelJob where TS : struct, IWeightFormat
    {
        readonly byte* panels = panels;
        readonly int blockBytes = w.BlockBytes, bits = w.Bits, groups = w.Groups, n = w.Rows, panelCount = w.PanelCount;
        readonly Activations a = a;
        readonly float* bias = bias, y = y;
        readonly int rowsPerBlock = rowsPerBlock, groupsPerRun = groupsPerRun, panelsPerTask = panelsPerTask, chunks = chunks;
        readonly Isa isa = isa;

        public void Run(int task)
        {
            int rowBlock = task / chunks, chunk = task % chunks;
            int r0 = rowBlock * rowsPerBlock, r1 = Math.Min(a.M, r0 + rowsPerBlock);
            int p0 = chunk * panelsPerTask, p1 = Math.Min(panelCount, p0 + panelsPerTask);
            // 8-bit tiles take 6 rows: with 8 the row pointers spill and the tile runs 5 % slower (m = 266, 2304 → 2048).
            int step = isa switch { Isa.Avx512 => bits == 8 ? 6 : 8, Isa.Avx2 => 4, _ => 1 };
            // Runs of groups whose x rows stay in L2 while the panels stream past; each run resumes from the float
            // sums the one before stored in y, so the order of operations, and the bits, are those of one run.
            for (int g0 = 0; g0 < groups; g0 += groupsPerRun)
            {
                int count = Math.Min(groupsPerRun, groups - g0);
                for (int p = p0; p < p1; p++)
                {
                    int col0 = p * QuantizedTensor.PanelRows, cols = Math.Min(QuantizedTensor.PanelRows, n - col0);
                    var panel = new QTile(panels + ((long)p * groups + g0) * blockBytes, count, groups, a.GroupSize, blockBytes,
                        a.Q + (nint)g0 * a.GroupSize * a.BytesPerValue, a.Ldq, a.BytesPerValue, a.Scales + g0, a.ScaledSums + g0,
                        y + col0, n, cols, bias == null ? null : bias + col0, accumulate: g0 > 0, finish: g0 + count == groups);
                    for (int r = r0; r < r1; r += step)
                    {
                        var t = panel.Row(r);
                        if (isa == Isa.Avx512) QuantizedTiles.Run512<TS>(t, Math.Min(step, r1 - r), bits);
                        else if (isa == Isa.Avx2) QuantizedTiles.Run256<TS>(t, Math.Min(step, r1 - r), bits);
                        else QuantizedTiles.RunScalar<TS>(t, bits);
                    }
                }
            }
        }
    }
}

/// <summary>
/// One tile of <see cref="QuantizedGemm"/>: rows of quantized x (from row 0 at <see cref="X"/>, stride <see cref="Ldx"/>
/// values) against one panel of W over a run of <see cref="Groups"/> groups (x, the panel and the scales already
/// advanced to its first), into y (stride <see cref="Ldy"/>), <see cref="Cols"/> of the panel's 16 rows valid.
/// </summary>
internal readonly unsafe struct QTile(byte* panel, int groups, int scaleStride, int groupSize, int blockBytes, byte* x, nint ldx, int bytesPerValue,
    float* scales, float* scaledSums, float* y, nint ldy, int cols, float* bias, bool accumulate, bool finish)
{
    public readonly byte* Panel = panel, X = x;
    public readonly float* Scales = scales, ScaledSums = scaledSums, Y = y, Bias = bias;
    public readonly nint Ldx = ldx, Ldy = ldy;
    public readonly int Groups = groups, ScaleStride = scaleStride, GroupSize = groupSize, BlockBytes = blockBytes, BytesPerValue = bytesPerValue, Cols = cols;
    /// <summary>Continue from the sums y holds (a later run of groups) instead of from zero.</summary>
    public readonly bool Accumulate = accumulate;
    /// <summary>The last run of groups: add the bias.</summary>
    public readonly bool Finish = finish;

    /// <summary>The same tile starting <paramref name="i"/> rows of x (and y) further.</summary>
    public QTile Row(int i) => new(Panel, Groups, ScaleStride, GroupSize, BlockBytes, X + i * Ldx * BytesPerValue, Ldx, BytesPerValue,
        Scales + (nint)i * ScaleStride, ScaledSums + (nint)i * ScaleStride, Y + i * Ldy, Ldy, Cols, Bias, Accumulate, Finish);
}
