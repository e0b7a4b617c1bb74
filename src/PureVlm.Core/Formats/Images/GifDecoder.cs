using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>
/// A GIF's first frame as Pillow 9.4's GifImagePlugin reads it, then <c>convert("RGB")</c>. Written by hand because
/// neither StbImageSharp nor ImageSharp composes the first frame as Pillow does: the image is the logical screen grown
/// to hold the frame; outside the frame it is the transparent index when the frame has one (index 0 otherwise), shown
/// in its palette colour like every transparent pixel (<c>convert("RGB")</c> drops transparency, it does not blank it);
/// the local palette, else the global one, else none (indices read as grey levels); palette entries past the palette
/// are the grey ramp. The block walk and the LZW decoder (<see cref="GifLzw"/>) follow Pillow's, so a file Pillow
/// refuses is refused here, in one line.
/// </summary>
static class GifDecoder
{
    /// <summary>Decodes a GIF file (starting with "GIF87a" or "GIF89a") into the RGB bytes of its first frame.</summary>
    public static (byte[] Rgb, int Width, int Height) Decode(byte[] d, string name)
    {
        if (d.Length < 13) throw Corrupt(name, "the file ends inside the screen descriptor");
        int width = U16(d, 6), height = U16(d, 8);
        int pos = 13;
        byte[]? globalPalette = null;
        if ((d[10] & 0x80) != 0)
        {
            int size = 3 << ((d[10] & 7) + 1);
            if (pos + size > d.Length) throw Corrupt(name, "the file ends inside the global palette");
            globalPalette = Palette(d.AsSpan(pos, size));
            pos += size;
        }

        // Pillow's walk to the first image descriptor: extensions are skipped (a graphic control extension gives the
        // transparent index), any other byte is skipped one at a time, ';' or the end of the file means no image.
        int? transparency = null;
        while (true)
        {
            if (pos >= d.Length || d[pos] == 0x3B) throw Corrupt(name, "no image in the file");
            byte block = d[pos++];
            if (block == 0x21)
            {
                if (pos >= d.Length) throw Corrupt(name, "the file ends inside an extension");
                byte label = d[pos++];
                int first = pos < d.Length ? d[pos] : 0; // the first sub-block's length; 0 at the end of the file
                int got = Math.Clamp(d.Length - pos - 1, 0, first);
                if (label == 0xF9 && (got < 3 || ((d[pos + 1] & 1) != 0 && got < 4)))
                    throw Corrupt(name, "short graphic control extension");
                if (label == 0xFF && (first == 0 || (got >= 11 && d.AsSpan(pos + 1, 11).SequenceEqual("NETSCAPE2.0"u8)
                                                     && (pos + 1 + first >= d.Length || d[pos + 1 + first] == 0))))
                    throw Corrupt(name, "application extension without its data");
                if (label == 0xF9 && (d[pos + 1] & 1) != 0) transparency = d[pos + 4];
                // Pillow reads the first sub-block, then skips sub-blocks up to an empty one; when the first is already
                // empty, the skipping starts after it (a comment stops there).
                if (first == 0 && label != 0xFE && pos < d.Length) pos++;
                pos = SkipSubBlocks(d, pos);
            }
            else if (block == 0x2C) break;
        }

        if (pos + 9 > d.Length) throw Corrupt(name, "the file ends inside the image descriptor");
        int x0 = U16(d, pos), y0 = U16(d, pos + 2), x1 = x0 + U16(d, pos + 4), y1 = y0 + U16(d, pos + 6);
        byte flags = d[pos + 8];
        pos += 9;
        width = Math.Max(width, x1);
        height = Math.Max(height, y1);
        ImageLoader.CheckSize(name, width, height);
        byte[] palette = globalPalette ?? Palette([]);
        if ((flags & 0x80) != 0)
        {
            int size = 3 << ((flags & 7) + 1);
            int available = Math.Min(size, d.Length - pos);
            if (available % 3 != 0) throw Corrupt(name, "the file ends inside the local palette");
            palette = Palette(d.AsSpan(pos, available));
            pos += available;
        }
        if (pos >= d.Length) throw Corrupt(name, "the file ends before the image data");
        int minCodeSize = d[pos++];
        if (x0 == 0 && x1 == 0) { x1 = width; y0 = 0; y1 = height; } // Pillow's decoder takes an empty extent as "the whole image"
        if (x1 <= x0 || y1 <= y0) throw Corrupt(name, $"the first frame is {x1 - x0}x{y1 - y0}");

        // Each code writes at most 4097 pixels (its first pixel and a 4096-byte string), so a frame larger than that
        // many codes of the file's remaining bits can never be completed: refused before the canvas is allocated.
        if ((long)(x1 - x0) * (y1 - y0) > (d.Length - pos) * 8L / (Math.Min(minCodeSize, 12) + 1) * 4097)
            throw Corrupt(name, "the image data ends before the first frame is complete");
        var indices = new byte[(long)width * height];
        if (transparency is int t) indices.AsSpan().Fill((byte)t);
        GifLzw.Decode(d, pos, minCodeSize, (flags & 0x40) != 0, indices, width, x0, y0, x1 - x0, y1 - y0, name);

        var rgb = new byte[3L * width * height];
        for (int i = 0, o = 0; i < indices.Length; i++, o += 3)
        {
            int v = 3 * indices[i];
            rgb[o] = palette[v];
            rgb[o + 1] = palette[v + 1];
            rgb[o + 2] = palette[v + 2];
        }
        return (rgb, width, height);
    }

    /// <summary>
    /// The 256 colours an index shows: the given entries, then Pillow's initial grey ramp. Without a palette (or with one
    /// that is the grey ramp itself) Pillow opens the image as mode "L", where index v shows (v, v, v): the ramp again.
    /// </summary>
    static byte[] Palette(ReadOnlySpan<byte> entries)
    {
        var p = new byte[768];
        for (int i = 0; i < 768; i++) p[i] = i < entries.Length ? entries[i] : (byte)(i / 3);
        return p;
    }

    /// <summary>The position after the zero-length sub-block that ends a chain, or the end of the file.</summary>
    static int SkipSubBlocks(byte[] d, int p)
    {
        while (p < d.Length)
        {
            int length = d[p++];
            if (length == 0) return p;
            p += length;
        }
        return d.Length;
    }

    static int U16(byte[] d, int at) => BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan(at));

    internal static InvalidImageException Corrupt(string name, string cause) => new($"{name}: corrupt or truncated GIF: {cause}");
}
