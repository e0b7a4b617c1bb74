using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>
/// BMP as Pillow 9.4's BmpImagePlugin reads it, then <c>convert("RGB")</c>. Written by hand because neither StbImageSharp
/// nor ImageSharp reproduces Pillow here: OS/2 1.x headers, RLE with Pillow's own reading of deltas (two bytes more than
/// the escape's), odd RLE4 absolute stretches (last pixel dropped) and word alignment by file position, the greyscale
/// shortcut (a grey palette is dropped and the raster read as 1- or 8-bit), 16-bit channels expanded as <c>v * 255 / max</c>,
/// palette entries past the palette read as the grey ramp. Layouts Pillow refuses are refused with one line.
/// </summary>
static class BmpDecoder
{
    enum Raw { Index1, Index4, Index8, Bgr15, Bgr16, Bgr, Bgrx, Xbgr, Abgr, Rgba, Bgra }

    /// <summary>Decodes a BMP file (starting with "BM") into RGB bytes.</summary>
    public static (byte[] Rgb, int Width, int Height) Decode(byte[] d, string name)
    {
        if (d.Length < 18) throw Truncated(name, "the file ends inside the file header");
        long offset = U32(d, 10);
        uint headerSize = U32(d, 14);
        if (headerSize is not (12 or 40 or 64 or 108 or 124))
            throw new InvalidImageException($"{name}: unsupported BMP header size {headerSize} (Pillow reads 12, 40, 64, 108 and 124)");
        if (d.Length < 14 + headerSize) throw Truncated(name, "the file ends inside the bitmap header");

        long width, height;
        int bits, direction = -1, entrySize = 4;
        uint compression = 0, colorCount = 0;
        long position = 14 + headerSize; // where Pillow's file pointer is after the header (and masks)
        uint[] masks = [0, 0, 0, 0];
        if (headerSize == 12)
        {
            width = U16(d, 18);
            height = U16(d, 20);
            bits = U16(d, 24);
            entrySize = 3;
        }
        else
        {
            bool flipped = d[25] == 0xFF; // Pillow's test for a negative (top-down) height
            direction = flipped ? 1 : -1;
            width = U32(d, 18);
            height = flipped ? (1L << 32) - U32(d, 22) : U32(d, 22);
            bits = U16(d, 28);
            compression = U32(d, 30);
            colorCount = U32(d, 46);
            if (compression == 3)
            {
                long at = headerSize >= 56 ? 54 : position; // a 40-byte header's masks follow it
                if (at + 12 > d.Length) throw Truncated(name, "the file ends inside the bitfield masks");
                for (int i = 0; i < (headerSize >= 56 ? 4 : 3); i++) masks[i] = U32(d, at + 4 * i);
                if (headerSize < 56) position += 12;
            }
        }
        ImageLoader.CheckSize(name, (int)Math.Min(width, int.MaxValue), (int)Math.Min(height, int.MaxValue));
        int w = (int)width, h = (int)height;

        long colors = colorCount != 0 ? colorCount : bits < 32 ? 1L << bits : long.MaxValue;
        if (offset == 14 + headerSize && bits <= 8) offset += 4 * colors; // Pillow's step over the palette (4 bytes also for OS/2 1.x)
        var raw = bits switch
        {
            1 => Raw.Index1, 4 => Raw.Index4, 8 => Raw.Index8, 16 => Raw.Bgr15, 24 => Raw.Bgr, 32 => Raw.Bgrx,
            _ => throw new InvalidImageException($"{name}: unsupported BMP pixel depth ({bits} bits; Pillow reads 1, 4, 8, 16, 24 and 32)"),
        };
        bool indexed = raw is Raw.Index1 or Raw.Index4 or Raw.Index8, rle = false;
        if (compression == 3) raw = BitfieldLayout(bits, masks) ?? throw new InvalidImageException($"{name}: unsupported BMP bitfields layout ({bits} bits, masks {masks[0]:X}/{masks[1]:X}/{masks[2]:X}/{masks[3]:X})");
        else if (compression is 1 or 2) rle = true;
        else if (compression != 0) throw new InvalidImageException($"{name}: unsupported BMP compression ({compression})");

        // Palette images: Pillow drops a palette whose entries are exactly the grey ramp (black and white for 2 colours)
        // and then reads the raster as mode "1" or "L", whatever the file's depth.
        byte[]? palette = null;
        bool grey = false;
        if (indexed)
        {
            if (colors is <= 0 or > 65536)
                throw new InvalidImageException($"{name}: unsupported BMP palette size ({colorCount} colours)");
            long available = Math.Clamp(d.Length - position, 0, entrySize * colors);
            var entries = d.AsSpan((int)Math.Min(position, d.Length), (int)available);
            position += available;
            grey = true;
            for (int i = 0; i < colors && grey; i++)
            {
                byte v = (byte)(colors == 2 ? i * 255 : i);
                grey = (i + 1) * entrySize <= entries.Length + entrySize - 3 && entries[i * entrySize] == v && entries[i * entrySize + 1] == v && entries[i * entrySize + 2] == v;
            }
            if (grey) raw = colors == 2 ? Raw.Index1 : Raw.Index8;
            else
            {
                if (entries.Length / entrySize > 256)
                    throw new InvalidImageException($"{name}: BMP palette has {entries.Length / entrySize} colours, more than 256 (Pillow refuses it)");
                palette = GreyRamp();
                for (int i = 0; i < entries.Length / entrySize; i++)
                {
                    palette[3 * i] = entries[i * entrySize + 2];
                    palette[3 * i + 1] = entries[i * entrySize + 1];
                    palette[3 * i + 2] = entries[i * entrySize];
                }
            }
        }
        if (offset == 0) offset = position;

        var rgb = new byte[3L * w * h];
        if (rle)
        {
            // Pillow hands the expanded indices to mode "P" or "L"; mode "1" and RGB have no such raw mode
            if (!indexed || (grey && colors == 2))
                throw new InvalidImageException($"{name}: unsupported BMP: RLE compression with {bits} bits per pixel{(grey ? " and a black-and-white palette" : "")} (Pillow refuses it)");
            var indices = BmpRle.Decode(d, offset, w, h, compression == 2, name);
            for (int row = 0; row < h; row++)
            {
                int y = direction < 0 ? h - 1 - row : row;
                Expand(indices.AsSpan(row * w, w), Raw.Index8, palette, rgb.AsSpan(3 * y * w, 3 * w));
            }
            return (rgb, w, h);
        }

        long stride = ((width * bits + 31) >> 3) & ~3L;
        long rowBytes = (width * RawBits(raw) + 7) / 8;
        // Pillow memory-maps an 8-bit palette or grey raster read from a file and then reads rows of rowBytes at each
        // stride, even when they overlap (a 4-bit grey-ramp file read as 8-bit); otherwise its raw decoder refuses that.
        bool mapped = raw == Raw.Index8 && offset + h * stride <= d.Length;
        if (!mapped && stride < rowBytes)
            throw new InvalidImageException($"{name}: corrupt BMP: {rowBytes}-byte rows in a {stride}-byte stride (Pillow refuses it)");
        if (!mapped && offset + (h - 1) * stride + rowBytes > d.Length)
            throw new InvalidImageException($"{name}: truncated BMP: {w}x{h} at {bits} bits per pixel needs {offset + (h - 1) * stride + rowBytes} bytes, file has {d.Length}");
        var padded = new byte[rowBytes];
        for (int row = 0; row < h; row++)
        {
            long start = offset + row * stride;
            ReadOnlySpan<byte> source;
            if (start + rowBytes <= d.Length) source = d.AsSpan((int)start, (int)rowBytes);
            else
            {
                // only a mapped raster reads past the end: the mapping's page is zero-filled there
                Array.Clear(padded);
                if (start < d.Length) d.AsSpan((int)start).CopyTo(padded);
                source = padded;
            }
            int y = direction < 0 ? h - 1 - row : row;
            Expand(source, raw, palette, rgb.AsSpan(3 * y * w, 3 * w));
        }
        return (rgb, w, h);
    }

