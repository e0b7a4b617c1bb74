using System.Text.Json.Nodes;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary>How synth draws a tensor's values.</summary>
public enum Init
{
    /// <summary>N(0, 0.02): linear and embedding weights, biases, Gemma RMSNorm weights (applied as 1 + w, so near 0).</summary>
    SmallNormal,
    /// <summary>1 + N(0, 0.02): norm weights applied as w (SigLIP and CLIP LayerNorm, LLaMA RMSNorm).</summary>
    NearOne,
}

/// <summary>A tensor synth writes: hub name, shape, initialisation.</summary>
public sealed record SynthTensor(string Name, long[] Shape, Init Init);

/// <summary>
/// What synth needs to know of an architecture: its tensors in state_dict order (which fixes the sharding),
/// config.json and preprocessor_config.json. <see cref="SynthCommand"/> does the writing and sharding for all of them.
/// </summary>
public abstract record SynthArch(string Name)
{
    /// <summary>The architectures synth knows, by CLI name.</summary>
    public static readonly IReadOnlyDictionary<string, SynthArch> Known =
        PaliGemmaArch.Sizes.Select(kv => KeyValuePair.Create(kv.Key, (SynthArch)kv.Value))
            .Concat(LlavaArch.Sizes.Select(kv => KeyValuePair.Create(kv.Key, (SynthArch)kv.Value)))
            .Concat(Gemma3Arch.Sizes.Select(kv => KeyValuePair.Create(kv.Key, (SynthArch)kv.Value)))
            .Concat(MolmoArch.Sizes.Select(kv => KeyValuePair.Create(kv.Key, (SynthArch)kv.Value)))
            .ToDictionary();

    /// <summary>Every tensor in the model's state_dict order.</summary>
    public abstract IEnumerable<SynthTensor> Tensors();

    /// <summary>config.json for weights stored as <paramref name="dtype"/>.</summary>
    public abstract JsonObject Config(DType dtype);

    /// <summary>preprocessor_config.json.</summary>
    public abstract JsonObject PreprocessorConfig();

    /// <summary>Parameters: the sum of the tensors' element counts.</summary>
    public long Parameters => Tensors().Sum(t => t.Shape.Aggregate(1L, (a, b) => checked(a * b)));

    /// <summary>
    /// One pre-LN ViT encoder layer as HF's SigLIP and CLIP name it (the same module tree): q/k/v/out projections
    /// with biases, two LayerNorms, a two-layer MLP with biases; <paramref name="p"/> ends with the layer's dot.
    /// </summary>
    protected static IEnumerable<SynthTensor> VitEncoderLayer(string p, long hidden, long intermediate)
    {
        foreach (var proj in new[] { "k_proj", "v_proj", "q_proj", "out_proj" })
        {
            yield return new($"{p}self_attn.{proj}.weight", [hidden, hidden], Init.SmallNormal);
            yield return new($"{p}self_attn.{proj}.bias", [hidden], Init.SmallNormal);
        }
        yield return new(p + "layer_norm1.weight", [hidden], Init.NearOne);
        yield return new(p + "layer_norm1.bias", [hidden], Init.SmallNormal);
        yield return new(p + "mlp.fc1.weight", [intermediate, hidden], Init.SmallNormal);
        yield return new(p + "mlp.fc1.bias", [intermediate], Init.SmallNormal);
        yield return new(p + "mlp.fc2.weight", [hidden, intermediate], Init.SmallNormal);
        yield return new(p + "mlp.fc2.bias", [hidden], Init.SmallNormal);
        yield return new(p + "layer_norm2.weight", [hidden], Init.NearOne);
        yield return new(p + "layer_norm2.bias", [hidden], Init.SmallNormal);
    }

