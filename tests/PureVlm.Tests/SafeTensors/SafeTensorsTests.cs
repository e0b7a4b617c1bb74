using System.Buffers.Binary;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using PureVlm.Formats;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.SafeTensors;

/// <summary>A scratch directory deleted at dispose.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>The directory.</summary>
    public string Path { get; } = Directory.CreateTempSubdirectory("purevlm-st-").FullName;
    /// <summary>A path inside the directory.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);
    /// <inheritdoc/>
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}

public class SafeTensorsReadWriteTests
{
    public static IEnumerable<object[]> FixtureFiles() =>
        Directory.EnumerateFiles(System.IO.Path.Combine(TestPaths.Data, "fixtures"), "*.safetensors", SearchOption.AllDirectories)
            .Append(System.IO.Path.Combine(TestPaths.DemoModel, "model.safetensors"))
            .Select(f => new object[] { System.IO.Path.GetRelativePath(TestPaths.Data, f) });

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void Fixture_loads_and_writer_reproduces_it_byte_for_byte(string relative)
    {
        string path = System.IO.Path.GetFullPath(System.IO.Path.Combine(TestPaths.Data, relative));
        using var file = SafeTensorsFile.Open(path);
        Assert.NotEmpty(file.Names);
        Assert.Equal(file.FileLength - file.DataOffset, file.Tensors.Sum(t => t.ByteLength));
        using var dir = new TempDir();
        string copy = dir.File("copy.safetensors");
        SafeTensorsWriter.Write(copy, file.Tensors.Select(t => (t.Name, t.DType, t.Shape, (ReadOnlyMemory<byte>)t.Bytes.ToArray())), file.Metadata);
        using var reread = SafeTensorsFile.Open(copy);
        Assert.Equal(file.Names.Order(StringComparer.Ordinal), reread.Names);
        foreach (var t in file.Tensors)
            Assert.True(t.Bytes.SequenceEqual(reread[t.Name].Bytes), t.Name);
        // The golden fixtures were written with sorted keys and metadata last, our layout; the demo model was not.
        if (relative.StartsWith("fixtures") && file.Metadata.Count == 1)
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
    }

    [Fact]
    public void Writer_pads_header_to_8_and_puts_default_metadata_last()
    {
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorsWriter.F32("b", [1f, 2f, 3f], 3), SafeTensorsWriter.I64("a", [7L], 1)]);
        byte[] bytes = File.ReadAllBytes(path);
        long n = BinaryPrimitives.ReadInt64LittleEndian(bytes);
        Assert.Equal(0, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        Assert.Equal("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]},\"__metadata__\":{\"format\":\"pt\"}}",
            header.TrimEnd(' '));
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal([1f, 2f, 3f], f["b"].As<float>().ToArray());
        Assert.Equal(7L, f["a"].As<long>()[0]);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Single(Directory.GetFiles(dir.Path)); // no temporary file left behind
    }

    [Fact]
    public void Writer_failure_leaves_no_file_and_keeps_the_old_one()
    {
        using var dir = new TempDir();
        string path = dir.File("a.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorsWriter.F32("x", [1f], 1)]);
        byte[] before = File.ReadAllBytes(path);
        var headers = new[] { new TensorHeader("x", DType.F32, [4]) };
        Assert.Throws<InvalidOperationException>(() => SafeTensorsWriter.WriteStreaming(path, headers, (_, s) => s.Write(new byte[3])));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(dir.File("b.safetensors"), [("x", DType.F32, new long[] { 2 }, new byte[4])]));
        Assert.False(File.Exists(dir.File("b.safetensors")));
    }

    static readonly DType[] AllDTypes = Enum.GetValues<DType>();

    [Property(MaxTest = 40)]
    public void Round_trip_preserves_every_dtype_shape_and_byte(PositiveInt seed)
    {
        var rng = new Random(seed.Get);
        int count = rng.Next(0, 6);
        var tensors = new List<(string, DType, long[], ReadOnlyMemory<byte>)>();
        for (int i = 0; i < count; i++)
        {
            var dtype = AllDTypes[rng.Next(AllDTypes.Length)];
            var shape = Enumerable.Range(0, rng.Next(0, 4)).Select(_ => (long)rng.Next(0, 5)).ToArray();
            var bytes = new byte[shape.Aggregate(1L, (a, b) => a * b) * dtype.Size()];
            rng.NextBytes(bytes);
            tensors.Add(($"t{i}.{dtype}", dtype, shape, bytes));
        }
        using var dir = new TempDir();
        string path = dir.File("p.safetensors");
        SafeTensorsWriter.Write(path, tensors);
        using var f = SafeTensorsFile.Open(path);
        Assert.Equal(count, f.Names.Count);
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            var t = f[name];
            Assert.Equal(dtype, t.DType);
            Assert.Equal(shape, t.Shape);
            Assert.True(bytes.Span.SequenceEqual(t.Bytes));
        }
    }

    [Fact]
    public void Sharded_checkpoint_written_with_the_writer_opens_as_one()
    {
        using var dir = new TempDir();
        SafeTensorsWriter.Write(dir.File("model-00001-of-00002.safetensors"), [SafeTensorsWriter.F32("a.weight", [1f, 2f], 2)]);
        SafeTensorsWriter.Write(dir.File("model-00002-of-00002.safetensors"), [SafeTensorsWriter.F32("b.weight", [3f], 1), SafeTensorsWriter.I64("c", [5L], 1)]);
        File.WriteAllText(dir.File(Checkpoint.IndexFileName),
            """{"metadata":{"total_size":20},"weight_map":{"a.weight":"model-00001-of-00002.safetensors","b.weight":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}""");
        using var ckpt = Checkpoint.Open(dir.Path);
        Assert.Equal(2, ckpt.Files.Count);
        Assert.Equal(["a.weight", "b.weight", "c"], ckpt.Names.ToArray());
        Assert.Equal(3f, ckpt["b.weight"].As<float>()[0]);
    }

    [Fact]
    public void Sharded_checkpoint_with_a_tensor_missing_from_its_shard_is_rejected()
    {
        using var dir = new TempDir();
        SafeTensorsWriter.Write(dir.File("s1.safetensors"), [SafeTensorsWriter.F32("a", [1f], 1)]);
        File.WriteAllText(dir.File(Checkpoint.IndexFileName), """{"weight_map":{"a":"s1.safetensors","ghost":"s1.safetensors"}}""");
        var e = Assert.Throws<InvalidModelFileException>(() => Checkpoint.Open(dir.Path));
        Assert.Contains("ghost", e.Message);
        File.WriteAllText(dir.File(Checkpoint.IndexFileName), """{"weight_map":{"a":"../s1.safetensors"}}""");
        e = Assert.Throws<InvalidModelFileException>(() => Checkpoint.Open(dir.Path));
        Assert.Contains("expected a file name in the same directory", e.Message);
        File.WriteAllText(dir.File(Checkpoint.IndexFileName), """{"weight_map":{"a":7}}""");
        Assert.Throws<InvalidModelFileException>(() => Checkpoint.Open(dir.Path));
    }
}
