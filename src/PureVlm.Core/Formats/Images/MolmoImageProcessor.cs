using System.Text.Json;

namespace PureVlm.Formats.Images;

/// <summary>
/// Molmo's <c>MolmoImageProcessor</c> (<c>image_preprocessing_molmo.py</c>; allenai/molmo's <c>overlap-and-resize-c2</c>):
/// choose a tiling of overlapping crops, resize-and-pad the image onto the tile canvas and onto one crop (the global
/// view) with float32 scales and antialiased bilinear, cut the crops, and record per patch how much is padding and per
/// pooled cell which image token it feeds. The reference's quirks are kept: masks shifted by one crop (see <see cref="Process"/>).
/// </summary>
public sealed class MolmoImageProcessor
{
    /// <summary>Side of a crop in pixels (<c>base_image_input_size</c>).</summary>
    public int CropSize { get; }
    /// <summary><c>image_patch_size</c>.</summary>
    public int PatchSize { get; }
    /// <summary>Pooled cells per crop side (<c>image_token_length_h</c> = <c>image_token_length_w</c>).</summary>
    public int TokensPerSide { get; }
    /// <summary><c>max_crops</c>: most tiles.</summary>
    public int MaxCrops { get; }
    /// <summary><c>overlap_margins</c>: patches each tile drops on its (left/top, right/bottom) side where it overlaps a neighbour.</summary>
    public (int Left, int Right) Margins { get; }
    /// <summary><c>image_mean</c> per channel.</summary>
    public IReadOnlyList<float> Mean { get; }
    /// <summary><c>image_std</c> per channel.</summary>
    public IReadOnlyList<float> Std { get; }

    /// <summary>Molmo-7B-D's settings unless given (crop 336, patch 14, 12 × 12 tokens, 12 crops, margins 4/4, CLIP mean/std).</summary>
    public MolmoImageProcessor(int cropSize = 336, int patchSize = 14, int tokensPerSide = 12, int maxCrops = 12, int leftMargin = 4, int rightMargin = 4,
        float[]? mean = null, float[]? std = null)
    {
        if (cropSize <= 0 || patchSize <= 0 || cropSize % patchSize != 0)
            throw new ArgumentException($"base_image_input_size {cropSize} is not a positive multiple of image_patch_size {patchSize}");
        int patches = cropSize / patchSize;
        if ((patches + 1) / 2 != tokensPerSide)
            throw new ArgumentException($"image_token_length {tokensPerSide} does not match {patches} patches per crop side pooled 2×2 (expected {(patches + 1) / 2})");
        if (leftMargin % 2 != 0 || leftMargin < 0 || rightMargin < 0 || leftMargin + rightMargin >= patches)
            throw new ArgumentException($"overlap_margins [{leftMargin}, {rightMargin}]: expected an even left margin and margins leaving a window inside {patches} patches");
        if (maxCrops <= 0) throw new ArgumentException($"max_crops is {maxCrops}, expected > 0");
        (CropSize, PatchSize, TokensPerSide, MaxCrops, Margins) = (cropSize, patchSize, tokensPerSide, maxCrops, (leftMargin, rightMargin));
        Mean = mean ?? [0.48145466f, 0.4578275f, 0.40821073f];
        Std = std ?? [0.26862954f, 0.26130258f, 0.27577711f];
        if (Mean.Count != 3 || Std.Count != 3 || !Std.All(s => s > 0 && float.IsFinite(s)))
            throw new ArgumentException("image_mean and image_std need 3 values each, std finite and > 0");
    }

