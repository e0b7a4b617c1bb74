using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>
/// HF <c>LlavaForConditionalGeneration</c>: CLIP → hidden_states[vision_feature_layer] (class token dropped for the
/// "default" strategy) → two-layer projector → image-token rows of the prompt, unscaled → LLaMA decoder, causal
/// everywhere, 0-based positions.
/// </summary>
public sealed class LlavaForConditionalGeneration : IVisionLanguageModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The CLIP tower.</summary>
    public ClipVisionModel VisionTower { get; }
    /// <summary>The projector into the text embedding space.</summary>
    public LlavaMultiModalProjector MultiModalProjector { get; }
    /// <inheritdoc/>
    public DecoderModel LanguageModel { get; }
    /// <inheritdoc/>
    public VisionConfig Vision => Config.Vision!;
    /// <inheritdoc/>
    public int ImageTokensPerImage => Vision.NumPatches + (_keepClassToken ? 1 : 0);
    /// <inheritdoc/>
    public int ImageTokenGridSide => Vision.GridSize;

    readonly int _hiddenStateIndex;
    readonly bool _keepClassToken;

    /// <summary>Loads the three parts; <paramref name="newLayout"/> selects transformers ≥ 4.52 names (<c>model.language_model…</c>, <c>lm_head</c>).</summary>
    public LlavaForConditionalGeneration(WeightScope root, ModelConfig config, bool newLayout)
    {
        Config = config;
        var model = newLayout ? root.Sub("model") : root;
        VisionTower = new ClipVisionModel(model.Sub("vision_tower").Sub("vision_model"), Vision);
        MultiModalProjector = NewProjector(model, config);
        LanguageModel = NewLanguageModel(root, config, newLayout);
        _hiddenStateIndex = HiddenStateIndex(config);
        _keepClassToken = config.Llava!.VisionFeatureSelectStrategy == "full";
    }

    /// <summary>The projector under <paramref name="model"/>, as <c>llava</c> and <c>video_llava</c> configure it.</summary>
    internal static LlavaMultiModalProjector NewProjector(WeightScope model, ModelConfig config) =>
        new(model.Sub("multi_modal_projector"), config.Vision!.HiddenSize, config.Text.HiddenSize,
            config.Llava!.ProjectorHiddenAct, config.Llava.MultimodalProjectorBias);

    /// <summary>The LLaMA decoder of a LLaVA-style checkpoint in either key layout.</summary>
    internal static DecoderModel NewLanguageModel(WeightScope root, ModelConfig config, bool newLayout)
    {
        var model = newLayout ? root.Sub("model") : root;
        string textPath = newLayout ? "language_model" : "language_model.model";
        string headPath = newLayout ? "lm_head" : "language_model.lm_head";
        return new LlamaModel(model.Sub(textPath), config.Text, headPath, DecoderModel.LmHeadWeight(root, headPath, config.Text));
    }

    /// <summary>
    /// <c>vision_feature_layer</c> as an index into the tower's hidden states, which hold the pre_layrnorm output and then
    /// each layer's, so a negative index counts from layers + 1.
    /// </summary>
    internal static int HiddenStateIndex(ModelConfig config)
    {
        int layer = config.Llava!.VisionFeatureLayer;
        return layer < 0 ? config.Vision!.NumHiddenLayers + 1 + layer : layer;
    }

    /// <summary>
    /// Reports <c>{tower}.selected</c> [B, rows, vision hidden] (rows of each image's [P + 1] hidden states from
    /// <paramref name="skip"/> on) and returns their projection [B · rows, text hidden], reported as <c>projector</c>.
    /// </summary>
    internal static float[] SelectAndProject(ClipVisionModel tower, LlavaMultiModalProjector projector, float[] hidden, int images, int skip, int rows,
        int textHidden, ForwardContext ctx)
    {
        int d = tower.Config.HiddenSize, n = tower.Config.NumPatches + 1;
        var selected = new float[images * rows * d];
        for (int b = 0; b < images; b++) hidden.AsSpan((b * n + skip) * d, rows * d).CopyTo(selected.AsSpan(b * rows * d));
        ctx.Report($"{tower.TraceName}.selected", selected, images, rows, d);
        var features = new float[images * rows * textHidden];
        projector.Forward(selected, images * rows, features, ctx, images);
        ctx.Report("projector", features, images, rows, textHidden);
        return features;
    }

    /// <inheritdoc/>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        var hidden = VisionTower.Forward(pixelValues, 1, _hiddenStateIndex, ctx); // [P + 1, vision hidden]
        return SelectAndProject(VisionTower, MultiModalProjector, hidden, 1, _keepClassToken ? 0 : 1, ImageTokensPerImage, Config.Text.HiddenSize, ctx);
    }

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => VisionTower.Linears().Concat(MultiModalProjector.Linears()).Concat(LanguageModel.Linears());

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        var x = ImageTokenMerge.Embed(LanguageModel, Config.ImageTokenIndex, ids, imageFeatures, cache.Length == 0, ctx);
        return LanguageModel.Forward(x, ids.Length, ctx.Scratch.Positions(cache.Length, ids.Length, firstPosition: 0), cache, ctx);
    }
}
