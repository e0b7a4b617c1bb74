using System.Text.RegularExpressions;
using PureVlm.Formats;

namespace PureVlm.Inspection;

/// <summary>How one tensor of trace B differs from the same tensor of trace A.</summary>
/// <param name="Name">Tensor name, e.g. <c>text.layers.2</c>.</param>
/// <param name="ShapeA">Shape in A, as "[a, b]".</param>
/// <param name="ShapeB">Shape in B, or null when B lacks the tensor.</param>
/// <param name="MaxAbs">max |b − a|.</param>
/// <param name="MaxRel">max |b − a| / max |a| (the fixtures' tolerance measure; element-wise ratios are meaningless near zero).</param>
/// <param name="Cosine">Cosine similarity of a and b as flat vectors.</param>
/// <param name="WithinTolerance">False when shapes differ, B lacks the tensor, or MaxRel exceeds the tolerance.</param>
public sealed record TensorDifference(string Name, string ShapeA, string? ShapeB, double MaxAbs, double MaxRel, double Cosine, bool WithinTolerance);

/// <summary>Compares two trace files tensor by tensor, in forward order.</summary>
public static partial class TraceDiff
{
    /// <summary>Every tensor of A (in forward order) against B; B's extra tensors are not reported.</summary>
    public static IReadOnlyList<TensorDifference> Compare(string pathA, string pathB, double tolerance)
    {
        using var a = SafeTensorsFile.Open(pathA);
        using var b = SafeTensorsFile.Open(pathB);
        var result = new List<TensorDifference>();
        foreach (var name in a.Names.OrderBy(ForwardRank).ThenBy(n => n, StringComparer.Ordinal))
        {
            var ta = a[name];
            if (!b.TryGet(name, out var tb))
            {
                result.Add(new TensorDifference(name, ta.ShapeString, null, double.NaN, double.NaN, double.NaN, false));
                continue;
            }
            if (!ta.Shape.SequenceEqual(tb.Shape))
            {
                result.Add(new TensorDifference(name, ta.ShapeString, tb.ShapeString, double.NaN, double.NaN, double.NaN, false));
                continue;
            }
            var (maxAbs, maxRef, cosine) = Measure(ta, tb);
            double maxRel = maxRef > 0 ? maxAbs / maxRef : maxAbs;
            result.Add(new TensorDifference(name, ta.ShapeString, tb.ShapeString, maxAbs, maxRel, cosine, maxRel <= tolerance));
        }
        return result;
    }

    static (double MaxAbs, double MaxRef, double Cosine) Measure(Tensors.StoredTensor a, Tensors.StoredTensor b)
    {
        const int chunk = 4096;
        var bufA = new float[chunk];
        var bufB = new float[chunk];
        double maxAbs = 0, maxRef = 0, dot = 0, na = 0, nb = 0;
        for (long start = 0; start < a.ElementCount; start += chunk)
        {
            int n = (int)Math.Min(chunk, a.ElementCount - start);
            a.ReadFloats(start, bufA.AsSpan(0, n));
            b.ReadFloats(start, bufB.AsSpan(0, n));
            for (int i = 0; i < n; i++)
            {
                double x = bufA[i], y = bufB[i];
                maxAbs = Math.Max(maxAbs, Math.Abs(y - x));
                maxRef = Math.Max(maxRef, Math.Abs(x));
                dot += x * y; na += x * x; nb += y * y;
            }
        }
        double cosine = na > 0 && nb > 0 ? dot / Math.Sqrt(na * nb) : (na == nb ? 1 : 0);
        return (maxAbs, maxRef, cosine);
    }

    static readonly string[] Stages =
    [
        "image.resized", "image.cropped", "pixel_values", "vision.embeddings", "vision.pre_layrnorm", "vision.layers.", "vision.post_layernorm",
        "vision.selected", "projector.linear_1", "projector.pooled", "projector.normed", "projector",
        "input_ids", "token_type_ids", "position_ids", "text.mask_full", "text.mask_sliding", "text.inputs_embeds", "text.layers.", "text.norm", "logits", "generated_ids", "generated_logits",
    ];

    [GeneratedRegex(@"^(.*?\.layers\.)(\d+)(.*)$")]
    private static partial Regex LayerName();

    /// <summary>Sort key that puts trace points in the order the forward pass produces them.</summary>
    static (int Stage, int Layer, string Suffix) ForwardRank(string name)
    {
        var m = LayerName().Match(name);
        string stageKey = m.Success ? m.Groups[1].Value : name;
        int layer = m.Success ? int.Parse(m.Groups[2].Value) : -1;
        int stage = Array.FindIndex(Stages, s => stageKey == s);
        return (stage < 0 ? Stages.Length : stage, layer, m.Success ? m.Groups[3].Value : "");
    }
}