    /// <summary>Settings from a checkpoint's <c>preprocessor_config.json</c>; absent keys keep Molmo-7B-D's values.</summary>
    public static MolmoImageProcessor FromCheckpoint(string directory)
    {
        string path = Path.Combine(directory, "preprocessor_config.json");
        if (!File.Exists(path)) return new MolmoImageProcessor();
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement;
        int[]? Ints(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;
        float[]? Floats(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetSingle()).ToArray() : null;
        int Int(string key, int fallback) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;
        var size = Ints("base_image_input_size") ?? [336, 336];
        var margins = Ints("overlap_margins") ?? [4, 4];
        if (size.Length != 2 || size[0] != size[1]) throw new InvalidModelFileException($"{path}: base_image_input_size is [{string.Join(", ", size)}], expected a square [S, S]");
        if (margins.Length != 2) throw new InvalidModelFileException($"{path}: overlap_margins has {margins.Length} values, expected 2");
        int th = Int("image_token_length_h", 12), tw = Int("image_token_length_w", 12);
        if (th != tw) throw new InvalidModelFileException($"{path}: image_token_length_h {th} and image_token_length_w {tw} differ, expected square crops");
        if (root.TryGetProperty("image_padding_mask", out var pm) && pm.ValueKind == JsonValueKind.False)
            throw new InvalidModelFileException($"{path}: image_padding_mask is false, expected true (Molmo-7B-D's model adds pad embeddings by mask)");
        try { return new MolmoImageProcessor(size[0], Int("image_patch_size", 14), th, Int("max_crops", 12), margins[0], margins[1], Floats("image_mean"), Floats("image_std")); }
        catch (ArgumentException e) { throw new InvalidModelFileException($"{path}: {e.Message}"); }
    }

    /// <summary>
    /// The reference's <c>select_tiling</c>: over every (rows, cols) with rows·cols ≤ <paramref name="maxCrops"/>, sorted by
    /// (rows·cols, rows), the float32 scale that fits an <paramref name="h"/> × <paramref name="w"/> image into rows·window ×
    /// cols·window; if every tiling shrinks take the largest scale, else the smallest scale ≥ 1 (first wins ties).
    /// </summary>
    public static (int Rows, int Cols) SelectTiling(int h, int w, int window, int maxCrops)
    {
        var tilings = new List<(int Rows, int Cols)>();
        for (int i = 1; i <= maxCrops; i++)
            for (int j = 1; j <= maxCrops; j++)
                if (i * j <= maxCrops) tilings.Add((i, j));
        tilings = tilings.OrderBy(t => t.Rows * t.Cols).ThenBy(t => t.Rows).ToList(); // stable, as Python's sort
        // h or w may be ≤ 0 for a small image (the margins are subtracted first): the float32 arithmetic then gives the reference's choice too.
        var scales = tilings.Select(t => MathF.Min((float)(t.Rows * window) / h, (float)(t.Cols * window) / w)).ToArray();
        int best = 0;
        if (scales.All(s => s < 1))
        {
            for (int k = 1; k < scales.Length; k++) if (scales[k] > scales[best]) best = k;
        }
        else
        {
            float Up(float s) => s < 1f ? 10e9f : s;
            for (int k = 1; k < scales.Length; k++) if (Up(scales[k]) < Up(scales[best])) best = k;
        }
        return tilings[best];
    }

    /// <summary>
    /// The reference's <c>resize_and_pad</c> before normalisation: scale = min(Hc / H, Wc / W) in float32, size truncated,
    /// antialiased bilinear on <c>u8 / 255</c>, clipped to [0, 1], centred with floor padding of 0. Returns the canvas
    /// [Hc, Wc, 3] and the image mask [Hc, Wc] (1 where the image is).
    /// </summary>
    public static (float[] Canvas, bool[] Mask) ResizeAndPad(RgbImage image, int canvasHeight, int canvasWidth)
    {
        ArgumentNullException.ThrowIfNull(image);
        float scale = MathF.Min((float)canvasWidth / image.Width, (float)canvasHeight / image.Height);
        int h = (int)(image.Height * scale), w = (int)(image.Width * scale);
        if (h <= 0 || w <= 0)
            throw new ArgumentException($"the {image.Width}×{image.Height} image shrinks to {w}×{h} on a {canvasWidth}×{canvasHeight} crop; its aspect ratio is too extreme for Molmo's preprocessing");
        var resized = ResizeBilinearAntialiased(image, w, h);
        var canvas = new float[canvasHeight * canvasWidth * 3];
        var mask = new bool[canvasHeight * canvasWidth];
        int top = (canvasHeight - h) / 2, left = (canvasWidth - w) / 2;
        for (int y = 0; y < h; y++)
        {
            resized.AsSpan(y * w * 3, w * 3).CopyTo(canvas.AsSpan(((top + y) * canvasWidth + left) * 3));
            mask.AsSpan((top + y) * canvasWidth + left, w).Fill(true);
        }
        return (canvas, mask);
    }

    /// <summary>
    /// PyTorch's <c>interpolate(bilinear, antialias=True, align_corners=False)</c> (= TF's antialiased bilinear) of
    /// <c>u8 / 255</c> in float32: triangle filter widened by the scale when shrinking, rows then columns, clipped to [0, 1].
    /// </summary>
    static float[] ResizeBilinearAntialiased(RgbImage image, int width, int height)
    {
        var src = new float[image.Pixels.Length];
        for (int i = 0; i < src.Length; i++) src[i] = image.Pixels[i] / 255f;
        var rows = Pass(src, image.Width, image.Height, width, horizontal: true);
        var output = Pass(rows, width, image.Height, height, horizontal: false);
        for (int i = 0; i < output.Length; i++) output[i] = Math.Clamp(output[i], 0f, 1f);
        return output;

        // Resamples one axis of x [h, w, 3] to outSize along it.
        static float[] Pass(float[] x, int w, int h, int outSize, bool horizontal)
        {
            int inSize = horizontal ? w : h;
            int ow = horizontal ? outSize : w, oh = horizontal ? h : outSize;
            var y = new float[oh * ow * 3];
            var taps = PilTaps.Compute(inSize, outSize, 1.0, PilTaps.Triangle); // Pillow's windows are PyTorch's antialiased ones
            for (int o = 0; o < outSize; o++)
            {
                int min = taps.Start[o], n = taps.Count[o];
                var weights = taps.Weights.AsSpan(o * taps.Size, n);
                int lines = horizontal ? h : w;
                for (int l = 0; l < lines; l++)
                    for (int c = 0; c < 3; c++)
                    {
                        float sum = 0;
                        for (int k = 0; k < n; k++)
                        {
                            int at = horizontal ? (l * w + min + k) * 3 + c : ((min + k) * w + l) * 3 + c;
                            sum += x[at] * (float)weights[k];
                        }
                        y[horizontal ? (l * ow + o) * 3 + c : (o * ow + l) * 3 + c] = sum;
                    }
            }
            return y;
        }
    }

    /// <summary>The global view as the model sees it before normalisation: the image resized and padded onto one crop, as 8-bit RGB (for pictures).</summary>
    public RgbImage GlobalView(RgbImage image)
    {
        var (canvas, _) = ResizeAndPad(image, CropSize, CropSize);
        return RgbImage.FromPixels(CropSize, CropSize, canvas.Select(v => (byte)MathF.Round(v * 255)).ToArray());
    }

    /// <summary>The tiling <see cref="Process"/> chooses for <paramref name="image"/>: <see cref="SelectTiling"/> of its size less the margins.</summary>
    public (int Rows, int Cols) Tiling(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int p = PatchSize, margins = (Margins.Left + Margins.Right) * p;
        return SelectTiling(image.Height - margins, image.Width - margins, CropSize - margins, MaxCrops);
    }

    /// <summary>The canvas the tiles are cut from: each side tiles · window + both margins, in pixels.</summary>
    public (int Height, int Width) TileCanvasSize(int rows, int cols)
    {
        int margins = (Margins.Left + Margins.Right) * PatchSize, window = CropSize - margins;
        return (rows * window + margins, cols * window + margins);
    }

    /// <summary>
    /// An image → its crops for the model: the global view (the image resized onto one crop) first, then the tiles
    /// row-major, each as patches in (dy, dx, c) order, normalised per channel after padding (so padding is −mean/std).
    /// Masks are the reference's as the model was trained: the tiles' masks followed by a row of −1, paired with
    /// [global, tiles…], i.e. shifted by one crop (the global view gets tile 0's, the last tile −1).
    /// </summary>
    public MultiCropImage Process(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (l, r) = Margins;
        int p = PatchSize, n = CropSize / p, window = (n - l - r) * p;
        var (rows, cols) = Tiling(image);
        var (tilesH, tilesW) = TileCanvasSize(rows, cols);
        var (tiles, tileMask) = ResizeAndPad(image, tilesH, tilesW);
        var (global, _) = ResizeAndPad(image, CropSize, CropSize);

        int crops = 1 + rows * cols, patches = n * n, patchPixels = p * p * 3, cells = TokensPerSide * TokensPerSide;
        var images = new float[crops * patches * patchPixels];
        var masks = new float[crops * patches];
        CutPatches(global, CropSize, 0, 0, images.AsSpan(0, patches * patchPixels));
        for (int i = 0, t = 0; i < rows; i++)
            for (int j = 0; j < cols; j++, t++)
            {
                CutPatches(tiles, tilesW, i * window, j * window, images.AsSpan((1 + t) * patches * patchPixels, patches * patchPixels));
                PatchMask(tileMask, tilesW, i * window, j * window, masks.AsSpan(t * patches, patches)); // the shift: tile t's mask goes to crop t
            }
        masks.AsSpan(rows * cols * patches).Fill(-1f);

        // Tokens: the global view's cells in order, then the tile grid row-major; a tile keeps the cells off its overlap margins.
        int gridRows = (rows * (n - l - r) + l + r + 1) / 2, gridCols = (cols * (n - l - r) + l + r + 1) / 2;
        var cellTokens = new int[crops * cells];
        for (int k = 0; k < cells; k++) cellTokens[k] = k;
        cellTokens.AsSpan(cells).Fill(-1);
        for (int i = 0, y0 = 0, t = 0; i < rows; i++)
        {
            var (top, keptRows) = KeptCells(i, rows, n, l, r);
            for (int j = 0, x0 = 0; j < cols; j++, t++)
            {
                var (leftCell, keptCols) = KeptCells(j, cols, n, l, r);
                for (int cy = 0; cy < keptRows; cy++)
                    for (int cx = 0; cx < keptCols; cx++)
                        cellTokens[(1 + t) * cells + (top + cy) * TokensPerSide + leftCell + cx] = cells + (y0 + cy) * gridCols + x0 + cx;
                x0 += keptCols;
                if (j == cols - 1 && x0 != gridCols) throw new InvalidOperationException($"tiles keep {x0} cell columns, the token grid has {gridCols}");
            }
            y0 += keptRows;
            if (i == rows - 1 && y0 != gridRows) throw new InvalidOperationException($"tiles keep {y0} cell rows, the token grid has {gridRows}");
        }
        return new MultiCropImage(images, masks, cellTokens, crops, rows, cols, [(TokensPerSide, TokensPerSide), (gridRows, gridCols)]);
    }

    /// <summary>The first kept cell and the number kept along one axis for tile <paramref name="i"/> of <paramref name="count"/>.</summary>
    static (int First, int Count) KeptCells(int i, int count, int n, int l, int r)
    {
        int patches = n - l - r + (i == 0 ? l : 0) + (i == count - 1 ? r : 0);
        return (i == 0 ? 0 : l / 2, (patches + 1) / 2);
    }

    /// <summary>The crop at (<paramref name="y0"/>, <paramref name="x0"/>) of a canvas [*, width, 3] → normalised patches [P, p·p·3] in (dy, dx, c) order.</summary>
    void CutPatches(float[] canvas, int width, int y0, int x0, Span<float> output)
    {
        int p = PatchSize, n = CropSize / p, o = 0;
        for (int py = 0; py < n; py++)
            for (int px = 0; px < n; px++)
                for (int dy = 0; dy < p; dy++)
                    for (int dx = 0; dx < p; dx++)
                    {
                        int at = ((y0 + py * p + dy) * width + x0 + px * p + dx) * 3;
                        for (int c = 0; c < 3; c++) output[o++] = (canvas[at + c] - Mean[c]) / Std[c];
                    }
    }

    /// <summary>Per patch of the crop at (<paramref name="y0"/>, <paramref name="x0"/>): the fraction of its pixels that are image, in float32.</summary>
    void PatchMask(bool[] mask, int width, int y0, int x0, Span<float> output)
    {
        int p = PatchSize, n = CropSize / p;
        for (int py = 0; py < n; py++)
            for (int px = 0; px < n; px++)
            {
                int count = 0;
                for (int dy = 0; dy < p; dy++)
                    for (int dx = 0; dx < p; dx++)
                        if (mask[(y0 + py * p + dy) * width + x0 + px * p + dx]) count++;
                output[py * n + px] = (float)count / (p * p);
            }
    }
}
