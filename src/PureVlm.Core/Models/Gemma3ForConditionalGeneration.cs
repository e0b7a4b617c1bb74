using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>
/// HF <c>Gemma3ForConditionalGeneration</c>: SigLIP (with <c>post_layernorm</c>) → average pool to <c>mm_tokens_per_image</c>
/// → RMSNorm → projection → image-token rows of the prompt, unscaled, after the text rows were scaled by sqrt(hidden) →
/// Gemma 3 decoder, causal except that the tokens of one image block see each other; 0-based positions.
/// </summary>
public sealed class Gemma3ForConditionalGeneration : IVisionLanguageModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The SigLIP tower.</summary>
    public SiglipVisionModel VisionTower { get; }
    /// <summary>The pooling projector into the text embedding space.</summary>
    public Gemma3MultiModalProjector MultiModalProjector { get; }
    /// <inheritdoc/>
    public DecoderModel LanguageModel { get; }
    /// <inheritdoc/>
    public VisionConfig Vision => Config.Vision!;
    /// <inheritdoc/>
    public int ImageTokensPerImage => Config.Gemma3!.MmTokensPerImage;
    /// <inheritdoc/>
    public int ImageTokenGridSide => (int)Math.Round(Math.Sqrt(ImageTokensPerImage));

    /// <summary>
    /// Loads the three parts; <paramref name="newLayout"/> selects transformers ≥ 4.52 names (<c>model.language_model…</c>,
    /// <c>lm_head</c>), which its <c>_checkpoint_conversion_mapping</c> maps from the hub's.
    /// </summary>
    public Gemma3ForConditionalGeneration(WeightScope root, ModelConfig config, bool newLayout)
    {
        Config = config;
        var model = newLayout ? root.Sub("model") : root;
        VisionTower = new SiglipVisionModel(model.Sub("vision_tower").Sub("vision_model"), Vision);
        // HF normalises with the vision config's layer_norm_eps (gemma_pytorch took the text eps; both 1e-6 in every release).
        MultiModalProjector = new Gemma3MultiModalProjector(model.Sub("multi_modal_projector"), Vision.HiddenSize, config.Text.HiddenSize,
            Vision.GridSize, ImageTokensPerImage, Vision.LayerNormEps);
        string textPath = newLayout ? "language_model" : "language_model.model";
        string headPath = newLayout ? "lm_head" : "language_model.lm_head";
        LanguageModel = new GemmaModel(model.Sub(textPath), config.Text, headPath, DecoderModel.LmHeadWeight(root, headPath, config.Text));
    }

    /// <inheritdoc/>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        int rows = ImageTokensPerImage, d = Config.Text.HiddenSize;
        var hidden = VisionTower.Forward(pixelValues, ctx); // [P, vision hidden]
        var features = new float[rows * d];
        MultiModalProjector.Forward(hidden, features, ctx);
        ctx.Report("projector", features, 1, rows, d);
        return features;
    }

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => VisionTower.Linears().Concat(LanguageModel.Linears());

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        bool prefill = cache.Length == 0;
        // HF scales the token embeddings, then scatters the image features in unscaled.
        var x = ImageTokenMerge.Embed(LanguageModel, Config.ImageTokenIndex, ids, imageFeatures, prefill, ctx, scaleText: true);
        if (prefill)
        {
            cache.BidirectionalBlocks = ImageBlocks(ids, Config.ImageTokenIndex);
            if (ctx.Observer != null) ReportMasks(ids, cache.Mask, ctx);
        }
        return LanguageModel.Forward(x, ids.Length, ctx.Scratch.Positions(cache.Length, ids.Length, firstPosition: 0), cache, ctx, scaled: true);
    }

    /// <summary>
    /// What the processor and HF's mask construction give for the prompt: <c>token_type_ids</c> [1, n] (1 on image tokens) and
    /// <c>text.mask_full</c> / <c>text.mask_sliding</c> [n, n] (1 = query row may attend to key column), as the fixture holds them.
    /// </summary>
    void ReportMasks(ReadOnlySpan<int> ids, Kernels.AttentionMask mask, ForwardContext ctx)
    {
        int n = ids.Length;
        var types = new float[n];
        for (int i = 0; i < n; i++) types[i] = ids[i] == Config.ImageTokenIndex ? 1 : 0;
        ctx.Report("token_type_ids", types, 1, n);
        foreach (var (name, window) in new[] { ("text.mask_full", int.MaxValue), ("text.mask_sliding", Config.Text.SlidingWindow) })
        {
            var m = mask with { Window = window };
            var allowed = new float[n * n];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    allowed[i * n + j] = m.Allows(i, j) ? 1 : 0;
            ctx.Report(name, allowed, n, n);
        }
    }

    /// <summary>
    /// Each maximal run of image tokens as a [start, end) pair: the tokens of one image see each other (transformers ≥ 4.53
    /// groups runs of <c>token_type_ids</c> = 1 the same way), or null without images.
    /// </summary>
    static int[]? ImageBlocks(ReadOnlySpan<int> ids, int imageTokenId)
    {
        var blocks = new List<int>();
        for (int i = 0; i < ids.Length; i++)
        {
            if (ids[i] != imageTokenId) continue;
            int start = i;
            while (i + 1 < ids.Length && ids[i + 1] == imageTokenId) i++;
            blocks.Add(start);
            blocks.Add(i + 1);
        }
        return blocks.Count == 0 ? null : blocks.ToArray();
    }
}
