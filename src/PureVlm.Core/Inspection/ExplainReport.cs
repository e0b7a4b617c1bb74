using System.Text.Json;
using System.Text.Json.Serialization;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;

namespace PureVlm.Inspection;

/// <summary>What to explain: how many tokens to generate and which decoder layer's attention to show.</summary>
public sealed record ExplainOptions
{
    /// <summary>Most tokens to generate (greedy).</summary>
    public int MaxNewTokens { get; init; } = 32;
    /// <summary>Decoder layer whose attention heatmap is shown beside the mean over layers; null means the last layer.</summary>
    public int? Layer { get; init; }
    /// <summary>Alternatives listed per token.</summary>
    public int TopK { get; init; } = 5;
    /// <summary>Names of loaded LoRA adapters active for this request (the logit lens shows the base output layer).</summary>
    public IReadOnlyCollection<string> Adapters { get; init; } = [];
}

/// <summary>The model that answered, in terms every vision-language family has.</summary>
/// <param name="Directory">The model folder.</param>
/// <param name="ModelType">config.json's <c>model_type</c> (paligemma, llava).</param>
/// <param name="TextModelType">The decoder's <c>model_type</c> (gemma, gemma2, llama).</param>
/// <param name="ImageSize">Side of the vision tower's input (px).</param>
/// <param name="PatchSize">Side of a patch (px).</param>
/// <param name="PatchGrid">Patches per side: the heatmaps are PatchGrid × PatchGrid.</param>
/// <param name="ImageTokens">Image tokens one image puts in the prompt: PatchGrid², plus one when LLaVA keeps CLIP's class token ("full").</param>
/// <param name="TextLayers">Decoder layers.</param>
/// <param name="TextHeads">Query heads per decoder layer.</param>
/// <param name="HiddenSize">Decoder width.</param>
/// <param name="VocabSize">Rows of the output layer.</param>
public sealed record ReportModel(string Directory, string ModelType, string TextModelType, int ImageSize, int PatchSize, int PatchGrid,
    int ImageTokens, int TextLayers, int TextHeads, int HiddenSize, int VocabSize)
{
    /// <summary>The description of <paramref name="model"/>, loaded from <paramref name="directory"/>.</summary>
    public static ReportModel Of(string directory, IVisionLanguageModel model)
    {
        var (vision, text) = (model.Vision, model.Config.Text);
        return new(directory, model.Config.ModelType, text.ModelType, vision.ImageSize, vision.PatchSize, model.ImageTokenGridSide,
            model.ImageTokensPerImage, text.NumHiddenLayers, text.NumAttentionHeads, text.HiddenSize, text.VocabSize);
    }
}

/// <summary>
/// The question asked (for a video, <paramref name="Image"/> and its size are the first frame's). The keys a request
/// about one image without adapters does not need are left out of the JSON then (schema: "present only when").
/// </summary>
public sealed record ReportRequest(string? Image, int ImageWidth, int ImageHeight, string Prompt, int PromptTokens, int MaxNewTokens, int Layer)
{
    /// <summary>The video's file or folder, or null for an image.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Video { get; init; }
    /// <summary>For a video, the frames the heatmaps cover; null for an image.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Frames { get; init; }
    /// <summary>The LoRA adapters active for the request, by name, in the order given; null when none.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? Adapters { get; init; }
}

/// <summary>The whole answer and how sure the model was of it.</summary>
/// <param name="Text">The generated text (eos excluded).</param>
/// <param name="TokenCount">Tokens in the answer.</param>
/// <param name="StoppedAtEos">True when generation ended with eos rather than at the token limit.</param>
/// <param name="MeanLogprob">Mean natural-log probability of the answer's tokens (0 for an empty answer).</param>
/// <param name="MinProbability">Lowest probability of any answer token (1 for an empty answer).</param>
/// <param name="MinProbabilityIndex">Index of that token, or -1 for an empty answer.</param>
public sealed record ReportAnswer(string Text, int TokenCount, bool StoppedAtEos, double MeanLogprob, double MinProbability, int MinProbabilityIndex);

/// <summary>A token and its probability under softmax(logits).</summary>
public sealed record TokenProbability(int Id, string Piece, double Probability);

