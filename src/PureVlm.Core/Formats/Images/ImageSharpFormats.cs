using System.Buffers.Binary;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace PureVlm.Formats.Images;

/// <summary>
/// WebP and TIFF, which stb does not read, through SixLabors.ImageSharp 2.1.13 (managed): the first frame (or page),
/// alpha dropped as Pillow's <c>convert("RGB")</c> drops it (no compositing), and the EXIF orientation to apply.
/// The size is read from the header and checked before any pixel buffer exists.
/// </summary>
static class ImageSharpFormats
{
    /// <summary>Decodes <paramref name="data"/> (a WebP or TIFF file) into RGB bytes and its EXIF orientation (1 when absent).</summary>
    public static (byte[] Rgb, int Width, int Height, int Orientation) Decode(byte[] data, string name, string format)
    {
        IImageInfo? info;
        try { info = Image.Identify(data); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw ImageLoader.Corrupt(name, format, "header", e); }
        if (info is null) throw ImageLoader.Corrupt(name, format, "header", null);
        ImageLoader.CheckSize(name, info.Width, info.Height);
        // ImageSharp fills what a truncated file lacks with zeros; Pillow refuses such a file, and so do we.
        long needed = format == "WebP" ? 8 + (long)BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(4)) : TiffDataEnd(data, name);
        if (needed > data.Length)
            throw new InvalidImageException($"{name}: truncated {format}: its data runs to byte {needed}, the file has {data.Length}");

        var palette = format == "Tiff" ? TiffPalette.Prepare(data) : null;
        Image<Rgb24> image;
        try { image = Image.Load<Rgb24>(palette?.IndexImage ?? data); }
        catch (Exception e) when (e is not OutOfMemoryException) { throw ImageLoader.Corrupt(name, format, "data", e); }
        using (image)
        {
            var frame = image.Frames.RootFrame;
            var rgb = new byte[3L * frame.Width * frame.Height];
            frame.CopyPixelDataTo(rgb);
            if (palette is var (_, colours)) TiffPalette.Apply(rgb, colours);
            // ImageSharp keeps a TIFF page's tags in that frame's metadata, a WebP's EXIF in the image's.
            var exif = image.Metadata.ExifProfile ?? frame.Metadata.ExifProfile;
            int orientation = exif?.GetValue(ExifTag.Orientation)?.Value is ushort o && o is >= 1 and <= 8 ? o : 1;
            return (rgb, frame.Width, frame.Height, format == "Tiff" ? TwiceOver(orientation) : orientation);
        }
    }

    /// <summary>
    /// Pillow 9.4 turns a TIFF by its Orientation tag when it loads the pixels (<c>TiffImageFile.load_end</c>), and
    /// <c>exif_transpose</c>, called before that load, turns it again: the tag is applied twice. Each orientation is
    /// its own inverse except the quarter turns, which add up to a half turn.
    /// </summary>
    static int TwiceOver(int orientation) => orientation is 6 or 8 ? 3 : 1;

    /// <summary>The end of the first page's last strip or tile (offsets + byte counts of the first IFD).</summary>
    static long TiffDataEnd(byte[] d, string name)
    {
        bool little = d[0] == (byte)'I';
        uint U32(long at) => at + 4 > d.Length ? throw Truncated() : little ? BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan((int)at)) : BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan((int)at));
        ushort U16(long at) => at + 2 > d.Length ? throw Truncated() : little ? BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan((int)at)) : BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan((int)at));
        InvalidImageException Truncated() => new($"{name}: truncated TIFF: a directory entry points past the end of the file ({d.Length} bytes)");

        long ifd = U32(4);
        int entries = U16(ifd);
        long[]? offsets = null, counts = null;
        for (int i = 0; i < entries; i++)
        {
            long e = ifd + 2 + 12L * i;
            ushort tag = U16(e), type = U16(e + 2);
            uint n = U32(e + 4);
            if (tag is not (273 or 279 or 324 or 325) || type is not (3 or 4) || n > 1 << 20) continue;
            int size = type == 3 ? 2 : 4;
            long at = n * size <= 4 ? e + 8 : U32(e + 8);
            var values = new long[n];
            for (int k = 0; k < n; k++) values[k] = size == 2 ? U16(at + (long)k * size) : U32(at + (long)k * size);
            if (tag is 273 or 324) offsets = values; else counts = values;
        }
        if (offsets is null || counts is null) return 0; // nothing to check; the decoder judges the rest
        long end = 0;
        for (int k = 0; k < Math.Min(offsets.Length, counts.Length); k++) end = Math.Max(end, offsets[k] + counts[k]);
        return end;
    }
}
