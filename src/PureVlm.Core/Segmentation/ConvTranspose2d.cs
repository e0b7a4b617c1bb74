using PureVlm.Kernels;

namespace PureVlm.Segmentation;

/// <summary>
/// PyTorch <c>ConvTranspose2d(in, out, kernel_size=4, stride=2, padding=1)</c> with bias, doubling height and width:
/// <c>out[o, Y, X] = b[o] + Σ x[c, i, j] · W[c, o, ky, kx]</c> over <c>Y = 2i − 1 + ky</c>, <c>X = 2j − 1 + kx</c>.
/// Computed as one GEMM (every input pixel's contribution to every kernel tap) followed by a scatter-add (col2im).
/// </summary>
public sealed class ConvTranspose2d
{
    const int Kernel = 4, Stride = 2, Padding = 1;

    /// <summary>Module path in the weights file, e.g. <c>decoder.4</c>.</summary>
    public string Name { get; }
    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }

    // Stored as [in, out, 4, 4]; kept transposed to [out · 16, in] so that the GEMM's rows are (o, ky, kx) taps.
    readonly float[] _taps;
    readonly float[] _bias;

    /// <summary>Takes <c>{name}.weight</c> [in, out, 4, 4] and <c>{name}.bias</c> [out] from <paramref name="weights"/>.</summary>
    public ConvTranspose2d(IReadOnlyDictionary<string, float[]> weights, string name, int inChannels, int outChannels)
    {
        Name = name; InChannels = inChannels; OutChannels = outChannels;
        var w = weights[name + ".weight"];
        _bias = weights[name + ".bias"];
        int taps = outChannels * Kernel * Kernel;
        _taps = new float[taps * inChannels];
        for (int c = 0; c < inChannels; c++)
            for (int t = 0; t < taps; t++)
                _taps[t * inChannels + c] = w[c * taps + t];
    }

    /// <summary>Floats <see cref="Forward"/> needs in its column buffer for an input of <paramref name="pixels"/> pixels.</summary>
    public int ColumnLength(int pixels) => OutChannels * Kernel * Kernel * pixels;

    /// <summary>x is [in, h, w]; y is [out, 2h, 2w]; <paramref name="columns"/> holds <see cref="ColumnLength"/>(h · w) floats.</summary>
    public void Forward(ReadOnlySpan<float> x, int height, int width, Span<float> y, Span<float> columns)
    {
        int pixels = height * width, taps = OutChannels * Kernel * Kernel;
        var cols = columns[..(taps * pixels)];
        cols.Clear();
        Gemm.MatMulAccumulate(_taps, InChannels, x[..(InChannels * pixels)], pixels, cols, pixels, taps, pixels, InChannels);

        int outH = height * Stride, outW = width * Stride;
        for (int o = 0; o < OutChannels; o++)
        {
            var plane = y.Slice(o * outH * outW, outH * outW);
            plane.Fill(_bias[o]);
            for (int ky = 0; ky < Kernel; ky++)
                for (int kx = 0; kx < Kernel; kx++)
                {
                    var tap = cols.Slice(((o * Kernel + ky) * Kernel + kx) * pixels, pixels);
                    for (int i = 0; i < height; i++)
                    {
                        int oy = Stride * i - Padding + ky;
                        if ((uint)oy >= (uint)outH) continue;
                        for (int j = 0; j < width; j++)
                        {
                            int ox = Stride * j - Padding + kx;
                            if ((uint)ox < (uint)outW) plane[oy * outW + ox] += tap[i * width + j];
                        }
                    }
                }
        }
    }
}
