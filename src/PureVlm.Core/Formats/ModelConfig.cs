using System.Text.Json;
using PureVlm.Kernels;

namespace PureVlm.Formats;

/// <summary>Raised for a config.json that cannot describe a supported model; the message names the file, the key, what was found and what was expected.</summary>
public sealed class ModelConfigException(string message) : PureVlmException(message);

/// <summary>
/// A decoder's config: HF <c>GemmaConfig</c> / <c>Gemma2Config</c> / <c>Gemma3TextConfig</c> / <c>LlamaConfig</c> (the
/// keys they share, plus Gemma 2's soft-caps, <c>query_pre_attn_scalar</c> and window, which are 0 / off for the others,
/// and Gemma 3's per-layer attention kinds, local RoPE base, RoPE scaling and QK-norm).
/// </summary>
public sealed record TextConfig(
    string ModelType, int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int NumKeyValueHeads, int HeadDim, int VocabSize, float RmsNormEps, float RopeTheta, int MaxPositionEmbeddings,
    bool TieWordEmbeddings, float QueryPreAttnScalar, float AttnLogitSoftcapping, float FinalLogitSoftcapping, int SlidingWindow)
{
    /// <summary>True for <c>gemma2</c>: extra norms, soft-caps, <c>query_pre_attn_scalar</c>, sliding window on even layers.</summary>
    public bool IsGemma2 => ModelType == "gemma2";
    /// <summary>True for <c>gemma3_text</c>: Gemma 2's four norms, QK-norm, local/global layers with their own RoPE.</summary>
    public bool IsGemma3 => ModelType == "gemma3_text";
    /// <summary>True for <c>gemma</c>, <c>gemma2</c> and <c>gemma3_text</c>.</summary>
    public bool IsGemma => ModelType is "gemma" or "gemma2" or "gemma3_text";
    /// <summary>Gemma 3's <c>layer_types</c>: true where a layer is <c>sliding_attention</c>; null for the other decoders.</summary>
    public IReadOnlyList<bool>? SlidingLayers { get; init; }
    /// <summary>Gemma 3's <c>rope_local_base_freq</c>: the RoPE base of sliding layers (0 for the other decoders).</summary>
    public float RopeLocalBaseFreq { get; init; }
    /// <summary>The factor of a <c>"linear"</c> <c>rope_scaling</c> (Gemma 3: global layers only); 1 = none.</summary>
    public float RopeScalingFactor { get; init; } = 1f;

    /// <summary>Whether layer <paramref name="i"/> attends through the sliding window: Gemma 2's even layers, Gemma 3's <c>sliding_attention</c> layers.</summary>
    public bool IsSlidingLayer(int i) => SlidingLayers is { } s ? s[i] : IsGemma2 && i % 2 == 0;
    /// <summary>The MLP's activation (<c>hidden_activation</c> for Gemma, <c>hidden_act</c> for LLaMA).</summary>
    public Activation HiddenAct { get; init; } = Activation.GeluTanh;
    /// <summary><c>attention_bias</c>: q/k/v/o projections with a bias.</summary>
    public bool AttentionBias { get; init; }
    /// <summary><c>mlp_bias</c>: gate/up/down projections with a bias.</summary>
    public bool MlpBias { get; init; }
}

/// <summary>A ViT vision tower: HF <c>SiglipVisionConfig</c> or <c>CLIPVisionConfig</c>.</summary>
public sealed record VisionConfig(
    int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads, int NumChannels,
    int ImageSize, int PatchSize, float LayerNormEps)
{
    /// <summary><c>siglip_vision_model</c> or <c>clip_vision_model</c>.</summary>
    public string ModelType { get; init; } = "siglip_vision_model";
    /// <summary>The MLP's activation (<c>hidden_act</c>).</summary>
    public Activation HiddenAct { get; init; } = Activation.GeluTanh;
    /// <summary>hidden_size / num_attention_heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
    /// <summary>Patches per side.</summary>
    public int GridSize => ImageSize / PatchSize;
    /// <summary>Patches: (image_size / patch_size)².</summary>
    public int NumPatches => GridSize * GridSize;
}

/// <summary>The keys of HF <c>LlavaConfig</c> that say how image features are taken and projected.</summary>
/// <param name="VisionFeatureLayer"><c>vision_feature_layer</c>: the index into the tower's hidden states (negative counts from the end).</param>
/// <param name="VisionFeatureSelectStrategy"><c>vision_feature_select_strategy</c>: "default" drops the class token, "full" keeps it.</param>
/// <param name="ProjectorHiddenAct"><c>projector_hidden_act</c>.</param>
/// <param name="MultimodalProjectorBias"><c>multimodal_projector_bias</c>.</param>
/// <param name="ImageSeqLength"><c>image_seq_length</c>: image tokens per image in the prompt.</param>
public sealed record LlavaConfig(int VisionFeatureLayer, string VisionFeatureSelectStrategy, Activation ProjectorHiddenAct,
    bool MultimodalProjectorBias, int ImageSeqLength);

/// <summary>The keys of HF <c>Gemma3Config</c> that say how images enter the prompt.</summary>
/// <param name="MmTokensPerImage"><c>mm_tokens_per_image</c>: image tokens per image after the projector's average pooling (a square).</param>
/// <param name="BoiTokenIndex"><c>boi_token_index</c>: <c>&lt;start_of_image&gt;</c>.</param>
/// <param name="EoiTokenIndex"><c>eoi_token_index</c>: <c>&lt;end_of_image&gt;</c>.</param>
public sealed record Gemma3Config(int MmTokensPerImage, int BoiTokenIndex, int EoiTokenIndex);

