using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Collections.Concurrent;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Tokenization;
using PureVlm.Models;
using PureVlm.Outputs;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Segmentation;

namespace PureVlm;

/// <summary>
/// A vision-language checkpoint (PaliGemma, LLaVA, Video-LLaVA, Gemma 3) ready to answer questions about images (and,
/// for a model with a video tower, videos): weights (memory-mapped),
/// tokenizer, image preprocessor and prompt format of one model directory. Thread-safe: concurrent requests each get their own KV cache.
/// </summary>
/// <example>
/// <code>
/// using var model = VlmModel.Load();                       // the embedded demo model
/// var image = ImageLoader.Load("samples/04-red-circle.png");
/// var answer = model.Generate(image, "answer en what color is the circle?");
/// Console.WriteLine(answer.Text);                           // red
/// </code>
/// </example>
public sealed class VlmModel : IDisposable
{
    /// <summary>The model this library ships with (a 3.3M-parameter PaliGemma trained on synthetic shapes).</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "models", "paligemma-shapes");

    /// <summary>The mask decoder's file name as Google ships it; <see cref="Load"/> picks it up from the model directory.</summary>
    public const string DefaultDecoderFile = "vae-oid.npz";

    /// <summary>The model directory.</summary>
    public string Directory { get; }
    /// <summary>Config, weights and module tree.</summary>
    public LoadedModel Loaded { get; }
    /// <summary>The model's tokenizer (tokenizer.model or tokenizer.json).</summary>
    public SentencePieceTokenizer Tokenizer { get; }
    /// <summary>Resize and normalisation as the checkpoint's preprocessor_config.json says.</summary>
    public ImagePreprocessor Preprocessor { get; }
    /// <summary>How the family lays out a prompt and reads its answers.</summary>
    public IPromptFormat PromptFormat { get; }
    /// <summary>The module tree with its vision tower.</summary>
    public IVisionLanguageModel VisionLanguage { get; }
    /// <summary>
    /// PaliGemma's mask decoder (<c>vae-oid.npz</c>), or null: then a <c>segment …</c> answer gives boxes and codes but no
    /// <see cref="Segment.Mask"/>.
    /// </summary>
    public VqVaeDecoder? SegmentationDecoder { get; }
    /// <summary>Seconds spent in <see cref="Load"/>.</summary>
    public double LoadSeconds { get; }
    /// <summary>LoRA adapters loaded beside the base weights, by name; a request activates them with <see cref="GenerationOptions.Adapters"/>.</summary>
    public IReadOnlyDictionary<string, LoraAdapter> Adapters => _adapters;

    readonly ConcurrentDictionary<string, LoraAdapter> _adapters = new(StringComparer.Ordinal);
    // Requests in flight plus one for the owner: the weights are unmapped when it drops to 0, so Dispose during a
    // request waits for that request instead of pulling the memory from under it.
    int _leases = 1;
    int _disposed;

    VlmModel(string directory, LoadedModel model, SentencePieceTokenizer tokenizer, ImagePreprocessor preprocessor, VqVaeDecoder? segmentation, double loadSeconds)
    {
        Directory = directory; Loaded = model; Tokenizer = tokenizer; Preprocessor = preprocessor; SegmentationDecoder = segmentation; LoadSeconds = loadSeconds;
        VisionLanguage = model.VisionLanguage!;
        PromptFormat = ModelFamilies.PromptFormat(VisionLanguage);
    }

