using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PureVlm.Formats;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.SafeTensors;

public class MalformedSafeTensorsTests
{
    static byte[] File(byte[] header, int dataBytes, ulong? declaredLength = null)
    {
        var bytes = new byte[8 + header.Length + dataBytes];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), declaredLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        return bytes;
    }

    static byte[] File(string header, int dataBytes, ulong? declaredLength = null) => File(Encoding.UTF8.GetBytes(header), dataBytes, declaredLength);

    const string Good = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";

    /// <summary>Each case: file bytes and a fragment the message must contain.</summary>
    public static TheoryData<string, byte[], string> Cases() => new()
    {
        { "empty file", [], "too short" },
        { "truncated length", [1, 0, 0], "too short" },
        { "huge header length 2^60", File("{}", 0, 1UL << 60), "exceeds" },
        { "header past the end", File(Good, 8, 4096), "runs past the end of the file" },
        { "truncated header", File(Good, 0, (ulong)Good.Length + 8)[..(Good.Length + 4)], "runs past the end of the file" },
        { "truncated data", File(Good, 4), "run past the end of the data section" },
        { "offsets past the end", File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 8), "leave bytes [0, 8)" },
        { "overlapping ranges", File("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8), "overlap" },
        { "hole between tensors", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12), "unused" },
        { "trailing bytes", File(Good, 12), "trailing bytes" },
        { "overflowing shape", File("""{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}""", 8), "overflows" },
        { "negative dim", File("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8), "non-negative integer" },
        { "fractional dim", File("""{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", 8), "non-negative integer" },
        { "size mismatch", File("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8), "needs 12 bytes" },
        { "negative offset", File("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[-1,-1]}}""", 0), "non-negative" },
        { "unknown dtype", File("""{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", 8), "unknown dtype 'F8_E4M3'" },
        { "missing dtype", File("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8), "missing string 'dtype'" },
        { "bad UTF-8", File([.. "{\"a"u8, 0xFF, .. "\":1}"u8], 0), "not valid UTF-8" },
        { "not JSON", File("{this is not json}", 0), "not valid JSON" },
        { "non-object JSON", File("[1,2,3]", 0), "expected '{'" },
        { "entry not an object", File("""{"a":[1]}""", 0), "expected an object" },
        { "leading space", File(" {}", 0), "expected '{'" },
        { "duplicate names", File("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8), "appears twice" },
        { "duplicate field", File("""{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}""", 4), "field 'dtype' appears twice" },
        { "metadata not strings", File("""{"__metadata__":{"k":1}}""", 0), "expected a string" },
        { "too many dims", File("""{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}""", 1), "dimensions" },
        { "too deep", File("""{"a":{"dtype":[[[[[[[[[[1]]]]]]]]]]}}""", 0), "not valid JSON" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_file_is_rejected_naming_file_and_problem(string description, byte[] bytes, string expected)
    {
        using var dir = new TempDir();
        string path = dir.File("bad.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.False(string.IsNullOrEmpty(description));
    }

    [Fact]
    public void Tensor_problems_name_the_tensor()
    {
        using var dir = new TempDir();
        string path = dir.File("bad.safetensors");
        System.IO.File.WriteAllBytes(path, File("""{"vision.w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8));
        var e = Assert.Throws<InvalidModelFileException>(() => SafeTensorsFile.Open(path));
        Assert.Contains("tensor 'vision.w'", e.Message);
    }

    [Fact]
    public void Empty_header_with_no_data_and_zero_sized_tensors_are_valid()
    {
        using var dir = new TempDir();
        string path = dir.File("ok.safetensors");
        System.IO.File.WriteAllBytes(path, File("""{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}  """, 2));
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(["z", "a"], f.Names);
        System.IO.File.WriteAllBytes(dir.File("empty.safetensors"), File("{}      ", 0));
        using var g = SafeTensorsFile.Open(dir.File("empty.safetensors"));
        Assert.Empty(g.Names);
    }

    [Property(MaxTest = 150)]
    public void Random_byte_flips_of_a_valid_file_load_or_throw_InvalidModelFileException(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        byte[] bytes = System.IO.File.ReadAllBytes(System.IO.Path.Combine(TestPaths.Data, "fixtures", "paligemma-tiny", "lora", "rslora", "adapter_model.safetensors"));
        int headerEnd = 8 + BitConverter.ToInt32(bytes, 0);
        int flips = rng.Next(1, 4);
        for (int i = 0; i < flips; i++)
        {
            // Mostly the length and the header, where a flip matters; sometimes truncate.
            int at = rng.Next(10) == 0 ? rng.Next(8) : rng.Next(headerEnd);
            bytes[at] ^= (byte)(1 << rng.Next(8));
        }
        if (rng.Next(8) == 0) bytes = bytes[..rng.Next(bytes.Length)];
        using var dir = new TempDir();
        string path = dir.File("flipped.safetensors");
        System.IO.File.WriteAllBytes(path, bytes);
        try
        {
            using var f = SafeTensorsFile.Open(path);
            foreach (var t in f.Tensors) Assert.Equal(t.ElementCount * t.DType.Size(), t.ByteLength);
        }
        catch (InvalidModelFileException e)
        {
            Assert.StartsWith(path + ":", e.Message);
        }
    }
}
