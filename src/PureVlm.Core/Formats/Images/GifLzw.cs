namespace PureVlm.Formats.Images;

/// <summary>
/// GIF LZW decoding of one frame into an index canvas, following Pillow 9.4's GifDecode.c step by step so that corrupt
/// streams end the same way: codes past the table, a first code after a clear past the clear code, or a code size over
/// 12 are refused; a full table (4096 entries) stays full until a clear; decoding stops as soon as the frame's last row
/// is written, whatever follows. Pillow reads the file in 64 KiB chunks and a decoder pause (an end code, or a
/// sub-block not yet read whole) makes it read the next chunk: at the end of the file that is its "image file is
/// truncated", otherwise it decodes on, reading the following bytes as more sub-blocks. Every step consumes input, so
/// the loop ends.
/// </summary>
static class GifLzw
{
    const int Table = 4096, Chunk = 65536; // GIFTABLE; ImageFile.decodermaxblock

    /// <summary>Writes the frame's indices into <paramref name="image"/> (row length <paramref name="stride"/>).</summary>
    public static void Decode(byte[] d, int start, int bits, bool interlaced, byte[] image, int stride,
        int xOffset, int yOffset, int width, int height, string name)
    {
        if (bits > 12) throw GifDecoder.Corrupt(name, $"LZW code size {bits} is more than 12");
        int clear = 1 << bits, end = clear + 1;
        int pass = interlaced ? 1 : 0, step = interlaced ? 8 : 1, x = 0, y = 0;
        long available = Math.Min(d.Length, (long)start + Chunk);
        int p = start, bitBuffer = 0, bitCount = 0, blockSize = 0;
        int next = 0, codeSize = 0, codeMask = 0, lastCode = 0, state = 1;
        byte lastData = 0;
        var link = new ushort[Table];
        var data = new byte[Table];
        var buffer = new byte[Table];
        int bufferIndex = Table;

        while (true)
        {
            if (state == 1)
            {
                next = clear + 2;
                codeSize = bits + 1;
                codeMask = (1 << codeSize) - 1;
                bufferIndex = Table;
                state = 2;
            }

            // The pixels to write: the rest of the last string (kept in the buffer), else the next code's first pixel.
            int from = -1, count = 1; // from -1: the single pixel lastData
            if (bufferIndex < Table)
            {
                from = bufferIndex;
                count = Table - bufferIndex;
                bufferIndex = Table;
            }
            else
            {
                while (bitCount < codeSize)
                {
                    if (blockSize > 0)
                    {
                        bitBuffer |= d[p++] << bitCount;
                        bitCount += 8;
                        blockSize--;
                    }
                    else if (p < available && p + 1 + d[p] <= available) blockSize = d[p++];
                    else available = ReadMore(d, available, name);
                }
                int c = bitBuffer & codeMask;
                bitBuffer >>= codeSize;
                bitCount -= codeSize;

                if (c == clear)
                {
                    if (state != 2) state = 1;
                    continue;
                }
                if (c == end)
                {
                    available = ReadMore(d, available, name);
                    continue;
                }
                if (state == 2)
                {
                    if (c > clear) throw Broken(name);
                    lastData = (byte)c;
                    lastCode = c;
                    state = 3;
                }
                else
                {
                    int code = c;
                    if (c > next) throw Broken(name);
                    if (c == next)
                    {
                        if (bufferIndex <= 0) throw Broken(name);
                        buffer[--bufferIndex] = lastData;
                        c = lastCode;
                    }
                    while (c >= clear)
                    {
                        if (bufferIndex <= 0 || c >= Table) throw Broken(name);
                        buffer[--bufferIndex] = data[c];
                        c = link[c];
                    }
                    lastData = (byte)c;
                    if (next < Table)
                    {
                        data[next] = (byte)c;
                        link[next] = (ushort)lastCode;
                        if (next == codeMask && codeSize < 12)
                        {
                            codeSize++;
                            codeMask = (1 << codeSize) - 1;
                        }
                        next++;
                    }
                    lastCode = code;
                }
            }

            for (int k = 0; k < count; k++)
            {
                image[(long)(y + yOffset) * stride + xOffset + x] = from < 0 ? lastData : buffer[from + k];
                if (++x < width) continue;
                x = 0;
                y += step;
                while (y >= height)
                {
                    switch (pass) // interlace passes: rows 0, 4, 2, 1 mod 8, 8, 4, 2
                    {
                        case 1: y = 4; pass = 2; break;
                        case 2: step = 4; y = 2; pass = 3; break;
                        case 3: step = 2; y = 1; pass = 0; break;
                        default: return;
                    }
                }
            }
        }
    }

    /// <summary>Pillow's next read of the file: another chunk, or "truncated" at the end of the file.</summary>
    static long ReadMore(byte[] d, long available, string name) =>
        available < d.Length ? Math.Min(d.Length, available + Chunk)
            : throw GifDecoder.Corrupt(name, "the image data ends before the first frame is complete");

    static InvalidImageException Broken(string name) => GifDecoder.Corrupt(name, "broken LZW data in the first frame");
}
