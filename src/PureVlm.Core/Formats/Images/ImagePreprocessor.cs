using System.Text.Json;
using PureVlm.Tensors;

namespace PureVlm.Formats.Images;

/// <summary>
/// HF <c>SiglipImageProcessor</c> (PaliGemma), <c>CLIPImageProcessor</c> (LLaVA-1.5) and <c>Gemma3ImageProcessor</c> with
/// pan-and-scan off (Gemma 3): resize with PIL's bicubic or bilinear (<see cref="Resample"/>), either straight to
/// <see cref="Height"/> × <see cref="Width"/> or, with <see cref="ShortestEdge"/>, keeping the aspect ratio
/// and then centre-cropping to <see cref="Height"/> × <see cref="Width"/>; then per channel
/// <c>p = (float32(u8 · rescale_factor in float64) − mean) / std</c> in float32, laid out CHW.
/// </summary>
public sealed class ImagePreprocessor
{
    /// <summary>PIL's BICUBIC, the <c>resample</c> of SigLIP's and CLIP's processors.</summary>
    public const int ResampleBicubic = 3;

    /// <summary>The PIL filter <see cref="Resize"/> uses (<c>resample</c>).</summary>
    public PilFilter Resample { get; }

    /// <summary>Height of pixel_values: <c>size.height</c>, or <c>crop_size.height</c> when <see cref="ShortestEdge"/> is set.</summary>
    public int Height { get; }
    /// <summary>Width of pixel_values: <c>size.width</c>, or <c>crop_size.width</c> when <see cref="ShortestEdge"/> is set.</summary>
    public int Width { get; }
    /// <summary>
    /// <c>size.shortest_edge</c> (CLIP): <see cref="Resize"/> scales the short side to it and the long side in proportion,
    /// and <see cref="CenterCrop"/> then cuts out <see cref="Height"/> × <see cref="Width"/>. Null: resize straight to
    /// <see cref="Height"/> × <see cref="Width"/>, nothing to crop.
    /// </summary>
    public int? ShortestEdge { get; }
    /// <summary><c>do_rescale</c>.</summary>
    public bool DoRescale { get; }
    /// <summary><c>rescale_factor</c>, applied in float64 before the cast to float32, as HF does.</summary>
    public double RescaleFactor { get; }
    /// <summary><c>do_normalize</c>.</summary>
    public bool DoNormalize { get; }
    /// <summary><c>image_mean</c> per channel.</summary>
    public IReadOnlyList<float> Mean { get; }
    /// <summary><c>image_std</c> per channel.</summary>
    public IReadOnlyList<float> Std { get; }

    // [3, 256]: the float for each channel and byte value; the mapping is per-value, so a table is exact.
    readonly float[] _lookup;

