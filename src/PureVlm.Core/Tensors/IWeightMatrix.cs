namespace PureVlm.Tensors;

/// <summary>
/// A weight matrix [rows, columns] as a Linear layer or an embedding holds it: stored floats read in place
/// (<see cref="StoredTensor"/>) or integer groups with scales and biases (<see cref="QuantizedTensor"/>).
/// </summary>
public interface IWeightMatrix
{
    /// <summary>The tensor's HF name, e.g. <c>language_model.model.layers.0.mlp.up_proj.weight</c>.</summary>
    string Name { get; }
    /// <summary>The logical shape ([out, in] for a Linear weight; a conv kernel keeps its own rank).</summary>
    long[] Shape { get; }
    /// <summary>Shape as "[a, b]".</summary>
    string ShapeString { get; }
    /// <summary>Float32 values of elements [start, start + dst.Length) in row-major order (dequantized when quantized).</summary>
    void ReadFloats(long start, Span<float> dst);
}
