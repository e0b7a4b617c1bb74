using PureVlm.Adapters;
using PureVlm.Formats;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>
/// F16 checkpoints (as <c>weights-tools convert --dtype f16</c> writes them) run end to end: the F16 model and the exact
/// F32 upcast of the same F16 values must give the same logits (1e-5 relative) and the same greedy ids. Only the
/// kernels' weight widening differs between the two, so this isolates the F16 read path.
/// </summary>
public class F16WeightsTests
{
    const float Rtol = 1e-5f;
    const string Fixture = "paligemma2-tiny";

    [Fact]
    public void F16_checkpoint_matches_its_exact_f32_upcast_logits_and_greedy_ids()
    {
        using var tmp = new TempDir();
        string dir = TestPaths.Fixture(Fixture);
        string f16 = ConvertTo(Path.Combine(dir, "model.safetensors"), tmp.File("f16"), DType.F16);
        string f32 = ConvertTo(f16, tmp.File("f32"), DType.F32);
        string config = Path.Combine(dir, "config.json");

        using var g = new GoldenFixture(Fixture, "golden.safetensors");
        using var half = LoadedModel.Load(config, f16);
        using var full = LoadedModel.Load(config, f32);
        AssertSameRun(half.CreateSession(), full.CreateSession(), g);
    }

    [Fact]
    public void F16_lora_adapter_matches_its_exact_f32_upcast()
    {
        using var tmp = new TempDir();
        string adapterDir = Path.Combine(TestPaths.Fixture(Fixture), "lora", "text");
        string f16 = Path.GetDirectoryName(ConvertTo(Path.Combine(adapterDir, "adapter_model.safetensors"), tmp.File("f16"), DType.F16))!;
        string f32 = Path.GetDirectoryName(ConvertTo(Path.Combine(f16, "adapter_model.safetensors"), tmp.File("f32"), DType.F32))!;
        foreach (var d in new[] { f16, f32 }) File.Copy(Path.Combine(adapterDir, "adapter_config.json"), Path.Combine(d, "adapter_config.json"));

        using var g = new GoldenFixture(Fixture, "golden.safetensors");
        using var model = LoadedModel.Load(TestPaths.Fixture(Fixture));
        var half = model.CreateSession(new SessionOptions { Adapters = new AdapterSet([LoraAdapter.Load(f16, model)]) });
        var full = model.CreateSession(new SessionOptions { Adapters = new AdapterSet([LoraAdapter.Load(f32, model)]) });
        AssertSameRun(half, full, g);
    }

    /// <summary>Converts <paramref name="input"/> into <paramref name="outDir"/>, checks every float tensor has <paramref name="dtype"/>, returns the new file.</summary>
    static string ConvertTo(string input, string outDir, DType dtype)
    {
        ConvertCommand.Convert(input, outDir, dtype);
        string output = Path.Combine(outDir, Path.GetFileName(input));
        using var file = SafeTensorsFile.Open(output);
        var floats = file.Tensors.Where(t => t.DType is DType.F32 or DType.BF16 or DType.F16 or DType.F64).ToList();
        Assert.NotEmpty(floats);
        Assert.All(floats, t => Assert.Equal(dtype, t.DType));
        return output;
    }

    /// <summary>Image features, then 12 greedy tokens; every logit row and every id must agree.</summary>
    static void AssertSameRun(InferenceSession half, InferenceSession full, GoldenFixture g)
    {
        var pixels = g["pixel_values"];
        var (fd, fs) = GoldenFixture.Compare(half.EncodeImage(pixels), full.EncodeImage(pixels));
        Assert.True(fd <= Rtol * fs, $"image features: max|diff| {fd:E2}, scale {fs:E2}");

        var options = new GenerationOptions { MaxNewTokens = 12, StopAtEos = false };
        var ids = g.Ints("input_ids");
        var halfIds = half.Generate(ids, half.EncodeImage(pixels), options).Select(t => t.Id).ToArray();
        var fullIds = full.Generate(ids, full.EncodeImage(pixels), options).Select(t => t.Id).ToArray();
        Assert.Equal(12, halfIds.Length);
        Assert.Equal(fullIds, halfIds);

        half.Reset(); full.Reset();
        var a = half.Prefill(ids, half.EncodeImage(pixels)).ToArray();
        var b = full.Prefill(ids, full.EncodeImage(pixels)).ToArray();
        for (int k = 0; ; k++)
        {
            var (diff, scale) = GoldenFixture.Compare(a, b);
            Assert.True(diff <= Rtol * scale, $"logits[{k}]: max|diff| {diff:E2}, scale {scale:E2}");
            if (k == halfIds.Length - 1) break;
            a = half.Decode(halfIds[k]).ToArray();
            b = full.Decode(halfIds[k]).ToArray();
        }
    }
}
