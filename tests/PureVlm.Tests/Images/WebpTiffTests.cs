using PureVlm.Formats.Images;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Images;

/// <summary>
/// WebP and TIFF through ImageLoader against what Pillow 9.4 reads from the same files (load_image's open, exif_transpose,
/// convert("RGB"); tests/data/images/webp-tiff/make_cases.py made both), every pixel compared.
/// </summary>
public class WebpTiffTests(ITestOutputHelper output)
{
    static string Dir => Path.Combine(TestPaths.Data, "images", "webp-tiff");

    [Theory]
    [InlineData("lossless.webp")]
    [InlineData("lossy.webp")]
    [InlineData("alpha-lossless.webp")]
    [InlineData("plain.tiff")]
    [InlineData("lzw.tiff")]
    [InlineData("deflate.tiff")]
    [InlineData("packbits.tiff")]
    [InlineData("gray.tiff")]
    [InlineData("rgba.tiff")]
    public void Decodes_exactly_as_pillow(string file)
    {
        var image = ImageLoader.Load(Path.Combine(Dir, file));
        var want = File.ReadAllBytes(Path.Combine(Dir, file + ".rgb"));
        Assert.Equal((61, 47), (image.Width, image.Height));
        Assert.Equal(want, image.Pixels);
    }

    [Fact]
    public void Palette_tiff_colours_are_at_most_one_level_from_pillows()
    {
        // TIFF stores the palette in 16 bits; Pillow keeps the high byte, ImageSharp divides by 257 and rounds.
        var image = ImageLoader.Load(Path.Combine(Dir, "palette.tiff"));
        var want = File.ReadAllBytes(Path.Combine(Dir, "palette.tiff.rgb"));
        int max = 0, differing = 0;
        for (int i = 0; i < want.Length; i++)
        {
            int d = Math.Abs(want[i] - image.Pixels[i]);
            max = Math.Max(max, d);
            if (d > 0) differing++;
        }
        output.WriteLine($"palette.tiff: {differing} of {want.Length} samples differ, at most by {max}");
        Assert.InRange(max, 1, 1); // if this becomes 0, move the file to the exact cases above
    }

    [Fact]
    public void Truncated_webp_and_tiff_are_one_line_errors_naming_the_file()
    {
        foreach (var file in new[] { "lossless.webp", "lzw.tiff" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(Dir, file));
            string path = Path.Combine(Path.GetTempPath(), $"purevlm-cut-{Guid.NewGuid():N}-{file}");
            File.WriteAllBytes(path, bytes[..(bytes.Length / 3)]);
            try
            {
                var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(path));
                Assert.Contains(path, e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
            finally { File.Delete(path); }
        }
    }
}
