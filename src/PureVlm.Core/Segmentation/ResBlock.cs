using PureVlm.Kernels;
using PureVlm.Models;

namespace PureVlm.Segmentation;

/// <summary>
/// The VQ-VAE decoder's residual block (<c>decoder.2</c>, <c>decoder.3</c>): <c>x + net.4(relu(net.2(relu(net.0(x)))))</c>
/// with 3×3 convolutions <c>net.0</c>, <c>net.2</c> and a 1×1 <c>net.4</c>; no ReLU after the sum (big_vision's <c>ResBlock</c>).
/// </summary>
public sealed class ResBlock
{
    /// <summary>Module path, e.g. <c>decoder.2</c>.</summary>
    public string Name { get; }
    /// <summary>The three convolutions, in order: <c>net.0</c>, <c>net.2</c>, <c>net.4</c>.</summary>
    public IReadOnlyList<Conv2d> Net { get; }

    /// <summary>Takes the <c>{name}.net.{0,2,4}</c> weights from <paramref name="weights"/>.</summary>
    public ResBlock(IReadOnlyDictionary<string, float[]> weights, string name, int channels)
    {
        Name = name;
        Net = [new Conv2d(weights, name + ".net.0", channels, channels, 3), new Conv2d(weights, name + ".net.2", channels, channels, 3),
               new Conv2d(weights, name + ".net.4", channels, channels, 1)];
    }

    /// <summary>
    /// x [c, h, w] in place becomes the block's output; <paramref name="a"/>, <paramref name="b"/> hold c · h · w floats each
    /// and <paramref name="patches"/> the 3×3 im2col. Each convolution's output is reported before its ReLU.
    /// </summary>
    internal void Forward(Span<float> x, int height, int width, float[] a, float[] b, Span<float> patches, SegmentTrace trace)
    {
        int length = Net[0].OutChannels * height * width;
        Net[0].Forward(x, height, width, a, patches);
        trace.Report(Net[0].Name, a, Net[0].OutChannels, height, width);
        ElementWise.Relu(a.AsSpan(0, length));
        Net[1].Forward(a, height, width, b, patches);
        trace.Report(Net[1].Name, b, Net[1].OutChannels, height, width);
        ElementWise.Relu(b.AsSpan(0, length));
        Net[2].Forward(b, height, width, a, patches);
        trace.Report(Net[2].Name, a, Net[2].OutChannels, height, width);
        ElementWise.Add(x[..length], a.AsSpan(0, length));
    }
}
