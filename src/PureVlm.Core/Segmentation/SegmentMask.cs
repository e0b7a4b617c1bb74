using PureVlm.Formats.Images;

namespace PureVlm.Segmentation;

/// <summary>How a 64×64 decoder mask is put into the image.</summary>
public enum MaskConvention
{
    /// <summary>
    /// big_vision's evaluator (behind the published RefCOCO numbers): box = <c>int(loc / 1023 · side)</c> in float64,
    /// PIL float BILINEAR resize of the raw mask into the box, binary mask where the result is &gt; 0.
    /// </summary>
    BigVision,
    /// <summary>
    /// Google's PaliGemma demo Space: box = <c>round(loc / 1024 · side)</c> (half to even), mask mapped to 0..255 as
    /// <c>uint8(clip(m · 0.5 + 0.5, 0, 1) · 255)</c>, PIL 8-bit BICUBIC resize into the box, a soft mask.
    /// </summary>
    Demo,
}

/// <summary>A mask as COCO's uncompressed RLE: <c>{"size": [H, W], "counts": [...]}</c>, runs over column-major pixels, starting with a run of 0s.</summary>
public sealed record CocoRle(int Height, int Width, int[] Counts);

/// <summary>One segment's mask over the whole image, with the box it was pasted into.</summary>
public sealed class SegmentMask
{
    /// <summary>The convention that made it.</summary>
    public MaskConvention Convention { get; }
    /// <summary>Image width.</summary>
    public int Width { get; }
    /// <summary>Image height.</summary>
    public int Height { get; }
    /// <summary>The pixel box the mask was pasted into: rows [Y1, Y2), columns [X1, X2).</summary>
    public int Y1 { get; }
    /// <summary>First column of the box.</summary>
    public int X1 { get; }
    /// <summary>Row after the box.</summary>
    public int Y2 { get; }
    /// <summary>Column after the box.</summary>
    public int X2 { get; }
    /// <summary>
    /// Coverage × 255 per pixel, [Height, Width] row-major: 0 or 255 for <see cref="MaskConvention.BigVision"/>, the demo's
    /// soft mask 0..255 for <see cref="MaskConvention.Demo"/>; 0 outside the box.
    /// </summary>
    public byte[] Pixels { get; }
    /// <summary>
    /// The resized mask inside the box, [Y2 − Y1, X2 − X1]: the float bilinear values before the &gt; 0 threshold (big_vision),
    /// or the bicubic 0..255 values (demo).
    /// </summary>
    public float[] BoxValues { get; }
    /// <summary>The decoder's 64×64 output (row = y), about −1 (background) … 1 (object) with Google's weights.</summary>
    public float[] Mask64 { get; }

    internal SegmentMask(MaskConvention convention, int width, int height, int y1, int x1, int y2, int x2, byte[] pixels, float[] boxValues, float[] mask64)
    {
        Convention = convention; Width = width; Height = height; Y1 = y1; X1 = x1; Y2 = y2; X2 = x2;
        Pixels = pixels; BoxValues = boxValues; Mask64 = mask64;
    }

    /// <summary>
    /// True where the pixel belongs to the object: set in the binary big_vision mask, soft value ≥ 128 (over one half) in the demo's.
    /// </summary>
    public bool Contains(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"pixel ({x}, {y}) is outside the {Width}x{Height} mask");
        return Pixels[y * Width + x] >= 128;
    }

    /// <summary>Pixels that belong to the object (see <see cref="Contains"/>).</summary>
    public int Area
    {
        get { int n = 0; foreach (byte p in Pixels) if (p >= 128) n++; return n; }
    }

    /// <summary>The object's pixels (see <see cref="Contains"/>) as COCO uncompressed RLE, as pycocotools writes it.</summary>
    public CocoRle ToRle()
    {
        var counts = new List<int>();
        bool current = false;
        int run = 0;
        for (int x = 0; x < Width; x++)
            for (int y = 0; y < Height; y++)
            {
                bool on = Pixels[y * Width + x] >= 128;
                if (on != current) { counts.Add(run); run = 0; current = on; }
                run++;
            }
        counts.Add(run);
        return new CocoRle(Height, Width, counts.ToArray());
    }

    /// <summary>Writes <see cref="Pixels"/> as an 8-bit gray PNG (0/255 binary, or the demo's soft 0..255).</summary>
    public void SavePng(string path) => PngWriter.SaveGray(Pixels, Width, Height, path);
}
