using System.Text.Json;
using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary><c>weights-tools quantize --model DIR --out DIR --bits 4|8 [--group-size 64] [--skip PATTERN]</c>.</summary>
public static class QuantizeCommand
{
    const string Usage = """
        usage: weights-tools quantize --model DIR [--revision REV] --out DIR --bits 4|8 [--group-size 64] [--embedding-bits 8] [--skip REGEX]

        Writes the checkpoint with its Linear weights and token embedding quantized in MLX's affine layout, as
        mlx-vlm writes it: <module>.weight holds the q values packed into uint32 (first value in the lowest bits),
        <module>.scales and <module>.biases one value per group of --group-size columns (32, 64 or 128), in the
        source weight's dtype, with weight = scale * q + bias. Which tensors: every Linear weight and token
        embedding of the model as the engine builds it whose in_features is a multiple of the group size (MLX's
        files hold whole groups only, so SigLIP's fc2, 4304 wide, and conv kernels stay as they are; --quantize
        at load takes fc2 too, with a partial last group); the token embedding and a tied or separate
        LM head take --embedding-bits (default 8: their error reaches every logit); names matching --skip stay
        as they are. config.json gains "quantization" (and "quantization_config") with the group size, bits and
        the per-module exceptions; the index, preprocessor and tokenizer files are copied. Streams tensor by tensor,
        reading rows in chunks. The input is never modified: --out must be a different directory.
        purevlm run/serve/bench/explain --quantize 4|8 do the same at load without a copy on disk.
        """;

    /// <summary>Runs the command; see <see cref="Usage"/>.</summary>
    public static int Run(string[] args, TextWriter stdout)
    {
        var o = new Options(args, "--model", "--revision", "--out", "--bits", "--group-size", "--embedding-bits", "--skip");
        if (o.Help) { stdout.WriteLine(Usage); return 0; }
        if (o.Positional.Count != 0) throw new UsageException($"unexpected argument '{o.Positional[0]}'");
        if (o.Get("--skip") is string skip) ValidateRegex(skip);
        var recipe = new QuantizationRecipe(Bits(o, "--bits", null), Bits(o, "--group-size", 64, QuantizedTensor.GroupSizes),
            Bits(o, "--embedding-bits", 8), o.Get("--skip"), WholeGroupsOnly: true);
        string model = o.Model(o.Require("--model")), output = o.Require("--out");
        var (quantized, tensors, bytes) = Quantize(model, output, recipe, Console.IsErrorRedirected ? null : Console.Error);
        stdout.WriteLine($"quantized {quantized} of {tensors} tensors to {recipe.Bits} bits (group size {recipe.GroupSize}), wrote {bytes} bytes to {output}");
        return 0;
    }

    static int Bits(Options o, string name, int? fallback, int[]? allowed = null)
    {
        allowed ??= QuantizedTensor.BitWidths;
        string? s = o.Get(name);
        if (s == null) return fallback ?? throw new UsageException($"missing {name}");
        return int.TryParse(s, out int v) && allowed.Contains(v) ? v
            : throw new UsageException($"{name} '{s}': expected one of {string.Join(", ", allowed)}");
    }

    static void ValidateRegex(string pattern)
    {
        try { _ = new System.Text.RegularExpressions.Regex(pattern); }
        catch (ArgumentException e) { throw new UsageException($"--skip '{pattern}' is not a regular expression ({e.Message})"); }
    }

