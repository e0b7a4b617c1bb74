using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PureVlm.Kernels;

/// <summary>
/// How a kernel reads float32 values out of a weight row in its storage dtype. BF16 is widened in registers
/// (<c>(uint)bits &lt;&lt; 16</c> reinterpreted as float); nothing is converted in bulk.
/// </summary>
internal unsafe interface IWeightFormat
{
    /// <summary>Bytes per element.</summary>
    static abstract int Size { get; }
    /// <summary>Element <paramref name="i"/> of <paramref name="row"/>.</summary>
    static abstract float Load(byte* row, nint i);
    /// <summary>Elements [i, i + 16).</summary>
    static abstract Vector512<float> Load512(byte* row, nint i);
    /// <summary>Elements [i, i + 8).</summary>
    static abstract Vector256<float> Load256(byte* row, nint i);
}

internal readonly unsafe struct F32Format : IWeightFormat
{
    public static int Size => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, nint i) => ((float*)row)[i];
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint i) => Vector512.Load((float*)row + i);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint i) => Vector256.Load((float*)row + i);
}

internal readonly unsafe struct Bf16Format : IWeightFormat
{
    public static int Size => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, nint i) => BitConverter.UInt32BitsToSingle((uint)((ushort*)row)[i] << 16);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint i) =>
        Vector512.ShiftLeft(Vector512.WidenLower(Vector256.Load((ushort*)row + i).ToVector512Unsafe()), 16).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint i) =>
        Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load((ushort*)row + i).ToVector256Unsafe()), 16).AsSingle();
}
