using System.Text.Json.Nodes;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>
/// The sizes of a Molmo checkpoint (CLIP-style ViT over crops, two ViT layers concatenated, 2×2 attention pooling,
/// SwiGLU projector, Qwen2-style decoder with fused att_proj / ff_proj) and the tensors and config.json of its Hugging
/// Face layout (allenai/Molmo-7B-D-0924, remote code <c>MolmoForCausalLM</c>).
/// </summary>
/// <param name="Vocab">Rows of <c>wte.embedding</c> and of the output head (<c>embedding_size</c>).</param>
/// <param name="AdditionalVocab">Rows of <c>wte.new_embedding</c> (the image tokens).</param>
/// <param name="TextIntermediate">The MLP's width (ff_proj holds twice as many rows: up and gate).</param>
/// <param name="TokensPerSide">Pooled cells per crop side (<c>image_token_length_w/h</c>).</param>
/// <param name="Margin">Overlap margin in patches on each side (<c>overlap_margins</c>).</param>
public sealed record MolmoArch(
    string Name, int ImageSize, int PatchSize, int VisionHidden, int VisionLayers, int VisionHeads, int VisionIntermediate,
    int TextHidden, int TextLayers, int Heads, int KvHeads, int TextIntermediate, int Vocab, int AdditionalVocab,
    int TokensPerSide, int Margin) : SynthArch(Name)
{
    /// <summary>Molmo-7B-D-0924: CLIP ViT-L/14-336 with 23 of its 24 blocks + a Qwen2-7B-sized decoder.</summary>
    public static readonly MolmoArch Molmo7bD = new("molmo-7b-d", 336, 14, 1024, 23, 16, 4096, 3584, 28, 28, 4, 18944, 152064, 128, 12, 4);

    /// <summary>The Molmo architectures synth knows, by CLI name.</summary>
    public static readonly IReadOnlyDictionary<string, MolmoArch> Sizes = new Dictionary<string, MolmoArch>
    {
        ["molmo-7b-d"] = Molmo7bD,
    };

    /// <summary>Patches per crop, plus the class token: <c>image_num_pos</c>.</summary>
    int Positions => (ImageSize / PatchSize) * (ImageSize / PatchSize) + 1;

    /// <summary>Every tensor in the model's state_dict order: the decoder (<c>model.transformer</c>), then the vision backbone.</summary>
    public override IEnumerable<SynthTensor> Tensors()
    {
        const string t = "model.transformer.";
        long d = TextHidden, headDim = TextHidden / Heads, qkv = (Heads + 2L * KvHeads) * headDim;
        yield return new(t + "wte.embedding", [Vocab, d], Init.SmallNormal);
        yield return new(t + "wte.new_embedding", [AdditionalVocab, d], Init.SmallNormal);
        yield return new(t + "ln_f.weight", [d], Init.NearOne);
        for (int l = 0; l < TextLayers; l++)
        {
            string b = $"{t}blocks.{l}.";
            yield return new(b + "att_proj.weight", [qkv, d], Init.SmallNormal);
            yield return new(b + "att_proj.bias", [qkv], Init.SmallNormal);
            yield return new(b + "attn_out.weight", [d, Heads * headDim], Init.SmallNormal);
            yield return new(b + "ff_proj.weight", [2L * TextIntermediate, d], Init.SmallNormal);
            yield return new(b + "ff_out.weight", [d, TextIntermediate], Init.SmallNormal);
            yield return new(b + "attn_norm.weight", [d], Init.NearOne);
            yield return new(b + "ff_norm.weight", [d], Init.NearOne);
        }
        yield return new(t + "ff_out.weight", [Vocab, d], Init.SmallNormal);

        const string v = "model.vision_backbone.";
        long dv = VisionHidden, features = 2 * dv;
        yield return new(v + "pad_embed", [2, features], Init.SmallNormal);
        yield return new(v + "image_vit.class_embedding", [dv], Init.SmallNormal);
        yield return new(v + "image_vit.positional_embedding", [Positions, dv], Init.SmallNormal);
        yield return new(v + "image_vit.patch_embedding.weight", [dv, PatchSize * PatchSize * 3], Init.SmallNormal);
        yield return new(v + "image_vit.pre_ln.weight", [dv], Init.NearOne);
        yield return new(v + "image_vit.pre_ln.bias", [dv], Init.SmallNormal);
        for (int l = 0; l < VisionLayers; l++)
        {
            string b = $"{v}image_vit.transformer.resblocks.{l}.";
            foreach (var w in new[] { "wq", "wk", "wv", "wo" })
            {
                yield return new($"{b}attention.{w}.weight", [dv, dv], Init.SmallNormal);
                yield return new($"{b}attention.{w}.bias", [dv], Init.SmallNormal);
            }
            yield return new(b + "feed_forward.w1.weight", [VisionIntermediate, dv], Init.SmallNormal);
            yield return new(b + "feed_forward.w1.bias", [VisionIntermediate], Init.SmallNormal);
            yield return new(b + "feed_forward.w2.weight", [dv, VisionIntermediate], Init.SmallNormal);
            yield return new(b + "feed_forward.w2.bias", [dv], Init.SmallNormal);
            foreach (var norm in new[] { "attention_norm", "ffn_norm" })
            {
                yield return new($"{b}{norm}.weight", [dv], Init.NearOne);
                yield return new($"{b}{norm}.bias", [dv], Init.SmallNormal);
            }
        }
        foreach (var w in new[] { "wq", "wk", "wv" })
        {
            yield return new($"{v}image_pooling_2d.{w}.weight", [dv, features], Init.SmallNormal);
            yield return new($"{v}image_pooling_2d.{w}.bias", [dv], Init.SmallNormal);
        }
        yield return new(v + "image_pooling_2d.wo.weight", [dv, dv], Init.SmallNormal);
        yield return new(v + "image_pooling_2d.wo.bias", [dv], Init.SmallNormal);
        yield return new(v + "image_projector.w1.weight", [TextIntermediate, dv], Init.SmallNormal);
        yield return new(v + "image_projector.w2.weight", [d, TextIntermediate], Init.SmallNormal);
        yield return new(v + "image_projector.w3.weight", [TextIntermediate, dv], Init.SmallNormal);
    }

    /// <summary>
    /// config.json with the key set of the molmo-tiny fixture: every key of Molmo-7B-D's config.json plus the settings
    /// its <c>MolmoForCausalLM</c> hard-codes, written out.
    /// </summary>
    public override JsonObject Config(DType dtype) => new()
    {
        ["architectures"] = new JsonArray("MolmoForCausalLM"),
        ["attention_layer_norm"] = false,
        ["auto_map"] = new JsonObject { ["AutoConfig"] = "config_molmo.MolmoConfig", ["AutoModelForCausalLM"] = "modeling_molmo.MolmoForCausalLM" },
        ["clip_qkv"] = null,
        ["embedding_size"] = Vocab,
        ["hidden_size"] = TextHidden,
        ["initializer_range"] = 0.02,
        ["intermediate_size"] = 2 * TextIntermediate,
        ["layer_norm_eps"] = 1e-6,
        ["layer_norm_type"] = "rms",
        ["max_position_embeddings"] = 4096,
        ["model_type"] = "molmo",
        ["norm_after"] = false,
        ["num_attention_heads"] = Heads,
        ["num_hidden_layers"] = TextLayers,
        ["num_key_value_heads"] = KvHeads,
        ["qkv_bias"] = true,
        ["rope_theta"] = 1000000.0,
        ["tie_word_embeddings"] = false,
        ["torch_dtype"] = FloatEncoding.TorchName(dtype),
        ["transformers_version"] = "4.43.3",
        ["use_cache"] = true,
        ["use_position_ids"] = true,
        ["vocab_size"] = Vocab,
        ["weight_tying"] = false,
        ["additional_vocab_size"] = AdditionalVocab,
        ["vit_layers"] = new JsonArray(-2, -9),
        ["image_pooling_2d"] = "attention-meanq",
        ["image_pooling_h"] = 2,
        ["image_pooling_w"] = 2,
        ["image_padding_embed"] = "pad_and_partial_pad",
        ["image_projector"] = "mlp",
        ["vision_backbone"] = new JsonObject
        {
            ["image_model_type"] = "openai",
            ["image_default_input_size"] = new JsonArray(ImageSize, ImageSize),
            ["image_patch_size"] = PatchSize,
            ["image_pos_patch_size"] = PatchSize,
            ["image_emb_dim"] = VisionHidden,
            ["image_num_heads"] = VisionHeads,
            ["image_num_key_value_heads"] = VisionHeads,
            ["image_num_layers"] = VisionLayers,
            ["image_head_dim"] = VisionHidden / VisionHeads,
            ["image_mlp_dim"] = VisionIntermediate,
            ["image_mlp_activations"] = "quick_gelu",
            ["image_dropout_rate"] = 0.0,
            ["image_num_pos"] = Positions,
            ["image_norm_eps"] = 1e-5,
            ["attention_dropout"] = 0.0,
            ["residual_dropout"] = 0.0,
            ["initializer_range"] = 0.02,
        },
    };

    /// <summary>preprocessor_config.json of the hub checkpoint (MolmoImageProcessor: crops, margins, CLIP mean/std).</summary>
    public override JsonObject PreprocessorConfig() => new()
    {
        ["auto_map"] = new JsonObject { ["AutoImageProcessor"] = "image_preprocessing_molmo.MolmoImageProcessor", ["AutoProcessor"] = "preprocessing_molmo.MolmoProcessor" },
        ["base_image_input_size"] = new JsonArray(ImageSize, ImageSize),
        ["do_normalize"] = true,
        ["image_mean"] = new JsonArray(0.48145466, 0.4578275, 0.40821073),
        ["image_padding_mask"] = true,
        ["image_patch_size"] = PatchSize,
        ["image_processor_type"] = "MolmoImageProcessor",
        ["image_std"] = new JsonArray(0.26862954, 0.26130258, 0.27577711),
        ["image_token_length_h"] = TokensPerSide,
        ["image_token_length_w"] = TokensPerSide,
        ["max_crops"] = 12,
        ["overlap_margins"] = new JsonArray(Margin, Margin),
        ["processor_class"] = "MolmoProcessor",
    };
}