    static Raw? BitfieldLayout(int bits, uint[] m) => (bits, m[0], m[1], m[2], m[3]) switch
    {
        (32, 0xFF0000, 0xFF00, 0xFF, 0) => Raw.Bgrx,
        (32, 0xFF000000, 0xFF0000, 0xFF00, 0) => Raw.Xbgr,
        (32, 0xFF000000, 0xFF0000, 0xFF00, 0xFF) => Raw.Abgr,
        (32, 0xFF, 0xFF00, 0xFF0000, 0xFF000000) => Raw.Rgba,
        (32, 0xFF0000, 0xFF00, 0xFF, 0xFF000000) => Raw.Bgra,
        (32, 0, 0, 0, 0) => Raw.Bgra,
        (24, 0xFF0000, 0xFF00, 0xFF, _) => Raw.Bgr,
        (16, 0xF800, 0x7E0, 0x1F, _) => Raw.Bgr16,
        (16, 0x7C00, 0x3E0, 0x1F, _) => Raw.Bgr15,
        _ => null,
    };

    static int RawBits(Raw raw) => raw switch
    {
        Raw.Index1 => 1, Raw.Index4 => 4, Raw.Index8 => 8, Raw.Bgr15 or Raw.Bgr16 => 16, Raw.Bgr => 24, _ => 32,
    };

