using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Adapters;

/// <summary>Which part of a vision-language model an adapter changes.</summary>
public enum AdapterModality
{
    /// <summary>Only the vision tower and/or the multimodal projector.</summary>
    Vision,
    /// <summary>Only the language model (decoder and LM head).</summary>
    Text,
    /// <summary>Both.</summary>
    Both,
}

/// <summary>One adapted Linear: <c>y += Scale · (x·Aᵀ)·Bᵀ</c>, i.e. <c>W' = W + Scale · B·A</c>.</summary>
public sealed unsafe class LoraModule
{
    readonly byte[] _a, _b; // pinned copies of lora_A / lora_B in their file dtype; A and B point into them

    /// <summary>The module's name in the base checkpoint (<see cref="Models.Linear.ModulePath"/>).</summary>
    public string ModulePath { get; }
    /// <summary>The module's name in the adapter file (without <c>base_model.model.</c>).</summary>
    public string AdapterName { get; }
    /// <summary>Rank r (rows of A).</summary>
    public int Rank { get; }
    /// <summary>in_features.</summary>
    public int InFeatures { get; }
    /// <summary>out_features.</summary>
    public int OutFeatures { get; }
    /// <summary>alpha / r, or alpha / √r with use_rslora, rounded to float32 (as PEFT multiplies a float32 tensor by it).</summary>
    public float Scale { get; }
    /// <summary>lora_A [r, in] (F32, BF16 or F16, as stored).</summary>
    public StoredTensor A { get; }
    /// <summary>lora_B [out, r].</summary>
    public StoredTensor B { get; }
    /// <summary>The base weight [out, in] this module adapts.</summary>
    public IWeightMatrix BaseWeight { get; }

    internal LoraModule(string modulePath, string adapterName, float scale, StoredTensor a, StoredTensor b, IWeightMatrix baseWeight)
    {
        ModulePath = modulePath; AdapterName = adapterName; Scale = scale; BaseWeight = baseWeight;
        Rank = (int)a.Shape[0]; InFeatures = (int)a.Shape[1]; OutFeatures = (int)b.Shape[0];
        (_a, A) = PinnedCopy(a);
        (_b, B) = PinnedCopy(b);
    }

    static (byte[] Bytes, StoredTensor View) PinnedCopy(StoredTensor t)
    {
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)t.ByteLength), pinned: true);
        t.Bytes.CopyTo(bytes);
        var p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(bytes));
        return (bytes, new StoredTensor(t.Name, t.DType, t.Shape, p, bytes.Length));
    }

    /// <summary>
    /// Merging: adds <c>Scale · (B·A)[firstRow .. firstRow + rows)</c> to <paramref name="w"/> [rows, in], in float32.
    /// <paramref name="a"/> is <see cref="ReadA"/>; <paramref name="scratch"/> holds at least r + in floats.
    /// </summary>
    public void AddDelta(long firstRow, int rows, Span<float> w, ReadOnlySpan<float> a, Span<float> scratch)
    {
        int k = InFeatures, r = Rank;
        if (w.Length < rows * k || a.Length != r * k || scratch.Length < r + k || firstRow < 0 || firstRow + rows > OutFeatures)
            throw new ArgumentException($"{ModulePath}: merge of rows [{firstRow}, {firstRow + rows}) of [{OutFeatures}, {k}] (rank {r}) got buffers of {w.Length}, {a.Length}, {scratch.Length}");
        var bRow = scratch[..r];
        var delta = scratch.Slice(r, k);
        for (int i = 0; i < rows; i++)
        {
            B.ReadFloats((firstRow + i) * r, bRow);
            delta.Clear();
            for (int j = 0; j < r; j++) TensorPrimitives.MultiplyAdd(a.Slice(j * k, k), bRow[j], delta, delta); // (B·A)[row] = Σ_j B[row, j] · A[j]
            var wRow = w.Slice(i * k, k);
            TensorPrimitives.MultiplyAdd(delta, Scale, wRow, wRow);
        }
    }

    /// <summary>lora_A [r, in] as float32, for <see cref="AddDelta"/>.</summary>
    public float[] ReadA()
    {
        var a = new float[(long)Rank * InFeatures];
        A.ReadFloats(0, a);
        return a;
    }
}

/// <summary>
/// A Hugging Face PEFT LoRA adapter (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>) resolved against one
/// base model: each adapted Linear's A, B and scale, keyed by the base checkpoint's module name. Immutable and
/// thread-safe; activate it for a request through an <see cref="AdapterSet"/>. The adapter files are read once and never written.
/// </summary>
public sealed class LoraAdapter
{
    const string KeyPrefix = "base_model.model.";
    const string AKey = ".lora_A.weight", BKey = ".lora_B.weight";