    /// <summary>
    /// A preprocessor with explicit settings; defaults are SigLIP's (bicubic, rescale 1/255, mean = std = 0.5, no crop). With
    /// <paramref name="shortestEdge"/>, <paramref name="height"/> × <paramref name="width"/> is the centre crop's size.
    /// </summary>
    public ImagePreprocessor(int height, int width, bool doRescale = true, double rescaleFactor = 1 / 255.0,
                             bool doNormalize = true, float[]? mean = null, float[]? std = null, int? shortestEdge = null,
                             PilFilter resample = PilFilter.Bicubic)
    {
        if (!Enum.IsDefined(resample)) throw new ArgumentOutOfRangeException(nameof(resample), resample, "expected PilFilter.Bilinear or PilFilter.Bicubic");
        if (height <= 0 || width <= 0 || height > ImageLoader.MaxSide || width > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(height), $"image size {height}x{width}: each side must be 1..{ImageLoader.MaxSide}");
        if (shortestEdge is <= 0 or > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(shortestEdge), $"shortest_edge is {shortestEdge}, expected 1..{ImageLoader.MaxSide}");
        mean ??= [0.5f, 0.5f, 0.5f];
        std ??= [0.5f, 0.5f, 0.5f];
        if (mean.Length != 3 || std.Length != 3)
            throw new ArgumentException($"image_mean and image_std need 3 values, got {mean.Length} and {std.Length}");
        if (doNormalize && !std.All(x => x > 0 && float.IsFinite(x)))
            throw new ArgumentOutOfRangeException(nameof(std), $"image_std is [{string.Join(", ", std)}], expected finite values > 0 (it divides)");
        if (doNormalize && !mean.All(float.IsFinite))
            throw new ArgumentOutOfRangeException(nameof(mean), $"image_mean is [{string.Join(", ", mean)}], expected finite values");
        if (doRescale && !(rescaleFactor > 0 && double.IsFinite(rescaleFactor)))
            throw new ArgumentOutOfRangeException(nameof(rescaleFactor), $"rescale_factor is {rescaleFactor}, expected a finite number > 0");
        Height = height;
        Width = width;
        Resample = resample;
        ShortestEdge = shortestEdge;
        DoRescale = doRescale;
        RescaleFactor = rescaleFactor;
        DoNormalize = doNormalize;
        Mean = mean;
        Std = std;
        _lookup = new float[3 * 256];
        for (int c = 0; c < 3; c++)
            for (int v = 0; v < 256; v++)
            {
                float p = doRescale ? (float)(v * rescaleFactor) : v;
                _lookup[c * 256 + v] = doNormalize ? (p - mean[c]) / std[c] : p;
            }
    }

    /// <summary>
    /// Settings for a checkpoint directory: its <c>preprocessor_config.json</c> when present; otherwise (and for keys it
    /// leaves out or sets to null) the square <c>vision_config.image_size</c> of <c>config.json</c>, rescale 1/255,
    /// mean = std = 0.5 (OpenAI CLIP's for a CLIP processor). <c>do_convert_rgb</c> is accepted and ignored: images are
    /// always RGB here.
    /// </summary>
    public static ImagePreprocessor FromCheckpoint(string directory)
    {
        string preprocessorPath = Path.Combine(directory, "preprocessor_config.json");
        string configPath = Path.Combine(directory, "config.json");
        int? imageSize = File.Exists(configPath) ? ReadVisionImageSize(configPath) : null;
        if (!File.Exists(preprocessorPath))
        {
            if (imageSize is null) throw new InvalidModelFileException($"{directory}: neither preprocessor_config.json nor config.json with vision_config.image_size");
            return new ImagePreprocessor(imageSize.Value, imageSize.Value);
        }
        return FromPreprocessorConfig(preprocessorPath, imageSize);
    }

    /// <summary>
    /// Reads an HF <c>preprocessor_config.json</c> of a <c>SiglipImageProcessor</c> (also assumed when the file names no
    /// class), a <c>CLIPImageProcessor</c> (or Video-LLaVA's, which applies CLIP's steps), or a <c>Gemma3ImageProcessor</c> (pan-and-scan off);
    /// <paramref name="defaultImageSize"/> fills a missing <c>size</c> (and <c>crop_size</c>).
    /// </summary>
    public static ImagePreprocessor FromPreprocessorConfig(string path, int? defaultImageSize = null)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidModelFileException($"{path}: expected a JSON object");
        var kind = Kind(root, path);
        bool clip = kind == "CLIPImageProcessor";

        if (!Bool(root, "do_resize", path, true))
            throw new InvalidModelFileException($"{path}: do_resize false is not supported (the vision tower needs a fixed size)");
        // Pan-and-scan adds crops of wide images as extra images: another image count per request and another prompt layout.
        if (Bool(root, "do_pan_and_scan", path, false))
            throw new InvalidModelFileException($"{path}: do_pan_and_scan is true; only false (one {{size}} view per image, transformers' default) is supported");
        // Each processor's own filter, the one its released checkpoints use and the fixtures test: Gemma3ImageProcessor's
        // BILINEAR, SigLIP's and CLIP's BICUBIC.
        var filter = kind == "Gemma3ImageProcessor" ? PilFilter.Bilinear : PilFilter.Bicubic;
        if (Get(root, "resample") is { } resample && (resample.ValueKind != JsonValueKind.Number || !resample.TryGetInt32(out int r) || r != (int)filter))
            throw new InvalidModelFileException($"{path}: resample {JsonValueText.Show(resample, 40)} is not supported for {kind}, only {(int)filter} ({filter.ToString().ToLowerInvariant()})");

