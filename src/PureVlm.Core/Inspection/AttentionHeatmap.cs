using PureVlm.Formats.Images;
using StbImageWriteSharp;

namespace PureVlm.Inspection;

/// <summary>Draws a patch-grid attention map over an image, and encodes images as PNG data URIs for self-contained HTML.</summary>
public static class AttentionHeatmap
{
    // An inferno-like ramp: dark (little attention) to pale yellow (the map's maximum).
    static readonly (float T, byte R, byte G, byte B)[] Ramp =
        [(0f, 0, 0, 4), (0.25f, 87, 16, 110), (0.5f, 188, 55, 84), (0.75f, 249, 142, 9), (1f, 252, 255, 164)];

    /// <summary>
    /// <paramref name="background"/> (already at the output size) with <paramref name="weights"/> [grid · grid] (row-major over
    /// the patch grid) interpolated bilinearly between patch centres, scaled to the map's own maximum and blended on top:
    /// cold patches stay readable, hot ones are covered by the colour ramp. <paramref name="maximum"/> &gt; 0 scales to that
    /// value instead (a video's frames share one scale, so they can be compared).
    /// </summary>
    public static RgbImage Overlay(RgbImage background, ReadOnlySpan<float> weights, int grid, float maximum = 0)
    {
        if (grid < 1 || weights.Length != grid * grid)
            throw new ArgumentException($"the attention map has {weights.Length} values, expected {grid}×{grid}", nameof(weights));
        float max = maximum;
        if (max <= 0) foreach (var w in weights) max = Math.Max(max, w);
        float scale = max > 0 ? 1 / max : 0;
        int width = background.Width, height = background.Height;
        var px = (byte[])background.Pixels.Clone();
        for (int y = 0; y < height; y++)
        {
            var (y0, y1, fy) = Neighbours(y, height, grid);
            for (int x = 0; x < width; x++)
            {
                var (x0, x1, fx) = Neighbours(x, width, grid);
                float top = weights[y0 * grid + x0] * (1 - fx) + weights[y0 * grid + x1] * fx;
                float bottom = weights[y1 * grid + x0] * (1 - fx) + weights[y1 * grid + x1] * fx;
                float v = (top * (1 - fy) + bottom * fy) * scale;
                var (r, g, b) = Colour(v);
                float alpha = 0.15f + 0.7f * v;
                int i = (y * width + x) * 3;
                px[i] = Blend(px[i], r, alpha);
                px[i + 1] = Blend(px[i + 1], g, alpha);
                px[i + 2] = Blend(px[i + 2], b, alpha);
            }
        }
        return RgbImage.FromPixels(width, height, px);
    }

    /// <summary>The two grid cells around output pixel <paramref name="p"/> of <paramref name="size"/> and the weight of the second.</summary>
    static (int Lo, int Hi, float Frac) Neighbours(int p, int size, int grid)
    {
        float g = Math.Clamp((p + 0.5f) * grid / size - 0.5f, 0, grid - 1); // in units of patch centres
        int lo = (int)g;
        return (lo, Math.Min(lo + 1, grid - 1), g - lo);
    }

    static (byte R, byte G, byte B) Colour(float v)
    {
        v = Math.Clamp(v, 0, 1);
        int k = 1;
        while (k < Ramp.Length - 1 && Ramp[k].T < v) k++;
        var (a, b) = (Ramp[k - 1], Ramp[k]);
        float f = (v - a.T) / (b.T - a.T);
        return (Lerp(a.R, b.R, f), Lerp(a.G, b.G, f), Lerp(a.B, b.B, f));
    }

    static byte Lerp(byte a, byte b, float f) => (byte)Math.Round(a + (b - a) * f);

    static byte Blend(byte under, byte over, float alpha) => (byte)Math.Round(under * (1 - alpha) + over * alpha);

    /// <summary>The image as a <c>data:image/png;base64,…</c> URI.</summary>
    public static string PngDataUri(RgbImage image)
    {
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, ColorComponents.RedGreenBlue, stream);
        return "data:image/png;base64," + System.Convert.ToBase64String(stream.GetBuffer(), 0, (int)stream.Length);
    }
}