/// <summary>Where one token looked in the image: attention of its row to the patches' image-token keys, mean over heads.</summary>
/// <param name="Layers">Per decoder layer, [patch_grid²] in patch order (row-major over the patch grid); for a video [frames · patch_grid²], frame by frame.</param>
/// <param name="Mean">The mean of <paramref name="Layers"/> over layers.</param>
/// <param name="ImageShare">Per decoder layer, the attention mass on the patches' keys (the rest went to text tokens and to a class token).</param>
public sealed record ImageAttention(IReadOnlyList<float[]> Layers, float[] Mean, float[] ImageShare);

/// <summary>The logit lens at one layer: layer i's residual stream put through the final norm and output layer.</summary>
/// <param name="Layer">Decoder layer (the last one gives the model's real distribution).</param>
/// <param name="Top">The most likely token at that layer.</param>
/// <param name="ChosenProbability">The probability, at that layer, of the token finally generated.</param>
public sealed record LensEntry(int Layer, TokenProbability Top, double ChosenProbability);

/// <summary>One generated token, explained.</summary>
/// <param name="Index">0 for the first generated token.</param>
/// <param name="Id">Token id.</param>
/// <param name="Piece">Its vocabulary piece.</param>
/// <param name="Text">The text it added to the answer.</param>
/// <param name="Probability">Its probability.</param>
/// <param name="Logprob">Natural log of it.</param>
/// <param name="Entropy">Entropy of the whole next-token distribution, in nats.</param>
/// <param name="Top">The most likely tokens, most likely first (the generated one is first under greedy decoding).</param>
/// <param name="Attention">Where it looked in the image.</param>
/// <param name="LogitLens">One entry per decoder layer.</param>
public sealed record TokenExplanation(int Index, int Id, string Piece, string Text, double Probability, double Logprob, double Entropy,
    IReadOnlyList<TokenProbability> Top, ImageAttention Attention, IReadOnlyList<LensEntry> LogitLens);

/// <summary>A box of a <c>detect</c> answer, in pixels of the original image: [x0, y0, x1, y1].</summary>
public sealed record ReportDetection(string Label, float[] Box);

/// <summary>
/// A <c>segment</c> answer's object: its box (pixels, [x0, y0, x1, y1]), its 16 mask codes, and — when a mask decoder is
/// loaded — the mask as COCO uncompressed RLE (as <c>run --json</c> gives it) and its area in pixels; else both null.
/// </summary>
public sealed record ReportSegment(string Label, float[] Box, int[] Codes, ReportMask? Mask, int? Area)
{
    /// <summary>The report's form of a parsed segment.</summary>
    public static ReportSegment Of(Outputs.Segment s) =>
        new(s.Label, s.Box, s.Codes, s.Mask?.ToRle() is { } rle ? new ReportMask([rle.Height, rle.Width], rle.Counts) : null, s.Mask?.Area);
}

/// <summary>COCO uncompressed RLE: <c>size</c> [H, W] and run lengths over the column-major pixels, starting with a run of 0s.</summary>
public sealed record ReportMask(int[] Size, int[] Counts);