        var (height, width, shortestEdge) = Get(root, "size") is { } size ? Size(size, "size", path, shortestEdge: clip, bareSquare: false)
            : defaultImageSize is { } s ? (clip ? (s, s, s) : (s, s, (int?)null))
            : throw new InvalidModelFileException($"{path}: no size and no vision_config.image_size to fall back on");
        if (clip && Bool(root, "do_center_crop", path, true))
        {
            var (cropHeight, cropWidth, _) = Get(root, "crop_size") is { } crop ? Size(crop, "crop_size", path, shortestEdge: false, bareSquare: true)
                : defaultImageSize is { } c ? (c, c, null)
                : throw new InvalidModelFileException($"{path}: do_center_crop without crop_size and no vision_config.image_size to fall back on");
            if (shortestEdge is null && (cropHeight, cropWidth) != (height, width))
                throw new InvalidModelFileException($"{path}: crop_size {cropHeight}x{cropWidth} differs from size {height}x{width}; expected equal sizes (or size {{\"shortest_edge\": int}})");
            (height, width) = (cropHeight, cropWidth);
        }
        else if (shortestEdge is { } edge)
            throw new InvalidModelFileException($"{path}: do_center_crop is false with size {{\"shortest_edge\": {edge}}}, expected true (without the crop pixel_values take each image's aspect ratio; the vision tower needs a fixed size)");

        try
        {
            return new ImagePreprocessor(height, width,
                Bool(root, "do_rescale", path, true),
                Get(root, "rescale_factor") is { } f ? (f.ValueKind == JsonValueKind.Number ? f.GetDouble() : throw new InvalidModelFileException($"{path}: rescale_factor must be a number, found {JsonValueText.Show(f, 40)}")) : 1 / 255.0,
                Bool(root, "do_normalize", path, true),
                Floats(root, "image_mean", path) ?? (clip ? ClipMean : null), Floats(root, "image_std", path) ?? (clip ? ClipStd : null),
                shortestEdge, filter);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        { throw new InvalidModelFileException($"{path}: {e.Message}"); }
    }

    /// <summary>
    /// The size <see cref="Resize"/> gives a <paramref name="width"/> × <paramref name="height"/> image. With
    /// <see cref="ShortestEdge"/> S this is transformers' <c>get_resize_output_image_size(default_to_square=False)</c>:
    /// short side S, long side <c>int(S * long / short)</c> (truncated; 98×71 → 77×56).
    /// </summary>
    public (int Width, int Height) ResizedSize(int width, int height)
    {
        if (ShortestEdge is not { } s) return (Width, Height);
        // Python's int * int / int is one float64 division of exact integers (all < 2^53 here), then truncation.
        int longSide = (int)((double)s * Math.Max(width, height) / Math.Min(width, height));
        if (longSide > ImageLoader.MaxSide)
            throw new InvalidImageException($"image {width}x{height}: its short side scaled to {s} makes the long side {longSide}, over the limit of {ImageLoader.MaxSide}");
        return width <= height ? (s, longSide) : (longSide, s);
    }

    /// <summary>Resizes (PIL, <see cref="Resample"/>) to <see cref="ResizedSize"/>, returning the image itself when it already has that size.</summary>
    public RgbImage Resize(RgbImage image)
    {
        var (width, height) = ResizedSize(image.Width, image.Height);
        return image.Width == width && image.Height == height ? image : PilResampler.Resize(image, width, height, Resample);
    }

