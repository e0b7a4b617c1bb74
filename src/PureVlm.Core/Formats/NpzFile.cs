using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace PureVlm.Formats;

/// <summary>
/// Reads float32 arrays from a NumPy <c>.npz</c> file (<c>numpy.savez</c> / <c>savez_compressed</c>: a zip of <c>NAME.npy</c>
/// members). Only the members asked for are read, each checked against the expected shape before any data is
/// inflated, so a zip bomb, a truncated member or an array of the wrong kind fails with a one-line
/// <see cref="InvalidModelFileException"/> that names the file and the member.
/// </summary>
public static partial class NpzFile
{
    /// <summary>The largest <c>.npy</c> header accepted (NumPy itself writes 128 bytes, or a multiple of 64 for long shapes).</summary>
    const int MaxHeaderBytes = 64 * 1024;
    /// <summary>More entries than this in the central directory is not a weights file.</summary>
    const int MaxEntries = 4096;

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();
    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();
    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();

    /// <summary>
    /// Reads each member of <paramref name="expected"/> (array name without <c>.npy</c> → shape) as little-endian,
    /// C-order float32; other members are ignored, unread.
    /// </summary>
    public static Dictionary<string, float[]> ReadFloat32(string path, IReadOnlyDictionary<string, int[]> expected)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(expected);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("npz arrays are read in place as little-endian float32");
        if (!File.Exists(path)) throw new InvalidModelFileException($"{path}: file not found");
        using var stream = File.OpenRead(path);
        ZipArchive zip;
        try { zip = new ZipArchive(stream, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { throw new InvalidModelFileException($"{path}: not a readable .npz (zip) file: {OneLine(e)}"); }
        using (zip)
        {
            if (zip.Entries.Count > MaxEntries)
                throw new InvalidModelFileException($"{path}: {zip.Entries.Count} zip entries, expected at most {MaxEntries}");
            var byName = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
                if (!byName.TryAdd(entry.FullName, entry) && expected.ContainsKey(StripNpy(entry.FullName)))
                    throw new InvalidModelFileException($"{path}: member {entry.FullName} appears twice");
            var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var (name, shape) in expected)
            {
                if (!byName.TryGetValue(name + ".npy", out var entry))
                    throw new InvalidModelFileException($"{path}: no member {name}.npy (expected float32 {Shape(shape)})");
                result[name] = ReadMember(path, entry, shape);
            }
            return result;
        }
    }

    static float[] ReadMember(string path, ZipArchiveEntry entry, int[] shape)
    {
        string where = $"{path}: member {entry.FullName}";
        long elements = 1;
        foreach (int s in shape) elements *= s;
        long dataBytes = elements * sizeof(float);
        // The declared size bounds what is inflated: a member claiming more than header + data is refused unread.
        long limit = MaxHeaderBytes + 12 + dataBytes;
        if (entry.Length > limit)
            throw new InvalidModelFileException($"{where}: declares {entry.Length} bytes uncompressed, expected at most {limit} for float32 {Shape(shape)}");
        var bytes = new byte[entry.Length];
        try
        {
            using var member = entry.Open();
            int read = ReadFully(member, bytes);
            if (read < bytes.Length) throw new InvalidModelFileException($"{where}: inflates to {read} bytes, the zip declares {bytes.Length}");
            if (member.ReadByte() >= 0) throw new InvalidModelFileException($"{where}: inflates past the {bytes.Length} bytes the zip declares");
        }
        catch (InvalidDataException e) { throw new InvalidModelFileException($"{where}: corrupt zip data: {OneLine(e)}"); }
        // Stored (uncompressed) members have no other integrity check.
        uint crc = Crc32(bytes);
        if (crc != entry.Crc32)
            throw new InvalidModelFileException($"{where}: CRC-32 {crc:x8}, the zip declares {entry.Crc32:x8} (corrupt data)");

        var (header, dataStart) = ParseHeader(bytes, where);
        CheckHeader(header, where, shape);
        long found = bytes.Length - dataStart;
        if (found < dataBytes)
            throw new InvalidModelFileException($"{where}: data ends after {found} bytes, expected {dataBytes} for float32 {Shape(shape)}");
        if (found > dataBytes)
            throw new InvalidModelFileException($"{where}: data runs past the {dataBytes} bytes of float32 {Shape(shape)} ({found} bytes)");
        var data = new float[elements];
        bytes.AsSpan(dataStart).CopyTo(MemoryMarshal.AsBytes(data.AsSpan()));
        return data;
    }

    /// <summary>The <c>.npy</c> header dict as text, and where the data starts.</summary>
    static (string Header, int DataStart) ParseHeader(byte[] bytes, string where)
    {
        if (bytes.Length < 8 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new InvalidModelFileException($"{where}: not a .npy array (expected the magic \\x93NUMPY)");
        byte major = bytes[6];
        int lengthBytes = major switch
        {
            1 => 2,
            2 or 3 => 4,
            _ => throw new InvalidModelFileException($"{where}: .npy format version {major}.{bytes[7]}, expected 1.0, 2.0 or 3.0"),
        };
        if (bytes.Length < 8 + lengthBytes) throw Truncated(where);
        long length = lengthBytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)) : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
        if (length > MaxHeaderBytes) throw new InvalidModelFileException($"{where}: .npy header of {length} bytes, expected at most {MaxHeaderBytes}");
        int start = 8 + lengthBytes;
        if (bytes.Length < start + length) throw Truncated(where);
        var text = bytes.AsSpan(start, (int)length);
        return (major == 3 ? Encoding.UTF8.GetString(text) : Encoding.Latin1.GetString(text), start + (int)length);
    }

    /// <summary>The zip format's CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).</summary>
    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes) crc = CrcTable[(int)((crc ^ b) & 0xFF)] ^ (crc >> 8);
        return ~crc;
    }

    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    static void CheckHeader(string header, string where, int[] shape)
    {
        var descr = DescrPattern().Match(header);
        var fortran = FortranPattern().Match(header);
        var dims = ShapePattern().Match(header);
        if (!descr.Success || !fortran.Success || !dims.Success)
            throw new InvalidModelFileException($"{where}: .npy header lacks descr, fortran_order or shape: {header.Trim()}");
        string dtype = descr.Groups[1].Value;
        if (dtype != "<f4")
        {
            string why = dtype switch
            {
                ">f4" => "big-endian float32",
                "|O" or "O" => "an object array (pickled Python objects, never loaded)",
                _ => $"dtype '{dtype}'",
            };
            throw new InvalidModelFileException($"{where}: {why}, expected little-endian float32 '<f4'");
        }
        if (fortran.Groups[1].Value == "True")
            throw new InvalidModelFileException($"{where}: Fortran (column-major) order, expected C order");
        var found = dims.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool same = found.Length == shape.Length;
        for (int i = 0; same && i < shape.Length; i++) same = found[i] == shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!same)
            throw new InvalidModelFileException($"{where}: shape ({string.Join(", ", found)}), expected {Shape(shape)}");
    }

    static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    static InvalidModelFileException Truncated(string where) => new($"{where}: .npy header is truncated");
    static string StripNpy(string name) => name.EndsWith(".npy", StringComparison.Ordinal) ? name[..^4] : name;
    static string Shape(int[] shape) => "[" + string.Join(", ", shape) + "]";
    static string OneLine(Exception e) => e.Message.ReplaceLineEndings(" ");
}
