using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using PureVlm.Formats.Images;
using PureVlm.Runtime;

namespace PureVlm.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c> as OpenAI's API has it, for a model that answers one prompt about images: the prompt
/// is the text of the last user message, the images are the <c>image_url</c> parts of the user messages in order.
/// </summary>
sealed class ChatCompletions(VlmServer server)
{
    /// <summary>What a request asks for, read and checked.</summary>
    sealed record ChatRequest(string Prompt, List<RgbImage> Images, GenerationOptions Options, string Model, bool Stream, bool Logprobs, bool IncludeUsage);

    public async Task Handle(HttpContext context)
    {
        var body = await VlmServer.ReadBodyAsync(context.Request, context.RequestAborted);
        var request = Parse(ServerJson.ParseObject(body));
        string id = $"chatcmpl-{context.Items[VlmServer.RequestIdKey]}-{Guid.NewGuid():N}"[..32];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (request.Stream) await StreamAsync(context, request, id, created);
        else
        {
            var result = await server.Engine.GenerateAsync(request.Images, request.Prompt, request.Options, cancel: context.RequestAborted);
            VlmServer.NoteUsage(context, result);
            await context.Response.WriteAsJsonAsync(new
            {
                id,
                @object = "chat.completion",
                created,
                model = request.Model,
                choices = new[]
                {
                    new
                    {
                        index = 0,
                        message = new { role = "assistant", content = result.Text },
                        logprobs = request.Logprobs ? new { content = result.Tokens.Select(Logprob).ToArray() } : null,
                        finish_reason = FinishReason(result, request.Options),
                    },
                },
                usage = Usage(result),
            }, ServerJson.Options, context.RequestAborted);
        }
    }

