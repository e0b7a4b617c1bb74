using System.IO.MemoryMappedFiles;
using System.Text.Json;
using System.Text.Unicode;
using PureVlm.Tensors;

namespace PureVlm.Formats;

/// <summary>Raised for a checkpoint or tensor file that cannot be used; the message names the file, the tensor and the problem.</summary>
public sealed class InvalidModelFileException(string message) : PureVlmException(message);

/// <summary>
/// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header
/// mapping names to dtype/shape/byte ranges, then the data. Tensors are views into the mapping.
/// The header is validated as the reference Rust crate does before any tensor is exposed: the
/// byte ranges, sorted, must tile the data section exactly (start at 0, no gap, no overlap, end at
/// the end of the file).
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted (the reference implementation's limit); real headers are well under 1 MB.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;
    /// <summary>Most dimensions accepted for one tensor.</summary>
    public const int MaxRank = 16;

    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    byte* _base;
    readonly Dictionary<string, StoredTensor> _tensors = new(StringComparer.Ordinal);
    readonly List<string> _order = new();

    /// <summary>Path of the file.</summary>
    public string Path { get; }
    /// <summary>The <c>__metadata__</c> entries, if any.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor names in header order.</summary>
    public IReadOnlyList<string> Names => _order;
    /// <summary>All tensors, in header order.</summary>
    public IEnumerable<StoredTensor> Tensors => _order.Select(n => _tensors[n]);
    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }
    /// <summary>Offset of the data section (8 + header length).</summary>
    public long DataOffset { get; }

    SafeTensorsFile(string path)
    {
        Path = path;
        FileLength = LinkedFile.Length(path) ?? throw new InvalidModelFileException($"{path}: file not found");
        if (FileLength < 8) throw new InvalidModelFileException($"{path}: file is {FileLength} bytes, too short for a safetensors header length (8 bytes)");
        try
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Dispose();
            throw new InvalidModelFileException($"{path}: cannot map the file ({e.Message})");
        }
        byte* p = null;
        _view!.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try
        {
            (Metadata, DataOffset) = ParseHeader(path, _base, FileLength, _tensors, _order);
        }
        catch { Dispose(); throw; }
    }

    /// <summary>Opens and validates a file; throws <see cref="InvalidModelFileException"/> when it is malformed.</summary>
    public static SafeTensorsFile Open(string path) => new(path);

    /// <summary>True when the file has a tensor of that name.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The tensor of that name; throws naming the file when absent.</summary>
    public StoredTensor this[string name] => _tensors.TryGetValue(name, out var t)
        ? t : throw new InvalidModelFileException($"{Path}: no tensor named '{name}'");

    /// <summary>Looks up a tensor.</summary>
    public bool TryGet(string name, out StoredTensor tensor) => _tensors.TryGetValue(name, out tensor!);

    readonly record struct Entry(string Name, DType DType, long[] Shape, long Begin, long End);

    static (IReadOnlyDictionary<string, string> Metadata, long DataOffset) ParseHeader(
        string path, byte* data, long fileLength, Dictionary<string, StoredTensor> tensors, List<string> order)
    {
        ulong headerLength = *(ulong*)data; // little-endian on every platform .NET runs this on
        if (headerLength > (ulong)MaxHeaderBytes)
            throw Bad(path, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLength > fileLength - 8)
            throw Bad(path, $"header length {headerLength} runs past the end of the file ({fileLength} bytes)");
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        var headerBytes = new ReadOnlySpan<byte>(data + 8, (int)headerLength);
        if (headerBytes.IsEmpty || headerBytes[0] != (byte)'{')
            throw Bad(path, headerBytes.IsEmpty ? "header is empty, expected a JSON object" : $"header starts with byte 0x{headerBytes[0]:X2}, expected '{{'");
        if (!Utf8.IsValid(headerBytes))
            throw Bad(path, "header is not valid UTF-8");

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw Bad(path, $"header is not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }

        using (doc)
        {
            // A document starting with '{' that parsed is an object.
            Dictionary<string, string>? metadata = null;
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Bad(path, $"'{Trim(property.Name)}' appears twice in the header");
                if (property.Name == "__metadata__") metadata = ParseMetadata(path, property.Value);
                else entries.Add(ParseEntry(path, property.Name, property.Value));
            }
            CheckTiling(path, entries, dataLength);
            foreach (var e in entries)
            {
                tensors[e.Name] = new StoredTensor(e.Name, e.DType, e.Shape, data + dataStart + e.Begin, e.End - e.Begin);
                order.Add(e.Name);
            }
            return (metadata ?? new Dictionary<string, string>(), dataStart);
        }
    }

    static Dictionary<string, string> ParseMetadata(string path, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Bad(path, $"__metadata__ is JSON {value.ValueKind}, expected an object of strings");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw Bad(path, $"__metadata__ value '{Trim(m.Name)}' is JSON {m.Value.ValueKind}, expected a string");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw Bad(path, $"__metadata__ key '{Trim(m.Name)}' appears twice");
        }
        return metadata;
    }

    static Entry ParseEntry(string path, string name, JsonElement t)
    {
        if (t.ValueKind != JsonValueKind.Object)
            throw Bad(path, name, $"entry is JSON {t.ValueKind}, expected an object with dtype, shape, data_offsets");
        JsonElement? dtypeEl = null, shapeEl = null, offsetsEl = null;
        foreach (var field in t.EnumerateObject())
        {
            ref JsonElement? slot = ref dtypeEl;
            switch (field.Name)
            {
                case "dtype": slot = ref dtypeEl; break;
                case "shape": slot = ref shapeEl; break;
                case "data_offsets": slot = ref offsetsEl; break;
                default: continue; // unknown fields are ignored, as the reference crate does
            }
            if (slot != null) throw Bad(path, name, $"field '{field.Name}' appears twice");
            slot = field.Value;
        }
        if (dtypeEl is not { ValueKind: JsonValueKind.String } dtypeValue)
            throw Bad(path, name, "missing string 'dtype'");
        string dtypeName = dtypeValue.GetString()!;
        if (!DTypes.TryParse(dtypeName, out var dtype))
            throw Bad(path, name, $"unknown dtype '{Trim(dtypeName)}' (expected F32, BF16, F16, F64, I64, I32, I16, I8, U8 or BOOL)");

        if (shapeEl is not { ValueKind: JsonValueKind.Array } shapeArray)
            throw Bad(path, name, "missing 'shape' array");
        int rank = shapeArray.GetArrayLength();
        if (rank > MaxRank) throw Bad(path, name, $"shape has {rank} dimensions, at most {MaxRank} supported");
        var shape = new long[rank];
        long elements = 1;
        bool overflow = false;
        for (int d = 0; d < rank; d++)
        {
            var dim = shapeArray[d];
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long v) || v < 0)
                throw Bad(path, name, $"shape entry {d} is {JsonValueText.Show(dim, 64)}, expected a non-negative integer");
            shape[d] = v;
            overflow |= !TryMultiply(elements, v, out elements);
        }
        overflow |= !TryMultiply(elements, dtype.Size(), out long expectedBytes);
        if (overflow)
            throw Bad(path, name, $"shape [{string.Join(", ", shape)}] of {dtype.Name()} overflows a 64-bit byte count");

        if (offsetsEl is not { ValueKind: JsonValueKind.Array } offsets || offsets.GetArrayLength() != 2)
            throw Bad(path, name, "'data_offsets' must be an array [begin, end]");
        if (!TryGetNonNegative(offsets[0], out long begin) || !TryGetNonNegative(offsets[1], out long end) || end < begin)
            throw Bad(path, name, $"data_offsets {JsonValueText.Show(offsets, 64)} must be non-negative integers with begin <= end");
        if (end - begin != expectedBytes)
            throw Bad(path, name, $"{dtype.Name()}[{string.Join(", ", shape)}] needs {expectedBytes} bytes, data_offsets [{begin}, {end}] give {end - begin}");
        return new Entry(name, dtype, shape, begin, end);
    }

    static bool TryGetNonNegative(JsonElement e, out long v)
    {
        v = 0;
        return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out v) && v >= 0;
    }

    static bool TryMultiply(long a, long b, out long product)
    {
        try { product = checked(a * b); return true; }
        catch (OverflowException) { product = 0; return false; }
    }

    /// <summary>The byte ranges, sorted, must start at 0, follow each other without gap or overlap and end at the end of the file.</summary>
    static void CheckTiling(string path, List<Entry> entries, long dataLength)
    {
        var sorted = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long next = 0;
        string? previous = null;
        foreach (var e in sorted)
        {
            if (e.Begin > next)
                throw Bad(path, e.Name, $"data_offsets [{e.Begin}, {e.End}] leave bytes [{next}, {e.Begin}) of the data section unused{After(previous)}");
            if (e.Begin < next)
                throw Bad(path, e.Name, $"data_offsets [{e.Begin}, {e.End}] overlap tensor '{previous}', which ends at {next}");
            if (e.End > dataLength)
                throw Bad(path, e.Name, $"data_offsets [{e.Begin}, {e.End}] run past the end of the data section ({dataLength} bytes)");
            next = e.End;
            previous = e.Name;
        }
        if (next != dataLength)
            throw Bad(path, $"tensors cover {next} bytes but the data section has {dataLength} (trailing bytes after the last tensor)");
    }

    static string After(string? previous) => previous == null ? " (the first tensor must start at 0)" : $" after tensor '{previous}'";

    static InvalidModelFileException Bad(string path, string problem) => new($"{path}: {problem}");
    static InvalidModelFileException Bad(string path, string tensor, string problem) => new($"{path}: tensor '{Trim(tensor)}': {problem}");

    static string Trim(string s) => (s.Length <= 64 ? s : s[..64] + "…").ReplaceLineEndings("\\n");

    /// <summary>True when <paramref name="t"/> lies in this file's mapping.</summary>
    public bool Holds(StoredTensor t) => _base != null && t.Pointer >= _base && t.Pointer + t.ByteLength <= _base + FileLength;

    /// <summary>
    /// Copies bytes [offset, offset + dst.Length) of tensor <paramref name="t"/> with a file read instead of through the
    /// mapping, so a tensor that is repacked at load (quantized weights) never becomes part of the process's mapped,
    /// resident memory.
    /// </summary>
    public void Read(StoredTensor t, long offset, Span<byte> dst)
    {
        if (!Holds(t) || offset < 0 || offset + dst.Length > t.ByteLength) throw new ArgumentOutOfRangeException(nameof(offset), $"{Path}: bytes [{offset}, {offset + dst.Length}) of tensor '{t.Name}'");
        _handle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long position = t.Pointer - _base + offset;
        while (!dst.IsEmpty)
        {
            int read = RandomAccess.Read(_handle, dst, position);
            if (read <= 0) throw new InvalidModelFileException($"{Path}: file ended while reading tensor '{t.Name}'");
            dst = dst[read..];
            position += read;
        }
    }

    Microsoft.Win32.SafeHandles.SafeFileHandle? _handle;

    /// <summary>Unmaps the file; tensors from it must no longer be used.</summary>
    public void Dispose()
    {
        _handle?.Dispose();
        if (_view != null && _base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _map?.Dispose();
    }
}
