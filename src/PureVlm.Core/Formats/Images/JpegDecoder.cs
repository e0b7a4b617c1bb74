using BitMiracle.LibJpeg.Classic;

namespace PureVlm.Formats.Images;

/// <summary>
/// Decodes a JPEG to the RGB pixels Pillow 9.4 gives: libjpeg-turbo 2.1.5 with its defaults (ISLOW integer IDCT, fancy
/// upsampling, its YCbCr tables and colour-space guess), then PIL's <c>convert("RGB")</c>, which for CMYK files means
/// Pillow's inverted ("Adobe") CMYK reading and its cmyk2rgb. BitMiracle.LibJpeg.NET does the entropy decoding and the
/// ISLOW IDCT and hands over the component planes unscaled (raw data); upsampling and colour conversion are done here,
/// because LibJpeg.NET follows IJG libjpeg 9, which upsamples chroma by scaled IDCTs instead of libjpeg-turbo's triangle
/// filter and guesses the colour space from component ids before JFIF/Adobe markers.
/// </summary>
static class JpegDecoder
{
    enum ColourSpace { Grey, YCbCr, Rgb, Cmyk, Ycck }

    /// <summary>One component's samples as decoded: <paramref name="Width"/>×<paramref name="Height"/> real samples in rows of <paramref name="Stride"/>.</summary>
    sealed record Plane(byte[] Samples, int Stride, int Width, int Height, int H, int V);

    /// <summary>
    /// Most scans accepted. Every progressive scan walks the whole image even when its data is empty, so a small file of
    /// thousands of scans would take minutes (libjpeg-turbo has the same weakness); real files have about 10.
    /// </summary>
    public const int MaxScans = 500;

    /// <summary>Decodes <paramref name="data"/> (a JPEG by its signature) and applies its EXIF orientation.</summary>
    public static RgbImage Decode(byte[] data, string name, string? fullPath)
    {
        var markers = JpegSegments.Read(data, name);
        if (1 + CountScans(data.AsSpan(markers.ScanData)) > MaxScans)
            throw new InvalidImageException($"{name}: JPEG has more than {MaxScans} scans; refusing a possible decompression-time bomb");
        var cinfo = new jpeg_decompress_struct(new QuietErrors());
        int width, height;
        byte[] rgb;
        try
        {
            cinfo.jpeg_stdio_src(new MemoryStream(data, writable: false));
            cinfo.jpeg_read_header(true);
            width = cinfo.Image_width;
            height = cinfo.Image_height;
            ImageLoader.CheckSize(name, width, height);
            // Pillow's own header reader refuses these before libjpeg sees the file.
            if (cinfo.Data_precision != 8)
                throw new InvalidImageException($"{name}: {cinfo.Data_precision}-bit JPEG samples are not supported (Pillow reads only 8-bit)");
            if (cinfo.Num_components is not (1 or 3 or 4))
                throw new InvalidImageException($"{name}: JPEG with {cinfo.Num_components} components is not supported (Pillow reads 1, 3 or 4)");
            var space = GuessColourSpace(cinfo, markers);
            var planes = ReadPlanes(cinfo, name);
            cinfo.jpeg_finish_decompress();
            rgb = ToRgb(planes, space, width, height);
        }
        catch (Exception e) when (e is not (InvalidImageException or OutOfMemoryException))
        {
            throw ImageLoader.Corrupt(name, "JPEG", "data", e);
        }
        return ExifOrientation.Apply(new RgbImage(width, height, rgb, fullPath), markers.Orientation);
    }

    // 0xFF is always followed by 0x00 inside entropy-coded data, so every 0xFF 0xDA after the first scan starts another.
    static int CountScans(ReadOnlySpan<byte> rest)
    {
        int count = 0;
        for (; rest.IndexOf([(byte)0xFF, (byte)0xDA]) is int at and >= 0; rest = rest[(at + 2)..]) count++;
        return count;
    }

    // libjpeg-turbo's default_decompress_parms: JFIF first, then Adobe's transform, then the component ids.
    static ColourSpace GuessColourSpace(jpeg_decompress_struct cinfo, JpegMarkers m) => cinfo.Num_components switch
    {
        1 => ColourSpace.Grey,
        3 when m.SawJfif => ColourSpace.YCbCr,
        3 when m.AdobeTransform >= 0 => m.AdobeTransform == 0 ? ColourSpace.Rgb : ColourSpace.YCbCr,
        3 => cinfo.Comp_info[0].Component_id == 'R' && cinfo.Comp_info[1].Component_id == 'G' && cinfo.Comp_info[2].Component_id == 'B'
            ? ColourSpace.Rgb : ColourSpace.YCbCr,
        _ => m.AdobeTransform is -1 or 0 ? ColourSpace.Cmyk : ColourSpace.Ycck,
    };

