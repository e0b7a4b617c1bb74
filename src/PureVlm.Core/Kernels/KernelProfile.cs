using System.Diagnostics;

namespace PureVlm.Kernels;

/// <summary>The kinds of kernel that <see cref="KernelProfile"/> times separately.</summary>
public enum KernelKind
{
    /// <summary>Linear layers (<see cref="Gemm.Linear"/>).</summary>
    Linear,
    /// <summary>Scaled dot-product attention (<see cref="Attention.Compute"/>).</summary>
    Attention,
    /// <summary>RMSNorm and LayerNorm.</summary>
    Norm,
    /// <summary>GELU, SiLU, quick_gelu, ReLU.</summary>
    Activation,
    /// <summary>Rotary position embedding.</summary>
    Rope,
    /// <summary>Row softmax and logit soft-capping outside attention.</summary>
    Softmax,
    /// <summary>Residual adds, products and scalings.</summary>
    ElementWise,
}

/// <summary>
/// What the kernels did: floating-point operations of Linear layers (2·m·n·k) and attention (4·nq·nk·d per head, the full
/// square whatever the mask skips), always counted; and, while <see cref="Enabled"/>, the wall time spent in each
/// <see cref="KernelKind"/> on the calling threads (<c>purevlm bench --profile</c>). Process-wide: meant for one request
/// at a time, as bench runs them.
/// </summary>
public static class KernelProfile
{
    static readonly long[] ticks = new long[Enum.GetValues<KernelKind>().Length];
    static readonly long[] calls = new long[ticks.Length];
    static long flops;

    /// <summary>Times the kernels while true (off by default: two timestamps per kernel call).</summary>
    public static bool Enabled { get; set; }

    /// <summary>Floating-point operations counted so far.</summary>
    public static long Flops => Interlocked.Read(ref flops);

    /// <summary>Seconds spent in kernels of <paramref name="kind"/> while <see cref="Enabled"/>.</summary>
    public static double Seconds(KernelKind kind) => (double)Interlocked.Read(ref ticks[(int)kind]) / Stopwatch.Frequency;

    /// <summary>Calls of kernels of <paramref name="kind"/> while <see cref="Enabled"/>.</summary>
    public static long Calls(KernelKind kind) => Interlocked.Read(ref calls[(int)kind]);

    /// <summary>Zeroes the times and call counts (not <see cref="Flops"/>, which callers difference).</summary>
    public static void ResetTimes()
    {
        Array.Clear(ticks);
        Array.Clear(calls);
    }

    internal static void AddFlops(double count) => Interlocked.Add(ref flops, (long)count);

    /// <summary>Starts timing one kernel call; dispose to stop. Does nothing unless <see cref="Enabled"/>.</summary>
    internal static Scope Time(KernelKind kind) => new(kind, Enabled ? Stopwatch.GetTimestamp() : 0);

    internal readonly struct Scope(KernelKind kind, long start) : IDisposable
    {
        public void Dispose()
        {
            if (start == 0) return;
            Interlocked.Add(ref ticks[(int)kind], Stopwatch.GetTimestamp() - start);
            Interlocked.Increment(ref calls[(int)kind]);
        }
    }
}
