using PureVlm.Models;

namespace PureVlm.Segmentation;

/// <summary>
/// Reports one segment's decoder activations as <c>seg.{i}.{module}</c> through a <see cref="ForwardContext"/>; names are
/// only built when an observer listens, so an untraced decode allocates nothing.
/// </summary>
internal readonly struct SegmentTrace(ForwardContext context, int segment)
{
    readonly string? _prefix = context.Observer != null ? $"seg.{segment}." : null;

    /// <summary>Reports buffer viewed as [c, h, w] (CHW).</summary>
    public void Report(string name, float[] buffer, int channels, int height, int width)
    {
        if (_prefix != null) context.Report(_prefix + name, buffer, channels, height, width);
    }

    /// <summary>Reports buffer viewed as [h, w].</summary>
    public void Report(string name, float[] buffer, int height, int width)
    {
        if (_prefix != null) context.Report(_prefix + name, buffer, height, width);
    }
}
