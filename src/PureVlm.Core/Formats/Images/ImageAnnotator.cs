namespace PureVlm.Formats.Images;

/// <summary>A labelled box in pixel coordinates: columns [X0, X1), rows [Y0, Y1).</summary>
public readonly record struct LabelledBox(int X0, int Y0, int X1, int Y1, string Label)
{
    /// <summary>A box given in fractional pixels as [x0, y0, x1, y1] (a parsed detection), rounded to whole pixels.</summary>
    public static LabelledBox FromPixels(IReadOnlyList<float> box, string label) =>
        new((int)Math.Round(box[0]), (int)Math.Round(box[1]), (int)Math.Round(box[2]), (int)Math.Round(box[3]), label);
}

/// <summary>Draws labelled boxes (outline plus a label in a built-in 5×7 font on a filled tab) onto a copy of an image.</summary>
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
    public static RgbImage Draw(RgbImage image, IReadOnlyList<LabelledBox> boxes, int thickness = 2)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(boxes);
        if (thickness is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(thickness), $"thickness {thickness}, expected 1..64");
        var canvas = image.Clone();
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
