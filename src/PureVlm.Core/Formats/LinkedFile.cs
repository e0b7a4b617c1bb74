namespace PureVlm.Formats;

/// <summary>Sizes of files that may be symlinks, as the Hugging Face cache's snapshot files are.</summary>
static class LinkedFile
{
    /// <summary>
    /// Bytes in the file <paramref name="path"/> names after following every symlink, or null when there is no such
    /// file. <see cref="FileInfo.Length"/> measures a link itself (a few dozen bytes for <c>../../blobs/…</c>), not the file.
    /// </summary>
    public static long? Length(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget == null) return info.Exists ? info.Length : null;
        try { return info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo { Exists: true } target ? target.Length : null; }
        catch (IOException) { return null; } // a link cycle
    }
}
