using PureVlm.Formats;
using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>HF <c>CLIPImageProcessor</c> (LLaVA-1.5): shortest-edge resize, centre crop, CLIP normalisation.</summary>
public class ClipPreprocessTests
{
    static string Dir => TestPaths.Fixture("llava-tiny");

    static float[] Golden(string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Dir, "golden.safetensors"));
        return file[name].ToTensor().Span.ToArray();
    }

    static RgbImage GoldenImage(string name, int width, int height) =>
        RgbImage.FromPixels(width, height, Golden(name).Select(v => checked((byte)v)).ToArray());

    static ImagePreprocessor Fixture() => ImagePreprocessor.FromCheckpoint(Dir);

    [Fact]
    public void Fixture_config_reads_as_shortest_edge_56_then_crop_56x56_with_clip_mean_and_std()
    {
        var p = Fixture();
        Assert.Equal((56, 56, 56), (p.ShortestEdge, p.Height, p.Width));
        Assert.Equal(new[] { 0.48145466f, 0.4578275f, 0.40821073f }, p.Mean);
        Assert.Equal(new[] { 0.26862954f, 0.26130258f, 0.27577711f }, p.Std);
        Assert.Equal(0.00392156862745098, p.RescaleFactor);
    }

    [Fact]
    public void Resize_of_input_png_equals_golden_image_resized_exactly()
    {
        var input = ImageLoader.Load(Path.Combine(Dir, "input.png"));
        Assert.Equal((98, 71), (input.Width, input.Height));

        var resized = Fixture().Resize(input);

        Assert.Equal((77, 56), (resized.Width, resized.Height)); // golden [56, 77, 3]
        Assert.Equal(Golden("image.resized"), resized.Pixels.Select(b => (float)b).ToArray());
    }

    [Fact]
    public void Center_crop_of_golden_image_resized_equals_golden_image_cropped_exactly()
    {
        var cropped = Fixture().CenterCrop(GoldenImage("image.resized", 77, 56));

        Assert.Equal((56, 56), (cropped.Width, cropped.Height));
        Assert.Equal(Golden("image.cropped"), cropped.Pixels.Select(b => (float)b).ToArray());
    }

    [Fact]
    public void Pixel_values_from_golden_image_cropped_equal_golden_exactly()
    {
        Assert.Equal(Golden("pixel_values"), Fixture().Preprocess(GoldenImage("image.cropped", 56, 56)));
    }

    [Fact]
    public void Pixel_values_end_to_end_from_input_png_equal_golden_exactly()
    {
        var got = Fixture().PixelValues(ImageLoader.Load(Path.Combine(Dir, "input.png")));

        Assert.Equal(new[] { 1, 3, 56, 56 }, got.Shape);
        Assert.Equal(Golden("pixel_values"), got.Span.ToArray());
    }

    [Theory]
    [InlineData(56, 98, 71, 77, 56)]     // the fixture: int(56 · 98 / 71) = int(77.29)
    [InlineData(56, 71, 98, 56, 77)]     // portrait: the width is the short side
    [InlineData(56, 71, 71, 56, 56)]     // square
    [InlineData(224, 640, 480, 298, 224)] // 298.67 truncates (rounding would give 299)
    [InlineData(336, 300, 200, 504, 336)] // exact quotient
    public void Shortest_edge_size_truncates_the_long_side(int edge, int width, int height, int wantWidth, int wantHeight)
    {
        var p = new ImagePreprocessor(edge, edge, shortestEdge: edge);
        Assert.Equal((wantWidth, wantHeight), p.ResizedSize(width, height));
    }

    [Fact]
    public void Long_side_beyond_the_size_limit_is_an_invalid_image()
    {
        var p = new ImagePreprocessor(8, 8, shortestEdge: 100);
        var e = Assert.Throws<InvalidImageException>(() => p.ResizedSize(ImageLoader.MaxSide, 1));
        Assert.Contains("1638400", e.Message);
    }

    /// <summary>A W × H image whose pixel (x, y) is (10x, 10y, 7), so every output pixel names its source.</summary>
    static RgbImage Coordinates(int width, int height)
    {
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                (px[3 * (y * width + x)], px[3 * (y * width + x) + 1], px[3 * (y * width + x) + 2]) = ((byte)(10 * x), (byte)(10 * y), 7);
        return RgbImage.FromPixels(width, height, px);
    }

    [Fact]
    public void Non_square_crop_with_odd_margins_takes_the_floor_offset()
    {
        // 7 × 6 → 4 wide × 3 high: left = (7 − 4) // 2 = 1, top = (6 − 3) // 2 = 1 (rounding half up would give 2 and 2).
        var got = new ImagePreprocessor(3, 4, shortestEdge: 6).CenterCrop(Coordinates(7, 6));

        byte[] want =
        [
            10, 10, 7,  20, 10, 7,  30, 10, 7,  40, 10, 7,
            10, 20, 7,  20, 20, 7,  30, 20, 7,  40, 20, 7,
            10, 30, 7,  20, 30, 7,  30, 30, 7,  40, 30, 7,
        ];
        Assert.Equal((4, 3), (got.Width, got.Height));
        Assert.Equal(want, got.Pixels);
    }

    [Fact]
    public void Crop_taller_than_the_image_pads_with_zeros_as_transformers_does()
    {
        // 3 × 2 → 2 wide × 5 high. Columns: left = (3 − 2) // 2 = 0. Rows: HF pads ceil((5 − 2) / 2) = 2 zero rows above,
        // 1 below, and crops from row 0 of the padded image.
        var got = new ImagePreprocessor(5, 2, shortestEdge: 2).CenterCrop(Coordinates(3, 2));

        byte[] want =
        [
            0, 0, 0,    0, 0, 0,
            0, 0, 0,    0, 0, 0,
            0, 0, 7,    10, 0, 7,
            0, 10, 7,   10, 10, 7,
            0, 0, 0,    0, 0, 0,
        ];
        Assert.Equal((2, 5), (got.Width, got.Height));
        Assert.Equal(want, got.Pixels);
    }

    [Fact]
    public void Image_already_of_the_output_size_passes_through_resize_and_crop()
    {
        var image = Coordinates(56, 56);
        Assert.Same(image, Fixture().ModelView(image));
    }
}
