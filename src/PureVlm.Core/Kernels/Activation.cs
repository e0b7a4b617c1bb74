namespace PureVlm.Kernels;

/// <summary>The element-wise activations of the supported blocks (see <see cref="ElementWise.Activate"/>).</summary>
public enum Activation
{
    /// <summary>GELU, tanh approximation (HF <c>gelu_pytorch_tanh</c>).</summary>
    GeluTanh,
    /// <summary>GELU with the exact erf (HF <c>gelu</c>).</summary>
    GeluErf,
    /// <summary><c>x · sigmoid(1.702x)</c> (HF <c>quick_gelu</c>, CLIP).</summary>
    QuickGelu,
    /// <summary><c>x · sigmoid(x)</c> (HF <c>silu</c>, LLaMA).</summary>
    Silu,
}
