using System.Text.Json.Nodes;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>
/// The sizes of a Gemma 3 checkpoint (SigLIP vision tower + pooling projector + Gemma 3 decoder) and the tensors and
/// config.json of its Hugging Face layout (transformers &lt; 4.52 names, as on the hub; tied embeddings, no lm_head).
/// </summary>
/// <param name="Vocab">Embedding rows (262144 pieces + the image token, padded: 262208).</param>
/// <param name="EosTokenIds">The top-level <c>eos_token_id</c> list (<c>&lt;eos&gt;</c> and <c>&lt;end_of_turn&gt;</c>).</param>
public sealed record Gemma3Arch(
    string Name, int ImageSize, int PatchSize,
    int VisionHidden, int VisionLayers, int VisionHeads, int VisionIntermediate, int MmTokensPerImage,
    int TextHidden, int TextLayers, int Heads, int KvHeads, int HeadDim, int TextIntermediate, int Vocab,
    int QueryPreAttnScalar, int SlidingWindow, int BoiTokenIndex, int EoiTokenIndex, int ImageTokenIndex, int[] EosTokenIds) : SynthArch(Name)
{
    /// <summary>SigLIP So400m/14 at 896 px + Gemma 3 4B (google/gemma-3-4b-it).</summary>
    public static readonly Gemma3Arch Gemma3_4b = new("gemma-3-4b-it", 896, 14, 1152, 27, 16, 4304, 256,
        2560, 34, 8, 4, 256, 10240, 262_208, 256, 1024, 255_999, 256_000, 262_144, [1, 106]);

    /// <summary>The Gemma 3 architectures synth knows, by CLI name.</summary>
    public static readonly IReadOnlyDictionary<string, Gemma3Arch> Sizes = new Dictionary<string, Gemma3Arch>
    {
        ["gemma-3-4b-it"] = Gemma3_4b,
    };

    /// <summary>Vision patches: (image_size / patch_size)².</summary>
    public int Patches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    /// <summary>Every tensor in the model's state_dict order (vision tower, projector, language model); no lm_head (tied).</summary>
    public override IEnumerable<SynthTensor> Tensors()
    {
        long dv = VisionHidden, dt = TextHidden, it = TextIntermediate;
        foreach (var t in SiglipTower("vision_tower.vision_model.", PatchSize, Patches, dv, VisionIntermediate, VisionLayers)) yield return t;
        yield return new("multi_modal_projector.mm_input_projection_weight", [dv, dt], Init.SmallNormal);
        yield return new("multi_modal_projector.mm_soft_emb_norm.weight", [dv], Init.SmallNormal);

        foreach (var t in GemmaDecoder("language_model.model.", Vocab, dt, TextLayers, Heads, KvHeads, HeadDim, it, sandwichNorms: true, qkNorm: true))
            yield return t;
    }

    /// <summary>
    /// config.json with the key set of the gemma3-tiny fixture (HF <c>Gemma3Config</c> with every key written out, both
    /// <c>sliding_window_pattern</c> and <c>layer_types</c>).
    /// </summary>
    public override JsonObject Config(DType dtype)
    {
        string torchDtype = FloatEncoding.TorchName(dtype);
        var text = new JsonObject
        {
            ["model_type"] = "gemma3_text",
            ["vocab_size"] = Vocab,
            ["hidden_size"] = TextHidden,
            ["intermediate_size"] = TextIntermediate,
            ["num_hidden_layers"] = TextLayers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["head_dim"] = HeadDim,
            ["hidden_activation"] = "gelu_pytorch_tanh",
            ["max_position_embeddings"] = 131_072,
            ["initializer_range"] = 0.02,
            ["rms_norm_eps"] = 1e-6,
            ["use_cache"] = true,
            ["pad_token_id"] = 0,
            ["eos_token_id"] = 1,
            ["bos_token_id"] = 2,
            ["tie_word_embeddings"] = true,
            ["rope_theta"] = 1_000_000.0,
            ["rope_local_base_freq"] = 10_000.0,
            ["rope_scaling"] = new JsonObject { ["factor"] = 8.0, ["rope_type"] = "linear" },
            ["attention_bias"] = false,
            ["attention_dropout"] = 0.0,
            ["query_pre_attn_scalar"] = QueryPreAttnScalar,
            ["sliding_window"] = SlidingWindow,
            ["sliding_window_pattern"] = 6,
            // transformers ≥ 4.53 spells the pattern out: every sixth layer is global.
            ["layer_types"] = new JsonArray(Enumerable.Range(0, TextLayers).Select(i => (JsonNode)((i + 1) % 6 == 0 ? "full_attention" : "sliding_attention")).ToArray()),
            ["final_logit_softcapping"] = null,
            ["attn_logit_softcapping"] = null,
            ["cache_implementation"] = "hybrid",
            ["torch_dtype"] = torchDtype,
        };
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
            ["hidden_act"] = "gelu_pytorch_tanh",
            ["layer_norm_eps"] = 1e-6,
            ["attention_dropout"] = 0.0,
            ["vision_use_head"] = false,
            ["torch_dtype"] = torchDtype,
        };
        return new JsonObject
        {
            ["architectures"] = new JsonArray("Gemma3ForConditionalGeneration"),
            ["model_type"] = "gemma3",
            ["boi_token_index"] = BoiTokenIndex,
            ["eoi_token_index"] = EoiTokenIndex,
            ["image_token_index"] = ImageTokenIndex,
            ["mm_tokens_per_image"] = MmTokensPerImage,
            ["eos_token_id"] = new JsonArray(EosTokenIds.Select(id => (JsonNode)id).ToArray()),
            ["initializer_range"] = 0.02,
            ["text_config"] = text,
            ["vision_config"] = vision,
            ["torch_dtype"] = torchDtype,
            ["transformers_version"] = "4.50.0",
        };
    }

    /// <summary>preprocessor_config.json of the hub checkpoint (Gemma3ImageProcessor: bilinear to the square, mean = std = 0.5, pan-and-scan off).</summary>
    public override JsonObject PreprocessorConfig() => new()
    {
        ["do_convert_rgb"] = null,
        ["do_normalize"] = true,
        ["do_pan_and_scan"] = null,
        ["do_rescale"] = true,
        ["do_resize"] = true,
        ["image_mean"] = new JsonArray(0.5, 0.5, 0.5),
        ["image_processor_type"] = "Gemma3ImageProcessor",
        ["image_seq_length"] = MmTokensPerImage,
        ["image_std"] = new JsonArray(0.5, 0.5, 0.5),
        ["pan_and_scan_max_num_crops"] = null,
        ["pan_and_scan_min_crop_size"] = null,
        ["pan_and_scan_min_ratio_to_activate"] = null,
        ["processor_class"] = "Gemma3Processor",
        ["resample"] = 2,
        ["rescale_factor"] = 1.0 / 255,
        ["size"] = new JsonObject { ["height"] = ImageSize, ["width"] = ImageSize },
    };
}
