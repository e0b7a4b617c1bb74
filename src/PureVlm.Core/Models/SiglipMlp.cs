using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>SiglipMLP</c>: fc2(gelu_tanh(fc1(x))); <paramref name="traceName"/> prefixes the <c>.mlp.hidden</c> report.</summary>
public sealed class SiglipMlp(WeightScope scope, VisionConfig c, string traceName)
{
    readonly string _hiddenName = traceName + ".mlp.hidden";
    readonly Linear _fc1 = new(scope.Sub("fc1"), c.HiddenSize, c.IntermediateSize, bias: true);
    readonly Linear _fc2 = new(scope.Sub("fc2"), c.IntermediateSize, c.HiddenSize, bias: true);

    /// <summary>y [n, d] = mlp(x [n, d]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx)
    {
        var h = ctx.Scratch.Span(Slot.Gate, n * c.IntermediateSize); // [n, intermediate]
        _fc1.Forward(x, n, h, ctx);
        ElementWise.GeluTanh(h);
        if (ctx.WantsMlpActivations) ctx.Report(_hiddenName, ctx.Scratch.Get(Slot.Gate, 0), 1, n, c.IntermediateSize);
        _fc2.Forward(h, n, y, ctx);
    }
}
