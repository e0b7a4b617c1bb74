using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>GemmaMLP</c> (GeGLU) and <c>LlamaMLP</c> (SwiGLU): <c>down(act(gate(x)) · up(x))</c>; the trace name prefixes the
/// <c>.mlp.hidden</c> report (the input of down_proj). Molmo stores up and gate as one fused Linear (<see cref="FusedUpGate"/>).
/// </summary>
public sealed class GatedMlp
{
    readonly string _hiddenName;
    readonly int _intermediate;
    readonly Activation _act;
    // Either gate and up, or one Linear whose output rows are [up; gate].
    readonly Linear? _gateProj, _upProj, _upGateProj;
    readonly Linear _downProj;

    /// <summary>
    /// Loads <paramref name="gate"/>, <paramref name="up"/> and <paramref name="down"/> (HF's names by default) under
    /// <paramref name="scope"/>; the output is <paramref name="outputSize"/> wide (default <paramref name="hidden"/>: Molmo's projector changes width).
    /// </summary>
    public GatedMlp(WeightScope scope, int hidden, int intermediate, Activation act, bool bias, string traceName,
        string gate = "gate_proj", string up = "up_proj", string down = "down_proj", int? outputSize = null)
    {
        (_intermediate, _act, _hiddenName) = (intermediate, act, traceName + ".mlp.hidden");
        _gateProj = new Linear(scope.Sub(gate), hidden, intermediate, bias);
        _upProj = new Linear(scope.Sub(up), hidden, intermediate, bias);
        _downProj = new Linear(scope.Sub(down), intermediate, outputSize ?? hidden, bias);
    }

    GatedMlp(WeightScope scope, int hidden, int intermediate, Activation act, string traceName, string upGate, string down)
    {
        (_intermediate, _act, _hiddenName) = (intermediate, act, traceName + ".mlp.hidden");
        _upGateProj = new Linear(scope.Sub(upGate), hidden, 2 * intermediate, bias: false);
        _downProj = new Linear(scope.Sub(down), intermediate, hidden, bias: false);
    }

    /// <summary>
    /// Molmo's MLP: <paramref name="upGate"/> [2·intermediate, hidden] holds up's rows then gate's (<c>x, gate = chunk(2)</c>),
    /// then <c>down(act(gate) · up)</c>; no biases.
    /// </summary>
    public static GatedMlp FusedUpGate(WeightScope scope, int hidden, int intermediate, Activation act, string traceName, string upGate, string down) =>
        new(scope, hidden, intermediate, act, traceName, upGate, down);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => _upGateProj != null ? [_upGateProj, _downProj] : [_gateProj!, _upProj!, _downProj];

    /// <summary>y [n, output] = mlp(x [n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx)
    {
        int inter = _intermediate;
        var gate = ctx.Scratch.Span(Slot.Gate, n * inter); // [n, intermediate]
        if (_upGateProj != null)
        {
            var fused = ctx.Scratch.Span(Slot.Up, n * 2 * inter); // [n, up | gate]
            _upGateProj.Forward(x, n, fused, ctx);
            for (int r = 0; r < n; r++)
            {
                var row = gate.Slice(r * inter, inter);
                fused.Slice(r * 2 * inter + inter, inter).CopyTo(row);
                ElementWise.Activate(row, _act);
                ElementWise.Multiply(row, fused.Slice(r * 2 * inter, inter));
            }
        }
        else
        {
            var up = ctx.Scratch.Span(Slot.Up, n * inter);
            _gateProj!.Forward(x, n, gate, ctx);
            _upProj!.Forward(x, n, up, ctx);
            // Row by row, as the final soft-cap (DecoderModel.Forward): a row's values must not depend on the other rows of the pass.
            ElementWise.ActivateRows(gate[..(n * inter)], inter, _act);
            ElementWise.Multiply(gate, up);
        }
        if (ctx.WantsMlpActivations) ctx.Report(_hiddenName, ctx.Scratch.Get(Slot.Gate, 0), 1, n, inter);
        _downProj.Forward(gate, n, y, ctx);
    }
}
