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
}
