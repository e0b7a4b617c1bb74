using System.Text.Json;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Outputs;
using PureVlm.Segmentation;
using PureVlm.Tests.Cli;
using Xunit;
using static PureVlm.Tests.Segmentation.SegFixture;

namespace PureVlm.Tests.Segmentation;

/// <summary><c>purevlm masks</c>, run's segment outputs (JSON with COCO RLE, mask PNGs, annotation) and the RLE itself.</summary>
[Collection(ConsoleCollection.Name)]
public class SegmentOutputTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    static string TempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"purevlm-seg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>COCO uncompressed RLE decoded independently: runs alternate 0, 1, … over column-major pixels.</summary>
    static bool[] DecodeRle(JsonElement rle)
    {
        int h = rle.GetProperty("size")[0].GetInt32(), w = rle.GetProperty("size")[1].GetInt32();
        var columnMajor = new List<bool>();
        bool value = false;
        foreach (var run in rle.GetProperty("counts").EnumerateArray())
        {
            columnMajor.AddRange(Enumerable.Repeat(value, run.GetInt32()));
            value = !value;
        }
        Assert.Equal(h * w, columnMajor.Count);
        var rowMajor = new bool[h * w];
        for (int i = 0; i < columnMajor.Count; i++) rowMajor[i % h * w + i / h] = columnMajor[i];
        return rowMajor;
    }

    [Theory]
    [InlineData("bigvision")]
    [InlineData("demo")]
    public void Masks_json_rle_round_trips_and_png_equals_the_mask(string convention)
    {
        string dir = TempDir();
        try
        {
            // Two segments in one answer: both cases' masks, each over the same 320×240 image.
            var a = Case("center");
            var b = Case("small_trunc");
            string text = a.Text + " ; " + b.Text;
            var r = Run("masks", "--decoder", Npz, "--text", text, "--size", "320x240", "--convention", convention, "--json", "--out", dir);
            Assert.True(r.Code == 0, r.Err);
            using var doc = JsonDocument.Parse(r.Out);
            var segments = doc.RootElement.GetProperty("segments");
            Assert.Equal(2, segments.GetArrayLength());
            var expected = LocationTokens.ParseSegments(text, 320, 240)
                .Select((s, i) => MaskPaste.Decode(Decoder, s, 320, 240, SegmentOutput(convention), new PureVlm.Models.ForwardContext(), i)).ToList();
            for (int i = 0; i < 2; i++)
            {
                var s = segments[i];
                var mask = expected[i].Mask!;
                Assert.Equal(i == 0 ? "cat" : expected[1].Label, s.GetProperty("label").GetString());
                Assert.Equal(expected[i].Codes, s.GetProperty("codes").EnumerateArray().Select(v => v.GetInt32()));
                var pixels = DecodeRle(s.GetProperty("mask"));
                Assert.Equal(Enumerable.Range(0, pixels.Length).Select(p => mask.Pixels[p] >= 128), pixels);
                Assert.Equal(pixels.Count(p => p), s.GetProperty("area").GetInt32());
                Assert.True(mask.Area > 0);
                var png = ImageLoader.Load(Path.Combine(dir, $"mask-{i}.png"));
                Assert.Equal((320, 240), (png.Width, png.Height));
                for (int p = 0; p < pixels.Length; p++) Assert.Equal(mask.Pixels[p], png.Pixels[p * 3]);
            }
            if (convention == "bigvision") Assert.Equal(10895, segments[0].GetProperty("area").GetInt32()); // the fixture's on-pixel count
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static MaskConvention SegmentOutput(string convention) => convention == "demo" ? MaskConvention.Demo : MaskConvention.BigVision;

    [Theory]
    [InlineData("bigvision", "bv")]
    [InlineData("demo", "demo")]
    public void Masks_trace_holds_every_stage_and_matches_the_goldens(string convention, string prefix)
    {
        string dir = TempDir();
        try
        {
            foreach (var c in Cases)
            {
                string trace = Path.Combine(dir, c.Name + ".safetensors");
                var r = Run("masks", "--decoder", Npz, "--text", c.Text, "--size", $"{c.Width}x{c.Height}", "--convention", convention, "--trace", trace);
                Assert.True(r.Code == 0, r.Err);
                using var file = SafeTensorsFile.Open(trace);
                bool drawn = prefix == "bv" ? c.BigVisionValid : c.DemoDrawn;
                Assert.Contains("seg.0.embeddings", file.Names);
                Assert.Contains("seg.0.decoder.3.net.4", file.Names);
                Assert.Contains("seg.0.mask64", file.Names);
                Assert.Equal(drawn, file.Contains("seg.0.mask_box"));
                Assert.Equal(Golden($"{c.Name}.{prefix}.box_px").Data, Floats(file["seg.0.box_px"]));
                var full = Floats(file["seg.0.mask_full"]);
                var golden = Golden($"{c.Name}.{(prefix == "bv" ? "bv.mask_full" : "demo.mask_full_u8")}").Data;
                // Exact except the borderline pixels (big_vision) or ±1 (demo), as the end-to-end golden tests check in detail.
                int differing = full.Zip(golden).Count(p => p.First != p.Second);
                if (prefix == "bv") Assert.InRange(differing, 0, c.BorderlinePixels);
                else Assert.All(full.Zip(golden), p => Assert.InRange(p.First - p.Second, -1, 1));
                if (!drawn) Assert.All(full, v => Assert.Equal(0f, v));
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    static float[] Floats(Tensors.StoredTensor t)
    {
        var data = new float[t.ElementCount];
        t.ReadFloats(0, data);
        return data;
    }

    [Fact]
    public void VlmModel_takes_the_decoder_it_is_given_or_none()
    {
        using (var plain = VlmModel.Load(TestPaths.DemoModel)) Assert.Null(plain.SegmentationDecoder); // no vae-oid.npz beside it
        using var withMasks = VlmModel.Load(TestPaths.DemoModel, segmentationDecoder: Npz);
        Assert.Equal(Npz, withMasks.SegmentationDecoder!.Path);
        Assert.Throws<InvalidModelFileException>(() => VlmModel.Load(TestPaths.DemoModel, segmentationDecoder: Npz + ".absent"));
    }

    [Fact]
    public void Masks_refuses_bad_arguments_in_one_line()
    {
        var c = Case("center");
        foreach (var (args, mention) in new (string[], string)[]
        {
            (["masks", "--decoder", Npz, "--text", c.Text, "--size", "320"], "--size 320"),
            (["masks", "--decoder", Npz, "--text", c.Text, "--size", "320x240", "--convention", "coco"], "--convention coco"),
            (["masks", "--decoder", Npz, "--text", "<loc0001> cat", "--size", "320x240"], "no segment"),
            (["masks", "--decoder", "/nonexistent/vae-oid.npz", "--text", c.Text, "--size", "320x240"], "/nonexistent/vae-oid.npz"),
        })
        {
            var r = Run(args);
            Assert.NotEqual(0, r.Code);
            Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(mention, r.Err);
        }
    }

    [Fact]
    public void Run_json_and_annotate_show_segment_masks()
    {
        var c = Case("center");
        var segment = MaskPaste.Decode(Decoder, LocationTokens.ParseSegments(c.Text, c.Width, c.Height)[0], c.Width, c.Height,
            MaskConvention.BigVision, new PureVlm.Models.ForwardContext(), 0);
        var result = new GenerationResult(c.Text, [], LocationTokens.ParseDetections(c.Text, c.Width, c.Height), [segment],
            new GenerationTimings(0, 0, 0, 0, 0));
        using (var doc = JsonDocument.Parse(JsonSerializer.Serialize(PureVlm.Outputs.RunJson.Segment(segment), PureVlm.Cli.CliJson.Options)))
        {
            Assert.Equal(10895, doc.RootElement.GetProperty("area").GetInt32());
            Assert.Equal([240, 320], doc.RootElement.GetProperty("mask").GetProperty("size").EnumerateArray().Select(v => v.GetInt32()));
        }
        string dir = TempDir();
        try
        {
            var gray = RgbImage.FromPixels(c.Width, c.Height, Enumerable.Repeat((byte)128, c.Width * c.Height * 3).ToArray());
            string path = Path.Combine(dir, "annotated.png");
            var err = new StringWriter();
            var old = Console.Error;
            Console.SetError(err);
            try { PureVlm.Cli.Commands.RunCommand.Annotate(gray, result.Detections, result.Segments, path); } finally { Console.SetError(old); }
            Assert.Contains("1 mask(s)", err.ToString());
            var annotated = ImageLoader.Load(path);
            var mask = segment.Mask!;
            var colour = ImageAnnotator.Colours[0];
            // Inside the box, away from its outline and label: tinted where the mask is set, untouched elsewhere.
            for (int y = mask.Y1 + 12; y < mask.Y2 - 3; y++)
                for (int x = mask.X1 + 3; x < mask.X2 - 3; x++)
                {
                    var p = annotated[x, y];
                    if (mask.Contains(x, y))
                        Assert.Equal(((byte)(128 + (colour.R - 128) * ImageAnnotator.MaskOpacity + 0.5f), (byte)(128 + (colour.G - 128) * ImageAnnotator.MaskOpacity + 0.5f)), (p.R, p.G));
                    else Assert.Equal(((byte)128, (byte)128, (byte)128), p);
                }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}

/// <summary>The explain report carries a segment answer's masks as run --json does: COCO RLE and area, snake_case keys.</summary>
public class ExplainReportSegmentTests
{
    [Fact]
    public void Report_segment_holds_the_masks_rle_and_area()
    {
        var c = Case("center");
        var parsed = Assert.Single(LocationTokens.ParseSegments(c.Text, 320, 240));
        var segment = MaskPaste.Decode(Decoder, parsed, 320, 240, MaskConvention.BigVision, new PureVlm.Models.ForwardContext(), 0);
        var mask = segment.Mask!;
        var report = PureVlm.Inspection.ReportSegment.Of(segment);
        Assert.Equal(mask.Area, report.Area);
        Assert.Equal([240, 320], report.Mask!.Size);
        Assert.Equal(mask.ToRle().Counts, report.Mask.Counts);
        Assert.Equal(mask.Area, report.Mask.Counts.Where((_, i) => i % 2 == 1).Sum()); // odd runs are the 1s

        var noMask = PureVlm.Inspection.ReportSegment.Of(parsed); // no decoder: box and codes only
        Assert.Null(noMask.Mask);
        Assert.Null(noMask.Area);
        Assert.Equal(parsed.Codes, noMask.Codes);
    }
}

/// <summary>
/// A segment answer through the whole request: the demo model is steered (by an observer that rewrites its logits)
/// to answer with a fixture case's tokens, and the result carries the mask the decoder makes of them.
/// </summary>
public class SegmentAnswerEndToEndTests
{
    /// <summary>Forces the token at each step: every logit but the wanted one becomes −∞.</summary>
    sealed class Steer(int[] ids) : PureVlm.Models.IForwardObserver
    {
        public bool WantsAttentionProbabilities => false;
        public void OnTensor(string name, PureVlm.Tensors.Tensor tensor, int step)
        {
            if (name != "logits" || step >= ids.Length) return;
            var row = tensor.Data.AsSpan(tensor.Length - tensor.Shape[^1], tensor.Shape[^1]);
            row.Fill(float.NegativeInfinity);
            row[ids[step]] = 0;
        }
    }

    [Fact]
    public void Generated_segment_answer_has_the_decoders_mask()
    {
        var c = Case("center");
        using var model = VlmModel.Load(TestPaths.DemoModel, segmentationDecoder: Npz);
        int[] answer = [.. model.Tokenizer.Encode(c.Text), model.Tokenizer.EosId];
        var image = RgbImage.FromPixels(c.Width, c.Height, new byte[c.Width * c.Height * 3]);
        var result = model.Generate(image, "segment circle", new PureVlm.Runtime.GenerationOptions { Observer = new Steer(answer) });
        Assert.Equal(c.Text, result.Text);

        var segment = Assert.Single(result.Segments);
        var expected = MaskPaste.Decode(Decoder, Assert.Single(LocationTokens.ParseSegments(c.Text, c.Width, c.Height)),
            c.Width, c.Height, MaskConvention.BigVision, new PureVlm.Models.ForwardContext(), 0).Mask!;
        Assert.Equal(expected.Pixels, segment.Mask!.Pixels);
        Assert.True(segment.Mask.Area > 0);
    }
}
