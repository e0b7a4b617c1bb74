using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>Walks a JPEG's marker segments: finds the EXIF orientation and rejects files cut short (stb would decode the missing part as grey).</summary>
static class JpegSegments
{
    static ReadOnlySpan<byte> ExifHeader => "Exif\0\0"u8;

    /// <summary>Orientation from the first APP1 Exif segment (1 when absent); throws when the file ends before its end-of-image marker.</summary>
    public static int CheckAndReadOrientation(byte[] d, string name)
    {
        int orientation = 1;
        bool sawExif = false;
        int p = 2;
        while (true)
        {
            if (p + 2 > d.Length) throw Truncated(name, "before the image data");
            if (d[p] != 0xFF) throw new InvalidImageException($"{name}: corrupt JPEG: expected a marker at byte {p}, found 0x{d[p]:X2}");
            byte marker = d[p + 1];
            if (marker == 0xFF) { p++; continue; } // fill byte
            p += 2;
            if (marker == 0xD9) throw new InvalidImageException($"{name}: corrupt JPEG: end-of-image marker before any image data");
            if (marker is 0x01 or >= 0xD0 and <= 0xD7) continue; // markers without a length
            if (p + 2 > d.Length) throw Truncated(name, "inside a segment header");
            int length = BinaryPrimitives.ReadUInt16BigEndian(d.AsSpan(p));
            if (length < 2) throw new InvalidImageException($"{name}: corrupt JPEG: segment 0xFF{marker:X2} at byte {p - 2} has length {length}");
            if (p + length > d.Length) throw Truncated(name, $"inside segment 0xFF{marker:X2}");
            var body = d.AsSpan(p + 2, length - 2);
            if (marker == 0xE1 && !sawExif && body.StartsWith(ExifHeader))
            {
                sawExif = true;
                orientation = ExifOrientation.Parse(body[ExifHeader.Length..]);
            }
            p += length;
            if (marker == 0xDA) // start of scan: entropy-coded data follows, in which 0xFF is always stuffed, so 0xFFD9 is the end
            {
                if (d.AsSpan(p).IndexOf((ReadOnlySpan<byte>)[0xFF, 0xD9]) < 0) throw Truncated(name, "inside the image data (no end-of-image marker)");
                return orientation;
            }
        }
    }

    static InvalidImageException Truncated(string name, string where) => new($"{name}: truncated JPEG: the file ends {where}");
}
