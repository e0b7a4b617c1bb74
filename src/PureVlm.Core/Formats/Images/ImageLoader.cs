using System.Buffers.Binary;
using StbImageSharp;

namespace PureVlm.Formats.Images;

/// <summary>
/// Decodes PNG, BMP and GIF (first frame) into <see cref="RgbImage"/> in managed code (StbImageSharp; JPEG see
/// <see cref="JpegDecoder"/>, WebP and TIFF through ImageSharp, see <see cref="ImageSharpFormats"/>),
/// converting to RGB the way PIL's <c>convert("RGB")</c> does and applying a JPEG's EXIF orientation the way
/// <c>ImageOps.exif_transpose</c> does. Anything unusable raises <see cref="InvalidImageException"/>.
/// </summary>
public static class ImageLoader
{
    /// <summary>Largest accepted width or height.</summary>
    public const int MaxSide = 16384;
    /// <summary>
    /// Largest accepted width × height: Pillow's decompression-bomb rule, which refuses more than twice its
    /// <c>Image.MAX_IMAGE_PIXELS</c> (89,478,485), checked on the header before any pixel buffer exists.
    /// </summary>
    public const long MaxPixels = 2 * 89_478_485;
    /// <summary>Largest accepted encoded file.</summary>
    public const long MaxEncodedBytes = 512L * 1024 * 1024;

    /// <summary>Reads and decodes an image file.</summary>
    public static RgbImage Load(string path)
    {
        string fullPath = Path.GetFullPath(path);
        long length = LinkedFile.Length(fullPath) ?? throw new InvalidImageException($"{path}: image file not found");
        if (length > MaxEncodedBytes)
            throw new InvalidImageException($"{path}: file is {length} bytes, more than the {MaxEncodedBytes}-byte limit for an image");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(fullPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InvalidImageException($"{path}: cannot read the image file ({e.Message})", e); }
        return Decode(bytes, path, fullPath);
    }

