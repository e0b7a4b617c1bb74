using System.Text.Json.Nodes;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>
/// The sizes of a LLaVA-1.5 checkpoint (CLIP ViT vision tower + two-layer GELU projector + LLaMA decoder) and the
/// tensors and config.json of its Hugging Face layout (llava-hf, transformers &lt; 4.52 names). With
/// <see cref="VideoFrames"/> set it is Video-LLaVA's (LanguageBind/Video-LLaVA-7B-hf): two CLIP towers of these sizes,
/// <c>image_tower</c> and <c>video_tower</c>, sharing the projector.
/// </summary>
/// <param name="VisionProjectionDim">CLIP's <c>projection_dim</c>: written to config.json only (LLaVA has no CLIP projection head).</param>
/// <param name="Vocab">Embedding and lm_head rows (the text vocabulary padded, 32064 for 32000 pieces + 2 added tokens).</param>
public sealed record LlavaArch(
    string Name, int ImageSize, int PatchSize,
    int VisionHidden, int VisionLayers, int VisionHeads, int VisionIntermediate, int VisionProjectionDim,
    int TextHidden, int TextLayers, int Heads, int KvHeads, int HeadDim, int TextIntermediate, int Vocab,
    int ImageTokenIndex, int PadTokenId, int MaxPositionEmbeddings) : SynthArch(Name)
{
    /// <summary>CLIP ViT-L/14-336 + Vicuna-7B v1.5 (LLaMA 2 7B) (llava-hf/llava-1.5-7b-hf).</summary>
    public static readonly LlavaArch Llava15_7b = new("llava-1.5-7b", 336, 14, 1024, 24, 16, 4096, 768,
        4096, 32, 32, 32, 128, 11008, 32064, 32000, 32001, 4096);

    /// <summary>
    /// CLIP ViT-L/14 at 224 px (twice) + Vicuna-7B v1.5 (LanguageBind/Video-LLaVA-7B-hf): &lt;image&gt; 32000,
    /// &lt;video&gt; 32001, &lt;pad&gt; 32002, 8 frames of 257 tokens.
    /// </summary>
    public static readonly LlavaArch VideoLlava7b = new("video-llava-7b", 224, 14, 1024, 24, 16, 4096, 768,
        4096, 32, 32, 32, 128, 11008, 32064, 32000, 32002, 4096) { VideoTokenIndex = 32001, VideoFrames = 8 };

    /// <summary>The LLaVA architectures synth knows, by CLI name.</summary>
    public static readonly IReadOnlyDictionary<string, LlavaArch> Sizes = new Dictionary<string, LlavaArch>
    {
        ["llava-1.5-7b"] = Llava15_7b,
        ["video-llava-7b"] = VideoLlava7b,
    };

    /// <summary>Video-LLaVA's <c>video_token_index</c> (unused when <see cref="VideoFrames"/> is 0).</summary>
    public int VideoTokenIndex { get; init; } = -1;
    /// <summary>Frames per video for Video-LLaVA; 0 for LLaVA-1.5 (one tower, no videos).</summary>
    public int VideoFrames { get; init; }

    /// <summary>Video tokens per video: every token of every frame, (image_size / patch_size)² + 1 each.</summary>
    public int VideoTokens => VideoFrames * (ImageTokens + 1);

    /// <summary>Image tokens per image: (image_size / patch_size)² (strategy "default" drops the class token).</summary>
    public int ImageTokens => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>
    /// Every tensor in the model's state_dict order (vision tower, or image and video towers; projector, language
    /// model, lm_head). The CLIP tower's post_layernorm is written, as in the hub checkpoint, though LLaVA never applies it.
    /// </summary>
    public override IEnumerable<SynthTensor> Tensors()
    {
        long dv = VisionHidden, dt = TextHidden, it = TextIntermediate;
        var towers = VideoFrames > 0 ? ClipTower("image_tower.vision_model.").Concat(ClipTower("video_tower.vision_model.")) : ClipTower("vision_tower.vision_model.");
        foreach (var t in towers) yield return t;
        yield return new("multi_modal_projector.linear_1.weight", [dt, dv], Init.SmallNormal);
        yield return new("multi_modal_projector.linear_1.bias", [dt], Init.SmallNormal);
        yield return new("multi_modal_projector.linear_2.weight", [dt, dt], Init.SmallNormal);
        yield return new("multi_modal_projector.linear_2.bias", [dt], Init.SmallNormal);

        const string m = "language_model.model.";
        yield return new(m + "embed_tokens.weight", [Vocab, dt], Init.SmallNormal);
        for (int l = 0; l < TextLayers; l++)
            foreach (var t in DecoderLayer($"{m}layers.{l}.", dt, Heads, KvHeads, HeadDim, it, Init.NearOne)) yield return t;
        yield return new(m + "norm.weight", [dt], Init.NearOne);
        yield return new("language_model.lm_head.weight", [Vocab, dt], Init.SmallNormal);
    }

    /// <summary>One CLIP vision tower's tensors under <paramref name="v"/> (ending with a dot).</summary>
    IEnumerable<SynthTensor> ClipTower(string v)
    {
        long dv = VisionHidden, iv = VisionIntermediate;
        yield return new(v + "embeddings.class_embedding", [dv], Init.SmallNormal);
        yield return new(v + "embeddings.patch_embedding.weight", [dv, 3, PatchSize, PatchSize], Init.SmallNormal);
        yield return new(v + "embeddings.position_embedding.weight", [ImageTokens + 1, dv], Init.SmallNormal);
        yield return new(v + "pre_layrnorm.weight", [dv], Init.NearOne);
        yield return new(v + "pre_layrnorm.bias", [dv], Init.SmallNormal);
        for (int l = 0; l < VisionLayers; l++)
            foreach (var t in VitEncoderLayer($"{v}encoder.layers.{l}.", dv, iv)) yield return t;
        yield return new(v + "post_layernorm.weight", [dv], Init.NearOne);
        yield return new(v + "post_layernorm.bias", [dv], Init.SmallNormal);
    }

    /// <summary>
    /// config.json with the key set of the llava-tiny fixture (HF <c>LlavaConfig</c> with every key written out;
    /// the hub's leaves most to defaults, and omits image_seq_length, whose default 576 is the value here).
    /// </summary>
    public override JsonObject Config(DType dtype)
    {
        string torchDtype = FloatEncoding.TorchName(dtype);
        var text = new JsonObject
        {
            ["model_type"] = "llama",
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["vocab_size"] = Vocab,
            ["hidden_size"] = TextHidden,
            ["intermediate_size"] = TextIntermediate,
            ["num_hidden_layers"] = TextLayers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["initializer_range"] = 0.02,
            ["rms_norm_eps"] = 1e-5,
            ["pretraining_tp"] = 1,
            ["use_cache"] = true,
            ["rope_theta"] = 10000.0,
            ["rope_scaling"] = null,
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["mlp_bias"] = false,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["pad_token_id"] = null,
            ["tie_word_embeddings"] = false,
            ["torch_dtype"] = torchDtype,
        };
        var vision = new JsonObject
        {
            ["model_type"] = "clip_vision_model",
            ["hidden_size"] = VisionHidden,
            ["intermediate_size"] = VisionIntermediate,
            ["projection_dim"] = VisionProjectionDim,
            ["num_hidden_layers"] = VisionLayers,
            ["num_attention_heads"] = VisionHeads,
            ["num_channels"] = 3,
            ["image_size"] = ImageSize,
            ["patch_size"] = PatchSize,
            ["hidden_act"] = "quick_gelu",
            ["layer_norm_eps"] = 1e-5,
            ["attention_dropout"] = 0.0,
            ["initializer_range"] = 0.02,
            ["initializer_factor"] = 1.0,
            // CLIPVisionConfig inherits a text vocab_size key; the hub config carries it, nothing reads it.
            ["vocab_size"] = 32000,
            ["torch_dtype"] = torchDtype,
        };
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(VideoFrames > 0 ? "VideoLlavaForConditionalGeneration" : "LlavaForConditionalGeneration"),
            ["model_type"] = VideoFrames > 0 ? "video_llava" : "llava",
            ["ignore_index"] = -100,
            ["image_token_index"] = ImageTokenIndex,
            ["pad_token_id"] = PadTokenId,
            ["projector_hidden_act"] = "gelu",
            ["multimodal_projector_bias"] = true,
            ["vision_feature_select_strategy"] = "default",
            ["vision_feature_layer"] = -2,
            ["image_seq_length"] = ImageTokens,
            ["tie_word_embeddings"] = false,
            ["vocab_size"] = Vocab,
            ["text_config"] = text,
            ["vision_config"] = vision,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.46.3",
        };
        if (VideoFrames > 0)
        {
            config["video_token_index"] = VideoTokenIndex;
            config["video_seq_length"] = VideoTokens;
        }
        return config;
    }

    /// <summary>preprocessor_config.json of the hub checkpoint (CLIPImageProcessor: shortest edge, centre crop, bicubic, CLIP mean/std).</summary>
    public override JsonObject PreprocessorConfig() => new()
    {
        ["crop_size"] = new JsonObject { ["height"] = ImageSize, ["width"] = ImageSize },
        ["do_center_crop"] = true,
        ["do_convert_rgb"] = true,
        ["do_normalize"] = true,
        ["do_rescale"] = true,
        ["do_resize"] = true,
        ["image_mean"] = new JsonArray(0.48145466, 0.4578275, 0.40821073),
        ["image_processor_type"] = VideoFrames > 0 ? "VideoLlavaImageProcessor" : "CLIPImageProcessor",
        ["image_std"] = new JsonArray(0.26862954, 0.26130258, 0.27577711),
        ["processor_class"] = VideoFrames > 0 ? "VideoLlavaProcessor" : "LlavaProcessor",
        ["resample"] = 3,
        ["rescale_factor"] = 1.0 / 255,
        ["size"] = new JsonObject { ["shortest_edge"] = ImageSize },
    };
}
