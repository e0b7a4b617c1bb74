using System.Runtime.InteropServices;

namespace PureVlm.Tensors;

/// <summary>
/// A weight matrix [rows, columns] in MLX's affine quantization: each row is cut into groups of <see cref="GroupSize"/>
/// columns, each group holds unsigned integers q of <see cref="Bits"/> bits and a scale and bias in
/// <see cref="ScaleType"/>, and the weight is <c>scale · q + bias</c>. Held in native memory in the panel layout the
/// integer kernels read (decode and prefill alike), built once at load from an MLX checkpoint's packed tensors or by
/// quantizing float rows.
/// </summary>
/// <remarks>
/// Layout: rows are taken <see cref="PanelRows"/> at a time (a panel; the last one zero-padded); a panel is a run of
/// blocks, one per group, each <c>[16 scales][16 biases][weights]</c>. The weights of a block come in units over 16
/// rows: 4 bits, 8 columns per unit, byte <c>4·r + t</c> = q[r, t] | q[r, t + 4] ≪ 4 (t &lt; 4), so one 64-byte load gives
/// two 16 × 4 byte operands after a mask and a shift; 8 bits, 2 columns per unit, byte <c>2·r + t</c> = q[r, t].
/// The first 8 rows of a unit are its first half, so 256-bit kernels take a panel as two 8-row halves.
/// </remarks>
public sealed unsafe class QuantizedTensor : IWeightMatrix, IDisposable
{
    /// <summary>Rows (output features) per panel.</summary>
    public const int PanelRows = 16;

    /// <summary>The group sizes MLX uses (and the kernels take).</summary>
    public static readonly int[] GroupSizes = [32, 64, 128];
    /// <summary>The bit widths the kernels take.</summary>
    public static readonly int[] BitWidths = [4, 8];

    byte* _panels;

    /// <inheritdoc/>
    public string Name { get; }
    /// <summary>Rows (out_features).</summary>
    public int Rows { get; }
    /// <summary>Columns (in_features).</summary>
    public int Columns { get; }
    /// <summary>Bits per weight: 4 or 8.</summary>
    public int Bits { get; }
    /// <summary>Columns per group: 32, 64 or 128.</summary>
    public int GroupSize { get; }
    /// <summary>The dtype of the scales and biases (F32, BF16 or F16, as the source had them).</summary>
    public DType ScaleType { get; }
    /// <inheritdoc/>
    public long[] Shape => [Rows, Columns];
    /// <inheritdoc/>
    public string ShapeString => $"[{Rows}, {Columns}]";
    /// <summary>
    /// Groups per row. When <see cref="GroupSize"/> does not divide <see cref="Columns"/> (SigLIP's fc2, in_features 4304,
    /// quantized at load), the last group is partial: its padding columns hold q = 0 and meet zero activations.
    /// </summary>
    public int Groups => (Columns + GroupSize - 1) / GroupSize;
    /// <summary>Columns rounded up to whole groups: the row length of the kernels' quantized activations.</summary>
    public int PaddedColumns => Groups * GroupSize;
    /// <summary>Bytes of one block (one panel's scales, biases and weights of one group).</summary>
    public int BlockBytes { get; }
    /// <summary>Bytes of all panels.</summary>
    public long ByteLength => (long)PanelCount * Groups * BlockBytes;
    /// <summary>Number of panels.</summary>
    public int PanelCount => (Rows + PanelRows - 1) / PanelRows;
    /// <summary>Bytes the same weights take in MLX's layout on disk (packed integers, scales and biases).</summary>
    public long MlxBytes => (long)Rows * PaddedColumns * Bits / 8 + 2L * Rows * Groups * ScaleType.Size();
    /// <summary>The first panel (kernels only).</summary>
    internal byte* Panels => _panels != null ? _panels : throw new ObjectDisposedException(Name);

    /// <summary>An all-zero quantized matrix to be filled with <see cref="WriteMlxRows"/> or <see cref="QuantizeRows"/>.</summary>
    public QuantizedTensor(string name, int rows, int columns, int bits, int groupSize, DType scaleType)
    {
        if (!BitWidths.Contains(bits)) throw new ArgumentException($"{name}: {bits}-bit weights, expected 4 or 8");
        if (!GroupSizes.Contains(groupSize)) throw new ArgumentException($"{name}: group size {groupSize}, expected 32, 64 or 128");
        if (scaleType is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"{name}: scales of dtype {scaleType.Name()}, expected F32, BF16 or F16");
        if (rows <= 0 || columns <= 0) throw new ArgumentException($"{name}: shape [{rows}, {columns}] cannot be quantized (rows and columns must be positive)");
        (Name, Rows, Columns, Bits, GroupSize, ScaleType) = (name, rows, columns, bits, groupSize, scaleType);
        BlockBytes = 2 * PanelRows * scaleType.Size() + PanelRows * groupSize * bits / 8;
        _panels = (byte*)NativeMemory.AlignedAlloc((nuint)ByteLength, 64);
        NativeMemory.Clear(_panels, (nuint)ByteLength);
        GC.AddMemoryPressure(ByteLength);
    }

