using System.IO.Compression;
using System.Text;
using PureVlm.Formats;
using PureVlm.Segmentation;
using Xunit;

namespace PureVlm.Tests.Segmentation;

/// <summary>
/// A corpus of broken <c>vae-oid.npz</c> files, each made from the fixture by one change: every one is refused with a
/// one-line <see cref="InvalidModelFileException"/> naming the file and (where there is one) the member.
/// </summary>
public class NpzValidationTests
{
    static Dictionary<string, byte[]> Members()
    {
        using var zip = ZipFile.OpenRead(SegFixture.Npz);
        return zip.Entries.ToDictionary(e => e.FullName, e => { using var s = e.Open(); var m = new MemoryStream(); s.CopyTo(m); return m.ToArray(); });
    }

    static byte[] Npy(string descr, string shape, bool fortran, ReadOnlySpan<byte> data)
    {
        string dict = $"{{'descr': '{descr}', 'fortran_order': {(fortran ? "True" : "False")}, 'shape': {shape}, }}";
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string header = dict.PadRight(total - 10 - 1) + "\n";
        var bytes = new List<byte> { 0x93 };
        bytes.AddRange("NUMPY"u8.ToArray());
        bytes.AddRange(new byte[] { 1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8) });
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        bytes.AddRange(data.ToArray());
        return bytes.ToArray();
    }

    static byte[] Data(byte[] npy) => npy[(10 + BitConverter.ToUInt16(npy, 8))..];

    static string Write(IEnumerable<(string Name, byte[] Bytes)> members, CompressionLevel level = CompressionLevel.NoCompression)
    {
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-npz-{Guid.NewGuid():N}.npz");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            foreach (var (name, bytes) in members)
            {
                using var s = zip.CreateEntry(name, level).Open();
                s.Write(bytes);
            }
        return path;
    }

    static string With(string member, byte[]? replacement)
    {
        var m = Members();
        if (replacement == null) m.Remove(member); else m[member] = replacement;
        return Write(m.Select(kv => (kv.Key, kv.Value)));
    }

    static void AssertRefused(string path, params string[] mentions)
    {
        try
        {
            var e = Assert.Throws<InvalidModelFileException>(() => VqVaeDecoder.Load(path));
            Assert.DoesNotContain('\n', e.Message);
            Assert.Contains(path, e.Message);
            foreach (var m in mentions) Assert.Contains(m, e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void The_fixture_loads_and_unused_members_are_ignored()
    {
        var m = Members();
        Assert.Equal(49, m.Count); // 22 encoder, 24 decoder, codebook, 2 EMA buffers
        var d = VqVaeDecoder.Load(SegFixture.Npz);
        Assert.Equal(["decoder.4", "decoder.6", "decoder.8", "decoder.10"], d.Upsample.Select(u => u.Name));
        // Without the encoder and EMA buffers the decoder still loads.
        string path = Write(m.Where(kv => kv.Key.StartsWith("decoder.") || kv.Key == "_vq_vae._embedding.npy").Select(kv => (kv.Key, kv.Value)));
        try { Assert.Equal(path, VqVaeDecoder.Load(path).Path); } finally { File.Delete(path); }
    }

    [Fact]
    public void A_missing_file_or_a_file_that_is_not_a_zip()
    {
        AssertRefused(Path.Combine(Path.GetTempPath(), $"absent-{Guid.NewGuid():N}.npz"), "not found");
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-npz-{Guid.NewGuid():N}.npz");
        File.WriteAllText(path, "this is not a zip file at all");
        AssertRefused(path, "zip");
    }

    [Fact]
    public void A_truncated_zip()
    {
        var bytes = File.ReadAllBytes(SegFixture.Npz);
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-npz-{Guid.NewGuid():N}.npz");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertRefused(path, "zip");
    }

    [Fact]
    public void A_missing_member() => AssertRefused(With("decoder.6.weight.npy", null), "decoder.6.weight.npy", "[128, 64, 4, 4]");

    [Fact]
    public void A_wrong_shape() =>
        AssertRefused(With("decoder.4.weight.npy", Npy("<f4", "(128, 128, 2, 8)", false, Data(Members()["decoder.4.weight.npy"]))),
            "decoder.4.weight.npy", "(128, 128, 2, 8)", "[128, 128, 4, 4]");

    [Fact]
    public void Fortran_order() =>
        AssertRefused(With("decoder.0.weight.npy", Npy("<f4", "(128, 512, 1, 1)", true, Data(Members()["decoder.0.weight.npy"]))),
            "decoder.0.weight.npy", "Fortran");

    [Fact]
    public void Big_endian() =>
        AssertRefused(With("decoder.0.bias.npy", Npy(">f4", "(128,)", false, new byte[512])), "decoder.0.bias.npy", "big-endian");

    [Fact]
    public void Object_array() =>
        AssertRefused(With("_vq_vae._embedding.npy", Npy("|O", "(128, 512)", false, "\x80\x04N."u8)), "_vq_vae._embedding.npy", "object array");

    [Fact]
    public void Float64() =>
        AssertRefused(With("decoder.12.bias.npy", Npy("<f8", "(1,)", false, new byte[8])), "decoder.12.bias.npy", "'<f8'");

    [Fact]
    public void Data_shorter_or_longer_than_the_shape()
    {
        var data = Data(Members()["decoder.2.net.0.bias.npy"]);
        AssertRefused(With("decoder.2.net.0.bias.npy", Npy("<f4", "(128,)", false, data[..100])), "decoder.2.net.0.bias.npy", "ends after 100 bytes");
        AssertRefused(With("decoder.2.net.0.bias.npy", Npy("<f4", "(128,)", false, [.. data, 0, 0, 0, 0])), "decoder.2.net.0.bias.npy", "runs past");
    }

    [Fact]
    public void Not_an_npy_member_or_a_truncated_header()
    {
        AssertRefused(With("decoder.8.bias.npy", "PK not numpy"u8.ToArray()), "decoder.8.bias.npy", "magic");
        AssertRefused(With("decoder.8.bias.npy", Npy("<f4", "(32,)", false, [])[..20]), "decoder.8.bias.npy", "header is truncated");
        var v9 = Npy("<f4", "(32,)", false, new byte[128]);
        v9[6] = 9;
        AssertRefused(With("decoder.8.bias.npy", v9), "decoder.8.bias.npy", "version 9");
    }

    [Fact]
    public void A_duplicated_member()
    {
        var m = Members();
        string path = Write(m.Select(kv => (kv.Key, kv.Value)).Append(("decoder.10.bias.npy", m["decoder.10.bias.npy"])));
        AssertRefused(path, "decoder.10.bias.npy", "twice");
    }

    [Fact]
    public void A_zip_bomb_is_refused_before_it_is_inflated()
    {
        // 16 MB of zeros deflate to about 16 KB; the member declares 16 MB for a 512-byte bias.
        var m = Members();
        m["decoder.0.bias.npy"] = Npy("<f4", "(128,)", false, new byte[16 << 20]);
        string path = Write(m.Select(kv => (kv.Key, kv.Value)), CompressionLevel.Optimal);
        Assert.True(new FileInfo(path).Length < new FileInfo(SegFixture.Npz).Length + (1 << 20)); // the bomb adds little to the file
        long before = GC.GetAllocatedBytesForCurrentThread();
        AssertRefused(path, "decoder.0.bias.npy", "declares 16777");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 << 20, "the bomb was inflated");
    }

    [Fact]
    public void Corrupt_deflate_data()
    {
        var m = Members();
        string path = Write(m.Select(kv => (kv.Key, kv.Value)), CompressionLevel.Optimal);
        // Overwrite the middle of the compressed stream of the largest member (the codebook or decoder.4's weights).
        var bytes = File.ReadAllBytes(path);
        using (var zip = ZipFile.OpenRead(path))
        {
            var largest = zip.Entries.Where(e => e.FullName.StartsWith("decoder.4.weight")).Single();
            Assert.True(largest.CompressedLength > 1000);
        }
        int at = IndexOf(bytes, "decoder.4.weight.npy"u8.ToArray()) + 400;
        for (int i = 0; i < 200; i++) bytes[at + i] = (byte)(i * 37);
        File.WriteAllBytes(path, bytes);
        AssertRefused(path, "decoder.4.weight.npy");
    }

    [Fact]
    public void A_flipped_byte_in_a_stored_member()
    {
        var bytes = File.ReadAllBytes(SegFixture.Npz);
        bytes[IndexOf(bytes, "decoder.6.weight.npy"u8.ToArray()) + 5000] ^= 0x40;
        string path = Path.Combine(Path.GetTempPath(), $"purevlm-npz-{Guid.NewGuid():N}.npz");
        File.WriteAllBytes(path, bytes);
        AssertRefused(path, "decoder.6.weight.npy", "CRC-32");
    }

    static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        throw new InvalidOperationException("not found");
    }
}
