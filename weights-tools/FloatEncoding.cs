using System.Runtime.InteropServices;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>Writes float32 values to a stream as F32, BF16 (round to nearest even, as PyTorch) or F16, in chunks.</summary>
static class FloatEncoding
{
    /// <summary>Elements per chunk: bounds the memory of convert and synth to a few MB.</summary>
    public const int ChunkElements = 1 << 20;

    /// <summary>True for dtypes that convert rewrites.</summary>
    public static bool IsFloat(DType t) => t is DType.F32 or DType.BF16 or DType.F16 or DType.F64;

    /// <summary>Parses f32|bf16|f16.</summary>
    public static DType ParseTarget(string s) => s.ToLowerInvariant() switch
    {
        "f32" or "float32" => DType.F32,
        "bf16" or "bfloat16" => DType.BF16,
        "f16" or "float16" => DType.F16,
        _ => throw new UsageException($"--dtype '{s}' is not one of f32, bf16, f16"),
    };

    /// <summary>The config.json spelling (torch_dtype).</summary>
    public static string TorchName(DType t) => t switch
    {
        DType.F32 => "float32",
        DType.BF16 => "bfloat16",
        DType.F16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>Encodes <paramref name="src"/> as <paramref name="dtype"/> into <paramref name="scratch"/> and writes it.</summary>
    public static void Write(Stream stream, ReadOnlySpan<float> src, DType dtype, byte[] scratch)
    {
        var dst = scratch.AsSpan(0, src.Length * dtype.Size());
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case DType.BF16:
            {
                var u = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++) u[i] = PureVlm.Tensors.Convert.F32ToBf16(src[i]);
                break;
            }
            case DType.F16:
            {
                var h = MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < src.Length; i++) h[i] = (Half)src[i]; // IEEE round to nearest even
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "target dtype must be F32, BF16 or F16");
        }
        stream.Write(dst);
    }
}
