using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace PureVlm.Tests.Images;

/// <summary>Hand-built encoded images for decoder tests.</summary>
static class ImageBytes
{
    public static byte[] Png(int width, int height, byte bitDepth, byte colourType, byte[] filteredRows, params byte[][] extraChunks)
    {
        var ihdr = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(ihdr, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(ihdr.AsSpan(4), (uint)height);
        ihdr[8] = bitDepth;
        ihdr[9] = colourType;
        var compressed = new MemoryStream();
        using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true)) z.Write(filteredRows);
        var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        png.Write(Chunk("IHDR", ihdr));
        foreach (var c in extraChunks) png.Write(c);
        png.Write(Chunk("IDAT", compressed.ToArray()));
        png.Write(Chunk("IEND", []));
        return png.ToArray();
    }

    public static byte[] Chunk(string type, byte[] data)
    {
        var c = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(c, (uint)data.Length);
        Encoding.ASCII.GetBytes(type).CopyTo(c, 4);
        data.CopyTo(c, 8);
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + data.Length), Crc32(c.AsSpan(4, 4 + data.Length)));
        return c;
    }

    static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    /// <summary>
    /// A 2×2 GIF with a 4-colour global palette and two frames; each frame's LZW stream sends a clear code before
    /// every pixel so that all codes stay 3 bits wide.
    /// </summary>
    public static byte[] TwoFrameGif(byte[] palette12, int[] frame0, int[] frame1) => AnimatedGif(2, 2, palette12, [frame0, frame1]);

    /// <summary>
    /// A <paramref name="width"/> × <paramref name="height"/> (each below 256) GIF with a 4-colour global palette and one
    /// full-size frame per entry of <paramref name="frames"/> (palette indices, row-major), coded as <see cref="TwoFrameGif"/>.
    /// </summary>
    public static byte[] AnimatedGif(int width, int height, byte[] palette12, IReadOnlyList<int[]> frames)
    {
        var g = new MemoryStream();
        g.Write("GIF89a"u8);
        g.Write([(byte)width, 0, (byte)height, 0, 0x81, 0, 0]); // global table of 2^(1+1) colours
        g.Write(palette12);
        foreach (var frame in frames)
        {
            g.Write([0x2C, 0, 0, 0, 0, (byte)width, 0, (byte)height, 0, 0]);
            g.WriteByte(2); // LZW minimum code size: clear = 4, end = 5
            var codes = frame.SelectMany(i => new[] { 4, i }).Append(5).ToArray();
            var data = PackLsbFirst(codes, 3);
            foreach (var block in data.Chunk(255))
            {
                g.WriteByte((byte)block.Length);
                g.Write(block);
            }
            g.WriteByte(0);
        }
        g.WriteByte(0x3B);
        return g.ToArray();
    }

    static byte[] PackLsbFirst(int[] codes, int bits)
    {
        var bytes = new byte[(codes.Length * bits + 7) / 8];
        int pos = 0;
        foreach (int code in codes)
            for (int b = 0; b < bits; b++, pos++)
                if ((code >> b & 1) != 0) bytes[pos / 8] |= (byte)(1 << (pos % 8));
        return bytes;
    }

    /// <summary>An APP1 segment holding a one-entry EXIF IFD0 with Orientation (SHORT) = <paramref name="orientation"/>.</summary>
    public static byte[] ExifApp1(int orientation, bool bigEndian)
    {
        var tiff = new byte[8 + 2 + 12 + 4];
        void U16(int at, int v) { if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(tiff.AsSpan(at), (ushort)v); else BinaryPrimitives.WriteUInt16LittleEndian(tiff.AsSpan(at), (ushort)v); }
        void U32(int at, int v) { if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(tiff.AsSpan(at), (uint)v); else BinaryPrimitives.WriteUInt32LittleEndian(tiff.AsSpan(at), (uint)v); }
        tiff[0] = tiff[1] = (byte)(bigEndian ? 'M' : 'I');
        U16(2, 42);
        U32(4, 8);        // IFD0 offset
        U16(8, 1);        // one entry
        U16(10, 0x0112);  // Orientation
        U16(12, 3);       // SHORT
        U32(14, 1);       // count
        U16(18, orientation);
        var body = "Exif\0\0"u8.ToArray().Concat(tiff).ToArray();
        var segment = new byte[4 + body.Length];
        segment[0] = 0xFF; segment[1] = 0xE1;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)(body.Length + 2));
        body.CopyTo(segment, 4);
        return segment;
    }

    /// <summary>Inserts a segment right after the JPEG start-of-image marker.</summary>
    public static byte[] SpliceAfterSoi(byte[] jpeg, byte[] segment) => jpeg[..2].Concat(segment).Concat(jpeg[2..]).ToArray();
}
