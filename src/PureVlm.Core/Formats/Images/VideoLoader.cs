using System.Buffers.Binary;
using StbImageSharp;

namespace PureVlm.Formats.Images;

/// <summary>
/// Reads a video as the frames a video model takes: a folder of frame images (PNG, JPEG, BMP, GIF; sorted by file name,
/// ordinal) or an animated GIF (each frame composited as the GIF's disposal rules say). When there are more frames than
/// the model takes, they are sampled uniformly with the rule of Hugging Face's Video-LLaVA examples,
/// <c>np.arange(0, n, n / T).astype(int)</c>: frame ⌊i · (n / T)⌋ for i = 0 … T − 1. Fewer frames than T are an error.
/// </summary>
public static class VideoLoader
{
    static readonly string[] FrameExtensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif"];

    /// <summary>The <paramref name="frames"/> frames of the video at <paramref name="path"/> (a folder or an animated GIF), in order.</summary>
    public static IReadOnlyList<RgbImage> Load(string path, int frames)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(frames, 1);
        if (Directory.Exists(path))
        {
            var files = Directory.EnumerateFiles(path)
                .Where(f => FrameExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Order(StringComparer.Ordinal).ToList();
            return SampleIndices(files.Count, frames, path).Select(i => ImageLoader.Load(files[i])).ToList();
        }
        if (!File.Exists(path)) throw new InvalidImageException($"{path}: video not found (expected a folder of frames or an animated GIF)");
        byte[] data = File.ReadAllBytes(path);
        if (data.Length >= 6 && (data.AsSpan(0, 6).SequenceEqual("GIF87a"u8) || data.AsSpan(0, 6).SequenceEqual("GIF89a"u8)))
            return GifFrames(data, frames, path);
        if (IsAnimatedPng(data))
            throw new InvalidImageException($"{path}: animated PNG is not supported; give an animated GIF or a folder of frames");
        if (data.Length >= 12 && data.AsSpan(0, 4).SequenceEqual("RIFF"u8) && data.AsSpan(8, 4).SequenceEqual("WEBP"u8))
            throw new InvalidImageException($"{path}: WebP is not supported; give an animated GIF or a folder of frames");
        throw new InvalidImageException($"{path}: not a video (expected a folder of frames or an animated GIF)");
    }

    /// <summary>
    /// Which of <paramref name="available"/> frames to take: all when there are exactly <paramref name="frames"/>, else
    /// ⌊i · (n / T)⌋ (float64, as NumPy's arange computes it). <paramref name="source"/> names the video in errors.
    /// </summary>
    public static int[] SampleIndices(int available, int frames, string source)
    {
        if (available < frames)
            throw new InvalidImageException($"{source}: {available} frame(s), the model takes {frames} per video; give at least {frames}");
        double step = available / (double)frames;
        return Enumerable.Range(0, frames).Select(i => (int)Math.Floor(i * step)).ToArray();
    }

    static IReadOnlyList<RgbImage> GifFrames(byte[] data, int frames, string path)
    {
        int count;
        try { count = ImageResult.AnimatedGifFramesFromStream(new MemoryStream(data, writable: false), ColorComponents.RedGreenBlueAlpha).Count(); }
        catch (Exception e) when (e is not InvalidImageException) { throw ImageLoader.Corrupt(path, "GIF", "frames", e); }
        var keep = SampleIndices(count, frames, path);
        var result = new List<RgbImage>(frames);
        int index = 0;
        // stb composites every frame on one RGBA canvas (asked for RGB, it hands out the RGBA bytes cut short), so frames
        // are read as RGBA and the alpha is dropped, as PIL's convert("RGB") does; each kept frame is copied out before
        // the next is decoded.
        foreach (var frame in ImageResult.AnimatedGifFramesFromStream(new MemoryStream(data, writable: false), ColorComponents.RedGreenBlueAlpha))
        {
            ImageLoader.CheckSize(path, frame.Width, frame.Height);
            while (result.Count < frames && keep[result.Count] == index) result.Add(RgbImage.FromPixels(frame.Width, frame.Height, DropAlpha(frame.Data, frame.Width * frame.Height)));
            index++;
        }
        return result;
    }

    static byte[] DropAlpha(byte[] rgba, int pixels)
    {
        var rgb = new byte[3 * pixels];
        for (int i = 0; i < pixels; i++) { rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2]; }
        return rgb;
    }

    /// <summary>True for a PNG with an <c>acTL</c> chunk before its image data (APNG).</summary>
    static bool IsAnimatedPng(byte[] d)
    {
        if (d.Length < 8 || !d.AsSpan(0, 8).SequenceEqual((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])) return false;
        for (long p = 8; p + 8 <= d.Length;)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(d.AsSpan((int)p));
            var type = d.AsSpan((int)p + 4, 4);
            if (type.SequenceEqual("acTL"u8)) return true;
            if (type.SequenceEqual("IDAT"u8)) return false;
            p += 12L + length;
        }
        return false;
    }
}
