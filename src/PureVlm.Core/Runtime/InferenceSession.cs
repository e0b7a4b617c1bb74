using PureVlm.Prompts;
using System.Runtime.CompilerServices;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Runtime;

/// <summary>Raised when a prompt or generation would exceed the context length.</summary>
public sealed class ContextLengthException(string message) : PureVlmException(message);

/// <summary>One token produced by generation.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Logprob">Natural log of its probability under the model's (untempered) softmax.</param>
/// <param name="Index">0 for the first generated token.</param>
public readonly record struct GeneratedToken(int Id, float Logprob, int Index)
{
    /// <summary>exp(<see cref="Logprob"/>).</summary>
    public float Probability => MathF.Exp(Logprob);
    /// <summary>The most likely tokens at this step, most likely first, when <see cref="GenerationOptions.TopLogprobs"/> asked for them; else null.</summary>
    public TokenLogprob[]? TopLogprobs { get; init; }
}

/// <summary>A token and its log-probability under the model's (untempered) softmax.</summary>
public readonly record struct TokenLogprob(int Id, float Logprob);

/// <summary>
/// The mutable state of one request on a <see cref="LoadedModel"/>: KV cache, scratch buffers, observer and adapters.
/// Not thread-safe; sessions on the same model may run in parallel.
/// </summary>
public sealed class InferenceSession
{
    readonly LoadedModel _model;
    readonly KvCache _cache;
    readonly ForwardContext _ctx;
    readonly int _maxContext;
    readonly int[] _token = new int[1];
    int _decodeSteps;
    int _lastToken;

    internal InferenceSession(LoadedModel model, SessionOptions options)
    {
        _model = model;
        _cache = model.Modules.LanguageModel.NewCache();
        _ctx = new ForwardContext { Observer = options.Observer, Adapters = options.Adapters };
        int max = model.Config.Text.MaxPositionEmbeddings;
        _maxContext = options.MaxContextLength is int m ? (m > 0 ? Math.Min(m, max) : throw new ArgumentOutOfRangeException(nameof(options), $"MaxContextLength is {m}, expected > 0")) : max;
    }

    /// <summary>
    /// Cancels the session's forward passes within one layer (image encoding, prefill, decode): the pass throws
    /// <see cref="OperationCanceledException"/> and the KV cache is cut back to what it held before it.
    /// </summary>
    public CancellationToken Cancel { get => _ctx.Cancel; set => _ctx.Cancel = value; }
    /// <summary>Tokens in the KV cache.</summary>
    public int Length => _cache.Length;
    /// <summary>The model this session runs.</summary>
    public LoadedModel Model => _model;
    internal KvCache Cache => _cache;
    internal ForwardContext Context => _ctx;
    /// <summary>The most tokens this session may hold.</summary>
    public int MaxContextLength => _maxContext;

    /// <summary>pixel_values [3, S, S] or [1, 3, S, S] (normalised, CHW) → image features [image tokens, text hidden] for <see cref="Prefill"/>.</summary>
    public float[] EncodeImage(Tensor pixelValues)
    {
        var vlm = _model.VisionLanguage ?? throw new InvalidOperationException($"this model ({_model.Config.ModelType}) has no vision tower");
        var v = vlm.Vision;
        var pixels = Input(pixelValues, "pixel_values", vlm.ImagePixelValuesName, [v.NumChannels, v.ImageSize, v.ImageSize]);
        return vlm.EncodeImage(pixels.Span, _ctx);
    }

    /// <summary>
    /// pixel_values_videos [T, 3, S, S] or [1, T, 3, S, S] (each frame normalised like an image, CHW) → video features
    /// [video tokens, text hidden] for <see cref="Prefill"/>, where they take the place of the video's tokens.
    /// </summary>
    public float[] EncodeVideo(Tensor pixelValues)
    {
        var vlm = _model.Modules as IVideoLanguageModel ?? throw new InvalidOperationException($"this model ({_model.Config.ModelType}) has no video tower");
        var v = vlm.Vision;
        var pixels = Input(pixelValues, "pixel_values_videos", "pixel_values_videos", [vlm.FramesPerVideo, v.NumChannels, v.ImageSize, v.ImageSize]);
        return vlm.EncodeVideo(pixels.Span, _ctx);
    }