    /// <summary>Reads a whole stream (at most <see cref="MaxEncodedBytes"/>) and decodes it.</summary>
    public static RgbImage Load(Stream stream)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            if (buffer.Length + n > MaxEncodedBytes)
                throw new InvalidImageException($"image stream: more than the {MaxEncodedBytes}-byte limit for an image");
            buffer.Write(chunk, 0, n);
        }
        return Decode(buffer.ToArray(), null, null);
    }

    /// <summary>Decodes an encoded image held in memory.</summary>
    public static RgbImage Load(byte[] encoded) => Decode(encoded, null, null);

    /// <summary>Decodes an encoded image held in memory.</summary>
    public static RgbImage Load(ReadOnlySpan<byte> encoded) => Decode(encoded.ToArray(), null, null);

    enum Format { Png, Jpeg, Bmp, Gif, WebP, Tiff }

    static RgbImage Decode(byte[] data, string? displayName, string? fullPath)
    {
        string name = displayName ?? $"image ({data.Length} bytes)";
        if (data.Length == 0) throw new InvalidImageException($"{name}: file is empty");
        var format = Sniff(data, name);
        if (format is Format.WebP or Format.Tiff)
        {
            var (pixels, width, height, exif) = ImageSharpFormats.Decode(data, name, format.ToString());
            return ExifOrientation.Apply(new RgbImage(width, height, pixels, fullPath), exif);
        }
        if (format == Format.Jpeg) return JpegDecoder.Decode(data, name, fullPath);
        var declared = HeaderSize(data, format);
        if (declared is var (w, h)) CheckSize(name, w, h);

        // Structure checks run before stb sees the bytes: stb reads zeros past the end of the data, which can make
        // it loop (a JPEG segment longer than the file) or return a partial image instead of failing.
        int orientation = 1;
        switch (format)
        {
            case Format.Png: orientation = PngOrientation.Read(data, name); break;
            case Format.Bmp: CheckBmpLength(data, name, declared!.Value.Width, declared.Value.Height); break;
            case Format.Gif: CheckGifFirstFrame(data, name); break;
        }

        ImageInfo? info;
        try { info = ImageInfo.FromStream(new MemoryStream(data, writable: false)); }
        catch (Exception e) { throw Corrupt(name, format, "header", e); }
        if (info is not { } header) throw Corrupt(name, format, "header", null);
        CheckSize(name, header.Width, header.Height);

        // IHDR's bit depth and colour type (byte 24, 25): 16-bit grey, with or without tRNS, is Pillow's mode I.
        byte[] rgb = format == Format.Png && data.Length > 25 && data[24] == 16 && data[25] == 0
            ? Gray16.DecodeClipped(data, name, header.Width, header.Height)
            : DecodeRgb8(data, name, format, header.Width, header.Height);
        return ExifOrientation.Apply(new RgbImage(header.Width, header.Height, rgb, fullPath), orientation);
    }

    static byte[] DecodeRgb8(byte[] data, string name, Format format, int width, int height)
    {
        ImageResult result;
        try { result = ImageResult.FromMemory(data, ColorComponents.RedGreenBlue); }
        catch (Exception e) { throw Corrupt(name, format, "data", e); }
        if (result is null || result.Width != width || result.Height != height || result.Data is null || result.Data.Length != 3L * width * height)
            throw Corrupt(name, format, "data", null);
        return result.Data;
    }

    internal static void CheckSize(string name, int width, int height)
    {
        if (width <= 0 || height <= 0)
            throw new InvalidImageException($"{name}: image is {width}x{height}, both sides must be at least 1 pixel");
        if ((long)width * height > MaxPixels)
            throw new InvalidImageException($"{name}: image is {width}x{height} = {(long)width * height} pixels, more than {MaxPixels} (Pillow's decompression-bomb limit, 2 × 89478485); refusing a possible decompression bomb");
        if (width > MaxSide || height > MaxSide)
            throw new InvalidImageException($"{name}: image is {width}x{height}, larger than the limit of {MaxSide} pixels per side");
    }

    internal static InvalidImageException Corrupt(string name, object format, string part, Exception? e)
    {
        string detail = e is null ? "" : $" ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")})";
        return new InvalidImageException($"{name}: corrupt or truncated {format.ToString()!.ToUpperInvariant()} {part}{detail}", e);
    }

    // Read here so that zero or absurd sizes get a clear message; stb's own header reader only says "corrupt".
    static (int Width, int Height)? HeaderSize(byte[] d, Format format) => format switch
    {
        Format.Png when d.Length >= 24 && d.AsSpan(12, 4).SequenceEqual("IHDR"u8) =>
            (Int31(BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(16))), Int31(BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan(20)))),
        Format.Gif when d.Length >= 10 => (BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(6)), BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(8))),
        Format.Bmp => // negative height = top-down
            (BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(18)), Int31((uint)Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(d.AsSpan(22))))),
        _ => null,
    };

    static int Int31(uint v) => v > int.MaxValue ? int.MaxValue : (int)v;

    static Format Sniff(byte[] d, string name)
    {
        bool StartsWith(params byte[] magic) => d.Length >= magic.Length && d.AsSpan(0, magic.Length).SequenceEqual(magic);
        bool Ascii(int at, string s) => d.Length >= at + s.Length && d.AsSpan(at, s.Length).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(s));

        if (StartsWith(0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A)) return Format.Png;
        if (StartsWith(0xFF, 0xD8, 0xFF)) return Format.Jpeg;
        if (Ascii(0, "GIF87a") || Ascii(0, "GIF89a")) return Format.Gif;
        if (Ascii(0, "BM"))
            return d.Length >= 34 && BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(14)) >= 40 ? Format.Bmp
                : throw new InvalidImageException($"{name}: corrupt or truncated BMP header (only BITMAPINFOHEADER and later are supported)");

        if (Ascii(0, "II*\0") || Ascii(0, "MM\0*")) return Format.Tiff;
        if (Ascii(0, "RIFF") && Ascii(8, "WEBP")) return Format.WebP;
        string? known =
            Ascii(4, "ftypavif") || Ascii(4, "ftypavis") ? "AVIF" :
            Ascii(4, "ftyphei") || Ascii(4, "ftypmif1") || Ascii(4, "ftypmsf1") ? "HEIF" :
            StartsWith(0, 0, 0, 0x0C, (byte)'j', (byte)'P') ? "JPEG 2000" :
            StartsWith(0xFF, 0x0A) || StartsWith(0, 0, 0, 0x0C, (byte)'J', (byte)'X', (byte)'L') ? "JPEG XL" :
            Ascii(0, "8BPS") ? "PSD" :
            StartsWith(0, 0, 1, 0) ? "ICO" :
            Ascii(0, "#?RADIANCE") || Ascii(0, "#?RGBE") ? "HDR" :
            null;
        if (known != null)
            throw new InvalidImageException($"{name}: {known} images are not supported (supported: PNG, JPEG, BMP, GIF, WebP, TIFF)");
        string start = Convert.ToHexString(d.AsSpan(0, Math.Min(8, d.Length)));
        throw new InvalidImageException($"{name}: not a PNG, JPEG, BMP, GIF, WebP or TIFF file (first bytes {start})");
    }

    // A truncated uncompressed BMP: PIL refuses it.
    static void CheckBmpLength(byte[] d, string name, int width, int height)
    {
        long pixelOffset = BitConverter.ToUInt32(d, 10);
        int bitsPerPixel = BitConverter.ToUInt16(d, 28);
        uint compression = BitConverter.ToUInt32(d, 30);
        bool uncompressed = compression is 0 or 3 or 6; // BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS
        if (uncompressed && bitsPerPixel is 1 or 4 or 8 or 16 or 24 or 32)
        {
            long rowBytes = ((long)bitsPerPixel * width + 31) / 32 * 4;
            long needed = pixelOffset + rowBytes * height;
            if (needed > d.Length)
                throw new InvalidImageException($"{name}: truncated BMP: {width}x{height} at {bitsPerPixel} bits per pixel needs {needed} bytes, file has {d.Length}");
        }
    }

    // A GIF cut inside its first frame: PIL refuses it. Walks the block structure up to the end of the first image's data.
    static void CheckGifFirstFrame(byte[] d, string name)
    {
        int p = 13;
        if (d.Length < p) throw Corrupt(name, Format.Gif, "header", null);
        if ((d[10] & 0x80) != 0) p += 3 << ((d[10] & 7) + 1);
        while (true)
        {
            if (p >= d.Length) break;
            byte block = d[p++];
            if (block == 0x21)
            {
                p++; // extension label
                p = SkipSubBlocks(d, p);
            }
            else if (block == 0x2C)
            {
                if (p + 9 > d.Length) break;
                byte flags = d[p + 8];
                p += 9;
                if ((flags & 0x80) != 0) p += 3 << ((flags & 7) + 1);
                p++; // LZW minimum code size
                p = SkipSubBlocks(d, p);
                if (p <= d.Length) return;
                break;
            }
            else throw new InvalidImageException($"{name}: corrupt GIF: unexpected block type 0x{block:X2} at byte {p - 1} before the first image");
        }
        throw new InvalidImageException($"{name}: truncated GIF: the file ends before the first image's data is complete");
    }

    // Returns the index after the terminating zero-length sub-block, or a value past the end when it is missing.
    static int SkipSubBlocks(byte[] d, int p)
    {
        while (p < d.Length)
        {
            int length = d[p++];
            if (length == 0) return p;
            p += length;
        }
        return d.Length + 1;
    }
}
