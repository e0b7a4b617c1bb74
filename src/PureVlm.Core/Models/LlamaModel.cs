using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>HF <c>LlamaModel</c> plus the LM head: embeddings as they are, decoder layers, final RMSNorm with <c>w</c>, logits.</summary>
public sealed class LlamaModel(WeightScope scope, TextConfig c, string lmHeadPath, IWeightMatrix? lmHead)
    : DecoderModel(scope, c, lmHeadPath, lmHead, normAddsOne: false, embedScale: 1f, finalSoftCap: 0,
        (layer, _, name) => new LlamaDecoderLayer(layer, c, name));