    /// <summary>
    /// <paramref name="pixelValues"/> checked against <paramref name="want"/> (a leading 1 allowed; <paramref name="what"/>
    /// names it in the error), contiguous, and reported as <paramref name="traceName"/> [1, want…] to the observer, which
    /// gets a copy it may edit.
    /// </summary>
    Tensor Input(Tensor pixelValues, string what, string traceName, int[] want)
    {
        var shape = pixelValues.Shape.AsSpan(pixelValues.Rank == want.Length + 1 && pixelValues.Shape[0] == 1 ? 1 : 0);
        if (!shape.SequenceEqual(want))
            throw new ArgumentException($"{what} has shape {pixelValues.ShapeString}, expected [{string.Join(", ", want)}] (or with a leading 1)", nameof(pixelValues));
        var pixels = pixelValues.Contiguous();
        _ctx.Step = 0;
        if (_ctx.Observer == null) return pixels;
        pixels = pixels.Clone();
        _ctx.Report(traceName, pixels.Data, [1, .. want]);
        return pixels;
    }

    /// <summary>
    /// An image cut into crops (Molmo) → image features [image tokens, text hidden] for <see cref="Prefill"/>, in the order of
    /// the prompt's image tokens. An observer sees the crops as <c>images</c> [1, crops, patches, patch pixels] first.
    /// </summary>
    public float[] EncodeImage(MultiCropImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (_model.VisionLanguage is not IMultiCropVisionModel vlm)
            throw new InvalidOperationException($"this model ({_model.Config.ModelType}) takes {(_model.VisionLanguage == null ? "no images" : "pixel_values, not crops")}");
        _ctx.Step = 0;
        if (_ctx.Observer != null)
        {
            image = image with { Images = (float[])image.Images.Clone() }; // the observer may edit it
            int patches = image.Masks.Length / image.Crops;
            _ctx.Report("images", image.Images, 1, image.Crops, patches, image.Images.Length / image.Masks.Length);
        }
        return vlm.EncodeCrops(image, _ctx);
    }

    /// <summary>
    /// Runs the prompt (for a vision-language model, with image-token rows filled from <paramref name="imageFeatures"/>) on an empty
    /// session and returns the last position's logits [vocab], valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Prefill(ReadOnlySpan<int> inputIds, ReadOnlySpan<float> imageFeatures = default)
    {
        if (_cache.Length != 0) throw new InvalidOperationException($"prefill needs an empty session; this one holds {_cache.Length} tokens (call Reset)");
        if (inputIds.IsEmpty) throw new InvalidPromptException("the prompt is empty");
        CheckRoom(inputIds.Length, "the prompt");
        for (int i = 0; i < inputIds.Length; i++) CheckId(inputIds[i], i);
        _ctx.Step = 0;
        _decodeSteps = 0;
        return ForwardOrRollBack(inputIds, imageFeatures);
    }

    /// <summary>Feeds one token after the cached ones and returns its logits [vocab], valid until the next call.</summary>
    public ReadOnlySpan<float> Decode(int token)
    {
        BeginDecode();
        try { CheckId(token, 0); }
        catch { _decodeSteps--; throw; }
        _ctx.Step = _decodeSteps;
        _token[0] = token;
        try { return ForwardOrRollBack(_token, default); }
        catch { _decodeSteps--; throw; }
    }

    /// <summary>Checks that one more token may follow and counts the decode step (undone by <see cref="CancelDecode"/>).</summary>
    internal void BeginDecode()
    {
        if (_cache.Length == 0) throw new InvalidOperationException("decode needs a prefill first");
        CheckRoom(1, "the next token");
        _decodeSteps++;
    }

    /// <summary>Undoes a decode step that failed: its keys and values and its count.</summary>
    internal void CancelDecode(int lengthBefore)
    {
        _cache.Truncate(lengthBefore);
        _decodeSteps--;
    }

