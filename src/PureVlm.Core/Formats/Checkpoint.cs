using System.Text.Json;
using PureVlm.Tensors;

namespace PureVlm.Formats;

/// <summary>
/// The tensors of a Hugging Face checkpoint: one .safetensors file, a directory with
/// <c>model.safetensors</c>, or a directory sharded through <c>model.safetensors.index.json</c>.
/// All files stay memory-mapped until disposed.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    readonly List<SafeTensorsFile> _files = new();
    readonly Dictionary<string, StoredTensor> _tensors = new(StringComparer.Ordinal);
    // The order in which the model asked for its tensors while it was built: the order a forward pass reads them.
    readonly List<StoredTensor> _firstUse = new();
    readonly HashSet<string> _used = new(StringComparer.Ordinal);
    // Tensors read with file reads and kept elsewhere (quantized panels): the read-ahead leaves them alone.
    readonly HashSet<string> _copied = new(StringComparer.Ordinal);
    readonly List<IDisposable> _derived = new();
    readonly List<object> _kept = new();
    Thread? _readAhead;
    volatile bool _stopReadAhead;

    /// <summary>The file or directory this was opened from.</summary>
    public string Path { get; }
    /// <summary>The mapped files, in load order.</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;
    /// <summary>Every tensor, shards in order, each in header order.</summary>
    public IEnumerable<StoredTensor> Tensors => _files.SelectMany(f => f.Tensors);
    /// <summary>Tensor names.</summary>
    public IEnumerable<string> Names => _files.SelectMany(f => f.Names);

    Checkpoint(string path) => Path = path;

    /// <summary>Opens a checkpoint file or directory; <paramref name="progress"/> gets (files done, files total).</summary>
    public static Checkpoint Open(string path, Action<int, int>? progress = null)
    {
        var ckpt = new Checkpoint(path);
        try
        {
            var files = ResolveFiles(path, out var index);
            foreach (var file in files)
            {
                var st = SafeTensorsFile.Open(file);
                ckpt._files.Add(st);
                foreach (var t in st.Tensors)
                {
                    if (!ckpt._tensors.TryAdd(t.Name, t))
                        throw new InvalidModelFileException($"{file}: tensor '{t.Name}' is also in an earlier shard");
                    if (index != null && index.TryGetValue(t.Name, out var shard) && shard != System.IO.Path.GetFileName(file))
                        throw new InvalidModelFileException($"{file}: tensor '{t.Name}' is listed in the index under {shard}");
                }
                progress?.Invoke(ckpt._files.Count, files.Count);
            }
            if (index != null)
                foreach (var name in index.Keys)
                    if (!ckpt._tensors.ContainsKey(name))
                        throw new InvalidModelFileException($"{path}: tensor '{name}' is in model.safetensors.index.json but in none of its shards");
            return ckpt;
        }
        catch { ckpt.Dispose(); throw; }
    }

    /// <summary>Name of the index file of a sharded checkpoint.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    static List<string> ResolveFiles(string path, out Dictionary<string, string>? index)
    {
        index = null;
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new InvalidModelFileException($"{path}: no such file or directory");
        string indexPath = System.IO.Path.Combine(path, IndexFileName);
        if (File.Exists(indexPath))
        {
            index = ReadIndex(indexPath);
            return index.Values.Distinct().OrderBy(s => s, StringComparer.Ordinal).Select(s => System.IO.Path.Combine(path, s)).ToList();
        }
        string single = System.IO.Path.Combine(path, "model.safetensors");
        if (File.Exists(single)) return [single];
        throw new InvalidModelFileException($"{path}: neither model.safetensors nor {IndexFileName} found");
    }

    /// <summary>Reads the <c>weight_map</c> of a sharded checkpoint's index: tensor name to shard file name.</summary>
    public static Dictionary<string, string> ReadIndex(string indexPath)
    {
        long length = LinkedFile.Length(indexPath) ?? throw new InvalidModelFileException($"{indexPath}: file not found");
        if (length > SafeTensorsFile.MaxHeaderBytes)
            throw new InvalidModelFileException($"{indexPath}: {length} bytes, more than the {SafeTensorsFile.MaxHeaderBytes}-byte limit for an index");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(indexPath), new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e) { throw new InvalidModelFileException($"{indexPath}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidModelFileException($"{indexPath}: missing object 'weight_map'");
            var index = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var e in map.EnumerateObject())
            {
                string shard = e.Value.ValueKind == JsonValueKind.String ? e.Value.GetString()! : "";
                if (shard.Length == 0 || shard is "." or ".." || shard != System.IO.Path.GetFileName(shard))
                    throw new InvalidModelFileException($"{indexPath}: tensor '{e.Name}' maps to {JsonValueText.Show(e.Value)}, expected a file name in the same directory");
                if (!index.TryAdd(e.Name, shard))
                    throw new InvalidModelFileException($"{indexPath}: tensor '{e.Name}' appears twice in weight_map");
            }
            return index;
        }
    }

    /// <summary>True when a tensor of that name exists.</summary>
    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>Looks up a tensor.</summary>
    public bool TryGet(string name, out StoredTensor tensor)
    {
        if (!_tensors.TryGetValue(name, out tensor!)) return false;
        lock (_firstUse) if (_used.Add(name)) _firstUse.Add(tensor);
        return true;
    }

    /// <summary>
    /// Looks up a tensor whose bytes will be copied out with <see cref="Read"/> (never through the mapping): it counts
    /// neither as used in place nor for the read-ahead.
    /// </summary>
    public bool TryGetForCopy(string name, out StoredTensor tensor)
    {
        if (!_tensors.TryGetValue(name, out tensor!)) return false;
        lock (_firstUse) _copied.Add(name);
        return true;
    }

    /// <summary>Copies bytes [offset, offset + dst.Length) of a tensor of this checkpoint with a file read.</summary>
    public void Read(StoredTensor t, long offset, Span<byte> dst)
    {
        foreach (var f in _files)
            if (f.Holds(t)) { f.Read(t, offset, dst); return; }
        throw new ArgumentException($"{Path}: tensor '{t.Name}' is not in this checkpoint", nameof(t));
    }

    /// <summary>
    /// Elements [start, start + dst.Length) of a float tensor (F32, BF16 or F16) as float32, read with a file read into
    /// <paramref name="scratch"/> (at least dst.Length × the dtype's size bytes) rather than through the mapping.
    /// </summary>
    public void ReadFloats(StoredTensor t, long start, Span<float> dst, byte[] scratch)
    {
        if (t.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"{Path}: tensor '{t.Name}' is {t.DType.Name()}, not a float tensor", nameof(t));
        int size = t.DType.Size();
        var raw = scratch.AsSpan(0, dst.Length * size);
        Read(t, start * size, raw);
        PureVlm.Tensors.Convert.ToF32(t.DType, raw, dst);
    }

    /// <summary>Keeps a pinned array that views built from these tensors point into (a reordered conv kernel) alive as long as the checkpoint.</summary>
    public T KeepAlive<T>(T value) where T : class
    {
        lock (_kept) _kept.Add(value);
        return value;
    }

    /// <summary>Keeps something built from these tensors (quantized panels) alive until <see cref="Dispose"/>, which disposes it.</summary>
    public T Adopt<T>(T derived) where T : IDisposable
    {
        lock (_derived) _derived.Add(derived);
        return derived;
    }

    /// <summary>The tensor of that name; a missing tensor is an error naming it and the checkpoint.</summary>
    public StoredTensor this[string name] => TryGet(name, out var t)
        ? t : throw new InvalidModelFileException($"{Path}: missing tensor '{name}'");

    /// <summary>
    /// Starts touching every mapped page, on a background thread, in the order the model first asked for its tensors
    /// (then any others): on a cold page cache the disk reads run ahead of the layers that need them instead of inside
    /// them, and the page faults leave the compute threads. Stops at <see cref="Dispose"/>. Calling it again does nothing.
    /// </summary>
    public void StartReadAhead()
    {
        if (_readAhead != null) return;
        StoredTensor[] order;
        lock (_firstUse) order = [.. _firstUse.Where(t => !_copied.Contains(t.Name)), .. Tensors.Where(t => !_used.Contains(t.Name) && !_copied.Contains(t.Name))];
        _readAhead = new Thread(() => Touch(order)) { IsBackground = true, Priority = ThreadPriority.BelowNormal, Name = "weights read-ahead" };
        _readAhead.Start();
    }

    unsafe void Touch(StoredTensor[] order)
    {
        const int page = 4096;
        int sink = 0;
        foreach (var t in order)
            for (long offset = 0; offset < t.ByteLength; offset += page)
            {
                if (_stopReadAhead) return;
                sink += t.Pointer[offset];
            }
        GC.KeepAlive(sink);
    }

    /// <summary>Unmaps every file (after stopping the read-ahead, which reads them).</summary>
    public void Dispose()
    {
        _stopReadAhead = true;
        _readAhead?.Join();
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        lock (_derived) foreach (var d in _derived) d.Dispose();
        _derived.Clear();
        lock (_kept) _kept.Clear();
    }
}
