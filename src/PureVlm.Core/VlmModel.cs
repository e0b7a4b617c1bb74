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
using PureVlm.Tensors;
using PureVlm.Segmentation;

namespace PureVlm;

/// <summary>
/// A vision-language checkpoint (PaliGemma, LLaVA, Video-LLaVA, Gemma 3, Molmo) ready to answer questions about images (and,
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
    /// <summary>
    /// Resize and normalisation as the checkpoint's preprocessor_config.json says. For a multi-crop family (Molmo), whose
    /// images go through <see cref="CropPreprocessor"/>, a plain resize to one crop with its mean and std, for pictures of what the model sees.
    /// </summary>
    public ImagePreprocessor Preprocessor { get; }
    /// <summary>Molmo's multi-crop preprocessing (from preprocessor_config.json), or null for a family that takes one pixel_values per image.</summary>
    public MolmoImageProcessor? CropPreprocessor { get; }
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

    readonly IReadOnlyList<int> _eos;

    VlmModel(string directory, LoadedModel model, SentencePieceTokenizer tokenizer, ImagePreprocessor preprocessor, MolmoImageProcessor? crops,
        VqVaeDecoder? segmentation, double loadSeconds)
    {
        Directory = directory; Loaded = model; Tokenizer = tokenizer; Preprocessor = preprocessor; CropPreprocessor = crops;
        SegmentationDecoder = segmentation; LoadSeconds = loadSeconds;
        VisionLanguage = model.VisionLanguage!;
        PromptFormat = ModelFamilies.PromptFormat(VisionLanguage);
        // Molmo-7B-D's config.json names no eos (-1): its tokenizer's <|endoftext|> is the one the reference stops at.
        _eos = model.Config.EosTokenIds.Contains(-1) && tokenizer.TryGetId(MolmoPrompt.EndOfText, out int eos) ? [eos] : model.Config.EosTokenIds;
    }

    /// <summary>
    /// Loads a vision-language model directory (config.json, safetensors, tokenizer, optional preprocessor_config.json);
    /// null loads <see cref="DefaultModelPath"/>. <paramref name="progress"/> receives short status lines.
    /// <paramref name="segmentationDecoder"/> is the <c>vae-oid.npz</c> that turns <c>&lt;segNNN&gt;</c> codes into masks;
    /// null takes <c>vae-oid.npz</c> from the model directory when it is there. <paramref name="directory"/> may also be a
    /// Hugging Face repo id (<c>google/paligemma2-3b-pt-224</c>), found offline in the local hub cache at
    /// <paramref name="revision"/> (default <c>main</c>; see <see cref="HfCache.ResolveModel"/>). <paramref name="quantize"/>
    /// quantizes the float weights as they load (see <see cref="LoadedModel.Load(string, QuantizationRecipe?)"/>).
    /// </summary>
    public static VlmModel Load(string? directory = null, Action<string>? progress = null, string? segmentationDecoder = null, string? revision = null,
        QuantizationRecipe? quantize = null)
    {
        var clock = Stopwatch.StartNew();
        directory = HfCache.ResolveModel(directory ?? DefaultModelPath, revision);
        string configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) throw new InvalidModelFileException($"{directory}: no config.json (expected a Hugging Face model directory)");
        progress?.Invoke(quantize == null ? "reading config and mapping weights" : $"reading config and quantizing weights to {quantize.Bits} bits");
        var model = LoadedModel.Load(directory, quantize);
        try
        {
            if (model.VisionLanguage == null)
                throw new ModelConfigException($"{configPath}: model_type '{model.Config.ModelType}' is a text-only model; VlmModel needs a vision-language checkpoint (model_type paligemma, llava, video_llava, gemma3 or molmo)");
            progress?.Invoke("loading tokenizer");
            var tokenizer = LoadTokenizer(directory);
            CheckTokenizerFits(tokenizer, model.Config, ModelFamilies.PromptFormat(model.VisionLanguage).ImageToken, directory);
            if (model.VisionLanguage is IMultiCropVisionModel)
            {
                var crops = MolmoImageProcessor.FromCheckpoint(directory);
                if (crops.CropSize != model.Config.Vision!.ImageSize)
                    throw new ModelConfigException($"{directory}: preprocessor_config.json's base_image_input_size is {crops.CropSize}, the vision tower expects {model.Config.Vision.ImageSize}");
                var view = new ImagePreprocessor(crops.CropSize, crops.CropSize, mean: [.. crops.Mean], std: [.. crops.Std]);
                return new VlmModel(directory, model, tokenizer, view, crops, null, clock.Elapsed.TotalSeconds);
            }
            var preprocessor = ImagePreprocessor.FromCheckpoint(directory);
            int size = model.Config.Vision!.ImageSize;
            if (preprocessor.Width != size || preprocessor.Height != size)
                throw new ModelConfigException($"{directory}: preprocessor_config.json resizes to {preprocessor.Width}×{preprocessor.Height}, the vision tower expects {size}×{size}");
            segmentationDecoder ??= File.Exists(Path.Combine(directory, DefaultDecoderFile)) ? Path.Combine(directory, DefaultDecoderFile) : null;
            if (segmentationDecoder != null) progress?.Invoke("loading the mask decoder");
            var segmentation = segmentationDecoder == null ? null : VqVaeDecoder.Load(segmentationDecoder);
            return new VlmModel(directory, model, tokenizer, preprocessor, null, segmentation, clock.Elapsed.TotalSeconds);
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

    /// <summary>
    /// The tokenizer must fit the embedding table (Molmo's: plus its additional vocabulary) and spell the image token
    /// (<paramref name="imageToken"/>, the family's) and any video token with the ids the model uses.
    /// </summary>
    static void CheckTokenizerFits(SentencePieceTokenizer tokenizer, ModelConfig config, string imageToken, string directory)
    {
        int rows = config.Text.VocabSize + (config.Molmo?.AdditionalVocabSize ?? 0);
        if (tokenizer.VocabSize > rows)
            throw new ModelConfigException(config.Molmo == null
                ? $"{directory}: the tokenizer has {tokenizer.VocabSize} tokens, the model's vocab_size is {config.Text.VocabSize}"
                : $"{directory}: the tokenizer has {tokenizer.VocabSize} tokens, the model's embedding has {rows} rows");
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

    /// <summary>The model's name where a name is needed (an API's <c>model</c> field): its directory's name.</summary>
    public string Name => Path.GetFileName(Directory.TrimEnd(Path.DirectorySeparatorChar));

    /// <summary>
    /// The adapters a model name selects: <c>NAME</c> (<see cref="Name"/>) for the base model, <c>NAME+A</c> or <c>NAME+A+B</c>
    /// for loaded adapters A and B; null or empty also means the base model. Anything else is an <see cref="ArgumentException"/>.
    /// </summary>
    public IReadOnlyList<string> AdaptersNamedBy(string? modelName)
    {
        if (string.IsNullOrEmpty(modelName)) return [];
        var parts = modelName.Split('+');
        if (parts[0] != Name) throw new ArgumentException($"model '{modelName}' is not loaded; this one is '{Name}' (with an adapter: '{Name}+ADAPTER')", nameof(modelName));
        foreach (var a in parts.Skip(1))
            if (!_adapters.ContainsKey(a))
                throw new ArgumentException($"no adapter named '{a}' is loaded (loaded: {(_adapters.IsEmpty ? "none" : string.Join(", ", _adapters.Keys.Order()))})", nameof(modelName));
        return parts[1..];
    }

    /// <summary>The ids the model sees for a prompt about <paramref name="images"/> images, as the family's processor builds them.</summary>
    public int[] PromptIds(string prompt, int images = 1) => PromptFormat.Build(Tokenizer, prompt, images);

    /// <summary>
    /// The ids the model sees for a prompt about these images: for Molmo, whose image tokens follow each image's tiling,
    /// from the images' crops; for the others the same as <see cref="PromptIds(string, int)"/> with their count.
    /// </summary>
    public int[] PromptIds(string prompt, IReadOnlyList<RgbImage> images) => PromptIds(prompt, images.Select(MediaInput.Image).ToList());

    /// <summary>The ids the model sees for a prompt about images and videos in the order of <paramref name="media"/> (Molmo: from the images' crops).</summary>
    public int[] PromptIds(string prompt, IReadOnlyList<MediaInput> media) => PromptIds(prompt, media, Crops(media));

    /// <summary>The ids the model sees for a prompt about images and videos in the order of <paramref name="media"/>.</summary>
    public int[] PromptIds(string prompt, IReadOnlyList<MediaKind> media) => CropPreprocessor != null
        ? throw new ArgumentException("Molmo's image tokens depend on each image's size and tiling: give the images (PromptIds(prompt, images))", nameof(media))
        : PromptFormat.Build(Tokenizer, prompt, media);

    int[] PromptIds(string prompt, IReadOnlyList<MediaInput> media, IReadOnlyList<MultiCropImage>? crops) => crops != null
        ? ((MolmoPrompt)PromptFormat).Build(Tokenizer, prompt, crops)
        : PromptIds(prompt, media.Select(m => m.Kind).ToList());

    /// <summary>Each image's crops for a multi-crop family (Molmo), else null.</summary>
    IReadOnlyList<MultiCropImage>? Crops(IReadOnlyList<MediaInput> media) => CropPreprocessor is { } cropper
        ? media.Select(m => m.Kind == MediaKind.Image ? cropper.Process(m.Frames[0])
            : throw new ArgumentException($"{Directory}: this model ({Loaded.Config.ModelType}) has no video tower; give images", nameof(media))).ToList()
        : null;

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
        using var request = new Request(this, images.Select(MediaInput.Image).ToList(), (_, _) => PromptIds(messages), options ?? new GenerationOptions());
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
        using var request = new Request(this, media, (m, crops) => PromptIds(prompt, m, crops), options ?? new GenerationOptions());
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
        using var request = new Request(this, media, (m, crops) => PromptIds(prompt, m, crops), options ?? new GenerationOptions());
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

    /// <summary>A token's text as a piece of an answer: its vocabulary piece with SentencePiece's ▁ read as a space.</summary>
    internal string PieceText(int id) => Tokenizer.TryIdToPiece(id, out var piece) ? piece.Replace('\u2581', ' ') : "";

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

    /// <summary>
    /// One request: image encode, prefill, decode, with timings and the parsed answer. Its steps are driven either here,
    /// alone (<see cref="Run"/>), or by <see cref="VlmEngine"/> with other requests' decode steps batched together. Holds a
    /// lease on the model from construction to <see cref="Dispose"/>.
    /// </summary>
    internal sealed class Request : IDisposable
    {
        readonly VlmModel _owner;
        readonly IReadOnlyList<MediaInput> _media;
        readonly IReadOnlyList<MultiCropImage>? _crops;
        readonly GenerationOptions _options;
        readonly int[] _ids;
        readonly StreamingDecoder _decoder;
        readonly List<AnswerToken> _tokens = new();
        readonly System.Text.StringBuilder _text = new();
        readonly Stopwatch _clock = new();
        double _encode, _prefill, _decode;
        int _generated, _released;

        /// <summary>The request's own KV cache, adapters and scratch.</summary>
        public InferenceSession Session { get; }
        /// <summary>The request's token picker (its own RNG).</summary>
        public Sampler Sampler { get; }
        /// <summary>Tokens generated so far (eos included).</summary>
        public int Generated => _generated;
        /// <summary>The last generated token, fed back by the next decode step.</summary>
        public int LastToken { get; private set; }
        /// <summary>True once eos or <see cref="GenerationOptions.MaxNewTokens"/> ended the answer.</summary>
        public bool Done { get; private set; }
        /// <summary>True when an observer watches it (then it cannot share a forward pass).</summary>
        public bool Observed => _options.Observer != null;

        /// <summary>A prompt about <paramref name="images"/> (as <see cref="Generate(IReadOnlyList{RgbImage}, string, GenerationOptions?, Action{string}?, CancellationToken)"/>).</summary>
        public Request(VlmModel owner, IReadOnlyList<RgbImage> images, string prompt, GenerationOptions options)
            : this(owner, images.Select(MediaInput.Image).ToList(), (media, crops) => owner.PromptIds(prompt, media, crops), options) { }

        /// <summary>
        /// Checks everything that can be checked before any compute: inputs, adapters, prompt length. <paramref name="promptIds"/>
        /// builds the prompt's ids from the inputs and, for Molmo, their crops (null for other families).
        /// </summary>
        public Request(VlmModel owner, IReadOnlyList<MediaInput> media, Func<IReadOnlyList<MediaInput>, IReadOnlyList<MultiCropImage>?, int[]> promptIds, GenerationOptions options)
        {
            if (media.Count == 0) throw new ArgumentException("a request needs at least one image or video", nameof(media));
            owner.Acquire();
            try
            {
                (_owner, _media, _options) = (owner, media, options);
                _crops = owner.Crops(media);
                _ids = promptIds(media, _crops);
                Session = owner.Loaded.CreateSession(new SessionOptions
                {
                    Observer = options.Observer,
                    Adapters = AdapterSet.Select(owner._adapters.Values, options.Adapters),
                });
                Session.EnsureRoom(_ids.Length, options.MaxNewTokens);
                Sampler = new Sampler(options, owner.Loaded.Config.Text.VocabSize);
                _decoder = owner.Tokenizer.CreateStreamingDecoder();
            }
            catch { owner.Release(); throw; }
        }

        /// <summary>Encodes the images and runs the prompt; returns the first token's logits.</summary>
        public ReadOnlySpan<float> Prefill()
        {
            _clock.Restart();
            // Each input's features in order: they fill the image- and video-token rows in prompt order.
            var features = _crops != null ? _crops.SelectMany(Session.EncodeImage).ToArray()
                : _media.Count == 1 ? _owner.Encode(Session, _media[0]) : _media.SelectMany(m => _owner.Encode(Session, m)).ToArray();
            _encode = _clock.Elapsed.TotalSeconds;
            _clock.Restart();
            return Session.Prefill(_ids, features);
        }

        /// <summary>Takes the next generated token; returns it as an answer token, or null when it is eos (which ends the answer).</summary>
        public AnswerToken? Accept(GeneratedToken t)
        {
            if (_generated++ == 0) { _prefill = _clock.Elapsed.TotalSeconds; _clock.Restart(); }
            LastToken = t.Id;
            Done = _generated >= _options.MaxNewTokens;
            if (_options.StopAtEos && _owner._eos.Contains(t.Id)) { Done = true; return null; }
            var token = new AnswerToken(t.Id, _decoder.Push(t.Id), t.Probability)
            {
                TopLogprobs = t.TopLogprobs?.Select(a => new TokenAlternative(a.Id, _owner.PieceText(a.Id), a.Logprob)).ToArray(),
            };
            _tokens.Add(token);
            _text.Append(token.Text);
            return token;
        }

        /// <summary>Ends the answer; returns the text of a UTF-8 sequence left incomplete (its replacement characters, added to the last token), or "".</summary>
        public string Finish()
        {
            string tail = _decoder.Flush();
            if (tail.Length > 0 && _tokens.Count > 0)
            {
                _text.Append(tail);
                _tokens[^1] = _tokens[^1] with { Text = _tokens[^1].Text + tail };
            }
            else tail = "";
            _decode = _clock.Elapsed.TotalSeconds;
            return tail;
        }

        /// <summary>Runs the whole request alone, yielding the answer's text piece by piece (empty pieces are skipped).</summary>
        public IEnumerable<string> Run(CancellationToken cancel)
        {
            try
            {
                cancel.ThrowIfCancellationRequested();
                Session.Cancel = cancel;
                var logits = Prefill();
                while (true)
                {
                    var token = Accept(Sampler.Pick(logits, _generated));
                    if (token is { Text.Length: > 0 }) yield return token.Text;
                    if (Done) break;
                    cancel.ThrowIfCancellationRequested();
                    logits = Session.Decode(LastToken);
                }
                string tail = Finish();
                if (tail.Length > 0) yield return tail;
            }
            finally { Dispose(); }
        }

        public GenerationResult Result()
        {
            string text = _text.ToString();
            int width = _media[0].Frames[0].Width, height = _media[0].Frames[0].Height;
            var segments = _owner.PromptFormat.ParseSegments(text, width, height);
            if (_owner.SegmentationDecoder is { } decoder && segments.Count > 0)
            {
                var context = new ForwardContext { Observer = _options.Observer };
                segments = segments.Select((s, i) => MaskPaste.Decode(decoder, s, width, height, _options.MaskConvention, context, i)).ToList();
            }
            return new GenerationResult(text, _tokens,
                _owner.PromptFormat.ParseDetections(text, width, height), segments,
                new GenerationTimings(_encode, _prefill, _decode, _ids.Length, Math.Max(0, _tokens.Count - 1)))
            {
                Points = _owner.PromptFormat.ParsePoints(text, width, height),
            };
        }

        /// <summary>Gives the model lease back (once).</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) _owner.Release();
        }
    }
}
