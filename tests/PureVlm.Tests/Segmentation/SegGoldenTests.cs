using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Segmentation;
using Xunit;
using static PureVlm.Tests.Segmentation.SegFixture;

namespace PureVlm.Tests.Segmentation;

/// <summary>The VQ-VAE decoder and both box conventions against the goldens, at the tolerances of the fixture's README.</summary>
public class SegGoldenTests
{
    static readonly string[] Activations =
    [
        "embeddings", "decoder.0", "decoder.2.net.0", "decoder.2.net.2", "decoder.2.net.4", "decoder.2",
        "decoder.3.net.0", "decoder.3.net.2", "decoder.3.net.4", "decoder.3", "decoder.4", "decoder.6", "decoder.8", "decoder.10",
        "decoder.12", "mask64",
    ];

    static float[] Decode(SegCase c, IForwardObserver? observer = null)
    {
        var mask = new float[64 * 64];
        Decoder.Decode(c.Indices, mask, new ForwardContext { Observer = observer }, 0);
        return mask;
    }

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void Every_activation_matches_the_golden(string name)
    {
        var c = Case(name);
        var recorder = new TraceRecorder();
        var mask = Decode(c, recorder);
        Assert.Equal(Activations.Select(a => "seg.0." + a), recorder.Names);
        foreach (var a in Activations)
        {
            var (golden, shape) = Golden($"{name}.{a}");
            var got = recorder["seg.0." + a];
            Assert.Equal(shape, got.Shape);
            var values = got.Span.ToArray();
            if (a == "embeddings") { Assert.Equal(golden, values); continue; }
            float scale = golden.Max(Math.Abs), worst = 0;
            for (int i = 0; i < golden.Length; i++) worst = Math.Max(worst, Math.Abs(values[i] - golden[i]));
            Assert.True(worst <= 1e-4f * scale, $"{name}.{a}: max |diff| {worst:g3} > 1e-4 × {scale:g3}");
        }
        Assert.Equal(mask, recorder["seg.0.mask64"].Span.ToArray());
    }

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void Boxes_and_the_empty_decision_are_exact_in_both_conventions(string name)
    {
        var c = Case(name);
        Assert.Equal(Golden($"{name}.bv.box_px").Data.Select(v => (int)v), Tuple(MaskPaste.Box(c.Loc, c.Width, c.Height, MaskConvention.BigVision)));
        Assert.Equal(Golden($"{name}.demo.box_px").Data.Select(v => (int)v), Tuple(MaskPaste.Box(c.Loc, c.Width, c.Height, MaskConvention.Demo)));
        Assert.Equal(c.BigVisionValid, MaskPaste.IsDrawable(c.Loc, c.Indices, c.Width, c.Height, MaskConvention.BigVision));
        Assert.Equal(c.DemoDrawn, MaskPaste.IsDrawable(c.Loc, c.Indices, c.Width, c.Height, MaskConvention.Demo));
        Assert.Equal(c.BigVisionValid, Has($"{name}.bv.mask_box"));
        Assert.Equal(c.DemoDrawn, Has($"{name}.demo.mask_box_u8"));
    }

