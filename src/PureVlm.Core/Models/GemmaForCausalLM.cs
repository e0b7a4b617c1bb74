using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>A decoder that turns token ids (and, for PaliGemma, image features) into next-token logits with a KV cache.</summary>
public interface IGenerativeModel
{
    /// <summary>The model's config.</summary>
    ModelConfig Config { get; }
    /// <summary>The Gemma decoder.</summary>
    GemmaModel LanguageModel { get; }
    /// <summary>
    /// Feeds <paramref name="ids"/> after the tokens already in <paramref name="cache"/> and returns the last token's logits [vocab]
    /// (valid until the next call on <paramref name="ctx"/>). <paramref name="imageFeatures"/> [image tokens, hidden] fill the
    /// image-token rows of a PaliGemma prefill and must be empty otherwise.
    /// </summary>
    ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx);
}

/// <summary>HF <c>GemmaForCausalLM</c> / <c>Gemma2ForCausalLM</c>: causal attention, 0-based positions.</summary>
public sealed class GemmaForCausalLM : IGenerativeModel
{
    /// <inheritdoc/>
    public ModelConfig Config { get; }
    /// <inheritdoc/>
    public GemmaModel LanguageModel { get; }

    /// <summary>Loads <c>model.…</c> and an optional <c>lm_head.weight</c> from the root <paramref name="scope"/>.</summary>
    public GemmaForCausalLM(WeightScope scope, ModelConfig config)
    {
        Config = config;
        LanguageModel = new GemmaModel(scope.Sub("model"), config.Text, "lm_head", LmHeadWeight(scope, "lm_head", config.Text));
    }

    /// <summary>The separate <c>lm_head.weight</c> under <paramref name="headPath"/> if present; null means tied; absent and untied is an error.</summary>
    internal static Tensors.StoredTensor? LmHeadWeight(WeightScope root, string headPath, TextConfig c)
    {
        var head = root.Sub(headPath);
        if (head.Contains("weight")) return head.Get("weight", c.VocabSize, c.HiddenSize);
        if (!c.TieWordEmbeddings)
            throw new InvalidModelFileException($"missing tensor '{head.FullName("weight")}': tie_word_embeddings is false, so a separate lm_head is expected");
        return null;
    }

    /// <inheritdoc/>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> imageFeatures, KvCache cache, ForwardContext ctx)
    {
        if (!imageFeatures.IsEmpty) throw new ArgumentException("a text-only model takes no image features", nameof(imageFeatures));
        int n = ids.Length, d = Config.Text.HiddenSize;
        var x = ctx.Scratch.Get(Workspace.Slot.Hidden, n * d); // [n, hidden]
        LanguageModel.Embed(ids, x.AsSpan(0, n * d));
        var positions = ctx.Scratch.Positions(n).AsSpan(0, n);
        for (int i = 0; i < n; i++) positions[i] = cache.Length + i; // 0-based, as HF Gemma
        return LanguageModel.Forward(x, n, positions, cache, ctx);
    }
}
