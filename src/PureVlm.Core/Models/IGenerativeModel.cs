using PureVlm.Prompts;
using PureVlm.Formats;

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
    /// <summary>The name of an image's model input in HF (and in traces): <c>pixel_values</c>, Video-LLaVA's <c>pixel_values_images</c>.</summary>
    string ImagePixelValuesName => "pixel_values";
}

/// <summary>
/// A vision-language model that also sees videos: a video's frames go through a video tower and projector, and the
/// rows they give replace the prompt's video tokens. <see cref="IGenerativeModel.Forward"/> then takes the features of
/// every image and video of the prompt, concatenated in the order their tokens appear.
/// </summary>
public interface IVideoLanguageModel : IVisionLanguageModel
{
    /// <summary>The id of the video token (<c>video_token_index</c>).</summary>
    int VideoTokenIndex { get; }
    /// <summary>Frames one video is sampled to.</summary>
    int FramesPerVideo { get; }
    /// <summary>Rows of features one frame gives (Video-LLaVA: every token of the tower, class token first).</summary>
    int VideoTokensPerFrame { get; }
    /// <summary>Where a frame's tokens come from: the index of its first patch among them (1 after a class token), the patches following row-major.</summary>
    int FirstPatchOfFrame { get; }
    /// <summary>
    /// pixel_values_videos [<see cref="FramesPerVideo"/>, C, S, S] → video features [frames · <see cref="VideoTokensPerFrame"/>,
    /// text hidden], frame by frame, ready to replace the video-token rows.
    /// </summary>
    float[] EncodeVideo(ReadOnlySpan<float> pixelValues, ForwardContext ctx);
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
    /// x [n, hidden] = embed_tokens[ids] with the rows of <paramref name="imageTokenId"/> (and of <paramref name="videoTokenId"/>,
    /// when ≥ 0) replaced, in order, by the rows of <paramref name="imageFeatures"/> (HF's <c>masked_scatter</c>; with
    /// videos, the features of the prompt's images and videos in the order their tokens appear, which puts image features
    /// in the image rows and video features in the video rows as HF's two scatters do). Only a prefill takes features: a
    /// generated image token is embedded as an ordinary token, as in HF. With <paramref name="scaleText"/> the embeddings
    /// are multiplied by <see cref="DecoderModel.EmbedScale"/> before the image rows go in (Gemma 3), so the image rows
    /// stay unscaled. Returns the scratch buffer holding x.
    /// </summary>
    public static float[] Embed(DecoderModel lm, int imageTokenId, ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, bool prefill, ForwardContext ctx,
        int videoTokenId = -1, bool scaleText = false)
    {
        int n = ids.Length, d = lm.Config.HiddenSize;
        var x = ctx.Scratch.Get(Workspace.Slot.Hidden, n * d);
        lm.Embed(ids, x.AsSpan(0, n * d));
        if (scaleText) Kernels.ElementWise.Scale(x.AsSpan(0, n * d), lm.EmbedScale);
        if (!prefill)
        {
            if (!imageFeatures.IsEmpty) throw new ArgumentException("image features can only be given with the prefill", nameof(imageFeatures));
            return x;
        }
        int imageRows = 0;
        for (int i = 0; i < n; i++)
        {
            if (ids[i] != imageTokenId && (ids[i] != videoTokenId || videoTokenId < 0)) continue;
            if ((imageRows + 1) * d > imageFeatures.Length)
                throw new InvalidPromptException($"the prompt has more {Tokens(imageTokenId, videoTokenId)} than image features ({imageFeatures.Length / d} rows of {d})");
            imageFeatures.Slice(imageRows++ * d, d).CopyTo(x.AsSpan(i * d, d));
        }
        if (imageRows * d != imageFeatures.Length)
            throw new InvalidPromptException($"the prompt has {imageRows} {Tokens(imageTokenId, videoTokenId)}, the image features have {imageFeatures.Length / d} rows");
        return x;
    }

    static string Tokens(int imageTokenId, int videoTokenId) =>
        videoTokenId < 0 ? $"image tokens (id {imageTokenId})" : $"image and video tokens (ids {imageTokenId}, {videoTokenId})";
}