/// <summary>
/// The keys HF <c>VideoLlavaConfig</c> adds to <see cref="LlavaConfig"/>'s: a video is <see cref="FramesPerVideo"/> frames,
/// each giving every token of the tower (class token included, whatever the strategy).
/// </summary>
/// <param name="VideoTokenIndex"><c>video_token_index</c>.</param>
/// <param name="VideoSeqLength"><c>video_seq_length</c>: video tokens per video in the prompt, frames × (patches + 1).</param>
/// <param name="FramesPerVideo">video_seq_length / (patches + 1): the frames one video is sampled to.</param>
public sealed record VideoLlavaConfig(int VideoTokenIndex, int VideoSeqLength, int FramesPerVideo);

/// <summary>
/// The image settings of Molmo (<c>modeling_molmo.py</c>'s <c>MolmoForCausalLM</c> hard-codes them; a config.json may
/// name them, with the same keys as its <c>FullMolmoConfig</c>).
/// </summary>
/// <param name="VitLayers"><c>vit_layers</c>: the ViT blocks whose outputs are concatenated (negative counts from the end), in order.</param>
/// <param name="PoolingH"><c>image_pooling_h</c>: patch rows per pooled cell.</param>
/// <param name="PoolingW"><c>image_pooling_w</c>: patch columns per pooled cell.</param>
/// <param name="AdditionalVocabSize"><c>additional_vocab_size</c>: rows of <c>wte.new_embedding</c> (the image tokens), after the <c>embedding_size</c> rows.</param>
public sealed record MolmoConfig(IReadOnlyList<int> VitLayers, int PoolingH, int PoolingW, int AdditionalVocabSize);

