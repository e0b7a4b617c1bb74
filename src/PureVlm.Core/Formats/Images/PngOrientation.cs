using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace PureVlm.Formats.Images;

/// <summary>
/// The orientation Pillow 9.4's <c>exif_transpose</c> finds in a PNG (stb reads none). Pillow keeps text and eXIf
/// chunks in <c>info</c> by key, a later chunk replacing an earlier one; it reads the chunks after the image data only
/// when those before it hold no eXIf (<c>PngImageFile.getexif</c> loads the image only then). EXIF comes from eXIf (or
/// a tEXt keyed "exif"), else from ImageMagick's "Raw profile type exif" text; XMP's <c>tiff:Orientation</c> (the
/// "XML:com.adobe.xmp" text, Pillow's regex) counts only when that EXIF has no Orientation tag.
/// </summary>
static partial class PngOrientation
{
    const string XmpKey = "XML:com.adobe.xmp", RawExifKey = "Raw profile type exif";

    /// <summary>The orientation (1..8, 1 when none or unusable) Pillow would apply to the PNG in <paramref name="d"/>.</summary>
    public static int Read(byte[] d, string name)
    {
        byte[]? exif = null;
        string? rawExif = null, xmp = null;
        bool afterImageData = false;
        for (int p = 8; p + 8 <= d.Length;)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(p));
            if (length > d.Length - p - 12) break; // cut short: Pillow stops reading chunks there too
            var type = d.AsSpan(p + 4, 4);
            var body = d.AsSpan(p + 8, (int)length);
            p += 12 + (int)length;
            if (type.SequenceEqual("IEND"u8)) break;
            if (type.SequenceEqual("IDAT"u8))
            {
                if (!afterImageData && exif != null) break;
                afterImageData = true;
            }
            else if (type.SequenceEqual("eXIf"u8)) exif = body.ToArray();
            else if (Text(type, body, name) is var (key, value))
            {
                if (key == "exif" && type.SequenceEqual("tEXt"u8)) exif = Encoding.Latin1.GetBytes(value);
                else if (key == RawExifKey) rawExif = value;
                else if (key == XmpKey) xmp = value;
            }
        }
        if (exif is null && rawExif != null) exif = FromHexLines(rawExif);
        int? fromExif = exif is null ? null : ExifOrientation.Find(exif.AsSpan(exif.AsSpan().StartsWith("Exif\0\0"u8) ? 6 : 0));
        if (fromExif is null && !string.IsNullOrEmpty(xmp) && XmpOrientation().Match(xmp) is { Success: true } m)
            fromExif = m.Groups[2].Value[0] - '0';
        return fromExif is >= 1 and <= 8 ? fromExif.Value : 1;
    }

    // Pillow's regex in Image.getexif; one digit, so "10" reads as 1.
    [GeneratedRegex("tiff:Orientation(=\"|>)([0-9])")]
    private static partial Regex XmpOrientation();

    /// <summary>Key and text of a tEXt, zTXt or iTXt chunk as Pillow decodes them; null when Pillow keeps nothing.</summary>
    static (string Key, string Value)? Text(ReadOnlySpan<byte> type, ReadOnlySpan<byte> body, string name)
    {
        bool tEXt = type.SequenceEqual("tEXt"u8), zTXt = type.SequenceEqual("zTXt"u8), iTXt = type.SequenceEqual("iTXt"u8);
        if (!tEXt && !zTXt && !iTXt) return null;
        int nul = body.IndexOf((byte)0);
        var keyBytes = nul < 0 ? body : body[..nul];
        if (keyBytes.IsEmpty) return null;
        string key = Encoding.Latin1.GetString(keyBytes);
        if (key is not (XmpKey or RawExifKey or "exif")) return null;
        var rest = nul < 0 ? [] : body[(nul + 1)..];
        if (tEXt) return (key, Encoding.Latin1.GetString(rest));
        if (zTXt)
        {
            if (!rest.IsEmpty && rest[0] != 0) return null; // Pillow refuses the file; nothing to read here
            return (key, Encoding.Latin1.GetString(rest.IsEmpty ? [] : Inflate(rest[1..], name) ?? []));
        }
        // iTXt: compression flag, method, language\0, translated keyword\0, text; anything malformed is skipped.
        if (nul < 0 || rest.Length < 2) return null;
        byte flag = rest[0], method = rest[1];
        rest = rest[2..];
        int lang = rest.IndexOf((byte)0);
        if (lang < 0) return null;
        int translated = rest[(lang + 1)..].IndexOf((byte)0);
        if (translated < 0) return null;
        var text = rest[(lang + 1 + translated + 1)..];
        byte[]? raw = flag == 0 ? text.ToArray() : method == 0 ? Inflate(text, name) : null;
        if (raw is null) return null;
        try { return (key, new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw)); }
        catch (DecoderFallbackException) { return null; }
    }

    // Pillow's _safe_zlib_decompress: more than 1 MiB of text refuses the file (a decompression bomb); bad data is skipped.
    const int MaxText = 1 << 20;

    static byte[]? Inflate(ReadOnlySpan<byte> compressed, string name)
    {
        var output = new byte[MaxText + 1];
        int n = 0;
        try
        {
            using var z = new ZLibStream(new MemoryStream(compressed.ToArray()), CompressionMode.Decompress);
            int read;
            while (n < output.Length && (read = z.Read(output, n, output.Length - n)) > 0) n += read;
        }
        catch (InvalidDataException) { return null; }
        if (n > MaxText)
            throw new InvalidImageException($"{name}: a PNG text chunk decompresses to more than {MaxText} bytes (Pillow refuses it as a decompression bomb)");
        return output[..n];
    }

    /// <summary>Pillow: <c>bytes.fromhex("".join(text.split("\n")[3:]))</c>; null where that would fail.</summary>
    static byte[]? FromHexLines(string text)
    {
        var lines = text.Split('\n');
        if (lines.Length <= 3) return [];
        var hex = new StringBuilder();
        foreach (var line in lines.AsSpan(3)) hex.Append(line);
        var digits = hex.ToString().Where(c => !char.IsWhiteSpace(c)).ToArray();
        try { return Convert.FromHexString(digits); }
        catch (FormatException) { return null; }
    }
}