    readonly Dictionary<string, LoraModule> _byPath;

    /// <summary>A name for the adapter (by default its directory's name).</summary>
    public string Name { get; }
    /// <summary>The directory it was loaded from.</summary>
    public string Directory { get; }
    /// <summary>The parsed adapter_config.json.</summary>
    public LoraConfig Config { get; }
    /// <summary>The base model it was resolved against.</summary>
    public LoadedModel BaseModel { get; }
    /// <summary>The adapted modules, in the base model's forward order.</summary>
    public IReadOnlyList<LoraModule> Modules { get; }
    /// <summary>The adapted modules' base names (<see cref="Models.Linear.ModulePath"/>), in the base model's forward order.</summary>
    public IReadOnlyList<string> TargetModules { get; }
    /// <summary>Vision when every target is in the vision tower or projector, Text when every target is in the language model.</summary>
    public AdapterModality Modality { get; }
    /// <summary>True when the file names modules as transformers ≥ 4.52 does (<c>model.language_model.…</c>).</summary>
    public bool UsesNewKeyLayout { get; }

    LoraAdapter(string name, string dir, LoraConfig config, LoadedModel baseModel, List<LoraModule> modules, bool newLayout, AdapterModality modality)
    {
        Name = name; Directory = dir; Config = config; BaseModel = baseModel; UsesNewKeyLayout = newLayout; Modality = modality;
        Modules = modules;
        TargetModules = modules.Select(m => m.ModulePath).ToList();
        _byPath = modules.ToDictionary(m => m.ModulePath, StringComparer.Ordinal);
    }

    /// <summary>The adapted module whose base name is <paramref name="modulePath"/>, if any (O(1)).</summary>
    public bool TryGetModule(string modulePath, out LoraModule module) => _byPath.TryGetValue(modulePath, out module!);