    /// <summary>
    /// transformers' <c>center_crop</c> to <see cref="Height"/> × <see cref="Width"/>: <c>top = (H − Height) // 2</c>,
    /// <c>left = (W − Width) // 2</c> (floor). A side shorter than the crop is zero-padded around the image as HF does
    /// (ceil of half the difference before it); returns the image itself when it already has the crop's size.
    /// </summary>
    public RgbImage CenterCrop(RgbImage image)
    {
        if (image.Width == Width && image.Height == Height) return image;
        // Floor division also when the image is smaller (>> rounds toward −∞): HF pads ceil(d / 2) = −floor(−d / 2)
        // in front, so this same offset addresses the padded image, and out-of-image rows and columns stay zero.
        int top = (image.Height - Height) >> 1, left = (image.Width - Width) >> 1;
        int x0 = Math.Max(0, -left), x1 = Math.Min(Width, image.Width - left); // output columns inside the image
        var pixels = new byte[Height * Width * 3];
        for (int y = Math.Max(0, -top); y < Math.Min(Height, image.Height - top); y++)
            image.Pixels.AsSpan(3 * ((y + top) * image.Width + x0 + left), 3 * (x1 - x0)).CopyTo(pixels.AsSpan(3 * (y * Width + x0)));
        return new RgbImage(Width, Height, pixels, image.SourcePath);
    }

    /// <summary>The image as the vision tower sees it, <see cref="Width"/> × <see cref="Height"/>: <see cref="Resize"/>, then <see cref="CenterCrop"/>.</summary>
    public RgbImage ModelView(RgbImage image) => CenterCrop(Resize(image));

