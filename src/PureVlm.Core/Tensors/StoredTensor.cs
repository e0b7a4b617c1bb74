namespace PureVlm.Tensors;

/// <summary>
/// A read-only view of a tensor as it lies in storage (usually a memory-mapped checkpoint):
/// its name, dtype, shape and bytes. Nothing is converted or copied until a kernel reads it;
/// the storage that owns the bytes must outlive the view.
/// </summary>
public sealed unsafe class StoredTensor : IWeightMatrix
{
    /// <summary>The tensor's name in its file, e.g. <c>language_model.model.layers.0.mlp.up_proj.weight</c>.</summary>
    public string Name { get; }
    /// <summary>Element type in storage.</summary>
    public DType DType { get; }
    /// <summary>Size of each dimension.</summary>
    public long[] Shape { get; }
    /// <summary>Address of the first byte.</summary>
    public byte* Pointer { get; }
    /// <summary>Number of bytes (elements × dtype size).</summary>
    public long ByteLength { get; }

    /// <summary>Describes bytes at <paramref name="pointer"/>; the caller guarantees they stay valid.</summary>
    public StoredTensor(string name, DType dtype, long[] shape, byte* pointer, long byteLength)
    {
        Name = name; DType = dtype; Shape = shape; Pointer = pointer; ByteLength = byteLength;
    }

    /// <summary>Number of elements.</summary>
    public long ElementCount
    {
        get { long n = 1; foreach (var s in Shape) n *= s; return n; }
    }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>The raw bytes.</summary>
    public ReadOnlySpan<byte> Bytes => new(Pointer, checked((int)ByteLength));

    /// <summary>Elements reinterpreted as <typeparamref name="T"/> (no conversion).</summary>
    public ReadOnlySpan<T> As<T>() where T : unmanaged => new(Pointer, checked((int)(ByteLength / sizeof(T))));

    /// <summary>Shape as "[a, b, c]".</summary>
    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    /// <summary>Converts elements [start, start + dst.Length) to float32.</summary>
    public void ReadFloats(long start, Span<float> dst)
    {
        if (start < 0 || start + dst.Length > ElementCount) throw new ArgumentOutOfRangeException(nameof(start));
        Convert.ToF32(DType, new ReadOnlySpan<byte>(Pointer + start * DType.Size(), checked(dst.Length * DType.Size())), dst);
    }

    /// <summary>A float32 copy as a compute tensor (for small tensors: norms, biases, embeddings rows in tests).</summary>
    public Tensor ToTensor()
    {
        var shape = new int[Rank];
        for (int i = 0; i < Rank; i++) shape[i] = checked((int)Shape[i]);
        var t = Tensor.Zeros(shape);
        ReadFloats(0, t.Data);
        return t;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {DType.Name()}{ShapeString}";
}
