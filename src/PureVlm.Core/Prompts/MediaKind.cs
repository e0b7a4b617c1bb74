namespace PureVlm.Prompts;

/// <summary>What one visual input of a request is; a prompt's inputs are an ordered list of them.</summary>
public enum MediaKind
{
    /// <summary>One image: its tokens are the image token (<c>&lt;image&gt;</c>).</summary>
    Image,
    /// <summary>One video (a fixed number of frames): its tokens are the video token (<c>&lt;video&gt;</c>).</summary>
    Video,
}
