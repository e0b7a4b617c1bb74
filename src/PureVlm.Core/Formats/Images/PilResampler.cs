namespace PureVlm.Formats.Images;

/// <summary>PIL's resampling filters for 8-bit images, numbered as PIL numbers them (the <c>resample</c> of a preprocessor_config.json).</summary>
public enum PilFilter
{
    /// <summary><c>Image.BILINEAR</c>: the triangle filter, support 1 (Gemma 3's processor).</summary>
    Bilinear = 2,
    /// <summary><c>Image.BICUBIC</c>: the cubic convolution filter with a = −0.5, support 2 (SigLIP's and CLIP's processors).</summary>
    Bicubic = 3,
}

/// <summary>
/// Bit-exact restatement of PIL's <c>Image.resize((w, h), filter)</c> for 8-bit RGB and gray (Pillow libImaging/Resample.c),
/// for the filters of <see cref="PilFilter"/>: a separable convolution whose support widens by the scale factor when
/// shrinking, weights normalised per output pixel and rounded to 22-bit fixed point, a horizontal pass over only the
/// rows the vertical pass will read, then a vertical pass, each rounding and clamping to 0..255. The filters differ
/// only in their kernel and its support (<see cref="PilTaps"/>).
/// </summary>
public static class PilResampler
{
    /// <summary>Fractional bits of the fixed-point weights: 32 bits less 8 for the sample, less 2 for overshoot.</summary>
    const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes to <paramref name="width"/> × <paramref name="height"/> with <paramref name="filter"/>; the same size returns a copy, as PIL does.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height, PilFilter filter)
    {
        ArgumentNullException.ThrowIfNull(image);
        return new RgbImage(width, height, Resize(image.Pixels, image.Width, image.Height, 3, width, height, filter), image.SourcePath);
    }

    /// <summary>
    /// PIL's <c>Image.resize((width, height), filter)</c> of an 8-bit single-channel ('L') image, [inHeight, inWidth]
    /// row-major; returns [height, width].
    /// </summary>
    public static byte[] ResizeGray(byte[] pixels, int inWidth, int inHeight, int width, int height, PilFilter filter)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (inWidth <= 0 || inHeight <= 0 || pixels.Length != (long)inWidth * inHeight)
            throw new ArgumentException($"{pixels.Length} bytes for a {inWidth}x{inHeight} gray image, expected {(long)inWidth * inHeight}", nameof(pixels));
        return Resize(pixels, inWidth, inHeight, 1, width, height, filter);
    }

    static byte[] Resize(byte[] pixels, int inWidth, int inHeight, int channels, int width, int height, PilFilter filter)
    {
        if (width <= 0 || height <= 0 || width > ImageLoader.MaxSide || height > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height}: each side must be 1..{ImageLoader.MaxSide}");
        if (width == inWidth && height == inHeight) return (byte[])pixels.Clone();

        var (support, kernel) = filter switch
        {
            PilFilter.Bilinear => (1.0, (Func<double, double>)PilTaps.Triangle),
            PilFilter.Bicubic => (2.0, PilTaps.Cubic),
            _ => throw new ArgumentOutOfRangeException(nameof(filter), filter, "expected Bilinear or Bicubic"),
        };
        var vertical = Taps.Compute(inHeight, height, support, kernel);
        byte[] rows = pixels;
        int firstRow = 0;
        if (width != inWidth)
        {
            // Only rows [firstRow, lastRow) feed the vertical pass.
            firstRow = vertical.Start[0];
            int lastRow = vertical.Start[height - 1] + vertical.Count[height - 1];
            var horizontal = Taps.Compute(inWidth, width, support, kernel);
            rows = new byte[(lastRow - firstRow) * width * channels]; // [lastRow - firstRow, width, channels]
            Convolve(pixels, firstRow * inWidth * channels, lineStride: inWidth * channels, tapStride: channels,
                     rows, outLineStride: width * channels, outStep: channels, lines: lastRow - firstRow, channels, horizontal);
        }
        if (height == inHeight) return rows;

        var output = new byte[height * width * channels]; // [height, width, channels]
        Convolve(rows, -firstRow * width * channels, lineStride: channels, tapStride: width * channels,
                 output, outLineStride: channels, outStep: width * channels, lines: width, channels, vertical);
        return output;
    }

    /// <summary>
    /// One separable pass. For each line l and output position o, each channel c:
    /// <c>dst[l*outLineStride + o*outStep + c] = clamp(Σ_k src[srcBase + l*lineStride + (Start[o]+k)*tapStride + c] · W[o,k])</c>.
    /// Horizontal: lines are rows, taps step over pixels. Vertical: lines are columns, taps step over rows.
    /// </summary>
    static void Convolve(byte[] src, int srcBase, int lineStride, int tapStride, byte[] dst, int outLineStride, int outStep, int lines, int channels, Taps taps)
    {
        for (int l = 0; l < lines; l++)
        {
            for (int o = 0; o < taps.Start.Length; o++)
            {
                int w0 = o * taps.Size;
                int s0 = srcBase + l * lineStride + taps.Start[o] * tapStride;
                int d = l * outLineStride + o * outStep;
                for (int c = 0; c < channels; c++)
                {
                    int sum = 1 << (PrecisionBits - 1); // rounds the final shift to nearest
                    for (int k = 0; k < taps.Count[o]; k++)
                        sum += src[s0 + k * tapStride + c] * taps.Weights[w0 + k];
                    dst[d + c] = Clamp8(sum);
                }
            }
        }
    }

    static byte Clamp8(int fixedPoint)
    {
        int v = fixedPoint >> PrecisionBits; // arithmetic shift: floor
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    /// <summary>Per output position: first input index, number of taps, and fixed-point weights ([outSize, Size]).</summary>
    sealed class Taps(int size, int[] start, int[] count, int[] weights)
    {
        public int Size { get; } = size;
        public int[] Start { get; } = start;
        public int[] Count { get; } = count;
        public int[] Weights { get; } = weights;

        /// <summary>Pillow's double coefficients rounded to 22-bit fixed point, half away from zero.</summary>
        public static Taps Compute(int inSize, int outSize, double support, Func<double, double> kernel)
        {
            var taps = PilTaps.Compute(inSize, outSize, support, kernel);
            var weights = new int[taps.Weights.Length];
            for (int i = 0; i < weights.Length; i++)
            {
                double w = taps.Weights[i] * (1 << PrecisionBits);
                weights[i] = (int)(w < 0 ? w - 0.5 : w + 0.5);
            }
            return new Taps(taps.Size, taps.Start, taps.Count, weights);
        }
    }
}
