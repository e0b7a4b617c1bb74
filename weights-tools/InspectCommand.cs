using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.WeightsTools;

/// <summary><c>weights-tools inspect PATH</c>: one line per tensor, then totals.</summary>
public static class InspectCommand
{
    const string Usage = """
        usage: weights-tools inspect PATH [--revision REV]

        PATH is a .safetensors file or a checkpoint directory (model.safetensors or a sharded
        model.safetensors.index.json). Prints every tensor (name, dtype, shape, bytes, file) and then the
        tensor count, total bytes and parameter count. Every header is validated; a malformed file exits 1.
        A checkpoint folder may also be given as a Hugging Face repo id (google/paligemma2-3b-pt-224), found offline
        in the local hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) at --revision REV
        (a branch, tag or commit; default main).
        """;

    /// <summary>Runs the command; see <see cref="Usage"/>.</summary>
    public static int Run(string[] args, TextWriter stdout)
    {
        var o = new Options(args, "--revision");
        if (o.Help) { stdout.WriteLine(Usage); return 0; }
        if (o.Positional.Count != 1) throw new UsageException("expected exactly one PATH");
        using var ckpt = Checkpoint.Open(o.Model(o.Positional[0]));
        long bytes = 0, parameters = 0, count = 0;
        var byDType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var file in ckpt.Files)
        {
            string fileName = Path.GetFileName(file.Path);
            foreach (var t in file.Tensors)
            {
                stdout.WriteLine($"{t.Name}\t{t.DType.Name()}\t{t.ShapeString}\t{t.ByteLength}\t{fileName}");
                bytes += t.ByteLength;
                parameters += t.ElementCount;
                count++;
                byDType[t.DType.Name()] = byDType.GetValueOrDefault(t.DType.Name()) + t.ElementCount;
            }
        }
        stdout.WriteLine($"files: {ckpt.Files.Count}");
        stdout.WriteLine($"tensors: {count}");
        stdout.WriteLine($"bytes: {bytes}");
        stdout.WriteLine($"parameters: {parameters}");
        stdout.WriteLine($"parameters by dtype: {string.Join(", ", byDType.Select(kv => $"{kv.Key} {kv.Value}"))}");
        return 0;
    }
}
