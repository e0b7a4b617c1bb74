using System.Globalization;
using System.Net;
using System.Text;
using PureVlm.Formats.Images;

namespace PureVlm.Inspection;

/// <summary>
/// Renders an <see cref="Explanation"/> as one self-contained HTML page: inline CSS, images as PNG data URIs, no script
/// and no network references, so it opens from disk in any browser.
/// </summary>
public static class ReportHtml
{
    const int MinDisplaySide = 224;
    const int ThumbnailSide = 112;

    /// <summary>The HTML page for <paramref name="explanation"/>.</summary>
    public static string Render(Explanation explanation)
    {
        var r = explanation.Report;
        int grid = r.Model.PatchGrid;
        int side = explanation.ModelView.Width;
        int display = side >= MinDisplaySide ? side : side * ((MinDisplaySide + side - 1) / side);
        var large = BicubicResampler.Resize(explanation.ModelView, display, display);
        var small = BicubicResampler.Resize(explanation.ModelView, ThumbnailSide, ThumbnailSide);
        // A video's heatmaps are strips of its frames, each frame drawn small.
        var frames = explanation.FrameViews.Select(f => BicubicResampler.Resize(f, ThumbnailSide, ThumbnailSide)).ToList();
        var tiny = explanation.FrameViews.Select(f => BicubicResampler.Resize(f, ThumbnailSide / 2, ThumbnailSide / 2)).ToList();

        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
         .Append("<title>purevlm explain: ").Append(Esc(r.Request.Prompt)).Append("</title><style>").Append(Css).Append("</style></head><body>\n");
        h.Append("<h1>What the model looked at</h1>\n");
        Summary(h, explanation, large, frames);
        Overview(h, r);
        foreach (var t in r.Tokens) TokenSection(h, r, t, grid, frames.Count > 0 ? frames : [large], frames.Count > 0 ? tiny : [small]);
        h.Append("<footer>Written by purevlm explain (schema ").Append(Esc(r.Schema)).Append("). Heatmaps: attention of the row that produced the token ")
         .Append("to the image tokens of the ").Append(grid).Append('×').Append(grid).Append(" patches, mean over heads, each scaled to its own maximum")
         .Append(r.Request.Frames != null ? " (a video's frames share one scale)" : "").Append("; raw values are in report.json.</footer>\n");
        h.Append("</body></html>\n");
        return h.ToString();
    }

    static void Summary(StringBuilder h, Explanation e, RgbImage large, List<RgbImage> frames)
    {
        var r = e.Report;
        // A segment answer's boxes are also detections: draw each once, over its mask when there is one.
        bool segments = r.Segments.Count > 0;
        var boxes = segments ? r.Segments.Select(x => LabelledBox.FromPixels(x.Box, x.Label)).ToList()
            : r.Detections.Select(d => LabelledBox.FromPixels(d.Box, d.Label)).ToList();
        var shown = boxes.Count == 0 ? e.Image : ImageAnnotator.Draw(e.Image, boxes, segments ? e.SegmentMasks : null,
            thickness: Math.Max(1, Math.Min(e.Image.Width, e.Image.Height) / 100));
        h.Append("<section class=\"summary\"><div class=\"figs\">");
        Figure(h, shown, $"input, {e.Image.Width}×{e.Image.Height}" + (r.Detections.Count > 0 ? $", {r.Detections.Count} box(es) from the answer" : ""), MinDisplaySide);
        if (frames.Count == 0) Figure(h, large, $"what the model sees: {r.Model.ImageSize}×{r.Model.ImageSize}, {r.Model.PatchGrid}×{r.Model.PatchGrid} patches", 0);
        h.Append("</div><table class=\"facts\">");
        if (r.Request.Video is { } video) Row(h, "video", $"{Esc(video)}: {r.Request.Frames} frames, each {r.Model.ImageSize}×{r.Model.ImageSize} with {r.Model.PatchGrid}×{r.Model.PatchGrid} patches");
        Row(h, "prompt", $"<code>{Esc(r.Request.Prompt)}</code>");
        Row(h, "answer", $"<code class=\"answer\">{Esc(r.Answer.Text)}</code>" + (r.Answer.StoppedAtEos ? "" : " <em>(stopped at the token limit)</em>"));
        Row(h, "confidence", r.Answer.TokenCount == 0 ? "empty answer" :
            $"mean log-probability {F(r.Answer.MeanLogprob, "0.000")} (geometric-mean probability {F(Math.Exp(r.Answer.MeanLogprob), "0.000")}); " +
            $"lowest token probability {P(r.Answer.MinProbability)} at token {r.Answer.MinProbabilityIndex} " +
            $"(<code>{Esc(r.Tokens[r.Answer.MinProbabilityIndex].Piece)}</code>)");
        foreach (var d in r.Detections)
            Row(h, "box", $"{Esc(d.Label)}: [{string.Join(", ", d.Box.Select(v => F(v, "0.0")))}] px (x0, y0, x1, y1)");
        foreach (var x in r.Segments)
            Row(h, "mask", $"{Esc(x.Label)}: " + (x.Area is int area ? $"{area} px" : "no mask (no decoder loaded, or an invalid box)"));
        Row(h, "model", $"{Esc(r.Model.ModelType)} ({Esc(r.Model.TextModelType)} decoder, {r.Model.TextLayers} layers × {r.Model.TextHeads} heads, vocab {r.Model.VocabSize}), {Esc(r.Model.Directory)}");
        Row(h, "heatmap layer", $"{r.Request.Layer} (and the mean over all {r.Model.TextLayers} layers)");
        Row(h, "adapters", r.Request.Adapters is not { Count: > 0 } ? "none (base model)" : string.Join(", ", r.Request.Adapters.Select(a => $"<code>{Esc(a)}</code>")));
        h.Append("</table></section>\n");
        if (frames.Count > 0)
        {
            h.Append("<div class=\"row\">");
            for (int f = 0; f < frames.Count; f++) Figure(h, frames[f], $"frame {f}", 0);
            h.Append("</div>\n");
        }
    }

