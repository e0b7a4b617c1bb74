using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaMLP</c> (GeGLU) and <c>LlamaMLP</c> (SwiGLU): <c>down(act(gate(x)) · up(x))</c>; <paramref name="traceName"/>
/// prefixes the <c>.mlp.hidden</c> report (the input of down_proj).
/// </summary>
public sealed class GatedMlp(WeightScope scope, int hidden, int intermediate, Activation act, bool bias, string traceName)
{
    readonly string _hiddenName = traceName + ".mlp.hidden";
    readonly Linear _gateProj = new(scope.Sub("gate_proj"), hidden, intermediate, bias);
    readonly Linear _upProj = new(scope.Sub("up_proj"), hidden, intermediate, bias);
    readonly Linear _downProj = new(scope.Sub("down_proj"), intermediate, hidden, bias);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_gateProj, _upProj, _downProj];

    /// <summary>y [n, hidden] = mlp(x [n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx)
    {
        var gate = ctx.Scratch.Span(Slot.Gate, n * intermediate); // [n, intermediate]
        var up = ctx.Scratch.Span(Slot.Up, n * intermediate);
        _gateProj.Forward(x, n, gate, ctx);
        _upProj.Forward(x, n, up, ctx);
        // Row by row, as the final soft-cap (DecoderModel.Forward): a row's values must not depend on the other rows of the pass.
        for (int r = 0; r < n; r++) ElementWise.Activate(gate.Slice(r * intermediate, intermediate), act);
        ElementWise.Multiply(gate, up);
        if (ctx.WantsMlpActivations) ctx.Report(_hiddenName, ctx.Scratch.Get(Slot.Gate, 0), 1, n, intermediate);
        _downProj.Forward(gate, n, y, ctx);
    }
}
