using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary><c>weights-tools convert --in DIR_OR_FILE --out DIR --dtype f32|bf16|f16</c>.</summary>
public static class ConvertCommand
{
    const string Usage = """
        usage: weights-tools convert --in DIR_OR_FILE [--revision REV] --out DIR --dtype f32|bf16|f16

        Rewrites every float tensor (F32, BF16, F16, F64) in the target dtype (BF16 and F16 round to nearest
        even, as PyTorch); integer and bool tensors are copied. Keeps the shard layout and file names, rewrites
        model.safetensors.index.json with the new total_size, copies config, preprocessor and tokenizer files
        (setting torch_dtype in config.json). Streams tensor by tensor in chunks. The input is
        never modified: --out must not hold any input file.
        A checkpoint folder may also be given as a Hugging Face repo id (google/paligemma2-3b-pt-224), found offline
        in the local hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) at --revision REV
        (a branch, tag or commit; default main).
        """;

    /// <summary>Runs the command; see <see cref="Usage"/>.</summary>
    public static int Run(string[] args, TextWriter stdout)
    {
        var o = new Options(args, "--in", "--revision", "--out", "--dtype");
        if (o.Help) { stdout.WriteLine(Usage); return 0; }
        if (o.Positional.Count != 0) throw new UsageException($"unexpected argument '{o.Positional[0]}'");
        var dtype = FloatEncoding.ParseTarget(o.Require("--dtype")); // a usage error before looking for the input
        string input = o.Model(o.Require("--in")), output = o.Require("--out");
        var (tensors, bytes) = Convert(input, output, dtype);
        stdout.WriteLine($"wrote {tensors} tensors, {bytes} bytes of {dtype.Name()} checkpoint to {output}");
        return 0;
    }

    /// <summary>Converts a checkpoint; returns the tensor count and data bytes written.</summary>
    public static (int Tensors, long Bytes) Convert(string input, string outputDir, DType dtype)
    {
        using var ckpt = Checkpoint.Open(input);
        string inputDir = Path.GetFullPath(File.Exists(input) ? Path.GetDirectoryName(Path.GetFullPath(input))! : input);
        string outDir = Path.GetFullPath(outputDir);
        if (outDir == inputDir) throw new ArgumentException($"--out {outputDir} is the input directory; the input is never modified");
        var inputs = ckpt.Files.Select(f => Path.GetFullPath(f.Path)).ToHashSet();
        foreach (var f in ckpt.Files)
            if (inputs.Contains(Path.Combine(outDir, Path.GetFileName(f.Path))))
                throw new ArgumentException($"--out {outputDir} would overwrite input {f.Path}");
        Directory.CreateDirectory(outDir);

        int count = 0;
        long total = 0;
        var floats = new float[FloatEncoding.ChunkElements];
        var scratch = new byte[FloatEncoding.ChunkElements * 4];
        foreach (var file in ckpt.Files)
        {
            var headers = file.Tensors.Select(t => new TensorHeader(t.Name, FloatEncoding.IsFloat(t.DType) ? dtype : t.DType, t.Shape)).ToList();
            SafeTensorsWriter.WriteStreaming(Path.Combine(outDir, Path.GetFileName(file.Path)), headers, (h, stream) =>
            {
                var src = file[h.Name];
                if (!FloatEncoding.IsFloat(src.DType)) { CopyRaw(src, stream); return; }
                for (long start = 0; start < src.ElementCount; start += floats.Length)
                {
                    var chunk = floats.AsSpan(0, (int)Math.Min(floats.Length, src.ElementCount - start));
                    src.ReadFloats(start, chunk);
                    FloatEncoding.Write(stream, chunk, dtype, scratch);
                }
            }, file.Metadata.Count > 0 ? file.Metadata : null);
            count += headers.Count;
            total += headers.Sum(h => h.ByteLength);
        }
        bool sharded = Directory.Exists(input) && File.Exists(Path.Combine(inputDir, Checkpoint.IndexFileName));
        CopySideFiles(inputDir, outDir, dtype, total, sharded);
        return (count, total);
    }

    internal static unsafe void CopyRaw(StoredTensor t, Stream stream)
    {
        for (long done = 0; done < t.ByteLength; done += int.MaxValue / 2)
            stream.Write(new ReadOnlySpan<byte>(t.Pointer + done, (int)Math.Min(int.MaxValue / 2, t.ByteLength - done)));
    }

    internal static readonly string[] SideFiles =
    [
        "config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model",
        Checkpoint.IndexFileName,
    ];

    /// <summary>Copies configs and tokenizer files, updating torch_dtype and the index's total_size.</summary>
    static void CopySideFiles(string inputDir, string outDir, DType dtype, long totalSize, bool sharded)
    {
        foreach (var name in SideFiles)
        {
            string src = Path.Combine(inputDir, name);
            if (!File.Exists(src)) continue;
            string dst = Path.Combine(outDir, name);
            if (name == Checkpoint.IndexFileName)
            {
                if (!sharded) continue;
                var index = JsonNode.Parse(File.ReadAllText(src))!.AsObject();
                index["metadata"] = new JsonObject { ["total_size"] = totalSize };
                File.WriteAllText(dst, index.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else if (name == "config.json")
            {
                var config = JsonNode.Parse(File.ReadAllText(src))!.AsObject();
                SetTorchDtype(config, FloatEncoding.TorchName(dtype));
                File.WriteAllText(dst, config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            }
            else File.Copy(src, dst, overwrite: true);
        }
    }

    static void SetTorchDtype(JsonObject config, string torchDtype)
    {
        if (config.ContainsKey("torch_dtype")) config["torch_dtype"] = torchDtype;
        foreach (var sub in new[] { "text_config", "vision_config" })
            if (config[sub] is JsonObject o && o.ContainsKey("torch_dtype")) o["torch_dtype"] = torchDtype;
    }
}