    /// <summary>Quantizes a checkpoint into <paramref name="outputDir"/>; returns (tensors quantized, tensors in, bytes written).</summary>
    public static (int Quantized, int Tensors, long Bytes) Quantize(string modelDir, string outputDir, QuantizationRecipe recipe, TextWriter? progress = null)
    {
        recipe.Validate();
        string inDir = Path.GetFullPath(modelDir), outDir = Path.GetFullPath(outputDir);
        if (Path.TrimEndingDirectorySeparator(inDir) == Path.TrimEndingDirectorySeparator(outDir))
            throw new ArgumentException($"--out {outputDir} is the input directory; the input is never modified");
        // The module tree says which tensors are matrices; built without the load-time read-ahead, which would page the
        // whole input into this process while it only needs a chunk of rows at a time.
        string directory = File.Exists(modelDir) ? Path.GetDirectoryName(inDir)! : inDir;
        using var checkpoint = Checkpoint.Open(modelDir);
        using var model = LoadedModel.Load(ModelConfig.Load(Path.Combine(directory, "config.json")), checkpoint);
        var plan = Plan(model, recipe);
        var companions = plan.Keys.SelectMany(name => new[]
        {
            KeyValuePair.Create(QuantizedTensor.CompanionName(name, "scales"), (Source: name, IsScales: true)),
            KeyValuePair.Create(QuantizedTensor.CompanionName(name, "biases"), (Source: name, IsScales: false)),
        }).ToDictionary(StringComparer.Ordinal);
        Directory.CreateDirectory(outDir);

        int count = 0, done = 0;
        long total = 0;
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in model.Checkpoint.Files)
        {
            var headers = new List<TensorHeader>();
            foreach (var t in file.Tensors)
            {
                count++;
                if (!plan.TryGetValue(t.Name, out int bits)) { headers.Add(new(t.Name, t.DType, t.Shape)); continue; }
                long groups = t.Shape[1] / recipe.GroupSize;
                headers.Add(new(t.Name, DType.U32, [t.Shape[0], t.Shape[1] * bits / 32]));
                headers.Add(new(QuantizedTensor.CompanionName(t.Name, "scales"), t.DType, [t.Shape[0], groups]));
                headers.Add(new(QuantizedTensor.CompanionName(t.Name, "biases"), t.DType, [t.Shape[0], groups]));
            }
            string shard = Path.GetFileName(file.Path);
            foreach (var h in headers) shardOf[h.Name] = shard;
            // The writer asks for tensors sorted by name: a module's biases and scales come before its weight, so the
            // first of them quantizes the rows (keeping only scales and biases) and the weight quantizes them again
            // as it writes the packed words, which keeps memory at one chunk of rows.
            (string Source, byte[] Scales, byte[] Biases)? cached = null;
            SafeTensorsWriter.WriteStreaming(Path.Combine(outDir, shard), headers, (h, stream) =>
            {
                if (companions.TryGetValue(h.Name, out var owner))
                {
                    if (cached?.Source != owner.Source)
                    {
                        progress?.Write($"\rquantizing {++done}/{plan.Count} {owner.Source}\u001b[K");
                        var (sc, bi) = WriteQuantized(model.Checkpoint, file[owner.Source], plan[owner.Source], recipe.GroupSize, null);
                        cached = (owner.Source, sc, bi);
                    }
                    stream.Write(owner.IsScales ? cached.Value.Scales : cached.Value.Biases);
                }
                else if (plan.TryGetValue(h.Name, out int bits)) WriteQuantized(model.Checkpoint, file[h.Name], bits, recipe.GroupSize, stream);
                else ConvertCommand.CopyRaw(file[h.Name], stream);
            }, file.Metadata.Count > 0 ? file.Metadata : null);
            total += headers.Sum(h => h.ByteLength);
        }
        progress?.Write("\r\u001b[K");
        CopySideFiles(inDir, outDir, recipe, plan, shardOf, total);
        return (plan.Count, count, total);
    }

    /// <summary>Tensor name → bits, for the matrices the engine would quantize at load with this recipe.</summary>
    static Dictionary<string, int> Plan(LoadedModel model, QuantizationRecipe recipe)
    {
        var lm = model.Modules.LanguageModel;
        var embeddings = new HashSet<string>(StringComparer.Ordinal) { lm.EmbedTokens.Name, lm.LmHead.Weight.Name };
        var plan = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var w in model.Modules.Linears().Select(l => l.Weight).Append(lm.EmbedTokens))
        {
            // Only 2-D float tensors as stored: a conv kernel viewed as a matrix keeps its rank on disk.
            if (w is not StoredTensor t || t.Rank != 2 || !model.Checkpoint.Contains(t.Name) || model.Checkpoint[t.Name].Rank != 2) continue;
            if (model.Checkpoint.Contains(QuantizedTensor.CompanionName(t.Name, "scales"))) continue;
            int bits = recipe.BitsFor(t.Name, t.Shape[1], embeddings.Contains(t.Name));
            if (bits != 0) plan[t.Name] = bits;
        }
        return plan;
    }

    /// <summary>Quantizes <paramref name="src"/>, writing its packed uint32 words to <paramref name="stream"/> if given; returns its scales' and biases' bytes.</summary>
    static (byte[] Scales, byte[] Biases) WriteQuantized(Checkpoint checkpoint, StoredTensor src, int bits, int groupSize, Stream? stream)
    {
        int rows = (int)src.Shape[0], columns = (int)src.Shape[1], groups = columns / groupSize, size = src.DType.Size();
        var scales = new byte[(long)rows * groups * size];
        var biases = new byte[scales.Length];
        int chunk = Math.Max(1, (8 << 20) / (columns * size));
        var raw = new byte[chunk * columns * size];
        var values = new float[chunk * columns];
        var packed = new byte[chunk * columns * bits / 8];
        for (int r0 = 0; r0 < rows; r0 += chunk)
        {
            int count = Math.Min(chunk, rows - r0);
            var v = values.AsSpan(0, count * columns);
            checkpoint.ReadFloats(src, (long)r0 * columns, v, raw);
            var outBytes = packed.AsSpan(0, count * columns * bits / 8);
            outBytes.Clear();
            // Rows are independent (their words, scales and biases are disjoint): slices of the chunk go to all cores.
            var values0 = values;
            Parallel.For(0, (count + 63) / 64, slice =>
            {
                Span<byte> q = stackalloc byte[groupSize];
                var words = packed.AsSpan();
                for (int r = slice * 64; r < Math.Min(count, slice * 64 + 64); r++)
                    for (int g = 0; g < groups; g++)
                    {
                        var (scale, bias) = QuantizedTensor.QuantizeGroup(values0.AsSpan(r * columns + g * groupSize, groupSize), bits, src.DType, q, src.Name, r0 + r);
                        long at = ((long)(r0 + r) * groups + g) * size;
                        Tensors.Convert.FromF32(src.DType, scale, scales.AsSpan((int)at, size));
                        Tensors.Convert.FromF32(src.DType, bias, biases.AsSpan((int)at, size));
                        // MLX packs little-endian uint32 words, first value in the lowest bits: for 4 and 8 bits a plain bit stream.
                        for (int c = 0; c < groupSize; c++)
                        {
                            long bit = ((long)r * columns + g * groupSize + c) * bits;
                            words[(int)(bit >> 3)] |= (byte)(q[c] << (int)(bit & 7));
                        }
                    }
            });
            stream?.Write(outBytes);
        }
        return (scales, biases);
    }

    /// <summary>Copies configs and tokenizer files; config.json gets MLX's quantization keys, the index the new names.</summary>
    static void CopySideFiles(string inDir, string outDir, QuantizationRecipe recipe, Dictionary<string, int> plan, Dictionary<string, string> shardOf, long total)
    {
        var indented = new JsonSerializerOptions { WriteIndented = true };
        foreach (var name in ConvertCommand.SideFiles)
        {
            string src = Path.Combine(inDir, name), dst = Path.Combine(outDir, name);
            if (!File.Exists(src)) continue;
            if (name == Checkpoint.IndexFileName)
            {
                var index = JsonNode.Parse(File.ReadAllText(src))!.AsObject();
                index["metadata"] = new JsonObject { ["total_size"] = total };
                var map = new JsonObject();
                foreach (var (tensor, shard) in shardOf.OrderBy(kv => kv.Key, StringComparer.Ordinal)) map[tensor] = shard;
                index["weight_map"] = map;
                File.WriteAllText(dst, index.ToJsonString(indented));
            }
            else if (name == "config.json")
            {
                var config = JsonNode.Parse(File.ReadAllText(src))!.AsObject();
                var quantization = new JsonObject { ["group_size"] = recipe.GroupSize, ["bits"] = recipe.Bits, ["mode"] = "affine" };
                // MLX's per-module exceptions: the modules at other bit widths (the embedding / LM head).
                foreach (var (tensor, bits) in plan.Where(kv => kv.Value != recipe.Bits).OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    quantization[QuantizedTensor.CompanionName(tensor, "")[..^1]] = new JsonObject { ["group_size"] = recipe.GroupSize, ["bits"] = bits };
                config["quantization"] = quantization;
                config["quantization_config"] = quantization.DeepClone();
                File.WriteAllText(dst, config.ToJsonString(indented));
            }
            else File.Copy(src, dst, overwrite: true);
        }
    }
}