    /// <summary>
    /// Runs the model; if anything throws (an observer, an adapter, cancellation inside a kernel) the layers that
    /// already appended keys and values are cut back, so the session holds exactly the tokens it held before.
    /// </summary>
    ReadOnlySpan<float> ForwardOrRollBack(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures)
    {
        int before = _cache.Length;
        try { return _model.Modules.Forward(ids, imageFeatures, _cache, _ctx); }
        catch
        {
            _cache.Truncate(before);
            throw;
        }
    }

    /// <summary>Empties the KV cache for a new prompt (buffers are kept).</summary>
    public void Reset() { _cache.Clear(); _decodeSteps = 0; }

    /// <summary>
    /// Throws <see cref="ContextLengthException"/> unless a prompt of <paramref name="promptLength"/> tokens plus
    /// <paramref name="newTokens"/> generated ones fits (the last generated token is never fed back). Lets a caller
    /// refuse a request before spending time on the image.
    /// </summary>
    public void EnsureRoom(int promptLength, int newTokens) =>
        CheckRoom(promptLength + newTokens - 1, "the prompt plus the requested new tokens");

    // An id past the embedding table would read outside it; refused as input, not left to an index check deep inside.
    void CheckId(int id, int position)
    {
        // Molmo's embedding has its additional vocabulary (the image tokens) after the vocab_size rows.
        int rows = _model.Config.Text.VocabSize + (_model.Config.Molmo?.AdditionalVocabSize ?? 0);
        if ((uint)id >= (uint)rows)
            throw new InvalidPromptException($"token id {id} at position {position} is outside the vocabulary (0..{rows - 1})");
    }

    void CheckRoom(int n, string what)
    {
        if (_cache.Length + n > _maxContext)
            throw new ContextLengthException($"{what} needs {_cache.Length + n} tokens of context, the limit is {_maxContext}");
    }

    /// <summary>
    /// Prefills and generates up to <see cref="GenerationOptions.MaxNewTokens"/> tokens (greedy when Temperature is 0),
    /// stopping after an eos token unless told not to. The last token is not fed back.
    /// </summary>
    public IEnumerable<GeneratedToken> Generate(int[] inputIds, float[]? imageFeatures, GenerationOptions options, CancellationToken cancel = default)
    {
        var sampler = new Sampler(options, _model.Config.Text.VocabSize);
        Reset();
        if (cancel.CanBeCanceled) Cancel = cancel; // and within each pass, one layer at a time
        for (int k = 0; k < options.MaxNewTokens; k++)
        {
            cancel.ThrowIfCancellationRequested();
            var token = Step(sampler, inputIds, imageFeatures, k, options.MaxNewTokens);
            yield return token;
            if (options.StopAtEos && _model.Config.EosTokenIds.Contains(token.Id)) yield break;
        }
    }

    /// <summary>As <see cref="Generate"/>, streamed; each token is computed off the caller's synchronous context.</summary>
    public async IAsyncEnumerable<GeneratedToken> GenerateAsync(int[] inputIds, float[]? imageFeatures, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var sampler = new Sampler(options, _model.Config.Text.VocabSize);
        Reset();
        if (cancel.CanBeCanceled) Cancel = cancel; // and within each pass, one layer at a time
        for (int k = 0; k < options.MaxNewTokens; k++)
        {
            cancel.ThrowIfCancellationRequested();
            int step = k;
            var token = await Task.Run(() => Step(sampler, inputIds, imageFeatures, step, options.MaxNewTokens), cancel).ConfigureAwait(false);
            yield return token;
            if (options.StopAtEos && _model.Config.EosTokenIds.Contains(token.Id)) yield break;
        }
    }

    GeneratedToken Step(Sampler sampler, int[] inputIds, float[]? imageFeatures, int k, int maxNew)
    {
        if (k == 0) EnsureRoom(inputIds.Length, maxNew);
        var logits = k == 0 ? Prefill(inputIds, imageFeatures) : Decode(_lastToken);
        var token = sampler.Pick(logits, k);
        _lastToken = token.Id;
        return token;
    }
}
