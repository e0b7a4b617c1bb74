using System.Buffers.Binary;

namespace PureVlm.Formats.Images;

/// <summary>
/// What the segments before a JPEG's first scan say: the EXIF orientation and the markers libjpeg-turbo uses to guess the
/// colour space (a JFIF APP0 and the transform of an Adobe APP14; -1 when there is no Adobe segment), and where the
/// first scan's entropy-coded data starts.
/// </summary>
readonly record struct JpegMarkers(int Orientation, bool SawJfif, int AdobeTransform, int ScanData);

/// <summary>Walks a JPEG's marker segments the way Pillow's parser does and rejects files cut short (Pillow refuses them).</summary>
static class JpegSegments
{
    static ReadOnlySpan<byte> ExifHeader => "Exif\0\0"u8;

    /// <summary>Reads the segments up to the first scan; throws when the file ends before its end-of-image marker.</summary>
    public static JpegMarkers Read(byte[] d, string name)
    {
        int orientation = 1, adobeTransform = -1;
        bool sawExif = false, sawJfif = false;
        int p = 2;
        while (true)
        {
            if (p + 2 > d.Length) throw Truncated(name, "before the image data");
            if (d[p] != 0xFF) { p++; continue; } // junk between segments: Pillow and libjpeg skip it
            byte marker = d[p + 1];
            if (marker == 0xFF) { p++; continue; } // fill byte
            p += 2;
            if (marker == 0x00) continue; // a stuffed zero outside a scan, skipped by both as well
            if (marker < 0xC0) throw new InvalidImageException($"{name}: corrupt JPEG: unknown marker 0xFF{marker:X2} at byte {p - 2}");
            if (marker == 0xD9) throw new InvalidImageException($"{name}: corrupt JPEG: end-of-image marker before any image data");
            if (marker is 0xD8 or >= 0xD0 and <= 0xD7) continue; // markers without a length
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
            // The same tests as libjpeg-turbo's examine_app0 and examine_app14 (at least 14 and 12 bytes of data).
            if (marker == 0xE0 && body.Length >= 14 && body.StartsWith("JFIF\0"u8)) sawJfif = true;
            if (marker == 0xEE && body.Length >= 12 && body.StartsWith("Adobe"u8)) adobeTransform = body[11];
            p += length;
            if (marker == 0xDA) // start of scan: entropy-coded data follows, in which 0xFF is always stuffed, so 0xFFD9 is the end
            {
                if (d.AsSpan(p).IndexOf((ReadOnlySpan<byte>)[0xFF, 0xD9]) < 0) throw Truncated(name, "inside the image data (no end-of-image marker)");
                return new JpegMarkers(orientation, sawJfif, adobeTransform, p);
            }
        }
    }

    static InvalidImageException Truncated(string name, string where) => new($"{name}: truncated JPEG: the file ends {where}");
}
