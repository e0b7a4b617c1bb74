using PureVlm.Formats.Images;

namespace PureVlm.Tests.Images;

/// <summary>A case made by one of the <c>tests/data/images/*/make_cases.py</c> scripts: the file and Pillow's RGB bytes beside it.</summary>
static class PillowCase
{
    /// <summary>The file as <see cref="ImageLoader"/> decodes it, and Pillow's pixels from <c>FILE.rgb</c>.</summary>
    public static (RgbImage Image, byte[] Pillow) Load(string dir, string file) =>
        (ImageLoader.Load(Path.Combine(dir, file)), File.ReadAllBytes(Path.Combine(dir, file + ".rgb")));
}
