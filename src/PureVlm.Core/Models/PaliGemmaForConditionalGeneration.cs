using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>
/// HF <c>PaliGemmaForConditionalGeneration</c>: SigLIP → projector → ÷ sqrt(text hidden) → image-token rows of the prompt →
/// Gemma decoder with a bidirectional prefix (image + prompt) and 1-based positions.
/// </summary>
public sealed class PaliGemmaForConditionalGeneration : IVisionLanguageModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The SigLIP tower.</summary>
    public SiglipVisionModel VisionTower { get; }
    /// <summary>The projector into the text embedding space.</summary>
    public PaliGemmaMultiModalProjector MultiModalProjector { get; }
    /// <inheritdoc/>
    public DecoderModel LanguageModel { get; }
    /// <inheritdoc/>
    public VisionConfig Vision => Config.Vision!;
    /// <inheritdoc/>
    public int ImageTokensPerImage => Vision.NumPatches;
    /// <inheritdoc/>
    public int ImageTokenGridSide => Vision.GridSize;
    /// <summary>1: HF's PaliGemma numbers positions from 1.</summary>
    public int FirstPosition => 1;

    /// <summary>Loads the three parts; <paramref name="newLayout"/> selects transformers ≥ 4.52 names (<c>model.language_model…</c>).</summary>
    public PaliGemmaForConditionalGeneration(WeightScope root, ModelConfig config, bool newLayout)
    {
        Config = config;
        var vision = config.Vision!;
        var model = newLayout ? root.Sub("model") : root;
        VisionTower = new SiglipVisionModel(model.Sub("vision_tower").Sub("vision_model"), vision);
        MultiModalProjector = new PaliGemmaMultiModalProjector(model.Sub("multi_modal_projector"), vision.HiddenSize, config.Text.HiddenSize);
        string textPath = newLayout ? "language_model" : "language_model.model";
        string headPath = newLayout ? "lm_head" : "language_model.lm_head";
        LanguageModel = new GemmaModel(model.Sub(textPath), config.Text, headPath, DecoderModel.LmHeadWeight(root, headPath, config.Text));
    }

    /// <summary>pixel_values [C, S, S] → image features [P, text hidden], already divided by sqrt(text hidden) as HF does before the merge.</summary>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        var v = Config.Vision!;
        int n = v.NumPatches, d = Config.Text.HiddenSize;
        var hidden = VisionTower.Forward(pixelValues, ctx); // [P, vision hidden]
        var features = new float[n * d];                     // [P, text hidden]
        MultiModalProjector.Forward(hidden, n, features, ctx);
        ctx.Report("projector", features, 1, n, d);
        // text_config.hidden_size, never the top-level hidden_size (they differ in real PaliGemma 2 configs).
        Kernels.ElementWise.Scale(features, 1f / (float)Math.Sqrt(d));
        return features;
    }

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => VisionTower.Linears().Concat(MultiModalProjector.Linears()).Concat(LanguageModel.Linears());

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        bool prefill = cache.Length == 0;
        var x = ImageTokenMerge.Embed(LanguageModel, Config.ImageTokenIndex, ids, imageFeatures, prefill, ctx);
        if (prefill) cache.PrefixLength = ids.Length; // image + bos + prompt + "\n" attend bidirectionally
        return LanguageModel.Forward(x, ids.Length, ctx.Scratch.Positions(cache.Length, ids.Length, FirstPosition), cache, ctx);
    }
}
