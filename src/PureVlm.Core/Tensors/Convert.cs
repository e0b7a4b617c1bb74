using System.Numerics.Tensors;
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
}
