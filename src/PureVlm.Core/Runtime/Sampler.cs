using System.Numerics.Tensors;

namespace PureVlm.Runtime;

/// <summary>
/// Greedy / temperature / top-k / top-p token choice with its own RNG, in HF's logits-warper order: temperature,
/// then top-k (every token whose scaled logit is at least the k-th largest, so ties at the k-th survive), then
/// top-p on the softmax renormalised over the top-k survivors. Buffers are sized once to the vocabulary; a token
/// allocates nothing.
/// </summary>
public sealed class Sampler
{
    readonly GenerationOptions _o;
    readonly float[] _weights;   // [vocab] (logit - max) / T, then exp of it for the candidates
    readonly int[] _candidates;  // ids that may be sampled, the first count of them
    readonly float[] _sortKeys;  // -weight of each candidate, to sort them without a comparer delegate
    readonly float[] _heap;      // [min(top_k, vocab)] min-heap of the k largest scaled logits
    Xoshiro256 _rng;

    /// <summary>A sampler for a vocabulary of <paramref name="vocab"/> tokens.</summary>
    public Sampler(GenerationOptions options, int vocab)
    {
        if (!(options.Temperature >= 0) || float.IsInfinity(options.Temperature)) throw new ArgumentOutOfRangeException(nameof(options), $"Temperature is {options.Temperature}, expected a finite value >= 0");
        if (options.TopK < 0) throw new ArgumentOutOfRangeException(nameof(options), $"TopK is {options.TopK}, expected >= 0");
        if (!(options.TopP > 0 && options.TopP <= 1)) throw new ArgumentOutOfRangeException(nameof(options), $"TopP is {options.TopP}, expected in (0, 1]");
        _o = options;
        _weights = new float[vocab];
        _candidates = new int[vocab];
        _sortKeys = new float[options.TopP < 1 ? vocab : 0];
        _heap = new float[options.TopK < vocab ? options.TopK : 0];
        _rng = new Xoshiro256(options.Seed);
    }

    /// <summary>Picks a token from <paramref name="logits"/> [vocab]; <paramref name="logprob"/> is its log-probability under softmax(logits).</summary>
    public int Next(ReadOnlySpan<float> logits, out float logprob)
    {
        float max = TensorPrimitives.Max(logits);
        int id = _o.Temperature == 0 ? TensorPrimitives.IndexOfMax(logits) : Sample(logits, max);
        // log softmax(logits)[id] = logits[id] - max - log Σ exp(logits - max)
        var e = _weights.AsSpan(0, logits.Length);
        TensorPrimitives.Subtract(logits, max, e);
        TensorPrimitives.Exp(e, e);
        logprob = (float)(logits[id] - max - Math.Log(TensorPrimitives.Sum<float>(e)));
        return id;
    }

    /// <summary>
    /// The <paramref name="index"/>-th generated token picked from <paramref name="logits"/> [vocab], with the
    /// <see cref="GenerationOptions.TopLogprobs"/> most likely tokens when asked for.
    /// </summary>
    public GeneratedToken Pick(ReadOnlySpan<float> logits, int index)
    {
        int id = Next(logits, out float logprob);
        return new GeneratedToken(id, logprob, index) { TopLogprobs = _o.TopLogprobs > 0 ? Top(logits, _o.TopLogprobs) : null };
    }

    /// <summary>The <paramref name="count"/> most likely tokens of softmax(<paramref name="logits"/>), most likely first (ties: lower id first).</summary>
    public static TokenLogprob[] Top(ReadOnlySpan<float> logits, int count)
    {
        count = Math.Min(count, logits.Length);
        var top = new TokenLogprob[count];
        int filled = 0;
        // Insertion into a short sorted list: count is at most 20, so one pass over the vocabulary dominates.
        for (int i = 0; i < logits.Length; i++)
        {
            float v = logits[i];
            if (filled == count && !(v > top[count - 1].Logprob)) continue;
            int j = filled < count ? filled++ : count - 1;
            while (j > 0 && v > top[j - 1].Logprob) { top[j] = top[j - 1]; j--; }
            top[j] = new TokenLogprob(i, v);
        }
        float max = TensorPrimitives.Max(logits);
        double logZ = max + Math.Log(SumExp(logits, max));
        for (int i = 0; i < count; i++) top[i] = top[i] with { Logprob = (float)(top[i].Logprob - logZ) };
        return top;
    }