    static Plane[] ReadPlanes(jpeg_decompress_struct cinfo, string name)
    {
        var comps = cinfo.Comp_info;
        int n = cinfo.Num_components, width = cinfo.Image_width, height = cinfo.Image_height;
        int hmax = 1, vmax = 1;
        for (int c = 0; c < n; c++) { hmax = Math.Max(hmax, comps[c].H_samp_factor); vmax = Math.Max(vmax, comps[c].V_samp_factor); }
        for (int c = 0; c < n; c++)
            if (hmax % comps[c].H_samp_factor != 0 || vmax % comps[c].V_samp_factor != 0) // libjpeg-turbo's JERR_FRACT_SAMPLE_NOTIMPL
                throw new InvalidImageException($"{name}: JPEG sampling factors {hmax}x{vmax} and {comps[c].H_samp_factor}x{comps[c].V_samp_factor} are not integer multiples (libjpeg-turbo refuses them)");

        cinfo.Raw_data_out = true;
        cinfo.Dct_method = J_DCT_METHOD.JDCT_ISLOW;
        // Off, or LibJpeg.NET would decode subsampled components with a 16-point IDCT (libjpeg 9's way of upsampling)
        // even for raw data; the 8-point ISLOW IDCT plus the upsampling below is what libjpeg-turbo does.
        cinfo.Do_fancy_upsampling = false;
        cinfo.jpeg_start_decompress();

        int mcuColumns = (width + 8 * hmax - 1) / (8 * hmax), mcuRows = (height + 8 * vmax - 1) / (8 * vmax);
        var planes = new Plane[n];
        var rows = new byte[n][][];
        for (int c = 0; c < n; c++)
        {
            int h = comps[c].H_samp_factor, v = comps[c].V_samp_factor, stride = mcuColumns * h * 8;
            planes[c] = new Plane(new byte[(long)stride * mcuRows * v * 8], stride,
                (int)(((long)width * h + hmax - 1) / hmax), (int)(((long)height * v + vmax - 1) / vmax), h, v);
            rows[c] = new byte[v * 8][];
            for (int r = 0; r < rows[c].Length; r++) rows[c][r] = new byte[stride];
        }
        for (int mcuRow = 0; mcuRow < mcuRows; mcuRow++)
        {
            if (cinfo.jpeg_read_raw_data(rows, vmax * 8) == 0)
                throw new InvalidImageException($"{name}: truncated JPEG: the image data ends at row group {mcuRow} of {mcuRows}");
            for (int c = 0; c < n; c++)
                for (int r = 0; r < rows[c].Length; r++)
                    rows[c][r].CopyTo(planes[c].Samples, ((long)mcuRow * rows[c].Length + r) * planes[c].Stride);
        }
        return planes;
    }

    static byte[] ToRgb(Plane[] planes, ColourSpace space, int width, int height)
    {
        int hmax = planes.Max(p => p.H), vmax = planes.Max(p => p.V);
        var rgb = new byte[3L * width * height];
        var lines = new byte[planes.Length][];
        for (int c = 0; c < planes.Length; c++) lines[c] = new byte[width + 1];
        for (int y = 0; y < height; y++)
        {
            for (int c = 0; c < planes.Length; c++) Upsample(planes[c], hmax / planes[c].H, vmax / planes[c].V, y, lines[c]);
            var o = rgb.AsSpan(3 * y * width, 3 * width);
            switch (space)
            {
                case ColourSpace.Grey: Grey(lines[0], o); break;
                case ColourSpace.Rgb: Interleave(lines[0], lines[1], lines[2], o); break;
                case ColourSpace.YCbCr: YccToRgb(lines[0], lines[1], lines[2], o); break;
                default: CmykToRgb(lines, space == ColourSpace.Ycck, o); break;
            }
        }
        return rgb;
    }

    // Output row y of a component from its samples, the way libjpeg-turbo's jinit_upsampler picks the method: triangle
    // ("fancy") filters for 2:1 horizontal (more than 2 samples wide), 2:1 vertical, and 2:1 both ways (more than 2
    // wide); box replication for every other integer ratio. Neighbours past the edges are the edge samples, as
    // libjpeg-turbo's context rows and first/last-column cases make them. Writes at least `width` samples to `line`.
    static void Upsample(Plane p, int rh, int rv, int y, byte[] line)
    {
        var s = p.Samples;
        int width = line.Length - 1, w = p.Width;
        if (rh == 1 && rv == 1)
        {
            Array.Copy(s, (long)y * p.Stride, line, 0, width);
        }
        else if (rh == 1 && rv == 2)
        {
            int near = (y >> 1) * p.Stride, far = Far(p, y), bias = (y & 1) == 0 ? 1 : 2;
            for (int x = 0; x < width; x++) line[x] = (byte)((s[near + x] * 3 + s[far + x] + bias) >> 2);
        }
        else if (rh == 2 && rv == 1 && w > 2)
        {
            int row = y * p.Stride;
            for (int i = 0, last = w - 1; 2 * i < width; i++)
            {
                int here = s[row + i] * 3;
                line[2 * i] = (byte)((here + s[row + Math.Max(i - 1, 0)] + 1) >> 2);
                line[2 * i + 1] = (byte)((here + s[row + Math.Min(i + 1, last)] + 2) >> 2);
            }
        }
        else if (rh == 2 && rv == 2 && w > 2)
        {
            int near = (y >> 1) * p.Stride, far = Far(p, y);
            int ColumnSum(int i) => s[near + i] * 3 + s[far + i];
            int previous = ColumnSum(0), here = previous;
            for (int i = 0, last = w - 1; 2 * i < width; i++)
            {
                int next = ColumnSum(Math.Min(i + 1, last));
                line[2 * i] = (byte)((here * 3 + previous + 8) >> 4);
                line[2 * i + 1] = (byte)((here * 3 + next + 7) >> 4);
                previous = here;
                here = next;
            }
        }
        else
        {
            int row = y / rv * p.Stride;
            for (int x = 0; x < width; x++) line[x] = s[row + x / rh];
        }
    }

