namespace PureVlm.Formats.Images;

/// <summary>
/// Bit-exact restatement of PIL's <c>Image.resize((w, h), Image.BICUBIC)</c> for 8-bit RGB (Pillow libImaging/Resample.c):
/// a separable cubic convolution (a = -0.5) whose support widens by the scale factor when shrinking, weights
/// normalised per output pixel and rounded to 22-bit fixed point, a horizontal pass over only the rows the
/// vertical pass will read, then a vertical pass, each rounding and clamping to 0..255.
/// </summary>
public static class BicubicResampler
{
    /// <summary>Fractional bits of the fixed-point weights: 32 bits less 8 for the sample, less 2 for overshoot.</summary>
    const int PrecisionBits = 32 - 8 - 2;
    const double FilterSupport = 2.0;

    /// <summary>Resizes to <paramref name="width"/> × <paramref name="height"/>; the same size returns a copy, as PIL does.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (width <= 0 || height <= 0 || width > ImageLoader.MaxSide || height > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height}: each side must be 1..{ImageLoader.MaxSide}");
        if (width == image.Width && height == image.Height) return image.Clone();

        var vertical = Taps.Compute(image.Height, height);
        byte[] rows = image.Pixels;
        int firstRow = 0;
        if (width != image.Width)
        {
            // Only rows [firstRow, lastRow) feed the vertical pass.
            firstRow = vertical.Start[0];
            int lastRow = vertical.Start[height - 1] + vertical.Count[height - 1];
            var horizontal = Taps.Compute(image.Width, width);
            rows = new byte[(lastRow - firstRow) * width * 3]; // [lastRow - firstRow, width, 3]
            Convolve(image.Pixels, firstRow * image.Width * 3, lineStride: image.Width * 3, tapStride: 3,
                     rows, outLineStride: width * 3, outStep: 3, lines: lastRow - firstRow, horizontal);
        }
        if (height == image.Height) return new RgbImage(width, height, rows, image.SourcePath);

        var output = new byte[height * width * 3]; // [height, width, 3]
        Convolve(rows, -firstRow * width * 3, lineStride: 3, tapStride: width * 3,
                 output, outLineStride: 3, outStep: width * 3, lines: width, vertical);
        return new RgbImage(width, height, output, image.SourcePath);
    }

    /// <summary>
    /// One separable pass. For each line l and output position o, each channel c:
    /// <c>dst[l*outLineStride + o*outStep + c] = clamp(Σ_k src[srcBase + l*lineStride + (Start[o]+k)*tapStride + c] · W[o,k])</c>.
    /// Horizontal: lines are rows, taps step over pixels. Vertical: lines are columns, taps step over rows.
    /// </summary>
    static void Convolve(byte[] src, int srcBase, int lineStride, int tapStride, byte[] dst, int outLineStride, int outStep, int lines, Taps taps)
    {
        for (int l = 0; l < lines; l++)
        {
            for (int o = 0; o < taps.Start.Length; o++)
            {
                int w0 = o * taps.Size;
                int s0 = srcBase + l * lineStride + taps.Start[o] * tapStride;
                int d = l * outLineStride + o * outStep;
                for (int c = 0; c < 3; c++)
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

    /// <summary>Cubic convolution kernel with a = -0.5 (Keys), support 2.</summary>
    static double Cubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Per output position: first input index, number of taps, and fixed-point weights ([outSize, Size]).</summary>
    sealed class Taps(int size, int[] start, int[] count, int[] weights)
    {
        public int Size { get; } = size;
        public int[] Start { get; } = start;
        public int[] Count { get; } = count;
        public int[] Weights { get; } = weights;

        public static Taps Compute(int inSize, int outSize)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = FilterSupport * filterScale;
            int size = (int)Math.Ceiling(support) * 2 + 1;
            var start = new int[outSize];
            var count = new int[outSize];
            var weights = new int[outSize * size];
            var w = new double[size];
            for (int o = 0; o < outSize; o++)
            {
                (int min, int n) = Window(o, inSize, outSize, FilterSupport, Cubic, w);
                for (int k = 0; k < n; k++)
                    weights[o * size + k] = (int)(w[k] < 0 ? w[k] * (1 << PrecisionBits) - 0.5 : w[k] * (1 << PrecisionBits) + 0.5);
                start[o] = min;
                count[o] = n;
            }
            return new Taps(size, start, count, weights);
        }
    }

    /// <summary>
    /// The taps of output position <paramref name="o"/> for a filter of <paramref name="filterSupport"/> (at scale 1) when
    /// resampling <paramref name="inSize"/> → <paramref name="outSize"/>: first input index and count, and in
    /// <paramref name="w"/> the weights normalised to sum 1. The support widens by the scale when shrinking (antialiasing);
    /// centres at half pixels. Pillow's Resample.c and PyTorch's antialiased interpolate compute the same windows.
    /// </summary>
    internal static (int Min, int Count) Window(int o, int inSize, int outSize, double filterSupport, Func<double, double> filter, Span<double> w)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale, invFilterScale = 1.0 / filterScale;
        double center = (o + 0.5) * scale;
        int min = Math.Max((int)(center - support + 0.5), 0); // (int) truncates toward zero, as C does
        int n = Math.Min((int)(center + support + 0.5), inSize) - min;
        double total = 0.0;
        for (int k = 0; k < n; k++)
        {
            w[k] = filter((k + min - center + 0.5) * invFilterScale);
            total += w[k];
        }
        if (total != 0.0)
            for (int k = 0; k < n; k++) w[k] /= total;
        return (min, n);
    }
}
