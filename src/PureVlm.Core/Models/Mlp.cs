using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>SiglipMLP</c> / <c>CLIPMLP</c>: <c>fc2(act(fc1(x)))</c>, both with bias; <paramref name="traceName"/> prefixes the
/// <c>.mlp.hidden</c> report (the activated fc1 output). Molmo's ViT names the two <c>w1</c> / <c>w2</c>.
/// </summary>
public sealed class Mlp(WeightScope scope, int hidden, int intermediate, Activation act, string traceName, string fc1 = "fc1", string fc2 = "fc2")
{
    readonly string _hiddenName = traceName + ".mlp.hidden";
    readonly Linear _fc1 = new(scope.Sub(fc1), hidden, intermediate, bias: true);
    readonly Linear _fc2 = new(scope.Sub(fc2), intermediate, hidden, bias: true);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_fc1, _fc2];

    /// <summary>y [n, hidden] = mlp(x [n, hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx)
    {
        var h = ctx.Scratch.Span(Slot.Gate, n * intermediate); // [n, intermediate]
        _fc1.Forward(x, n, h, ctx);
        ElementWise.Activate(h, act);
        if (ctx.WantsMlpActivations) ctx.Report(_hiddenName, ctx.Scratch.Get(Slot.Gate, 0), 1, n, intermediate);
        _fc2.Forward(h, n, y, ctx);
    }
}
