using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Outputs;
using PureVlm.Runtime;

namespace PureVlm.Server;

/// <summary>
/// The native endpoints. <c>POST /api/generate</c> returns exactly <c>purevlm run --json</c>'s object;
/// <c>POST /api/explain</c> returns the explain report with its heatmaps as PNG data URIs. Both take JSON
/// (<c>image</c> as base64 or a data: URI, <c>prompt</c>, options) or a multipart form (an <c>image</c> file and the same fields).
/// </summary>
sealed class NativeApi(VlmServer server)
{
    // Explanations run one at a time: they cannot join the batch, and two at once on a shared CPU only slow each other.
    readonly SemaphoreSlim _explainGate = new(1, 1);
    int _explainsPending;

    /// <summary>The fields of a native request, whichever way it came.</summary>
    sealed record NativeRequest(RgbImage Image, string Prompt, JsonObject Fields);

    public async Task Generate(HttpContext context)
    {
        var request = await ReadAsync(context);
        var f = request.Fields;
        var options = new GenerationOptions
        {
            MaxNewTokens = ServerJson.Int(f, "max_tokens", 1, server.Options.MaxTokensLimit) ?? 64,
            Temperature = (float)(ServerJson.Number(f, "temperature", 0, 1e6) ?? 0),
            TopK = ServerJson.Int(f, "top_k", 0, int.MaxValue) ?? 0,
            TopP = (float)(ServerJson.Number(f, "top_p", 1e-6, 1) ?? 1),
            Seed = (ulong)(ServerJson.Number(f, "seed", 0, long.MaxValue) ?? 0),
            Adapters = server.AdaptersOf(ServerJson.String(f, "model"), "model"),
        };
        var result = await server.Engine.GenerateAsync(request.Image, request.Prompt, options, cancel: context.RequestAborted);
        VlmServer.NoteUsage(context, result);
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(RunJson.Serialize(result, server.Model.LoadSeconds), context.RequestAborted);
    }

    public async Task Explain(HttpContext context)
    {
        var request = await ReadAsync(context);
        var f = request.Fields;
        int layers = server.Model.Loaded.Config.Text.NumHiddenLayers;
        var options = new ExplainOptions
        {
            MaxNewTokens = ServerJson.Int(f, "max_tokens", 1, server.Options.MaxTokensLimit) ?? 32,
            Layer = ServerJson.Int(f, "layer", 0, layers - 1),
            Adapters = server.AdaptersOf(ServerJson.String(f, "model"), "model"),
        };
        // An explanation watches every activation of its request, so it cannot share a batched forward: it runs alone.
        if (Interlocked.Increment(ref _explainsPending) > server.Options.MaxQueue + 1)
        {
            Interlocked.Decrement(ref _explainsPending);
            throw new QueueFullException($"{server.Options.MaxQueue} explanations are waiting");
        }
        Explanation explanation;
        try
        {
            await _explainGate.WaitAsync(context.RequestAborted);
            try { explanation = await Task.Run(() => ExplainReport.Create(server.Model, request.Image, request.Prompt, options), context.RequestAborted); }
            finally { _explainGate.Release(); }
        }
        finally { Interlocked.Decrement(ref _explainsPending); }
        var report = explanation.Report;
        var view = explanation.ModelView;
        int grid = report.Model.PatchGrid;
        var heatmaps = report.Tokens.Select(t => new JsonObject
        {
            ["index"] = t.Index,
            ["layer"] = AttentionHeatmap.PngDataUri(AttentionHeatmap.Overlay(view, t.Attention.Layers[report.Request.Layer], grid)),
            ["mean"] = AttentionHeatmap.PngDataUri(AttentionHeatmap.Overlay(view, t.Attention.Mean, grid)),
        });
        var doc = JsonNode.Parse(report.ToJson())!.AsObject();
        doc["heatmaps"] = new JsonArray(heatmaps.ToArray<JsonNode>());
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(doc.ToJsonString(ServerJson.Options), context.RequestAborted);
    }

    async Task<NativeRequest> ReadAsync(HttpContext context)
    {
        JsonObject fields;
        RgbImage? image = null;
        if (context.Request.HasFormContentType)
        {
            var form = await context.Request.ReadFormAsync(context.RequestAborted);
            fields = new JsonObject();
            foreach (var (key, value) in form)
                fields[key] = double.TryParse(value.ToString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d) && key != "prompt"
                    ? JsonValue.Create(d) : JsonValue.Create(value.ToString());
            if (form.Files.GetFile("image") is { } file)
            {
                using var buffer = new MemoryStream();
                await file.CopyToAsync(buffer, context.RequestAborted);
                image = RequestImages.FromBytes(buffer.ToArray(), "image");
            }
        }
        else fields = ServerJson.ParseObject(await VlmServer.ReadBodyAsync(context.Request, context.RequestAborted));
        if (image == null)
        {
            string data = ServerJson.String(fields, "image") ?? throw ApiException.BadRequest("'image' is missing: base64 or a data: URI (or a multipart file named image)", "image", "missing_image");
            image = RequestImages.FromUri(data, "image", allowBareBase64: true);
        }
        string prompt = ServerJson.String(fields, "prompt") ?? throw ApiException.BadRequest("'prompt' is missing", "prompt");
        return new NativeRequest(image, prompt, fields);
    }
}
