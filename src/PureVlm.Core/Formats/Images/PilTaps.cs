namespace PureVlm.Formats.Images;

/// <summary>
/// Pillow's per-axis resampling coefficients (libImaging/Resample.c <c>precompute_coeffs</c>): for output position o,
/// input samples [Start[o], Start[o] + Count[o]) weighted by <c>filter((x − center + 0.5) / filterScale)</c>, normalised
/// to sum 1, where <c>center = (o + 0.5) · in / out</c> and the support widens by the scale factor when shrinking.
/// </summary>
internal sealed class PilTaps
{
    /// <summary>Stride of <see cref="Weights"/> between output positions.</summary>
    public int Size { get; }
    /// <summary>First input index per output position.</summary>
    public int[] Start { get; }
    /// <summary>Number of taps per output position.</summary>
    public int[] Count { get; }
    /// <summary>[outSize, Size] normalised weights, in double as Pillow keeps them.</summary>
    public double[] Weights { get; }

    PilTaps(int size, int[] start, int[] count, double[] weights) { Size = size; Start = start; Count = count; Weights = weights; }

    /// <summary>PIL's bilinear filter: <c>max(0, 1 − |x|)</c>, support 1.</summary>
    public static double Triangle(double x)
    {
        if (x < 0.0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /// <summary>PIL's bicubic filter: cubic convolution with a = −0.5 (Keys), support 2.</summary>
    public static double Cubic(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    /// <summary>Coefficients for resizing <paramref name="inSize"/> samples to <paramref name="outSize"/> with a filter of the given support.</summary>
    public static PilTaps Compute(int inSize, int outSize, double filterSupport, Func<double, double> filter)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int size = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new double[outSize * size];
        double invFilterScale = 1.0 / filterScale;
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int min = Math.Max((int)(center - support + 0.5), 0); // (int) truncates toward zero, as C does
            int n = Math.Min((int)(center + support + 0.5), inSize) - min;
            var w = weights.AsSpan(o * size, n);
            double total = 0.0;
            for (int k = 0; k < n; k++)
            {
                w[k] = filter((k + min - center + 0.5) * invFilterScale);
                total += w[k];
            }
            if (total != 0.0)
                for (int k = 0; k < n; k++) w[k] /= total;
            start[o] = min;
            count[o] = n;
        }
        return new PilTaps(size, start, count, weights);
    }
}
