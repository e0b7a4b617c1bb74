using System.Runtime.InteropServices;
using PureVlm.Formats;
using PureVlm.Outputs;
using PureVlm.Segmentation;
using PureVlm.Tensors;

namespace PureVlm.Cli;

/// <summary>How <c>run</c> and <c>masks</c> show segments: JSON with COCO RLE, one PNG per mask, the trace's paste stages.</summary>
static class SegmentOutput
{
    /// <summary>The note printed (once) when an answer has segments but no decoder was given.</summary>
    public const string NoDecoderNote =
        "segment answer: boxes and codes only; for masks pass --seg-decoder vae-oid.npz (Google's PaliGemma mask VQ-VAE) or put vae-oid.npz in the model directory";

    /// <summary>Parses a <c>--convention</c> value.</summary>
    public static MaskConvention Convention(string? value) => value switch
    {
        null or "bigvision" => MaskConvention.BigVision,
        "demo" => MaskConvention.Demo,
        _ => throw new UsageException($"--convention {value}: expected bigvision or demo"),
    };

    /// <summary>Writes <c>DIR/mask-{i}.png</c> for every segment i that has a mask (the folder is created); returns how many.</summary>
    public static int WriteMasks(string directory, IReadOnlyList<Segment> segments)
    {
        Directory.CreateDirectory(directory);
        int written = 0;
        for (int i = 0; i < segments.Count; i++)
        {
            if (segments[i].Mask is not { } mask) continue;
            mask.SavePng(Path.Combine(directory, $"mask-{i}.png"));
            written++;
        }
        return written;
    }

    /// <summary>
    /// The paste stages of segment i as trace tensors, as the goldens hold them: <c>seg.{i}.box_px</c> (I32 y1, x1, y2, x2,
    /// even for an empty box), <c>seg.{i}.mask_box</c> (F32 before the threshold for big_vision, U8 for the demo; drawn
    /// masks only) and <c>seg.{i}.mask_full</c> (U8 [H, W]: 0/1 for big_vision, 0..255 for the demo).
    /// </summary>
    public static IEnumerable<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)> Trace(
        int i, Segment s, int width, int height, MaskConvention convention)
    {
        if (s.Loc.Any(v => (uint)v > MaskPaste.MaxLoc)) yield break;
        var (y1, x1, y2, x2) = MaskPaste.Box(s.Loc, width, height, convention);
        yield return ($"seg.{i}.box_px", DType.I32, [4], MemoryMarshal.AsBytes(new[] { y1, x1, y2, x2 }.AsSpan()).ToArray());
        var mask = s.Mask;
        bool bigVision = convention == MaskConvention.BigVision;
        if (mask != null)
        {
            long[] boxShape = [mask.Y2 - mask.Y1, mask.X2 - mask.X1];
            yield return bigVision
                ? ($"seg.{i}.mask_box", DType.F32, boxShape, MemoryMarshal.AsBytes(mask.BoxValues.AsSpan()).ToArray())
                : ($"seg.{i}.mask_box", DType.U8, boxShape, mask.BoxValues.Select(v => (byte)v).ToArray());
        }
        var full = mask == null ? new byte[width * height] : bigVision ? mask.Pixels.Select(p => (byte)(p / 255)).ToArray() : mask.Pixels;
        yield return ($"seg.{i}.mask_full", DType.U8, [height, width], full);
    }
}
