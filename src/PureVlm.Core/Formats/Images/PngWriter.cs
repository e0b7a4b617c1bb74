using StbImageWriteSharp;

namespace PureVlm.Formats.Images;

/// <summary>Writes an <see cref="RgbImage"/> as an 8-bit RGB PNG (StbImageWriteSharp).</summary>
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
        string directory = Path.GetDirectoryName(fullPath)!;
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{path}: folder {directory} does not exist");

        string temp = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                new ImageWriter().WritePng(image.Pixels, image.Width, image.Height, ColorComponents.RedGreenBlue, stream);
            File.Move(temp, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
