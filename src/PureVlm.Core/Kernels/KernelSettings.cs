using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace PureVlm.Kernels;

/// <summary>Instruction-set paths of the kernels, from fastest to plainest.</summary>
public enum Isa
{
    /// <summary>Vector512 (AVX-512F) micro-kernels.</summary>
    Avx512,
    /// <summary>Vector256 with FMA (AVX2) micro-kernels.</summary>
    Avx2,
    /// <summary>Plain scalar loops (the reference path; also any CPU without the above).</summary>
    Scalar,
}

/// <summary>
/// Global kernel knobs: which instruction-set path the kernels take and how many threads they use.
/// Defaults come from the hardware and the environment variables <c>PUREVLM_ISA</c> (avx512|avx2|scalar)
/// and <c>PUREVLM_THREADS</c>.
/// </summary>
public static class KernelSettings
{
    static Isa isa = FromEnvironment();
    static int threads = ThreadsFromEnvironment();

    /// <summary>The best path this CPU supports.</summary>
    public static Isa Best =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? Isa.Avx512
        : Vector256.IsHardwareAccelerated && Fma.IsSupported && Avx2.IsSupported ? Isa.Avx2
        : Isa.Scalar;

    /// <summary>
    /// The path the kernels take. Setting a path the CPU lacks selects the best one it has below it
    /// (asking for Avx512 on an AVX2-only machine gives Avx2).
    /// </summary>
    public static Isa Isa
    {
        get => isa;
        set => isa = (Isa)Math.Max((int)value, (int)Best);
    }

    /// <summary>Threads the parallel kernels split work over (the caller plus pool workers); at least 1.</summary>
    public static int Threads
    {
        get => threads;
        set => threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), $"thread count must be ≥ 1, got {value}");
    }

    static Isa FromEnvironment()
    {
        var best = Best;
        var requested = Environment.GetEnvironmentVariable("PUREVLM_ISA")?.Trim().ToLowerInvariant() switch
        {
            null or "" => best,
            "avx512" => Isa.Avx512,
            "avx2" => Isa.Avx2,
            "scalar" => Isa.Scalar,
            var s => throw new InvalidOperationException($"PUREVLM_ISA='{s}' is not one of avx512, avx2, scalar"),
        };
        return (Isa)Math.Max((int)requested, (int)best);
    }

    static int ThreadsFromEnvironment()
    {
        var s = Environment.GetEnvironmentVariable("PUREVLM_THREADS");
        if (string.IsNullOrWhiteSpace(s)) return Environment.ProcessorCount;
        return int.TryParse(s, out int n) && n >= 1 ? n
            : throw new InvalidOperationException($"PUREVLM_THREADS='{s}' is not a positive integer");
    }
}
