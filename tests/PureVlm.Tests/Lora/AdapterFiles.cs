using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Tests.Lora;

/// <summary>Writes edited copies of the fixture adapters (and checkpoints) into a scratch directory.</summary>
static class AdapterFiles
{
    /// <summary>A tensor to write: name, dtype, shape, bytes.</summary>
    public record struct Entry(string Name, DType DType, long[] Shape, byte[] Bytes);

    /// <summary>The tensors of a safetensors file, copied.</summary>
    public static List<Entry> Read(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.Tensors.Select(t => new Entry(t.Name, t.DType, t.Shape, t.Bytes.ToArray())).ToList();
    }

    public static void Write(string path, IEnumerable<Entry> tensors) =>
        SafeTensorsWriter.Write(path, tensors.Select(e => (e.Name, e.DType, e.Shape, (ReadOnlyMemory<byte>)e.Bytes)));

    /// <summary>
    /// Copies fixture adapter <paramref name="adapter"/> into <paramref name="outDir"/>, letting <paramref name="config"/> edit
    /// adapter_config.json and <paramref name="tensors"/> edit the tensor list.
    /// </summary>
    public static string Copy(string fixture, string adapter, string outDir, Action<JsonObject>? config = null, Func<List<Entry>, IEnumerable<Entry>>? tensors = null)
    {
        string src = LoraGoldens.AdapterDir(fixture, adapter);
        Directory.CreateDirectory(outDir);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(src, "adapter_config.json")))!.AsObject();
        config?.Invoke(json);
        File.WriteAllText(Path.Combine(outDir, "adapter_config.json"), json.ToJsonString());
        var list = Read(Path.Combine(src, "adapter_model.safetensors"));
        Write(Path.Combine(outDir, "adapter_model.safetensors"), tensors == null ? list : tensors(list));
        return outDir;
    }

    /// <summary>A PaliGemma hub name (<c>language_model.model.…</c>) in transformers ≥ 4.52 form (<c>model.language_model.…</c>).</summary>
    public static string ToNewLayout(string hubName) =>
        hubName.StartsWith("language_model.model.") ? "model.language_model." + hubName["language_model.model.".Length..] : "model." + hubName;

    /// <summary>SHA-256 of every file under <paramref name="dir"/>, by relative path.</summary>
    public static Dictionary<string, string> Hashes(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(
            f => Path.GetRelativePath(dir, f),
            f => System.Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))));
}
