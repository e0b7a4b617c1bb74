using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>
/// Palette TIFF as Pillow reads it. The ColorMap holds 16-bit values; Pillow keeps the high byte (<c>v // 256</c>),
/// ImageSharp rounds <c>v / 257</c>, which is one level off on most colours. ImageSharp decodes the pixels of a copy
/// whose ColorMap red of entry i is i·257 (which ImageSharp turns back into exactly i), so its red channel is the index;
/// the indices are then looked up in the real ColorMap's high bytes. No TIFF decompression is written here.
/// </summary>
static class TiffPalette
{
    const ushort PhotometricTag = 262, ColorMapTag = 320;

    /// <summary>
    /// For a palette TIFF (first page), the copy to decode and Pillow's RGB palette (3 bytes an entry); null otherwise
    /// or when the directory is unusable (the decoder then judges the file as it is).
    /// </summary>
    public static (byte[] IndexImage, byte[] Palette)? Prepare(byte[] d)
    {
        if (d.Length < 8) return null;
        bool little = d[0] == (byte)'I';
        long ifd = U32(d, 4, little);
        if (ifd + 2 > d.Length) return null;
        int entries = U16(d, ifd, little);
        bool palette = false;
        long mapAt = -1, count = 0;
        for (int i = 0; i < entries; i++)
        {
            long e = ifd + 2 + 12L * i;
            if (e + 12 > d.Length) return null;
            ushort tag = U16(d, e, little), type = U16(d, e + 2, little);
            if (tag == PhotometricTag && type == 3) palette = U16(d, e + 8, little) == 3;
            if (tag == ColorMapTag && type == 3)
            {
                count = U32(d, e + 4, little);
                mapAt = count * 2 <= 4 ? e + 8 : U32(d, e + 8, little);
            }
        }
        long colours = count / 3;
        if (!palette || mapAt < 0 || count % 3 != 0 || colours is 0 or > 256 || mapAt + count * 2 > d.Length) return null;

        var copy = (byte[])d.Clone();
        var rgb = new byte[3 * colours];
        for (int i = 0; i < colours; i++)
            for (int c = 0; c < 3; c++)
            {
                long at = mapAt + 2 * (c * colours + i);
                rgb[3 * i + c] = (byte)(U16(d, at, little) >> 8);
                ushort fake = c == 0 ? (ushort)(i * 257) : (ushort)0;
                if (little) BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan((int)at), fake);
                else BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan((int)at), fake);
            }
        return (copy, rgb);
    }

    /// <summary>Replaces each pixel of ImageSharp's output for the copy (index in red) by its palette colour.</summary>
    public static void Apply(byte[] pixels, byte[] palette)
    {
        for (int p = 0; p < pixels.Length; p += 3)
        {
            int at = 3 * pixels[p];
            if (at + 2 >= palette.Length) at = 0; // cannot happen: the copy's ColorMap has no other reds
            pixels[p] = palette[at];
            pixels[p + 1] = palette[at + 1];
            pixels[p + 2] = palette[at + 2];
        }
    }

    static ushort U16(byte[] d, long at, bool little) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan((int)at)) : BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan((int)at));

    static uint U32(byte[] d, long at, bool little) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan((int)at)) : BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan((int)at));
}