    byte* Block(int row, int group) => Panels + ((long)(row / PanelRows) * Groups + group) * BlockBytes;

    /// <summary>
    /// Stores rows [first, first + count) from MLX's layout: <paramref name="packed"/> holds each row's q values as
    /// little-endian uint32 words, lowest bits first (Columns·Bits/32 words per row); <paramref name="scales"/> and
    /// <paramref name="biases"/> hold Groups values per row in <see cref="ScaleType"/>.
    /// </summary>
    public void WriteMlxRows(int first, int count, ReadOnlySpan<byte> packed, ReadOnlySpan<byte> scales, ReadOnlySpan<byte> biases)
    {
        CheckRows(first, count);
        if (Columns % GroupSize != 0) throw new InvalidOperationException($"{Name}: MLX's layout holds whole groups only ({Columns} columns, groups of {GroupSize})");
        int rowBytes = Columns * Bits / 8, scaleBytes = Groups * ScaleType.Size();
        if (packed.Length != count * rowBytes || scales.Length != count * scaleBytes || biases.Length != count * scaleBytes)
            throw new ArgumentException($"{Name}: {count} rows need {count * rowBytes} packed and {count * scaleBytes} scale bytes");
        int size = ScaleType.Size();
        for (int r = 0; r < count; r++)
        {
            var row = packed.Slice(r * rowBytes, rowBytes);
            for (int g = 0; g < Groups; g++)
            {
                byte* block = Block(first + r, g);
                int lane = (first + r) % PanelRows;
                scales.Slice(r * scaleBytes + g * size, size).CopyTo(new Span<byte>(block + lane * size, size));
                biases.Slice(r * scaleBytes + g * size, size).CopyTo(new Span<byte>(block + (PanelRows + lane) * size, size));
                // Little-endian words with the first value in the lowest bits: value i is bits [i·Bits, (i+1)·Bits) of
                // the row. At 8 bits that is a byte per value; at 4 bits byte b holds values 2b (low) and 2b + 1 (high).
                var src = row.Slice(g * GroupSize * Bits / 8, GroupSize * Bits / 8);
                byte* w = block + 2 * PanelRows * size;
                if (Bits == 8)
                    for (int c = 0; c < GroupSize; c++) w[(c >> 1) * 32 + lane * 2 + (c & 1)] = src[c];
                else
                    for (int u = 0; u < GroupSize / 8; u++)
                    {
                        // Unit u's byte 4·lane + t takes value 8u + t (low nibble) and 8u + t + 4 (high nibble).
                        uint lo = MemoryMarshal.Read<uint>(src.Slice(4 * u, 4)); // values 8u .. 8u + 7
                        byte* unit = w + u * 64 + lane * 4;
                        for (int t = 0; t < 4; t++)
                            unit[t] = (byte)((lo >> (4 * t) & 0x0F) | (lo >> (4 * (t + 4)) & 0x0F) << 4);
                    }
            }
        }
    }

    /// <summary>
    /// Quantizes float rows [first, first + count) (<paramref name="values"/> is count × Columns) as MLX's
    /// <c>mx.quantize</c> does, group by group (<see cref="QuantizeGroup"/>).
    /// </summary>
    public void QuantizeRows(int first, int count, ReadOnlySpan<float> values)
    {
        CheckRows(first, count);
        if (values.Length != (long)count * Columns) throw new ArgumentException($"{Name}: {count} rows need {(long)count * Columns} values");
        int size = ScaleType.Size();
        Span<byte> q = stackalloc byte[GroupSize];
        for (int r = 0; r < count; r++)
            for (int g = 0; g < Groups; g++)
            {
                int width = Math.Min(GroupSize, Columns - g * GroupSize); // the last group may be partial: the rest stays q = 0
                var (scale, bias) = QuantizeGroup(values.Slice(r * Columns + g * GroupSize, width), Bits, ScaleType, q, Name, first + r);
                byte* block = Block(first + r, g);
                int lane = (first + r) % PanelRows;
                StoreScalar(block + lane * size, scale);
                StoreScalar(block + (PanelRows + lane) * size, bias);
                for (int c = 0; c < width; c++) Put(block, lane, c, q[c]);
            }
    }

