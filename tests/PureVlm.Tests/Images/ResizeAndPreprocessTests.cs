using PureVlm.Formats;
using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

public class ResizeAndPreprocessTests
{
    public static TheoryData<string, int> Fixtures => new() { { "paligemma-tiny", 56 }, { "paligemma2-tiny", 84 } };

    static float[] Golden(string fixture, string name)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(TestPaths.Fixture(fixture), "golden.safetensors"));
        return file[name].ToTensor().Span.ToArray();
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Bicubic_resize_of_input_png_equals_golden_image_resized_exactly(string fixture, int size)
    {
        var input = ImageLoader.Load(Path.Combine(TestPaths.Fixture(fixture), "input.png"));
        Assert.Equal((97, 71), (input.Width, input.Height));

        var resized = BicubicResampler.Resize(input, size, size);

        var want = Golden(fixture, "image.resized"); // [H, W, 3] u8 values as f32
        Assert.Equal(want.Length, resized.Pixels.Length);
        int maxDiff = 0, mismatches = 0;
        for (int i = 0; i < want.Length; i++)
        {
            int diff = Math.Abs(resized.Pixels[i] - (int)want[i]);
            maxDiff = Math.Max(maxDiff, diff);
            if (diff != 0) mismatches++;
        }
        Assert.True(maxDiff == 0, $"{fixture}: {mismatches} of {want.Length} bytes differ, max |diff| {maxDiff}");
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Pixel_values_from_golden_image_resized_equal_golden_exactly(string fixture, int size)
    {
        var resizedBytes = Golden(fixture, "image.resized").Select(v => checked((byte)v)).ToArray();
        var resized = RgbImage.FromPixels(size, size, resizedBytes);
        var preprocessor = ImagePreprocessor.FromCheckpoint(TestPaths.Fixture(fixture));

        var got = preprocessor.Preprocess(resized);

        Assert.Equal(Golden(fixture, "pixel_values"), got);
    }

    [Theory, MemberData(nameof(Fixtures))]
    public void Pixel_values_end_to_end_from_input_png_equal_golden_exactly(string fixture, int size)
    {
        var preprocessor = ImagePreprocessor.FromCheckpoint(TestPaths.Fixture(fixture));
        Assert.Equal((size, size), (preprocessor.Height, preprocessor.Width));

        var got = preprocessor.PixelValues(ImageLoader.Load(Path.Combine(TestPaths.Fixture(fixture), "input.png")));

        Assert.Equal(new[] { 1, 3, size, size }, got.Shape);
        Assert.Equal(Golden(fixture, "pixel_values"), got.Span.ToArray());
    }

    [Fact]
    public void Demo_model_preprocessor_config_is_read()
    {
        var p = ImagePreprocessor.FromCheckpoint(TestPaths.DemoModel);
        Assert.Equal((112, 112), (p.Height, p.Width));
        Assert.Equal(0.00392156862745098, p.RescaleFactor);
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, p.Mean);
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, p.Std);
    }

    [Theory]
    [InlineData("01-blue-square")]
    [InlineData("03-red-circle")]
    [InlineData("08-yellow-circle")]
    public void Bicubic_resize_of_shape_pictures_equals_pil_9_4_exactly(string sample)
    {
        var image = ImageLoader.Load(Path.Combine(TestPaths.Data, "images", "samples-v1", sample + ".png"));
        var want = File.ReadAllBytes(Path.Combine(TestPaths.Data, "images", "pil-bicubic", sample + ".112x112.rgb.bin"));

        var got = BicubicResampler.Resize(image, 112, 112);

        Assert.Equal(want, got.Pixels);
    }
}
