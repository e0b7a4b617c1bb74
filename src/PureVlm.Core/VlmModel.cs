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

namespace PureVlm;

/// <summary>
/// A vision-language checkpoint (PaliGemma, LLaVA) ready to answer questions about images: weights (memory-mapped),
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

    VlmModel(string directory, LoadedModel model, SentencePieceTokenizer tokenizer, ImagePreprocessor preprocessor, MolmoImageProcessor? crops, double loadSeconds)
    {
        Directory = directory; Loaded = model; Tokenizer = tokenizer; Preprocessor = preprocessor; CropPreprocessor = crops; LoadSeconds = loadSeconds;
        VisionLanguage = model.VisionLanguage!;
        PromptFormat = ModelFamilies.PromptFormat(VisionLanguage);
        // Molmo-7B-D's config.json names no eos (-1): its tokenizer's <|endoftext|> is the one the reference stops at.
        _eos = model.Config.EosTokenIds.Contains(-1) && tokenizer.TryGetId(MolmoPrompt.EndOfText, out int eos) ? [eos] : model.Config.EosTokenIds;
    }

    /// <summary>
    /// Loads a vision-language model directory (config.json, safetensors, tokenizer, optional preprocessor_config.json);
    /// null loads <see cref="DefaultModelPath"/>. <paramref name="progress"/> receives short status lines.
    /// </summary>
    public static VlmModel Load(string? directory = null, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        directory = Path.GetFullPath(directory ?? DefaultModelPath);
        if (!System.IO.Directory.Exists(directory)) throw new InvalidModelFileException($"{directory}: model directory not found");
        string configPath = Path.Combine(directory, "config.json");
        if (!File.Exists(configPath)) throw new InvalidModelFileException($"{directory}: no config.json (expected a Hugging Face model directory)");
        progress?.Invoke("reading config and mapping weights");
        var model = LoadedModel.Load(directory);
        try
        {
            if (model.VisionLanguage == null)
                throw new ModelConfigException($"{configPath}: model_type '{model.Config.ModelType}' is a text-only model; VlmModel needs a vision-language checkpoint (model_type paligemma, llava or molmo)");
            progress?.Invoke("loading tokenizer");
            var tokenizer = LoadTokenizer(directory);
            if (model.VisionLanguage is IMultiCropVisionModel)
            {
                CheckTokenizerFits(tokenizer, model.Config, directory, MolmoPrompt.ImPatch);
                var crops = MolmoImageProcessor.FromCheckpoint(directory);
                if (crops.CropSize != model.Config.Vision!.ImageSize)
                    throw new ModelConfigException($"{directory}: preprocessor_config.json's base_image_input_size is {crops.CropSize}, the vision tower expects {model.Config.Vision.ImageSize}");
                var view = new ImagePreprocessor(crops.CropSize, crops.CropSize, mean: [.. crops.Mean], std: [.. crops.Std]);
                return new VlmModel(directory, model, tokenizer, view, crops, clock.Elapsed.TotalSeconds);
            }
            CheckTokenizerFits(tokenizer, model.Config, directory, "<image>");
            var preprocessor = ImagePreprocessor.FromCheckpoint(directory);
            int size = model.Config.Vision!.ImageSize;
            if (preprocessor.Width != size || preprocessor.Height != size)
                throw new ModelConfigException($"{directory}: preprocessor_config.json resizes to {preprocessor.Width}×{preprocessor.Height}, the vision tower expects {size}×{size}");
            return new VlmModel(directory, model, tokenizer, preprocessor, null, clock.Elapsed.TotalSeconds);
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

    /// <summary>The tokenizer must fit the embedding table and spell the image token (<paramref name="imageToken"/>) with the id the model uses.</summary>
    static void CheckTokenizerFits(SentencePieceTokenizer tokenizer, ModelConfig config, string directory, string imageToken)
    {
        int rows = config.Text.VocabSize + (config.Molmo?.AdditionalVocabSize ?? 0);
        if (tokenizer.VocabSize > rows)
            throw new ModelConfigException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens, the model's embedding has {rows} rows");
        if (!tokenizer.TryGetId(imageToken, out int imageId))
            throw new ModelConfigException($"{directory}: the tokenizer has no {imageToken} token (the model's image token id is {config.ImageTokenIndex})");
        if (imageId != config.ImageTokenIndex)
            throw new ModelConfigException($"{directory}: the model's image token id is {config.ImageTokenIndex}, the tokenizer's {imageToken} is {imageId}");
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

    /// <summary>
    /// The ids the model sees for a prompt about these images: for Molmo, whose image tokens follow each image's tiling,
    /// from the images' crops; for the others the same as <see cref="PromptIds(string, int)"/> with their count.
    /// </summary>
    public int[] PromptIds(string prompt, IReadOnlyList<RgbImage> images) =>
        CropPreprocessor is { } crops ? ((MolmoPrompt)PromptFormat).Build(Tokenizer, prompt, images.Select(crops.Process).ToList()) : PromptIds(prompt, images.Count);

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
    public GenerationResult Generate(IReadOnlyList<RgbImage> images, string prompt, GenerationOptions? options = null, Action<string>? onText = null, CancellationToken cancel = default)
    {
        var request = new Request(this, images, prompt, options ?? new GenerationOptions());
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
    public async IAsyncEnumerable<string> GenerateStreaming(IReadOnlyList<RgbImage> images, string prompt, GenerationOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancel = default)
    {
        var request = new Request(this, images, prompt, options ?? new GenerationOptions());
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

    /// <summary>One request: image encode, prefill, decode, with timings and the parsed answer.</summary>
    sealed class Request(VlmModel owner, IReadOnlyList<RgbImage> images, string prompt, GenerationOptions options)
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
            if (images.Count == 0) throw new ArgumentException("a request needs at least one image", nameof(images));
            var crops = owner.CropPreprocessor is { } cropper ? images.Select(cropper.Process).ToList() : null;
            var ids = crops != null ? ((MolmoPrompt)owner.PromptFormat).Build(owner.Tokenizer, prompt, crops) : owner.PromptIds(prompt, images.Count);
            _promptLength = ids.Length;
            var session = owner.Loaded.CreateSession(new SessionOptions
            {
                Observer = options.Observer,
                Adapters = AdapterSet.Select(owner._adapters.Values, options.Adapters),
            });
            session.EnsureRoom(ids.Length, options.MaxNewTokens);
            var clock = Stopwatch.StartNew();
            // Each image's features in order: they fill the image-token rows in prompt order.
            var features = crops != null ? crops.SelectMany(session.EncodeImage).ToArray()
                : images.Count == 1 ? session.EncodeImage(owner.Preprocessor.PixelValues(images[0]))
                : images.SelectMany(image => session.EncodeImage(owner.Preprocessor.PixelValues(image))).ToArray();
            _encode = clock.Elapsed.TotalSeconds;
            var decoder = owner.Tokenizer.CreateStreamingDecoder();
            var eos = owner._eos;
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
            return new GenerationResult(text, _tokens,
                owner.PromptFormat.ParseDetections(text, images[0].Width, images[0].Height),
                owner.PromptFormat.ParseSegments(text, images[0].Width, images[0].Height),
                new GenerationTimings(_encode, _prefill, _decode, _promptLength, Math.Max(0, _tokens.Count - 1)))
            {
                Points = owner.PromptFormat.ParsePoints(text, images[0].Width, images[0].Height),
            };
        }
    }
}