    /// <summary>pixel_values for one image, [3, Height, Width] flattened (CHW).</summary>
    public float[] Preprocess(RgbImage image)
    {
        var view = ModelView(image);
        int plane = Width * Height;
        var chw = new float[3 * plane];
        var px = view.Pixels;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + i] = _lookup[c * 256 + px[3 * i + c]];
        return chw;
    }

    /// <summary>pixel_values as a [1, 3, Height, Width] tensor.</summary>
    public Tensor PixelValues(RgbImage image) => new(Preprocess(image), [1, 3, Height, Width]);

    /// <summary>pixel_values_videos for one video: each frame preprocessed as an image, stacked in order, [1, T, 3, Height, Width].</summary>
    public Tensor VideoPixelValues(IReadOnlyList<RgbImage> frames)
    {
        int plane = 3 * Height * Width;
        var data = new float[frames.Count * plane];
        for (int t = 0; t < frames.Count; t++) Preprocess(frames[t]).CopyTo(data, t * plane);
        return new Tensor(data, [1, frames.Count, 3, Height, Width]);
    }

    // CLIPImageProcessor's defaults for a missing image_mean / image_std (OPENAI_CLIP_MEAN / _STD); fresh arrays, as the
    // constructor keeps the one it is given.
    static float[] ClipMean => [0.48145466f, 0.4578275f, 0.40821073f];
    static float[] ClipStd => [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>The processor class: SigLIP's also when the file names none (as before CLIP support), CLIP's or Gemma 3's.</summary>
    static string Kind(JsonElement root, string path)
    {
        // Older files name the class only as feature_extractor_type (CLIPFeatureExtractor); transformers maps it the same way.
        string key = Get(root, "image_processor_type") is null && Get(root, "feature_extractor_type") is not null ? "feature_extractor_type" : "image_processor_type";
        if (Get(root, key) is not { } type) return "SiglipImageProcessor";
        return (type.ValueKind == JsonValueKind.String ? type.GetString()!.Replace("FeatureExtractor", "ImageProcessor") : null) switch
        {
            "SiglipImageProcessor" or "CLIPImageProcessor" or "Gemma3ImageProcessor" => type.GetString()!.Replace("FeatureExtractor", "ImageProcessor"),
            // CLIP's steps, applied to images and to each video frame alike.
            "VideoLlavaImageProcessor" => "CLIPImageProcessor",
            _ => throw new InvalidModelFileException($"{path}: {key} is {JsonValueText.Show(type, 40)}, expected \"SiglipImageProcessor\", \"CLIPImageProcessor\", \"VideoLlavaImageProcessor\" or \"Gemma3ImageProcessor\""),
        };
    }

    /// <summary>
    /// An HF size dict <c>{"height": h, "width": w}</c>, or with <paramref name="shortestEdge"/> also
    /// <c>{"shortest_edge": s}</c>. A bare s is HF's shorthand: <c>{"shortest_edge": s}</c> for CLIP's <c>size</c>,
    /// s × s with <paramref name="bareSquare"/> (<c>crop_size</c>).
    /// </summary>
    static (int Height, int Width, int? ShortestEdge) Size(JsonElement v, string key, string path, bool shortestEdge, bool bareSquare)
    {
        if (v.ValueKind == JsonValueKind.Number && (shortestEdge || bareSquare))
        {
            int n = Side(v, key, path);
            return (n, n, shortestEdge ? n : null);
        }
        string[] keys = v.ValueKind == JsonValueKind.Object ? v.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray() : [];
        if (keys is ["height", "width"])
            return (Side(v.GetProperty("height"), key + ".height", path), Side(v.GetProperty("width"), key + ".width", path), null);
        if (shortestEdge && keys is ["shortest_edge"])
        {
            int s = Side(v.GetProperty("shortest_edge"), key + ".shortest_edge", path);
            return (s, s, s);
        }
        throw new InvalidModelFileException($"{path}: {key} is {JsonValueText.Show(v, 40)}, expected {{\"height\": int, \"width\": int}}{(shortestEdge ? " or {\"shortest_edge\": int}" : "")}");
    }

    static int Side(JsonElement v, string key, string path) =>
        v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n > 0 && n <= ImageLoader.MaxSide ? n
        : throw new InvalidModelFileException($"{path}: {key} is {JsonValueText.Show(v, 40)}, expected an integer 1..{ImageLoader.MaxSide}");

    static JsonDocument ParseJson(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (IOException e) { throw new InvalidModelFileException($"{path}: cannot read ({e.Message})"); }
        // JsonDocument checks a string's UTF-8 only when it is read, and then throws InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new InvalidModelFileException($"{path}: not valid UTF-8");
        try { return JsonDocument.Parse(bytes); }
        catch (JsonException e) { throw new InvalidModelFileException($"{path}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
        catch (IOException e) { throw new InvalidModelFileException($"{path}: cannot read ({e.Message})"); }
    }

    static int? ReadVisionImageSize(string configPath)
    {
        using var doc = ParseJson(configPath);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && Get(doc.RootElement, "vision_config") is { ValueKind: JsonValueKind.Object } vision
            && Get(vision, "image_size") is { } size)
            return size.TryGetInt32(out int s) ? s : throw new InvalidModelFileException($"{configPath}: vision_config.image_size {JsonValueText.Show(size, 40)} is not an integer");
        return null;
    }

    static JsonElement? Get(JsonElement obj, string key) =>
        obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    static bool Bool(JsonElement root, string key, string path, bool fallback) => Get(root, key) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw new InvalidModelFileException($"{path}: {key} must be true or false, found {JsonValueText.Show(v, 40)}"),
    };

    static float[]? Floats(JsonElement root, string key, string path)
    {
        if (Get(root, key) is not { } v) return null;
        var bad = new InvalidModelFileException($"{path}: {key} must be a number or a list of 3 finite numbers, found {JsonValueText.Show(v, 40)}");
        if (v.ValueKind == JsonValueKind.Number) return v.TryGetSingle(out float one) && float.IsFinite(one) ? [one, one, one] : throw bad;
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3) throw bad;
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out float x) && float.IsFinite(x) ? x : throw bad).ToArray();
    }

}
