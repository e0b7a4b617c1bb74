using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;
using PureVlm.Formats.Images;
using PureVlm.Runtime;

namespace PureVlm.AI;

/// <summary>
/// A <see cref="VlmModel"/> as a <c>Microsoft.Extensions.AI</c> <see cref="IChatClient"/>, so an app written against that
/// abstraction can swap PureVlm in. The prompt is the text of the last user message; the images are the image
/// <see cref="DataContent"/> items of the user messages, in order (URIs are refused: nothing is fetched).
/// <see cref="ChatOptions.ModelId"/> may select adapters (<c>NAME+ADAPTER</c>, see <see cref="VlmModel.AdaptersNamedBy"/>).
/// Concurrent calls decode together (it runs a <see cref="VlmEngine"/>); greedy unless a temperature is given.
/// </summary>
public sealed class VlmChatClient : IChatClient
{
    readonly VlmEngine _engine;
    readonly ChatClientMetadata _metadata;

    /// <summary>A client over <paramref name="model"/> (which the caller keeps and disposes after the client).</summary>
    public VlmChatClient(VlmModel model, int maxBatch = 8)
    {
        _engine = new VlmEngine(model, maxBatch);
        _metadata = new ChatClientMetadata("purevlm", defaultModelId: model.Name);
    }

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (images, prompt, generation) = Map(messages, options);
        var result = await _engine.GenerateAsync(images, prompt, generation, cancel: cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text))
        {
            ModelId = options?.ModelId ?? _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = result.Tokens.Count >= generation.MaxNewTokens ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Usage = new UsageDetails
            {
                InputTokenCount = result.Timings.PrefillTokens,
                OutputTokenCount = result.Tokens.Count,
                TotalTokenCount = result.Timings.PrefillTokens + result.Tokens.Count,
            },
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (images, prompt, generation) = Map(messages, options);
        var pieces = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // A caller that stops reading early ends the generation too (disposing the enumerator cancels this).
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var answer = _engine.GenerateAsync(images, prompt, generation, (text, _) => pieces.Writer.TryWrite(text), stop.Token);
        _ = answer.ContinueWith(_ => pieces.Writer.TryComplete(), TaskScheduler.Default);
        string modelId = options?.ModelId ?? _metadata.DefaultModelId!;
        GenerationResult result;
        try
        {
            await foreach (var text in pieces.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                yield return new ChatResponseUpdate(ChatRole.Assistant, text) { ModelId = modelId };
            result = await answer.ConfigureAwait(false);
        }
        finally { stop.Cancel(); }
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant,
            ModelId = modelId,
            FinishReason = result.Tokens.Count >= generation.MaxNewTokens ? ChatFinishReason.Length : ChatFinishReason.Stop,
            Contents = [new UsageContent(new UsageDetails
            {
                InputTokenCount = result.Timings.PrefillTokens,
                OutputTokenCount = result.Tokens.Count,
                TotalTokenCount = result.Timings.PrefillTokens + result.Tokens.Count,
            })],
        };
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey != null ? null
        : serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceType == typeof(VlmModel) ? _engine.Model
        : serviceType.IsInstanceOfType(this) ? this : null;

    /// <summary>Stops the engine; calls still running are cancelled.</summary>
    public void Dispose() => _engine.Dispose();

    (List<RgbImage> Images, string Prompt, GenerationOptions Options) Map(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var images = new List<RgbImage>();
        string? prompt = null;
        foreach (var message in messages.Where(m => m.Role == ChatRole.User))
        {
            foreach (var content in message.Contents)
            {
                if (content is DataContent data && data.HasTopLevelMediaType("image")) images.Add(ImageLoader.Load(data.Data.Span));
                else if (content is UriContent) throw new ArgumentException("images must be DataContent (bytes); VlmChatClient fetches no URIs", nameof(messages));
            }
            prompt = message.Text;
        }
        if (prompt == null) throw new ArgumentException("there is no user message", nameof(messages));
        var generation = new GenerationOptions
        {
            MaxNewTokens = options?.MaxOutputTokens ?? 64,
            Temperature = options?.Temperature ?? 0,
            TopP = options?.TopP ?? 1,
            TopK = options?.TopK ?? 0,
            Seed = (ulong)(options?.Seed ?? 0),
            Adapters = _engine.Model.AdaptersNamedBy(options?.ModelId),
        };
        return (images, prompt, generation);
    }
}
