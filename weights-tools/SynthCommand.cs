using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary><c>weights-tools synth --arch A --dtype bf16|f32 --out DIR [--seed N]</c>.</summary>
public static class SynthCommand
{
    /// <summary>Hugging Face's default max_shard_size ("5GB").</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    static readonly string Usage = $"""
        usage: weights-tools synth --arch ARCH --dtype bf16|f32 --out DIR [--seed N] [--max-shard-size BYTES]

        ARCH: {string.Join(", ", SynthArch.Known.Keys)}.
        Writes a random checkpoint with the real tensor names and shapes of the published Hugging Face
        checkpoint, config.json and preprocessor_config.json, sharded as save_pretrained does (greedy in
        state_dict order, at most --max-shard-size bytes per shard, default 5000000000;
        model-0000i-of-0000n.safetensors + model.safetensors.index.json). Values: N(0, 0.02) (approximate,
        from a seeded generator), LayerNorm weights 1 + N(0, 0.02). No tokenizer is written.
        Streams tensor by tensor in chunks: memory stays at a few MB whatever the size.
        """;

    /// <summary>Runs the command; see <see cref="Usage"/>.</summary>
    public static int Run(string[] args, TextWriter stdout)
    {
        var o = new Options(args, "--arch", "--dtype", "--out", "--seed", "--max-shard-size");
        if (o.Help) { stdout.WriteLine(Usage); return 0; }
        if (o.Positional.Count != 0) throw new UsageException($"unexpected argument '{o.Positional[0]}'");
        string archName = o.Require("--arch");
        if (!SynthArch.Known.TryGetValue(archName, out var arch))
            throw new UsageException($"--arch '{archName}' is not one of {string.Join(", ", SynthArch.Known.Keys)}");
        var dtype = FloatEncoding.ParseTarget(o.Require("--dtype"));
        if (dtype == DType.F16) throw new UsageException("--dtype must be bf16 or f32");
        long seed = o.GetLong("--seed", 0, 0);
        long maxShard = o.GetLong("--max-shard-size", DefaultMaxShardBytes, 1);
        var files = Synthesize(arch, dtype, o.Require("--out"), (ulong)seed, maxShard, f => stdout.WriteLine($"wrote {f}"));
        stdout.WriteLine($"{arch.Name}: {files.Count} shard(s), {arch.Tensors().Count()} tensors, {arch.Parameters} parameters");
        return 0;
    }

    /// <summary>Writes the checkpoint; returns the shard file names.</summary>
    public static List<string> Synthesize(SynthArch arch, DType dtype, string outDir, ulong seed, long maxShardBytes, Action<string>? progress = null)
    {
        Directory.CreateDirectory(outDir);
        var shards = Shard(arch.Tensors().ToList(), dtype, maxShardBytes);
        var names = shards.Count == 1
            ? ["model.safetensors"]
            : Enumerable.Range(1, shards.Count).Select(i => $"model-{i:D5}-of-{shards.Count:D5}.safetensors").ToList();
        var floats = new float[FloatEncoding.ChunkElements];
        var scratch = new byte[FloatEncoding.ChunkElements * 4];
        for (int s = 0; s < shards.Count; s++)
        {
            var init = shards[s].ToDictionary(t => t.Name, t => t.Init);
            var headers = shards[s].Select(t => new TensorHeader(t.Name, dtype, t.Shape)).ToList();
            SafeTensorsWriter.WriteStreaming(Path.Combine(outDir, names[s]), headers, (h, stream) =>
            {
                var rng = new NormalGenerator(seed, h.Name);
                float offset = init[h.Name] == Init.NearOne ? 1f : 0f;
                long n = Elements(h.Shape);
                for (long start = 0; start < n; start += floats.Length)
                {
                    var chunk = floats.AsSpan(0, (int)Math.Min(floats.Length, n - start));
                    rng.Fill(chunk, offset, 0.02f);
                    FloatEncoding.Write(stream, chunk, dtype, scratch);
                }
            });
            progress?.Invoke(names[s]);
        }
        if (shards.Count > 1) WriteIndex(outDir, shards, names, dtype);
        WriteJson(Path.Combine(outDir, "config.json"), arch.Config(dtype));
        WriteJson(Path.Combine(outDir, "preprocessor_config.json"), arch.PreprocessorConfig());
        return names;
    }

    /// <summary>Greedy split in state_dict order: a new shard starts when the next tensor would pass the limit.</summary>
    public static List<List<SynthTensor>> Shard(List<SynthTensor> tensors, DType dtype, long maxShardBytes)
    {
        var shards = new List<List<SynthTensor>> { new() };
        long size = 0;
        foreach (var t in tensors)
        {
            long bytes = Elements(t.Shape) * dtype.Size();
            if (size + bytes > maxShardBytes && shards[^1].Count > 0) { shards.Add(new()); size = 0; }
            shards[^1].Add(t);
            size += bytes;
        }
        return shards;
    }

    static void WriteIndex(string outDir, List<List<SynthTensor>> shards, List<string> names, DType dtype)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        for (int s = 0; s < shards.Count; s++)
            foreach (var t in shards[s]) { map[t.Name] = names[s]; total += Elements(t.Shape) * dtype.Size(); }
        var weightMap = new JsonObject();
        foreach (var (k, v) in map) weightMap[k] = v;
        WriteJson(Path.Combine(outDir, Checkpoint.IndexFileName), new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = weightMap,
        });
    }

    static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n", new UTF8Encoding(false));

    static long Elements(long[] shape) => shape.Aggregate(1L, (a, b) => checked(a * b));
}

/// <summary>
/// Fast seeded approximate normals: SplitMix64, each 64-bit draw split into four 16-bit uniforms whose
/// sum (Irwin–Hall, n = 4) is rescaled to mean 0, variance 1. Seeded per tensor from (seed, name), so the
/// values do not depend on shard layout or chunk size.
/// </summary>
public struct NormalGenerator
{
    ulong _state;

    /// <summary>A generator for one tensor.</summary>
    public NormalGenerator(ulong seed, string tensorName)
    {
        ulong h = 14695981039346656037UL; // FNV-1a: stable across runs, unlike string.GetHashCode
        foreach (char c in tensorName) { h ^= c; h *= 1099511628211UL; }
        _state = seed * 0x9E3779B97F4A7C15UL ^ h;
    }

    ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Fills <paramref name="dst"/> with mean + std × (approximate) N(0, 1).</summary>
    public void Fill(Span<float> dst, float mean, float std)
    {
        // Sum of four U(0, 1) has mean 2 and variance 1/3.
        float scale = std * MathF.Sqrt(3f) / 65536f;
        float shift = mean - 2f * std * MathF.Sqrt(3f);
        for (int i = 0; i < dst.Length; i++)
        {
            ulong r = Next();
            uint sum = (uint)(r & 0xFFFF) + (uint)((r >> 16) & 0xFFFF) + (uint)((r >> 32) & 0xFFFF) + (uint)(r >> 48);
            dst[i] = sum * scale + shift;
        }
    }
}
