using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>LlavaMultiModalProjector</c>: <c>linear_2(act(linear_1(x)))</c>, vision hidden → text hidden → text hidden.</summary>
public sealed class LlavaMultiModalProjector(WeightScope scope, int visionHidden, int textHidden, Activation act, bool bias)
{
    readonly Linear _linear1 = new(scope.Sub("linear_1"), visionHidden, textHidden, bias);
    readonly Linear _linear2 = new(scope.Sub("linear_2"), textHidden, textHidden, bias);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_linear1, _linear2];

    /// <summary>
    /// y [n, text hidden] = projector(x [n, vision hidden]); reports <c>projector.linear_1</c> before the activation, as
    /// [<paramref name="images"/>, n / images, text hidden] (a video's rows per frame).
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx, int images = 1)
    {
        var h = ctx.Scratch.Get(Slot.Gate, n * textHidden);
        var hs = h.AsSpan(0, n * textHidden);
        _linear1.Forward(x, n, hs, ctx);
        ctx.Report("projector.linear_1", h, images, n / images, textHidden);
        ElementWise.Activate(hs, act);
        _linear2.Forward(hs, n, y, ctx);
    }
}
