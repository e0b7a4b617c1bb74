using PureVlm.Formats;
using PureVlm.Formats.Images;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>MolmoForCausalLM</c> (Molmo-7B-D-0924 layout, HF remote code): <see cref="MolmoVisionBackbone"/> over the
/// crops of <see cref="MultiCropImage"/>, each kept pooled cell <b>added</b> to the embedding of its <c>&lt;im_patch&gt;</c>
/// token (<c>&lt;im_start&gt;</c>, <c>&lt;im_col&gt;</c>, <c>&lt;im_end&gt;</c> keep theirs), then <see cref="MolmoModel"/>:
/// causal everywhere, 0-based positions.
/// </summary>
public sealed class MolmoForCausalLM : IMultiCropVisionModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The vision backbone (ViT, pooling, projector).</summary>
    public MolmoVisionBackbone VisionBackbone { get; }
    /// <inheritdoc/>
    public DecoderModel LanguageModel => Transformer;
    /// <summary>The decoder with its two embedding tables.</summary>
    public MolmoModel Transformer { get; }
    /// <inheritdoc/>
    public VisionConfig Vision => Config.Vision!;
    /// <summary>Image tokens of one crop (its pooled cells); an image gives the global crop's and its tiles' kept cells, which depend on its size.</summary>
    public int ImageTokensPerImage => VisionBackbone.CellsPerCrop;
    /// <inheritdoc/>
    public int ImageTokenGridSide => (int)Math.Round(Math.Sqrt(VisionBackbone.CellsPerCrop));

    /// <summary>Loads <c>model.vision_backbone</c> and <c>model.transformer</c>.</summary>
    public MolmoForCausalLM(WeightScope root, ModelConfig config)
    {
        Config = config;
        var model = root.Sub("model");
        VisionBackbone = new MolmoVisionBackbone(model.Sub("vision_backbone"), config);
        Transformer = new MolmoModel(model.Sub("transformer"), config.Text, config.Molmo!.AdditionalVocabSize);
    }

    /// <inheritdoc/>
    public float[] EncodeCrops(MultiCropImage image, ForwardContext ctx)
    {
        int cells = VisionBackbone.CellsPerCrop, d = Config.Text.HiddenSize;
        if (image.CellTokens.Length != image.Crops * cells)
            throw new ArgumentException($"the image has {image.CellTokens.Length} cell indices for {image.Crops} crops, expected {cells} per crop", nameof(image));
        var projected = VisionBackbone.Forward(image.Images, image.Masks, image.Crops, ctx);
        // Rows in the order of the prompt's <im_patch> tokens, so the merge adds them in prompt order.
        var features = new float[image.ImageTokens * d];
        int filled = 0;
        for (int i = 0; i < image.CellTokens.Length; i++)
        {
            int t = image.CellTokens[i];
            if (t < 0) continue;
            if (t >= image.ImageTokens) throw new ArgumentException($"cell {i} feeds image token {t}, but the image has {image.ImageTokens}", nameof(image));
            projected.AsSpan(i * d, d).CopyTo(features.AsSpan(t * d, d));
            filled++;
        }
        if (filled != image.ImageTokens) throw new ArgumentException($"{filled} cells feed the image's {image.ImageTokens} image tokens, expected one each", nameof(image));
        return features;
    }

    /// <summary>Molmo's image input is a set of crops (<see cref="EncodeCrops"/>), never one pixel_values tensor.</summary>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx) =>
        throw new NotSupportedException("Molmo takes an image as crops with padding masks (MolmoImageProcessor → EncodeCrops), not one pixel_values tensor");

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => VisionBackbone.Linears().Concat(Transformer.Linears());

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        var x = ImageTokenMerge.Embed(LanguageModel, Config.ImageTokenIndex, ids, imageFeatures, cache.Length == 0, ctx, add: true);
        return LanguageModel.Forward(x, ids.Length, ctx.Scratch.Positions(cache.Length, ids.Length, firstPosition: 0), cache, ctx);
    }
}