/// <summary>
/// The explain report (the content of report.json; schema in docs/report-schema.md): for every generated token its
/// probability, alternatives, entropy, attention over the image and logit lens, plus the answer's confidence and boxes.
/// </summary>
public sealed record ExplainReport(string Schema, ReportModel Model, ReportRequest Request, ReportAnswer Answer,
    IReadOnlyList<TokenExplanation> Tokens, IReadOnlyList<ReportDetection> Detections, IReadOnlyList<ReportSegment> Segments)
{
    /// <summary>The value of <see cref="Schema"/> this version writes.</summary>
    public const string SchemaId = "purevlm.explain/1";

    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // pieces such as ▁red stay readable
    };

    /// <summary>The report as indented JSON with snake_case keys.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>
    /// Answers <paramref name="prompt"/> about <paramref name="image"/> greedily with an <see cref="ExplainRecorder"/> attached
    /// and explains every generated token.
    /// </summary>
    public static Explanation Create(VlmModel model, RgbImage image, string prompt, ExplainOptions? options = null) =>
        Create(model, MediaInput.Image(image), prompt, options);

    /// <summary>
    /// Answers <paramref name="prompt"/> about one image or video greedily with an <see cref="ExplainRecorder"/> attached
    /// and explains every generated token; a video's heatmaps cover each of its frames.
    /// </summary>
    public static Explanation Create(VlmModel model, MediaInput input, string prompt, ExplainOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Create(model, input, prompt, model.PromptIds(prompt, [input.Kind]), generation => model.Generate([input], prompt, generation), options);
    }

    /// <summary>
    /// Answers the chat <paramref name="messages"/> (HF's format, one image part) about <paramref name="image"/> greedily and
    /// explains every generated token; the report's prompt is the chat as the family's template renders it.
    /// </summary>
    public static Explanation Create(VlmModel model, RgbImage image, IReadOnlyList<ChatMessage> messages, ExplainOptions? options = null)
    {
        var ids = model.PromptIds(messages);
        string rendered = ((IChatPromptFormat)model.PromptFormat).Render(messages);
        return Create(model, MediaInput.Image(image), rendered, ids, generation => model.Generate([image], messages, generation), options);
    }

    static Explanation Create(VlmModel model, MediaInput input, string prompt, int[] ids, Func<GenerationOptions, GenerationResult> generate,
        ExplainOptions? options)
    {
        options ??= new ExplainOptions();
        var vlm = model.VisionLanguage;
        var text = vlm.Config.Text;
        int layer = options.Layer ?? text.NumHiddenLayers - 1;
        if (layer < 0 || layer >= text.NumHiddenLayers)
            throw new ArgumentOutOfRangeException(nameof(options), $"layer {layer} does not exist; the decoder has layers 0..{text.NumHiddenLayers - 1}");
        if (options.TopK < 1) throw new ArgumentOutOfRangeException(nameof(options), $"TopK is {options.TopK}, expected >= 1");

        var recorder = input.Kind == MediaKind.Video ? ExplainRecorder.ForVideo((IVideoLanguageModel)vlm, ids) : ExplainRecorder.For(vlm, ids);
        var result = generate(new GenerationOptions { MaxNewTokens = options.MaxNewTokens, Adapters = options.Adapters, Observer = recorder });
        var image = input.Frames[0];
        var tokens = ExplainTokens(vlm, recorder, result.Tokens, id => Piece(model, id), options.TopK);
        var report = new ExplainReport(SchemaId,
            ReportModel.Of(model.Directory, vlm),
            new ReportRequest(image.SourcePath, image.Width, image.Height, prompt, ids.Length, options.MaxNewTokens, layer)
            {
                Video = input.Kind == MediaKind.Video ? input.SourcePath : null,
                Frames = input.Kind == MediaKind.Video ? input.Frames.Count : null,
                Adapters = options.Adapters.Count == 0 ? null : options.Adapters.ToList(),
            },
            Summarise(result.Text, tokens, stoppedAtEos: recorder.Steps.Count > result.Tokens.Count),
            tokens,
            result.Detections.Select(d => new ReportDetection(d.Label, d.Box)).ToList(),
            result.Segments.Select(ReportSegment.Of).ToList());
        return new Explanation(report, image, model.Preprocessor.ModelView(image), result.Segments.Select(x => x.Mask?.Pixels).ToList())
        {
            FrameViews = input.Kind == MediaKind.Video ? input.Frames.Select(model.Preprocessor.ModelView).ToList() : [],
        };
    }

    /// <summary>
    /// Explains each token of <paramref name="answer"/> from what <paramref name="recorder"/> saw while <paramref name="model"/>
    /// generated it (step k produced token k): probability, entropy, the <paramref name="topK"/> alternatives, attention
    /// over the patch grid and the logit lens through the decoder's own final norm and output layer.
    /// <paramref name="piece"/> names a token id. The part of <see cref="Create(VlmModel, MediaInput, string, ExplainOptions?)"/> that needs no tokenizer or image file.
    /// </summary>
    public static List<TokenExplanation> ExplainTokens(IVisionLanguageModel model, ExplainRecorder recorder, IReadOnlyList<AnswerToken> answer,
        Func<int, string> piece, int topK)
    {
        if (topK < 1) throw new ArgumentOutOfRangeException(nameof(topK), $"topK is {topK}, expected >= 1");
        if (recorder.Steps.Count < answer.Count)
            throw new ArgumentException($"the recorder saw {recorder.Steps.Count} steps for {answer.Count} answer tokens; attach it to the request that generated them", nameof(recorder));
        var lm = model.LanguageModel;
        int layers = lm.Config.NumHiddenLayers;
        var tokens = new List<TokenExplanation>();
        var lensLogits = new float[lm.Config.VocabSize];
        for (int k = 0; k < answer.Count; k++)
        {
            var answerToken = answer[k];
            var step = recorder.Steps[k];
            var dist = new Distribution(step.Logits);
            var lens = new List<LensEntry>();
            for (int i = 0; i < layers; i++)
            {
                lm.Logits(step.Residual[i], lensLogits);
                var layerDist = new Distribution(lensLogits);
                int top = layerDist.ArgMax;
                lens.Add(new LensEntry(i, new TokenProbability(top, piece(top), layerDist.Probability(top)), layerDist.Probability(answerToken.Id)));
            }
            tokens.Add(new TokenExplanation(k, answerToken.Id, piece(answerToken.Id), answerToken.Text,
                dist.Probability(answerToken.Id), dist.Logprob(answerToken.Id), dist.Entropy,
                dist.Top(topK).Select(id => new TokenProbability(id, piece(id), dist.Probability(id))).ToList(),
                Attention(step.ImageAttention), lens));
        }
        return tokens;
    }

    /// <summary>The piece of an id, or "" past the tokenizer: checkpoints pad their output layer (PaliGemma 257216 rows for 257152 pieces, LLaVA 32064 for 32002).</summary>
    static string Piece(VlmModel model, int id) => model.Tokenizer.TryIdToPiece(id, out var piece) ? piece : "";

    static ImageAttention Attention(float[][] layers)
    {
        int n = layers[0].Length;
        var mean = new float[n];
        foreach (var l in layers)
            for (int j = 0; j < n; j++) mean[j] += l[j] / layers.Length;
        return new ImageAttention(layers, mean, layers.Select(l => l.Sum()).ToArray());
    }

    static ReportAnswer Summarise(string text, List<TokenExplanation> tokens, bool stoppedAtEos)
    {
        if (tokens.Count == 0) return new ReportAnswer(text, 0, stoppedAtEos, 0, 1, -1);
        var lowest = tokens.MinBy(t => t.Probability)!;
        return new ReportAnswer(text, tokens.Count, stoppedAtEos, tokens.Average(t => t.Logprob), lowest.Probability, lowest.Index);
    }

    /// <summary>softmax(logits) computed in double, for probabilities, top-k and entropy.</summary>
    sealed class Distribution
    {
        readonly double[] _logits;
        readonly double _logZ;

        public Distribution(ReadOnlySpan<float> logits)
        {
            _logits = new double[logits.Length];
            double max = double.NegativeInfinity;
            for (int i = 0; i < logits.Length; i++) { _logits[i] = logits[i]; max = Math.Max(max, logits[i]); }
            double sum = 0;
            foreach (var x in _logits) sum += Math.Exp(x - max);
            _logZ = max + Math.Log(sum);
            double expected = 0;
            foreach (var x in _logits) expected += Math.Exp(x - _logZ) * x;
            Entropy = _logZ - expected; // H = -Σ p log p = log Z - Σ p x
            ArgMax = Array.IndexOf(_logits, max);
        }

        public double Entropy { get; }
        public int ArgMax { get; }
        public double Logprob(int id) => _logits[id] - _logZ;
        public double Probability(int id) => Math.Exp(Logprob(id));

        /// <summary>The k most likely ids, ties by ascending id.</summary>
        public int[] Top(int k) =>
            Enumerable.Range(0, _logits.Length).OrderByDescending(i => _logits[i]).ThenBy(i => i).Take(k).ToArray();
    }
}

/// <summary>A report plus the pictures it is drawn on: the input image and the model's resized view of it.</summary>
/// <param name="Report">The report (report.json).</param>
/// <param name="Image">The image as given.</param>
/// <param name="ModelView">The image resized (and, for CLIP, centre-cropped) as the model saw it (image_size × image_size).</param>
/// <param name="SegmentMasks">Per segment of the answer, its mask over <paramref name="Image"/> (0 outside), or null without one.</param>
public sealed record Explanation(ExplainReport Report, RgbImage Image, RgbImage ModelView, IReadOnlyList<byte[]?> SegmentMasks)
{
    /// <summary>For a video, every frame as the model saw it (the first is <see cref="ModelView"/>); empty for an image.</summary>
    public IReadOnlyList<RgbImage> FrameViews { get; init; } = [];
}
