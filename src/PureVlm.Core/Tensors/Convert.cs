using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using PureVlm.Kernels;

namespace PureVlm.Tensors;

/// <summary>Vectorized conversions between storage dtypes and float32.</summary>
public static class Convert
{
    /// <summary>BF16 is the top half of an IEEE float32: widening is a 16-bit shift.</summary>
    public static void Bf16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short", nameof(dst));
        int i = 0;
        var isa = KernelSettings.Isa;
        if (isa == Isa.Avx512)
        {
            for (; i + 16 <= src.Length; i += 16)
            {
                var h = Vector256.Create(src.Slice(i, 16));
                var (lo, hi) = Vector256.Widen(h);
                var w = Vector512.Create(lo, hi);
                (w << 16).AsSingle().CopyTo(dst.Slice(i, 16));
            }
        }
        else if (isa == Isa.Avx2)
        {
            for (; i + 8 <= src.Length; i += 8)
            {
                var (lo, hi) = Vector128.Widen(Vector128.Create(src.Slice(i, 8)));
                (Vector256.Create(lo, hi) << 16).AsSingle().CopyTo(dst.Slice(i, 8));
            }
        }
        for (; i < src.Length; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
    }

    /// <summary>Rounds float32 to BF16 with round-to-nearest-even, as PyTorch does (NaN stays NaN).</summary>
    public static ushort F32ToBf16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>F16 to float32 through TensorPrimitives.</summary>
    public static void F16ToF32(ReadOnlySpan<Half> src, Span<float> dst) => TensorPrimitives.ConvertToSingle(src, dst);

    /// <summary>Writes <paramref name="v"/> as one little-endian F32, BF16 (rounded to nearest even) or F16 value.</summary>
    public static void FromF32(DType dtype, float v, Span<byte> dst)
    {
        switch (dtype)
        {
            case DType.BF16: System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(dst, F32ToBf16(v)); break;
            case DType.F16: System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)v); break;
            case DType.F32: System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(dst, v); break;
            default: throw new ArgumentException($"{dtype.Name()} is not a float dtype", nameof(dtype));
        }
    }

    /// <summary>
    /// dst.Length elements of <paramref name="dtype"/>, stored little-endian in <paramref name="src"/>, as float32
    /// (integers and booleans by value). Returns false, leaving dst as it was, for a dtype with no float value.
    /// </summary>
    public static bool ToF32(DType dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = dst.Length;
        switch (dtype)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src)[..n].CopyTo(dst); break;
            case DType.BF16: Bf16ToF32(MemoryMarshal.Cast<byte, ushort>(src)[..n], dst); break;
            case DType.F16: F16ToF32(MemoryMarshal.Cast<byte, Half>(src)[..n], dst); break;
            case DType.F64: { var s = MemoryMarshal.Cast<byte, double>(src); for (int i = 0; i < n; i++) dst[i] = (float)s[i]; break; }
            case DType.I64: { var s = MemoryMarshal.Cast<byte, long>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I32: { var s = MemoryMarshal.Cast<byte, int>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.U32: { var s = MemoryMarshal.Cast<byte, uint>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I16: { var s = MemoryMarshal.Cast<byte, short>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.I8: { var s = MemoryMarshal.Cast<byte, sbyte>(src); for (int i = 0; i < n; i++) dst[i] = s[i]; break; }
            case DType.U8 or DType.Bool: for (int i = 0; i < n; i++) dst[i] = src[i]; break;
            default: return false;
        }
        return true;
    }
}
