namespace PureVlm.Tensors;

/// <summary>Element types of stored tensors, named as safetensors names them.</summary>
public enum DType { F32, BF16, F16, F64, I64, I32, I16, I8, U8, Bool, U32 }

/// <summary>Sizes and names of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.BF16 or DType.F16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>The safetensors spelling ("F32", "BF16", "BOOL", …).</summary>
    public static string Name(this DType t) => t == DType.Bool ? "BOOL" : t.ToString().ToUpperInvariant();

    /// <summary>Parses a safetensors dtype string; false when unknown.</summary>
    public static bool TryParse(string s, out DType t)
    {
        switch (s)
        {
            case "F32": t = DType.F32; return true;
            case "BF16": t = DType.BF16; return true;
            case "F16": t = DType.F16; return true;
            case "F64": t = DType.F64; return true;
            case "I64": t = DType.I64; return true;
            case "I32": t = DType.I32; return true;
            case "U32": t = DType.U32; return true;
            case "I16": t = DType.I16; return true;
            case "I8": t = DType.I8; return true;
            case "U8": t = DType.U8; return true;
            case "BOOL": t = DType.Bool; return true;
            default: t = default; return false;
        }
    }
}