    static int[] Tuple((int Y1, int X1, int Y2, int X2) b) => [b.Y1, b.X1, b.Y2, b.X2];

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void BigVision_paste_of_the_golden_mask64_is_exact(string name)
    {
        var c = Case(name);
        var mask = MaskPaste.Paste(Golden($"{name}.mask64").Data, c.Loc, c.Width, c.Height, MaskConvention.BigVision);
        var full = Golden($"{name}.bv.mask_full").Data;
        if (!c.BigVisionValid)
        {
            Assert.Null(mask);
            Assert.All(full, v => Assert.Equal(0f, v));
            return;
        }
        Assert.NotNull(mask);
        var (box, shape) = Golden($"{name}.bv.mask_box");
        Assert.Equal([mask.Y2 - mask.Y1, mask.X2 - mask.X1], shape);
        for (int i = 0; i < box.Length; i++)
            Assert.True(Math.Abs(mask.BoxValues[i] - box[i]) <= 1e-6f, $"{name}: mask_box[{i}] {mask.BoxValues[i]} vs {box[i]}");
        Assert.Equal(full, mask.Pixels.Select(p => p / 255f));
    }

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void BigVision_end_to_end_is_exact_except_at_borderline_pixels(string name)
    {
        var c = Case(name);
        var mask = MaskPaste.Paste(Decode(c), c.Loc, c.Width, c.Height, MaskConvention.BigVision);
        Assert.Equal(c.BigVisionValid, mask != null);
        if (mask == null) return;
        var full = Golden($"{name}.bv.mask_full").Data;
        var (box, _) = Golden($"{name}.bv.mask_box");
        int boxW = mask.X2 - mask.X1, skipped = 0;
        for (int y = 0; y < c.Height; y++)
            for (int x = 0; x < c.Width; x++)
            {
                int i = y * c.Width + x;
                bool inBox = y >= mask.Y1 && y < mask.Y2 && x >= mask.X1 && x < mask.X2;
                if (inBox && Math.Abs(box[(y - mask.Y1) * boxW + x - mask.X1]) < 1e-3f) { skipped++; continue; }
                Assert.True(full[i] == mask.Pixels[i] / 255f, $"{name}: pixel ({x}, {y}) is {mask.Pixels[i]}, golden {full[i]}");
            }
        Assert.Equal(c.BorderlinePixels, skipped);
    }

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void Demo_paste_of_the_golden_mask64_u8_is_exact(string name)
    {
        var c = Case(name);
        var u8 = Golden($"{name}.demo.mask64_u8").Data.Select(v => (byte)v).ToArray();
        Assert.Equal(u8, MaskPaste.DemoBytes(Golden($"{name}.mask64").Data));
        var full = Golden($"{name}.demo.mask_full_u8").Data;
        if (!c.DemoDrawn)
        {
            Assert.Null(MaskPaste.Paste(Golden($"{name}.mask64").Data, c.Loc, c.Width, c.Height, MaskConvention.Demo));
            Assert.All(full, v => Assert.Equal(0f, v));
            return;
        }
        var (y1, x1, y2, x2) = MaskPaste.Box(c.Loc, c.Width, c.Height, MaskConvention.Demo);
        var pixels = new byte[c.Width * c.Height];
        var box = MaskPaste.PasteDemoBytes(u8, x1, x2 - x1, y1, y2 - y1, pixels, c.Width);
        Assert.Equal(Golden($"{name}.demo.mask_box_u8").Data, box);
        Assert.Equal(full, pixels.Select(p => (float)p));
        // The public path from the float mask gives the same pixels.
        Assert.Equal(pixels, MaskPaste.Paste(Golden($"{name}.mask64").Data, c.Loc, c.Width, c.Height, MaskConvention.Demo)!.Pixels);
    }

    [Theory]
    [MemberData(nameof(CaseNames), MemberType = typeof(SegFixture))]
    public void Demo_end_to_end_is_exact_except_at_borderline_cells_then_within_one(string name)
    {
        var c = Case(name);
        var mask64 = Decode(c);
        var golden64 = Golden($"{name}.mask64").Data;
        var goldenU8 = Golden($"{name}.demo.mask64_u8").Data;
        var ours = MaskPaste.DemoBytes(mask64);
        var up = MaskPaste.DemoBytes(golden64.Select(v => v + 1e-4f).ToArray());
        var down = MaskPaste.DemoBytes(golden64.Select(v => v - 1e-4f).ToArray());
        for (int i = 0; i < ours.Length; i++)
            if (up[i] == goldenU8[i] && down[i] == goldenU8[i])
                Assert.True(ours[i] == goldenU8[i], $"{name}: mask64_u8[{i}] is {ours[i]}, golden {goldenU8[i]}");
        var mask = MaskPaste.Paste(mask64, c.Loc, c.Width, c.Height, MaskConvention.Demo);
        Assert.Equal(c.DemoDrawn, mask != null);
        if (mask == null) return;
        var full = Golden($"{name}.demo.mask_full_u8").Data;
        for (int i = 0; i < full.Length; i++)
            Assert.True(Math.Abs(mask.Pixels[i] - full[i]) <= 1, $"{name}: demo pixel {i} is {mask.Pixels[i]}, golden {full[i]}");
    }

    [Fact]
    public void Decoding_allocates_nothing_once_warm()
    {
        var c = Cases[0];
        var mask = new float[64 * 64];
        var context = new ForwardContext();
        Decoder.Decode(c.Indices, mask, context);
        Assert.Equal(0, AllocationProbe.MinimumAllocated(() => Decoder.Decode(c.Indices, mask, context), calls: 3));
    }
}