    /// <summary>
    /// Loads a vision-language model directory (config.json, safetensors, tokenizer, optional preprocessor_config.json);
    /// null loads <see cref="DefaultModelPath"/>. <paramref name="progress"/> receives short status lines.
    /// <paramref name="segmentationDecoder"/> is the <c>vae-oid.npz</c> that turns <c>&lt;segNNN&gt;</c> codes into masks;
    /// null takes <c>vae-oid.npz</c> from the model directory when it is there. <paramref name="directory"/> may also be a
    /// Hugging Face repo id (<c>google/paligemma2-3b-pt-224</c>), found offline in the local hub cache at
    /// <paramref name="revision"/> (default <c>main</c>; see <see cref="HfCache.ResolveModel"/>).
    /// </summary>
    public static VlmModel Load(string? directory = null, Action<string>? progress = null, string? segmentationDecoder = null, string? revision = null)
    {
        var clock = Stopwatch.StartNew();
        directory = HfCache.ResolveModel(directory ?? DefaultModelPath, revision);
        string configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) throw new InvalidModelFileException($"{directory}: no config.json (expected a Hugging Face model directory)");
        progress?.Invoke("reading config and mapping weights");
        var model = LoadedModel.Load(directory);
        try
        {
            if (model.VisionLanguage == null)
                throw new ModelConfigException($"{configPath}: model_type '{model.Config.ModelType}' is a text-only model; VlmModel needs a vision-language checkpoint (model_type paligemma, llava, video_llava or gemma3)");
            progress?.Invoke("loading tokenizer");
            var tokenizer = LoadTokenizer(directory);
            CheckTokenizerFits(tokenizer, model.Config, ModelFamilies.PromptFormat(model.VisionLanguage).ImageToken, directory);
            var preprocessor = ImagePreprocessor.FromCheckpoint(directory);
            int size = model.Config.Vision!.ImageSize;
            if (preprocessor.Width != size || preprocessor.Height != size)
                throw new ModelConfigException($"{directory}: preprocessor_config.json resizes to {preprocessor.Width}×{preprocessor.Height}, the vision tower expects {size}×{size}");
            segmentationDecoder ??= File.Exists(Path.Combine(directory, DefaultDecoderFile)) ? Path.Combine(directory, DefaultDecoderFile) : null;
            if (segmentationDecoder != null) progress?.Invoke("loading the mask decoder");
            var segmentation = segmentationDecoder == null ? null : VqVaeDecoder.Load(segmentationDecoder);
            return new VlmModel(directory, model, tokenizer, preprocessor, segmentation, clock.Elapsed.TotalSeconds);
        }
        catch { model.Dispose(); throw; }
    }

    /// <summary>The tokenizer of a model directory: its <c>tokenizer.model</c>, else <c>tokenizer.json</c>(<c>.gz</c>).</summary>
    public static SentencePieceTokenizer LoadTokenizer(string directory)
    {
        foreach (var name in new[] { "tokenizer.model", "tokenizer.json", "tokenizer.json.gz" })
        {
            string path = Path.Combine(directory, name);
            if (File.Exists(path)) return SentencePieceTokenizer.Load(path);
        }
        throw new InvalidModelFileException($"{directory}: no tokenizer.model or tokenizer.json");
    }

    static void CheckTokenizerFits(SentencePieceTokenizer tokenizer, ModelConfig config, string imageToken, string directory)
    {
        if (tokenizer.VocabSize > config.Text.VocabSize)
            throw new ModelConfigException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens, the model's vocab_size is {config.Text.VocabSize}");
        if (!tokenizer.TryGetId(imageToken, out int imageId))
            throw new ModelConfigException($"{directory}: the tokenizer has no {imageToken} token (config.json's image_token_index is {config.ImageTokenIndex})");
        if (imageId != config.ImageTokenIndex)
            throw new ModelConfigException($"{directory}: config.json's image_token_index is {config.ImageTokenIndex}, the tokenizer's {imageToken} token is {imageId}");
        if (config.VideoLlava is { } video && !(tokenizer.TryGetId("<video>", out int videoId) && videoId == video.VideoTokenIndex))
            throw new ModelConfigException(tokenizer.TryGetId("<video>", out videoId)
                ? $"{directory}: config.json's video_token_index is {video.VideoTokenIndex}, the tokenizer's <video> token is {videoId}"
                : $"{directory}: the tokenizer has no <video> token (config.json's video_token_index is {video.VideoTokenIndex})");
    }

    /// <summary>
    /// Loads a PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) beside the base weights,
    /// which stay untouched; <paramref name="name"/> defaults to the directory's name. Requests that name it in
    /// <see cref="GenerationOptions.Adapters"/> use it; others don't see it.
    /// </summary>
    public LoraAdapter LoadAdapter(string directory, string? name = null)
    {
        var adapter = LoraAdapter.Load(directory, Loaded, name);
        if (!_adapters.TryAdd(adapter.Name, adapter))
            throw new ArgumentException($"an adapter named '{adapter.Name}' is already loaded; give this one another name", nameof(name));
        return adapter;
    }

    /// <summary>The ids the model sees for a prompt about <paramref name="images"/> images, as the family's processor builds them.</summary>
    public int[] PromptIds(string prompt, int images = 1) => PromptFormat.Build(Tokenizer, prompt, images);

    /// <summary>The ids the model sees for a prompt about images and videos in the order of <paramref name="media"/>.</summary>
    public int[] PromptIds(string prompt, IReadOnlyList<MediaKind> media) => PromptFormat.Build(Tokenizer, prompt, media);

    /// <summary>Frames one video is sampled to, or 0 for a model without a video tower.</summary>
    public int FramesPerVideo => (VisionLanguage as IVideoLanguageModel)?.FramesPerVideo ?? 0;

    /// <summary>
    /// A video for this model from a folder of frames or an animated GIF, sampled to <see cref="FramesPerVideo"/> frames
    /// (see <see cref="VideoLoader"/>).
    /// </summary>
    public MediaInput LoadVideo(string path)
    {
        if (FramesPerVideo == 0) throw new ArgumentException($"{Directory}: this model ({Loaded.Config.ModelType}) has no video tower; give images", nameof(path));
        return MediaInput.Video(VideoLoader.Load(path, FramesPerVideo), Path.GetFullPath(path));
    }

    /// <summary>
    /// The ids the model sees for a chat in HF's message format, rendered by the family's chat template (its image parts
    /// take the request's images in order). Throws <see cref="ChatFormatException"/> for a family without a chat template (PaliGemma).
    /// </summary>
    public int[] PromptIds(IReadOnlyList<ChatMessage> messages) => ChatFormat.BuildChat(Tokenizer, messages);

    /// <summary>The family's chat template, or an error naming the family that has none.</summary>
    IChatPromptFormat ChatFormat => PromptFormat as IChatPromptFormat
        ?? throw new ChatFormatException($"{Loaded.Config.ModelType} has no chat template; give a plain prompt");

    /// <summary>
    /// Answers the chat <paramref name="messages"/> (HF's format: system / user / assistant messages of text and image
    /// parts) about <paramref name="images"/>, which fill the image parts in order.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<RgbImage> images, IReadOnlyList<ChatMessage> messages, GenerationOptions? options = null, Action<string>? onText = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        int parts = ChatMessage.CountImages(messages);
        if (parts != images.Count) throw new ArgumentException($"the messages have {parts} image parts for {images.Count} images; give one image per part", nameof(images));
        var request = new Request(this, images.Select(MediaInput.Image).ToList(), () => PromptIds(messages), options ?? new GenerationOptions());
        foreach (var piece in request.Run(cancel)) onText?.Invoke(piece);
        return request.Result();
    }

    /// <summary>Answers <paramref name="prompt"/> about <paramref name="image"/>.</summary>
    public GenerationResult Generate(RgbImage image, string prompt, GenerationOptions? options = null, CancellationToken cancel = default) =>
        Generate(image, prompt, options, onText: null, cancel);

    /// <summary>
    /// Answers <paramref name="prompt"/> about <paramref name="image"/>, passing each new piece of text to
    /// <paramref name="onText"/> as it is generated (and every named activation to <see cref="GenerationOptions.Observer"/>).
    /// </summary>
    public GenerationResult Generate(RgbImage image, string prompt, GenerationOptions? options, Action<string>? onText, CancellationToken cancel = default) =>
        Generate([image], prompt, options, onText, cancel);

    /// <summary>
    /// Answers <paramref name="prompt"/> about several images, in order (LLaVA: one <c>&lt;image&gt;</c> marker per image in the
    /// prompt, or none to put them first). Boxes in the answer are in pixels of the first image.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<RgbImage> images, string prompt, GenerationOptions? options = null, Action<string>? onText = null, CancellationToken cancel = default) =>
        Generate(images.Select(MediaInput.Image).ToList(), prompt, options, onText, cancel);

    /// <summary>
    /// Answers <paramref name="prompt"/> about images and videos, in order (Video-LLaVA: one <c>&lt;image&gt;</c> or
    /// <c>&lt;video&gt;</c> marker per input in the prompt, or none to put them first). Boxes in the answer are in pixels
    /// of the first input's first frame.
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<MediaInput> media, string prompt, GenerationOptions? options = null, Action<string>? onText = null, CancellationToken cancel = default)
    {
        var request = new Request(this, media, () => PromptIds(prompt, media.Select(m => m.Kind).ToList()), options ?? new GenerationOptions());
        foreach (var piece in request.Run(cancel)) onText?.Invoke(piece);
        return request.Result();
    }

    /// <summary>Answers <paramref name="prompt"/> about the image file at <paramref name="imagePath"/>.</summary>
    public GenerationResult Generate(string imagePath, string prompt, GenerationOptions? options = null, CancellationToken cancel = default) =>
        Generate(ImageLoader.Load(imagePath), prompt, options, cancel);

    /// <summary>Streams the answer's text as it is generated, one piece per token (never half a UTF-8 character).</summary>
    public IAsyncEnumerable<string> GenerateStreaming(RgbImage image, string prompt, GenerationOptions? options = null, CancellationToken cancel = default) =>
        GenerateStreaming([image], prompt, options, cancel);

    /// <summary>Streams the answer about several images (see <see cref="Generate(IReadOnlyList{RgbImage}, string, GenerationOptions?, Action{string}?, CancellationToken)"/>).</summary>
    public IAsyncEnumerable<string> GenerateStreaming(IReadOnlyList<RgbImage> images, string prompt, GenerationOptions? options = null,
        CancellationToken cancel = default) =>
        GenerateStreaming(images.Select(MediaInput.Image).ToList(), prompt, options, cancel);

    /// <summary>Streams the answer about images and videos (see <see cref="Generate(IReadOnlyList{MediaInput}, string, GenerationOptions?, Action{string}?, CancellationToken)"/>).</summary>
    public async IAsyncEnumerable<string> GenerateStreaming(IReadOnlyList<MediaInput> media, string prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var request = new Request(this, media, () => PromptIds(prompt, media.Select(m => m.Kind).ToList()), options ?? new GenerationOptions());
        using var steps = request.Run(cancel).GetEnumerator();
        // Each step runs off the caller's context, so a UI thread awaiting this stays responsive.
        Func<bool> next = steps.MoveNext; // one delegate for the whole answer, not one per token
        while (await Task.Run(next, cancel).ConfigureAwait(false))
            yield return steps.Current;
    }

    /// <summary>Unmaps the weights once the requests still running have finished; new requests are refused.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
    }

    void Acquire()
    {
        int leases;
        do
        {
            leases = Volatile.Read(ref _leases);
            ObjectDisposedException.ThrowIf(leases == 0 || Volatile.Read(ref _disposed) != 0, this);
        }
        while (Interlocked.CompareExchange(ref _leases, leases + 1, leases) != leases);
    }

    void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0) Loaded.Dispose();
    }

    /// <summary>The features of one input: an image's, or a video's frames' (which must be <see cref="FramesPerVideo"/>).</summary>
    internal float[] Encode(InferenceSession session, MediaInput input) => input.Kind == MediaKind.Image
        ? session.EncodeImage(Preprocessor.PixelValues(input.Frames[0]))
        : session.EncodeVideo(Preprocessor.VideoPixelValues(input.Frames));

    /// <summary>One request: prompt ids (built when it runs), image encode, prefill, decode, with timings and the parsed answer.</summary>
    sealed class Request(VlmModel owner, IReadOnlyList<MediaInput> media, Func<int[]> promptIds, GenerationOptions options)
    {
        readonly List<AnswerToken> _tokens = new();
        readonly System.Text.StringBuilder _text = new();
        double _encode, _prefill, _decode;
        int _promptLength;

        /// <summary>Runs the request, yielding the answer's text piece by piece (empty pieces are skipped).</summary>
        public IEnumerable<string> Run(CancellationToken cancel)
        {
            owner.Acquire();
            try
            {
                foreach (var piece in Generate(cancel)) yield return piece;
            }
            finally { owner.Release(); }
        }

        IEnumerable<string> Generate(CancellationToken cancel)
        {
            if (media.Count == 0) throw new ArgumentException("a request needs at least one image or video", nameof(media));
            var ids = promptIds();
            _promptLength = ids.Length;
            var session = owner.Loaded.CreateSession(new SessionOptions
            {
                Observer = options.Observer,
                Adapters = AdapterSet.Select(owner._adapters.Values, options.Adapters),
            });
            session.EnsureRoom(ids.Length, options.MaxNewTokens);
            var clock = Stopwatch.StartNew();
            // Each input's features in order: they fill the image- and video-token rows in prompt order.
            var features = media.Count == 1 ? owner.Encode(session, media[0]) : media.SelectMany(m => owner.Encode(session, m)).ToArray();
            _encode = clock.Elapsed.TotalSeconds;
            var decoder = owner.Tokenizer.CreateStreamingDecoder();
            var eos = owner.Loaded.Config.EosTokenIds;
            clock.Restart();
            foreach (var t in session.Generate(ids, features, options, cancel))
            {
                if (t.Index == 0) { _prefill = clock.Elapsed.TotalSeconds; clock.Restart(); }
                if (options.StopAtEos && eos.Contains(t.Id)) break;
                var token = new AnswerToken(t.Id, decoder.Push(t.Id), t.Probability);
                _tokens.Add(token);
                _text.Append(token.Text);
                if (token.Text.Length > 0) yield return token.Text;
            }
            // An answer that ends inside a UTF-8 sequence: the decoder's replacement characters belong to the last token.
            string tail = decoder.Flush();
            if (tail.Length > 0 && _tokens.Count > 0)
            {
                _text.Append(tail);
                _tokens[^1] = _tokens[^1] with { Text = _tokens[^1].Text + tail };
                yield return tail;
            }
            _decode = clock.Elapsed.TotalSeconds;
        }

        public GenerationResult Result()
        {
            string text = _text.ToString();
            int width = media[0].Frames[0].Width, height = media[0].Frames[0].Height;
            var segments = owner.PromptFormat.ParseSegments(text, width, height);
            if (owner.SegmentationDecoder is { } decoder && segments.Count > 0)
            {
                var context = new ForwardContext { Observer = options.Observer };
                segments = segments.Select((s, i) => MaskPaste.Decode(decoder, s, width, height, options.MaskConvention, context, i)).ToList();
            }
            return new GenerationResult(text, _tokens,
                owner.PromptFormat.ParseDetections(text, width, height), segments,
                new GenerationTimings(_encode, _prefill, _decode, _promptLength, Math.Max(0, _tokens.Count - 1)));
        }
    }
}
