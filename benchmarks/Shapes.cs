namespace PureVlm.Benchmarks;

/// <summary>A Linear layer shape: y[m, n] = x[m, k] · W[n, k]ᵀ.</summary>
public readonly record struct GemmShape(string Model, int M, int K, int N)
{
    /// <summary>Floating-point operations of one product (a multiply and an add per term).</summary>
    public double Flops => 2.0 * M * K * N;

    /// <inheritdoc/>
    public override string ToString() => $"{Model} m={M} {K}→{N}";

    /// <summary>SigLIP So400m at 224 px (256 patches): qkv/o, fc1, fc2.</summary>
    public static readonly GemmShape[] Siglip =
    [
        new("siglip", 256, 1152, 3456), new("siglip", 256, 1152, 1152), new("siglip", 256, 1152, 4304), new("siglip", 256, 4304, 1152),
    ];

    /// <summary>Gemma 2 2B prefill (266 tokens: 256 image + prompt): q/o, k/v, gate/up, down.</summary>
    public static readonly GemmShape[] GemmaPrefill =
    [
        new("gemma2-prefill", 266, 2304, 2048), new("gemma2-prefill", 266, 2304, 1024), new("gemma2-prefill", 266, 2304, 9216), new("gemma2-prefill", 266, 9216, 2304),
    ];

    /// <summary>Gemma 2 2B decode: the same weights, one token.</summary>
    public static readonly GemmShape[] GemmaDecode = GemmaPrefill.Select(s => s with { Model = "gemma2-decode", M = 1 }).ToArray();

    /// <summary>PaliGemma 2's LM head at decode: 257,216 × 2304, 1.18 GB in BF16 of the 5.23 GB read per token.</summary>
    public static readonly GemmShape LmHead = new("lm-head-decode", 1, 2304, 257216);
}
