using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace PureVlm.Kernels;

/// <summary>
/// How a kernel reads float32 values out of a weight row in its storage dtype. BF16 and F16 are widened in
/// registers (BF16: <c>(uint)bits &lt;&lt; 16</c> reinterpreted as float); nothing is converted in bulk.
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

/// <summary>
/// IEEE half widened exactly with integer ops, the same on Vector512 and Vector256: exponent and mantissa move up
/// 13 bits and the exponent is rebiased by 127 − 15; Inf/NaN get the rest of the float exponent range; zero and
/// subnormal halves are renormalised by one float subtraction (x·2⁻¹⁴ with an implicit 1, minus 2⁻¹⁴).
/// </summary>
internal readonly unsafe struct F16Format : IWeightFormat
{
    const uint ExpMask = 0x7C00u << 13, Rebias = (127 - 15) << 23, InfNanRebias = (128 - 16) << 23, One = 1u << 23, TwoToMinus14 = 113u << 23;

    public static int Size => 2;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* row, nint i) => (float)BitConverter.UInt16BitsToHalf(((ushort*)row)[i]);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(byte* row, nint i)
    {
        var h = Vector512.WidenLower(Vector256.Load((ushort*)row + i).ToVector512Unsafe());
        var o = (h & Vector512.Create(0x7FFFu)) << 13;
        var exp = o & Vector512.Create(ExpMask);
        o += Vector512.Create(Rebias);
        o += Vector512.Equals(exp, Vector512.Create(ExpMask)) & Vector512.Create(InfNanRebias);
        var small = ((o + Vector512.Create(One)).AsSingle() - Vector512.Create(TwoToMinus14).AsSingle()).AsUInt32();
        o = Vector512.ConditionalSelect(Vector512.Equals(exp, Vector512<uint>.Zero), small, o);
        return (o | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(byte* row, nint i)
    {
        var h = Vector256.WidenLower(Vector128.Load((ushort*)row + i).ToVector256Unsafe());
        var o = (h & Vector256.Create(0x7FFFu)) << 13;
        var exp = o & Vector256.Create(ExpMask);
        o += Vector256.Create(Rebias);
        o += Vector256.Equals(exp, Vector256.Create(ExpMask)) & Vector256.Create(InfNanRebias);
        var small = ((o + Vector256.Create(One)).AsSingle() - Vector256.Create(TwoToMinus14).AsSingle()).AsUInt32();
        o = Vector256.ConditionalSelect(Vector256.Equals(exp, Vector256<uint>.Zero), small, o);
        return (o | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }
}
