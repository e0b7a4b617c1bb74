namespace PureVlm.Tensors;

/// <summary>
/// A dense float32 tensor for computation: a buffer, an offset, a shape and strides (in elements).
/// Slices, reshapes and transposes are views over the same buffer; nothing is copied until
/// <see cref="Contiguous"/> is asked for.
/// </summary>
public sealed class Tensor
{
    /// <summary>The backing buffer, shared by views.</summary>
    public float[] Data { get; }
    /// <summary>Index of element [0, 0, …] in <see cref="Data"/>.</summary>
    public int Offset { get; }
    /// <summary>Size of each dimension.</summary>
    public int[] Shape { get; }
    /// <summary>Step in <see cref="Data"/> between neighbours along each dimension.</summary>
    public int[] Strides { get; }

    /// <summary>Wraps a buffer with a shape and strides (row-major strides when <paramref name="strides"/> is null).</summary>
    public Tensor(float[] data, int[] shape, int offset = 0, int[]? strides = null)
    {
        Data = data;
        Shape = shape;
        Offset = offset;
        Strides = strides ?? RowMajorStrides(shape);
        if (strides == null && offset + Length > data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] at offset {offset} needs {Length} elements, buffer has {data.Length - offset}");
    }

    /// <summary>A new zero-filled tensor.</summary>
    public static Tensor Zeros(params int[] shape) => new(new float[checked(Product(shape))], shape);

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;
    /// <summary>Number of elements.</summary>
    public int Length => Product(Shape);

    /// <summary>True when the elements lie row-major and back to back.</summary>
    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (Shape[d] != 1 && Strides[d] != expected) return false;
                expected *= Shape[d];
            }
            return true;
        }
    }

    /// <summary>The elements of a contiguous tensor.</summary>
    public Span<float> Span => IsContiguous
        ? Data.AsSpan(Offset, Length)
        : throw new InvalidOperationException("tensor is not contiguous; call Contiguous() first");

    /// <summary>Element access by full index (slow path, for tests and tools).</summary>
    public float this[params int[] index]
    {
        get => Data[FlatIndex(index)];
        set => Data[FlatIndex(index)] = value;
    }

    /// <summary>Same elements, new shape; one dimension may be -1. Requires a contiguous tensor.</summary>
    public Tensor Reshape(params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            int rest = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) rest *= shape[i];
            shape[infer] = rest == 0 ? 0 : Length / rest;
        }
        if (Product(shape) != Length)
            throw new ArgumentException($"cannot reshape [{string.Join(", ", Shape)}] to [{string.Join(", ", shape)}]");
        if (!IsContiguous) throw new InvalidOperationException("reshape needs a contiguous tensor");
        return new Tensor(Data, shape, Offset);
    }

    /// <summary>A view of <paramref name="length"/> entries of dimension <paramref name="dim"/> starting at <paramref name="start"/>.</summary>
    public Tensor Slice(int dim, int start, int length)
    {
        if (dim < 0 || dim >= Rank || start < 0 || length < 0 || start + length > Shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) of dim {dim} with size {(dim >= 0 && dim < Rank ? Shape[dim] : -1)}");
        var shape = (int[])Shape.Clone();
        shape[dim] = length;
        return new Tensor(Data, shape, Offset + start * Strides[dim], (int[])Strides.Clone());
    }

    /// <summary>A view with two dimensions swapped.</summary>
    public Tensor Transpose(int a, int b)
    {
        var shape = (int[])Shape.Clone();
        var strides = (int[])Strides.Clone();
        (shape[a], shape[b]) = (shape[b], shape[a]);
        (strides[a], strides[b]) = (strides[b], strides[a]);
        return new Tensor(Data, shape, Offset, strides);
    }

    /// <summary>This tensor if contiguous, otherwise a row-major copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var result = Zeros(Shape);
        var dst = result.Data;
        var index = new int[Rank];
        for (int i = 0; i < dst.Length; i++)
        {
            dst[i] = Data[FlatIndex(index)];
            for (int d = Rank - 1; d >= 0; d--)
            {
                if (++index[d] < Shape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>A contiguous copy with its own buffer.</summary>
    public Tensor Clone()
    {
        var c = Contiguous();
        return ReferenceEquals(c, this) ? new Tensor(Span.ToArray(), (int[])Shape.Clone()) : c;
    }

    /// <summary>Shape as "[a, b, c]".</summary>
    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"Tensor{ShapeString}";

    int FlatIndex(int[] index)
    {
        if (index.Length != Rank) throw new ArgumentException($"index has {index.Length} dims, tensor has {Rank}");
        int flat = Offset;
        for (int d = 0; d < Rank; d++)
        {
            if ((uint)index[d] >= (uint)Shape[d]) throw new IndexOutOfRangeException($"index {index[d]} out of range for dim {d} of size {Shape[d]}");
            flat += index[d] * Strides[d];
        }
        return flat;
    }

    internal static int Product(int[] shape)
    {
        int n = 1;
        foreach (var s in shape) n = checked(n * s);
        return n;
    }

    static int[] RowMajorStrides(int[] shape)
    {
        var strides = new int[shape.Length];
        int s = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { strides[d] = s; s *= shape[d]; }
        return strides;
    }
}
