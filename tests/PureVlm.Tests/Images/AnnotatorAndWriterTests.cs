using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

public class AnnotatorAndWriterTests
{
    static RgbImage Grey(int width, int height) => RgbImage.FromPixels(width, height, Enumerable.Repeat((byte)128, width * height * 3).ToArray());

    static bool Is(RgbImage image, int x, int y, (byte R, byte G, byte B) colour) => image[x, y] == colour;

    [Fact]
    public void Box_outline_covers_exactly_the_border_pixels_and_the_input_is_unchanged()
    {
        var image = Grey(100, 80);
        var box = new LabelledBox(10, 20, 50, 60, "");
        var colour = ImageAnnotator.Colours[0];

        var drawn = ImageAnnotator.Draw(image, [box], thickness: 2);

        Assert.All(image.Pixels, p => Assert.Equal(128, p));
        for (int y = 0; y < 80; y++)
            for (int x = 0; x < 100; x++)
            {
                bool inside = x >= 10 && x < 50 && y >= 20 && y < 60;
                bool border = inside && (x < 12 || x >= 48 || y < 22 || y >= 58);
                Assert.True(Is(drawn, x, y, border ? colour : ((byte)128, (byte)128, (byte)128)), $"pixel ({x}, {y}) is {drawn[x, y]}, border={border}");
            }
    }

    [Fact]
    public void Label_sits_on_a_tab_above_the_box_and_boxes_take_colours_in_turn()
    {
        var image = Grey(100, 80);
        var drawn = ImageAnnotator.Draw(image, [new LabelledBox(10, 20, 50, 60, "HI"), new LabelledBox(60, 30, 90, 70, "x")]);

        // Tab for "HI": rows 20 - 9 .. 19, columns 10 .. 10 + 11 + 2; ink white on red (the first colour is dark enough).
        var red = ImageAnnotator.Colours[0];
        Assert.True(Is(drawn, 10, 11, red));           // tab corner (padding)
        Assert.True(Is(drawn, 11, 12, (255, 255, 255))); // top-left of 'H' (left stem)
        Assert.True(Is(drawn, 12, 12, red));           // gap inside 'H'
        Assert.True(Is(drawn, 12, 15, (255, 255, 255))); // 'H' cross bar, row 3
        Assert.True(Is(drawn, 24, 11, (128, 128, 128))); // just right of the tab
        Assert.True(Is(drawn, 60, 50, ImageAnnotator.Colours[1])); // second box, left edge
    }

    [Fact]
    public void Label_goes_inside_when_the_box_touches_the_top_and_boxes_past_the_edges_are_clipped()
    {
        var image = Grey(40, 30);
        var drawn = ImageAnnotator.Draw(image, [new LabelledBox(-5, 0, 100, 100, "A")], thickness: 3);
        var colour = ImageAnnotator.Colours[0];
        Assert.True(Is(drawn, 0, 0, colour));
        Assert.True(Is(drawn, 39, 29, (128, 128, 128))); // right and bottom edges are outside the image
        // Tab below the 3-px top edge: columns [-5, 2), rows [3, 12); 'A' starts at (-4, 4), its row 1 inks columns 0 and 4.
        Assert.True(Is(drawn, 0, 5, (255, 255, 255)));
        Assert.True(Is(drawn, 1, 5, colour));
        Assert.True(Is(drawn, 2, 5, (128, 128, 128)));
        Assert.True(Is(drawn, 1, 2, colour));            // top edge
        Assert.True(Is(drawn, 1, 12, (128, 128, 128)));  // below the tab
    }

    [Fact]
    public void Detection_box_rounds_to_whole_pixels()
    {
        var box = LabelledBox.FromPixels([99.6f, 25.2f, 199.8f, 74.5f], "circle");
        Assert.Equal(new LabelledBox(100, 25, 200, 74, "circle"), box); // 74.5 rounds to even, as Math.Round does
    }

    [Fact]
    public void Every_font_glyph_is_distinct_and_fits_five_columns()
    {
        var glyphs = BitmapFont.Supported.Select(c => Convert.ToHexString(BitmapFont.Glyph(c))).ToList();
        Assert.Equal(glyphs.Count, glyphs.Distinct().Count());
        Assert.All(BitmapFont.Supported, c => Assert.All(BitmapFont.Glyph(c).ToArray(), row => Assert.True(row < 32)));
        Assert.Equal(Convert.ToHexString(BitmapFont.Glyph('A')), Convert.ToHexString(BitmapFont.Glyph('a')));
    }

    [Fact]
    public void Saved_png_loads_back_identically_and_no_temp_file_is_left()
    {
        string dir = Directory.CreateTempSubdirectory("purevlm-png-").FullName;
        try
        {
            var rng = new Random(3);
            var pixels = new byte[13 * 7 * 3];
            rng.NextBytes(pixels);
            var image = RgbImage.FromPixels(13, 7, pixels);
            string path = Path.Combine(dir, "out.png");

            PngWriter.Save(image, path);
            PngWriter.Save(image, path); // overwriting an earlier output is fine

            Assert.Equal(pixels, ImageLoader.Load(path).Pixels);
            Assert.Equal(["out.png"], Directory.GetFiles(dir).Select(Path.GetFileName));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Saving_over_the_input_image_is_refused()
    {
        string dir = Directory.CreateTempSubdirectory("purevlm-png-").FullName;
        try
        {
            string input = Path.Combine(dir, "in.png");
            File.Copy(Path.Combine(TestPaths.Fixture("paligemma-tiny"), "input.png"), input);
            var annotated = ImageAnnotator.Draw(ImageLoader.Load(input), [new LabelledBox(1, 1, 20, 20, "box")]);
            var before = File.ReadAllBytes(input);

            var e = Assert.Throws<IOException>(() => PngWriter.Save(annotated, Path.Combine(dir, ".", "in.png")));

            Assert.Contains("refusing to overwrite the input image", e.Message);
            Assert.Equal(before, File.ReadAllBytes(input));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
