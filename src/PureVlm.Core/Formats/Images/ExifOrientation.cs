using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>The EXIF Orientation tag (0x0112): reading it from a TIFF-structured EXIF block and applying it like PIL's <c>ImageOps.exif_transpose</c>.</summary>
public static class ExifOrientation
{
    const ushort OrientationTag = 0x0112;

    /// <summary>
    /// Orientation (1..8) from the TIFF structure that follows <c>"Exif\0\0"</c> in a JPEG APP1 segment; 1 when the
    /// block is malformed or has no valid tag (PIL likewise leaves such images as stored).
    /// </summary>
    public static int Parse(ReadOnlySpan<byte> tiff) => Find(tiff) is int v and >= 1 and <= 8 ? v : 1;

    /// <summary>
    /// The Orientation tag's value in the first IFD of a TIFF-structured EXIF block, 0 when the tag is there but not a
    /// single SHORT or LONG (Pillow then finds it but leaves the image as stored), null when the tag or a valid block is
    /// absent (Pillow then looks at XMP, for PNG).
    /// </summary>
    public static int? Find(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return null;
        bool little;
        if (tiff[0] == 'I' && tiff[1] == 'I') little = true;
        else if (tiff[0] == 'M' && tiff[1] == 'M') little = false;
        else return null;

        if (U16(tiff, 2, little) != 42) return null;
        uint ifd = U32(tiff, 4, little);
        if (ifd < 8 || ifd > (uint)tiff.Length - 2) return null;
        int entries = U16(tiff, (int)ifd, little);
        for (int i = 0; i < entries; i++)
        {
            int entry = (int)ifd + 2 + 12 * i;
            if (entry + 12 > tiff.Length) break;
            if (U16(tiff, entry, little) != OrientationTag) continue;
            if (U32(tiff, entry + 4, little) != 1) return 0;
            uint value = U16(tiff, entry + 2, little) switch
            {
                3 => U16(tiff, entry + 8, little), // SHORT, the type the EXIF spec prescribes
                4 => U32(tiff, entry + 8, little), // LONG, written by some tools
                _ => 0,
            };
            return value <= 8 ? (int)value : 0;
        }
        return null;
    }

    static ushort U16(ReadOnlySpan<byte> b, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(b[at..]) : BinaryPrimitives.ReadUInt16BigEndian(b[at..]);

    static uint U32(ReadOnlySpan<byte> b, int at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(b[at..]) : BinaryPrimitives.ReadUInt32BigEndian(b[at..]);

    /// <summary>
    /// The image as it should be displayed given its stored orientation: 2 mirror, 3 rotate 180, 4 flip,
    /// 5 transpose, 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise; 1 returns the input.
    /// </summary>
    public static RgbImage Apply(RgbImage image, int orientation)
    {
        if (orientation is < 1 or > 8) throw new ArgumentOutOfRangeException(nameof(orientation), $"EXIF orientation {orientation}, expected 1..8");
        if (orientation == 1) return image;
        // Output pixel (x, y) reads source (ox, oy) after optional mirroring of output axes, swapped when transposing.
        bool transpose = orientation >= 5;
        bool flipX = orientation is 2 or 3 or 6 or 7;
        bool flipY = orientation is 3 or 4 or 7 or 8;
        int w = transpose ? image.Height : image.Width, h = transpose ? image.Width : image.Height;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        for (int y = 0; y < h; y++)
        {
            int oy = flipY ? h - 1 - y : y;
            for (int x = 0; x < w; x++)
            {
                int ox = flipX ? w - 1 - x : x;
                int s = transpose ? (ox * image.Width + oy) * 3 : (oy * image.Width + ox) * 3;
                int d = (y * w + x) * 3;
                dst[d] = src[s];
                dst[d + 1] = src[s + 1];
                dst[d + 2] = src[s + 2];
            }
        }
        return new RgbImage(w, h, dst, image.SourcePath);
    }
}
