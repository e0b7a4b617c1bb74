using System.Buffers.Binary;
using PureVlm.Formats.Images;
using StbImageWriteSharp;
using Xunit;

namespace PureVlm.Tests.Images;

public class ImageLoaderTests
{
    static string InputPng => Path.Combine(TestPaths.Fixture("paligemma-tiny"), "input.png");

    static InvalidImageException Rejects(byte[] bytes) => Assert.Throws<InvalidImageException>(() => ImageLoader.Load(bytes));

    [Fact]
    public void Load_from_path_stream_and_bytes_agree_and_remember_the_path()
    {
        var fromPath = ImageLoader.Load(InputPng);
        using var stream = File.OpenRead(InputPng);
        var fromStream = ImageLoader.Load(stream);
        var fromBytes = ImageLoader.Load(File.ReadAllBytes(InputPng));

        Assert.Equal(Path.GetFullPath(InputPng), fromPath.SourcePath);
        Assert.Null(fromBytes.SourcePath);
        Assert.Equal(fromPath.Pixels, fromStream.Pixels);
        Assert.Equal(fromPath.Pixels, fromBytes.Pixels);
    }

    [Fact]
    public void Empty_file_is_rejected_naming_the_file()
    {
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-empty-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(path, []);
        try
        {
            var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("empty", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Missing_file_is_rejected_naming_the_file()
    {
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load("/nonexistent/photo.png"));
        Assert.Contains("/nonexistent/photo.png", e.Message);
    }

    [Fact]
    public void Random_bytes_are_rejected()
    {
        var rng = new Random(7);
        for (int n = 0; n < 20; n++)
        {
            var bytes = new byte[rng.Next(1, 4000)];
            rng.NextBytes(bytes);
            if (bytes[0] is 0x89 or 0xFF or (byte)'G' or (byte)'B') bytes[0] = 0;
            Assert.Contains("not a PNG, JPEG, BMP, GIF, WebP or TIFF", Rejects(bytes).Message);
        }
    }

    [Fact]
    public void Random_bytes_behind_each_valid_signature_are_rejected_without_crashing()
    {
        var rng = new Random(11);
        byte[][] signatures = [[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], [0xFF, 0xD8, 0xFF], "GIF89a"u8.ToArray(), "BM"u8.ToArray()];
        foreach (var signature in signatures)
            for (int n = 0; n < 25; n++)
            {
                var bytes = new byte[signature.Length + rng.Next(0, 300)];
                rng.NextBytes(bytes);
                signature.CopyTo(bytes, 0);
                Rejects(bytes);
            }
    }

    [Fact]
    public void Truncated_png_is_rejected_at_every_cut()
    {
        var png = File.ReadAllBytes(InputPng);
        foreach (int cut in new[] { 4, 8, 20, 33, 100, png.Length / 2, png.Length - 40, png.Length - 13 })
            Assert.Contains("PNG", Rejects(png[..cut]).Message);
    }

    [Fact]
    public void Zero_width_png_is_rejected()
    {
        var e = Rejects(ImageBytes.Png(0, 5, 8, 2, []));
        Assert.Contains("0x5", e.Message);
    }

    [Fact]
    public void Png_header_claiming_100000_by_100000_is_rejected_before_decoding()
    {
        var e = Rejects(ImageBytes.Png(100000, 100000, 8, 2, new byte[16]));
        Assert.Contains("100000x100000", e.Message);
        Assert.Contains("limit", e.Message);
    }

    [Fact]
    public void Pillows_decompression_bomb_rule_refuses_above_2_x_89478485_pixels_from_the_header()
    {
        // 13378 × 13377 = 178,957,506 pixels, just over 2 × 89,478,485: Pillow raises DecompressionBombError.
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Rejects(ImageBytes.Png(13378, 13377, 8, 2, new byte[16]));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "refused before any pixel buffer");
        Assert.Contains("13378x13377 = 178957506 pixels", e.Message);
        Assert.Contains("decompression-bomb", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(2 * 89_478_485, ImageLoader.MaxPixels);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0, 0x1C, (byte)'f', (byte)'t', (byte)'y', (byte)'p', (byte)'a', (byte)'v', (byte)'i', (byte)'f' }, "AVIF")]
    [InlineData(new byte[] { (byte)'8', (byte)'B', (byte)'P', (byte)'S', 0, 1, 0, 0 }, "PSD")]
    public void Unsupported_formats_are_named(byte[] header, string format)
    {
        var e = Rejects(header);
        Assert.Contains(format + " images are not supported", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { (byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0 }, "TIFF")]
    [InlineData(new byte[] { (byte)'M', (byte)'M', 0, 42, 0, 0, 0, 8 }, "TIFF")]
    [InlineData(new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F', 0, 0, 0, 0, (byte)'W', (byte)'E', (byte)'B', (byte)'P', (byte)'V', (byte)'P', (byte)'8', (byte)' ' }, "WEBP")]
    public void A_webp_or_tiff_header_alone_is_a_one_line_error_naming_the_format(byte[] header, string format)
    {
        var e = Rejects(header);
        Assert.Contains(format, e.Message.ToUpperInvariant());
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Grey_grey_alpha_and_rgba_png_convert_like_pil()
    {
        // PIL 9.4 convert("RGB"): L replicates, LA and RGBA drop alpha without compositing.
        byte[] grey = Encode([77, 200], 2, 1, ColorComponents.Grey);
        byte[] greyAlpha = Encode([77, 0, 200, 255], 2, 1, ColorComponents.GreyAlpha);
        byte[] rgba = Encode([200, 100, 50, 0, 1, 2, 3, 255], 2, 1, ColorComponents.RedGreenBlueAlpha);

        Assert.Equal(new byte[] { 77, 77, 77, 200, 200, 200 }, ImageLoader.Load(grey).Pixels);
        Assert.Equal(new byte[] { 77, 77, 77, 200, 200, 200 }, ImageLoader.Load(greyAlpha).Pixels);
        Assert.Equal(new byte[] { 200, 100, 50, 1, 2, 3 }, ImageLoader.Load(rgba).Pixels);
    }

    [Fact]
    public void Palette_png_with_transparency_uses_palette_colours_like_pil()
    {
        var png = ImageBytes.Png(2, 1, 8, 3, [0, 0, 1],
            ImageBytes.Chunk("PLTE", [10, 20, 30, 40, 50, 60]), ImageBytes.Chunk("tRNS", [0, 128]));
        Assert.Equal(new byte[] { 10, 20, 30, 40, 50, 60 }, ImageLoader.Load(png).Pixels); // PIL 9.4 gives the same
    }

    [Fact]
    public void Two_bit_grey_png_scales_like_pil()
    {
        var png = ImageBytes.Png(4, 1, 2, 0, [0, 0b00_01_10_11]);
        Assert.Equal(new byte[] { 0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255 }, ImageLoader.Load(png).Pixels);
    }

    [Fact]
    public void Sixteen_bit_rgb_png_keeps_the_high_byte_like_pil()
    {
        var row = new byte[1 + 12];
        ushort[] samples = [0x12FF, 0x0034, 0xFFFF, 0x0100, 0x00FF, 0x8001];
        for (int i = 0; i < samples.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(1 + 2 * i), samples[i]);
        Assert.Equal(new byte[] { 0x12, 0x00, 0xFF, 0x01, 0x00, 0x80 }, ImageLoader.Load(ImageBytes.Png(2, 1, 16, 2, row)).Pixels);
    }

    [Fact]
    public void Sixteen_bit_grey_png_clamps_to_255_like_pil()
    {
        // PIL opens 16-bit grey as mode "I"; convert("RGB") clamps (checked with PIL 9.4: 1000 -> 255), it does not scale.
        ushort[] samples = [0, 100, 255, 256, 1000, 65535];
        var row = new byte[1 + 2 * samples.Length];
        for (int i = 0; i < samples.Length; i++) BinaryPrimitives.WriteUInt16BigEndian(row.AsSpan(1 + 2 * i), samples[i]);
        var image = ImageLoader.Load(ImageBytes.Png(samples.Length, 1, 16, 0, row));
        Assert.Equal(new byte[] { 0, 100, 255, 255, 255, 255 }, image.Pixels.Where((_, i) => i % 3 == 0).ToArray());
        Assert.Equal(image.Pixels.Where((_, i) => i % 3 == 0), image.Pixels.Where((_, i) => i % 3 == 2));
    }

    static readonly byte[] GifPalette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9];

    [Fact]
    public void Gif_decodes_its_first_frame()
    {
        var gif = ImageBytes.TwoFrameGif(GifPalette, [0, 1, 2, 3], [3, 3, 3, 3]);
        var image = ImageLoader.Load(gif);
        Assert.Equal((2, 2), (image.Width, image.Height));
        Assert.Equal(GifPalette, image.Pixels);
    }

    [Fact]
    public void Truncated_gif_first_frame_is_rejected()
    {
        var gif = ImageBytes.TwoFrameGif(GifPalette, [0, 1, 2, 3], [3, 3, 3, 3]);
        int firstFrameData = 6 + 7 + 12 + 10 + 1 + 1; // header, screen, palette, descriptor, code size, sub-block length
        Assert.Contains("truncated GIF", Rejects(gif[..(firstFrameData + 2)]).Message);
    }

    [Fact]
    public void Bmp_decodes_and_truncated_bmp_is_rejected()
    {
        byte[] pixels = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        var stream = new MemoryStream();
        new ImageWriter().WriteBmp(pixels, 2, 2, ColorComponents.RedGreenBlue, stream);
        var bmp = stream.ToArray();

        Assert.Equal(pixels, ImageLoader.Load(bmp).Pixels);
        Assert.Contains("truncated BMP", Rejects(bmp[..^4]).Message);
    }

    [Fact]
    public void Truncated_jpeg_is_rejected()
    {
        var jpeg = BlocksJpeg();
        foreach (int cut in new[] { 3, 30, jpeg.Length / 2, jpeg.Length - 2 })
            Rejects(jpeg[..cut]);
    }

    [Fact]
    public void Jpeg_segment_longer_than_the_file_is_rejected_before_stb_reads_it()
    {
        // stb's header reader never returned on this input (an APP13 segment claiming 0x59F2 bytes in a 40-byte file).
        byte[] jpeg = [0xFF, 0xD8, 0xFF, 0xED, 0x59, 0xF2, .. new byte[34]];
        Assert.Contains("truncated JPEG", Rejects(jpeg).Message);
    }

    // Stored 24×16 JPEG made of six flat 8×8 blocks:   A B C
    //                                                  D E F
    static readonly (byte R, byte G, byte B)[] BlockColours =
        [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 230, 40), (40, 220, 230), (230, 40, 230)];

    static byte[] BlocksJpeg()
    {
        var rgb = new byte[24 * 16 * 3];
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 24; x++)
            {
                var c = BlockColours[(y / 8) * 3 + x / 8];
                int i = (y * 24 + x) * 3;
                (rgb[i], rgb[i + 1], rgb[i + 2]) = (c.R, c.G, c.B);
            }
        var stream = new MemoryStream();
        new ImageWriter().WriteJpg(rgb, 24, 16, ColorComponents.RedGreenBlue, stream, 100);
        return stream.ToArray();
    }

    // Displayed block layout for each EXIF orientation, written from the EXIF definition (PIL: 2 FLIP_LEFT_RIGHT,
    // 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE, 8 ROTATE_90), rows separated by '/'.
    [Theory]
    [InlineData(1, "ABC/DEF")]
    [InlineData(2, "CBA/FED")]
    [InlineData(3, "FED/CBA")]
    [InlineData(4, "DEF/ABC")]
    [InlineData(5, "AD/BE/CF")]
    [InlineData(6, "DA/EB/FC")]
    [InlineData(7, "FC/EB/DA")]
    [InlineData(8, "CF/BE/AD")]
    public void Jpeg_exif_orientation_is_applied(int orientation, string layout)
    {
        var jpeg = ImageBytes.SpliceAfterSoi(BlocksJpeg(), ImageBytes.ExifApp1(orientation, bigEndian: orientation % 2 == 0));
        var image = ImageLoader.Load(jpeg);

        var rows = layout.Split('/');
        Assert.Equal((rows[0].Length * 8, rows.Length * 8), (image.Width, image.Height));
        for (int by = 0; by < rows.Length; by++)
            for (int bx = 0; bx < rows[by].Length; bx++)
            {
                var want = BlockColours[rows[by][bx] - 'A'];
                var got = image[bx * 8 + 4, by * 8 + 4];
                Assert.True(Math.Abs(got.R - want.R) <= 12 && Math.Abs(got.G - want.G) <= 12 && Math.Abs(got.B - want.B) <= 12,
                    $"orientation {orientation}: block ({bx}, {by}) is {got}, expected block {rows[by][bx]} {want}");
            }
    }

    [Fact]
    public void Malformed_exif_is_ignored()
    {
        var app1 = ImageBytes.ExifApp1(6, bigEndian: false);
        app1[10 + 4] = 0xFF; // IFD0 offset far past the end
        var image = ImageLoader.Load(ImageBytes.SpliceAfterSoi(BlocksJpeg(), app1));
        Assert.Equal((24, 16), (image.Width, image.Height));
    }

    static byte[] Encode(byte[] pixels, int width, int height, ColorComponents components)
    {
        var stream = new MemoryStream();
        new ImageWriter().WritePng(pixels, width, height, components, stream);
        return stream.ToArray();
    }
}
