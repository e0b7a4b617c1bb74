using PureVlm.Models;
using PureVlm.Segmentation;

namespace PureVlm.Runtime;

/// <summary>One request's settings: how to pick tokens (temperature 0 is greedy: argmax, first index on ties, as torch.argmax), adapters and observer.</summary>
public sealed record GenerationOptions
{
    readonly int _maxNewTokens = 32;

    /// <summary>Most tokens to generate, at least 1 (checked here, once, for every path that generates).</summary>
    public int MaxNewTokens
    {
        get => _maxNewTokens;
        init => _maxNewTokens = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), value, $"MaxNewTokens is {value}, expected at least 1");
    }
    /// <summary>Softmax temperature; 0 means greedy.</summary>
    public float Temperature { get; init; }
    /// <summary>Keep only the k most likely tokens (0: all).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (1: all).</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>Seed of the sampler's RNG: the same seed gives the same tokens.</summary>
    public ulong Seed { get; init; }
    /// <summary>How many of the most likely tokens to report with each generated token (<see cref="GeneratedToken.TopLogprobs"/>), 0 to 20; 0: none.</summary>
    public int TopLogprobs
    {
        get => _topLogprobs;
        init => _topLogprobs = value is >= 0 and <= MaxTopLogprobs ? value : throw new ArgumentOutOfRangeException(nameof(TopLogprobs), value, $"TopLogprobs is {value}, expected 0 to {MaxTopLogprobs}");
    }
    readonly int _topLogprobs;
    /// <summary>The most alternatives <see cref="TopLogprobs"/> may ask for (as OpenAI's API).</summary>
    public const int MaxTopLogprobs = 20;
    /// <summary>Stop after a token in <c>eos_token_id</c>.</summary>
    public bool StopAtEos { get; init; } = true;
    /// <summary>Names of LoRA adapters (loaded with <see cref="VlmModel.LoadAdapter"/>) active for this request only; empty: the base model.</summary>
    public IReadOnlyCollection<string> Adapters { get; init; } = [];
    /// <summary>How <c>segment …</c> masks are put into the image (with <see cref="VlmModel.SegmentationDecoder"/>); big_vision's evaluator by default.</summary>
    public MaskConvention MaskConvention { get; init; } = MaskConvention.BigVision;
    /// <summary>Sees every named activation of this request (the glass box; see <see cref="IForwardObserver"/>), or null.</summary>
    public IForwardObserver? Observer { get; init; }
}
