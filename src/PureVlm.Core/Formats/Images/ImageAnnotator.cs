namespace PureVlm.Formats.Images;

/// <summary>A labelled box in pixel coordinates: columns [X0, X1), rows [Y0, Y1).</summary>
public readonly record struct LabelledBox(int X0, int Y0, int X1, int Y1, string Label)
{
    /// <summary>A box given in fractional pixels as [x0, y0, x1, y1] (a parsed detection), rounded to whole pixels.</summary>
    public static LabelledBox FromPixels(IReadOnlyList<float> box, string label) =>
        new((int)Math.Round(box[0]), (int)Math.Round(box[1]), (int)Math.Round(box[2]), (int)Math.Round(box[3]), label);
}

/// <summary>
/// Draws labelled boxes (outline plus a label in a built-in 5×7 font on a filled tab), optionally over translucent
/// mask fills, onto a copy of an image.
/// </summary>
public static class ImageAnnotator
{
    /// <summary>Outline colours, used in turn: distinct on light and dark backgrounds.</summary>
    public static IReadOnlyList<(byte R, byte G, byte B)> Colours { get; } =
    [
        (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (255, 225, 25),
    ];

    /// <summary>
    /// A copy of <paramref name="image"/> with box i outlined in <c>Colours[i % Colours.Count]</c>, <paramref name="thickness"/>
    /// pixels wide inside the box, and its label above the box (inside it when there is no room above). Parts outside the image are clipped.
    /// </summary>
    public static RgbImage Draw(RgbImage image, IReadOnlyList<LabelledBox> boxes, int thickness = 2) => Draw(image, boxes, masks: null, thickness);

    /// <summary>Opacity of a mask fill: the object stays visible under its colour.</summary>
    public const float MaskOpacity = 0.45f;

    /// <summary>
    /// As <see cref="Draw(RgbImage, IReadOnlyList{LabelledBox}, int)"/>, first filling box i's mask, when
    /// <paramref name="masks"/>[i] is not null, with its colour at <see cref="MaskOpacity"/> × coverage. A mask is the
    /// coverage × 255 of each pixel, [Height, Width] row-major (e.g. <c>SegmentMask.Pixels</c>).
    /// </summary>
    public static RgbImage Draw(RgbImage image, IReadOnlyList<LabelledBox> boxes, IReadOnlyList<byte[]?>? masks, int thickness = 2)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(boxes);
        if (thickness is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(thickness), $"thickness {thickness}, expected 1..64");
        if (masks != null && masks.Count != boxes.Count) throw new ArgumentException($"{masks.Count} masks for {boxes.Count} boxes", nameof(masks));
        var canvas = image.Clone();
        for (int i = 0; masks != null && i < masks.Count; i++)
            if (masks[i] is { } mask) FillMask(canvas, mask, Colours[i % Colours.Count]);
        for (int i = 0; i < boxes.Count; i++)
        {
            var b = boxes[i];
            var colour = Colours[i % Colours.Count];
            FillRect(canvas, b.X0, b.Y0, b.X1, Math.Min(b.Y0 + thickness, b.Y1), colour);
            FillRect(canvas, b.X0, Math.Max(b.Y1 - thickness, b.Y0), b.X1, b.Y1, colour);
            FillRect(canvas, b.X0, b.Y0, Math.Min(b.X0 + thickness, b.X1), b.Y1, colour);
            FillRect(canvas, Math.Max(b.X1 - thickness, b.X0), b.Y0, b.X1, b.Y1, colour);
            DrawLabel(canvas, b, colour, thickness);
        }
        return canvas;
    }

    static void DrawLabel(RgbImage canvas, LabelledBox box, (byte R, byte G, byte B) colour, int thickness)
    {
        if (string.IsNullOrEmpty(box.Label)) return;
        const int pad = 1;
        int tabHeight = BitmapFont.GlyphHeight + 2 * pad;
        int tabWidth = BitmapFont.TextWidth(box.Label) + 2 * pad;
        int top = box.Y0 - tabHeight >= 0 ? box.Y0 - tabHeight : box.Y0 + thickness;
        FillRect(canvas, box.X0, top, box.X0 + tabWidth, top + tabHeight, colour);
        var ink = 299 * colour.R + 587 * colour.G + 114 * colour.B > 128_000 ? ((byte)0, (byte)0, (byte)0) : ((byte)255, (byte)255, (byte)255);
        BitmapFont.DrawText(box.Label, box.X0 + pad, top + pad, (x, y) => FillRect(canvas, x, y, x + 1, y + 1, ink));
    }

    static void FillMask(RgbImage canvas, byte[] mask, (byte R, byte G, byte B) colour)
    {
        if (mask.Length != canvas.Width * canvas.Height)
            throw new ArgumentException($"a mask of {mask.Length} pixels for a {canvas.Width}x{canvas.Height} image, expected {canvas.Width * canvas.Height}", nameof(mask));
        var px = canvas.Pixels;
        for (int p = 0; p < mask.Length; p++)
        {
            if (mask[p] == 0) continue;
            float a = MaskOpacity * mask[p] / 255f;
            int i = p * 3;
            px[i] = (byte)(px[i] + (colour.R - px[i]) * a + 0.5f);
            px[i + 1] = (byte)(px[i + 1] + (colour.G - px[i + 1]) * a + 0.5f);
            px[i + 2] = (byte)(px[i + 2] + (colour.B - px[i + 2]) * a + 0.5f);
        }
    }

    /// <summary>Fills columns [x0, x1) × rows [y0, y1), clipped to the image.</summary>
    static void FillRect(RgbImage canvas, int x0, int y0, int x1, int y1, (byte R, byte G, byte B) colour)
    {
        x0 = Math.Max(x0, 0); y0 = Math.Max(y0, 0);
        x1 = Math.Min(x1, canvas.Width); y1 = Math.Min(y1, canvas.Height);
        var px = canvas.Pixels;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
            {
                int i = (y * canvas.Width + x) * 3;
                px[i] = colour.R; px[i + 1] = colour.G; px[i + 2] = colour.B;
            }
    }
}
