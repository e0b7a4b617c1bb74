using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Runtime;
using PureVlm.Tokenization;

namespace PureVlm.Benchmarks;

/// <summary>What one fuzz run did: inputs tried, how many worked, how many the library refused, and what escaped.</summary>
public sealed record FuzzResult(string Kind, long Runs, long Accepted, long Refused, double SlowestSeconds, IReadOnlyList<string> Crashes);

/// <summary>
/// Mutation fuzzing of every input the library reads (<c>benchmarks -- fuzz KIND --seconds N</c>, and a short run in the
/// tests). Each mutated input must either work or raise <see cref="PureVlmException"/> with a one-line message;
/// anything else (another exception type, a multi-line message) is a crash, saved for the regression corpus.
/// Seeds are the repository's own files plus the small ones <c>tests/data/fuzz/make_seeds.py</c> made.
/// </summary>
public sealed class Fuzzer : IDisposable
{
    /// <summary>Every kind of input, in the order <c>all</c> runs them.</summary>
    public static readonly string[] Kinds =
        ["png", "jpeg", "bmp", "gif", "webp", "tiff", "config", "preprocessor", "tokenizer-json", "tokenizer-model", "adapter-config", "safetensors", "prompt", "token-ids"];

    // Mutations that reach size, count and offset checks more often than random bytes do.
    static readonly int[] InterestingInts = [0, 1, -1, 2, 255, 256, 65535, 65536, int.MaxValue, int.MinValue, 0x7FFF, 0x8000, 1 << 24];
    static JsonNode?[] InterestingJson() =>
        [null, 0, -1, 1, 2147483648L, -2147483649L, 1e308, 0.5, "", "x", "gelu_pytorch_tanh", true, false, new JsonArray(), new JsonObject(), new JsonArray(1, 2), 65536];

    readonly string _root, _work;
    readonly Random _random;
    readonly Lazy<VlmModel> _demo;
    readonly Lazy<LoadedModel> _tiny;
    readonly Lazy<Checkpoint> _demoWeights;
    readonly RgbImage _smallImage = new(5, 3, new byte[45], null);

    /// <summary>A fuzzer over the repository at <paramref name="repoRoot"/>; <paramref name="seed"/> fixes the mutations.</summary>
    public Fuzzer(string repoRoot, int seed)
    {
        _root = repoRoot;
        _random = new Random(seed);
        _work = Directory.CreateTempSubdirectory("purevlm-fuzz-").FullName;
        _demo = new(() => VlmModel.Load(Demo));
        _tiny = new(() => LoadedModel.Load(Path.Combine(_root, "tests", "data", "fixtures", "paligemma-tiny")));
        _demoWeights = new(() => Checkpoint.Open(Path.Combine(Demo, "model.safetensors")));
    }

    string Demo => Path.Combine(_root, "models", "paligemma-shapes");
    string Fixture(string name) => Path.Combine(_root, "tests", "data", "fixtures", name);
    string Seeds => Path.Combine(_root, "tests", "data", "fuzz", "seeds");

    /// <summary>Where the crashers of a kind are kept: <c>tests/data/fuzz/crashers/KIND</c>.</summary>
    public static string CrasherFolder(string repoRoot, string kind) => Path.Combine(repoRoot, "tests", "data", "fuzz", "crashers", kind);

    /// <summary>Deletes the scratch folder and the models loaded for the targets.</summary>
    public void Dispose()
    {
        if (_demo.IsValueCreated) _demo.Value.Dispose();
        if (_tiny.IsValueCreated) _tiny.Value.Dispose();
        if (_demoWeights.IsValueCreated) _demoWeights.Value.Dispose();
        Directory.Delete(_work, recursive: true);
    }

