using System.Text.Json;
using PureVlm.Tensors;

namespace PureVlm.Formats.Images;

/// <summary>
/// HF <c>SiglipImageProcessor</c> as PaliGemma uses it: resize to <see cref="Height"/> × <see cref="Width"/> with PIL
/// bicubic, then per channel <c>p = (float32(u8 · rescale_factor in float64) − mean) / std</c> in float32, laid out CHW.
/// </summary>
public sealed class ImagePreprocessor
{
    /// <summary>The only <c>resample</c> value supported: PIL's BICUBIC.</summary>
    public const int ResampleBicubic = 3;

    /// <summary>Target height (<c>size.height</c>).</summary>
    public int Height { get; }
    /// <summary>Target width (<c>size.width</c>).</summary>
    public int Width { get; }
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

    /// <summary>A preprocessor with explicit settings; defaults are SigLIP's (rescale 1/255, mean = std = 0.5).</summary>
    public ImagePreprocessor(int height, int width, bool doRescale = true, double rescaleFactor = 1 / 255.0,
                             bool doNormalize = true, float[]? mean = null, float[]? std = null)
    {
        if (height <= 0 || width <= 0 || height > ImageLoader.MaxSide || width > ImageLoader.MaxSide)
            throw new ArgumentOutOfRangeException(nameof(height), $"image size {height}x{width}: each side must be 1..{ImageLoader.MaxSide}");
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
    /// mean = std = 0.5. <c>do_convert_rgb</c> is accepted and ignored: images are always RGB here.
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

    /// <summary>Reads an HF <c>preprocessor_config.json</c>; <paramref name="defaultImageSize"/> fills a missing <c>size</c>.</summary>
    public static ImagePreprocessor FromPreprocessorConfig(string path, int? defaultImageSize = null)
    {
        using var doc = ParseJson(path);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidModelFileException($"{path}: expected a JSON object");

        if (!Bool(root, "do_resize", path, true))
            throw new InvalidModelFileException($"{path}: do_resize false is not supported (the vision tower needs a fixed size)");
        if (Get(root, "resample") is { } resample && (!resample.TryGetInt32(out int r) || r != ResampleBicubic))
            throw new InvalidModelFileException($"{path}: resample {resample.GetRawText()} is not supported, only {ResampleBicubic} (bicubic)");

        int height, width;
        if (Get(root, "size") is { } size)
        {
            if (size.ValueKind != JsonValueKind.Object || Get(size, "height") is not { } h || Get(size, "width") is not { } w
                || !h.TryGetInt32(out height) || !w.TryGetInt32(out width))
                throw new InvalidModelFileException($"{path}: size must be {{\"height\": int, \"width\": int}}, found {Short(size.GetRawText())}");
        }
        else if (defaultImageSize is { } s) height = width = s;
        else throw new InvalidModelFileException($"{path}: no size and no vision_config.image_size to fall back on");

        try
        {
            return new ImagePreprocessor(height, width,
                Bool(root, "do_rescale", path, true),
                Get(root, "rescale_factor") is { } f ? (f.ValueKind == JsonValueKind.Number ? f.GetDouble() : throw new InvalidModelFileException($"{path}: rescale_factor must be a number, found {Short(f.GetRawText())}")) : 1 / 255.0,
                Bool(root, "do_normalize", path, true),
                Floats(root, "image_mean", path), Floats(root, "image_std", path));
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        { throw new InvalidModelFileException($"{path}: {e.Message}"); }
    }

    /// <summary>Resizes (PIL bicubic) when the image is not already <see cref="Width"/> × <see cref="Height"/>.</summary>
    public RgbImage Resize(RgbImage image) => image.Width == Width && image.Height == Height ? image : BicubicResampler.Resize(image, Width, Height);

    /// <summary>pixel_values for one image, [3, Height, Width] flattened (CHW).</summary>
    public float[] Preprocess(RgbImage image)
    {
        var resized = Resize(image);
        int plane = Width * Height;
        var chw = new float[3 * plane];
        var px = resized.Pixels;
        for (int i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++)
                chw[c * plane + i] = _lookup[c * 256 + px[3 * i + c]];
        return chw;
    }

    /// <summary>pixel_values as a [1, 3, Height, Width] tensor.</summary>
    public Tensor PixelValues(RgbImage image) => new(Preprocess(image), [1, 3, Height, Width]);

    static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new InvalidModelFileException($"{path}: not valid JSON ({e.Message})"); }
        catch (IOException e) { throw new InvalidModelFileException($"{path}: cannot read ({e.Message})"); }
    }

    static int? ReadVisionImageSize(string configPath)
    {
        using var doc = ParseJson(configPath);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && Get(doc.RootElement, "vision_config") is { ValueKind: JsonValueKind.Object } vision
            && Get(vision, "image_size") is { } size)
            return size.TryGetInt32(out int s) ? s : throw new InvalidModelFileException($"{configPath}: vision_config.image_size {Short(size.GetRawText())} is not an integer");
        return null;
    }

    static JsonElement? Get(JsonElement obj, string key) =>
        obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    static bool Bool(JsonElement root, string key, string path, bool fallback) => Get(root, key) switch
    {
        null => fallback,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw new InvalidModelFileException($"{path}: {key} must be true or false, found {Short(v.GetRawText())}"),
    };

    static float[]? Floats(JsonElement root, string key, string path)
    {
        if (Get(root, key) is not { } v) return null;
        var bad = new InvalidModelFileException($"{path}: {key} must be a number or a list of 3 finite numbers, found {Short(v.GetRawText())}");
        if (v.ValueKind == JsonValueKind.Number) return v.TryGetSingle(out float one) && float.IsFinite(one) ? [one, one, one] : throw bad;
        if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3) throw bad;
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out float x) && float.IsFinite(x) ? x : throw bad).ToArray();
    }

    static string Short(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
