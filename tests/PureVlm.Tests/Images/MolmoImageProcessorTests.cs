using PureVlm.Formats.Images;
using PureVlm.Tests.Models;
using Xunit;
using Xunit.Abstractions;

namespace PureVlm.Tests.Images;

/// <summary>Molmo's multi-crop preprocessing of molmo-tiny's input.png against the reference's goldens.</summary>
public class MolmoImageProcessorTests(ITestOutputHelper output)
{
    static readonly string Dir = TestPaths.Fixture("molmo-tiny");

    [Fact]
    public void Tiling_follows_select_tiling_in_float32()
    {
        // README: 139×57 less the 2 + 2 margin patches → h' = 1, w' = 83 → 1 row × 3 columns ((2, 3) ties and loses on size).
        Assert.Equal((1, 3), MolmoImageProcessor.SelectTiling(57 - 56, 139 - 56, 28, 12));
        Assert.Equal((1, 1), MolmoImageProcessor.SelectTiling(28, 28, 28, 12));
        Assert.Equal((2, 2), MolmoImageProcessor.SelectTiling(56, 56, 28, 12));
        Assert.Equal((3, 3), MolmoImageProcessor.SelectTiling(1000, 1000, 28, 12)); // every tiling shrinks: the largest scale (3·28 / 1000, also for 3×4 and 4×3), fewest crops on ties
    }

    [Fact]
    public void Canvases_match_the_reference_resampler()
    {
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        var image = ImageLoader.Load(Path.Combine(Dir, "input.png"));
        foreach (var (name, h, w) in new[] { ("image.tiles_resized", 84, 140), ("image.global_resized", 84, 84) })
        {
            var (canvas, _) = MolmoImageProcessor.ResizeAndPad(image, h, w);
            var (diff, _) = GoldenFixture.Compare(canvas, g[name].Span);
            output.WriteLine($"{name}: max|diff| {diff:E2}");
            Assert.True(diff <= 5e-6f, $"{name}: max|diff| {diff:E2} > 5e-6 (README: a float32 resampler)");
        }
    }

    [Fact]
    public void Crops_masks_and_cell_tokens_match_golden()
    {
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        var processor = MolmoImageProcessor.FromCheckpoint(Dir);
        var crops = processor.Process(ImageLoader.Load(Path.Combine(Dir, "input.png")));
        Assert.Equal((4, 1, 3), (crops.Crops, crops.TileRows, crops.TileCols));
        Assert.Equal([(3, 3), (3, 5)], crops.TokenGrids);
        Assert.Equal(g["image_masks"].Data.ToArray(), crops.Masks); // exact, the one-crop shift and the −1 row included
        Assert.Equal(MolmoModelTests.GoldenCrops(g).CellTokens, crops.CellTokens);
        var (diff, scale) = GoldenFixture.Compare(crops.Images, g["images"].Span);
        output.WriteLine($"images: max|diff| {diff:E2} (rel {diff / scale:E2})");
        Assert.True(diff <= GoldenFixture.Rtol * scale, $"images: max|diff| {diff:E2} (rel {diff / scale:E2})");
    }

    [Theory]
    [InlineData(57, 139)]
    [InlineData(139, 57)]
    [InlineData(200, 200)]
    [InlineData(30, 400)]
    [InlineData(640, 480)]
    public void Every_image_token_gets_exactly_one_cell_row_major_within_each_tile(int width, int height)
    {
        // Multi-row tilings too (the README's case is 1 × 3); the reference's patch-ordering bookkeeping, restated
        // in Python for tilings up to 12 × 1 at molmo-tiny's and Molmo-7B-D's sizes, gives this same direct map.
        var processor = MolmoImageProcessor.FromCheckpoint(Dir);
        var crops = processor.Process(RgbImage.FromPixels(width, height, new byte[width * height * 3]));
        var used = crops.CellTokens.Where(t => t >= 0).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, crops.ImageTokens), used);
        for (int c = 0; c < crops.Crops; c++)
        {
            var kept = crops.CellTokens.Skip(c * 9).Take(9).Where(t => t >= 0).ToArray();
            Assert.Equal(kept.Order(), kept);
        }
    }

    [Fact]
    public void Images_are_exact_given_the_golden_canvases()
    {
        // README: images = float32((canvas − mean) / std), cropped, (dy, dx, c) — bit-exact from the golden canvases.
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        var processor = MolmoImageProcessor.FromCheckpoint(Dir);
        var global = g["image.global_resized"].Data.ToArray();
        var want = g["images"].Span[..(36 * 588)];
        int o = 0;
        for (int py = 0; py < 6; py++)
            for (int px = 0; px < 6; px++)
                for (int dy = 0; dy < 14; dy++)
                    for (int dx = 0; dx < 14; dx++)
                        for (int c = 0; c < 3; c++, o++)
                            Assert.Equal(want[o], (global[((py * 14 + dy) * 84 + px * 14 + dx) * 3 + c] - processor.Mean[c]) / processor.Std[c]);
    }
}
