using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary><c>weights-tools merge-lora --model DIR --lora DIR [--lora DIR …] --out DIR</c>.</summary>
public static class MergeLoraCommand
{
    const string Usage = """
        usage: weights-tools merge-lora --model DIR [--revision REV] --lora DIR [--lora DIR ...] --out DIR

        Writes the base checkpoint with every PEFT LoRA adapter merged in: W' = W + scale · lora_B · lora_A for each
        adapted Linear (several adapters add up), computed in float32 and rounded back to the base tensor's dtype
        (round to nearest even). Tensor names, dtypes, shapes, shard files and the index stay as in the base;
        config, preprocessor and tokenizer files are copied. Streams row block by row block. Neither the base nor
        the adapters are modified: --out must be a different directory.
        A checkpoint folder may also be given as a Hugging Face repo id (google/paligemma2-3b-pt-224), found offline
        in the local hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) at --revision REV
        (a branch, tag or commit; default main).
        """;

    /// <summary>Runs the command; see <see cref="Usage"/>.</summary>
    public static int Run(string[] args, TextWriter stdout)
    {
        // --lora repeats, which the shared parser refuses; take its values out first.
        var loras = new List<string>();
        var rest = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] != "--lora") { rest.Add(args[i]); continue; }
            if (i + 1 >= args.Length) throw new UsageException("option '--lora' needs a value");
            loras.Add(args[++i]);
        }
        var o = new Options(rest.ToArray(), "--model", "--revision", "--out");
        if (o.Help) { stdout.WriteLine(Usage); return 0; }
        if (o.Positional.Count != 0) throw new UsageException($"unexpected argument '{o.Positional[0]}'");
        string model = o.Model(o.Require("--model")), output = o.Require("--out");
        if (loras.Count == 0) throw new UsageException("missing --lora");
        var (tensors, merged) = Merge(model, loras, output);
        stdout.WriteLine($"merged {loras.Count} adapter(s) into {merged} of {tensors} tensors, wrote {output}");
        return 0;
    }

    /// <summary>Merges the adapters into a copy of the checkpoint; returns (tensors written, tensors changed).</summary>
    public static (int Tensors, int Merged) Merge(string modelDir, IReadOnlyList<string> loraDirs, string outputDir)
    {
        string inDir = Path.GetFullPath(modelDir), outDir = Path.GetFullPath(outputDir);
        foreach (var input in loraDirs.Select(Path.GetFullPath).Prepend(inDir))
            if (Path.TrimEndingDirectorySeparator(input) == Path.TrimEndingDirectorySeparator(outDir))
                throw new ArgumentException($"--out {outputDir} is an input directory ({input}); inputs are never modified");
        // Built without the load-time read-ahead, which would page the whole base into this process: the merge streams it.
        using var checkpoint = Checkpoint.Open(modelDir);
        using var model = LoadedModel.Load(ModelConfig.Load(Path.Combine(File.Exists(modelDir) ? Path.GetDirectoryName(inDir)! : inDir, "config.json")), checkpoint);
        var adapters = loraDirs.Select(d => LoraAdapter.Load(d, model)).ToList();
        var byWeight = new Dictionary<string, List<LoraModule>>(StringComparer.Ordinal);
        foreach (var m in adapters.SelectMany(a => a.Modules))
        {
            if (m.BaseWeight is not StoredTensor)
                throw new ArgumentException($"adapter module '{m.ModulePath}': the base weight '{m.BaseWeight.Name}' is quantized; merge into the float checkpoint, then quantize the result");
            if (m.BaseWeight.Name != m.ModulePath + ".weight")
                throw new ArgumentException($"adapter module '{m.ModulePath}' uses the tied weight '{m.BaseWeight.Name}'; merging would change it too (apply this adapter unmerged)");
            if (!byWeight.TryGetValue(m.BaseWeight.Name, out var list)) byWeight[m.BaseWeight.Name] = list = new();
            list.Add(m);
        }
        Directory.CreateDirectory(outDir);

        int count = 0;
        foreach (var file in model.Checkpoint.Files)
        {
            var headers = file.Tensors.Select(t => new TensorHeader(t.Name, t.DType, t.Shape)).ToList();
            SafeTensorsWriter.WriteStreaming(Path.Combine(outDir, Path.GetFileName(file.Path)), headers, (h, stream) =>
            {
                var src = file[h.Name];
                if (byWeight.TryGetValue(h.Name, out var modules)) WriteMerged(src, modules, stream);
                else ConvertCommand.CopyRaw(src, stream);
            }, file.Metadata.Count > 0 ? file.Metadata : null);
            count += headers.Count;
        }
        foreach (var name in ConvertCommand.SideFiles)
        {
            string src = Path.Combine(inDir, name);
            if (File.Exists(src)) File.Copy(src, Path.Combine(outDir, name), overwrite: true);
        }
        return (count, byWeight.Count);
    }

    /// <summary>W [out, in] + Σ scale·B·A, in row blocks of about <see cref="FloatEncoding.ChunkElements"/> floats.</summary>
    static void WriteMerged(StoredTensor w, List<LoraModule> modules, Stream stream)
    {
        int k = modules[0].InFeatures, n = modules[0].OutFeatures;
        int blockRows = Math.Max(1, FloatEncoding.ChunkElements / k);
        var block = new float[(long)Math.Min(blockRows, n) * k];
        var scratch = new byte[block.Length * 4];
        var a = modules.Select(m => m.ReadA()).ToList();
        var rowScratch = new float[modules.Max(m => m.Rank) + k];
        for (int row = 0; row < n; row += blockRows)
        {
            int rows = Math.Min(blockRows, n - row);
            var span = block.AsSpan(0, rows * k);
            w.ReadFloats((long)row * k, span);
            for (int i = 0; i < modules.Count; i++) modules[i].AddDelta(row, rows, span, a[i], rowScratch);
            FloatEncoding.Write(stream, span, w.DType, scratch);
        }
    }
}
