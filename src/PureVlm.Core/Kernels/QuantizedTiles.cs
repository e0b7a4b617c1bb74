using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PureVlm.Kernels;

/// <summary>
/// The register tiles of <see cref="QuantizedGemm"/>: up to 8 rows of quantized x against one 16-row panel of a
/// <see cref="Tensors.QuantizedTensor"/> (Vector512), up to 4 rows against each 8-row half (Vector256), or one row
/// (scalar, the reference the others equal bit for bit). Per group the integer dot is exact; the float combination
/// is the same two fused multiply-adds on every path.
/// </summary>
[SkipLocalsInit]
internal static unsafe class QuantizedTiles
{
    /// <summary>rows ≤ 8 rows of x against the 16 rows of the panel.</summary>
    public static void Run512<TS>(in QTile t, int rows, int bits) where TS : struct, IWeightFormat
    {
        if (bits == 4)
            switch (rows)
            {
                case 1: Four512<TS, R1>(t); break; case 2: Four512<TS, R2>(t); break; case 3: Four512<TS, R3>(t); break; case 4: Four512<TS, R4>(t); break;
                case 5: Four512<TS, R5>(t); break; case 6: Four512<TS, R6>(t); break; case 7: Four512<TS, R7>(t); break; default: Four512<TS, R8>(t); break;
            }
        else
            switch (rows)
            {
                case 1: Eight512<TS, R1>(t); break; case 2: Eight512<TS, R2>(t); break; case 3: Eight512<TS, R3>(t); break; case 4: Eight512<TS, R4>(t); break;
                case 5: Eight512<TS, R5>(t); break; case 6: Eight512<TS, R6>(t); break; case 7: Eight512<TS, R7>(t); break; default: Eight512<TS, R8>(t); break;
            }
    }

    /// <summary>rows ≤ 4 rows of x against each 8-row half of the panel.</summary>
    public static void Run256<TS>(in QTile t, int rows, int bits) where TS : struct, IWeightFormat
    {
        for (int half = 0; half < 2 && 8 * half < t.Cols; half++)
        {
            if (bits == 4)
                switch (rows)
                {
                    case 1: Four256<TS, R1>(t, half); break; case 2: Four256<TS, R2>(t, half); break;
                    case 3: Four256<TS, R3>(t, half); break; default: Four256<TS, R4>(t, half); break;
                }
            else
                switch (rows)
                {
                    case 1: Eight256<TS, R1>(t, half); break; case 2: Eight256<TS, R2>(t, half); break;
                    case 3: Eight256<TS, R3>(t, half); break; default: Eight256<TS, R4>(t, half); break;
                }
        }
    }

