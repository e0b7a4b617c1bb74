namespace PureVlm.Formats.Images;

/// <summary>
/// Bit-exact restatement of PIL's <c>Image.resize((w, h), Image.BILINEAR)</c> for a float32 ('F') image (Pillow
/// libImaging/Resample.c, 32 bpc path): a separable triangle filter whose support widens by the scale factor when
/// shrinking, double weights normalised per output sample, sums accumulated in double and stored as float32 after
/// each pass; the horizontal pass runs first, over only the rows the vertical pass reads.
/// </summary>
public static class BilinearFloatResampler
{
    /// <summary>
    /// Resizes <paramref name="pixels"/> ([inHeight, inWidth] row-major) to [height, width]; the same size returns a copy, as PIL does.
    /// </summary>
    public static float[] Resize(ReadOnlySpan<float> pixels, int inWidth, int inHeight, int width, int height)
    {
        if (inWidth <= 0 || inHeight <= 0 || pixels.Length != (long)inWidth * inHeight)
            throw new ArgumentException($"{pixels.Length} floats for a {inWidth}x{inHeight} image, expected {(long)inWidth * inHeight}", nameof(pixels));
        if (width <= 0 || height <= 0 || width > ImageLoader.MaxSide || height > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}x{height}: each side must be 1..{ImageLoader.MaxSide}");
        if (width == inWidth && height == inHeight) return pixels.ToArray();

        var vertical = PilTaps.Compute(inHeight, height, 1.0, PilTaps.Triangle);
        ReadOnlySpan<float> rows = pixels;
        int firstRow = 0;
        if (width != inWidth)
        {
            firstRow = vertical.Start[0];
            int lastRow = vertical.Start[height - 1] + vertical.Count[height - 1];
            var horizontal = PilTaps.Compute(inWidth, width, 1.0, PilTaps.Triangle);
            var resized = new float[(lastRow - firstRow) * width];
            Convolve(pixels[(firstRow * inWidth)..], lineStride: inWidth, tapStride: 1, resized, outLineStride: width, outStep: 1, lastRow - firstRow, horizontal);
            if (height == inHeight) return resized;
            rows = resized;
        }
        var output = new float[height * width];
        // The vertical taps index rows of the whole image; the buffer starts at firstRow.
        Convolve(rows, lineStride: 1, tapStride: width, output, outLineStride: 1, outStep: width, width, vertical, -firstRow);
        return output;
    }

    /// <summary>
    /// One pass: <c>dst[l·outLineStride + o·outStep] = (float)Σ_k src[l·lineStride + (Start[o] + shift + k)·tapStride] · W[o, k]</c>.
    /// </summary>
    static void Convolve(ReadOnlySpan<float> src, int lineStride, int tapStride, Span<float> dst, int outLineStride, int outStep, int lines, PilTaps taps, int shift = 0)
    {
        for (int l = 0; l < lines; l++)
            for (int o = 0; o < taps.Start.Length; o++)
            {
                int s0 = l * lineStride + (taps.Start[o] + shift) * tapStride;
                var w = taps.Weights.AsSpan(o * taps.Size, taps.Count[o]);
                double sum = 0.0;
                for (int k = 0; k < w.Length; k++) sum += src[s0 + k * tapStride] * w[k];
                dst[l * outLineStride + o * outStep] = (float)sum;
            }
    }
}
