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

    /// <summary>How float matrices are quantized as they load (<see cref="GetMatrix"/>), or null to keep them as stored.</summary>
    public QuantizationRecipe? Quantize { get; }

    /// <summary>The root scope of a checkpoint; <paramref name="quantize"/> quantizes its float matrices as they load.</summary>
    public WeightScope(Checkpoint checkpoint, string prefix = "", QuantizationRecipe? quantize = null)
    {
        _checkpoint = checkpoint; Prefix = prefix; Quantize = quantize;
    }

    /// <summary>A child scope <c>prefix.name</c>.</summary>
    public WeightScope Sub(string name) => new(_checkpoint, FullName(name), Quantize);

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

    /// <summary>
    /// A square conv kernel [out, in, k, k] as HF stores it. One stored channels-last, [out, k, k, in], as mlx-vlm
    /// converts it, is reordered once into a float32 copy that the checkpoint keeps alive.
    /// </summary>
    public unsafe StoredTensor GetConvKernel(string name, long outChannels, long inChannels, long kernel)
    {
        if (inChannels == kernel || !_checkpoint.TryGet(FullName(name), out var t) || t.DType is not (DType.F32 or DType.BF16 or DType.F16)
            || !t.Shape.AsSpan().SequenceEqual(new[] { outChannels, kernel, kernel, inChannels }))
            return Get(name, outChannels, inChannels, kernel, kernel);
        long k = inChannels * kernel * kernel;
        var reordered = _checkpoint.KeepAlive(GC.AllocateUninitializedArray<float>(checked((int)(outChannels * k)), pinned: true));
        var row = new float[k];
        for (long o = 0; o < outChannels; o++)
        {
            t.ReadFloats(o * k, row);
            for (long y = 0; y < kernel; y++)
                for (long x = 0; x < kernel; x++)
                    for (long c = 0; c < inChannels; c++) reordered[o * k + (c * kernel + y) * kernel + x] = row[(y * kernel + x) * inChannels + c];
        }
        fixed (float* p = reordered) return new StoredTensor(t.Name, DType.F32, [outChannels, inChannels, kernel, kernel], (byte*)p, reordered.Length * 4L);
    }

    /// <summary>A float32 copy of a small tensor (norm weights, biases, position embeddings; MLX-quantized ones dequantized).</summary>
    public float[] GetFloats(string name, params long[] shape)
    {
        if (shape.Length == 2 && IsMlxQuantized(name))
        {
            using var q = LoadMlx(name, shape[0], shape[1]);
            var values = new float[shape[0] * shape[1]];
            q.ReadFloats(0, values);
            return values;
        }
        var t = Get(name, shape);
        var data = new float[t.ElementCount];
        t.ReadFloats(0, data);
        return data;
    }

    /// <summary>
    /// A weight matrix [rows, columns] (a Linear weight or a token embedding): MLX-quantized when the checkpoint has
    /// <c>scales</c> and <c>biases</c> beside it, quantized now when <see cref="Quantize"/> asks for it, else the stored tensor.
    /// </summary>
    public IWeightMatrix GetMatrix(string name, long rows, long columns, bool embedding = false)
    {
        if (IsMlxQuantized(name)) return _checkpoint.Adopt(LoadMlx(name, rows, columns));
        int bits = Quantize?.BitsFor(FullName(name), columns, embedding) ?? 0;
        if (bits == 0) return Get(name, rows, columns);
        var source = Get(name, rows, columns);
        return _checkpoint.Adopt(QuantizeRows(source, bits, Quantize!.GroupSize));
    }

    string Beside(string name, string suffix) => QuantizedTensor.CompanionName(FullName(name), suffix);

    bool IsMlxQuantized(string name) => _checkpoint.Contains(Beside(name, "scales"));

    // Rows are read a chunk at a time with file reads: memory stays at one chunk beside the panels. Rows are
    // independent in the panels, so slices of a chunk are packed on all cores.
    const int ChunkBytes = 8 << 20, Slice = 64;

    /// <summary>
    /// An MLX affine-quantized matrix: <c>weight</c> uint32 [rows, columns·bits/32], <c>scales</c> and <c>biases</c>
    /// [rows, columns/group_size], bits and group size read off the shapes (so mixed recipes need no per-layer config).
    /// </summary>
    QuantizedTensor LoadMlx(string name, long rows, long columns)
    {
        string full = FullName(name), path = _checkpoint.Path;
        if (!_checkpoint.TryGetForCopy(full, out var packed))
            throw new InvalidModelFileException($"{path}: missing tensor '{full}' (its scales are there: expected the packed uint32 weights)");
        _checkpoint.TryGetForCopy(Beside(name, "scales"), out var scales);
        if (!_checkpoint.TryGetForCopy(Beside(name, "biases"), out var biases))
            throw new InvalidModelFileException($"{path}: missing tensor '{Beside(name, "biases")}' beside '{scales.Name}' (MLX affine quantization stores both)");
        if (packed.DType != DType.U32 && packed.DType != DType.I32 || packed.Rank != 2 || packed.Shape[0] != rows || packed.Shape[1] * 32 % columns != 0)
            throw new InvalidModelFileException($"{path}: tensor '{full}' is {packed.DType.Name()}{packed.ShapeString}, expected packed U32 [{rows}, {columns}·bits/32] for a quantized [{rows}, {columns}] matrix");
        int bits = (int)(packed.Shape[1] * 32 / columns);
        if (!QuantizedTensor.BitWidths.Contains(bits))
            throw new InvalidModelFileException($"{path}: tensor '{full}' {packed.ShapeString} holds {bits}-bit values for {columns} columns; only 4- and 8-bit weights are supported");
        if (scales.Rank != 2 || scales.Shape[0] != rows || scales.Shape[1] == 0 || columns % scales.Shape[1] != 0 || !QuantizedTensor.GroupSizes.Contains((int)(columns / scales.Shape[1])))
            throw new InvalidModelFileException($"{path}: tensor '{scales.Name}' has shape {scales.ShapeString}, expected [{rows}, {columns}/group_size] with group_size 32, 64 or 128");
        if (scales.DType is not (DType.F32 or DType.BF16 or DType.F16) || biases.DType != scales.DType || !biases.Shape.AsSpan().SequenceEqual(scales.Shape))
            throw new InvalidModelFileException($"{path}: tensor '{biases.Name}' is {biases.DType.Name()}{biases.ShapeString} beside scales {scales.DType.Name()}{scales.ShapeString}; expected equal shapes in F32, BF16 or F16");
        int groupSize = (int)(columns / scales.Shape[1]);
        var q = new QuantizedTensor(full, checked((int)rows), checked((int)columns), bits, groupSize, scales.DType);
        try
        {
            int rowBytes = (int)(columns * bits / 8), scaleBytes = (int)(scales.Shape[1] * scales.DType.Size());
            int chunk = Math.Max(1, ChunkBytes / rowBytes);
            var bytes = new byte[chunk * rowBytes];
            var s = new byte[chunk * scaleBytes];
            var b = new byte[chunk * scaleBytes];
            for (int r = 0; r < rows; r += chunk)
            {
                int count = (int)Math.Min(chunk, rows - r);
                _checkpoint.Read(packed, (long)r * rowBytes, bytes.AsSpan(0, count * rowBytes));
                _checkpoint.Read(scales, (long)r * scaleBytes, s.AsSpan(0, count * scaleBytes));
                _checkpoint.Read(biases, (long)r * scaleBytes, b.AsSpan(0, count * scaleBytes));
                Parallel.For(0, (count + Slice - 1) / Slice, i =>
                {
                    int first = i * Slice, n = Math.Min(Slice, count - first);
                    q.WriteMlxRows(r + first, n, bytes.AsSpan(first * rowBytes, n * rowBytes), s.AsSpan(first * scaleBytes, n * scaleBytes), b.AsSpan(first * scaleBytes, n * scaleBytes));
                });
            }
            return q;
        }
        catch { q.Dispose(); throw; }
    }

    /// <summary>Quantizes a float matrix read a chunk of rows at a time; scales and biases keep the source's dtype.</summary>
    QuantizedTensor QuantizeRows(StoredTensor source, int bits, int groupSize)
    {
        _checkpoint.TryGetForCopy(source.Name, out _);
        int rows = (int)source.Shape[0], columns = (int)source.Shape[1], size = source.DType.Size();
        var q = new QuantizedTensor(source.Name, rows, columns, bits, groupSize, source.DType);
        try
        {
            int chunk = Math.Max(1, ChunkBytes / (columns * size));
            var bytes = new byte[chunk * columns * size];
            var values = new float[chunk * columns];
            for (int r = 0; r < rows; r += chunk)
            {
                int count = Math.Min(chunk, rows - r);
                var v = values.AsSpan(0, count * columns);
                _checkpoint.ReadFloats(source, (long)r * columns, v, bytes);
                var all = values;
                Parallel.For(0, (count + Slice - 1) / Slice, i =>
                {
                    int first = i * Slice, n = Math.Min(Slice, count - first);
                    q.QuantizeRows(r + first, n, all.AsSpan(first * columns, n * columns));
                });
            }
            return q;
        }
        catch { q.Dispose(); throw; }
    }
}
