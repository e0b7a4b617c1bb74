using PureVlm.Formats;

namespace PureVlm.Models;

/// <summary>HF <c>PaliGemmaMultiModalProjector</c>: one Linear with bias, vision hidden → text hidden (<c>projector_hidden_act</c> is unused, as in HF).</summary>
public sealed class PaliGemmaMultiModalProjector(WeightScope scope, int visionHidden, int textHidden)
{
    readonly Linear _linear = new(scope.Sub("linear"), visionHidden, textHidden, bias: true);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_linear];

    /// <summary>y [P, text hidden] = linear(x [P, vision hidden]).</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y, ForwardContext ctx) => _linear.Forward(x, n, y, ctx);
}
