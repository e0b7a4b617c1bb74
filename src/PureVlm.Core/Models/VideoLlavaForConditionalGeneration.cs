using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>
/// HF <c>VideoLlavaForConditionalGeneration</c>: LLaVA with two CLIP towers built from one vision config. Images go
/// through <c>image_tower</c> and take hidden_states[vision_feature_layer] like LLaVA's (class token dropped for
/// "default"); a video's frames go through <c>video_tower</c>, each independently (HF's port has no temporal attention),
/// and keep every token of every frame. One projector serves both; its rows replace the <c>&lt;image&gt;</c> and
/// <c>&lt;video&gt;</c> tokens in order; LLaMA decoder, causal everywhere, 0-based positions.
/// </summary>
public sealed class VideoLlavaForConditionalGeneration : IVideoLanguageModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <summary>The CLIP tower for images.</summary>
    public ClipVisionModel ImageTower { get; }
    /// <summary>The CLIP tower for video frames.</summary>
    public ClipVisionModel VideoTower { get; }
    /// <summary>The projector both towers' features go through.</summary>
    public LlavaMultiModalProjector MultiModalProjector { get; }
    /// <inheritdoc/>
    public DecoderModel LanguageModel { get; }
    /// <inheritdoc/>
    public VisionConfig Vision => Config.Vision!;
    /// <inheritdoc/>
    public int ImageTokensPerImage => Vision.NumPatches + (_keepClassToken ? 1 : 0);
    /// <inheritdoc/>
    public int ImageTokenGridSide => Vision.GridSize;
    /// <inheritdoc/>
    public string ImagePixelValuesName => "pixel_values_images";
    /// <inheritdoc/>
    public int VideoTokenIndex => Config.VideoLlava!.VideoTokenIndex;
    /// <inheritdoc/>
    public int FramesPerVideo => Config.VideoLlava!.FramesPerVideo;
    /// <inheritdoc/>
    public int VideoTokensPerFrame => Vision.NumPatches + 1;
    /// <inheritdoc/>
    public int FirstPatchOfFrame => 1;

    readonly int _hiddenStateIndex;
    readonly bool _keepClassToken;

    /// <summary>Loads the four parts; <paramref name="newLayout"/> selects transformers ≥ 4.52 names (<c>model.image_tower…</c>, <c>lm_head</c>).</summary>
    public VideoLlavaForConditionalGeneration(WeightScope root, ModelConfig config, bool newLayout)
    {
        Config = config;
        var model = newLayout ? root.Sub("model") : root;
        ImageTower = new ClipVisionModel(model.Sub("image_tower").Sub("vision_model"), Vision, "image_tower");
        VideoTower = new ClipVisionModel(model.Sub("video_tower").Sub("vision_model"), Vision, "video_tower");
        MultiModalProjector = LlavaForConditionalGeneration.NewProjector(model, config);
        LanguageModel = LlavaForConditionalGeneration.NewLanguageModel(root, config, newLayout);
        _hiddenStateIndex = LlavaForConditionalGeneration.HiddenStateIndex(config);
        _keepClassToken = config.Llava!.VisionFeatureSelectStrategy == "full";
    }

    /// <inheritdoc/>
    public float[] EncodeImage(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        var hidden = ImageTower.Forward(pixelValues, 1, _hiddenStateIndex, ctx); // [P + 1, vision hidden]
        return LlavaForConditionalGeneration.SelectAndProject(ImageTower, MultiModalProjector, hidden, 1, _keepClassToken ? 0 : 1,
            ImageTokensPerImage, Config.Text.HiddenSize, ctx);
    }

    /// <inheritdoc/>
    /// <remarks>HF keeps the class token of every frame whatever vision_feature_select_strategy says.</remarks>
    public float[] EncodeVideo(ReadOnlySpan<float> pixelValues, ForwardContext ctx)
    {
        int frames = FramesPerVideo;
        var hidden = VideoTower.Forward(pixelValues, frames, _hiddenStateIndex, ctx); // [T, P + 1, vision hidden]
        return LlavaForConditionalGeneration.SelectAndProject(VideoTower, MultiModalProjector, hidden, frames, 0, VideoTokensPerFrame, Config.Text.HiddenSize, ctx);
    }

    /// <inheritdoc/>
    public IEnumerable<Linear> Linears() =>
        ImageTower.Linears().Concat(VideoTower.Linears()).Concat(MultiModalProjector.Linears()).Concat(LanguageModel.Linears());

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        var x = ImageTokenMerge.Embed(LanguageModel, Config.ImageTokenIndex, ids, imageFeatures, cache.Length == 0, ctx, VideoTokenIndex);
        return LanguageModel.Forward(x, ids.Length, ctx.Scratch.Positions(cache.Length, ids.Length, firstPosition: 0), cache, ctx);
    }
}