    /// <summary>The seed inputs of a kind.</summary>
    public IReadOnlyList<byte[]> SeedInputs(string kind) => kind switch
    {
        "png" or "jpeg" or "bmp" or "gif" or "webp" or "tiff" => Directory.EnumerateFiles(Seeds)
            .Where(f => Path.GetExtension(f) == kind switch { "jpeg" => ".jpg", _ => "." + kind })
            .Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList(),
        "config" => Read(Path.Combine(Demo, "config.json"), Path.Combine(Fixture("paligemma2-tiny"), "config.json"), Path.Combine(Fixture("llava-tiny"), "config.json")),
        "preprocessor" => Read(Path.Combine(Demo, "preprocessor_config.json"), Path.Combine(Fixture("llava-tiny"), "preprocessor_config.json")),
        "tokenizer-json" => Read(Path.Combine(Seeds, "tokenizer.json")),
        "tokenizer-model" => Read(Path.Combine(Fixture("llava-tiny"), "tokenizer.model"), Path.Combine(Demo, "tokenizer.model")),
        "adapter-config" => Read(Path.Combine(Fixture("paligemma-tiny"), "lora", "text", "adapter_config.json"),
            Path.Combine(Fixture("paligemma-tiny"), "lora", "vision", "adapter_config.json"), Path.Combine(Fixture("paligemma-tiny"), "lora", "rslora", "adapter_config.json")),
        "safetensors" => Read(Path.Combine(Fixture("paligemma-tiny"), "lora", "text", "adapter_model.safetensors")),
        "prompt" => [.. new[] { "caption en", "answer en what color is the circle?", "detect circle", "segment 😀 \u00e9\u0301 <image> <bos>" }.Select(Utf16)],
        "token-ids" => [Ints(2, 1470, 1417, 5), Ints(0, 1, 2, 3, 4)],
        _ => throw new ArgumentException($"unknown fuzz kind '{kind}' (expected one of: all, {string.Join(", ", Kinds)})"),
    };

    static List<byte[]> Read(params string[] paths) => paths.Select(File.ReadAllBytes).ToList();
    static byte[] Utf16(string s) => Encoding.Unicode.GetBytes(s);
    static byte[] Ints(params int[] ids) => ids.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>Runs one input through the library as a user would; throws whatever the library throws.</summary>
    public void Target(string kind, byte[] input)
    {
        switch (kind)
        {
            case "png" or "jpeg" or "bmp" or "gif" or "webp" or "tiff":
                _demo.Value.Preprocessor.PixelValues(ImageLoader.Load(input));
                break;
            case "config":
            {
                string path = Write("config.json", input);
                using var model = LoadedModel.Load(ModelConfig.Load(path), _demoWeights.Value);
                break;
            }
            case "preprocessor":
                ImagePreprocessor.FromPreprocessorConfig(Write("preprocessor_config.json", input), 224).PixelValues(_smallImage);
                break;
            case "tokenizer-json" or "tokenizer-model":
            {
                var tokenizer = SentencePieceTokenizer.Load(Write(kind == "tokenizer-json" ? "tokenizer.json" : "tokenizer.model", input));
                tokenizer.Decode(tokenizer.Encode("Hello wörld <bos> 123\n\t 😀 ▁▁"));
                break;
            }
            case "adapter-config":
            {
                string dir = Path.Combine(_work, "adapter");
                Directory.CreateDirectory(dir);
                string weights = Path.Combine(dir, "adapter_model.safetensors");
                if (!File.Exists(weights)) File.Copy(Path.Combine(Fixture("paligemma-tiny"), "lora", "text", "adapter_model.safetensors"), weights);
                File.WriteAllBytes(Path.Combine(dir, "adapter_config.json"), input);
                LoraAdapter.Load(dir, _tiny.Value);
                break;
            }
            case "safetensors":
            {
                using var file = SafeTensorsFile.Open(Write("fuzz.safetensors", input));
                foreach (var t in file.Tensors) t.ToTensor();
                break;
            }
            case "prompt":
            {
                string prompt = Encoding.Unicode.GetString(input);
                var model = _demo.Value;
                model.Tokenizer.Decode(model.PromptIds(prompt));
                if (prompt.Length < 2000) model.Generate(_smallImage, prompt, new GenerationOptions { MaxNewTokens = 2 });
                break;
            }
            case "token-ids":
            {
                var ids = new int[input.Length / 4];
                Buffer.BlockCopy(input, 0, ids, 0, ids.Length * 4);
                var model = _demo.Value;
                model.Tokenizer.Decode(ids);
                model.Loaded.CreateSession().Prefill(ids);
                break;
            }
            default: throw new ArgumentException($"unknown fuzz kind '{kind}'");
        }
    }

