using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>
/// Sees every named activation of a forward pass, in forward order (<c>pixel_values</c>, <c>vision.embeddings</c>,
/// <c>vision.layers.{i}</c>, <c>vision.post_layernorm</c>, <c>projector</c>, <c>text.inputs_embeds</c>,
/// <c>text.layers.{i}</c>, <c>text.norm</c>, <c>logits</c>), plus, inside each layer and only when asked for,
/// <c>….layers.{i}.attn_probs</c>, <c>….layers.{i}.attn_output</c> and <c>….layers.{i}.mlp.hidden</c>.
/// The tensor is the live buffer: changes made to it flow into the rest of the pass (activation patching).
/// It is only valid during the call.
/// </summary>
public interface IForwardObserver
{
    /// <summary>When true, attention layers report <c>vision.layers.{i}.attn_probs</c> / <c>text.layers.{i}.attn_probs</c> as [heads, nq, nk].</summary>
    bool WantsAttentionProbabilities { get; }

    /// <summary>
    /// When true, attention layers report the heads' concatenated outputs before the output projection,
    /// <c>vision.layers.{i}.attn_output</c> / <c>text.layers.{i}.attn_output</c> as [1, rows, heads · head_dim]
    /// (head h owns columns [h · head_dim, (h + 1) · head_dim): zeroing them ablates the head).
    /// </summary>
    bool WantsAttentionOutputs => false;

    /// <summary>
    /// When true, MLPs report their hidden activations as [1, rows, intermediate]: <c>vision.layers.{i}.mlp.hidden</c> = gelu(fc1(x)),
    /// <c>text.layers.{i}.mlp.hidden</c> = gelu(gate_proj(x)) · up_proj(x), the input of fc2 / down_proj.
    /// </summary>
    bool WantsMlpActivations => false;

    /// <summary>
    /// When true, prefill computes and reports <c>logits</c> for every prompt row ([1, n, vocab], as the golden traces
    /// hold them); otherwise only for the last row, which is all generation needs (a 4k-token prefix with a 257k
    /// vocabulary would otherwise take 4 GB).
    /// </summary>
    bool WantsAllLogits => false;

    /// <summary>
    /// One activation. <paramref name="step"/> is 0 for image encoding and prefill, k ≥ 1 for the k-th decode step.
    /// Shapes follow the fixtures: [1, rows, width] for activations, [1, rows, vocab] for logits.
    /// </summary>
    void OnTensor(string name, Tensor tensor, int step);
}

/// <summary>Extra terms added to Linear outputs for one request, e.g. unmerged LoRA: <c>y += scale · (x·Aᵀ)·Bᵀ</c>.</summary>
public interface ILinearAdapters
{
    /// <summary>Adds this request's delta for <paramref name="linear"/> (looked up by <see cref="Linear.ModulePath"/>) to y [m, out], given x [m, in].</summary>
    void Apply(Linear linear, ReadOnlySpan<float> x, int m, Span<float> y);
}

/// <summary>What a forward pass needs besides weights and inputs: per-request hooks and reusable scratch. Not thread-safe; one per session.</summary>
public sealed class ForwardContext
{
    /// <summary>Observer of named activations, or null (then tracing costs a null check).</summary>
    public IForwardObserver? Observer { get; set; }
    /// <summary>Active adapters for this request, or null.</summary>
    public ILinearAdapters? Adapters { get; set; }
    /// <summary>Checked before every layer, so a cancelled request stops within one layer (a long prefill included).</summary>
    public CancellationToken Cancel { get; set; }
    /// <summary>0 for image encoding and prefill, k for the k-th decode step.</summary>
    public int Step { get; set; }
    /// <summary>Scratch buffers reused across steps.</summary>
    public Workspace Scratch { get; } = new();

    /// <summary>True when attention probabilities must be computed and reported.</summary>
    public bool WantsProbs => Observer is { WantsAttentionProbabilities: true };
    /// <summary>True when attention layers must report <c>….attn_output</c>.</summary>
    public bool WantsAttentionOutputs => Observer is { WantsAttentionOutputs: true };
    /// <summary>True when MLPs must report <c>….mlp.hidden</c>.</summary>
    public bool WantsMlpActivations => Observer is { WantsMlpActivations: true };

    /// <summary>Reports <paramref name="buffer"/> viewed as [d0, d1] when an observer is attached (an attention mask, [queries, keys]).</summary>
    public void Report(string name, float[] buffer, int d0, int d1)
    {
        if (Observer is { } o) o.OnTensor(name, new Tensor(buffer, [d0, d1]), Step);
    }

    /// <summary>Reports <paramref name="buffer"/> viewed as [d0, d1, d2] when an observer is attached (no allocation otherwise).</summary>
    public void Report(string name, float[] buffer, int d0, int d1, int d2)
    {
        if (Observer is { } o) o.OnTensor(name, new Tensor(buffer, [d0, d1, d2]), Step);
    }

    /// <summary>Reports <paramref name="buffer"/> viewed as [d0, d1, d2, d3] when an observer is attached.</summary>
    public void Report(string name, float[] buffer, int d0, int d1, int d2, int d3)
    {
        if (Observer is { } o) o.OnTensor(name, new Tensor(buffer, [d0, d1, d2, d3]), Step);
    }

    /// <summary>Reports <paramref name="buffer"/> viewed as <paramref name="shape"/> (e.g. a video's pixels, 5-D) when an observer is attached.</summary>
    public void Report(string name, float[] buffer, int[] shape)
    {
        if (Observer is { } o) o.OnTensor(name, new Tensor(buffer, shape), Step);
    }
}

/// <summary>Named scratch slots of a forward pass; each grows to the largest size asked for and is then reused.</summary>
public sealed class Workspace
{
    /// <summary>The scratch slots.</summary>
    public enum Slot { Hidden, Normed, BlockOut, Q, K, V, AttnOut, Probs, Gate, Up, Patches, Logits, Count }

    readonly float[][] _buffers = new float[(int)Slot.Count][];
    int[] _positions = [];

    /// <summary>A buffer of at least <paramref name="length"/> floats for <paramref name="slot"/> (contents unspecified).</summary>
    public float[] Get(Slot slot, int length)
    {
        ref var b = ref _buffers[(int)slot];
        if (b == null || b.Length < length) b = new float[Math.Max(length, (b?.Length ?? 0) * 2)];
        return b;
    }

    /// <summary>Exactly <paramref name="length"/> floats of <paramref name="slot"/>'s buffer.</summary>
    public Span<float> Span(Slot slot, int length) => Get(slot, length).AsSpan(0, length);

    /// <summary>
    /// RoPE positions of <paramref name="length"/> new tokens after <paramref name="cached"/> ones: <c>firstPosition + cached + i</c>
    /// (HF numbers from 0, PaliGemma from 1).
    /// </summary>
    public ReadOnlySpan<int> Positions(int cached, int length, int firstPosition)
    {
        if (_positions.Length < length) _positions = new int[Math.Max(length, _positions.Length * 2)];
        for (int i = 0; i < length; i++) _positions[i] = firstPosition + cached + i;
        return _positions.AsSpan(0, length);
    }
}
