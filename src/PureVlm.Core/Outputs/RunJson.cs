using System.Text.Encodings.Web;
using System.Text.Json;

namespace PureVlm.Outputs;

/// <summary>
/// The one JSON object that describes an answer, as <c>purevlm run --json</c> prints it and <c>POST /api/generate</c>
/// returns it: text, tokens with probabilities, detections, segments, points, timings.
/// </summary>
public static class RunJson
{
    // Characters as they are (<loc0512>, ▁red), not as \u003C escapes: only what JSON itself requires is escaped.
    static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// A segment as JSON: label, box (pixels [x0, y0, x1, y1], as detections), codes, mask as COCO uncompressed RLE
    /// (<c>{"size": [H, W], "counts": [...]}</c>) and its area in pixels; mask and area are null without a mask.
    /// </summary>
    public static object Segment(Segment s)
    {
        var rle = s.Mask?.ToRle();
        return new
        {
            label = s.Label,
            box = s.Box,
            codes = s.Codes,
            mask = rle == null ? null : new { size = new[] { rle.Height, rle.Width }, counts = rle.Counts },
            area = s.Mask?.Area,
        };
    }

    /// <summary>The answer as one line of JSON; <paramref name="loadSeconds"/> is the model's load time.</summary>
    public static string Serialize(GenerationResult r, double loadSeconds)
    {
        var doc = new
        {
            text = r.Text,
            tokens = r.Tokens.Select(t => new { id = t.Id, text = t.Text, probability = t.Probability }),
            detections = r.Detections.Select(d => new { label = d.Label, box = d.Box }),
            segments = r.Segments.Select(Segment),
            points = r.Points.Select(p => new { label = p.Label, x = p.X, y = p.Y, x_percent = p.XPercent, y_percent = p.YPercent }),
            timings = new
            {
                load_s = loadSeconds,
                image_encode_s = r.Timings.ImageEncodeSeconds,
                prefill_s = r.Timings.PrefillSeconds,
                prefill_tokens = r.Timings.PrefillTokens,
                decode_s = r.Timings.DecodeSeconds,
                decode_tokens = r.Timings.DecodedTokens,
                decode_tok_s = r.Timings.DecodeTokensPerSecond,
            },
        };
        return JsonSerializer.Serialize(doc, Options);
    }
}
