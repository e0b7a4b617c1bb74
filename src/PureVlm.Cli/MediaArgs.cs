using PureVlm.Prompts;

namespace PureVlm.Cli;

/// <summary>The order of a command's <c>--image</c> and <c>--video</c> inputs, which the options alone do not keep.</summary>
static class MediaArgs
{
    /// <summary>
    /// The paths in prompt order: the i-th <c>&lt;image&gt;</c> marker of <paramref name="prompt"/> takes the i-th image,
    /// the j-th <c>&lt;video&gt;</c> the j-th video; without markers (or when they do not fit the inputs, which the
    /// prompt format then reports), images first, then videos.
    /// </summary>
    public static List<(MediaKind Kind, string Path)> InPromptOrder(IReadOnlyList<string> images, IReadOnlyList<string> videos, string? prompt)
    {
        var fallback = images.Select(p => (MediaKind.Image, p)).Concat(videos.Select(p => (MediaKind.Video, p))).ToList();
        if (prompt == null) return fallback;
        var ordered = new List<(MediaKind, string)>();
        int image = 0, video = 0;
        for (int i = 0; i < prompt.Length; i++)
        {
            if (string.CompareOrdinal(prompt, i, LlavaPrompt.ImageMarker, 0, LlavaPrompt.ImageMarker.Length) == 0)
            {
                if (image == images.Count) return fallback;
                ordered.Add((MediaKind.Image, images[image++]));
            }
            else if (string.CompareOrdinal(prompt, i, LlavaPrompt.VideoMarker, 0, LlavaPrompt.VideoMarker.Length) == 0)
            {
                if (video == videos.Count) return fallback;
                ordered.Add((MediaKind.Video, videos[video++]));
            }
        }
        return image == images.Count && video == videos.Count && ordered.Count > 0 ? ordered : fallback;
    }
}