    /// <summary>One row of x against the panel, element by element: the reference.</summary>
    public static void RunScalar<TS>(in QTile t, int bits) where TS : struct, IWeightFormat
    {
        int gs = t.GroupSize, weightsAt = 32 * TS.Size, mask = (1 << bits) - 1;
        for (int c = 0; c < t.Cols; c++)
        {
            float acc = t.Accumulate ? t.Y[c] : 0;
            for (int g = 0; g < t.Groups; g++)
            {
                byte* block = t.Panel + (nint)g * t.BlockBytes, w = block + weightsAt;
                int dot = 0;
                for (int j = 0; j < gs; j++)
                {
                    int q = (w[Tensors.QuantizedTensor.WeightByte(bits, c, j, out int shift)] >> shift) & mask;
                    int x = t.BytesPerValue == 1 ? ((sbyte*)t.X)[g * gs + j] : ((short*)t.X)[g * gs + j];
                    dot += q * x;
                }
                acc = MathF.FusedMultiplyAdd(t.Scales[g] * TS.Load(block, c), dot, acc);
                acc = MathF.FusedMultiplyAdd(TS.Load(block, 16 + c), t.ScaledSums[g], acc);
            }
            t.Y[c] = t.Bias == null || !t.Finish ? acc : acc + t.Bias[c];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<short> Pairs512(Vector512<byte> lo, Vector512<byte> hi, sbyte* x) =>
        Avx512BW.MultiplyAddAdjacent(lo, Vector512.Create(*(int*)x).AsSByte()) + Avx512BW.MultiplyAddAdjacent(hi, Vector512.Create(*(int*)(x + 4)).AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Combine512(Vector512<float> acc, Vector512<int> dot, Vector512<float> sw, Vector512<float> bw, float* scales, float* sums, nint at) =>
        Vector512.FusedMultiplyAdd(bw, Vector512.Create(sums[at]), Vector512.FusedMultiplyAdd(Vector512.Create(scales[at]) * sw, Vector512.ConvertToSingle(dot), acc));

    /// <summary>
    /// 4 bits: per 32 columns of a group, eight <c>vpmaddubsw</c> pairs per row add up in int16 (≤ 8 · 3,810), then one
    /// <c>vpmaddwd</c> by ones widens them into the group's int32 dot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Four512<TS, TR>(in QTile t) where TS : struct, IWeightFormat where TR : struct, IRows
    {
        nint ldx = t.Ldx, groups = t.Groups, stride = t.ScaleStride;
        int gs = t.GroupSize;
        sbyte* x0 = (sbyte*)t.X, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx, x6 = x5 + ldx, x7 = x6 + ldx;
        float* sc = t.Scales, su = t.ScaledSums;
        var ones = Vector512.Create((short)1);
        var low = Vector512.Create((byte)0x0F);
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        if (t.Accumulate)
        {
            // Loaded through a local buffer: passing the accumulators by reference would keep them out of registers.
            float* resume = stackalloc float[8 * 16];
            LoadRows(t, resume, TR.N, 16, 0, t.Cols);
            f0 = Vector512.Load(resume);
            if (TR.N > 1) f1 = Vector512.Load(resume + 16);
            if (TR.N > 2) f2 = Vector512.Load(resume + 32);
            if (TR.N > 3) f3 = Vector512.Load(resume + 48);
            if (TR.N > 4) f4 = Vector512.Load(resume + 64);
            if (TR.N > 5) f5 = Vector512.Load(resume + 80);
            if (TR.N > 6) f6 = Vector512.Load(resume + 96);
            if (TR.N > 7) f7 = Vector512.Load(resume + 112);
        }
        byte* block = t.Panel;
        for (nint g = 0; g < groups; g++, block += t.BlockBytes)
        {
            Vector512<int> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default, d6 = default, d7 = default;
            byte* w = block + 32 * TS.Size;
            nint k = g * gs;
            for (int round = 0; round < gs; round += 32)
            {
                Vector512<short> h0 = default, h1 = default, h2 = default, h3 = default, h4 = default, h5 = default, h6 = default, h7 = default;
                for (int u = 0; u < 32; u += 8, w += 64, k += 8)
                {
                    var v = Vector512.Load(w);
                    var lo = v & low;
                    var hi = Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & low;
                    h0 += Pairs512(lo, hi, x0 + k);
                    if (TR.N > 1) h1 += Pairs512(lo, hi, x1 + k);
                    if (TR.N > 2) h2 += Pairs512(lo, hi, x2 + k);
                    if (TR.N > 3) h3 += Pairs512(lo, hi, x3 + k);
                    if (TR.N > 4) h4 += Pairs512(lo, hi, x4 + k);
                    if (TR.N > 5) h5 += Pairs512(lo, hi, x5 + k);
                    if (TR.N > 6) h6 += Pairs512(lo, hi, x6 + k);
                    if (TR.N > 7) h7 += Pairs512(lo, hi, x7 + k);
                }
                d0 += Avx512BW.MultiplyAddAdjacent(h0, ones);
                if (TR.N > 1) d1 += Avx512BW.MultiplyAddAdjacent(h1, ones);
                if (TR.N > 2) d2 += Avx512BW.MultiplyAddAdjacent(h2, ones);
                if (TR.N > 3) d3 += Avx512BW.MultiplyAddAdjacent(h3, ones);
                if (TR.N > 4) d4 += Avx512BW.MultiplyAddAdjacent(h4, ones);
                if (TR.N > 5) d5 += Avx512BW.MultiplyAddAdjacent(h5, ones);
                if (TR.N > 6) d6 += Avx512BW.MultiplyAddAdjacent(h6, ones);
                if (TR.N > 7) d7 += Avx512BW.MultiplyAddAdjacent(h7, ones);
            }
            var sw = TS.Load512(block, 0);
            var bw = TS.Load512(block, 16);
            f0 = Combine512(f0, d0, sw, bw, sc, su, g);
            if (TR.N > 1) f1 = Combine512(f1, d1, sw, bw, sc, su, stride + g);
            if (TR.N > 2) f2 = Combine512(f2, d2, sw, bw, sc, su, 2 * stride + g);
            if (TR.N > 3) f3 = Combine512(f3, d3, sw, bw, sc, su, 3 * stride + g);
            if (TR.N > 4) f4 = Combine512(f4, d4, sw, bw, sc, su, 4 * stride + g);
            if (TR.N > 5) f5 = Combine512(f5, d5, sw, bw, sc, su, 5 * stride + g);
            if (TR.N > 6) f6 = Combine512(f6, d6, sw, bw, sc, su, 6 * stride + g);
            if (TR.N > 7) f7 = Combine512(f7, d7, sw, bw, sc, su, 7 * stride + g);
        }
        Store512<TR>(t, f0, f1, f2, f3, f4, f5, f6, f7);
    }

    /// <summary>8 bits: two columns per step, weights zero-extended to int16 and multiplied by <c>vpmaddwd</c> (no saturation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Eight512<TS, TR>(in QTile t) where TS : struct, IWeightFormat where TR : struct, IRows
    {
        nint ldx = t.Ldx, groups = t.Groups, stride = t.ScaleStride;
        int gs = t.GroupSize;
        short* x0 = (short*)t.X, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx, x4 = x3 + ldx, x5 = x4 + ldx, x6 = x5 + ldx, x7 = x6 + ldx;
        float* sc = t.Scales, su = t.ScaledSums;
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        if (t.Accumulate)
        {
            // Loaded through a local buffer: passing the accumulators by reference would keep them out of registers.
            float* resume = stackalloc float[8 * 16];
            LoadRows(t, resume, TR.N, 16, 0, t.Cols);
            f0 = Vector512.Load(resume);
            if (TR.N > 1) f1 = Vector512.Load(resume + 16);
            if (TR.N > 2) f2 = Vector512.Load(resume + 32);
            if (TR.N > 3) f3 = Vector512.Load(resume + 48);
            if (TR.N > 4) f4 = Vector512.Load(resume + 64);
            if (TR.N > 5) f5 = Vector512.Load(resume + 80);
            if (TR.N > 6) f6 = Vector512.Load(resume + 96);
            if (TR.N > 7) f7 = Vector512.Load(resume + 112);
        }
        byte* block = t.Panel;
        for (nint g = 0; g < groups; g++, block += t.BlockBytes)
        {
            Vector512<int> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default, d6 = default, d7 = default;
            byte* w = block + 32 * TS.Size;
            nint k = g * gs, end = k + gs;
            for (; k < end; k += 2, w += 32)
            {
                var v = Avx512BW.ConvertToVector512Int16(Vector256.Load(w));
                d0 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x0 + k)).AsInt16());
                if (TR.N > 1) d1 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x1 + k)).AsInt16());
                if (TR.N > 2) d2 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x2 + k)).AsInt16());
                if (TR.N > 3) d3 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x3 + k)).AsInt16());
                if (TR.N > 4) d4 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x4 + k)).AsInt16());
                if (TR.N > 5) d5 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x5 + k)).AsInt16());
                if (TR.N > 6) d6 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x6 + k)).AsInt16());
                if (TR.N > 7) d7 += Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)(x7 + k)).AsInt16());
            }
            var sw = TS.Load512(block, 0);
            var bw = TS.Load512(block, 16);
            f0 = Combine512(f0, d0, sw, bw, sc, su, g);
            if (TR.N > 1) f1 = Combine512(f1, d1, sw, bw, sc, su, stride + g);
            if (TR.N > 2) f2 = Combine512(f2, d2, sw, bw, sc, su, 2 * stride + g);
            if (TR.N > 3) f3 = Combine512(f3, d3, sw, bw, sc, su, 3 * stride + g);
            if (TR.N > 4) f4 = Combine512(f4, d4, sw, bw, sc, su, 4 * stride + g);
            if (TR.N > 5) f5 = Combine512(f5, d5, sw, bw, sc, su, 5 * stride + g);
            if (TR.N > 6) f6 = Combine512(f6, d6, sw, bw, sc, su, 6 * stride + g);
            if (TR.N > 7) f7 = Combine512(f7, d7, sw, bw, sc, su, 7 * stride + g);
        }
        Store512<TR>(t, f0, f1, f2, f3, f4, f5, f6, f7);
    }

    static void Store512<TR>(in QTile t, Vector512<float> f0, Vector512<float> f1, Vector512<float> f2, Vector512<float> f3,
        Vector512<float> f4, Vector512<float> f5, Vector512<float> f6, Vector512<float> f7) where TR : struct, IRows
    {
        if (t.Cols == 16)
        {
            // A whole panel goes straight to y: through the buffer below, the scalar copy costs 7 % at k = 1152 (4 bits).
            if (t.Bias != null && t.Finish)
            {
                var bias = Vector512.Load(t.Bias);
                f0 += bias; f1 += bias; f2 += bias; f3 += bias; f4 += bias; f5 += bias; f6 += bias; f7 += bias;
            }
            float* y = t.Y;
            nint ldy = t.Ldy;
            f0.Store(y);
            if (TR.N > 1) f1.Store(y + ldy);
            if (TR.N > 2) f2.Store(y + 2 * ldy);
            if (TR.N > 3) f3.Store(y + 3 * ldy);
            if (TR.N > 4) f4.Store(y + 4 * ldy);
            if (TR.N > 5) f5.Store(y + 5 * ldy);
            if (TR.N > 6) f6.Store(y + 6 * ldy);
            if (TR.N > 7) f7.Store(y + 7 * ldy);
            return;
        }
        float* tile = stackalloc float[8 * 16];
        f0.Store(tile);
        if (TR.N > 1) f1.Store(tile + 16);
        if (TR.N > 2) f2.Store(tile + 32);
        if (TR.N > 3) f3.Store(tile + 48);
        if (TR.N > 4) f4.Store(tile + 64);
        if (TR.N > 5) f5.Store(tile + 80);
        if (TR.N > 6) f6.Store(tile + 96);
        if (TR.N > 7) f7.Store(tile + 112);
        StoreRows(t, tile, TR.N, 16, 0, t.Cols);
    }

    static void StoreRows(in QTile t, float* tile, int rows, int stride, int col0, int cols)
    {
        for (int r = 0; r < rows; r++)
        {
            float* y = t.Y + r * t.Ldy + col0;
            for (int c = 0; c < cols; c++) y[c] = t.Bias == null || !t.Finish ? tile[r * stride + c] : tile[r * stride + c] + t.Bias[col0 + c];
        }
    }

    /// <summary>The sums an earlier run of groups left in y, into a tile buffer (exact: floats stored and loaded).</summary>
    static void LoadRows(in QTile t, float* tile, int rows, int stride, int col0, int cols)
    {
        new Span<float>(tile, rows * stride).Clear();
        for (int r = 0; r < rows; r++)
            new ReadOnlySpan<float>(t.Y + r * t.Ldy + col0, cols).CopyTo(new Span<float>(tile + r * stride, cols));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<short> Pairs256(Vector256<byte> lo, Vector256<byte> hi, sbyte* x) =>
        Avx2.MultiplyAddAdjacent(lo, Vector256.Create(*(int*)x).AsSByte()) + Avx2.MultiplyAddAdjacent(hi, Vector256.Create(*(int*)(x + 4)).AsSByte());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Combine256(Vector256<float> acc, Vector256<int> dot, Vector256<float> sw, Vector256<float> bw, float* scales, float* sums, nint at) =>
        Vector256.FusedMultiplyAdd(bw, Vector256.Create(sums[at]), Vector256.FusedMultiplyAdd(Vector256.Create(scales[at]) * sw, Vector256.ConvertToSingle(dot), acc));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Four256<TS, TR>(in QTile t, int half) where TS : struct, IWeightFormat where TR : struct, IRows
    {
        nint ldx = t.Ldx, groups = t.Groups, stride = t.ScaleStride;
        int gs = t.GroupSize;
        sbyte* x0 = (sbyte*)t.X, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
        float* sc = t.Scales, su = t.ScaledSums;
        var ones = Vector256.Create((short)1);
        var low = Vector256.Create((byte)0x0F);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        if (t.Accumulate)
        {
            float* resume = stackalloc float[4 * 8];
            LoadRows(t, resume, TR.N, 8, 8 * half, Math.Min(8, t.Cols - 8 * half));
            f0 = Vector256.Load(resume);
            if (TR.N > 1) f1 = Vector256.Load(resume + 8);
            if (TR.N > 2) f2 = Vector256.Load(resume + 16);
            if (TR.N > 3) f3 = Vector256.Load(resume + 24);
        }
        byte* block = t.Panel;
        for (nint g = 0; g < groups; g++, block += t.BlockBytes)
        {
            Vector256<int> d0 = default, d1 = default, d2 = default, d3 = default;
            byte* w = block + 32 * TS.Size + 32 * half;
            nint k = g * gs;
            for (int round = 0; round < gs; round += 32)
            {
                Vector256<short> h0 = default, h1 = default, h2 = default, h3 = default;
                for (int u = 0; u < 32; u += 8, w += 64, k += 8)
                {
                    var v = Vector256.Load(w);
                    var lo = v & low;
                    var hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & low;
                    h0 += Pairs256(lo, hi, x0 + k);
                    if (TR.N > 1) h1 += Pairs256(lo, hi, x1 + k);
                    if (TR.N > 2) h2 += Pairs256(lo, hi, x2 + k);
                    if (TR.N > 3) h3 += Pairs256(lo, hi, x3 + k);
                }
                d0 += Avx2.MultiplyAddAdjacent(h0, ones);
                if (TR.N > 1) d1 += Avx2.MultiplyAddAdjacent(h1, ones);
                if (TR.N > 2) d2 += Avx2.MultiplyAddAdjacent(h2, ones);
                if (TR.N > 3) d3 += Avx2.MultiplyAddAdjacent(h3, ones);
            }
            var sw = TS.Load256(block, 8 * half);
            var bw = TS.Load256(block, 16 + 8 * half);
            f0 = Combine256(f0, d0, sw, bw, sc, su, g);
            if (TR.N > 1) f1 = Combine256(f1, d1, sw, bw, sc, su, stride + g);
            if (TR.N > 2) f2 = Combine256(f2, d2, sw, bw, sc, su, 2 * stride + g);
            if (TR.N > 3) f3 = Combine256(f3, d3, sw, bw, sc, su, 3 * stride + g);
        }
        Store256<TR>(t, half, f0, f1, f2, f3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Eight256<TS, TR>(in QTile t, int half) where TS : struct, IWeightFormat where TR : struct, IRows
    {
        nint ldx = t.Ldx, groups = t.Groups, stride = t.ScaleStride;
        int gs = t.GroupSize;
        short* x0 = (short*)t.X, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx;
        float* sc = t.Scales, su = t.ScaledSums;
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        if (t.Accumulate)
        {
            float* resume = stackalloc float[4 * 8];
            LoadRows(t, resume, TR.N, 8, 8 * half, Math.Min(8, t.Cols - 8 * half));
            f0 = Vector256.Load(resume);
            if (TR.N > 1) f1 = Vector256.Load(resume + 8);
            if (TR.N > 2) f2 = Vector256.Load(resume + 16);
            if (TR.N > 3) f3 = Vector256.Load(resume + 24);
        }
        byte* block = t.Panel;
        for (nint g = 0; g < groups; g++, block += t.BlockBytes)
        {
            Vector256<int> d0 = default, d1 = default, d2 = default, d3 = default;
            byte* w = block + 32 * TS.Size + 16 * half;
            nint k = g * gs, end = k + gs;
            for (; k < end; k += 2, w += 32)
            {
                var v = Avx2.ConvertToVector256Int16(Vector128.Load(w));
                d0 += Avx2.MultiplyAddAdjacent(v, Vector256.Create(*(int*)(x0 + k)).AsInt16());
                if (TR.N > 1) d1 += Avx2.MultiplyAddAdjacent(v, Vector256.Create(*(int*)(x1 + k)).AsInt16());
                if (TR.N > 2) d2 += Avx2.MultiplyAddAdjacent(v, Vector256.Create(*(int*)(x2 + k)).AsInt16());
                if (TR.N > 3) d3 += Avx2.MultiplyAddAdjacent(v, Vector256.Create(*(int*)(x3 + k)).AsInt16());
            }
            var sw = TS.Load256(block, 8 * half);
            var bw = TS.Load256(block, 16 + 8 * half);
            f0 = Combine256(f0, d0, sw, bw, sc, su, g);
            if (TR.N > 1) f1 = Combine256(f1, d1, sw, bw, sc, su, stride + g);
            if (TR.N > 2) f2 = Combine256(f2, d2, sw, bw, sc, su, 2 * stride + g);
            if (TR.N > 3) f3 = Combine256(f3, d3, sw, bw, sc, su, 3 * stride + g);
        }
        Store256<TR>(t, half, f0, f1, f2, f3);
    }

    static void Store256<TR>(in QTile t, int half, Vector256<float> f0, Vector256<float> f1, Vector256<float> f2, Vector256<float> f3) where TR : struct, IRows
    {
        float* tile = stackalloc float[4 * 8];
        f0.Store(tile);
        if (TR.N > 1) f1.Store(tile + 8);
        if (TR.N > 2) f2.Store(tile + 16);
        if (TR.N > 3) f3.Store(tile + 24);
        StoreRows(t, tile, TR.N, 8, 8 * half, Math.Min(8, t.Cols - 8 * half));
    }
}
