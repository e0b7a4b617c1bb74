using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>
/// BMP and GIF through ImageLoader against what Pillow 9.4 reads from the same files (load_image's open, exif_transpose,
/// convert("RGB")): tests/data/images/bmp-gif/make_cases.py wrote the files, Pillow's pixels and cases.tsv, which also
/// lists the files Pillow refuses; every pixel is compared, and every refusal must be a one-line error naming the file.
/// </summary>
public class BmpGifTests
{
    static string Dir => Path.Combine(TestPaths.Data, "images", "bmp-gif");

    static IEnumerable<string[]> Cases() => File.ReadAllLines(Path.Combine(Dir, "cases.tsv"))
        .Where(line => line.Length > 0).Select(line => line.Split('\t'));

    public static TheoryData<string, int, int> Read()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var c in Cases().Where(c => c[1] != "refused")) data.Add(c[0], int.Parse(c[1]), int.Parse(c[2]));
        return data;
    }

    public static TheoryData<string> Refused()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases().Where(c => c[1] == "refused")) data.Add(c[0]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Read))]
    public void Decodes_exactly_as_pillow(string file, int width, int height)
    {
        var (image, pillow) = PillowCase.Load(Dir, file);
        Assert.Equal((width, height), (image.Width, image.Height));
        Assert.Equal(pillow, image.Pixels);
    }

    [Theory]
    [MemberData(nameof(Refused))]
    public void Refuses_what_pillow_refuses(string file)
    {
        string path = Path.Combine(Dir, file);
        var e = Assert.Throws<InvalidImageException>(() => ImageLoader.Load(path));
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void An_end_code_inside_the_frame_is_read_past_when_more_than_64_KiB_follow()
    {
        // Pillow refuses lzw-end-code-inside.gif as truncated (it has read the whole file when it meets the end code),
        // but with a 70,000-byte comment after the frame it reads on and gets plain.gif's pixels (make_cases.py checks).
        var small = File.ReadAllBytes(Path.Combine(Dir, "lzw-end-code-inside.gif"));
        var big = new List<byte>(small[..^1]) { 0x21, 0xFE };
        for (int i = 0; i < 275; i++) { big.Add(255); big.AddRange(new byte[255]); }
        big.AddRange([0, (byte)';']);
        Assert.Equal(File.ReadAllBytes(Path.Combine(Dir, "plain.gif.rgb")), ImageLoader.Load(big.ToArray()).Pixels);
    }

    [Fact]
    public void Every_cut_of_a_case_decodes_or_is_a_one_line_error()
    {
        foreach (var c in Cases())
        {
            var bytes = File.ReadAllBytes(Path.Combine(Dir, c[0]));
            for (int n = 1; n < bytes.Length; n++)
            {
                try { ImageLoader.Load(bytes.AsSpan(0, n)); }
                catch (InvalidImageException e) { Assert.DoesNotContain('\n', e.Message); }
            }
        }
    }
}
