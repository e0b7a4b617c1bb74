using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PureVlm.Kernels;

/// <summary>
/// The broadcast-FMA register tiles of <see cref="Gemm"/>: rows × NR accumulators stay in registers over the
/// whole k-block; each step loads one packed B row (NR floats) and broadcasts one a value per row.
/// Vector512: up to 8 × 32 (16 zmm accumulators); Vector256: up to 6 × 16 (12 ymm); scalar: up to 4 × 16.
/// The accumulators are spilled to a stack tile before any call so the JIT keeps them in registers in the loop.
/// </summary>
[SkipLocalsInit]
internal static unsafe class TileKernels
{
    /// <summary>8 × 32 tile (rows ≤ 8) over Vector512.</summary>
    public static void Run512(in Tile t, int rows)
    {
        switch (rows)
        {
            case 1: Run512<R1>(t); break; case 2: Run512<R2>(t); break; case 3: Run512<R3>(t); break; case 4: Run512<R4>(t); break;
            case 5: Run512<R5>(t); break; case 6: Run512<R6>(t); break; case 7: Run512<R7>(t); break; default: Run512<R8>(t); break;
        }
    }

    /// <summary>
    /// 8 × 16 tile (rows ≤ 8) over Vector512, B panels 16 wide: attention's last value panel when the head dim leaves
    /// 16 or fewer columns past a multiple of 32 (SigLIP's 72), which a 32-wide tile would compute a third in vain.
    /// </summary>
    public static void Run512x16(in Tile t, int rows)
    {
        switch (rows)
        {
            case 1: Run512x16<R1>(t); break; case 2: Run512x16<R2>(t); break; case 3: Run512x16<R3>(t); break; case 4: Run512x16<R4>(t); break;
            case 5: Run512x16<R5>(t); break; case 6: Run512x16<R6>(t); break; case 7: Run512x16<R7>(t); break; default: Run512x16<R8>(t); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run512x16<TR>(in Tile t) where TR : struct, IRows
    {
        nint lda = t.Lda;
        float* a0 = t.A, a1 = t.A + 1 * lda, a2 = t.A + 2 * lda, a3 = t.A + 3 * lda, a4 = t.A + 4 * lda, a5 = t.A + 5 * lda, a6 = t.A + 6 * lda, a7 = t.A + 7 * lda;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        float* b = t.B;
        for (nint p = 0; p < t.Kc; p++, b += 16)
        {
            var bv = Vector512.Load(b);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(a0[p]), bv, c0);
            if (TR.N > 1) c1 = Vector512.FusedMultiplyAdd(Vector512.Create(a1[p]), bv, c1);
            if (TR.N > 2) c2 = Vector512.FusedMultiplyAdd(Vector512.Create(a2[p]), bv, c2);
            if (TR.N > 3) c3 = Vector512.FusedMultiplyAdd(Vector512.Create(a3[p]), bv, c3);
            if (TR.N > 4) c4 = Vector512.FusedMultiplyAdd(Vector512.Create(a4[p]), bv, c4);
            if (TR.N > 5) c5 = Vector512.FusedMultiplyAdd(Vector512.Create(a5[p]), bv, c5);
            if (TR.N > 6) c6 = Vector512.FusedMultiplyAdd(Vector512.Create(a6[p]), bv, c6);
            if (TR.N > 7) c7 = Vector512.FusedMultiplyAdd(Vector512.Create(a7[p]), bv, c7);
        }
        float* tile = stackalloc float[128];
        c0.Store(tile);
        if (TR.N > 1) c1.Store(tile + 16);
        if (TR.N > 2) c2.Store(tile + 32);
        if (TR.N > 3) c3.Store(tile + 48);
        if (TR.N > 4) c4.Store(tile + 64);
        if (TR.N > 5) c5.Store(tile + 80);
        if (TR.N > 6) c6.Store(tile + 96);
        if (TR.N > 7) c7.Store(tile + 112);
        StoreTile(t, tile, TR.N, 16);
    }

    /// <summary>6 × 16 tile (rows ≤ 6) over Vector256.</summary>
    public static void Run256(in Tile t, int rows)
    {
        switch (rows)
        {
            case 1: Run256<R1>(t); break; case 2: Run256<R2>(t); break; case 3: Run256<R3>(t); break;
            case 4: Run256<R4>(t); break; case 5: Run256<R5>(t); break; default: Run256<R6>(t); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run512<TR>(in Tile t) where TR : struct, IRows
    {
        nint lda = t.Lda;
        float* a0 = t.A, a1 = t.A + 1 * lda, a2 = t.A + 2 * lda, a3 = t.A + 3 * lda, a4 = t.A + 4 * lda, a5 = t.A + 5 * lda, a6 = t.A + 6 * lda, a7 = t.A + 7 * lda;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        float* b = t.B;
        for (nint p = 0; p < t.Kc; p++, b += 32)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            Vector512<float> av;
            av = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            if (TR.N > 1) { av = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11); }
            if (TR.N > 2) { av = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21); }
            if (TR.N > 3) { av = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31); }
            if (TR.N > 4) { av = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41); }
            if (TR.N > 5) { av = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51); }
            if (TR.N > 6) { av = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61); }
            if (TR.N > 7) { av = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71); }
        }
        if (t.Cols == 32 && t.Bias == null)
        {
            // A whole tile goes straight to c: with attention's short k (the head dim) the spill through the stack is not negligible.
            float* c = t.C;
            nint ldc = t.Ldc;
            bool o = t.Overwrite;
            Put(c, c00, c01, o);
            if (TR.N > 1) Put(c + ldc, c10, c11, o);
            if (TR.N > 2) Put(c + 2 * ldc, c20, c21, o);
            if (TR.N > 3) Put(c + 3 * ldc, c30, c31, o);
            if (TR.N > 4) Put(c + 4 * ldc, c40, c41, o);
            if (TR.N > 5) Put(c + 5 * ldc, c50, c51, o);
            if (TR.N > 6) Put(c + 6 * ldc, c60, c61, o);
            if (TR.N > 7) Put(c + 7 * ldc, c70, c71, o);
            return;
        }
        float* tile = stackalloc float[256];
        c00.Store(tile + 0); c01.Store(tile + 16);
        if (TR.N > 1) { c10.Store(tile + 32); c11.Store(tile + 48); }
        if (TR.N > 2) { c20.Store(tile + 64); c21.Store(tile + 80); }
        if (TR.N > 3) { c30.Store(tile + 96); c31.Store(tile + 112); }
        if (TR.N > 4) { c40.Store(tile + 128); c41.Store(tile + 144); }
        if (TR.N > 5) { c50.Store(tile + 160); c51.Store(tile + 176); }
        if (TR.N > 6) { c60.Store(tile + 192); c61.Store(tile + 208); }
        if (TR.N > 7) { c70.Store(tile + 224); c71.Store(tile + 240); }
        StoreTile(t, tile, TR.N, 32);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Put(float* c, Vector512<float> low, Vector512<float> high, bool overwrite)
    {
        if (!overwrite) { low += Vector512.Load(c); high += Vector512.Load(c + 16); }
        low.Store(c);
        high.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Run256<TR>(in Tile t) where TR : struct, IRows
    {
        nint lda = t.Lda;
        float* a0 = t.A, a1 = t.A + 1 * lda, a2 = t.A + 2 * lda, a3 = t.A + 3 * lda, a4 = t.A + 4 * lda, a5 = t.A + 5 * lda;
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* b = t.B;
        for (nint p = 0; p < t.Kc; p++, b += 16)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            Vector256<float> av;
            av = Vector256.Create(a0[p]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
            if (TR.N > 1) { av = Vector256.Create(a1[p]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11); }
            if (TR.N > 2) { av = Vector256.Create(a2[p]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21); }
            if (TR.N > 3) { av = Vector256.Create(a3[p]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31); }
            if (TR.N > 4) { av = Vector256.Create(a4[p]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41); }
            if (TR.N > 5) { av = Vector256.Create(a5[p]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51); }
        }
        float* tile = stackalloc float[96];
        c00.Store(tile + 0); c01.Store(tile + 8);
        if (TR.N > 1) { c10.Store(tile + 16); c11.Store(tile + 24); }
        if (TR.N > 2) { c20.Store(tile + 32); c21.Store(tile + 40); }
        if (TR.N > 3) { c30.Store(tile + 48); c31.Store(tile + 56); }
        if (TR.N > 4) { c40.Store(tile + 64); c41.Store(tile + 72); }
        if (TR.N > 5) { c50.Store(tile + 80); c51.Store(tile + 88); }
        StoreTile(t, tile, TR.N, 16);
    }

    /// <summary>Up to 4 × 16 tile in plain scalar code (the reference-style path).</summary>
    public static void RunScalar(in Tile t, int rows)
    {
        const int nr = 16;
        float* tile = stackalloc float[4 * nr];
        new Span<float>(tile, 4 * nr).Clear();
        float* b = t.B;
        for (int p = 0; p < t.Kc; p++, b += nr)
            for (int r = 0; r < rows; r++)
            {
                float av = t.A[r * t.Lda + p];
                for (int j = 0; j < nr; j++) tile[r * nr + j] += av * b[j];
            }
        StoreTile(t, tile, rows, nr);
    }

    /// <summary>Writes (overwrite, plus bias) or adds the first <c>t.Cols</c> columns of each tile row into c.</summary>
    static void StoreTile(in Tile t, float* tile, int rows, int nr)
    {
        for (int r = 0; r < rows; r++)
        {
            var src = new ReadOnlySpan<float>(tile + r * nr, t.Cols);
            var dst = new Span<float>(t.C + r * t.Ldc, t.Cols);
            if (!t.Overwrite) TensorPrimitives.Add(dst, src, dst);
            else if (t.Bias != null) TensorPrimitives.Add(src, new ReadOnlySpan<float>(t.Bias, t.Cols), dst);
            else src.CopyTo(dst);
        }
    }
}
