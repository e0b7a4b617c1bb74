namespace PureVlm.Formats.Images;

/// <summary>Raised for an image that cannot be used: corrupt, truncated, empty, too large or of an unsupported format. The message names the file (when known) and the problem.</summary>
public sealed class InvalidImageException(string message, Exception? inner = null) : PureVlmException(message, inner);

/// <summary>An 8-bit RGB image, pixels row-major and interleaved: <c>Pixels[(y * Width + x) * 3 + c]</c> (HWC).</summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>Pixels, [Height, Width, 3] RGB.</summary>
    public byte[] Pixels { get; }
    /// <summary>Full path of the file the pixels came from (directly or through a transform), or null.</summary>
    public string? SourcePath { get; }

    internal RgbImage(int width, int height, byte[] pixels, string? sourcePath = null)
    {
        Width = width;
        Height = height;
        Pixels = pixels;
        SourcePath = sourcePath;
    }

    /// <summary>Copies interleaved RGB bytes ([height, width, 3]) into a new image.</summary>
    public static RgbImage FromPixels(int width, int height, ReadOnlySpan<byte> rgb)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}x{height}: both sides must be positive");
        long needed = 3L * width * height;
        if (rgb.Length != needed)
            throw new ArgumentException($"a {width}x{height} RGB image needs {needed} bytes, got {rgb.Length}", nameof(rgb));
        return new RgbImage(width, height, rgb.ToArray());
    }

    /// <summary>A copy with its own pixel buffer.</summary>
    public RgbImage Clone() => new(Width, Height, (byte[])Pixels.Clone(), SourcePath);

    /// <summary>Red, green and blue of pixel (x, y).</summary>
    public (byte R, byte G, byte B) this[int x, int y]
    {
        get
        {
            int i = Index(x, y);
            return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
        }
    }

    internal int Index(int x, int y)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"pixel ({x}, {y}) is outside the {Width}x{Height} image");
        return (y * Width + x) * 3;
    }

    /// <inheritdoc/>
    public override string ToString() => $"RgbImage {Width}x{Height}" + (SourcePath is null ? "" : $" from {SourcePath}");
}
