namespace PureVlm.Formats.Images;

/// <summary>PIL's <c>Image.resize((w, h), Image.BICUBIC)</c> for 8-bit images, bit-exact (see <see cref="PilResampler"/>).</summary>
public static class BicubicResampler
{
    /// <summary>Resizes to <paramref name="width"/> × <paramref name="height"/>; the same size returns a copy, as PIL does.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height) => PilResampler.Resize(image, width, height, PilFilter.Bicubic);

    /// <summary>
    /// PIL's <c>Image.resize((width, height), BICUBIC)</c> of an 8-bit single-channel ('L') image, [inHeight, inWidth]
    /// row-major; returns [height, width].
    /// </summary>
    public static byte[] ResizeGray(byte[] pixels, int inWidth, int inHeight, int width, int height) =>
        PilResampler.ResizeGray(pixels, inWidth, inHeight, width, height, PilFilter.Bicubic);
}