    string Write(string name, byte[] input)
    {
        string path = Path.Combine(_work, name);
        File.WriteAllBytes(path, input);
        return path;
    }

    /// <summary>
    /// Null when <paramref name="input"/> works or is refused as the library promises; else what went wrong, in one line.
    /// <paramref name="refused"/> says which of the two good outcomes it was.
    /// </summary>
    public string? Check(string kind, byte[] input, out bool refused)
    {
        refused = false;
        try { Target(kind, input); return null; }
        catch (PureVlmException e)
        {
            refused = true;
            return e.Message.Length == 0 || e.Message.Contains('\n') ? $"{e.GetType().Name} with a message that is not one line: {Escape(e.Message)}" : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            string frame = e.StackTrace?.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at ")) ?? "";
            return $"{e.GetType().Name}: {Escape(e.Message)} {frame}";
        }
    }

    static string Escape(string s) => (s.Length > 300 ? s[..300] + "…" : s).ReplaceLineEndings("\\n");

    /// <summary>Mutates seeds of <paramref name="kind"/> for <paramref name="budget"/>; crashers go to <paramref name="saveTo"/> when given.</summary>
    public FuzzResult Run(string kind, TimeSpan budget, string? saveTo)
    {
        var seeds = SeedInputs(kind);
        // The seeds themselves must not crash. Config seeds of other families are refused by the demo weights the
        // target builds them over, but only after their config has been read, which is the part fuzzed.
        foreach (var s in seeds)
            if (Check(kind, s, out _) is { } crash) throw new InvalidOperationException($"{kind} seed crashes: {crash}");
        long runs = 0, accepted = 0, refused = 0;
        double slowest = 0;
        var crashes = new Dictionary<string, string>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < budget)
        {
            byte[] input = Mutate(kind, seeds[_random.Next(seeds.Count)], seeds);
            var one = Stopwatch.StartNew();
            string? crash = Check(kind, input, out bool wasRefused);
            slowest = Math.Max(slowest, one.Elapsed.TotalSeconds);
            runs++;
            if (crash != null)
            {
                // One saved input per distinct failure (type, message start and top frame), not thousands of the same.
                string key = crash.Length > 120 ? crash[..60] + crash[^60..] : crash;
                if (crashes.TryAdd(key, crash) && saveTo != null)
                {
                    Directory.CreateDirectory(saveTo);
                    File.WriteAllBytes(Path.Combine(saveTo, Convert.ToHexStringLower(SHA256.HashData(input))[..16] + ".bin"), input);
                }
            }
            else if (wasRefused) refused++;
            else accepted++;
        }
        return new FuzzResult(kind, runs, accepted, refused, slowest, crashes.Values.ToList());
    }

    byte[] Mutate(string kind, byte[] seed, IReadOnlyList<byte[]> seeds)
    {
        switch (kind)
        {
            case "prompt": return Utf16(RandomPrompt(Encoding.Unicode.GetString(seed)));
            case "token-ids": return RandomIds();
            case "config" or "preprocessor" or "adapter-config" or "tokenizer-json" when _random.Next(2) == 0:
                if (MutateJson(seed) is { } json) return json;
                break;
        }
        var data = new List<byte>(seed);
        int ops = 1 + _random.Next(4);
        for (int i = 0; i < ops; i++)
        {
            // Safetensors: most changes land in the length and the JSON header, where the parsing is.
            int limit = kind == "safetensors" && _random.Next(10) > 0 ? (int)Math.Min(data.Count, 8 + BitConverter.ToUInt32(seed, 0)) : data.Count;
            int at = limit == 0 ? 0 : _random.Next(limit);
            switch (_random.Next(8))
            {
                case 0 when data.Count > 0: data[at] ^= (byte)(1 << _random.Next(8)); break;
                case 1 when data.Count > 0: data[at] = (byte)(_random.Next(3) switch { 0 => 0, 1 => 0xFF, _ => _random.Next(256) }); break;
                case 2 when data.Count > at + 4:
                    byte[] v = BitConverter.GetBytes(InterestingInts[_random.Next(InterestingInts.Length)]);
                    if (_random.Next(2) == 0) Array.Reverse(v); // big-endian formats (PNG, JPEG)
                    for (int k = 0; k < 4; k++) data[at + k] = v[k];
                    break;
                case 3 when data.Count > 0: data.RemoveRange(at, Math.Min(data.Count - at, 1 + _random.Next(64))); break;
                case 4 when data.Count > 0: data.InsertRange(at, data.GetRange(at, Math.Min(data.Count - at, 1 + _random.Next(64)))); break;
                case 5: data.InsertRange(at, Enumerable.Range(0, 1 + _random.Next(16)).Select(_ => (byte)_random.Next(256))); break;
                case 6 when data.Count > 0: data.RemoveRange(at, data.Count - at); break; // truncate
                case 7: // splice in a piece of another seed
                    var other = seeds[_random.Next(seeds.Count)];
                    int from = _random.Next(other.Length), count = Math.Min(other.Length - from, 1 + _random.Next(256));
                    data.InsertRange(at, other.Skip(from).Take(count));
                    break;
            }
        }
        return [.. data];
    }

    // Replaces, removes or duplicates one value of a JSON document: reaches the checks behind a valid parse, which byte
    // flips rarely do.
    byte[]? MutateJson(byte[] seed)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(seed); } catch (System.Text.Json.JsonException) { return null; }
        if (root == null) return null;
        var nodes = new List<JsonNode>();
        void Walk(JsonNode n)
        {
            nodes.Add(n);
            if (n is JsonObject o) foreach (var p in o) { if (p.Value != null) Walk(p.Value); }
            else if (n is JsonArray a) foreach (var e in a) { if (e != null) Walk(e); }
        }
        Walk(root);
        var target = nodes[_random.Next(nodes.Count)];
        if (target.Parent is not { } parent) return null;
        var interesting = InterestingJson();
        var replacement = interesting[_random.Next(interesting.Length)];
        switch (parent, _random.Next(3))
        {
            case (JsonObject o, 0): o.Remove(target.GetPropertyName()); break;
            case (JsonObject o, _): o[target.GetPropertyName()] = replacement; break;
            case (JsonArray a, 0): a.RemoveAt(target.GetElementIndex()); break;
            case (JsonArray a, _): a[target.GetElementIndex()] = replacement; break;
        }
        return Encoding.UTF8.GetBytes(root.ToJsonString());
    }

    string RandomPrompt(string seed)
    {
        var sb = new StringBuilder(_random.Next(3) == 0 ? seed : "");
        int length = _random.Next(20) == 0 ? 1 << 20 : _random.Next(200); // now and then a 1 MB prompt
        for (int i = 0; i < length; i++)
            sb.Append(_random.Next(6) switch
            {
                0 => (char)_random.Next(0xD800, 0xE000), // a lone surrogate
                1 => (char)_random.Next(0, 32),
                2 => "<image><bos><eos><loc0123><seg042>▁ \u00e9\u0301"[_random.Next(32)],
                3 => char.ConvertFromUtf32(_random.Next(0x10000, 0x110000) is var c && c is >= 0xD800 and < 0xE000 ? 0x1F600 : c)[0],
                _ => (char)_random.Next(32, 0x3000),
            });
        return sb.ToString();
    }

    byte[] RandomIds()
    {
        int vocab = _demo.Value.Loaded.Config.Text.VocabSize;
        var ids = new int[_random.Next(20) == 0 ? 5000 : _random.Next(64)];
        for (int i = 0; i < ids.Length; i++)
            ids[i] = _random.Next(10) == 0 ? InterestingInts[_random.Next(InterestingInts.Length)] : _random.Next(-2, vocab + 2);
        return Ints(ids);
    }
}
