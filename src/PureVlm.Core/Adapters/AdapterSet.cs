using PureVlm.Kernels;
using PureVlm.Models;

namespace PureVlm.Adapters;

/// <summary>
/// The LoRA adapters active for one request, applied unmerged: each adapted Linear adds
/// <c>Scale · (x·Aᵀ)·Bᵀ</c> per adapter (two adapters on one module both add, as PEFT does with several active adapters).
/// Base weights are untouched. Holds its own scratch, so use one instance per session (not thread-safe);
/// the <see cref="LoraAdapter"/>s themselves are shared freely between sets and threads.
/// </summary>
public sealed class AdapterSet : ILinearAdapters
{
    readonly LoraAdapter[] _adapters;
    float[] _h = [];     // [m, r]: x·Aᵀ
    float[] _delta = []; // [m, out]: (x·Aᵀ)·Bᵀ

    /// <summary>The active adapters, in the order given.</summary>
    public IReadOnlyList<LoraAdapter> Adapters => _adapters;

    /// <summary>A set of adapters loaded for the same base model; an adapter may appear once.</summary>
    public AdapterSet(IEnumerable<LoraAdapter> adapters)
    {
        _adapters = adapters.ToArray();
        for (int i = 0; i < _adapters.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(_adapters[i], nameof(adapters));
            if (!ReferenceEquals(_adapters[i].BaseModel, _adapters[0].BaseModel))
                throw new ArgumentException($"adapters '{_adapters[0].Name}' and '{_adapters[i].Name}' were loaded for different base models", nameof(adapters));
            for (int j = 0; j < i; j++)
                if (ReferenceEquals(_adapters[i], _adapters[j]))
                    throw new ArgumentException($"adapter '{_adapters[i].Name}' is given twice", nameof(adapters));
        }
    }

    /// <summary>A set of the given adapters.</summary>
    public AdapterSet(params LoraAdapter[] adapters) : this((IEnumerable<LoraAdapter>)adapters) { }

    /// <summary>
    /// The set a request asks for by adapter name (<see cref="LoraAdapter.Name"/>, ordinal) among <paramref name="loaded"/>;
    /// null when <paramref name="names"/> is empty (the base model). An unknown name is an error listing the loaded ones.
    /// </summary>
    public static AdapterSet? Select(IEnumerable<LoraAdapter> loaded, IEnumerable<string> names)
    {
        var byName = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
        foreach (var a in loaded)
            if (!byName.TryAdd(a.Name, a)) throw new ArgumentException($"two loaded adapters are named '{a.Name}'", nameof(loaded));
        var chosen = names.Select(n => byName.TryGetValue(n, out var a) ? a
            : throw new ArgumentException($"no loaded adapter is named '{n}' (loaded: {(byName.Count == 0 ? "none" : string.Join(", ", byName.Keys))})", nameof(names))).ToArray();
        return chosen.Length == 0 ? null : new AdapterSet(chosen);
    }

    /// <inheritdoc/>
    public void Apply(Linear linear, ReadOnlySpan<float> x, int m, Span<float> y)
    {
        foreach (var adapter in _adapters)
        {
            if (!adapter.TryGetModule(linear.ModulePath, out var module)) continue;
            if (module.InFeatures != linear.InFeatures || module.OutFeatures != linear.OutFeatures)
                throw new InvalidOperationException($"adapter '{adapter.Name}' module '{linear.ModulePath}' is [{module.OutFeatures}, {module.InFeatures}], the Linear is [{linear.OutFeatures}, {linear.InFeatures}]: the adapter was loaded for another model");
            int r = module.Rank, n = module.OutFeatures;
            var h = Grow(ref _h, m * r);
            var delta = Grow(ref _delta, m * n);
            Gemm.Linear(x, m, module.A, default, h);     // h [m, r] = x [m, in] · Aᵀ
            ElementWise.Scale(h, module.Scale);
            Gemm.Linear(h, m, module.B, default, delta); // delta [m, out] = h · Bᵀ
            ElementWise.Add(y[..(m * n)], delta);
        }
    }

    static Span<float> Grow(ref float[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new float[Math.Max(length, buffer.Length * 2)];
        return buffer.AsSpan(0, length);
    }
}
