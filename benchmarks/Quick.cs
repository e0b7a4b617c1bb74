using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using PureVlm.Kernels;
using PureVlm.Tensors;

namespace PureVlm.Benchmarks;

/// <summary>
/// <c>--quick</c>: in one run, measures the machine's fp32 FMA peak and memory bandwidth and our prefill GEMM and
/// BF16 decode, then prints one JSON line. Times are the best of several repetitions (the machine may be shared).
/// </summary>
static unsafe class Quick
{
    public static void Run()
    {
        int threads = KernelSettings.Threads;
        Console.WriteLine($"threads={threads} isa={KernelSettings.Isa} loadavg={File.ReadAllText("/proc/loadavg").Trim()}");
        double peak = FmaPeakGflops(threads);
        Console.WriteLine($"fp32 FMA peak: {peak:F1} GFLOP/s");
        double bandwidth = BandwidthGBps(threads);
        Console.WriteLine($"memory read bandwidth: {bandwidth:F1} GB/s");

        var prefill = new List<double>();
        var f32 = new List<double>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
            foreach (var s in GemmShape.GemmaPrefill.Concat(GemmShape.Siglip))
            {
                double g = Gflops(s, dtype);
                Console.WriteLine($"{s,-32} {dtype,-5} {g,8:F1} GFLOP/s  {g / peak:P0} of peak");
                if (dtype == DType.BF16 && s.Model == "gemma2-prefill") prefill.Add(g);
                if (dtype == DType.F32) f32.Add(g);
            }
        double maddwd = MaddwdPeakGops(threads);
        Console.WriteLine($"vpmaddwd + vpaddd peak: {maddwd:F1} GOP/s, {maddwd / peak:F2}× the FMA peak (the 8-bit kernel's ceiling)");
        // Integer kernels (issue 12): GFLOP/s against the same shape's F32 GEMM (fc2's k = 4304 ends in a partial group).
        var quantizedRatios = new Dictionary<int, List<double>> { [4] = new(), [8] = new() };
        int shapeIndex = 0;
        foreach (var s in GemmShape.GemmaPrefill.Concat(GemmShape.Siglip))
        {
            double reference = f32[shapeIndex++];
            foreach (int bits in new[] { 8, 4 })
            {
                using var op = new QuantizedOperands(s, bits);
                double g = s.Flops / BestSeconds(op.Run, 0.6) / 1e9;
                quantizedRatios[bits].Add(g / reference);
                Console.WriteLine($"{s,-32} Q{bits}    {g,8:F1} GFLOP/s  {g / reference:F2}× the F32 GEMM" + (bits == 8 ? $", {g / maddwd:P0} of the vpmaddwd peak" : ""));
            }
        }
        // Attention at the 896 px shapes against the same run's F32 prefill GEMM (issue 13's goal: ≥ 0.75 of it).
        double gemm = f32.Average();
        var attention = new List<double>();
        foreach (var s in AttentionShape.Long)
        {
            var op = new AttentionOperands(s);
            double g = s.Flops / BestSeconds(op.Run, 2.0) / 1e9;
            attention.Add(g);
            Console.WriteLine($"attention {s,-40} {g,8:F1} GFLOP/s  {g / gemm:F2}× the F32 GEMM ({gemm:F1})");
        }
        var decode = new List<double>();
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
            foreach (var s in GemmShape.GemmaDecode.Append(GemmShape.LmHead))
            {
                double gbps = DecodeGBps(s, dtype);
                Console.WriteLine($"{s,-32} {dtype,-5} {gbps,8:F1} GB/s of weights  {gbps / bandwidth:P0} of bandwidth");
                if (dtype == DType.BF16) decode.Add(gbps);
            }
        var decodeSpeedups = new Dictionary<int, List<double>> { [4] = new(), [8] = new() };
        foreach (var s in GemmShape.GemmaDecode.Append(GemmShape.LmHead))
        {
            double bf16 = DecodeSeconds(s);
            foreach (int bits in new[] { 8, 4 })
            {
                long bytes = (long)s.N * s.K * bits / 8;
                int copies = (int)Math.Max(1, (256L << 20) / bytes);
                using var op = new QuantizedOperands(s, bits, copies);
                double seconds = BestSeconds(op.RunAllCopies, 0.5) / copies;
                decodeSpeedups[bits].Add(bf16 / seconds);
                Console.WriteLine($"{s,-32} Q{bits}    {op.Bytes / seconds / 1e9,8:F1} GB/s of weights  {bf16 / seconds:F2}× BF16's speed");
            }
        }
        // Batched decode (purevlm serve, bench --concurrency): m requests' rows through the same BF16 weights in one pass.
        foreach (int m in new[] { 4, 8 })
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gemma2-decode BF16 m={m}: {BatchedDecodeSpeedup(m):F2}× the tokens per second of m=1 (all four shapes, weights streamed from memory)"));
        // The machine may be shared: measure the ceilings again at the end and keep the higher value of each.
        peak = Math.Max(peak, FmaPeakGflops(threads));
        bandwidth = Math.Max(bandwidth, BandwidthGBps(threads));
        Console.WriteLine($"ceilings (max of start and end): {peak:F1} GFLOP/s, {bandwidth:F1} GB/s");
        Console.WriteLine($"loadavg after: {File.ReadAllText("/proc/loadavg").Trim()}");
        double pf = prefill.Average(), dc = decode.Average();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"prefill_gflops\": {pf:F1}, \"fma_peak_gflops\": {peak:F1}, \"prefill_peak_ratio\": {pf / peak:F3}, \"decode_bf16_gbps\": {dc:F2}, \"bandwidth_gbps\": {bandwidth:F2}, \"decode_bandwidth_ratio\": {dc / bandwidth:F3}, \"attention_gemm_ratio\": [{string.Join(", ", attention.Select(a => (a / gemm).ToString("F3", CultureInfo.InvariantCulture)))}], \"maddwd_fma_peak_ratio\": {maddwd / peak:F3}, \"q8_gemm_f32_ratio\": {quantizedRatios[8].Average():F3}, \"q4_gemm_f32_ratio\": {quantizedRatios[4].Average():F3}, \"q8_decode_bf16_speedup\": {decodeSpeedups[8].Average():F3}, \"q4_decode_bf16_speedup\": {decodeSpeedups[4].Average():F3}}}"));
    }

    static double BestSeconds(Action run, double budgetSeconds)
    {
        run();
        double best = double.MaxValue;
        var total = Stopwatch.StartNew();
        int reps = 0;
        while (reps < 3 || total.Elapsed.TotalSeconds < budgetSeconds)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            reps++;
        }
        return best;
    }

    static double Gflops(GemmShape s, DType dtype)
    {
        using var op = new Operands(s, dtype);
        return s.Flops / BestSeconds(op.Run, 0.6) / 1e9;
    }

    /// <summary>Seconds of one BF16 decode call with the weights streamed from memory.</summary>
    static double DecodeSeconds(GemmShape s)
    {
        long bytes = (long)s.N * s.K * 2;
        int copies = (int)Math.Max(1, (256L << 20) / bytes);
        using var op = new Operands(s, DType.BF16, copies);
        return BestSeconds(op.RunAllCopies, 0.5) / copies;
    }

    static double DecodeGBps(GemmShape s, DType dtype)
    {
        long bytes = (long)s.N * s.K * dtype.Size();
        int copies = (int)Math.Max(1, (256L << 20) / bytes); // 256 MiB of weights: far beyond any cache
        using var op = new Operands(s, dtype, copies);
        return bytes * copies / BestSeconds(op.RunAllCopies, 0.5) / 1e9;
    }

    /// <summary>
    /// Tokens per second of m rows per pass over those of one row, over the Gemma 2 decode shapes with BF16 weights far beyond
    /// any cache: m · t(1) / t(m), which is what batching m requests can gain at most in the Linears.
    /// </summary>
    static double BatchedDecodeSpeedup(int m)
    {
        double Seconds(int rows) => GemmShape.GemmaDecode.Sum(s =>
        {
            int copies = (int)Math.Max(1, (256L << 20) / ((long)s.N * s.K * DType.BF16.Size()));
            using var op = new Operands(s with { M = rows }, DType.BF16, copies);
            return BestSeconds(op.RunAllCopies, 0.5);
        });
        return m * Seconds(1) / Seconds(m);
    }

    /// <summary>
    /// The 8-bit kernel's instruction ceiling: all threads run a register-only loop of independent <c>vpmaddwd</c> +
    /// <c>vpaddd</c> pairs (32 int16 products each), as the kernel's inner loop issues them. Counted as 2 operations
    /// per product, like the FMA peak's FLOP, so the two compare directly.
    /// </summary>
    static double MaddwdPeakGops(int threads)
    {
        const long iterations = 20_000_000;
        const int accumulators = 12;
        if (!Avx512BW.IsSupported) return double.NaN;
        MaddwdLoop(1000);
        double seconds = BestSeconds(() => OnAllThreads(threads, _ => MaddwdLoop(iterations)), 1.0);
        return threads * iterations * accumulators * 32 * 2.0 / seconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int MaddwdLoop(long iterations)
    {
        // The multiplier changes every iteration, so no product is loop-invariant (constant operands got hoisted),
        // and the accumulators chain only through vpaddd.
        var step = Vector512.Create((short)1);
        var b = step;
        Vector512<short> a0 = Vector512.Create((short)3), a1 = a0 + step, a2 = a1 + step, a3 = a2 + step, a4 = a3 + step, a5 = a4 + step;
        Vector512<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iterations; i++)
        {
            b += step;
            c0 += Avx512BW.MultiplyAddAdjacent(a0, b); c1 += Avx512BW.MultiplyAddAdjacent(a1, b);
            c2 += Avx512BW.MultiplyAddAdjacent(a2, b); c3 += Avx512BW.MultiplyAddAdjacent(a3, b);
            c4 += Avx512BW.MultiplyAddAdjacent(a4, b); c5 += Avx512BW.MultiplyAddAdjacent(a5, b);
            c6 += Avx512BW.MultiplyAddAdjacent(b, a0); c7 += Avx512BW.MultiplyAddAdjacent(b, a1);
            c8 += Avx512BW.MultiplyAddAdjacent(b, a2); c9 += Avx512BW.MultiplyAddAdjacent(b, a3);
            c10 += Avx512BW.MultiplyAddAdjacent(b, a4); c11 += Avx512BW.MultiplyAddAdjacent(b, a5);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>All threads run a register-only loop of independent Vector512 FMAs.</summary>
    static double FmaPeakGflops(int threads)
    {
        const long iterations = 20_000_000;
        const int accumulators = 12;
        FmaLoop(1000);
        double seconds = BestSeconds(() => OnAllThreads(threads, _ => FmaLoop(iterations)), 1.0);
        return threads * iterations * accumulators * Vector512<float>.Count * 2.0 / seconds / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float FmaLoop(long iterations)
    {
        var m = Vector512.Create(0.999f);
        var a = Vector512.Create(1e-3f);
        Vector512<float> c0 = Vector512.Create(1f), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (long i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>Streaming read of a 1 GiB buffer split over all threads.</summary>
    static double BandwidthGBps(int threads)
    {
        const long bytes = 1L << 30;
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            long count = bytes / 4;
            OnAllThreads(threads, t => new Span<float>(buffer + count * t / threads, (int)(count / threads)).Fill(1f));
            double seconds = BestSeconds(() => OnAllThreads(threads, t => SumRange(buffer + count * t / threads, count / threads)), 1.5);
            return bytes / seconds / 1e9;
        }
        finally { NativeMemory.AlignedFree(buffer); }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static float SumRange(float* p, long count)
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (long i = 0; i + 64 <= count; i += 64)
        {
            s0 += Vector512.Load(p + i); s1 += Vector512.Load(p + i + 16);
            s2 += Vector512.Load(p + i + 32); s3 += Vector512.Load(p + i + 48);
        }
        return Vector512.Sum(s0 + s1 + s2 + s3);
    }

    static void OnAllThreads(int threads, Action<int> body)
    {
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++) { int id = t; workers[t] = new Thread(() => body(id)); workers[t].Start(); }
        foreach (var w in workers) w.Join();
    }
}