    ChatRequest Parse(JsonObject o)
    {
        if (o["messages"] is not JsonArray messages || messages.Count == 0)
            throw ApiException.BadRequest("'messages' must be a non-empty array", "messages");
        string? prompt = null;
        var images = new List<RgbImage>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject m) throw ApiException.BadRequest($"messages[{i}] must be an object", $"messages[{i}]");
            string role = ServerJson.String(m, "role", $"messages[{i}].role") ?? throw ApiException.BadRequest($"messages[{i}].role is missing", $"messages[{i}].role");
            if (role != "user") continue; // system and earlier assistant turns: these models answer one prompt
            var text = new StringBuilder();
            switch (m["content"])
            {
                case JsonValue v when v.TryGetValue(out string? s): text.Append(s); break;
                case JsonArray parts:
                    for (int j = 0; j < parts.Count; j++)
                    {
                        string param = $"messages[{i}].content[{j}]";
                        if (parts[j] is not JsonObject part) throw ApiException.BadRequest($"{param} must be an object", param);
                        switch (ServerJson.String(part, "type", param + ".type"))
                        {
                            case "text": text.Append(ServerJson.String(part, "text", param + ".text")); break;
                            case "image_url":
                                string? url = part["image_url"] is JsonObject u ? ServerJson.String(u, "url", param + ".image_url.url") : ServerJson.String(part, "image_url", param + ".image_url");
                                images.Add(RequestImages.FromUri(url ?? throw ApiException.BadRequest($"{param}.image_url.url is missing", param + ".image_url.url"), param + ".image_url.url"));
                                break;
                            default: throw ApiException.BadRequest($"{param}.type must be 'text' or 'image_url'", param + ".type");
                        }
                    }
                    break;
                default: throw ApiException.BadRequest($"messages[{i}].content must be a string or an array of parts", $"messages[{i}].content");
            }
            prompt = text.ToString();
        }
        if (prompt == null) throw ApiException.BadRequest("there is no user message", "messages");
        if (images.Count == 0) throw ApiException.BadRequest("no image: add an image_url part with a data: URI to a user message", "messages", "missing_image");
        ServerJson.Int(o, "n", 1, 1); // one answer per request

        string? model = ServerJson.String(o, "model");
        var adapters = server.AdaptersOf(model, "model");
        int limit = server.Options.MaxTokensLimit;
        int maxTokens = ServerJson.Int(o, "max_completion_tokens", 1, limit) ?? ServerJson.Int(o, "max_tokens", 1, limit) ?? 64;
        bool logprobs = ServerJson.Bool(o, "logprobs") ?? false;
        int top = ServerJson.Int(o, "top_logprobs", 0, GenerationOptions.MaxTopLogprobs) ?? 0;
        if (top > 0 && !logprobs) throw ApiException.BadRequest("top_logprobs needs logprobs: true", "top_logprobs");
        bool includeUsage = o["stream_options"] is JsonObject so && (ServerJson.Bool(so, "include_usage") ?? false);
        var options = new GenerationOptions
        {
            MaxNewTokens = maxTokens,
            // Greedy unless asked: the same question gets the same answer (OpenAI's default would be 1).
            Temperature = (float)(ServerJson.Number(o, "temperature", 0, 2) ?? 0),
            TopP = (float)(ServerJson.Number(o, "top_p", 1e-6, 1) ?? 1),
            Seed = (ulong)(ServerJson.Number(o, "seed", long.MinValue, long.MaxValue) is double seed ? (long)seed : 0),
            TopLogprobs = top,
            Adapters = adapters,
            // vLLM's extension: keep generating past eos, up to max_tokens.
            StopAtEos = !(ServerJson.Bool(o, "ignore_eos") ?? false),
        };
        return new ChatRequest(prompt, images, options, model ?? server.ModelId, ServerJson.Bool(o, "stream") ?? false, logprobs, includeUsage);
    }

    async Task StreamAsync(HttpContext context, ChatRequest request, string id, long created)
    {
        var pieces = Channel.CreateUnbounded<(string Text, AnswerToken? Token)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // Queued before the first byte goes out, so a refusal (503, 400) is still a plain error response.
        var generation = server.Engine.GenerateAsync(request.Images, request.Prompt, request.Options, (text, token) => pieces.Writer.TryWrite((text, token)), context.RequestAborted);
        _ = generation.ContinueWith(_ => pieces.Writer.TryComplete(), TaskScheduler.Default);


        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        async Task Send(object chunk)
        {
            await response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, ServerJson.Options) + "\n\n", context.RequestAborted);
            await response.Body.FlushAsync(context.RequestAborted);
        }
        object Chunk(object delta, object? logprobs, string? finish) => new
        {
            id, @object = "chat.completion.chunk", created, model = request.Model,
            choices = new[] { new { index = 0, delta, logprobs, finish_reason = finish } },
        };

        await Send(Chunk(new { role = "assistant", content = "" }, null, null));
        await foreach (var (text, token) in pieces.Reader.ReadAllAsync(context.RequestAborted))
            await Send(Chunk(new { content = text }, request.Logprobs && token != null ? new { content = new[] { Logprob(token) } } : null, null));
        var result = await generation;
        VlmServer.NoteUsage(context, result);
        await Send(Chunk(new { }, null, FinishReason(result, request.Options)));
        if (request.IncludeUsage)
            await Send(new { id, @object = "chat.completion.chunk", created, model = request.Model, choices = Array.Empty<object>(), usage = Usage(result) });
        await response.WriteAsync("data: [DONE]\n\n", context.RequestAborted);
    }

    /// <summary>"length" when the answer used every token it was allowed without reaching eos.</summary>
    static string FinishReason(GenerationResult r, GenerationOptions o) => r.Tokens.Count >= o.MaxNewTokens ? "length" : "stop";

    static object Usage(GenerationResult r) => new
    {
        prompt_tokens = r.Timings.PrefillTokens,
        completion_tokens = r.Tokens.Count,
        total_tokens = r.Timings.PrefillTokens + r.Tokens.Count,
    };

    static object Logprob(AnswerToken t) => new
    {
        token = t.Text,
        logprob = MathF.Log(MathF.Max(t.Probability, float.Epsilon)),
        bytes = Encoding.UTF8.GetBytes(t.Text).Select(b => (int)b).ToArray(),
        top_logprobs = (t.TopLogprobs ?? []).Select(a => new { token = a.Piece, logprob = a.Logprob, bytes = Encoding.UTF8.GetBytes(a.Piece).Select(b => (int)b).ToArray() }).ToArray(),
    };
}
