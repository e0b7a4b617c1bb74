using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Outputs;

namespace PureVlm.Segmentation;

/// <summary>
/// Turns a segment's box tokens and decoded 64×64 mask into a mask over the image, in either convention
/// (<see cref="MaskConvention"/>). A box that is empty in pixels, or tokens out of range, give no mask rather than an error.
/// </summary>
public static class MaskPaste
{
    /// <summary>Largest <c>&lt;locNNNN&gt;</c> value: PaliGemma has 1024 location tokens.</summary>
    public const int MaxLoc = 1023;

    /// <summary>The pixel box (y1, x1, y2, x2) of loc tokens (y1, x1, y2, x2) in <paramref name="convention"/>, whether or not it is empty.</summary>
    public static (int Y1, int X1, int Y2, int X2) Box(ReadOnlySpan<int> loc, int width, int height, MaskConvention convention)
    {
        if (loc.Length != 4) throw new ArgumentException($"{loc.Length} loc values, expected 4 (y1, x1, y2, x2)", nameof(loc));
        return convention == MaskConvention.BigVision
            // big_vision: bbox = loc / 1023 in float64, then int(bbox · side), truncating; (loc / 1023.0) * side keeps that order.
            ? ((int)(loc[0] / 1023.0 * height), (int)(loc[1] / 1023.0 * width), (int)(loc[2] / 1023.0 * height), (int)(loc[3] / 1023.0 * width))
            // The demo: round(loc / 1024 · side), Python's round, half to even (Math.Round's default).
            : ((int)Math.Round(loc[0] / 1024.0 * height), (int)Math.Round(loc[1] / 1024.0 * width),
               (int)Math.Round(loc[2] / 1024.0 * height), (int)Math.Round(loc[3] / 1024.0 * width));
    }

    /// <summary>
    /// True when a mask can be drawn: every loc in 0..1023 and code in 0..127, and (big_vision) loc y2 &gt; y1, x2 &gt; x1,
    /// and, in pixels of <paramref name="convention"/>, y2 &gt; y1 and x2 &gt; x1.
    /// </summary>
    public static bool IsDrawable(ReadOnlySpan<int> loc, ReadOnlySpan<int> codes, int width, int height, MaskConvention convention)
    {
        if (loc.Length != 4 || codes.Length != VqVaeDecoder.CodesPerMask) return false;
        foreach (int v in loc) if ((uint)v > MaxLoc) return false;
        foreach (int c in codes) if ((uint)c >= VqVaeDecoder.CodebookSize) return false;
        if (convention == MaskConvention.BigVision && (loc[2] <= loc[0] || loc[3] <= loc[1])) return false;
        var (y1, x1, y2, x2) = Box(loc, width, height, convention);
        return y2 > y1 && x2 > x1;
    }

    /// <summary>
    /// Pastes a decoded <paramref name="mask64"/> (64 × 64, row = y) into a <paramref name="width"/> × <paramref name="height"/>
    /// image at the box of <paramref name="loc"/>; null when the box is empty (see <see cref="IsDrawable"/>; codes are not checked here).
    /// </summary>
    public static SegmentMask? Paste(ReadOnlySpan<float> mask64, ReadOnlySpan<int> loc, int width, int height, MaskConvention convention)
    {
        const int side = VqVaeDecoder.MaskSide;
        if (mask64.Length != side * side) throw new ArgumentException($"mask64 has {mask64.Length} floats, expected {side * side}", nameof(mask64));
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height}: both sides must be positive");
        Span<int> noCodes = stackalloc int[VqVaeDecoder.CodesPerMask]; // code validity is the decoder's concern
        if (!IsDrawable(loc, noCodes, width, height, convention)) return null;
        var (y1, x1, y2, x2) = Box(loc, width, height, convention);
        int boxW = x2 - x1, boxH = y2 - y1;
        var pixels = new byte[width * height];
        float[] boxValues;
        if (convention == MaskConvention.BigVision)
        {
            boxValues = BilinearFloatResampler.Resize(mask64, side, side, boxW, boxH);
            for (int y = 0; y < boxH; y++)
                for (int x = 0; x < boxW; x++)
                    pixels[(y1 + y) * width + x1 + x] = boxValues[y * boxW + x] > 0f ? (byte)255 : (byte)0;
        }
        else boxValues = PasteDemoBytes(DemoBytes(mask64), x1, boxW, y1, boxH, pixels, width);
        return new SegmentMask(convention, width, height, y1, x1, y2, x2, pixels, boxValues, mask64.ToArray());
    }

    /// <summary>
    /// The demo's paste of its 8-bit 64×64 mask: PIL 'L' BICUBIC resize to the box, written into <paramref name="pixels"/>
    /// ([.., width]) at (x1, y1); returns the resized box values.
    /// </summary>
    internal static float[] PasteDemoBytes(byte[] mask64u8, int x1, int boxW, int y1, int boxH, byte[] pixels, int width)
    {
        var resized = BicubicResampler.ResizeGray(mask64u8, VqVaeDecoder.MaskSide, VqVaeDecoder.MaskSide, boxW, boxH);
        var boxValues = new float[resized.Length];
        for (int y = 0; y < boxH; y++)
            for (int x = 0; x < boxW; x++)
            {
                byte v = resized[y * boxW + x];
                boxValues[y * boxW + x] = v;
                pixels[(y1 + y) * width + x1 + x] = v;
            }
        return boxValues;
    }

    /// <summary>The demo's 8-bit mask: <c>uint8(clip(m · 0.5 + 0.5, 0, 1) · 255)</c> in float32, truncating.</summary>
    public static byte[] DemoBytes(ReadOnlySpan<float> mask64)
    {
        var u8 = new byte[mask64.Length];
        for (int i = 0; i < u8.Length; i++) u8[i] = (byte)(Math.Clamp(mask64[i] * 0.5f + 0.5f, 0f, 1f) * 255f);
        return u8;
    }

    /// <summary>
    /// The segment with its mask decoded and pasted (null mask when the box or codes are invalid). The decoder runs whenever
    /// the codes are valid, so an observer on <paramref name="context"/> sees <c>seg.{index}.…</c> even for an empty box.
    /// </summary>
    public static Segment Decode(VqVaeDecoder decoder, Segment segment, int width, int height, MaskConvention convention, ForwardContext context, int index)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(segment);
        foreach (int c in segment.Codes) if ((uint)c >= VqVaeDecoder.CodebookSize) return segment with { Mask = null };
        if (segment.Codes.Length != VqVaeDecoder.CodesPerMask) return segment with { Mask = null };
        var mask64 = new float[VqVaeDecoder.MaskSide * VqVaeDecoder.MaskSide];
        decoder.Decode(segment.Codes, mask64, context, index);
        return segment with { Mask = Paste(mask64, segment.Loc, width, height, convention) };
    }
}
