using PureVlm.Formats;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>A decoder that turns token ids (and, for a vision-language model, image features) into next-token logits with a KV cache.</summary>
public interface IGenerativeModel
{
    /// <summary>The model's config.</summary>
    ModelConfig Config { get; }
    /// <summary>The language model: embeddings, decoder layers, final norm and output layer.</summary>
    DecoderModel LanguageModel { get; }
    /// <summary>The RoPE position of the first token: 0 as in most of HF, 1 for PaliGemma.</summary>
    int FirstPosition => 0;
    /// <summary>
    /// Feeds <paramref name="ids"/> after the tokens already in <paramref name="cache"/> and returns the last token's logits [vocab]
    /// (valid until the next call on <paramref name="ctx"/>). <paramref name="imageFeatures"/> [image tokens, hidden] fill the
    /// image-token rows of a vision-language prefill and must be empty otherwise.
    /// </summary>
    ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx);
    /// <summary>
    /// Every HF <c>nn.Linear</c> of the module tree, each once, in forward order, named by <see cref="Linear.ModulePath"/>
    /// as in the checkpoint; the output layer (<see cref="DecoderModel.LmHead"/>) comes last, even when tied to
    /// embed_tokens. What adapters attach to: they ask the tree rather than guess modules from tensor names.
    /// </summary>
    IEnumerable<Linear> Linears();
}

/// <summary>A model that also sees images: a vision tower and projector whose output rows replace the prompt's image tokens.</summary>
public interface IVisionLanguageModel : IGenerativeModel
{
    /// <summary>The vision tower's config (input size, patch grid).</summary>
    VisionConfig Vision { get; }
    /// <summary>Rows of image features one image gives, i.e. image tokens in the prompt per image.</summary>
    int ImageTokensPerImage { get; }
    /// <summary>Where each image token comes from: the patch grid's side (image tokens are its cells, row-major).</summary>
    int ImageTokenGridSide { get; }
    /// <summary>pixel_values [C, S, S] → image features [<see cref="ImageTokensPerImage"/>, text hidden], ready to replace the image-token rows.</summary>
    float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx);
}

/// <summary>A vision-language model whose image input is a set of crops with padding masks (Molmo), not one pixel_values tensor.</summary>
public interface IMultiCropVisionModel : IVisionLanguageModel
{
    /// <summary>An image's crops → image features [image tokens, text hidden], in the order of its image tokens in the prompt.</summary>
    float[] EncodeCrops(Formats.Images.MultiCropImage image, ForwardContext ctx);
}

/// <summary>HF <c>GemmaForCausalLM</c> / <c>Gemma2ForCausalLM</c> / <c>LlamaForCausalLM</c>: a decoder under <c>model.</c>, causal attention, 0-based positions.</summary>
public sealed class CausalLM(ModelConfig config, DecoderModel languageModel) : IGenerativeModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; } = config;
    /// <inheritdoc/>
    public DecoderModel LanguageModel { get; } = languageModel;

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() => LanguageModel.Linears();

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        if (!imageFeatures.IsEmpty) throw new ArgumentException("a text-only model takes no image features", nameof(imageFeatures));
        int n = ids.Length, d = Config.Text.HiddenSize;
        var x = ctx.Scratch.Get(Workspace.Slot.Hidden, n * d); // [n, hidden]
        LanguageModel.Embed(ids, x.AsSpan(0, n * d));
        return LanguageModel.Forward(x, n, ctx.Scratch.Positions(cache.Length, n, firstPosition: 0), cache, ctx);
    }
}

/// <summary>The step every vision-language model shares: embed the prompt, then put image features where its image tokens are.</summary>
public static class ImageTokenMerge
{
    /// <summary>
    /// x [n, hidden] = embed_tokens[ids] with the rows of <paramref name="imageTokenId"/> replaced, in order, by the rows of
    /// <paramref name="imageFeatures"/> (HF's <c>masked_scatter</c>). Only a prefill takes image features: a generated
    /// image token is embedded as an ordinary token, as in HF. Returns the scratch buffer holding x. With
    /// <paramref name="add"/> the features are added to the image tokens' embeddings instead (Molmo).
    /// </summary>
    public static float[] Embed(DecoderModel lm, int imageTokenId, ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, bool prefill, ForwardContext ctx, bool add = false)
    {
        int n = ids.Length, d = lm.Config.HiddenSize;
        var x = ctx.Scratch.Get(Workspace.Slot.Hidden, n * d);
        lm.Embed(ids, x.AsSpan(0, n * d));
        if (!prefill)
        {
            if (!imageFeatures.IsEmpty) throw new ArgumentException("image features can only be given with the prefill", nameof(imageFeatures));
            return x;
        }
        int imageRows = 0;
        for (int i = 0; i < n; i++)
        {
            if (ids[i] != imageTokenId) continue;
            if ((imageRows + 1) * d > imageFeatures.Length)
                throw new ArgumentException($"the prompt has more image tokens (id {imageTokenId}) than image features ({imageFeatures.Length / d} rows of {d})", nameof(imageFeatures));
            var row = imageFeatures.Slice(imageRows++ * d, d);
            if (add) ElementWise.Add(x.AsSpan(i * d, d), row);
            else row.CopyTo(x.AsSpan(i * d, d));
        }
        if (imageRows * d != imageFeatures.Length)
            throw new ArgumentException($"the prompt has {imageRows} image tokens (id {imageTokenId}), the image features have {imageFeatures.Length / d} rows", nameof(imageFeatures));
        return x;
    }
}
