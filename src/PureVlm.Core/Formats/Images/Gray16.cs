using System.Reflection;
using StbImageSharp;

namespace PureVlm.Formats.Images;

/// <summary>
/// 16-bit greyscale PNG. PIL opens it as mode "I" and <c>convert("RGB")</c> clamps each value to 0..255 (it does not
/// scale), while stb's 8-bit path keeps the high byte; so the 16-bit samples are decoded and clamped here.
/// </summary>
static unsafe class Gray16
{
    delegate void FreeFn(void* p);

    // stb allocates the 16-bit result with its runtime's malloc, which StbImageSharp keeps internal.
    static readonly FreeFn? StbFree = typeof(StbImage).Assembly
        .GetType("StbImageSharp.Hebron.Runtime.CRuntime")?
        .GetMethod("free", BindingFlags.Public | BindingFlags.Static, [typeof(void*)])?
        .CreateDelegate<FreeFn>();

    public static byte[] DecodeClipped(byte[] data, string name, int width, int height)
    {
        if (StbFree is null)
            throw new InvalidImageException($"{name}: 16-bit greyscale PNG is not supported with this StbImageSharp build");
        int x, y, comp;
        ushort* samples;
        try { samples = StbImage.stbi__load_and_postprocess_16bit(new StbImage.stbi__context(new MemoryStream(data, writable: false)), &x, &y, &comp, 1); }
        catch (Exception e) { throw ImageLoader.Corrupt(name, "PNG", "data", e); }
        if (samples == null) throw ImageLoader.Corrupt(name, "PNG", "data", new InvalidDataException(StbImage.stbi__g_failure_reason ?? "decoder failed"));
        try
        {
            if (x != width || y != height) throw ImageLoader.Corrupt(name, "PNG", "data", null);
            var rgb = new byte[3L * width * height];
            for (long i = 0; i < (long)width * height; i++)
            {
                byte v = (byte)Math.Min(samples[i], (ushort)255);
                rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = v;
            }
            return rgb;
        }
        finally { StbFree(samples); }
    }
}
