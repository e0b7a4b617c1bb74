using StbImageWriteSharp;

namespace PureVlm.Formats.Images;

/// <summary>Writes 8-bit RGB (<see cref="RgbImage"/>) and gray PNGs (StbImageWriteSharp).</summary>
public static class PngWriter
{
    /// <summary>
    /// Saves to <paramref name="path"/> through a temporary file in the same folder and a move, so a reader never sees
    /// a half-written file. Refuses to overwrite the file the image was loaded from.
    /// </summary>
    public static void Save(RgbImage image, string path)
    {
        ArgumentNullException.ThrowIfNull(image);
        string fullPath = Path.GetFullPath(path);
        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        if (image.SourcePath != null && string.Equals(fullPath, image.SourcePath, comparison))
            throw new IOException($"{path}: refusing to overwrite the input image; choose another output path");
        Write(path, stream => new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, ColorComponents.RedGreenBlue, stream));
    }

    /// <summary>Saves an 8-bit gray image ([height, width] row-major) as a PNG, through a temporary file like <see cref="Save"/>.</summary>
    public static void SaveGray(byte[] pixels, int width, int height, string path)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width <= 0 || height <= 0 || pixels.Length != (long)width * height)
            throw new ArgumentException($"{pixels.Length} bytes for a {width}x{height} gray image, expected {(long)width * height}", nameof(pixels));
        Write(path, stream => new ImageWriter().WritePng(pixels, width, height, ColorComponents.Grey, stream));
    }

    static void Write(string path, Action<Stream> write)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{path}: folder {directory} does not exist");

        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                write(stream);
            File.Move(temp, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
