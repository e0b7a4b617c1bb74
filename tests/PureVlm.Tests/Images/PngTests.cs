using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>
/// PNG through ImageLoader against what Pillow 9.4 reads from the same files (load_image's open, exif_transpose,
/// convert("RGB")), every pixel compared: every colour type and bit depth, plain and Adam7, tRNS, and orientation from
/// eXIf, ImageMagick's raw-profile text and XMP. tests/data/images/png/make_cases.py made the files, the expected
/// bytes and cases.txt (name, width, height of Pillow's result).
/// </summary>
public class PngTests
{
    static string Dir => Path.Combine(TestPaths.Data, "images", "png");

    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var line in File.ReadAllLines(Path.Combine(Dir, "cases.txt")))
            if (line.Split(' ') is [var name, var w, var h]) data.Add(name, int.Parse(w), int.Parse(h));
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decodes_exactly_as_pillow(string file, int width, int height)
    {
        var (image, pillow) = PillowCase.Load(Dir, file);
        Assert.Equal((width, height), (image.Width, image.Height));
        Assert.Equal(pillow, image.Pixels);
    }

    [Fact]
    public void Every_kind_of_case_is_listed()
    {
        var names = Cases().Select(c => (string)c[0]).ToHashSet();
        foreach (var depth in new[] { 1, 2, 4, 8, 16 })
            Assert.Contains($"grey{depth}-adam7.png", names);
        foreach (var name in new[] { "palette1.png", "palette4-trns.png", "grey-alpha16.png", "rgb16-trns.png", "rgba16-adam7.png",
                     "grey16-trns.png", "exif6.png", "exif5-raw-profile-ztxt.png", "xmp7-element.png", "exif1-xmp6.png" })
            Assert.Contains(name, names);
    }

    [Fact]
    public void A_text_chunk_that_inflates_past_one_mebibyte_is_refused_as_pillow_refuses_it()
    {
        var png = File.ReadAllBytes(Path.Combine(Dir, "rgb8.png"));
        var text = System.Text.Encoding.ASCII.GetBytes("XML:com.adobe.xmp\0\u0001\0\0\0").Concat(Deflate(new byte[(1 << 20) + 1])).ToArray();
        var chunk = ImageBytes.Chunk("iTXt", text);
        var bomb = png[..33].Concat(chunk).Concat(png[33..]).ToArray();
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(bomb));
        Assert.Contains("decompression bomb", e.Message);
    }

    static byte[] Deflate(byte[] data)
    {
        var output = new MemoryStream();
        using (var z = new System.IO.Compression.ZLibStream(output, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            z.Write(data);
        return output.ToArray();
    }
}