    static void Overview(StringBuilder h, ExplainReport r)
    {
        h.Append("<h2>Tokens</h2>\n<table class=\"overview\"><tr><th>#</th><th>token</th><th>p</th><th>entropy (nats)</th><th>top alternatives</th><th>logit lens, layer 0 → last</th></tr>\n");
        foreach (var t in r.Tokens)
        {
            h.Append("<tr><td><a href=\"#token-").Append(t.Index).Append("\">").Append(t.Index).Append("</a></td><td><code>").Append(Esc(t.Piece)).Append("</code></td>")
             .Append("<td>").Append(P(t.Probability)).Append("</td><td>").Append(F(t.Entropy, "0.000")).Append("</td><td>")
             .Append(string.Join(" ", t.Top.Where(a => a.Id != t.Id).Select(a => $"<code>{Esc(a.Piece)}</code> {P(a.Probability)}")))
             .Append("</td><td>").Append(string.Join(" → ", t.LogitLens.Select(l => $"<code>{Esc(l.Top.Piece)}</code>"))).Append("</td></tr>\n");
        }
        h.Append("</table>\n");
    }

    /// <summary>
    /// <paramref name="views"/> holds the image, or each frame of a video; <paramref name="thumbnails"/> the same drawn
    /// smaller. A video's maps are strips of its frames on one shared scale.
    /// </summary>
    static void TokenSection(StringBuilder h, ExplainReport r, TokenExplanation t, int grid, List<RgbImage> views, List<RgbImage> thumbnails)
    {
        int layer = r.Request.Layer;
        h.Append("<section class=\"token\" id=\"token-").Append(t.Index).Append("\"><h3>token ").Append(t.Index).Append(": <code>").Append(Esc(t.Piece))
         .Append("</code> <span class=\"p\">p = ").Append(P(t.Probability)).Append(", entropy ").Append(F(t.Entropy, "0.000")).Append(" nats</span></h3>\n<div class=\"row\">");
        Heatmaps(h, views, t.Attention.Layers[layer], grid, $"layer {layer}: {F(100 * t.Attention.ImageShare[layer], "0")} % of attention on the image");
        Heatmaps(h, views, t.Attention.Mean, grid, $"mean over layers: {F(100 * t.Attention.ImageShare.Average(), "0")} % on the image");

        h.Append("<div><h4>top ").Append(t.Top.Count).Append("</h4><table class=\"bars\">");
        foreach (var a in t.Top)
            h.Append("<tr><td><code>").Append(Esc(a.Piece)).Append("</code></td><td class=\"num\">").Append(P(a.Probability))
             .Append("</td><td><span class=\"bar\" style=\"width:").Append(F(Math.Round(120 * a.Probability), "0")).Append("px\"></span></td></tr>");
        h.Append("</table></div>");

        h.Append("<div><h4>logit lens</h4><table class=\"lens\"><tr><th>layer</th><th>top token</th><th>p</th><th>p(<code>").Append(Esc(t.Piece)).Append("</code>)</th></tr>");
        foreach (var l in t.LogitLens)
            h.Append("<tr><td>").Append(l.Layer).Append("</td><td><code>").Append(Esc(l.Top.Piece)).Append("</code></td><td class=\"num\">")
             .Append(P(l.Top.Probability)).Append("</td><td class=\"num\">").Append(P(l.ChosenProbability)).Append("</td></tr>");
        h.Append("</table></div></div>\n");

        h.Append("<details><summary>attention at every layer</summary><div class=\"row\">");
        for (int i = 0; i < t.Attention.Layers.Count; i++)
            Heatmaps(h, thumbnails, t.Attention.Layers[i], grid, $"layer {i}: {F(100 * t.Attention.ImageShare[i], "0")} %");
        h.Append("</div></details></section>\n");
    }

