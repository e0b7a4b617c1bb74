using System.Text.RegularExpressions;

namespace PureVlm.Tensors;

/// <summary>
/// Which weights to quantize and how, when float weights are quantized (at load with <c>--quantize</c>, or by
/// <c>weights-tools quantize</c>): every Linear weight and token embedding at least one group wide (with
/// <see cref="WholeGroupsOnly"/>, only those whose in_features is a multiple of <see cref="GroupSize"/>) at <see cref="Bits"/>, except the token embedding (also the tied LM head) at
/// <see cref="EmbeddingBits"/>, and names matching <see cref="Skip"/>, which stay as they are.
/// </summary>
/// <param name="Bits">4 or 8.</param>
/// <param name="GroupSize">32, 64 or 128 (MLX's sizes; 64 by default, as MLX).</param>
/// <param name="EmbeddingBits">Bits of the token embedding / tied LM head: 8 by default (its errors reach every logit).</param>
/// <param name="Skip">A regular expression; weights whose names match it are not quantized. Null skips nothing.</param>
/// <param name="WholeGroupsOnly">
/// Leave float the weights whose in_features is not a multiple of <paramref name="GroupSize"/>, as MLX's files must (they
/// hold whole groups only; <c>weights-tools quantize</c> sets it). In memory a partial last group costs nothing, so by
/// default those are quantized too (SigLIP's fc2, in_features 4304: a third of the vision tower's FLOP).
/// </param>
public sealed record QuantizationRecipe(int Bits, int GroupSize = 64, int EmbeddingBits = 8, string? Skip = null, bool WholeGroupsOnly = false)
{
    readonly Regex? _skip = Skip == null ? null : new Regex(Skip, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>Checks the numbers; a one-line error names the bad one.</summary>
    public QuantizationRecipe Validate()
    {
        if (!QuantizedTensor.BitWidths.Contains(Bits)) throw new ArgumentException($"quantization bits {Bits}: expected 4 or 8");
        if (!QuantizedTensor.BitWidths.Contains(EmbeddingBits)) throw new ArgumentException($"embedding bits {EmbeddingBits}: expected 4 or 8");
        if (!QuantizedTensor.GroupSizes.Contains(GroupSize)) throw new ArgumentException($"group size {GroupSize}: expected 32, 64 or 128");
        return this;
    }

    /// <summary>The bits for a weight of that name and in_features, or 0 to leave it unquantized.</summary>
    public int BitsFor(string name, long columns, bool embedding)
    {
        // Narrower than one group: nothing to gain, and the only group would be mostly padding.
        if (columns < GroupSize || WholeGroupsOnly && columns % GroupSize != 0 || (_skip?.IsMatch(name) ?? false)) return 0;
        return embedding ? EmbeddingBits : Bits;
    }
}