/// <summary>
/// A model's config.json: <c>paligemma</c> (text <c>gemma</c> or <c>gemma2</c>, vision <c>siglip_vision_model</c>),
/// <c>llava</c> (text <c>llama</c>, vision <c>clip_vision_model</c>), <c>gemma3</c> (text <c>gemma3_text</c>, vision
/// <c>siglip_vision_model</c>) or a plain <c>gemma</c> / <c>gemma2</c> / <c>gemma3_text</c> / <c>llama</c> causal LM. Omitted keys take the defaults of HF's config classes.
/// </summary>
/// <param name="ModelType">Top-level <c>model_type</c>.</param>
/// <param name="Text">The decoder (for PaliGemma, <c>text_config</c>; never the top-level <c>hidden_size</c>).</param>
/// <param name="Vision">The vision tower, or null for a text-only model.</param>
/// <param name="ImageTokenIndex"><c>image_token_index</c> (-1 without vision).</param>
/// <param name="BosTokenId"><c>bos_token_id</c>.</param>
/// <param name="EosTokenIds"><c>eos_token_id</c> (an int or a list).</param>
/// <param name="PadTokenId"><c>pad_token_id</c>.</param>
public sealed record ModelConfig(string ModelType, TextConfig Text, VisionConfig? Vision, int ImageTokenIndex,
    int BosTokenId, IReadOnlyList<int> EosTokenIds, int PadTokenId)
{
    /// <summary>The model types this engine builds.</summary>
    public static readonly IReadOnlyList<string> SupportedModelTypes = ["paligemma", "llava", "video_llava", "gemma3", "molmo", "gemma", "gemma2", "gemma3_text", "llama"];

    /// <summary>True for PaliGemma.</summary>
    public bool IsPaliGemma => ModelType == "paligemma";
    /// <summary>LLaVA's feature-selection and projector keys, or null for other models.</summary>
    public LlavaConfig? Llava { get; init; }
    /// <summary>Video-LLaVA's video keys (<see cref="Llava"/> holds its image keys), or null for other models.</summary>
    public VideoLlavaConfig? VideoLlava { get; init; }
    /// <summary>Gemma 3's image-token keys, or null for other models.</summary>
    public Gemma3Config? Gemma3 { get; init; }
    /// <summary>Molmo's vision-feature, pooling and vocabulary settings, or null for other models.</summary>
    public MolmoConfig? Molmo { get; init; }

    /// <summary>Reads and validates a config.json.</summary>
    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new ModelConfigException($"{path}: config file not found");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 32 });
            return Parse(doc.RootElement, path);
        }
        catch (JsonException e) { throw new ModelConfigException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
        // JsonDocument checks a string's UTF-8 only when it is read.
        catch (InvalidOperationException) { throw new ModelConfigException($"{path}: a string value is not valid UTF-8"); }
    }

    /// <summary>Parses config JSON text; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig Parse(string json, string source = "config.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 32 });
            return Parse(doc.RootElement, source);
        }
        catch (JsonException e) { throw new ModelConfigException($"{source}: not valid JSON ({e.Message.Split('\n')[0]})"); }
    }

    static ModelConfig Parse(JsonElement root, string src)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ModelConfigException($"{src}: expected a JSON object, found {root.ValueKind}");
        var top = new Keys(root, src, "");
        string supported = string.Join(", ", SupportedModelTypes);
        string modelType = top.String("model_type", null)
            ?? throw new ModelConfigException($"{src}: missing key 'model_type' (expected one of {supported})");
        int bos = top.Int("bos_token_id", 2), pad = top.Int("pad_token_id", 0);
        var eos = top.IntOrList("eos_token_id", 1);
        switch (modelType)
        {
            case "llama":
                return new ModelConfig(modelType, ParseLlamaText(top), null, -1, top.Int("bos_token_id", 1), top.IntOrList("eos_token_id", 2), top.Int("pad_token_id", -1));
            case "llava":
                return ParseLlava(root, top, src, modelType);
            case "video_llava":
                return ParseVideoLlava(root, top, src);
            case "molmo":
                return ParseMolmo(root, top, src);
            case "gemma" or "gemma2":
                return new ModelConfig(modelType, ParseText(top, modelType, vocabDefault: 256000, gemma1Defaults: null), null, -1, bos, eos, pad);
            case "gemma3_text":
                return new ModelConfig(modelType, ParseGemma3Text(top), null, -1, bos, eos, pad);
            case "gemma3":
                return ParseGemma3(root, top, src);
            case "paligemma":
                int vocab = top.Int("vocab_size", 257152);
                // PaliGemmaConfig builds a SiglipVisionConfig with paligemma-3b sizes when vision_config is absent,
                // but a given dict only gets SiglipVisionConfig's own defaults for its missing keys.
                VisionConfig vision = root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object
                    ? ParseVision(new Keys(v, src, "vision_config."), "siglip_vision_model")
                    : new VisionConfig(1152, 4096, 27, 16, 3, 224, 14, 1e-6f);
                TextConfig text;
                if (root.TryGetProperty("text_config", out var t) && t.ValueKind == JsonValueKind.Object)
                {
                    var tk = new Keys(t, src, "text_config.");
                    string textType = tk.String("model_type", "gemma")!;
                    if (textType is not ("gemma" or "gemma2"))
                        throw new ModelConfigException($"{src}: text_config.model_type is '{textType}', expected gemma or gemma2");
                    text = ParseText(tk, textType, vocab, null);
                }
                else text = ParseText(new Keys(default, src, "text_config."), "gemma", vocab, gemma1Defaults: true);
                int imageToken = top.Int("image_token_index", 256000);
                if (imageToken < 0 || imageToken >= text.VocabSize)
                    throw new ModelConfigException($"{src}: image_token_index {imageToken} is outside the vocabulary [0, {text.VocabSize})");
                return new ModelConfig(modelType, text, vision, imageToken, bos, eos, pad);
            default:
                throw new ModelConfigException($"{src}: model_type '{modelType}' is not supported (expected one of {supported})");
        }
    }

    /// <summary>
    /// HF <c>LlavaConfig</c>, or the same keys of <c>VideoLlavaConfig</c> (<paramref name="modelType"/> <c>video_llava</c>,
    /// whose defaults are Video-LLaVA-7B's: a 224-px tower, <c>&lt;image&gt;</c> 32000).
    /// </summary>
    static ModelConfig ParseLlava(JsonElement root, Keys top, string src, string modelType)
    {
        bool video = modelType == "video_llava";
        // Without vision_config, LlavaConfig builds llava-1.5's CLIP ViT-L/14-336 and VideoLlavaConfig the 224-px ViT-L/14;
        // a given dict gets CLIPVisionConfig's own defaults.
        VisionConfig vision = root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object
            ? ParseVision(new Keys(v, src, "vision_config."), "clip_vision_model")
            : new VisionConfig(1024, 4096, 24, 16, 3, video ? 224 : 336, 14, 1e-5f) { ModelType = "clip_vision_model", HiddenAct = Activation.QuickGelu };
        var tk = new Keys(root.TryGetProperty("text_config", out var t) && t.ValueKind == JsonValueKind.Object ? t : default, src, "text_config.");
        string textType = tk.String("model_type", "llama")!;
        if (textType != "llama") throw new ModelConfigException($"{src}: text_config.model_type is '{textType}', expected llama");
        var text = ParseLlamaText(tk);
        if (top.Has("vision_feature_layer") && !top.IsInt("vision_feature_layer"))
            throw new ModelConfigException($"{src}: vision_feature_layer is a list; only one layer (an integer) is supported");
        int layer = top.Int("vision_feature_layer", -2);
        if (layer < -(vision.NumHiddenLayers + 1) || layer > vision.NumHiddenLayers)
            throw new ModelConfigException($"{src}: vision_feature_layer is {layer}, expected an index into the {vision.NumHiddenLayers + 1} hidden states (-{vision.NumHiddenLayers + 1}..{vision.NumHiddenLayers})");
        string strategy = top.String("vision_feature_select_strategy", "default")!;
        if (strategy is not ("default" or "full"))
            throw new ModelConfigException($"{src}: vision_feature_select_strategy is '{strategy}', expected default or full");
        int perImage = vision.NumPatches + (strategy == "full" ? 1 : 0);
        int seq = top.Int("image_seq_length", perImage);
        if (seq != perImage)
            throw new ModelConfigException($"{src}: image_seq_length is {seq}, but the vision tower gives {perImage} image tokens ((image_size / patch_size)²{(strategy == "full" ? " + 1" : "")})");
        var llava = new LlavaConfig(layer, strategy, ParseActivation(top, "projector_hidden_act", "gelu"), top.Bool("multimodal_projector_bias", true), seq);
        int imageToken = top.Int("image_token_index", 32000);
        if (imageToken < 0 || imageToken >= text.VocabSize)
            throw new ModelConfigException($"{src}: image_token_index {imageToken} is outside the vocabulary [0, {text.VocabSize})");
        // LlavaConfig has no bos/eos of its own: the text config's are the model's.
        int bos = top.Has("bos_token_id") ? top.Int("bos_token_id", 1) : tk.Int("bos_token_id", 1);
        var eos = top.Has("eos_token_id") ? top.IntOrList("eos_token_id", 2) : tk.IntOrList("eos_token_id", 2);
        return new ModelConfig(modelType, text, vision, imageToken, bos, eos, top.Int("pad_token_id", -1)) { Llava = llava };
    }

    /// <summary>HF <c>VideoLlavaConfig</c>: LLaVA's keys plus <c>video_token_index</c> and <c>video_seq_length</c>.</summary>
    static ModelConfig ParseVideoLlava(JsonElement root, Keys top, string src)
    {
        var config = ParseLlava(root, top, src, "video_llava");
        int perFrame = config.Vision!.NumPatches + 1; // videos keep the class token of every frame
        int seq = top.Int("video_seq_length", 8 * perFrame);
        if (seq <= 0 || seq % perFrame != 0)
            throw new ModelConfigException($"{src}: video_seq_length is {seq}, expected a positive multiple of {perFrame} (frames × ((image_size / patch_size)² + 1))");
        int videoToken = top.Int("video_token_index", 32001);
        if (videoToken < 0 || videoToken >= config.Text.VocabSize)
            throw new ModelConfigException($"{src}: video_token_index {videoToken} is outside the vocabulary [0, {config.Text.VocabSize})");
        if (videoToken == config.ImageTokenIndex)
            throw new ModelConfigException($"{src}: video_token_index {videoToken} equals image_token_index; expected two different tokens");
        return config with { VideoLlava = new VideoLlavaConfig(videoToken, seq, seq / perFrame) };
    }

    static ModelConfig ParseGemma3(JsonElement root, Keys top, string src)
    {
        // Gemma3Config builds SiglipVisionConfig() / Gemma3TextConfig() defaults for a missing vision_config / text_config.
        var vision = ParseVision(new Keys(root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object ? v : default, src, "vision_config."), "siglip_vision_model");
        var tk = new Keys(root.TryGetProperty("text_config", out var t) && t.ValueKind == JsonValueKind.Object ? t : default, src, "text_config.");
        string textType = tk.String("model_type", "gemma3_text")!;
        if (textType != "gemma3_text") throw new ModelConfigException($"{src}: text_config.model_type is '{textType}', expected gemma3_text");
        var text = ParseGemma3Text(tk);
        int tokens = top.Int("mm_tokens_per_image", 256), side = (int)Math.Round(Math.Sqrt(tokens));
        if (tokens <= 0 || side * side != tokens || vision.GridSize % side != 0)
            throw new ModelConfigException($"{src}: mm_tokens_per_image is {tokens}, expected a square whose side divides the {vision.GridSize} patches per side (image_size / patch_size)");
        var g3 = new Gemma3Config(tokens, top.Int("boi_token_index", 255_999), top.Int("eoi_token_index", 256_000));
        int imageToken = top.Int("image_token_index", 262_144);
        foreach (var (key, id) in new[] { ("image_token_index", imageToken), ("boi_token_index", g3.BoiTokenIndex), ("eoi_token_index", g3.EoiTokenIndex) })
            if (id < 0 || id >= text.VocabSize)
                throw new ModelConfigException($"{src}: {key} {id} is outside the vocabulary [0, {text.VocabSize})");
        // Gemma3Config has no bos/pad of its own: the text config's are the model's; eos_token_id may be on either.
        int bos = top.Has("bos_token_id") ? top.Int("bos_token_id", 2) : tk.Int("bos_token_id", 2);
        var eos = top.Has("eos_token_id") ? top.IntOrList("eos_token_id", 1) : tk.IntOrList("eos_token_id", 1);
        int pad = top.Has("pad_token_id") ? top.Int("pad_token_id", 0) : tk.Int("pad_token_id", 0);
        return new ModelConfig("gemma3", text, vision, imageToken, bos, eos, pad) { Gemma3 = g3 };
    }

    /// <summary>HF <c>Gemma3TextConfig</c> with its defaults (gemma-3-1b's sizes).</summary>
    static TextConfig ParseGemma3Text(Keys k)
    {
        int layers = k.Int("num_hidden_layers", 26);
        k.Positive("num_hidden_layers", layers);
        k.AtMost("num_hidden_layers", layers, MaxDim);
        var c = new TextConfig("gemma3_text",
            HiddenSize: k.Int("hidden_size", 2304),
            IntermediateSize: k.Int("intermediate_size", 9216),
            NumHiddenLayers: layers,
            NumAttentionHeads: k.Int("num_attention_heads", 8),
            NumKeyValueHeads: k.Int("num_key_value_heads", 4),
            HeadDim: k.Int("head_dim", 256),
            VocabSize: k.Int("vocab_size", 262_208),
            RmsNormEps: k.Float("rms_norm_eps", 1e-6f),
            RopeTheta: k.Float("rope_theta", 1_000_000f),
            MaxPositionEmbeddings: k.Int("max_position_embeddings", 131_072),
            TieWordEmbeddings: k.Bool("tie_word_embeddings", true),
            QueryPreAttnScalar: k.Float("query_pre_attn_scalar", 256f),
            AttnLogitSoftcapping: k.OptionalFloat("attn_logit_softcapping", 0),
            FinalLogitSoftcapping: k.OptionalFloat("final_logit_softcapping", 0),
            SlidingWindow: k.Int("sliding_window", 4096))
        {
            SlidingLayers = Gemma3LayerTypes(k, layers),
            RopeLocalBaseFreq = k.Float("rope_local_base_freq", 10_000f),
            RopeScalingFactor = LinearRopeScaling(k),
        };
        string act = k.String("hidden_activation", null) ?? "gelu_pytorch_tanh";
        if (act != "gelu_pytorch_tanh")
            throw new ModelConfigException($"{k.Source}: {k.Prefix}hidden_activation is '{act}', only gelu_pytorch_tanh is supported");
        if (k.Bool("attention_bias", false)) throw new ModelConfigException($"{k.Source}: {k.Prefix}attention_bias is true, expected false (Gemma 3's projections have no bias)");
        if (!(c.QueryPreAttnScalar > 0)) throw new ModelConfigException($"{k.Source}: {k.Prefix}query_pre_attn_scalar must be > 0, found {c.QueryPreAttnScalar}");
        k.PositiveFinite("rope_local_base_freq", c.RopeLocalBaseFreq);
        return ValidateText(k, c);
    }

    /// <summary>
    /// <c>layer_types</c> (transformers ≥ 4.53), else <c>sliding_window_pattern</c> P (4.50): layer i is full iff (i + 1) % P == 0.
    /// </summary>
    static bool[] Gemma3LayerTypes(Keys k, int layers)
    {
        if (k.Strings("layer_types") is { } types)
        {
            if (types.Count != layers)
                throw new ModelConfigException($"{k.Source}: {k.Prefix}layer_types has {types.Count} entries, expected num_hidden_layers = {layers}");
            return types.Select((t, i) => t switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                _ => throw new ModelConfigException($"{k.Source}: {k.Prefix}layer_types[{i}] is '{t}', expected sliding_attention or full_attention"),
            }).ToArray();
        }
        int pattern = k.Int("sliding_window_pattern", 6);
        k.Positive("sliding_window_pattern", pattern);
        return Enumerable.Range(0, layers).Select(i => (i + 1) % pattern != 0).ToArray();
    }

    /// <summary><c>rope_scaling</c>: null or <c>"default"</c> → 1; <c>"linear"</c> → its factor; any other kind is refused.</summary>
    static float LinearRopeScaling(Keys k)
    {
        if (!k.Has("rope_scaling")) return 1f;
        var s = k.Object("rope_scaling");
        // Older configs spell rope_type as "type".
        string kind = s.String("rope_type", null) ?? s.String("type", null) ?? "default";
        if (kind == "default") return 1f;
        if (kind != "linear")
            throw new ModelConfigException($"{k.Source}: {k.Prefix}rope_scaling.rope_type is '{kind}', expected linear or default");
        float factor = s.Float("factor", float.NaN);
        if (!(factor >= 1 && float.IsFinite(factor)))
            throw new ModelConfigException($"{k.Source}: {k.Prefix}rope_scaling.factor is {factor}, expected a finite number ≥ 1");
        return factor;
    }

    /// <summary>
    /// Molmo-7B-D's config.json holds only decoder keys; every other setting takes the value <c>MolmoForCausalLM.__init__</c>
    /// hard-codes (Molmo-7B-D's), and only those values of the switches (pooling, padding embeddings, projector) are built.
    /// </summary>
    static ModelConfig ParseMolmo(JsonElement root, Keys top, string src)
    {
        int hidden = top.Int("hidden_size", 3584), heads = top.Int("num_attention_heads", 28);
        top.Positive("num_attention_heads", heads);
        int fused = top.Int("intermediate_size", 37888);
        if (fused % 2 != 0) throw new ModelConfigException($"{src}: intermediate_size is {fused}, expected an even number (the fused ff_proj width: up and gate)");
        int vocab = top.Int("embedding_size", top.Int("vocab_size", 152064));
        if (top.Has("vocab_size") && top.Int("vocab_size", vocab) != vocab)
            throw new ModelConfigException($"{src}: vocab_size is {top.Int("vocab_size", vocab)}, embedding_size is {vocab}; Molmo's output layer has embedding_size rows, expected them equal");
        foreach (var (key, want) in new[] { ("layer_norm_type", "rms"), ("image_pooling_2d", "attention-meanq"), ("image_padding_embed", "pad_and_partial_pad"), ("image_projector", "mlp") })
        {
            string found = top.String(key, want)!;
            if (found != want) throw new ModelConfigException($"{src}: {key} is '{found}', expected '{want}' (the only Molmo-7B-D setting supported)");
        }
        foreach (var key in new[] { "norm_after", "attention_layer_norm", "weight_tying" })
            if (top.Bool(key, false)) throw new ModelConfigException($"{src}: {key} is true, expected false (Molmo-7B-D's layout)");
        if (top.Has("clip_qkv")) throw new ModelConfigException($"{src}: clip_qkv is set, expected null (Molmo-7B-D does not clip q/k/v)");
        var text = ValidateText(top, new TextConfig("molmo",
            HiddenSize: hidden,
            IntermediateSize: fused / 2, // ff_proj holds up and gate: the MLP itself is half as wide
            NumHiddenLayers: top.Int("num_hidden_layers", 28),
            NumAttentionHeads: heads,
            NumKeyValueHeads: top.Int("num_key_value_heads", 4),
            HeadDim: hidden / heads,
            VocabSize: vocab,
            RmsNormEps: top.Float("layer_norm_eps", 1e-6f),
            RopeTheta: top.Float("rope_theta", 1e6f),
            MaxPositionEmbeddings: top.Int("max_position_embeddings", 4096),
            TieWordEmbeddings: false,
            QueryPreAttnScalar: 0, AttnLogitSoftcapping: 0, FinalLogitSoftcapping: 0, SlidingWindow: int.MaxValue)
        {
            HiddenAct = Activation.Silu,
            AttentionBias = top.Bool("qkv_bias", true),
        });
        var vk = new Keys(root.TryGetProperty("vision_backbone", out var vb) && vb.ValueKind == JsonValueKind.Object ? vb : default, src, "vision_backbone.");
        string vitType = vk.String("image_model_type", "openai")!;
        if (vitType != "openai") throw new ModelConfigException($"{src}: vision_backbone.image_model_type is '{vitType}', expected openai (the CLIP ViT Molmo-7B-D uses)");
        var size = vk.IntList("image_default_input_size", [336, 336]);
        if (size.Count != 2 || size[0] != size[1])
            throw new ModelConfigException($"{src}: vision_backbone.image_default_input_size is [{string.Join(", ", size)}], expected a square [S, S]");
        int vitHeads = vk.Int("image_num_heads", 16), vitDim = vk.Int("image_emb_dim", 1024);
        if (vk.Int("image_num_key_value_heads", vitHeads) != vitHeads)
            throw new ModelConfigException($"{src}: vision_backbone.image_num_key_value_heads is {vk.Int("image_num_key_value_heads", vitHeads)}, expected image_num_heads {vitHeads}");
        if (vk.Int("image_head_dim", vitDim / Math.Max(1, vitHeads)) * vitHeads != vitDim)
            throw new ModelConfigException($"{src}: vision_backbone.image_head_dim × image_num_heads is {vk.Int("image_head_dim", 0) * vitHeads}, expected image_emb_dim {vitDim}");
        var vision = new VisionConfig(vitDim, vk.Int("image_mlp_dim", 4096), vk.Int("image_num_layers", 23), vitHeads, 3,
            size[0], vk.Int("image_patch_size", 14), vk.Float("image_norm_eps", 1e-5f))
        {
            ModelType = "molmo_vision",
            HiddenAct = ParseActivation(vk, "image_mlp_activations", "quick_gelu"),
        };
        if (vision.ImageSize % vision.PatchSize != 0)
            throw new ModelConfigException($"{src}: vision_backbone.image_default_input_size {vision.ImageSize} is not a multiple of image_patch_size {vision.PatchSize}");
        int numPos = vk.Int("image_num_pos", vision.NumPatches + 1);
        if (numPos != vision.NumPatches + 1)
            throw new ModelConfigException($"{src}: vision_backbone.image_num_pos is {numPos}, expected (image size / patch size)² + 1 = {vision.NumPatches + 1}");
        var layers = top.IntList("vit_layers", [-2, -9]);
        foreach (int l in layers)
            if (l < -vision.NumHiddenLayers || l >= vision.NumHiddenLayers)
                throw new ModelConfigException($"{src}: vit_layers holds {l}, expected block indices -{vision.NumHiddenLayers}..{vision.NumHiddenLayers - 1}");
        int poolH = top.Int("image_pooling_h", 2), poolW = top.Int("image_pooling_w", 2);
        top.Positive("image_pooling_h", poolH);
        top.Positive("image_pooling_w", poolW);
        int extra = top.Int("additional_vocab_size", 128);
        if (extra < 5) throw new ModelConfigException($"{src}: additional_vocab_size is {extra}, expected at least 5 (<im_start>, <im_end>, <im_patch>, <im_col>, <|image|>)");
        var molmo = new MolmoConfig(layers, poolH, poolW, extra);
        // Molmo has no BOS of its own: the processor puts eos (<|endoftext|>) first. Neither is in Molmo-7B-D's config.json
        // (-1 here): the tokenizer names it. The image features go to <im_patch>, the third of the additional tokens.
        int eos = top.Int("eos_token_id", -1);
        return new ModelConfig("molmo", text, vision, ImageTokenIndex: vocab + 2, BosTokenId: top.Int("bos_token_id", eos), [eos], top.Int("pad_token_id", eos)) { Molmo = molmo };
    }

    static Activation ParseActivation(Keys k, string key, string fallback)
    {
        string name = k.String(key, fallback)!;
        return name switch
        {
            "gelu_pytorch_tanh" or "gelu_new" => Activation.GeluTanh,
            "gelu" => Activation.GeluErf,
            "quick_gelu" => Activation.QuickGelu,
            "silu" or "swish" => Activation.Silu,
            _ => throw new ModelConfigException($"{k.Source}: {k.Prefix}{key} is '{name}', expected gelu, gelu_pytorch_tanh, gelu_new, quick_gelu or silu"),
        };
    }

    /// <summary>HF <c>LlamaConfig</c> with its defaults (llama-7b's sizes).</summary>
    static TextConfig ParseLlamaText(Keys k)
    {
        int hidden = k.Int("hidden_size", 4096), heads = k.Int("num_attention_heads", 32);
        k.Positive("num_attention_heads", heads);
        if (k.Has("rope_scaling"))
            throw new ModelConfigException($"{k.Source}: {k.Prefix}rope_scaling is set; only plain RoPE (rope_scaling null) is supported for llama");
        var c = new TextConfig("llama",
            HiddenSize: hidden,
            IntermediateSize: k.Int("intermediate_size", 11008),
            NumHiddenLayers: k.Int("num_hidden_layers", 32),
            NumAttentionHeads: heads,
            NumKeyValueHeads: k.Int("num_key_value_heads", heads),
            HeadDim: k.Int("head_dim", hidden / heads),
            VocabSize: k.Int("vocab_size", 32000),
            RmsNormEps: k.Float("rms_norm_eps", 1e-6f),
            RopeTheta: k.Float("rope_theta", 10000f),
            MaxPositionEmbeddings: k.Int("max_position_embeddings", 2048),
            TieWordEmbeddings: k.Bool("tie_word_embeddings", false),
            QueryPreAttnScalar: 0, AttnLogitSoftcapping: 0, FinalLogitSoftcapping: 0, SlidingWindow: int.MaxValue)
        {
            HiddenAct = ParseActivation(k, "hidden_act", "silu"),
            AttentionBias = k.Bool("attention_bias", false),
            MlpBias = k.Bool("mlp_bias", false),
        };
        if (k.Int("pretraining_tp", 1) != 1)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}pretraining_tp is {k.Int("pretraining_tp", 1)}; it changes only the summation order, set it to 1");
        return ValidateText(k, c);
    }

    /// <summary>Largest accepted dimension: far above any Gemma / SigLIP (vocab 257216), far below sizes whose buffers overflow.</summary>
    const int MaxDim = 1 << 20;

    static TextConfig ParseText(Keys k, string type, int vocabDefault, bool? gemma1Defaults)
    {
        bool g2 = type == "gemma2";
        // HF GemmaConfig / Gemma2Config defaults; PaliGemmaConfig without text_config uses the 2B PaliGemma decoder.
        bool pali = gemma1Defaults == true;
        int hidden = k.Int("hidden_size", pali ? 2048 : g2 ? 2304 : 3072);
        int heads = k.Int("num_attention_heads", pali ? 8 : g2 ? 8 : 16);
        var c = new TextConfig(type,
            HiddenSize: hidden,
            IntermediateSize: k.Int("intermediate_size", pali ? 16384 : g2 ? 9216 : 24576),
            NumHiddenLayers: k.Int("num_hidden_layers", pali ? 18 : g2 ? 26 : 28),
            NumAttentionHeads: heads,
            NumKeyValueHeads: k.Int("num_key_value_heads", pali ? 1 : g2 ? 4 : 16),
            HeadDim: k.Int("head_dim", 256),
            VocabSize: k.Int("vocab_size", vocabDefault),
            RmsNormEps: k.Float("rms_norm_eps", 1e-6f),
            RopeTheta: k.Float("rope_theta", 10000f),
            MaxPositionEmbeddings: k.Int("max_position_embeddings", 8192),
            TieWordEmbeddings: k.Bool("tie_word_embeddings", true),
            QueryPreAttnScalar: g2 ? k.Float("query_pre_attn_scalar", 256f) : 0,
            AttnLogitSoftcapping: g2 ? k.OptionalFloat("attn_logit_softcapping", 50f) : 0,
            FinalLogitSoftcapping: g2 ? k.OptionalFloat("final_logit_softcapping", 30f) : 0,
            SlidingWindow: g2 ? k.Int("sliding_window", 4096) : int.MaxValue);
        // HF Gemma ignores hidden_act ("gelu" in gemma-7b) and uses the tanh GELU unless hidden_activation says otherwise.
        string act = k.String("hidden_activation", null) ?? "gelu_pytorch_tanh";
        if (act != "gelu_pytorch_tanh")
            throw new ModelConfigException($"{k.Source}: {k.Prefix}hidden_activation is '{act}', only gelu_pytorch_tanh is supported");
        if (g2 && !(c.QueryPreAttnScalar > 0)) throw new ModelConfigException($"{k.Source}: {k.Prefix}query_pre_attn_scalar must be > 0, found {c.QueryPreAttnScalar}");
        return ValidateText(k, c);
    }

    static TextConfig ValidateText(Keys k, TextConfig c)
    {
        k.Positive("num_key_value_heads", c.NumKeyValueHeads);
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim % 2 != 0) throw new ModelConfigException($"{k.Source}: {k.Prefix}head_dim {c.HeadDim} must be even for RoPE");
        foreach (var (key, value) in new[] { ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("num_hidden_layers", c.NumHiddenLayers),
                     ("num_attention_heads", c.NumAttentionHeads), ("head_dim", c.HeadDim), ("vocab_size", c.VocabSize),
                     ("max_position_embeddings", c.MaxPositionEmbeddings), ("sliding_window", c.SlidingWindow) })
            k.Positive(key, value);
        foreach (var (key, value) in new[] { ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("num_hidden_layers", c.NumHiddenLayers),
                     ("num_attention_heads", c.NumAttentionHeads), ("num_key_value_heads", c.NumKeyValueHeads), ("head_dim", c.HeadDim), ("vocab_size", c.VocabSize) })
            k.AtMost(key, value, MaxDim);
        k.ProductFits("vocab_size × hidden_size", c.VocabSize, c.HiddenSize);
        k.ProductFits("intermediate_size × hidden_size", c.IntermediateSize, c.HiddenSize);
        k.ProductFits("num_attention_heads × head_dim × hidden_size", (long)c.NumAttentionHeads * c.HeadDim, c.HiddenSize);
        k.PositiveFinite("rms_norm_eps", c.RmsNormEps);
        k.PositiveFinite("rope_theta", c.RopeTheta);
        return c;
    }

    /// <summary>A SigLIP or CLIP vision config; <paramref name="expectedType"/> is what the outer model needs.</summary>
    static VisionConfig ParseVision(Keys k, string expectedType)
    {
        string type = k.String("model_type", expectedType)!;
        if (type != expectedType) throw new ModelConfigException($"{k.Source}: {k.Prefix}model_type is '{type}', expected {expectedType}");
        bool clip = type == "clip_vision_model";
        int patch = k.Int("patch_size", clip ? 32 : 16);
        int imageSize;
        if (k.Has("image_size")) imageSize = k.Int("image_size", 224);
        else if (k.Has("num_image_tokens"))
        {
            int n = k.Int("num_image_tokens", 0), side = (int)Math.Round(Math.Sqrt(n));
            if (side * side != n || n <= 0) throw new ModelConfigException($"{k.Source}: {k.Prefix}num_image_tokens {n} is not a positive square");
            imageSize = side * patch;
        }
        else imageSize = 224;
        var c = new VisionConfig(
            HiddenSize: k.Int("hidden_size", 768), IntermediateSize: k.Int("intermediate_size", 3072),
            NumHiddenLayers: k.Int("num_hidden_layers", 12), NumAttentionHeads: k.Int("num_attention_heads", 12),
            NumChannels: k.Int("num_channels", 3), ImageSize: imageSize, PatchSize: patch, LayerNormEps: k.Float("layer_norm_eps", clip ? 1e-5f : 1e-6f))
        {
            ModelType = type,
            HiddenAct = ParseActivation(k, "hidden_act", clip ? "quick_gelu" : "gelu_pytorch_tanh"),
        };
        foreach (var (key, value) in new[] { ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("num_hidden_layers", c.NumHiddenLayers),
                     ("num_attention_heads", c.NumAttentionHeads), ("num_channels", c.NumChannels), ("image_size", c.ImageSize), ("patch_size", c.PatchSize) })
            k.Positive(key, value);
        foreach (var (key, value) in new[] { ("hidden_size", c.HiddenSize), ("intermediate_size", c.IntermediateSize), ("num_hidden_layers", c.NumHiddenLayers),
                     ("num_attention_heads", c.NumAttentionHeads), ("num_channels", c.NumChannels), ("image_size", c.ImageSize), ("patch_size", c.PatchSize) })
            k.AtMost(key, value, MaxDim);
        k.ProductFits("intermediate_size × hidden_size", c.IntermediateSize, c.HiddenSize);
        k.ProductFits("num_channels × patch_size² × hidden_size", (long)c.NumChannels * c.PatchSize * c.PatchSize, c.HiddenSize);
        k.ProductFits("num_channels × image_size²", (long)c.NumChannels * c.ImageSize, c.ImageSize);
        k.ProductFits("(image_size / patch_size)² × hidden_size", (long)c.GridSize * c.GridSize, c.HiddenSize);
        k.PositiveFinite("layer_norm_eps", c.LayerNormEps);
        if (c.HiddenSize % c.NumAttentionHeads != 0)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumAttentionHeads}");
        if (c.ImageSize % c.PatchSize != 0)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}image_size {c.ImageSize} is not a multiple of patch_size {c.PatchSize}");
        if (k.Has("num_image_tokens") && k.Int("num_image_tokens", 0) != c.NumPatches)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}num_image_tokens is {k.Int("num_image_tokens", 0)}, but (image_size / patch_size)² = {c.NumPatches}");
        return c;
    }

    /// <summary>Typed access to one JSON object's keys with defaults; errors name the file and the dotted key.</summary>
    readonly struct Keys(JsonElement obj, string source, string prefix)
    {
        public string Source => source;
        public string Prefix => prefix;

        public bool IsInt(string key) => TryGet(key, out var v) && v.ValueKind == JsonValueKind.Number;

        public bool Has(string key) => obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

        bool TryGet(string key, out JsonElement v)
        {
            v = default;
            return obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null;
        }

        ModelConfigException Bad(string key, JsonElement v, string expected) =>
            new($"{source}: {prefix}{key} is {Show(v)}, expected {expected}");

        static string Show(JsonElement v) => JsonValueText.Show(v, 40);

        public int Int(string key, int fallback)
        {
            if (!TryGet(key, out var v)) return fallback;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
            if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) <= int.MaxValue) return (int)d;
            throw Bad(key, v, "an integer");
        }

        public IReadOnlyList<int> IntOrList(string key, int fallback)
        {
            if (!TryGet(key, out var v)) return [fallback];
            if (v.ValueKind != JsonValueKind.Array) return [Int(key, fallback)];
            var list = new List<int>();
            foreach (var e in v.EnumerateArray())
                list.Add(e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Bad(key, v, "an integer or a list of integers"));
            return list;
        }

        public IReadOnlyList<int> IntList(string key, IReadOnlyList<int> fallback)
        {
            if (!TryGet(key, out var v)) return fallback;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v, "a list of integers");
            var list = new List<int>();
            foreach (var e in v.EnumerateArray())
                list.Add(e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Bad(key, v, "a list of integers"));
            return list;
        }

        public float Float(string key, float fallback)
        {
            if (!TryGet(key, out var v)) return fallback;
            return v.ValueKind == JsonValueKind.Number ? (float)v.GetDouble() : throw Bad(key, v, "a number");
        }

        /// <summary>Like <see cref="Float"/>, but an explicit null means "off" (0), as HF's soft-cap keys allow.</summary>
        public float OptionalFloat(string key, float fallback)
        {
            if (obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null) return 0;
            return Float(key, fallback);
        }

        public bool Bool(string key, bool fallback)
        {
            if (!TryGet(key, out var v)) return fallback;
            return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad(key, v, "true or false") };
        }

        /// <summary>A nested object's keys (an error if the key holds anything else).</summary>
        public Keys Object(string key)
        {
            if (!TryGet(key, out var v)) return new Keys(default, source, prefix + key + ".");
            return v.ValueKind == JsonValueKind.Object ? new Keys(v, source, prefix + key + ".") : throw Bad(key, v, "an object");
        }

        /// <summary>A list of strings, or null when the key is absent.</summary>
        public IReadOnlyList<string>? Strings(string key)
        {
            if (!TryGet(key, out var v)) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v, "a list of strings");
            var list = new List<string>();
            foreach (var e in v.EnumerateArray())
                list.Add(e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad(key, v, "a list of strings"));
            return list;
        }

        public string? String(string key, string? fallback)
        {
            if (!TryGet(key, out var v)) return fallback;
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Bad(key, v, "a string");
        }

        public void Positive(string key, int value)
        {
            if (value <= 0) throw new ModelConfigException($"{source}: {prefix}{key} is {value}, expected a positive integer");
        }

        public void PositiveFinite(string key, float value)
        {
            if (!(value > 0 && float.IsFinite(value))) throw new ModelConfigException($"{source}: {prefix}{key} is {value}, expected a finite number > 0");
        }

        public void AtMost(string key, int value, int max)
        {
            if (value > max) throw new ModelConfigException($"{source}: {prefix}{key} is {value}, expected at most {max}");
        }

        /// <summary>Rejects sizes whose weight matrix or activation buffer would not fit an int-indexed array.</summary>
        public void ProductFits(string keys, long a, long b)
        {
            if (a * b > int.MaxValue) throw new ModelConfigException($"{source}: {prefix}{keys} is {a * b}, expected at most {int.MaxValue} (an array must fit)");
        }
    }
}
