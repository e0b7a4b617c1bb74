namespace PureVlm.Formats.Images;

/// <summary>
/// RLE8/RLE4 BMP data expanded to one index a pixel exactly as Pillow 9.4's <c>BmpRleDecoder</c> does, quirks included
/// (they decide the pixels of real files): a delta escape is followed by two bytes Pillow ignores and then the two it
/// uses; an odd RLE4 absolute stretch loses its last pixel; absolute stretches are word-aligned by file position, not
/// by position in the data; skipped pixels and the rest of a row ended early are index 0; a run never crosses the end of
/// its row but an absolute stretch does. Data that ends before the image is full is refused, as Pillow refuses it.
/// </summary>
static class BmpRle
{
    /// <summary>Indices in stored row order (<paramref name="width"/> × <paramref name="height"/>).</summary>
    public static byte[] Decode(byte[] d, long offset, int width, int height, bool rle4, string name)
    {
        long total = (long)width * height, length = 0, x = 0, pos = offset;
        var indices = new byte[total];
        void Put(byte v) { if (length < total) indices[length] = v; length++; }
        bool Available(long n) => pos >= 0 && pos + n <= d.Length;

        while (length < total)
        {
            if (!Available(2)) break;
            int count = d[pos], value = d[pos + 1];
            pos += 2;
            if (count != 0)
            {
                if (x + count > width) count = (int)Math.Max(0, width - x);
                for (int i = 0; i < count; i++)
                    Put(rle4 ? (byte)((i & 1) == 0 ? value >> 4 : value & 15) : (byte)value);
                x += count;
            }
            else if (value == 0) // end of line
            {
                length = (length + width - 1) / width * width;
                x = 0;
            }
            else if (value == 1) break; // end of bitmap
            else if (value == 2) // delta: Pillow 9.4 reads two bytes, then takes the next two as (right, up)
            {
                if (!Available(2)) break;
                pos += 2;
                if (!Available(2))
                    throw new InvalidImageException($"{name}: truncated BMP: the file ends inside an RLE delta");
                length += d[pos] + (long)d[pos + 1] * width;
                pos += 2;
                x = length % width;
            }
            else // absolute stretch of `value` pixels
            {
                int bytes = rle4 ? value / 2 : value;
                int read = (int)Math.Clamp(d.Length - pos, 0, bytes);
                for (int i = 0; i < read; i++)
                {
                    byte b = d[pos + i];
                    if (rle4) { Put((byte)(b >> 4)); Put((byte)(b & 15)); }
                    else Put(b);
                }
                pos += read;
                if (read < bytes) break;
                x += value;
                if (pos % 2 != 0) pos++;
            }
        }
        if (length < total)
            throw new InvalidImageException($"{name}: corrupt or truncated BMP: the RLE data ends after {Math.Min(length, total)} of {total} pixels");
        return indices;
    }
}
