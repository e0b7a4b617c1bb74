using System.Numerics.Tensors;

namespace PureVlm.Runtime;

/// <summary>Greedy / temperature / top-k / top-p token choice with its own RNG; buffers sized once to the vocabulary.</summary>
public sealed class Sampler
{
    readonly GenerationOptions _o;
    readonly float[] _probs;
    readonly int[] _order;
    readonly Comparison<int> _byProbabilityDescending;
    Xoshiro256 _rng;

    /// <summary>A sampler for a vocabulary of <paramref name="vocab"/> tokens.</summary>
    public Sampler(GenerationOptions options, int vocab)
    {
        if (options.MaxNewTokens < 0) throw new ArgumentOutOfRangeException(nameof(options), $"MaxNewTokens is {options.MaxNewTokens}, expected >= 0");
        if (!(options.Temperature >= 0) || float.IsInfinity(options.Temperature)) throw new ArgumentOutOfRangeException(nameof(options), $"Temperature is {options.Temperature}, expected a finite value >= 0");
        if (options.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), $"TopK is {options.TopK}, expected >= 0");
        if (!(options.TopP > 0 && options.TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(options), $"TopP is {options.TopP}, expected in (0, 1]");
        _o = options;
        _probs = new float[vocab];
        _order = new int[vocab];
        _rng = new Xoshiro256(options.Seed);
        _byProbabilityDescending = (a, b) => _probs[a] != _probs[b] ? _probs[b].CompareTo(_probs[a]) : a.CompareTo(b);
    }

    /// <summary>Picks a token from <paramref name="logits"/> [vocab]; <paramref name="logprob"/> is its log-probability under softmax(logits).</summary>
    public int Next(ReadOnlySpan<float> logits, out float logprob)
    {
        int v = logits.Length;
        int id = _o.Temperature == 0 ? TensorPrimitives.IndexOfMax(logits) : Sample(logits);
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        for (int i = 0; i < v; i++) sum += Math.Exp(logits[i] - max);
        logprob = (float)(logits[id] - max - Math.Log(sum));
        return id;
    }

    int Sample(ReadOnlySpan<float> logits)
    {
        int v = logits.Length;
        var p = _probs.AsSpan(0, v);
        TensorPrimitives.Divide(logits, _o.Temperature, p);
        TensorPrimitives.SoftMax(p, p);
        int kept = v;
        var order = _order.AsSpan(0, v);
        if (_o.TopK > 0 || _o.TopP < 1)
        {
            for (int i = 0; i < v; i++) order[i] = i;
            // Sort by descending probability, ties by ascending id, so the result never depends on the sort's stability.
            order.Sort(_byProbabilityDescending);
            if (_o.TopK > 0) kept = Math.Min(kept, _o.TopK);
            if (_o.TopP < 1)
            {
                double cum = 0;
                for (int i = 0; i < kept; i++)
                {
                    cum += _probs[order[i]];
                    if (cum >= _o.TopP) { kept = i + 1; break; }
                }
            }
        }
        else for (int i = 0; i < v; i++) order[i] = i;
        double total = 0;
        for (int i = 0; i < kept; i++) total += _probs[order[i]];
        double u = _rng.NextDouble() * total, acc = 0;
        for (int i = 0; i < kept; i++)
        {
            acc += _probs[order[i]];
            if (u < acc) return order[i];
        }
        return order[kept - 1];
    }
}

/// <summary>xoshiro256** seeded through SplitMix64 (Blackman &amp; Vigna): a fixed algorithm, so a seed means the same stream on every runtime.</summary>
public struct Xoshiro256
{
    ulong _s0, _s1, _s2, _s3;

    /// <summary>Seeds the four state words from SplitMix64(seed).</summary>
    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix64(ref seed); _s1 = SplitMix64(ref seed); _s2 = SplitMix64(ref seed); _s3 = SplitMix64(ref seed);
    }

    /// <summary>A generator with the given state words (not all zero), as the reference C code is initialised.</summary>
    public static Xoshiro256 FromState(ulong s0, ulong s1, ulong s2, ulong s3)
    {
        if ((s0 | s1 | s2 | s3) == 0) throw new ArgumentException("xoshiro state must not be all zero");
        var r = new Xoshiro256 { _s0 = s0, _s1 = s1, _s2 = s2, _s3 = s3 };
        return r;
    }

    internal static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform double in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
