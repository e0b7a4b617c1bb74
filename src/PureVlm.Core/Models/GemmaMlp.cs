using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>GemmaMLP</c> (GeGLU): <c>down(gelu_tanh(gate(x)) · up(x))</c>; <paramref name="traceName"/> prefixes the <c>.mlp.hidden</c> report.</summary>
public sealed class GemmaMlp(WeightScope scope, TextConfig c, string traceName)
{
    readonly string _hiddenName = traceName + ".mlp.hidden";
    readonly Linear _gateProj = new(scope.Sub("gate_proj"), c.HiddenSize, c.IntermediateSize, bias: false);
    readonly Linear _upProj = new(scope.Sub("up_proj"), c.HiddenSize, c.IntermediateSize, bias: false);
    readonly Linear _downProj = new(scope.Sub("down_proj"), c.IntermediateSize, c.HiddenSize, bias: false);

    /// <summary>y [n, hidden] = mlp(x [n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx)
    {
        var gate = ctx.Scratch.Span(Slot.Gate, n * c.IntermediateSize); // [n, intermediate]
        var up = ctx.Scratch.Span(Slot.Up, n * c.IntermediateSize);
        _gateProj.Forward(x, n, gate, ctx);
        _upProj.Forward(x, n, up, ctx);
        ElementWise.GeluTanh(gate);
        ElementWise.Multiply(gate, up);
        if (ctx.WantsMlpActivations) ctx.Report(_hiddenName, ctx.Scratch.Get(Slot.Gate, 0), 1, n, c.IntermediateSize);
        _downProj.Forward(gate, n, y, ctx);
    }
}
