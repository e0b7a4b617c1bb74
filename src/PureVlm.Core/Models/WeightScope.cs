using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>
/// A dotted prefix into a checkpoint, as candle's VarBuilder: <c>scope.Sub("layers").Sub(3).Get("q_proj.weight", 64, 64)</c>
/// fetches <c>….layers.3.q_proj.weight</c> and checks its shape. Errors name the full HF tensor name.
/// </summary>
public sealed class WeightScope
{
    readonly Checkpoint _checkpoint;

    /// <summary>The dotted prefix, e.g. <c>language_model.model.layers.3</c> (empty at the root).</summary>
    public string Prefix { get; }

    /// <summary>The root scope of a checkpoint.</summary>
    public WeightScope(Checkpoint checkpoint, string prefix = "") { _checkpoint = checkpoint; Prefix = prefix; }

    /// <summary>A child scope <c>prefix.name</c>.</summary>
    public WeightScope Sub(string name) => new(_checkpoint, FullName(name));

    /// <summary>A child scope <c>prefix.index</c> (a layer of a ModuleList).</summary>
    public WeightScope Sub(int index) => Sub(index.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The full tensor name of <paramref name="name"/> under this scope.</summary>
    public string FullName(string name) => Prefix.Length == 0 ? name : Prefix + "." + name;

    /// <summary>True when the tensor exists.</summary>
    public bool Contains(string name) => _checkpoint.Contains(FullName(name));

    /// <summary>The stored tensor <paramref name="name"/>, which must have exactly <paramref name="shape"/>.</summary>
    public StoredTensor Get(string name, params long[] shape)
    {
        string full = FullName(name);
        if (!_checkpoint.TryGet(full, out var t))
            throw new InvalidModelFileException($"{_checkpoint.Path}: missing tensor '{full}' (expected shape [{string.Join(", ", shape)}])");
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw new InvalidModelFileException($"{_checkpoint.Path}: tensor '{full}' has shape {t.ShapeString}, expected [{string.Join(", ", shape)}] from the config");
        if (t.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new InvalidModelFileException($"{_checkpoint.Path}: tensor '{full}' has dtype {t.DType.Name()}, expected F32, BF16 or F16");
        return t;
    }

    /// <summary>A float32 copy of a small tensor (norm weights, biases, position embeddings).</summary>
    public float[] GetFloats(string name, params long[] shape)
    {
        var t = Get(name, shape);
        var data = new float[t.ElementCount];
        t.ReadFloats(0, data);
        return data;
    }
}
