using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>
/// WebP and TIFF through ImageLoader against what Pillow 9.4 reads from the same files (load_image's open, exif_transpose,
/// convert("RGB"); tests/data/images/webp-tiff/make_cases.py made both), every pixel compared.
/// </summary>
public class WebpTiffTests
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
    // Palette: the 16-bit ColorMap's high bytes, as Pillow (see TiffPalette); 1, 2, 4, 8 bits, first page.
    [InlineData("palette.tiff")]
    [InlineData("palette-lzw.tiff")]
    [InlineData("palette-multipage.tiff")]
    [InlineData("palette1.tiff")]
    [InlineData("palette2.tiff")]
    [InlineData("palette4.tiff")]
    // Orientation: Pillow 9.4 applies a TIFF's twice (so 6 and 8 end up turned 180°, the rest as stored).
    [InlineData("exif3.tiff")]
    [InlineData("exif5.tiff")]
    [InlineData("exif6.tiff")]
    [InlineData("exif8-palette.tiff")]
    // XMP orientation: Pillow 9.4 reads it from PNG only, so these stay as stored.
    [InlineData("xmp6.webp")]
    [InlineData("xmp6.tiff")]
    public void Decodes_exactly_as_pillow(string file)
    {
        var (image, want) = PillowCase.Load(Dir, file);
        Assert.Equal((61, 47), (image.Width, image.Height));
        Assert.Equal(want, image.Pixels);
    }

    [Fact]
    public void Webp_exif_orientation_is_applied_once()
    {
        var image = ImageLoader.Load(Path.Combine(Dir, "exif6.webp"));
        Assert.Equal((47, 61), (image.Width, image.Height));
        Assert.Equal(File.ReadAllBytes(Path.Combine(Dir, "exif6.webp.rgb")), image.Pixels);
    }

    [Theory]
    [InlineData("palette4-tiled.tiff")]
    [InlineData("palette8-tiled-be.tiff")]
    public void Tiled_tiff_is_a_one_line_error_as_imagesharp_2_reads_strips_only(string file)
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(Path.Combine(Dir, file)));
        Assert.Contains("Tiled images are not supported", e.Message);
        Assert.DoesNotContain('\n', e.Message);
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