    /// <summary>Palette entries past those given keep Pillow's initial grey ramp.</summary>
    static byte[] GreyRamp()
    {
        var p = new byte[768];
        for (int i = 0; i < 256; i++) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = (byte)i;
        return p;
    }

    /// <summary>One row of <paramref name="raw"/> samples to RGB (no palette: a grey image, index = level).</summary>
    static void Expand(ReadOnlySpan<byte> s, Raw raw, byte[]? palette, Span<byte> o)
    {
        int w = o.Length / 3;
        for (int x = 0; x < w; x++)
        {
            byte r, g, b;
            switch (raw)
            {
                case Raw.Index1 or Raw.Index4 or Raw.Index8:
                    int index = raw switch
                    {
                        Raw.Index1 => (s[x >> 3] >> (7 - (x & 7))) & 1,
                        Raw.Index4 => (s[x >> 1] >> ((x & 1) == 0 ? 4 : 0)) & 15,
                        _ => s[x],
                    };
                    if (palette is null)
                    {
                        // mode "1" shows 0/255, mode "L" shows the index itself
                        r = g = b = raw == Raw.Index1 ? (byte)(index * 255) : (byte)index;
                    }
                    else { r = palette[3 * index]; g = palette[3 * index + 1]; b = palette[3 * index + 2]; }
                    break;
                case Raw.Bgr15 or Raw.Bgr16:
                    int v = s[2 * x] | s[2 * x + 1] << 8;
                    b = (byte)((v & 31) * 255 / 31);
                    if (raw == Raw.Bgr16) { g = (byte)(((v >> 5) & 63) * 255 / 63); r = (byte)(((v >> 11) & 31) * 255 / 31); }
                    else { g = (byte)(((v >> 5) & 31) * 255 / 31); r = (byte)(((v >> 10) & 31) * 255 / 31); }
                    break;
                case Raw.Bgr: b = s[3 * x]; g = s[3 * x + 1]; r = s[3 * x + 2]; break;
                case Raw.Bgrx or Raw.Bgra: b = s[4 * x]; g = s[4 * x + 1]; r = s[4 * x + 2]; break;
                case Raw.Xbgr or Raw.Abgr: b = s[4 * x + 1]; g = s[4 * x + 2]; r = s[4 * x + 3]; break;
                default: r = s[4 * x]; g = s[4 * x + 1]; b = s[4 * x + 2]; break; // Rgba
            }
            o[3 * x] = r; o[3 * x + 1] = g; o[3 * x + 2] = b;
        }
    }

    static uint U32(byte[] d, long at) => BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan((int)at));
    static ushort U16(byte[] d, long at) => BinaryPrimitives.ReadUInt16LittleEndian(d.AsSpan((int)at));

    static InvalidImageException Truncated(string name, string where) => new($"{name}: truncated BMP: {where}");
}
