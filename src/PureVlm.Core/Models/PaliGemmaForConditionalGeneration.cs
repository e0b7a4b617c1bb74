using PureVlm.Formats;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>PaliGemmaForConditionalGeneration</c>: SigLIP → projector → ÷ sqrt(text hidden) → image-token rows of the prompt →
/// Gemma decoder with a bidirectional prefix (image + prompt) and 1-based positions.
/// </summary>
public sealed class PaliGemmaForConditionalGeneration : IGenerativeModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The SigLIP tower.</summary>
    public SiglipVisionModel VisionTower { get; }
    /// <summary>The projector into the text embedding space.</summary>
    public PaliGemmaMultiModalProjector MultiModalProjector { get; }
    /// <inheritdoc/>
    public GemmaModel LanguageModel { get; }

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
        LanguageModel = new GemmaModel(model.Sub(textPath), config.Text, headPath, GemmaForCausalLM.LmHeadWeight(root, headPath, config.Text));
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
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        int n = ids.Length, d = Config.Text.HiddenSize;
        var x = ctx.Scratch.Get(Slot.Hidden, n * d); // [n, hidden]
        LanguageModel.Embed(ids, x.AsSpan(0, n * d));
        bool prefill = cache.Length == 0;
        int imageRows = 0;
        for (int i = 0; i < n; i++)
        {
            if (ids[i] != Config.ImageTokenIndex) continue;
            // HF embeds a generated image token as an ordinary token; only prefill rows take image features.
            if (!prefill) continue;
            if ((imageRows + 1) * d > imageFeatures.Length)
                throw new ArgumentException($"the prompt has more image tokens (id {Config.ImageTokenIndex}) than image features ({imageFeatures.Length / d} rows of {d})", nameof(imageFeatures));
            imageFeatures.Slice(imageRows++ * d, d).CopyTo(x.AsSpan(i * d, d));
        }
        if (prefill && imageRows * d != imageFeatures.Length)
            throw new ArgumentException($"the prompt has {imageRows} image tokens (id {Config.ImageTokenIndex}), the image features have {imageFeatures.Length / d} rows", nameof(imageFeatures));
        if (!prefill && !imageFeatures.IsEmpty)
            throw new ArgumentException("image features can only be given with the prefill", nameof(imageFeatures));
        if (prefill) cache.PrefixLength = n; // image + bos + prompt + "\n" attend bidirectionally

        var positions = ctx.Scratch.Positions(n).AsSpan(0, n);
        for (int i = 0; i < n; i++) positions[i] = cache.Length + i + 1; // PaliGemma positions are 1-based in HF
        return LanguageModel.Forward(x, n, positions, cache, ctx);
    }
}