    /// <summary>
    /// Loads the adapter in <paramref name="dir"/> for <paramref name="baseModel"/>, matching its module names against the
    /// Linears the base's module tree lists. For a vision-language base (PaliGemma, LLaVA) they may use either HF key
    /// layout, whatever the base uses. Errors name the file and the field, module or tensor at fault.
    /// </summary>
    public static LoraAdapter Load(string dir, LoadedModel baseModel, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        if (!System.IO.Directory.Exists(dir)) throw new InvalidModelFileException($"{dir}: adapter directory not found");
        var config = LoraConfig.Load(Path.Combine(dir, "adapter_config.json"));
        string weightsPath = Path.Combine(dir, "adapter_model.safetensors");
        if (!File.Exists(weightsPath))
            throw new InvalidModelFileException(File.Exists(Path.Combine(dir, "adapter_model.bin"))
                ? $"{dir}: only adapter_model.bin (PyTorch pickle) found; convert it to adapter_model.safetensors (pickles are not read)"
                : $"{weightsPath}: file not found");
        using var file = SafeTensorsFile.Open(weightsPath);
        var pairs = ReadPairs(file, config);
        var linears = BaseLinears.Of(baseModel);
        bool newLayout = DetectLayout(pairs.Keys, linears, weightsPath, baseModel.VisionLanguage != null);

        var modules = new List<LoraModule>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        bool vision = false, text = false;
        foreach (var linear in linears)
        {
            string adapterName = newLayout ? linear.NewName : linear.HubName;
            bool targeted = config.Targets(adapterName, linear.IsOutputLayer);
            bool hasTensors = pairs.TryGetValue(adapterName, out var pair);
            if (!targeted && !hasTensors) continue;
            if (!hasTensors)
                throw new InvalidModelFileException($"{weightsPath}: target_modules selects module '{adapterName}' but the file has no '{KeyPrefix}{adapterName}{AKey}' / '{BKey[1..]}'");
            if (!targeted)
                throw new InvalidModelFileException($"{weightsPath}: tensors for module '{adapterName}' but target_modules in {config.Source} does not select it");
            used.Add(adapterName);
            modules.Add(Resolve(weightsPath, config, linear, adapterName, pair.A, pair.B));
            if (linear.IsVision) vision = true; else text = true;
        }
        foreach (var module in pairs.Keys)
            if (!used.Contains(module))
                throw new InvalidModelFileException($"{weightsPath}: tensors for module '{module}', which is not a Linear of the base model");

        var modality = vision && text ? AdapterModality.Both : vision ? AdapterModality.Vision : AdapterModality.Text;
        string fullDir = Path.GetFullPath(dir);
        return new LoraAdapter(name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(fullDir)), fullDir, config, baseModel, modules, newLayout, modality);
    }

    /// <summary>Module name (adapter layout) → (lora_A, lora_B); every tensor must be one of the pair.</summary>
    static Dictionary<string, (StoredTensor A, StoredTensor B)> ReadPairs(SafeTensorsFile file, LoraConfig config)
    {
        var a = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        var b = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            bool isA = t.Name.EndsWith(AKey, StringComparison.Ordinal), isB = t.Name.EndsWith(BKey, StringComparison.Ordinal);
            if (!t.Name.StartsWith(KeyPrefix, StringComparison.Ordinal) || !(isA || isB))
                throw new InvalidModelFileException(config.ModulesToSave.Count > 0
                    ? $"{file.Path}: tensor '{t.Name}' is not a lora_A/lora_B weight; modules_to_save ({string.Join(", ", config.ModulesToSave)}) in {config.Source} replaces whole modules, which is not supported"
                    : $"{file.Path}: tensor '{t.Name}' is not a LoRA weight (expected {KeyPrefix}<module>{AKey} or {BKey[1..]})");
            string module = t.Name[KeyPrefix.Length..^AKey.Length];
            if (t.DType is not (DType.F32 or DType.BF16 or DType.F16))
                throw new InvalidModelFileException($"{file.Path}: tensor '{t.Name}' has dtype {t.DType.Name()}, expected F32, BF16 or F16");
            (isA ? a : b)[module] = t;
        }
        var pairs = new Dictionary<string, (StoredTensor, StoredTensor)>(StringComparer.Ordinal);
        foreach (var (module, ta) in a)
            pairs[module] = b.TryGetValue(module, out var tb) ? (ta, tb)
                : throw new InvalidModelFileException($"{file.Path}: module '{module}' has lora_A but no '{KeyPrefix}{module}{BKey}'");
        foreach (var module in b.Keys)
            if (!a.ContainsKey(module)) throw new InvalidModelFileException($"{file.Path}: module '{module}' has lora_B but no '{KeyPrefix}{module}{AKey}'");
        if (pairs.Count == 0) throw new InvalidModelFileException($"{file.Path}: no LoRA tensors ({KeyPrefix}<module>{AKey})");
        return pairs;
    }

    /// <summary>True when the file uses transformers ≥ 4.52 names; every module must be a Linear of the base under one layout.</summary>
    static bool DetectLayout(IEnumerable<string> modules, List<BaseLinear> linears, string path, bool renamed)
    {
        var hub = linears.Select(l => l.HubName).ToHashSet(StringComparer.Ordinal);
        var newer = linears.Select(l => l.NewName).ToHashSet(StringComparer.Ordinal);
        string? hubExample = null, newExample = null;
        foreach (var m in modules)
        {
            if (hub.Contains(m)) hubExample ??= m;
            else if (newer.Contains(m)) newExample ??= m;
            else throw new InvalidModelFileException($"{path}: tensors for module '{m}', which is not a Linear of the base model"
                + (renamed ? " under either key layout (language_model.model.… or model.language_model.…)" : ""));
        }
        if (hubExample != null && newExample != null)
            throw new InvalidModelFileException($"{path}: mixes key layouts ('{hubExample}' and '{newExample}'); expected one");
        return newExample != null;
    }

    static LoraModule Resolve(string path, LoraConfig config, BaseLinear linear, string name, StoredTensor a, StoredTensor b)
    {
        int r = config.RankOf(name);
        string rFrom = config.RankPattern.Count > 0 ? "r / rank_pattern" : "r";
        if (a.Rank != 2 || a.Shape[0] != r || a.Shape[1] != linear.InFeatures)
            throw new InvalidModelFileException($"{path}: module '{name}': lora_A has shape {a.ShapeString}, expected [{r}, {linear.InFeatures}] ({rFrom} = {r}, base in_features {linear.InFeatures})");
        if (b.Rank != 2 || b.Shape[0] != linear.OutFeatures || b.Shape[1] != r)
            throw new InvalidModelFileException($"{path}: module '{name}': lora_B has shape {b.ShapeString}, expected [{linear.OutFeatures}, {r}] (base out_features {linear.OutFeatures}, {rFrom} = {r})");
        return new LoraModule(linear.Path, name, (float)config.ScaleOf(name), a, b, linear.Weight);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name} ({Modality}, {Modules.Count} modules)";
}
