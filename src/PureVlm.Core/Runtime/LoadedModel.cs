using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Runtime;

/// <summary>
/// A loaded, immutable model: config + memory-mapped weights + the module tree. Thread-safe: every mutable thing
/// (KV cache, scratch, observer, adapters) lives in an <see cref="InferenceSession"/>; create one per request.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    readonly Checkpoint? _owned;

    /// <summary>The parsed config.json.</summary>
    public ModelConfig Config { get; }
    /// <summary>The weights.</summary>
    public Checkpoint Checkpoint { get; }
    /// <summary>The module tree, built by the family of <c>model_type</c> (<see cref="ModelFamilies"/>).</summary>
    public IGenerativeModel Modules { get; }
    /// <summary>The model with its vision tower, or null for a text-only LM.</summary>
    public IVisionLanguageModel? VisionLanguage => Modules as IVisionLanguageModel;

    LoadedModel(ModelConfig config, Checkpoint checkpoint, bool owns, QuantizationRecipe? quantize)
    {
        Config = config; Checkpoint = checkpoint; _owned = owns ? checkpoint : null;
        Modules = ModelFamilies.Build(config, checkpoint, quantize);
    }

    /// <summary>
    /// Loads <c>config.json</c> and the safetensors of a HF model directory, or of a repo id's snapshot in the local
    /// Hugging Face cache at <c>main</c> (<see cref="HfCache.ResolveModel"/> picks another revision).
    /// </summary>
    /// <remarks>
    /// <paramref name="quantize"/> quantizes the float Linear weights and token embedding as they load (MLX affine
    /// layout, <see cref="QuantizationRecipe"/>); checkpoints already quantized by MLX load quantized either way.
    /// </remarks>
    public static LoadedModel Load(string modelDir, QuantizationRecipe? quantize = null)
    {
        string directory = HfCache.ResolveModel(modelDir);
        return Load(Path.Combine(directory, "config.json"), directory, quantize);
    }

    /// <summary>Loads a config and a weights file or directory (e.g. a fixture's <c>model-bf16.safetensors</c>).</summary>
    public static LoadedModel Load(string configPath, string weightsPath, QuantizationRecipe? quantize = null)
    {
        var config = ModelConfig.Load(configPath);
        var checkpoint = Checkpoint.Open(weightsPath);
        try
        {
            var model = new LoadedModel(config, checkpoint, owns: true, quantize?.Validate());
            checkpoint.StartReadAhead();
            return model;
        }
        catch { checkpoint.Dispose(); throw; }
    }

    /// <summary>Builds a model over an open checkpoint, which the caller keeps and disposes.</summary>
    public static LoadedModel Load(ModelConfig config, Checkpoint checkpoint, QuantizationRecipe? quantize = null) =>
        new(config, checkpoint, owns: false, quantize?.Validate());

    /// <summary>A new session (KV cache, scratch) for one request.</summary>
    public InferenceSession CreateSession(SessionOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new(this, options ?? new SessionOptions());
    }

    /// <summary>
    /// Unmaps the weights if this model opened them. Sessions must have finished: their kernels read the mapped
    /// memory directly (<see cref="VlmModel"/> waits for its running requests before it disposes its model).
    /// </summary>
    public void Dispose()
    {
        _disposed = true;
        _owned?.Dispose();
    }

    volatile bool _disposed;
}

/// <summary>Per-request settings of an <see cref="InferenceSession"/>.</summary>
public sealed record SessionOptions
{
    /// <summary>Most tokens the session may hold; null means <c>max_position_embeddings</c> (larger values are capped to it). The KV cache still grows only as needed.</summary>
    public int? MaxContextLength { get; init; }
    /// <summary>Receives named activations (glass box), or null.</summary>
    public IForwardObserver? Observer { get; init; }
    /// <summary>Adapters (e.g. LoRA) applied to this request's Linear layers, or null.</summary>
    public ILinearAdapters? Adapters { get; init; }
}