    // The second-nearest sample row for output row y of a 2:1 vertically subsampled component: the row above for even
    // y, below for odd y, the first or last real row past the edges.
    static int Far(Plane p, int y) => Math.Clamp((y >> 1) + ((y & 1) == 0 ? -1 : 1), 0, p.Height - 1) * p.Stride;

    static void Grey(byte[] g, Span<byte> o)
    {
        for (int x = 0, i = 0; i < o.Length; x++, i += 3) o[i] = o[i + 1] = o[i + 2] = g[x];
    }

    static void Interleave(byte[] r, byte[] g, byte[] b, Span<byte> o)
    {
        for (int x = 0, i = 0; i < o.Length; x++, i += 3) { o[i] = r[x]; o[i + 1] = g[x]; o[i + 2] = b[x]; }
    }

    // libjpeg-turbo's jdcolor.c tables: 16-bit fixed point, Cb/Cr centred on 128, G's rounding folded into CbG.
    const int ScaleBits = 16, Half = 1 << (ScaleBits - 1);
    static int Fix(double v) => (int)(v * (1 << ScaleBits) + 0.5);
    static readonly int[] CrR = Table(x => (Fix(1.40200) * x + Half) >> ScaleBits);
    static readonly int[] CbB = Table(x => (Fix(1.77200) * x + Half) >> ScaleBits);
    static readonly int[] CrG = Table(x => -Fix(0.71414) * x);
    static readonly int[] CbG = Table(x => -Fix(0.34414) * x + Half);
    static int[] Table(Func<int, int> f) => Enumerable.Range(0, 256).Select(i => f(i - 128)).ToArray();

    static void YccToRgb(byte[] yy, byte[] cb, byte[] cr, Span<byte> o)
    {
        for (int x = 0, i = 0; i < o.Length; x++, i += 3)
        {
            int y = yy[x];
            o[i] = Clip(y + CrR[cr[x]]);
            o[i + 1] = Clip(y + ((CbG[cb[x]] + CrG[cr[x]]) >> ScaleBits));
            o[i + 2] = Clip(y + CbB[cb[x]]);
        }
    }

    // Pillow reads every CMYK JPEG as inverted ("CMYK;I", Adobe's convention) and converts with cmyk2rgb:
    // out = clip(nk - nk·c/255) with nk = 255 - k, both after inversion. For YCCK libjpeg first gives
    // C = 255 - R(Y,Cb,Cr) (likewise M, Y) and K unchanged, so the inverted C is that R.
    static void CmykToRgb(byte[][] lines, bool ycck, Span<byte> o)
    {
        byte[] c0 = lines[0], c1 = lines[1], c2 = lines[2], k = lines[3];
        for (int x = 0, i = 0; i < o.Length; x++, i += 3)
        {
            int a, b, c;
            if (ycck)
            {
                int y = c0[x];
                a = Clip(y + CrR[c2[x]]);
                b = Clip(y + ((CbG[c1[x]] + CrG[c2[x]]) >> ScaleBits));
                c = Clip(y + CbB[c1[x]]);
            }
            else (a, b, c) = (255 - c0[x], 255 - c1[x], 255 - c2[x]);
            int nk = k[x]; // 255 - (255 - K)
            o[i] = Clip(nk - MulDiv255(a, nk));
            o[i + 1] = Clip(nk - MulDiv255(b, nk));
            o[i + 2] = Clip(nk - MulDiv255(c, nk));
        }
    }

    static int MulDiv255(int a, int b)
    {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    static byte Clip(int v) => (byte)Math.Clamp(v, 0, 255);

    /// <summary>libjpeg's warnings (corrupt data it decodes past) are not errors for Pillow either; errors still throw.</summary>
    sealed class QuietErrors : jpeg_error_mgr
    {
        public override void output_message() { }
    }
}
