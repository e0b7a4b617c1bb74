using PureVlm.Adapters;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tests.Lora;
using Xunit;

namespace PureVlm.Tests.Batching;

/// <summary>
/// A batched decode step gives every sequence exactly the logits it gets decoding alone, bit for bit: prompts of
/// different lengths, different adapters per sequence, F32 and BF16 weights (whose m = 1 and m > 1 kernels differ).
/// </summary>
public class BatchDecoderTests
{
    // Four requests that differ in every per-sequence thing: prompt length, adapters (none, text, text + vision, rsLoRA).
    static readonly (int TextTokens, string[] Adapters)[] Requests = [(3, []), (9, ["text"]), (1, ["text", "vision"]), (17, ["rslora"])];
    const int Steps = 10;

    [Theory]
    [InlineData("paligemma-tiny", "model.safetensors")]
    [InlineData("paligemma2-tiny", "model.safetensors")]
    [InlineData("paligemma2-tiny", "model-bf16.safetensors")]
    [InlineData("llava-tiny", "model.safetensors")] // causal, 0-based positions, LLaMA layers; no adapters in this fixture
    [InlineData("gemma3-tiny", "model.safetensors")] // bidirectional image blocks in the mask, QK-norm, per-layer RoPE base and scaling, sliding window
    [InlineData("gemma3-tiny", "model-bf16.safetensors")]
    [InlineData("molmo-tiny", "model.safetensors")] // fused q/k/v and up/gate, multi-crop images
    public void Batched_steps_equal_single_steps(string fixture, string weights)
    {
        bool hasAdapters = Directory.Exists(Path.Combine(TestPaths.Fixture(fixture), "lora"));
        string dir = TestPaths.Fixture(fixture);
        using var model = LoadedModel.Load(Path.Combine(dir, "config.json"), Path.Combine(dir, weights));
        var vlm = model.VisionLanguage!;
        var image = ImageLoader.Load(Path.Combine(dir, "input.png"));
        // Molmo's image is a set of crops whose tiling sets its image tokens; the others take one pixel_values.
        var crops = vlm is IMultiCropVisionModel ? MolmoImageProcessor.FromCheckpoint(dir).Process(image) : null;
        var pixels = crops == null ? ImagePreprocessor.FromCheckpoint(dir).PixelValues(image) : null;
        var format = ModelFamilies.PromptFormat(vlm);
        int bos = model.Config.BosTokenId >= 0 ? model.Config.BosTokenId : IPromptFormat.FillerId(0);
        float[] Encode(InferenceSession session) => crops != null ? session.EncodeImage(crops) : session.EncodeImage(pixels!);

        InferenceSession NewSession((int TextTokens, string[] Adapters) r) => model.CreateSession(new SessionOptions
        {
            Adapters = r.Adapters.Length == 0 || !hasAdapters ? null : new AdapterSet(LoraGoldens.Load(model, fixture, r.Adapters)),
        });
        int[] Prompt(int textTokens) => crops != null ? MolmoPrompt.SyntheticIds([crops], textTokens, bos, model.Config.ImageTokenIndex)
            : format.SyntheticIds(images: 1, textTokens, bos);

        // Alone: prefill, then greedy decode steps, keeping each step's logits.
        var alone = Requests.Select(r =>
        {
            var session = NewSession(r);
            var logits = new List<float[]> { session.Prefill(Prompt(r.TextTokens), Encode(session)).ToArray() };
            for (int k = 0; k < Steps; k++) logits.Add(session.Decode(ArgMax(logits[^1])).ToArray());
            return logits;
        }).ToList();

        // Together: the same prefills, then every step batched.
        var sessions = Requests.Select(NewSession).ToList();
        var last = Requests.Select((r, s) => ArgMax(sessions[s].Prefill(Prompt(r.TextTokens), Encode(sessions[s])))).ToArray();
        var decoder = new BatchDecoder(model);
        int vocab = model.Config.Text.VocabSize;
        for (int k = 0; k < Steps; k++)
        {
            var logits = decoder.Decode(sessions, last);
            Assert.Equal(Requests.Length * vocab, logits.Length);
            for (int s = 0; s < Requests.Length; s++)
            {
                var row = logits.Slice(s * vocab, vocab).ToArray();
                Assert.True(alone[s][k + 1].AsSpan().SequenceEqual(row), $"step {k}, sequence {s}: batched logits differ from the single run's");
                last[s] = ArgMax(row);
            }
        }
        Assert.All(sessions.Zip(Requests), p => Assert.Equal(Prompt(p.Second.TextTokens).Length + Steps, p.First.Length));
    }

    [Fact]
    public void A_failing_step_leaves_every_session_as_it_was()
    {
        string dir = TestPaths.Fixture("paligemma-tiny");
        using var model = LoadedModel.Load(dir);
        var sessions = Enumerable.Range(0, 3).Select(_ => model.CreateSession()).ToList();
        int[] prompt = [2, 17, 251];
        foreach (var s in sessions) s.Prefill(prompt, default(ReadOnlySpan<float>));
        var decoder = new BatchDecoder(model);
        Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Decode(sessions, [5, 6, 100_000]));
        Assert.All(sessions, s => Assert.Equal(prompt.Length, s.Length));
        Assert.Throws<ArgumentException>(() => decoder.Decode([sessions[0], sessions[0]], [5, 6]));
    }

    static int ArgMax(ReadOnlySpan<float> x) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(x);
}
