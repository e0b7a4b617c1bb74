using System.Text.Json.Nodes;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>
/// The sizes of a PaliGemma checkpoint (SigLIP vision tower + projector + Gemma or Gemma 2 decoder) and
/// the tensors and config.json of its Hugging Face layout.
/// </summary>
public sealed record PaliGemmaArch(
    string Name, int Generation, int ImageSize, int PatchSize,
    int VisionHidden, int VisionLayers, int VisionHeads, int VisionIntermediate,
    int TextHidden, int TextLayers, int Heads, int KvHeads, int HeadDim, int TextIntermediate, int Vocab,
    int ImageTokenIndex, int SlidingWindow) : SynthArch(Name)
{
    /// <summary>SigLIP So400m/14 + Gemma 2B (google/paligemma-3b-pt-224).</summary>
    public static readonly PaliGemmaArch PaliGemma3b224 = new("paligemma-3b-224", 1, 224, 14, 1152, 27, 16, 4304,
        2048, 18, 8, 1, 256, 16384, 257216, 257152, 0);

    /// <summary>SigLIP So400m/14 + Gemma 2 2B (google/paligemma2-3b-pt-224).</summary>
    public static readonly PaliGemmaArch PaliGemma2_3b224 = new("paligemma2-3b-224", 2, 224, 14, 1152, 27, 16, 4304,
        2304, 26, 8, 4, 256, 9216, 257216, 257152, 4096);

    /// <summary>SigLIP So400m/14 + Gemma 2 9B (google/paligemma2-10b-pt-224).</summary>
    public static readonly PaliGemmaArch PaliGemma2_10b224 = new("paligemma2-10b-224", 2, 224, 14, 1152, 27, 16, 4304,
        3584, 42, 16, 8, 256, 14336, 257216, 257152, 4096);

    /// <summary>The PaliGemma architectures synth knows, by CLI name.</summary>
    public static readonly IReadOnlyDictionary<string, PaliGemmaArch> Sizes = new Dictionary<string, PaliGemmaArch>
    {
        ["paligemma-3b-224"] = PaliGemma3b224,
        ["paligemma2-3b-224"] = PaliGemma2_3b224,
        ["paligemma2-3b-448"] = PaliGemma2_3b224 with { Name = "paligemma2-3b-448", ImageSize = 448 },
        ["paligemma2-3b-896"] = PaliGemma2_3b224 with { Name = "paligemma2-3b-896", ImageSize = 896 },
        ["paligemma2-10b-224"] = PaliGemma2_10b224,
        ["paligemma2-10b-448"] = PaliGemma2_10b224 with { Name = "paligemma2-10b-448", ImageSize = 448 },
    };

    /// <summary>Image tokens: (image_size / patch_size)².</summary>
    public int ImageTokens => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>Every tensor in the model's state_dict order (vision tower, projector, language model); no lm_head (tied).</summary>
    public override IEnumerable<SynthTensor> Tensors()
    {
        long dv = VisionHidden, dt = TextHidden, it = TextIntermediate;
        foreach (var t in SiglipTower("vision_tower.vision_model.", PatchSize, ImageTokens, dv, VisionIntermediate, VisionLayers)) yield return t;
        yield return new("multi_modal_projector.linear.weight", [dt, dv], Init.SmallNormal);
        yield return new("multi_modal_projector.linear.bias", [dt], Init.SmallNormal);

        foreach (var t in GemmaDecoder("language_model.model.", Vocab, dt, TextLayers, Heads, KvHeads, HeadDim, it, sandwichNorms: Generation == 2, qkNorm: false))
            yield return t;
    }

    /// <summary>
    /// config.json as the published checkpoints', with every key the engine reads written out
    /// (the published ones leave head_dim, softcaps and eps to HF defaults; the values here are those defaults).
    /// </summary>
    public override JsonObject Config(DType dtype)
    {
        string torchDtype = FloatEncoding.TorchName(dtype);
        var text = new JsonObject
        {
            ["model_type"] = Generation == 2 ? "gemma2" : "gemma",
            ["hidden_size"] = TextHidden,
            ["intermediate_size"] = TextIntermediate,
            ["num_hidden_layers"] = TextLayers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim,
            ["vocab_size"] = Vocab,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["max_position_embeddings"] = 8192,
            ["hidden_activation"] = "gelu_pytorch_tanh",
            ["hidden_act"] = "gelu_pytorch_tanh",
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["tie_word_embeddings"] = true,
            ["torch_dtype"] = torchDtype,
            ["num_image_tokens"] = ImageTokens,
        };
        if (Generation == 2)
        {
            text["query_pre_attn_scalar"] = HeadDim;
            text["attn_logit_softcapping"] = 50.0;
            text["final_logit_softcapping"] = 30.0;
            text["sliding_window"] = SlidingWindow;
            text["cache_implementation"] = "hybrid";
        }
        var vision = new JsonObject
        {
            ["model_type"] = "siglip_vision_model",
            ["hidden_size"] = VisionHidden,
            ["intermediate_size"] = VisionIntermediate,
            ["num_hidden_layers"] = VisionLayers,
            ["num_attention_heads"] = VisionHeads,
            ["num_channels"] = 3,
            ["image_size"] = ImageSize,
            ["patch_size"] = PatchSize,
            ["layer_norm_eps"] = 1e-6,
            ["hidden_act"] = "gelu_pytorch_tanh",
            ["attention_dropout"] = 0.0,
            ["num_image_tokens"] = ImageTokens,
            ["projection_dim"] = TextHidden,
            ["projector_hidden_act"] = "gelu_fast",
            ["vision_use_head"] = false,
        };
        return new JsonObject
        {
            ["architectures"] = new JsonArray("PaliGemmaForConditionalGeneration"),
            ["model_type"] = "paligemma",
            ["bos_token_id"] = 2,
            ["eos_token_id"] = 1,
            ["pad_token_id"] = 0,
            ["ignore_index"] = -100,
            ["image_token_index"] = ImageTokenIndex,
            // The published configs have a top-level hidden_size of 2048 for both generations; HF ignores it.
            ["hidden_size"] = 2048,
            ["projection_dim"] = TextHidden,
            ["vocab_size"] = Vocab,
            ["text_config"] = text,
            ["vision_config"] = vision,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.47.0",
        };
    }

    /// <summary>preprocessor_config.json of the published checkpoints (SiglipImageProcessor, bicubic, mean = std = 0.5).</summary>
    public override JsonObject PreprocessorConfig() => new()
    {
        ["image_processor_type"] = "SiglipImageProcessor",
        ["processor_class"] = "PaliGemmaProcessor",
        ["do_convert_rgb"] = null,
        ["do_resize"] = true,
        ["size"] = new JsonObject { ["height"] = ImageSize, ["width"] = ImageSize },
        ["resample"] = 3,
        ["do_rescale"] = true,
        ["rescale_factor"] = 1.0 / 255,
        ["do_normalize"] = true,
        ["image_mean"] = new JsonArray(0.5, 0.5, 0.5),
        ["image_std"] = new JsonArray(0.5, 0.5, 0.5),
        ["image_seq_length"] = ImageTokens,
    };
}