    static double SumExp(ReadOnlySpan<float> logits, float max)
    {
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - max);
        return sum;
    }

    int Sample(ReadOnlySpan<float> logits, float max)
    {
        int v = logits.Length;
        var w = _weights.AsSpan(0, v);
        // Subtracting the max first keeps a tiny temperature finite: the best token scales to 0, the others to -inf (greedy).
        TensorPrimitives.Subtract(logits, max, w);
        TensorPrimitives.Divide(w, _o.Temperature, w);
        int count;
        double total;
        if (_o.TopK > 0 && _o.TopK < v)
        {
            count = AboveOrAt(w, KthLargest(w), _candidates);
            total = 0;
            foreach (int i in _candidates.AsSpan(0, count)) total += w[i] = MathF.Exp(w[i]);
        }
        else
        {
            TensorPrimitives.Exp(w, w);
            total = TensorPrimitives.Sum<float>(w);
            if (_o.TopP == 1) return Draw(w, total);
            // Only tokens with p >= (1 - top_p) / vocab can be in the top-p set: all the others together weigh less than
            // 1 - top_p, so the rest reach top_p. A peaked distribution leaves few to sort; a flat one sorts them all.
            count = AboveOrAt(w, (float)((1 - _o.TopP) / v * total), _candidates);
        }
        var order = _candidates.AsSpan(0, count);
        if (_o.TopP < 1)
        {
            SortByWeightDescending(w, order);
            double cum = 0, reach = _o.TopP * total;
            for (int i = 0; i < count; i++)
            {
                cum += w[order[i]];
                if (cum >= reach) { count = i + 1; break; }
            }
            order = order[..count];
            total = cum;
        }
        double u = _rng.NextDouble() * total, acc = 0;
        foreach (int i in order)
        {
            acc += w[i];
            if (u < acc) return i;
        }
        return order[^1];
    }

    /// <summary>Token drawn from unnormalised weights <paramref name="w"/> summing to <paramref name="total"/>.</summary>
    int Draw(ReadOnlySpan<float> w, double total)
    {
        double u = _rng.NextDouble() * total, acc = 0;
        int last = 0;
        for (int i = 0; i < w.Length; i++)
        {
            if (w[i] == 0) continue;
            acc += w[i];
            last = i;
            if (u < acc) return i;
        }
        return last;
    }

    /// <summary>The k-th largest of <paramref name="x"/> (k = heap size), through a bounded min-heap: O(v log k), no sort of the vocabulary.</summary>
    float KthLargest(ReadOnlySpan<float> x)
    {
        var heap = _heap.AsSpan();
        int k = heap.Length;
        x[..k].CopyTo(heap);
        for (int i = k / 2 - 1; i >= 0; i--) SiftDown(heap, i);
        foreach (float value in x[k..])
        {
            if (!(value > heap[0])) continue;
            heap[0] = value;
            SiftDown(heap, 0);
        }
        return heap[0];
    }

    static void SiftDown(Span<float> heap, int i)
    {
        while (true)
        {
            int smallest = i, l = 2 * i + 1, r = l + 1;
            if (l < heap.Length && heap[l] < heap[smallest]) smallest = l;
            if (r < heap.Length && heap[r] < heap[smallest]) smallest = r;
            if (smallest == i) return;
            (heap[i], heap[smallest]) = (heap[smallest], heap[i]);
            i = smallest;
        }
    }

    /// <summary>Writes the ids i with x[i] ≥ threshold (and not -inf) to <paramref name="ids"/> in id order; returns how many.</summary>
    static int AboveOrAt(ReadOnlySpan<float> x, float threshold, Span<int> ids)
    {
        int n = 0;
        for (int i = 0; i < x.Length; i++)
            if (x[i] >= threshold && x[i] != float.NegativeInfinity) ids[n++] = i;
        return n;
    }

    /// <summary>Orders <paramref name="ids"/> by descending weight, ties by ascending id, so the result never depends on the sort's stability.</summary>
    void SortByWeightDescending(ReadOnlySpan<float> w, Span<int> ids)
    {
        var keys = _sortKeys.AsSpan(0, ids.Length);
        for (int i = 0; i < ids.Length; i++) keys[i] = -w[ids[i]];
        keys.Sort(ids);
        for (int start = 0, end; start < ids.Length; start = end)
        {
            for (end = start + 1; end < ids.Length && keys[end] == keys[start]; end++) { }
            if (end - start > 1) ids[start..end].Sort();
        }
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
