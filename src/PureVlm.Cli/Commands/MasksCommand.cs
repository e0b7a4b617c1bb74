using System.Globalization;
using System.Text.Json;
using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Outputs;
using PureVlm.Segmentation;

namespace PureVlm.Cli.Commands;

static class MasksCommand
{
    const string Help = """
        usage: purevlm masks --decoder FILE --text ANSWER (--size WxH | --image FILE) [options]

        Decodes the masks of a PaliGemma "segment ..." answer without a model: each
        <loc####>x4 <seg###>x16 label becomes a mask over a WxH image, as big_vision does.

          --decoder FILE       vae-oid.npz, Google's PaliGemma mask VQ-VAE
          --text ANSWER        the answer, e.g. "<loc0096><loc0300><loc0700><loc0800><seg101>...<seg017> cat"
          --size WxH           the image's size in pixels, e.g. 640x480
          --image FILE         the image the answer is about (gives the size; needed for --annotate)
          --annotate OUT.png   write the image with each segment's box, label and translucent mask
          --convention C       bigvision (default: big_vision's evaluator, binary mask) or demo (the
                               PaliGemma demo Space: rounded box, bicubic soft mask)
          --out DIR            write DIR/mask-{i}.png per segment (0/255, or 0..255 soft for demo)
          --trace FILE         write every stage to safetensors: seg.{i}.embeddings, seg.{i}.decoder.*,
                               seg.{i}.mask64, seg.{i}.box_px, seg.{i}.mask_box, seg.{i}.mask_full
          --json               print {"segments": [{label, box, codes, mask (COCO RLE), area}]}
        """;

    public static int Run(string[] args)
    {
        var cl = new CommandLine("masks", args, ["--decoder", "--text", "--size", "--image", "--annotate", "--convention", "--out", "--trace"], ["--json"]);
        if (cl.HelpRequested) { Console.Out.Write(Help); return 0; }
        cl.ExpectPositionals(0, "only options");
        string decoderPath = cl.Require("--decoder");
        string text = cl.Require("--text");
        string? imagePath = cl.Get("--image"), annotate = cl.Get("--annotate");
        if (annotate != null && imagePath == null) throw new UsageException("--annotate needs --image");
        var image = imagePath == null ? null : ImageLoader.Load(imagePath);
        var (width, height) = image != null ? (image.Width, image.Height) : Size(cl.Get("--size") ?? throw new UsageException("--size or --image is required (see purevlm masks --help)"));
        var convention = SegmentOutput.Convention(cl.Get("--convention"));
        string? outDir = cl.Get("--out"), tracePath = cl.Get("--trace");

        var decoder = VqVaeDecoder.Load(decoderPath);
        var parsed = LocationTokens.ParseSegments(text, width, height);
        if (parsed.Count == 0) throw new UsageException("--text holds no segment (<loc####>x4 then <seg###>x16, then the label)");
        var recorder = tracePath == null ? null : new TraceRecorder();
        var context = new ForwardContext { Observer = recorder };
        var segments = parsed.Select((s, i) => MaskPaste.Decode(decoder, s, width, height, convention, context, i)).ToList();

        if (cl.Flag("--json"))
            Console.Out.WriteLine(JsonSerializer.Serialize(new { segments = segments.Select(RunJson.Segment) }, CliJson.Options));
        else
            for (int i = 0; i < segments.Count; i++)
            {
                var m = segments[i].Mask;
                Console.Out.WriteLine(m == null
                    ? $"{i} {segments[i].Label}: no mask (empty box or invalid tokens)"
                    : $"{i} {segments[i].Label}: box y {m.Y1}..{m.Y2} x {m.X1}..{m.X2}, {m.Area} pixels");
            }
        if (annotate != null) RunCommand.Annotate(image!, [], segments, annotate);
        if (outDir != null) Console.Error.WriteLine($"wrote {SegmentOutput.WriteMasks(outDir, segments)} mask(s) to {outDir}");
        if (recorder != null)
        {
            recorder.Save(tracePath!, segments.SelectMany((s, i) => SegmentOutput.Trace(i, s, width, height, convention)));
            Console.Error.WriteLine($"wrote {tracePath}");
        }
        return 0;
    }

    static (int Width, int Height) Size(string value)
    {
        var parts = value.Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h) && w is > 0 and <= 1 << 15 && h is > 0 and <= 1 << 15)
            return (w, h);
        throw new UsageException($"--size {value}: expected WxH with each side 1..32768, e.g. 640x480");
    }
}