    /// <summary>
    /// MLX's affine rule for one group: the extreme of larger magnitude is the edge and becomes the bias (q = 0), the
    /// scale (negative when the edge is the maximum) is nudged so that edge/scale is a whole number and 0.0 is exactly
    /// representable; scale and bias are rounded to <paramref name="scaleType"/> and q computed from the rounded pair,
    /// rounding half to even and clipping to [0, 2^bits − 1]. <paramref name="name"/> and <paramref name="row"/> name a non-finite weight.
    /// </summary>
    public static (float Scale, float Bias) QuantizeGroup(ReadOnlySpan<float> w, int bits, DType scaleType, Span<byte> q, string name, long row)
    {
        int levels = (1 << bits) - 1;
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        foreach (float v in w)
        {
            if (!float.IsFinite(v)) throw new ArgumentException($"{name}: row {row} holds {v}; only finite weights can be quantized");
            min = Math.Min(min, v); max = Math.Max(max, v);
        }
        bool minIsEdge = Math.Abs(min) > Math.Abs(max);
        float scale = Math.Max((max - min) / levels, 1e-7f);
        if (!minIsEdge) scale = -scale;
        float edge = minIsEdge ? min : max;
        float q0 = MathF.Round(edge / scale);
        if (q0 != 0) scale = edge / q0;
        float bias = q0 == 0 ? 0 : edge;
        scale = RoundTo(scaleType, scale);
        bias = RoundTo(scaleType, bias);
        for (int c = 0; c < w.Length; c++)
            q[c] = (byte)Math.Clamp(scale == 0 ? 0 : MathF.Round((w[c] - bias) / scale), 0, levels);
        return (scale, bias);
    }

    /// <summary>
    /// The name MLX gives a quantized weight's scales or biases: beside the module (<c>…q_proj.weight</c> →
    /// <c>…q_proj.scales</c>), or after the full name of a weight not called <c>weight</c>.
    /// </summary>
    public static string CompanionName(string weightName, string suffix) =>
        (weightName.EndsWith(".weight", StringComparison.Ordinal) ? weightName[..^7] : weightName == "weight" ? "" : weightName) is var module && module.Length > 0
            ? module + "." + suffix : suffix;

    void CheckRows(int first, int count)
    {
        if (first < 0 || count < 0 || first + count > Rows) throw new ArgumentOutOfRangeException(nameof(first), $"{Name}: rows [{first}, {first + count}) outside [0, {Rows})");
    }

    /// <summary>
    /// Where q of panel row <paramref name="lane"/>, column <paramref name="c"/> of a group lies among a block's weight
    /// bytes, and its shift within that byte (the layout in the remarks above).
    /// </summary>
    internal static int WeightByte(int bits, int lane, int c, out int shift)
    {
        if (bits == 8) { shift = 0; return (c >> 1) * 32 + lane * 2 + (c & 1); }
        shift = (c & 4) == 0 ? 0 : 4;
        return (c >> 3) * 64 + lane * 4 + (c & 3);
    }

    void Put(byte* block, int lane, int c, int q)
    {
        byte* b = block + 2 * PanelRows * ScaleType.Size() + WeightByte(Bits, lane, c, out int shift);
        int mask = ((1 << Bits) - 1) << shift;
        *b = (byte)((*b & ~mask) | (q << shift));
    }

    /// <summary>The integer q of (row, column).</summary>
    public int Quant(int row, int column)
    {
        byte* w = Block(row, column / GroupSize) + 2 * PanelRows * ScaleType.Size();
        return (w[WeightByte(Bits, row % PanelRows, column % GroupSize, out int shift)] >> shift) & ((1 << Bits) - 1);
    }

    /// <summary>The scale and bias of (row, group), as float32.</summary>
    public (float Scale, float Bias) ScaleAndBias(int row, int group)
    {
        byte* block = Block(row, group);
        int lane = row % PanelRows, size = ScaleType.Size();
        return (LoadScalar(block + lane * size), LoadScalar(block + (PanelRows + lane) * size));
    }

    /// <inheritdoc/>
    public void ReadFloats(long start, Span<float> dst)
    {
        if (start < 0 || start + dst.Length > (long)Rows * Columns) throw new ArgumentOutOfRangeException(nameof(start));
        for (int i = 0; i < dst.Length; i++)
        {
            long e = start + i;
            int row = (int)(e / Columns), column = (int)(e % Columns);
            var (scale, bias) = ScaleAndBias(row, column / GroupSize);
            dst[i] = scale * Quant(row, column) + bias;
        }
    }

    float LoadScalar(byte* p) => ScaleType switch
    {
        DType.BF16 => BitConverter.UInt32BitsToSingle((uint)*(ushort*)p << 16),
        DType.F16 => (float)*(Half*)p,
        _ => *(float*)p,
    };

    void StoreScalar(byte* p, float v) => Convert.FromF32(ScaleType, v, new Span<byte>(p, ScaleType.Size()));

    /// <summary>The float32 value of <paramref name="v"/> rounded to <paramref name="type"/> (nearest even).</summary>
    public static float RoundTo(DType type, float v) => type switch
    {
        DType.BF16 => BitConverter.UInt32BitsToSingle((uint)Convert.F32ToBf16(v) << 16),
        DType.F16 => (float)(Half)v,
        _ => v,
    };

    /// <summary>Frees the panels.</summary>
    public void Dispose()
    {
        if (_panels == null) return;
        NativeMemory.AlignedFree(_panels);
        _panels = null;
        GC.RemoveMemoryPressure(ByteLength);
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees the panels of a quantized tensor nobody disposed.</summary>
    ~QuantizedTensor() => Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"{Name} Q{Bits}g{GroupSize}[{Rows}, {Columns}]";
}
