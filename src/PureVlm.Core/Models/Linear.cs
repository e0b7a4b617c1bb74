using PureVlm.Kernels;
using PureVlm.Tensors;

namespace PureVlm.Models;

/// <summary>HF <c>nn.Linear</c>: <c>y = x · Wᵀ + b</c> with W [out, in] read in place from the checkpoint, plus any per-request adapter.</summary>
public sealed class Linear
{
    /// <summary>The weight [out, in]: a stored float tensor or a <see cref="QuantizedTensor"/>.</summary>
    public IWeightMatrix Weight { get; }
    /// <summary>The bias [out], or null.</summary>
    public float[]? Bias { get; }
    /// <summary>The module's HF name in this checkpoint, e.g. <c>language_model.model.layers.0.self_attn.q_proj</c>.</summary>
    public string ModulePath { get; }
    /// <summary>in_features.</summary>
    public int InFeatures { get; }
    /// <summary>out_features.</summary>
    public int OutFeatures { get; }

    /// <summary>Loads <c>weight</c> (and <c>bias</c> when <paramref name="bias"/>) under <paramref name="scope"/>.</summary>
    public Linear(WeightScope scope, int inFeatures, int outFeatures, bool bias)
        : this(scope.Prefix, scope.GetMatrix("weight", outFeatures, inFeatures), bias ? scope.GetFloats("bias", outFeatures) : null) { }

    /// <summary>Wraps an existing weight [out, in] (tied embeddings, a conv kernel viewed as a matrix).</summary>
    public Linear(string modulePath, IWeightMatrix weight, float[]? bias)
    {
        ModulePath = modulePath; Weight = weight; Bias = bias;
        OutFeatures = checked((int)weight.Shape[0]);
        InFeatures = checked((int)(weight.Shape.Aggregate(1L, (a, b) => a * b) / weight.Shape[0]));
    }

    /// <summary>y [m, out] = x [m, in] · Wᵀ + b (+ the adapters' delta for this module).</summary>
    public void Forward(ReadOnlySpan<float> x, int m, Span<float> y, ForwardContext ctx)
    {
        if (Weight is QuantizedTensor q) QuantizedGemm.Linear(x, m, q, Bias, y);
        else Gemm.Linear(x, m, (StoredTensor)Weight, Bias, y);
        ctx.Adapters?.Apply(this, x, m, y);
    }
}
