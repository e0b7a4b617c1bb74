using PureVlm.Kernels;

namespace PureVlm.Segmentation;

/// <summary>
/// A square-kernel, stride-1 2-D convolution with "same" zero padding and bias, PyTorch <c>Conv2d</c> weights
/// ([out, in, k, k], as stored): a GEMM of the weights with the im2col patches, on CHW activations.
/// </summary>
public sealed class Conv2d
{
    /// <summary>Module path in the weights file, e.g. <c>decoder.2.net.0</c>.</summary>
    public string Name { get; }
    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>Kernel side (1 or odd).</summary>
    public int KernelSize { get; }

    readonly float[] _weight; // [out, in · k · k]: row o is the patch filter of output channel o
    readonly float[] _bias;

    /// <summary>Takes <c>{name}.weight</c> [out, in, k, k] and <c>{name}.bias</c> [out] from <paramref name="weights"/>.</summary>
    public Conv2d(IReadOnlyDictionary<string, float[]> weights, string name, int inChannels, int outChannels, int kernelSize)
    {
        Name = name; InChannels = inChannels; OutChannels = outChannels; KernelSize = kernelSize;
        _weight = weights[name + ".weight"];
        _bias = weights[name + ".bias"];
    }

    /// <summary>
    /// <c>y[o, :, :] = b[o] + Σ W[o, c, ky, kx] · x[c, y + ky − p, x + kx − p]</c>; x is [in, h, w], y is [out, h, w];
    /// <paramref name="patches"/> holds [in · k · k, h · w] (unused for 1×1).
    /// </summary>
    public void Forward(ReadOnlySpan<float> x, int height, int width, Span<float> y, Span<float> patches)
    {
        int pixels = height * width;
        int depth = InChannels * KernelSize * KernelSize;
        ReadOnlySpan<float> columns = x[..(InChannels * pixels)];
        if (KernelSize > 1)
        {
            Im2Col(x, height, width, patches[..(depth * pixels)]);
            columns = patches[..(depth * pixels)];
        }
        for (int o = 0; o < OutChannels; o++) y.Slice(o * pixels, pixels).Fill(_bias[o]);
        Gemm.MatMulAccumulate(_weight, depth, columns, pixels, y, pixels, OutChannels, pixels, depth);
    }

    /// <summary>Row (c · k + ky) · k + kx of <paramref name="patches"/> is channel c shifted by (ky − p, kx − p), zero outside.</summary>
    void Im2Col(ReadOnlySpan<float> x, int height, int width, Span<float> patches)
    {
        int k = KernelSize, pad = k / 2, pixels = height * width;
        for (int c = 0; c < InChannels; c++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                {
                    var row = patches.Slice(((c * k + ky) * k + kx) * pixels, pixels);
                    for (int yy = 0; yy < height; yy++)
                    {
                        int sy = yy + ky - pad;
                        for (int xx = 0; xx < width; xx++)
                        {
                            int sx = xx + kx - pad;
                            row[yy * width + xx] = (uint)sy < (uint)height && (uint)sx < (uint)width ? x[(c * height + sy) * width + sx] : 0f;
                        }
                    }
                }
    }
}
