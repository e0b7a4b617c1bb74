using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>Quantized checkpoints (MLX affine layout) and quantizing at load, end to end.</summary>
public class QuantizedModelTests
{
    const string Fixture = "paligemma-tiny";

    static float[] PrefillLogits(LoadedModel model, ILinearAdapters? adapters = null, IForwardObserver? observer = null)
    {
        using var g = new GoldenFixture(Fixture, "golden.safetensors");
        var session = model.CreateSession(new SessionOptions { Adapters = adapters, Observer = observer });
        return session.Prefill(g.Ints("input_ids"), session.EncodeImage(g["pixel_values"])).ToArray();
    }

    static string Quantize(string model, string outDir, int bits)
    {
        var r = CommandRunner.WeightsTools("quantize", "--model", model, "--out", outDir, "--bits", bits.ToString());
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains($"to {bits} bits", r.Out);
        return outDir;
    }

    static Dictionary<string, string> Hashes(string dir) => Directory.GetFiles(dir)
        .ToDictionary(f => Path.GetFileName(f), f => System.Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void A_checkpoint_quantized_on_disk_runs_bit_for_bit_as_the_same_model_quantized_at_load(int bits)
    {
        using var dir = new TempDir();
        string source = TestPaths.Fixture(Fixture);
        var before = Hashes(source);
        Quantize(source, dir.Path, bits);
        Assert.Equal(before, Hashes(source));

        using var onDisk = LoadedModel.Load(dir.Path);
        using var atLoad = LoadedModel.Load(source, new QuantizationRecipe(bits, WholeGroupsOnly: true)); // as MLX's files hold them
        using var dense = LoadedModel.Load(source);
        var a = PrefillLogits(onDisk);
        Assert.Equal(a, PrefillLogits(atLoad));
        Assert.NotEqual(PrefillLogits(dense), a);
    }

    /// <summary>On the trained demo model the quantized logits stay close to the float ones (relative RMS over the vocabulary).</summary>
    [Theory]
    [InlineData(8, 0.025)]
    [InlineData(4, 0.1)]
    public void Quantized_demo_model_logits_stay_close_to_the_float_ones(int bits, double tolerance)
    {
        using var dense = VlmModel.Load(TestPaths.DemoModel);
        using var quantized = VlmModel.Load(TestPaths.DemoModel, quantize: new QuantizationRecipe(bits));
        foreach (var (image, prompt) in new[] { ("04-red-circle.png", "caption en"), ("02-blue-square.png", "detect square") })
        {
            var rgb = PureVlm.Formats.Images.ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", image));
            float[] Logits(VlmModel m)
            {
                var session = m.Loaded.CreateSession();
                return session.Prefill(m.PromptIds(prompt), session.EncodeImage(m.Preprocessor.PixelValues(rgb))).ToArray();
            }
            var f = Logits(dense);
            var q = Logits(quantized);
            double mean = f.Average(), spread = Math.Sqrt(f.Average(v => (v - mean) * (v - mean)));
            double rms = Math.Sqrt(f.Zip(q, (x, y) => (double)(x - y) * (x - y)).Average());
            Assert.True(rms < tolerance * spread, $"Q{bits} {image} '{prompt}': logits moved by {rms} RMS against a spread of {spread}");
            Assert.Equal(Array.IndexOf(f, f.Max()), Array.IndexOf(q, q.Max()));
        }
    }

    /// <summary>
    /// Reads what weights-tools quantize wrote with MLX's own rules, not the engine's reader: uint32 words, value i at
    /// bits [i·b, (i+1)·b), weight = scale · q + bias per group of 64; every weight must be within half a step of the source.
    /// </summary>
    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void Quantize_writes_mlx_names_shapes_config_and_values(int bits)
    {
        using var dir = new TempDir();
        Quantize(TestPaths.Fixture(Fixture), dir.Path, bits);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!;
        Assert.Equal(64, (int)config["quantization"]!["group_size"]!);
        Assert.Equal(bits, (int)config["quantization"]!["bits"]!);
        Assert.Equal(config["quantization"]!.ToJsonString(), config["quantization_config"]!.ToJsonString());
        if (bits == 4) Assert.Equal(8, (int)config["quantization"]!["language_model.model.embed_tokens"]!["bits"]!);

        using var source = Checkpoint.Open(TestPaths.Fixture(Fixture));
        using var written = Checkpoint.Open(dir.Path);
        int checkedMatrices = 0;
        foreach (var name in written.Names.Where(n => n.EndsWith(".scales", StringComparison.Ordinal)))
        {
            string module = name[..^".scales".Length];
            var original = source[module + ".weight"];
            var packed = written[module + ".weight"];
            var scales = written[name];
            var biases = written[module + ".biases"];
            int rows = (int)original.Shape[0], columns = (int)original.Shape[1];
            int matrixBits = module.EndsWith("embed_tokens") ? 8 : bits;
            Assert.Equal(DType.U32, packed.DType);
            Assert.Equal([rows, columns * matrixBits / 32], packed.Shape);
            Assert.Equal([rows, columns / 64], scales.Shape);
            Assert.Equal(original.DType, scales.DType);
            var words = packed.As<uint>();
            var s = new float[scales.ElementCount];
            var b = new float[biases.ElementCount];
            scales.ReadFloats(0, s);
            biases.ReadFloats(0, b);
            var w = new float[original.ElementCount];
            original.ReadFloats(0, w);
            int perWord = 32 / matrixBits;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < columns; c++)
                {
                    int i = r * columns + c, g = r * (columns / 64) + c / 64;
                    uint q = (words[i / perWord] >> (matrixBits * (i % perWord))) & ((1u << matrixBits) - 1);
                    float value = s[g] * q + b[g];
                    // Half a step inside the range; MLX's nudge of the scale (so that 0 is exact) can leave the far end
                    // up to about a step beyond the last level, where q is clipped.
                    double bound = q == 0 || q == (1u << matrixBits) - 1 ? 1.1 * Math.Abs(s[g]) : Math.Abs(s[g]) / 2 * 1.0001;
                    Assert.True(Math.Abs(value - w[i]) <= bound + 1e-7, $"{module} [{r}, {c}]: {value} for {w[i]} (scale {s[g]}, q {q})");
                }
            checkedMatrices++;
        }
        Assert.True(checkedMatrices >= 10, $"only {checkedMatrices} quantized matrices");
    }

