using PureVlm.Outputs;

namespace PureVlm;

/// <summary>One generated token: its id, the text it added to the answer, and the probability the model gave it.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Text">Text this token adds to the answer (may be empty while a UTF-8 character is incomplete).</param>
/// <param name="Probability">Probability of this token under the (temperature-free) model distribution.</param>
public sealed record AnswerToken(int Id, string Text, float Probability)
{
    /// <summary>The most likely tokens at this step, most likely first, when <see cref="Runtime.GenerationOptions.TopLogprobs"/> asked for them; else null.</summary>
    public IReadOnlyList<TokenAlternative>? TopLogprobs { get; init; }
}

/// <summary>A token the model considered at one step.</summary>
/// <param name="Id">Token id.</param>
/// <param name="Piece">Its text as a piece of an answer (the vocabulary piece with SentencePiece's ▁ as a space).</param>
/// <param name="Logprob">Its natural-log probability under the model's (untempered) softmax.</param>
public sealed record TokenAlternative(int Id, string Piece, float Logprob);

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
/// <param name="Segments">Boxes and mask codes parsed from a <c>segment …</c> answer, each with its <see cref="Segment.Mask"/>
/// when the model has a <see cref="VlmModel.SegmentationDecoder"/>; empty otherwise.</param>
/// <param name="Timings">Where the time went.</param>
public sealed record GenerationResult(string Text, IReadOnlyList<AnswerToken> Tokens, IReadOnlyList<Detection> Detections,
    IReadOnlyList<Segment> Segments, GenerationTimings Timings)
{
    /// <summary>Points parsed from a pointing answer (Molmo's <c>&lt;point&gt;</c> / <c>&lt;points&gt;</c>), in pixels of the first image; empty otherwise.</summary>
    public IReadOnlyList<PointAnswer> Points { get; init; } = [];
}
