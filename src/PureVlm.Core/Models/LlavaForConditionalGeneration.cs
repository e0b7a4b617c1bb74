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
        var llava = config.Llava!;
        var model = newLayout ? root.Sub("model") : root;
        VisionTower = new ClipVisionModel(model.Sub("vision_tower").Sub("vision_model"), Vision);
        MultiModalProjector = new LlavaMultiModalProjector(model.Sub("multi_modal_projector"), Vision.HiddenSize, config.Text.HiddenSize,
            llava.ProjectorHiddenAct, llava.MultimodalProjectorBias);
        string textPath = newLayout ? "language_model" : "language_model.model";
        string headPath = newLayout ? "lm_head" : "language_model.lm_head";
        LanguageModel = new LlamaModel(model.Sub(textPath), config.Text, headPath, DecoderModel.LmHeadWeight(root, headPath, config.Text));
        // hidden_states holds the pre_layrnorm output and then each layer's, so a negative index counts from layers + 1.
        int layer = llava.VisionFeatureLayer;
        _hiddenStateIndex = layer < 0 ? Vision.NumHiddenLayers + 1 + layer : layer;
        _keepClassToken = llava.VisionFeatureSelectStrategy == "full";
    }

    /// <inheritdoc/>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        int d = Vision.HiddenSize, rows = ImageTokensPerImage, textHidden = Config.Text.HiddenSize;
        var hidden = VisionTower.Forward(pixelValues, _hiddenStateIndex, ctx); // [P + 1, vision hidden]
        int skip = _keepClassToken ? 0 : d;
        var selected = new float[rows * d];
        hidden.AsSpan(skip, rows * d).CopyTo(selected);
        ctx.Report("vision.selected", selected, 1, rows, d);
        var features = new float[rows * textHidden];
        MultiModalProjector.Forward(selected, rows, features, ctx);
        ctx.Report("projector", features, 1, rows, textHidden);
        return features;
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
