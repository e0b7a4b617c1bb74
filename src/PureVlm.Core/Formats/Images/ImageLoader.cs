using System.Buffers.Binary;
using StbImageSharp;

namespace PureVlm.Formats.Images;

/// <summary>
/// Decodes PNG, JPEG, BMP and GIF (first frame) into <see cref="RgbImage"/> in managed code (PNG with StbImageSharp;
/// JPEG see <see cref="JpegDecoder"/>; BMP and GIF by hand as Pillow reads them, see <see cref="BmpDecoder"/> and
/// <see cref="GifDecoder"/>; WebP and TIFF through ImageSharp, see <see cref="ImageSharpFormats"/>),
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
        if (format is Format.Bmp or Format.Gif) // neither carries an EXIF orientation Pillow reads
        {
            var (pixels, width, height) = format == Format.Bmp ? BmpDecoder.Decode(data, name) : GifDecoder.Decode(data, name);
            return new RgbImage(width, height, pixels, fullPath);
        }
        return DecodePng(data, name, fullPath);
    }

    /// <summary>PNG through stb, with Pillow's 16-bit grey clipping and its EXIF/XMP orientation rules.</summary>
    static RgbImage DecodePng(byte[] data, string name, string? fullPath)
    {
        // The IHDR size is checked here so that zero or absurd sizes get a clear message; stb's header reader only says "corrupt".
        if (data.Length >= 24 && data.AsSpan(12, 4).SequenceEqual("IHDR"u8))
            CheckSize(name, Int31(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(16))), Int31(BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(20))));
        int orientation = PngOrientation.Read(data, name);

        ImageInfo? info;
        try { info = ImageInfo.FromStream(new MemoryStream(data, writable: false)); }
        catch (Exception e) { throw Corrupt(name, Format.Png, "header", e); }
        if (info is not { } header) throw Corrupt(name, Format.Png, "header", null);
        CheckSize(name, header.Width, header.Height);

        // IHDR's bit depth and colour type (byte 24, 25): 16-bit grey, with or without tRNS, is Pillow's mode I.
        byte[] rgb = data.Length > 25 && data[24] == 16 && data[25] == 0
            ? Gray16.DecodeClipped(data, name, header.Width, header.Height)
            : DecodeRgb8(data, name, Format.Png, header.Width, header.Height);
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

    static int Int31(uint v) => v > int.MaxValue ? int.MaxValue : (int)v;

    static Format Sniff(byte[] d, string name)
    {
        bool StartsWith(params byte[] magic) => d.Length >= magic.Length && d.AsSpan(0, magic.Length).SequenceEqual(magic);
        bool Ascii(int at, string s) => d.Length >= at + s.Length && d.AsSpan(at, s.Length).SequenceEqual(System.Text.Encoding.ASCII.GetBytes(s));

        if (StartsWith(0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A)) return Format.Png;
        if (StartsWith(0xFF, 0xD8, 0xFF)) return Format.Jpeg;
        if (Ascii(0, "GIF87a") || Ascii(0, "GIF89a")) return Format.Gif;
        if (Ascii(0, "BM")) return Format.Bmp;

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
}