    /// <summary>mlx-vlm stores the patch embedding's conv kernel channels-last, [d, p, p, C]: it loads to the same model.</summary>
    [Fact]
    public void A_channels_last_patch_kernel_as_mlx_vlm_writes_it_gives_the_same_logits()
    {
        using var dir = new TempDir();
        Quantize(TestPaths.Fixture(Fixture), dir.Path, 8);
        using var hfLayout = LoadedModel.Load(dir.Path);
        var expected = PrefillLogits(hfLayout);
        string file = Path.Combine(dir.Path, "model.safetensors");
        List<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)> tensors;
        using (var c = SafeTensorsFile.Open(file))
            tensors = c.Tensors.Select(t => (t.Name, t.DType, t.Shape, (ReadOnlyMemory<byte>)t.Bytes.ToArray())).ToList();
        int i = tensors.FindIndex(t => t.Name.EndsWith("patch_embedding.weight"));
        var (name, dtype, shape, data) = tensors[i];
        Assert.Equal(DType.F32, dtype);
        long d = shape[0], ch = shape[1], p = shape[2];
        var src = MemoryMarshal.Cast<byte, float>(data.Span);
        var channelsLast = new float[src.Length];
        for (long o = 0; o < d; o++)
            for (long c = 0; c < ch; c++)
                for (long y = 0; y < p; y++)
                    for (long x = 0; x < p; x++) channelsLast[((o * p + y) * p + x) * ch + c] = src[(int)(((o * ch + c) * p + y) * p + x)];
        tensors[i] = (name, dtype, [d, p, p, ch], MemoryMarshal.AsBytes(channelsLast.AsSpan()).ToArray());
        PureVlm.Formats.SafeTensorsWriter.Write(file, tensors, null);
        using var mlxLayout = LoadedModel.Load(dir.Path);
        Assert.Equal(expected, PrefillLogits(mlxLayout));
    }

    [Fact]
    public void Lora_and_observers_work_on_a_quantized_base()
    {
        string adapterDir = Path.Combine(TestPaths.Fixture(Fixture), "lora", "text");
        using var dense = LoadedModel.Load(TestPaths.Fixture(Fixture));
        using var quantized = LoadedModel.Load(TestPaths.Fixture(Fixture), new QuantizationRecipe(8));
        float[] Delta(LoadedModel m) =>
            PrefillLogits(m, new AdapterSet(LoraAdapter.Load(adapterDir, m))).Zip(PrefillLogits(m), (x, y) => x - y).ToArray();
        var dq = Delta(quantized);
        var df = Delta(dense);
        // The random fixture is sensitive to quantization, so the adapter's effect is compared by direction.
        double dot = dq.Zip(df, (x, y) => (double)x * y).Sum();
        double cosine = dot / Math.Sqrt(dq.Sum(v => (double)v * v) * df.Sum(v => (double)v * v));
        Assert.True(cosine > 0.9, $"the adapter moves the quantized model's logits elsewhere than the float model's: cosine {cosine}");

        var trace = new CollectingObserver();
        PrefillLogits(quantized, observer: trace);
        Assert.Contains("text.layers.0", trace.Names);
    }

    /// <summary>Each kind of malformed MLX tensor is a one-line error that names the tensor and says what was expected.</summary>
    [Theory]
    [InlineData("q_proj.scales", "columns", "group_size")]   // scales for a group size that does not divide the columns
    [InlineData("q_proj.weight", "half", "4- and 8-bit")]    // packed words of 2-bit values
    [InlineData("q_proj.biases", "drop", "biases")]          // scales without biases
    [InlineData("q_proj.biases", "f16", "equal shapes")]     // biases in another dtype than the scales
    [InlineData("q_proj.weight", "f32", "packed U32")]       // packed weights that are floats
    public void A_malformed_quantized_tensor_is_an_error_naming_it(string suffix, string change, string expected)
    {
        using var dir = new TempDir();
        Quantize(TestPaths.Fixture(Fixture), dir.Path, 4);
        string file = Path.Combine(dir.Path, "model.safetensors");
        List<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)> tensors;
        using (var c = SafeTensorsFile.Open(file))
            tensors = c.Tensors.Select(t => (t.Name, t.DType, t.Shape, (ReadOnlyMemory<byte>)t.Bytes.ToArray())).ToList();
        string target = tensors.First(t => t.Name.EndsWith(suffix)).Name;
        var broken = new List<(string Name, DType DType, long[] Shape, ReadOnlyMemory<byte> Data)>();
        foreach (var t in tensors)
        {
            if (t.Name != target) { broken.Add(t); continue; }
            switch (change)
            {
                case "columns": broken.Add((t.Name, t.DType, [t.Shape[0], t.Shape[1] * 3], new byte[t.Data.Length * 3])); break;
                case "half": broken.Add((t.Name, t.DType, [t.Shape[0], t.Shape[1] / 2], new byte[t.Data.Length / 2])); break;
                case "f16": broken.Add((t.Name, DType.F16, t.Shape, new byte[t.Data.Length / 2])); break;
                case "f32": broken.Add((t.Name, DType.F32, t.Shape, t.Data)); break;
                default: break; // drop
            }
        }
        PureVlm.Formats.SafeTensorsWriter.Write(file, broken, null);
        var e = Assert.Throws<InvalidModelFileException>(() => LoadedModel.Load(dir.Path));
        Assert.True(e.Message.Contains(target) && e.Message.Contains(expected), e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    sealed class CollectingObserver : IForwardObserver
    {
        public readonly List<string> Names = new();
        public bool WantsAttentionProbabilities => true;
        public void OnTensor(string name, Tensor tensor, int step) => Names.Add(name);
    }
}