    /// <summary>
    /// HF's <c>SiglipVisionModel</c> without its pooling head, as PaliGemma and Gemma 3 store it under
    /// <paramref name="v"/> (<c>vision_tower.vision_model.</c>): patch conv with bias, position embeddings, encoder layers, post_layernorm.
    /// </summary>
    protected static IEnumerable<SynthTensor> SiglipTower(string v, int patchSize, long patches, long hidden, long intermediate, int layers)
    {
        yield return new(v + "embeddings.patch_embedding.weight", [hidden, 3, patchSize, patchSize], Init.SmallNormal);
        yield return new(v + "embeddings.patch_embedding.bias", [hidden], Init.SmallNormal);
        yield return new(v + "embeddings.position_embedding.weight", [patches, hidden], Init.SmallNormal);
        for (int l = 0; l < layers; l++)
            foreach (var t in VitEncoderLayer($"{v}encoder.layers.{l}.", hidden, intermediate)) yield return t;
        yield return new(v + "post_layernorm.weight", [hidden], Init.NearOne);
        yield return new(v + "post_layernorm.bias", [hidden], Init.SmallNormal);
    }

    /// <summary>
    /// A Gemma decoder as HF names it under <paramref name="m"/> (<c>language_model.model.</c>): embed_tokens, the layers,
    /// the final norm, every norm applied as 1 + w. <paramref name="sandwichNorms"/> adds Gemma 2's and 3's pre/post-feedforward
    /// norms, <paramref name="qkNorm"/> Gemma 3's q_norm / k_norm.
    /// </summary>
    protected static IEnumerable<SynthTensor> GemmaDecoder(string m, long vocab, long hidden, int layers, long heads, long kvHeads, long headDim,
        long intermediate, bool sandwichNorms, bool qkNorm)
    {
        yield return new(m + "embed_tokens.weight", [vocab, hidden], Init.SmallNormal);
        for (int l = 0; l < layers; l++)
        {
            string p = $"{m}layers.{l}.";
            foreach (var t in DecoderLayer(p, hidden, heads, kvHeads, headDim, intermediate, Init.SmallNormal)) yield return t;
            if (qkNorm)
            {
                yield return new(p + "self_attn.q_norm.weight", [headDim], Init.SmallNormal);
                yield return new(p + "self_attn.k_norm.weight", [headDim], Init.SmallNormal);
            }
            if (sandwichNorms)
            {
                yield return new(p + "pre_feedforward_layernorm.weight", [hidden], Init.SmallNormal);
                yield return new(p + "post_feedforward_layernorm.weight", [hidden], Init.SmallNormal);
            }
        }
        yield return new(m + "norm.weight", [hidden], Init.SmallNormal);
    }

    /// <summary>
    /// The tensors Gemma and LLaMA decoder layers share (bias-free q/k/v/o, gated MLP, input and post-attention
    /// RMSNorm); <paramref name="norm"/> says whether the norm is applied as 1 + w (Gemma) or w (LLaMA).
    /// </summary>
    protected static IEnumerable<SynthTensor> DecoderLayer(string p, long hidden, long heads, long kvHeads, long headDim, long intermediate, Init norm)
    {
        yield return new(p + "self_attn.q_proj.weight", [heads * headDim, hidden], Init.SmallNormal);
        yield return new(p + "self_attn.k_proj.weight", [kvHeads * headDim, hidden], Init.SmallNormal);
        yield return new(p + "self_attn.v_proj.weight", [kvHeads * headDim, hidden], Init.SmallNormal);
        yield return new(p + "self_attn.o_proj.weight", [hidden, heads * headDim], Init.SmallNormal);
        yield return new(p + "mlp.gate_proj.weight", [intermediate, hidden], Init.SmallNormal);
        yield return new(p + "mlp.up_proj.weight", [intermediate, hidden], Init.SmallNormal);
        yield return new(p + "mlp.down_proj.weight", [hidden, intermediate], Init.SmallNormal);
        yield return new(p + "input_layernorm.weight", [hidden], norm);
        yield return new(p + "post_attention_layernorm.weight", [hidden], norm);
    }
}
