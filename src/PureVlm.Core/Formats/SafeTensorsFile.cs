using System.IO.MemoryMappedFiles;
using System.Text.Json;
using PureVlm.Tensors;

namespace PureVlm.Formats;

/// <summary>Raised for a checkpoint or tensor file that cannot be used; the message names the file, the tensor and the problem.</summary>
public sealed class InvalidModelFileException(string message) : Exception(message);

/// <summary>
/// One memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header
/// mapping names to dtype/shape/byte ranges, then the data. Tensors are views into the mapping.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Largest header accepted; real headers are well under 1 MB.</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    readonly MemoryMappedFile? _map;
    readonly MemoryMappedViewAccessor? _view;
    readonly byte* _base;
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

    SafeTensorsFile(string path)
    {
        Path = path;
        Metadata = new Dictionary<string, string>();
        var fileInfo = new FileInfo(path);
        if (!fileInfo.Exists) throw new InvalidModelFileException($"{path}: file not found");
        long length = fileInfo.Length;
        if (length < 8) throw new InvalidModelFileException($"{path}: file is {length} bytes, too short for a safetensors header length (8 bytes)");
        if (length == 0) return;
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        try { (Metadata, _order) = ParseHeader(path, _base, length, _tensors); }
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

    static (IReadOnlyDictionary<string, string>, List<string>) ParseHeader(string path, byte* data, long fileLength, Dictionary<string, StoredTensor> tensors)
    {
        ulong headerLength = *(ulong*)data;
        if (headerLength > (ulong)MaxHeaderBytes)
            throw new InvalidModelFileException($"{path}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        if ((long)headerLength > fileLength - 8)
            throw new InvalidModelFileException($"{path}: header length {headerLength} runs past the end of the file ({fileLength} bytes)");
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        var headerBytes = new ReadOnlySpan<byte>(data + 8, (int)headerLength);

        JsonDocument doc;
        try { doc = JsonDocument.Parse(headerBytes.ToArray(), new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (Exception e) when (e is JsonException or ArgumentException)
        { throw new InvalidModelFileException($"{path}: header is not valid UTF-8 JSON ({e.Message.Split('\n')[0]})"); }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidModelFileException($"{path}: header is JSON {doc.RootElement.ValueKind}, expected an object");
            var metadata = new Dictionary<string, string>();
            var order = new List<string>();
            var ranges = new List<(long Begin, long End, string Name)>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                string name = entry.Name;
                if (name == "__metadata__")
                {
                    if (entry.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidModelFileException($"{path}: __metadata__ must be an object of strings");
                    foreach (var m in entry.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new InvalidModelFileException($"{path}: __metadata__ value '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                if (tensors.ContainsKey(name)) throw new InvalidModelFileException($"{path}: tensor '{name}' appears twice in the header");
                var t = entry.Value;
                if (t.ValueKind != JsonValueKind.Object)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': entry must be an object with dtype, shape, data_offsets");
                if (!t.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': missing dtype");
                string dtypeName = dtypeEl.GetString()!;
                if (!DTypes.TryParse(dtypeName, out var dtype))
                    throw new InvalidModelFileException($"{path}: tensor '{name}': unknown dtype '{Trim(dtypeName)}' (expected F32, BF16, F16, F64, I64, I32, I16, I8, U8 or BOOL)");
                if (!t.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': missing shape array");
                var shape = new long[shapeEl.GetArrayLength()];
                if (shape.Length > 16) throw new InvalidModelFileException($"{path}: tensor '{name}': {shape.Length} dimensions, at most 16 supported");
                long elements = 1;
                bool overflow = false;
                int d = 0;
                foreach (var dim in shapeEl.EnumerateArray())
                {
                    if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long v) || v < 0)
                        throw new InvalidModelFileException($"{path}: tensor '{name}': shape entry {d} is not a non-negative integer");
                    shape[d++] = v;
                    if (!overflow)
                    {
                        try { elements = checked(elements * v); } catch (OverflowException) { overflow = true; }
                    }
                }
                long expectedBytes = 0;
                if (!overflow)
                {
                    try { expectedBytes = checked(elements * dtype.Size()); } catch (OverflowException) { overflow = true; }
                }
                if (overflow)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': shape [{string.Join(", ", shape)}] overflows a 64-bit byte count");
                if (!t.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': data_offsets must be [begin, end]");
                if (!offEl[0].TryGetInt64(out long begin) || !offEl[1].TryGetInt64(out long end) || begin < 0 || end < begin)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': data_offsets must be non-negative integers with begin <= end");
                if (end > dataLength)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes)");
                if (end - begin != expectedBytes)
                    throw new InvalidModelFileException($"{path}: tensor '{name}': {dtype.Name()}[{string.Join(", ", shape)}] needs {expectedBytes} bytes, data_offsets give {end - begin}");
                tensors[name] = new StoredTensor(name, dtype, shape, data + dataStart + begin, end - begin);
                order.Add(name);
                ranges.Add((begin, end, name));
            }
            ranges.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < ranges.Count; i++)
                if (ranges[i].Begin < ranges[i - 1].End)
                    throw new InvalidModelFileException($"{path}: tensors '{ranges[i - 1].Name}' and '{ranges[i].Name}' overlap in the data section");
            return (metadata, order);
        }
    }

    static string Trim(string s) => s.Length <= 32 ? s : s[..32] + "…";

    /// <summary>Unmaps the file; tensors from it must no longer be used.</summary>
    public void Dispose()
    {
        if (_view != null && _base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }
}
