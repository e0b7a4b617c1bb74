using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Inspection;

/// <summary>
/// What generation step k left behind about the row that produced token k (the last prefill row for k = 0, the only
/// row of decode step k otherwise).
/// </summary>
/// <param name="Logits">The logits of that row [vocab].</param>
/// <param name="Residual">Per decoder layer i, that row of <c>text.layers.{i}</c> [hidden] (the residual stream after layer i).</param>
/// <param name="ImageAttention">Per decoder layer i, that row's attention to each image-token key, mean over heads [image tokens].</param>
public sealed record StepRecord(float[] Logits, float[][] Residual, float[][] ImageAttention);

/// <summary>
/// An observer for <see cref="ExplainReport"/>: for every step, copies the logits, each decoder layer's residual stream and
/// each decoder layer's head-averaged attention to the image tokens, for the row that produced the step's token only.
/// The image tokens are the first <c>imageTokens</c> positions, as in every PaliGemma prompt.
/// </summary>
public sealed class ExplainRecorder : IForwardObserver
{
    readonly int _imageTokens;
    readonly Dictionary<string, (int Layer, bool IsProbs)> _points = new(StringComparer.Ordinal);
    readonly List<StepRecord> _steps = new();
    readonly int _layers;

    /// <summary>A recorder for a decoder of <paramref name="textLayers"/> layers and a prompt that starts with <paramref name="imageTokens"/> image tokens.</summary>
    public ExplainRecorder(int textLayers, int imageTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(textLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(imageTokens);
        _layers = textLayers;
        _imageTokens = imageTokens;
        for (int i = 0; i < textLayers; i++)
        {
            _points[$"text.layers.{i}"] = (i, false);
            _points[$"text.layers.{i}.attn_probs"] = (i, true);
        }
    }

    /// <inheritdoc/>
    public bool WantsAttentionProbabilities => true;

    /// <summary>One record per step seen, in step order.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <inheritdoc/>
    public void OnTensor(string name, Tensor tensor, int step)
    {
        if (name == "logits")
        {
            var current = Current(step);
            _steps[step] = current with { Logits = LastRow(tensor).ToArray() };
            return;
        }
        if (!_points.TryGetValue(name, out var point)) return;
        var record = Current(step);
        if (!point.IsProbs) { record.Residual[point.Layer] = LastRow(tensor).ToArray(); return; }

        // tensor: [heads, nq, nk]; keys [0, image tokens) are the image.
        int heads = tensor.Shape[0], nq = tensor.Shape[1], nk = tensor.Shape[2];
        var probs = tensor.Contiguous().Span;
        var mean = new float[_imageTokens];
        for (int h = 0; h < heads; h++)
        {
            var row = probs.Slice((h * nq + nq - 1) * nk, _imageTokens);
            for (int j = 0; j < _imageTokens; j++) mean[j] += row[j] / heads;
        }
        record.ImageAttention[point.Layer] = mean;
    }

    static ReadOnlySpan<float> LastRow(Tensor tensor)
    {
        int width = tensor.Shape[^1];
        return tensor.Contiguous().Span[^width..];
    }

    StepRecord Current(int step)
    {
        if (step == _steps.Count) _steps.Add(new StepRecord([], new float[_layers][], new float[_layers][]));
        if (step != _steps.Count - 1) throw new InvalidOperationException($"step {step} reported after step {_steps.Count - 1}; one recorder per request");
        return _steps[step];
    }
}
