using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaModel</c> / <c>Gemma2Model</c> / <c>Gemma3TextModel</c> plus the LM head: inputs_embeds × sqrt(hidden), decoder
/// layers, final norm with <c>1 + w</c>, logits (tied to <c>embed_tokens</c> unless an <c>lm_head</c> exists), the final
/// soft-cap if the config has one.
/// </summary>
public sealed class GemmaModel(WeightScope scope, TextConfig c, string lmHeadPath, IWeightMatrix? lmHead)
    : DecoderModel(scope, c, lmHeadPath, lmHead, normAddsOne: true,
        // HF multiplies by torch.tensor(hidden_size ** 0.5, dtype): the float32 rounding of the square root, as this engine
        // computes in float32 also for BF16 weights (transformers' BF16 compute would round it to BF16: 8.5 for 72).
        embedScale: (float)Math.Sqrt(c.HiddenSize), finalSoftCap: c.FinalLogitSoftcapping,
        (layer, i, name) => new GemmaDecoderLayer(layer, c, i, name));