    /// <summary>One heatmap over the image, or for a video a strip of one per frame (weights frame by frame) scaled to their common maximum.</summary>
    static void Heatmaps(StringBuilder h, List<RgbImage> views, float[] weights, int grid, string caption)
    {
        if (views.Count == 1) { Figure(h, AttentionHeatmap.Overlay(views[0], weights, grid), caption, 0); return; }
        int cells = grid * grid;
        float max = weights.Max();
        h.Append("<div class=\"strip\"><div class=\"row\">");
        for (int f = 0; f < views.Count; f++)
            Figure(h, AttentionHeatmap.Overlay(views[f], weights.AsSpan(f * cells, cells), grid, max),
                $"frame {f}: {F(100 * System.Numerics.Tensors.TensorPrimitives.Sum<float>(weights.AsSpan(f * cells, cells)), "0")} %", 0);
        h.Append("</div><p>").Append(Esc(caption)).Append("</p></div>");
    }

    /// <summary>An inline image; <paramref name="maxSide"/> &gt; 0 limits its displayed size.</summary>
    static void Figure(StringBuilder h, RgbImage image, string caption, int maxSide)
    {
        h.Append("<figure><img src=\"").Append(AttentionHeatmap.PngDataUri(image)).Append("\" width=\"").Append(image.Width).Append("\" height=\"").Append(image.Height)
         .Append('"');
        if (maxSide > 0) h.Append(" style=\"max-width:").Append(maxSide).Append("px;max-height:").Append(maxSide).Append("px;width:auto;height:auto\"");
        h.Append(" alt=\"").Append(Esc(caption)).Append("\"><figcaption>").Append(Esc(caption)).Append("</figcaption></figure>");
    }

    static void Row(StringBuilder h, string key, string html) => h.Append("<tr><th>").Append(Esc(key)).Append("</th><td>").Append(html).Append("</td></tr>");

    static string Esc(string s) => WebUtility.HtmlEncode(s);

    static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A probability: three decimals, or two significant digits when that would print 0.000.</summary>
    static string P(double p) => p >= 0.0005 || p == 0 ? F(p, "0.000") : F(p, "0.0e+0");

    const string Css = """
        body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
        h1{font-size:22px;margin:0 0 12px}h2{font-size:18px;margin:24px 0 8px}h3{font-size:16px;margin:0 0 8px}h4{font-size:13px;margin:0 0 4px;color:#555}
        code{font-family:ui-monospace,monospace;background:#f3f3f3;padding:0 3px;border-radius:3px}
        .answer{font-size:16px}
        .summary{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
        .figs,.row{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}
        figure{margin:0}figcaption{font-size:12px;color:#555;max-width:240px}
        img{image-rendering:auto;border:1px solid #ccc;display:block}
        table{border-collapse:collapse}th,td{text-align:left;padding:2px 8px;vertical-align:top}
        .facts th{color:#555;font-weight:normal;white-space:nowrap}
        .overview{margin-bottom:16px}.overview th,.overview td{border-bottom:1px solid #e4e4e4}
        .num{text-align:right;font-variant-numeric:tabular-nums}
        .bar{display:inline-block;height:10px;background:#c0504d}
        .token{border-top:1px solid #ddd;padding:12px 0}.p{font-weight:normal;color:#555;font-size:13px}
        details{margin-top:8px}summary{cursor:pointer;color:#345}
        footer{margin-top:24px;font-size:12px;color:#666}
        .strip{border:1px solid #e4e4e4;padding:4px}.strip .row{gap:4px}.strip p{margin:2px 0;font-size:12px;color:#555}
        """;
}
