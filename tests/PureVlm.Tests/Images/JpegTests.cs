using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>
/// JPEG through ImageLoader against what Pillow 9.4 (libjpeg-turbo 2.1.5) reads from the same files (load_image's open,
/// exif_transpose, convert("RGB"); tests/data/images/jpeg/make_cases.py made both), every pixel compared, and the
/// files Pillow refuses refused in one line.
/// </summary>
public class JpegTests
{
    static string Dir => Path.Combine(TestPaths.Data, "images", "jpeg");

    public static TheoryData<string> Cases() =>
        new(Directory.EnumerateFiles(Dir, "*.jpg").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decodes_exactly_as_pillow(string file)
    {
        var (image, want) = PillowCase.Load(Dir, file);
        Assert.Equal(want.Length, 3 * image.Width * image.Height);
        Assert.Equal(want, image.Pixels);
    }

    [Fact]
    public void All_cases_are_present()
    {
        // 4:4:4 … 4:1:1, odd sizes, progressive, restarts, grey, CMYK, YCCK, Adobe RGB, oddities and EXIF orientations 2–8.
        Assert.True(Cases().Count >= 35, $"{Cases().Count} cases in {Dir}; run make_cases.py");
        var rotated = ImageLoader.Load(Path.Combine(Dir, "exif6.jpg"));
        Assert.Equal((7, 13), (rotated.Width, rotated.Height));
    }

    [Fact]
    public void Bytes_after_the_end_of_image_are_ignored_as_pillow_ignores_them()
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, "420.jpg"));
        var image = ImageLoader.Load([.. bytes, .. "trailing junk"u8]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Dir, "420.jpg.rgb")), image.Pixels);
    }

    public static TheoryData<string, string> Refused() => new()
    {
        // Pillow: "image file is truncated" for a file cut anywhere, even just before its end-of-image marker.
        { "420.jpg", "cut in the scan" },
        { "420.jpg", "without end-of-image marker" },
        { "progressive-420.jpg", "cut in the scan" },
        { "gray.jpg", "cut in the headers" },
        // Pillow's parser: "cannot identify image file" (no marker found).
        { "444.jpg", "unknown marker" },
        // libjpeg-turbo: JERR_FRACT_SAMPLE_NOTIMPL, Pillow: "broken data stream".
        { "444.jpg", "3x1 luma with 2x1 chroma" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void Files_pillow_refuses_are_one_line_errors_naming_the_file(string file, string what)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, file));
        int sof = bytes.AsSpan().IndexOf((ReadOnlySpan<byte>)[0xFF, 0xC0]);
        byte[] broken = what switch
        {
            "cut in the scan" => bytes[..(bytes.Length * 2 / 3)],
            "without end-of-image marker" => bytes[..^2],
            "cut in the headers" => bytes[..200],
            "unknown marker" => [.. bytes[..2], 0xFF, 0x02, 0, 4, 0, 0, .. bytes[2..]],
            _ => Patched(bytes, (sof + 11, 0x31), (sof + 14, 0x21)),
        };
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-jpeg-{Guid.NewGuid():N}.jpg");
        File.WriteAllBytes(path, broken);
        try
        {
            var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(path));
            Assert.Contains(path, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Thousands_of_scans_are_refused_before_decoding()
    {
        // Each empty progressive scan would still walk the whole image: a few kilobytes could take minutes.
        var bytes = File.ReadAllBytes(Path.Combine(Dir, "progressive-420.jpg"));
        byte[] emptyScan = [0xFF, 0xDA, 0, 8, 1, 1, 0, 1, 5, 0];
        var many = bytes[..^2].Concat(Enumerable.Repeat(emptyScan, 600).SelectMany(s => s)).Concat(bytes[^2..]).ToArray();
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(many));
        Assert.Contains("scans", e.Message);
    }

    static byte[] Patched(byte[] bytes, params (int At, byte Value)[] changes)
    {
        var copy = (byte[])bytes.Clone();
        foreach (var (at, value) in changes) copy[at] = value;
        return copy;
    }
}
