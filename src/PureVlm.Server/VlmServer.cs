using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using PureVlm.Runtime;

namespace PureVlm.Server;

/// <summary>Settings of a <see cref="VlmServer"/>.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to listen on; loopback unless told otherwise.</summary>
    public IPAddress Host { get; init; } = IPAddress.Loopback;
    /// <summary>TCP port; 0 picks a free one (see <see cref="VlmServer.Url"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Most requests decoding together.</summary>
    public int MaxBatch { get; init; } = 8;
    /// <summary>Most requests waiting beyond the free places of the batch; more get 503 with Retry-After.</summary>
    public int MaxQueue { get; init; } = 32;
    /// <summary>When set, every endpoint but <c>/health</c> and the page needs <c>Authorization: Bearer</c> this key.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Largest request body; larger ones get 413.</summary>
    public long MaxBodyBytes { get; init; } = 20 * 1024 * 1024;
    /// <summary>Most new tokens a request may ask for.</summary>
    public int MaxTokensLimit { get; init; } = 4096;
    /// <summary>Receives one line per request (and the start-up line); null: silent.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// <c>purevlm serve</c>: an OpenAI-compatible HTTP server (Kestrel) over one <see cref="VlmModel"/>:
/// <c>POST /v1/chat/completions</c>, <c>GET /v1/models</c>, <c>GET /health</c>, the native <c>POST /api/generate</c> and
/// <c>POST /api/explain</c>, and a web page at <c>/</c>. Requests share a <see cref="VlmEngine"/>, so concurrent answers
/// decode together. The server never reads files or URLs named in a request: images come inside it.
/// </summary>
public sealed class VlmServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly VlmEngine _engine;
    readonly ServerOptions _options;
    long _requestIds;

    /// <summary>The model served.</summary>
    public VlmModel Model { get; }
    /// <summary>The model's name in the API: the model directory's name.</summary>
    public string ModelId { get; }
    /// <summary>Where it listens, e.g. <c>http://127.0.0.1:8080</c> (the real port when 0 was asked).</summary>
    public string Url { get; private set; } = "";

    VlmServer(VlmModel model, ServerOptions options)
    {
        Model = model;
        _options = options;
        ModelId = model.Name;
        _engine = new VlmEngine(model, options.MaxBatch, options.MaxQueue);
        // Content root beside the program, not the caller's folder: no appsettings.json of wherever it was started is read.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders(); // one line per request, written by us
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Host, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        // Ctrl+C: requests in flight get a few seconds to finish, then their RequestAborted cancels them in the engine.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(5));
        _app = builder.Build();
        _app.Use(Guard);
        var chat = new ChatCompletions(this);
        var native = new NativeApi(this);
        _app.MapGet("/", (HttpContext c) => WebPage.Write(c.Response));
        _app.MapGet("/health", () => Results.Json(new { status = "ok", model = ModelId, active = _engine.Active, waiting = _engine.Waiting }));
        _app.MapGet("/v1/models", () => Results.Json(new
        {
            @object = "list",
            data = new[] { ModelId }.Concat(Model.Adapters.Keys.Order().Select(a => $"{ModelId}+{a}"))
                .Select(id => new { id, @object = "model", created = 0, owned_by = "purevlm" }),
        }));
        _app.MapPost("/v1/chat/completions", chat.Handle);
        _app.MapPost("/api/generate", native.Generate);
        _app.MapPost("/api/explain", native.Explain);
        _app.MapFallback((HttpContext c) => new ApiException(404, $"no endpoint {c.Request.Method} {c.Request.Path}", code: "not_found").WriteAsync(c.Response));
    }

    /// <summary>Starts serving <paramref name="model"/> (which the caller keeps and disposes after the server).</summary>
    public static async Task<VlmServer> StartAsync(VlmModel model, ServerOptions options, CancellationToken cancel = default)
    {
        var server = new VlmServer(model, options);
        await server._app.StartAsync(cancel).ConfigureAwait(false);
        var address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Url = address.Replace("[::]", "localhost").TrimEnd('/');
        options.Log?.Invoke($"serving {server.ModelId} on {server.Url} (open it in a browser; OpenAI API at {server.Url}/v1)");
        return server;
    }

    /// <summary>Waits until the host stops (Ctrl+C or SIGTERM for a console process).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => _app.WaitForShutdownAsync(cancel);

    /// <summary>Stops listening, cancels what is still running, and stops the engine.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _engine.Dispose();
    }

    internal VlmEngine Engine => _engine;
    internal ServerOptions Options => _options;

    /// <summary>Per request: the API key, the error shape of every refusal, and the one log line.</summary>
    async Task Guard(HttpContext context, RequestDelegate next)
    {
        long id = Interlocked.Increment(ref _requestIds);
        context.Items[RequestIdKey] = id;
        var clock = Stopwatch.StartNew();
        var path = context.Request.Path.Value ?? "";
        try
        {
            if (_options.ApiKey != null && path is not ("/health" or "/") && !Authorized(context.Request))
                throw new ApiException(401, "a valid API key is needed: send 'Authorization: Bearer KEY'", code: "invalid_api_key");
            if (context.Request.ContentLength > _options.MaxBodyBytes) throw TooLarge();
            await next(context).ConfigureAwait(false);
        }
        catch (Exception e) when (Refusal(e) is { } refusal)
        {
            if (context.Response.HasStarted) { context.Abort(); }
            else
            {
                if (refusal.Status == 503) context.Response.Headers.RetryAfter = "1";
                await refusal.WriteAsync(context.Response).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client left; its generation has been cancelled in the engine.
        }
        finally
        {
            string usage = context.Items[UsageKey] is string u ? " " + u : "";
            _options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"#{id} {context.Request.Method} {path} {(context.RequestAborted.IsCancellationRequested ? "cancelled" : context.Response.StatusCode.ToString(CultureInfo.InvariantCulture))}{usage} {clock.Elapsed.TotalSeconds:0.000} s"));
        }
    }

    ApiException TooLarge() => new(413, $"the request body is larger than {_options.MaxBodyBytes} bytes", code: "request_too_large");

    /// <summary>What an exception means for the client; null for a server fault (500, left to Kestrel).</summary>
    ApiException? Refusal(Exception e) => e switch
    {
        ApiException a => a,
        BadHttpRequestException { StatusCode: 413 } => TooLarge(),
        BadHttpRequestException b => new ApiException(b.StatusCode, b.Message),
        QueueFullException q => new ApiException(503, $"busy: {q.Message}; retry later", code: "queue_full", type: "server_error"),
        ContextLengthException c => ApiException.BadRequest(c.Message, "messages", "context_length_exceeded"),
        Prompts.InvalidPromptException p => ApiException.BadRequest(p.Message, "messages", "invalid_prompt"),
        Formats.Images.InvalidImageException i => ApiException.BadRequest($"the image could not be decoded: {i.Message}", "image_url", "invalid_image"),
        ArgumentException a => ApiException.BadRequest(a.Message.ReplaceLineEndings(" ")),
        // The library's input errors; a request names no files, so at request time these are about what it sent.
        PureVlmException p => ApiException.BadRequest(p.Message.ReplaceLineEndings(" ")),
        _ => null,
    };

    bool Authorized(HttpRequest request)
    {
        string header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var given = System.Text.Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        var expected = System.Text.Encoding.UTF8.GetBytes(_options.ApiKey!);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, expected);
    }

    internal const string RequestIdKey = "purevlm.id", UsageKey = "purevlm.usage";

    /// <summary>Reads the whole body within the size limit (Kestrel enforces it while reading, also for chunked bodies).</summary>
    internal static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancel)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancel).ConfigureAwait(false);
        return buffer.ToArray();
    }

    /// <summary>The adapters a request's model name selects (<see cref="VlmModel.AdaptersNamedBy"/>), or a 400 about <paramref name="param"/>.</summary>
    internal IReadOnlyList<string> AdaptersOf(string? model, string param)
    {
        try { return Model.AdaptersNamedBy(model); }
        catch (ArgumentException e)
        {
            throw new ApiException(400, e.Message, param, e.Message.StartsWith("no adapter", StringComparison.Ordinal) ? "unknown_adapter" : "model_not_found");
        }
    }

    /// <summary>Records what a request generated, for its log line.</summary>
    internal static void NoteUsage(HttpContext context, GenerationResult r) =>
        context.Items[UsageKey] = string.Create(CultureInfo.InvariantCulture,
            $"prompt {r.Timings.PrefillTokens} tokens, answer {r.Tokens.Count} tokens, encode {r.Timings.ImageEncodeSeconds:0.000} s, prefill {r.Timings.PrefillSeconds:0.000} s, decode {r.Timings.DecodeSeconds:0.000} s");
}
