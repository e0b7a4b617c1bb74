using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Inspection;

/// <summary>
/// Records a forward pass for comparison with a reference: a copy of every named activation of the image encoding and
/// prefill (step 0), in forward order, plus the last row of the logits of every step (what greedy decoding argmaxes).
/// </summary>
public sealed class TraceRecorder(bool wantsAttentionProbabilities = false) : IForwardObserver
{
    readonly List<(string Name, Tensor Tensor)> _prefill = new();
    readonly List<float[]> _stepLogits = new();

    /// <inheritdoc/>
    public bool WantsAttentionProbabilities => wantsAttentionProbabilities;

    /// <inheritdoc/>
    public bool WantsAllLogits => true;

    /// <summary>Activations of step 0 in the order they were produced.</summary>
    public IReadOnlyList<(string Name, Tensor Tensor)> Prefill => _prefill;

    /// <summary>Names of the step-0 activations, in forward order.</summary>
    public IEnumerable<string> Names => _prefill.Select(p => p.Name);

    /// <summary>Last-row logits of each step: row 0 from the prefill, row k from the k-th decode step.</summary>
    public IReadOnlyList<float[]> StepLogits => _stepLogits;

    /// <inheritdoc/>
    public void OnTensor(string name, Tensor tensor, int step)
    {
        if (step == 0) _prefill.Add((name, tensor.Clone()));
        if (name == "logits")
        {
            int vocab = tensor.Shape[^1];
            _stepLogits.Add(tensor.Contiguous().Span[^vocab..].ToArray());
        }
    }

    /// <summary>The recorded activation of that name at step 0.</summary>
    public Tensor this[string name] => _prefill.First(p => p.Name == name).Tensor;

    /// <summary>
    /// Writes the recorded activations as F32, plus any <paramref name="extra"/> tensors, to a safetensors file whose
    /// <c>__metadata__</c> holds <paramref name="metadata"/> besides <c>format: pt</c>.
    /// </summary>
    public void Save(string path, IEnumerable<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)> extra,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = _prefill.Select(p => SafeTensorsWriter.F32(p.Name, p.Tensor.Span.ToArray(), p.Tensor.Shape.Select(s => (long)s).ToArray()))
            .Concat(extra).ToList();
        SafeTensorsWriter.Write(path, entries, metadata == null ? null : new Dictionary<string, string>(metadata) { ["format"] = "pt" });
    }
}
