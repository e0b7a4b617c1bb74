using System.Text.Json;

namespace PureVlm.Formats;

/// <summary>Raised for a config.json that cannot describe a supported model; the message names the file, the key, what was found and what was expected.</summary>
public sealed class ModelConfigException(string message) : Exception(message);

/// <summary>The Gemma / Gemma 2 decoder of HF <c>GemmaConfig</c> / <c>Gemma2Config</c>.</summary>
public sealed record TextConfig(
    string ModelType, int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads,
    int NumKeyValueHeads, int HeadDim, int VocabSize, float RmsNormEps, float RopeTheta, int MaxPositionEmbeddings,
    bool TieWordEmbeddings, float QueryPreAttnScalar, float AttnLogitSoftcapping, float FinalLogitSoftcapping, int SlidingWindow)
{
    /// <summary>True for <c>gemma2</c>: extra norms, soft-caps, <c>query_pre_attn_scalar</c>, sliding window on even layers.</summary>
    public bool IsGemma2 => ModelType == "gemma2";
}

/// <summary>The SigLIP vision tower of HF <c>SiglipVisionConfig</c>.</summary>
public sealed record VisionConfig(
    int HiddenSize, int IntermediateSize, int NumHiddenLayers, int NumAttentionHeads, int NumChannels,
    int ImageSize, int PatchSize, float LayerNormEps)
{
    /// <summary>hidden_size / num_attention_heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
    /// <summary>Patches per side.</summary>
    public int GridSize => ImageSize / PatchSize;
    /// <summary>Image tokens: (image_size / patch_size)².</summary>
    public int NumPatches => GridSize * GridSize;
}

/// <summary>
/// A model's config.json: <c>paligemma</c> (text <c>gemma</c> or <c>gemma2</c>, vision <c>siglip_vision_model</c>) or a plain
/// <c>gemma</c> / <c>gemma2</c> causal LM. Omitted keys take the defaults of HF's config classes.
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
    /// <summary>True for PaliGemma (vision + text).</summary>
    public bool IsPaliGemma => Vision != null;

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
        string modelType = top.String("model_type", null)
            ?? throw new ModelConfigException($"{src}: missing key 'model_type' (expected paligemma, gemma or gemma2)");
        int bos = top.Int("bos_token_id", 2), pad = top.Int("pad_token_id", 0);
        var eos = top.IntOrList("eos_token_id", 1);
        switch (modelType)
        {
            case "gemma" or "gemma2":
                return new ModelConfig(modelType, ParseText(top, modelType, vocabDefault: 256000, gemma1Defaults: null), null, -1, bos, eos, pad);
            case "paligemma":
                int vocab = top.Int("vocab_size", 257152);
                // PaliGemmaConfig builds a SiglipVisionConfig with paligemma-3b sizes when vision_config is absent,
                // but a given dict only gets SiglipVisionConfig's own defaults for its missing keys.
                VisionConfig vision = root.TryGetProperty("vision_config", out var v) && v.ValueKind == JsonValueKind.Object
                    ? ParseVision(new Keys(v, src, "vision_config."))
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
                throw new ModelConfigException($"{src}: model_type '{modelType}' is not supported (expected paligemma, gemma or gemma2)");
        }
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
        k.Positive("num_key_value_heads", c.NumKeyValueHeads);
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new ModelConfigException($"{k.Source}: {k.Prefix}num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim % 2 != 0) throw new ModelConfigException($"{k.Source}: {k.Prefix}head_dim {c.HeadDim} must be even for RoPE");
        if (g2 && !(c.QueryPreAttnScalar > 0)) throw new ModelConfigException($"{k.Source}: {k.Prefix}query_pre_attn_scalar must be > 0, found {c.QueryPreAttnScalar}");
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

    static VisionConfig ParseVision(Keys k)
    {
        int patch = k.Int("patch_size", 16);
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
            NumChannels: k.Int("num_channels", 3), ImageSize: imageSize, PatchSize: patch, LayerNormEps: k.Float("layer_norm_eps", 1e-6f));
        string act = k.String("hidden_act", "gelu_pytorch_tanh")!;
        if (act != "gelu_pytorch_tanh")
            throw new ModelConfigException($"{k.Source}: {k.Prefix}hidden_act is '{act}', only gelu_pytorch_tanh is supported");
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

        public bool Has(string key) => obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

        bool TryGet(string key, out JsonElement v)
        {
            v = default;
            return obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out v) && v.ValueKind != JsonValueKind.Null;
        }

        ModelConfigException Bad(string key, JsonElement v, string expected) =>
            new($"{source}: {prefix}{key} is {Show(v)}, expected {expected}");

        static string Show(JsonElement v) { var s = v.GetRawText(); return s.Length > 40 ? s[..40] + "…" : s; }

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
