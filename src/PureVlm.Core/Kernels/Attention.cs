namespace PureVlm.Kernels;

/// <summary>
/// Which keys a query may see. Query i (absolute position <c>QueryStart + i</c> in the sequence) sees key j when
/// <c>j ≤ q</c> (causal) or both lie in the bidirectional prefix (<c>q, j &lt; PrefixLength</c>), and, with a
/// sliding window, only when <c>q − j &lt; Window</c>.
/// </summary>
/// <param name="QueryStart">Sequence index of the first query row.</param>
/// <param name="PrefixLength">Tokens that attend bidirectionally (PaliGemma's image + prompt; int.MaxValue for an encoder).</param>
/// <param name="Window">Sliding-window size, or int.MaxValue for global attention.</param>
public readonly record struct AttentionMask(int QueryStart, int PrefixLength, int Window)
{
    /// <summary>Every query sees every key (a vision encoder).</summary>
    public static AttentionMask Full => new(0, int.MaxValue, int.MaxValue);

    /// <summary>True when query row <paramref name="i"/> may attend to key <paramref name="j"/>.</summary>
    public bool Allows(int i, int j)
    {
        int q = QueryStart + i;
        bool visible = j <= q || (q < PrefixLength && j < PrefixLength);
        return visible && (long)q - j < Window;
    }
}

/// <summary>Scaled dot-product attention with grouped KV heads, optional logit soft-capping and a mask.</summary>
public static class Attention
{
    /// <summary>
    /// out[i, h, :] = Σ_j softmax_j(cap(scale · q[i, h]·k[j, g])) v[j, g] with g = h / (heads / kvHeads).
    /// q is [nq, heads, d], k and v are [nk, kvHeads, d], out is [nq, heads, d].
    /// When <paramref name="probs"/> is not empty it receives the probabilities as [heads, nq, nk].
    /// </summary>
    public static void Compute(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> output,
        int nq, int nk, int heads, int kvHeads, int d, float scale, float softCap, AttentionMask mask, Span<float> probs = default)
    {
        int group = heads / kvHeads;
        var scores = new float[nk];
        for (int h = 0; h < heads; h++)
        {
            int g = h / group;
            for (int i = 0; i < nq; i++)
            {
                float max = float.NegativeInfinity;
                for (int j = 0; j < nk; j++)
                {
                    if (!mask.Allows(i, j)) { scores[j] = float.NegativeInfinity; continue; }
                    float s = 0;
                    for (int p = 0; p < d; p++) s += q[(i * heads + h) * d + p] * k[(j * kvHeads + g) * d + p];
                    s *= scale;
                    if (softCap > 0) s = softCap * MathF.Tanh(s / softCap);
                    scores[j] = s;
                    if (s > max) max = s;
                }
                float sum = 0;
                for (int j = 0; j < nk; j++) { scores[j] = scores[j] == float.NegativeInfinity ? 0 : MathF.Exp(scores[j] - max); sum += scores[j]; }
                var o = output.Slice((i * heads + h) * d, d);
                o.Clear();
                for (int j = 0; j < nk; j++)
                {
                    float pj = scores[j] / sum;
                    if (!probs.IsEmpty) probs[(h * nq + i) * nk + j] = pj;
                    for (int p = 0; p < d; p++) o[p] += pj * v[(j * kvHeads + g) * d + p];
                }
            }
        }
    }
}
