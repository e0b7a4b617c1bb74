using PureVlm.Outputs;

namespace PureVlm;

/// <summary>How to generate an answer. Defaults: greedy decoding, at most 64 new tokens, stop at the model's eos.</summary>
public sealed record GenerationOptions
{
    /// <summary>Largest number of new tokens (at least 1).</summary>
    public int MaxTokens { get; init; } = 64;
    /// <summary>0 means greedy (argmax); otherwise logits are divided by it before sampling. Must not be negative.</summary>
    public float Temperature { get; init; }
    /// <summary>Sample only among the K most likely tokens (0 = no limit).</summary>
    public int TopK { get; init; }
    /// <summary>Sample only among the most likely tokens whose probabilities add up to P (1 = no limit).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Seed of the sampler; the same seed, prompt and image give the same tokens.</summary>
    public ulong Seed { get; init; }
    /// <summary>Names of loaded LoRA adapters active for this request only (empty: the base model).</summary>
    public IReadOnlyCollection<string> Adapters { get; init; } = [];

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (MaxTokens < 1) throw new ArgumentException($"MaxTokens must be at least 1, got {MaxTokens}");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"Temperature must be a finite number >= 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"TopK must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"TopP must be in (0, 1], got {TopP}");
    }
}

/// <summary>One generated token: its id, the text it added to the answer, and the probability the model gave it.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Text">Text this token adds to the answer (may be empty while a UTF-8 character is incomplete).</param>
/// <param name="Probability">Probability of this token under the (temperature-free) model distribution.</param>
public sealed record GeneratedToken(int Id, string Text, float Probability);

/// <summary>Wall-clock seconds spent in each stage of one request.</summary>
public sealed record GenerationTimings(double ImageEncodeSeconds, double PrefillSeconds, double DecodeSeconds, int PrefillTokens, int DecodedTokens)
{
    /// <summary>Decoded tokens per second (after the first token).</summary>
    public double DecodeTokensPerSecond => DecodeSeconds > 0 ? DecodedTokens / DecodeSeconds : 0;
}

/// <summary>The answer to one request.</summary>
/// <param name="Text">The generated text, without eos.</param>
/// <param name="Tokens">Each generated token (eos excluded).</param>
/// <param name="Detections">Boxes parsed from a <c>detect …</c> answer, in pixels of the original image; empty otherwise.</param>
/// <param name="Segments">Boxes and mask codes parsed from a <c>segment …</c> answer; empty otherwise.</param>
/// <param name="Timings">Where the time went.</param>
public sealed record GenerationResult(string Text, IReadOnlyList<GeneratedToken> Tokens, IReadOnlyList<Detection> Detections,
    IReadOnlyList<Segment> Segments, GenerationTimings Timings);
