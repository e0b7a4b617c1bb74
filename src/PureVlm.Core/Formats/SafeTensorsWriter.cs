using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using PureVlm.Tensors;

namespace PureVlm.Formats;

/// <summary>Name, dtype and shape of a tensor to write; its data comes separately.</summary>
public sealed record TensorHeader(string Name, DType DType, long[] Shape)
{
    /// <summary>Bytes the tensor's data must have (elements × dtype size); throws on overflow.</summary>
    public long ByteLength
    {
        get
        {
            long n = DType.Size();
            foreach (var d in Shape)
            {
                if (d < 0) throw new ArgumentException($"tensor '{Name}': negative dimension in [{string.Join(", ", Shape)}]");
                n = checked(n * d);
            }
            return n;
        }
    }
}

/// <summary>
/// Writes .safetensors files as the fixtures and the reference writer lay them out: tensor keys sorted
/// (ordinal), data in key order with no gaps, <c>__metadata__</c> last (default <c>{"format":"pt"}</c>),
/// the JSON header padded with spaces to a multiple of 8 bytes. Files are written to a temporary file
/// in the same directory and moved into place, so a failed write never leaves a partial file.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>The metadata written when the caller gives none.</summary>
    public static readonly IReadOnlyDictionary<string, string> DefaultMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>Writes tensors whose bytes are in memory; each data length must match its dtype and shape.</summary>
    public static void Write(string path, IEnumerable<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var data = new Dictionary<string, ReadOnlyMemory<byte>>(StringComparer.Ordinal);
        var headers = new List<TensorHeader>();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            var header = new TensorHeader(name, dtype, shape);
            if (bytes.Length != header.ByteLength)
                throw new ArgumentException($"tensor '{name}': {dtype.Name()}[{string.Join(", ", shape)}] needs {header.ByteLength} bytes, got {bytes.Length}");
            if (!data.TryAdd(name, bytes)) throw new ArgumentException($"tensor '{name}' given twice");
            headers.Add(header);
        }
        WriteStreaming(path, headers, (h, stream) => stream.Write(data[h.Name].Span), metadata);
    }

    /// <summary>Writes F32 tensors.</summary>
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, float[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Write(path, tensors.Select(t => F32(t.Name, t.Data, t.Shape)), metadata);

    /// <summary>Writes I64 tensors.</summary>
    public static void Write(string path, IEnumerable<(string Name, long[] Shape, long[] Data)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        => Write(path, tensors.Select(t => I64(t.Name, t.Data, t.Shape)), metadata);

    /// <summary>An F32 entry for <see cref="Write(string, IEnumerable{ValueTuple{string, DType, long[], ReadOnlyMemory{byte}}}, IReadOnlyDictionary{string, string}?)"/>.</summary>
    public static (string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data) F32(string name, float[] data, params long[] shape)
        => (name, DType.F32, shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    /// <summary>An I64 entry for <see cref="Write(string, IEnumerable{ValueTuple{string, DType, long[], ReadOnlyMemory{byte}}}, IReadOnlyDictionary{string, string}?)"/>.</summary>
    public static (string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data) I64(string name, long[] data, params long[] shape)
        => (name, DType.I64, shape, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    /// <summary>
    /// Writes the header, then asks <paramref name="writeData"/> for each tensor's bytes in file order
    /// (sorted by name), so callers can generate or convert data in chunks with bounded memory.
    /// Exactly <see cref="TensorHeader.ByteLength"/> bytes must be written per tensor.
    /// </summary>
    public static void WriteStreaming(string path, IReadOnlyList<TensorHeader> tensors, Action<TensorHeader, Stream> writeData,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var sorted = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        byte[] header = BuildHeader(sorted, metadata ?? DefaultMetadata);
        string fullPath = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(dir);
        string temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BitConverter.TryWriteBytes(length, (ulong)header.Length);
                if (!BitConverter.IsLittleEndian) length.Reverse();
                stream.Write(length);
                stream.Write(header);
                foreach (var t in sorted)
                {
                    long before = stream.Position;
                    writeData(t, stream);
                    long written = stream.Position - before;
                    if (written != t.ByteLength)
                        throw new InvalidOperationException($"tensor '{t.Name}': {written} bytes written, {t.DType.Name()}[{string.Join(", ", t.Shape)}] needs {t.ByteLength}");
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>The JSON header for tensors laid out in the given order, padded with spaces to a multiple of 8 bytes.</summary>
    static byte[] BuildHeader(List<TensorHeader> sorted, IReadOnlyDictionary<string, string> metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            long offset = 0;
            string? previous = null;
            foreach (var t in sorted)
            {
                if (t.Name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor");
                if (t.Name == previous) throw new ArgumentException($"tensor '{t.Name}' given twice");
                previous = t.Name;
                long end = checked(offset + t.ByteLength);
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.Name());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        if (buffer.Length > SafeTensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"header would be {buffer.Length} bytes, more than the {SafeTensorsFile.MaxHeaderBytes}-byte limit");
        return buffer.ToArray();
    }
}
