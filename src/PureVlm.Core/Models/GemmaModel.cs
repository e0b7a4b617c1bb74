using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaModel</c> / <c>Gemma2Model</c> plus the LM head: inputs_embeds × sqrt(hidden), decoder layers, final norm
/// with <c>1 + w</c>, logits (tied to <c>embed_tokens</c> unless an <c>lm_head</c> exists), Gemma 2's final soft-cap.
/// </summary>
public sealed class GemmaModel(WeightScope scope, TextConfig c, string lmHeadPath, StoredTensor? lmHead)
    : DecoderModel(scope, c, lmHeadPath, lmHead, normAddsOne: true,
        // HF multiplies by torch.tensor(hidden_size ** 0.5, dtype): the float32 rounding of the square root.
        embedScale: (float)Math.Sqrt(c.HiddenSize), finalSoftCap: c.FinalLogitSoftcapping,
        (layer, i, name) => new GemmaDecoderLayer(layer, c, i, name));
