using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>
/// Proves the Linear hook is enough for unmerged LoRA: a minimal test-only adapter (fixed scale alpha/r = 2, no config
/// parsing — LoRA loading belongs to another area) reproduces the text and vision LoRA goldens of paligemma-tiny.
/// </summary>
public class LinearHookTests
{
    /// <summary>y += scale · (x·Aᵀ)·Bᵀ for every module with lora_A/lora_B in the file.</summary>
    sealed class TestLora : ILinearAdapters
    {
        readonly Dictionary<string, (float[] A, float[] B, int R)> _pairs = new();
        readonly float _scale;

        public TestLora(float scale, params string[] files)
        {
            _scale = scale;
            foreach (var file in files)
            {
                using var f = SafeTensorsFile.Open(file);
                foreach (var name in f.Names.Where(n => n.EndsWith(".lora_A.weight")))
                {
                    string module = name["base_model.model.".Length..^".lora_A.weight".Length];
                    var a = f[name].ToTensor();
                    var b = f[name.Replace("lora_A", "lora_B")].ToTensor();
                    _pairs[module] = (a.Data, b.Data, a.Shape[0]);
                }
            }
        }

        public void Apply(Linear linear, ReadOnlySpan<float> x, int m, Span<float> y)
        {
            if (!_pairs.TryGetValue(linear.ModulePath, out var p)) return;
            int k = linear.InFeatures, n = linear.OutFeatures;
            Span<float> h = stackalloc float[p.R];
            for (int i = 0; i < m; i++)
            {
                for (int r = 0; r < p.R; r++)
                {
                    float s = 0;
                    for (int j = 0; j < k; j++) s += x[i * k + j] * p.A[r * k + j];
                    h[r] = s * _scale;
                }
                for (int o = 0; o < n; o++)
                {
                    float s = 0;
                    for (int r = 0; r < p.R; r++) s += h[r] * p.B[o * p.R + r];
                    y[i * n + o] += s;
                }
            }
        }
    }

    [Theory]
    [InlineData("golden-text.safetensors", "text")]
    [InlineData("golden-vision.safetensors", "vision")]
    [InlineData("golden-text+vision.safetensors", "text", "vision")]
    public void Unmerged_lora_through_the_linear_hook_matches_golden(string golden, params string[] adapters)
    {
        var dir = TestPaths.Fixture("paligemma-tiny");
        var lora = new TestLora(2f, adapters.Select(a => Path.Combine(dir, "lora", a, "adapter_model.safetensors")).ToArray());
        using var g = new GoldenFixture("paligemma-tiny", Path.Combine("lora", golden));
        using var pixels = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(dir);
        var obs = new RecordingObserver();
        var s = model.CreateSession(new SessionOptions { Adapters = lora, Observer = obs });
        s.Prefill(pixels.Ints("input_ids"), s.EncodeImage(pixels["pixel_values"]));
        foreach (var name in new[] { "projector", "text.layers.2", "logits" })
        {
            var (diff, scale) = GoldenFixture.Compare(obs.Tensors[name].Span, g[name].Span);
            Assert.True(diff <= GoldenFixture.Rtol * scale, $"{name}: max|diff| {diff:E2}, rel {diff / scale:E2}");
        }
        var gen = model.CreateSession(new SessionOptions { Adapters = lora });
        var ids = gen.Generate(pixels.Ints("input_ids"), gen.EncodeImage(pixels["pixel_values"]), new GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), ids.Select(t => t.Id).ToArray());
    }
}
