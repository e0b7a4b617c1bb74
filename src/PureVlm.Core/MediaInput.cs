using PureVlm.Formats.Images;
using PureVlm.Prompts;

namespace PureVlm;

/// <summary>One visual input of a request, in prompt order: an image, or a video as its frames.</summary>
public sealed class MediaInput
{
    /// <summary>Image or video.</summary>
    public MediaKind Kind { get; }
    /// <summary>The image (one frame) or the video's frames, in order.</summary>
    public IReadOnlyList<RgbImage> Frames { get; }
    /// <summary>The file or folder it was read from, if known.</summary>
    public string? SourcePath { get; }

    MediaInput(MediaKind kind, IReadOnlyList<RgbImage> frames, string? sourcePath) { Kind = kind; Frames = frames; SourcePath = sourcePath; }

    /// <summary>An image.</summary>
    public static MediaInput Image(RgbImage image) => new(MediaKind.Image, [image ?? throw new ArgumentNullException(nameof(image))], image.SourcePath);

    /// <summary>A video: its frames, already sampled to the model's count (see <see cref="VlmModel.LoadVideo"/>), read from <paramref name="sourcePath"/>.</summary>
    public static MediaInput Video(IReadOnlyList<RgbImage> frames, string? sourcePath = null)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.Count == 0 || frames.Any(f => f is null)) throw new ArgumentException("a video needs at least one frame, none null", nameof(frames));
        return new(MediaKind.Video, frames.ToArray(), sourcePath);
    }
}
