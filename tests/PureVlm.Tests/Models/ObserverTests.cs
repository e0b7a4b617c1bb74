using PureVlm.Inspection;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>The glass-box hook: names in forward order, attention probabilities, and in-place patching.</summary>
public class ObserverTests
{
    [Fact]
    public void Paligemma_reports_every_stage_in_forward_order()
    {
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var obs = new TraceRecorder();
        var s = model.CreateSession(new SessionOptions { Observer = obs });
        s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]));
        Assert.Equal(new[] { "pixel_values", "vision.embeddings", "vision.layers.0", "vision.layers.1", "vision.post_layernorm", "projector",
            "text.inputs_embeds", "text.layers.0", "text.layers.1", "text.layers.2", "text.norm", "logits" }, obs.Names);
    }

    sealed class StepLog : IForwardObserver
    {
        public List<(string, int, int[])> Events { get; } = new();
        public bool WantsAttentionProbabilities => false;
        public void OnTensor(string name, Tensor tensor, int step) => Events.Add((name, step, tensor.Shape));
    }

    [Fact]
    public void Decode_steps_report_with_their_step_index()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var log = new StepLog();
        var s = model.CreateSession(new SessionOptions { Observer = log });
        s.Prefill(g.Ints("input_ids"));
        s.Decode(4);
        s.Decode(235);
        Assert.Contains(("logits", 0), log.Events.Select(e => (e.Item1, e.Item2)));
        var last = log.Events.Last();
        Assert.Equal("logits", last.Item1);
        Assert.Equal(2, last.Item2);
        Assert.Equal(new[] { 1, 1, 300 }, last.Item3);
    }

    [Fact]
    public void Attention_probabilities_respect_the_gemma2_sliding_window_and_causality()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var obs = new TraceRecorder(wantsAttentionProbabilities: true);
        model.CreateSession(new SessionOptions { Observer = obs }).Prefill(g.Ints("input_ids"));
        var local = obs["text.layers.0.attn_probs"];  // even layer: window 6
        var global = obs["text.layers.1.attn_probs"];
        Assert.Equal(new[] { 4, 20, 20 }, local.Shape);
        for (int h = 0; h < 4; h++)
            for (int i = 0; i < 20; i++)
            {
                float sumLocal = 0, sumGlobal = 0;
                for (int j = 0; j < 20; j++)
                {
                    bool causal = j <= i;
                    Assert.Equal(causal && i - j < 6, local[h, i, j] > 0);
                    Assert.Equal(causal, global[h, i, j] > 0);
                    sumLocal += local[h, i, j]; sumGlobal += global[h, i, j];
                }
                Assert.Equal(1f, sumLocal, 1e-5f);
                Assert.Equal(1f, sumGlobal, 1e-5f);
            }
    }

    [Fact]
    public void Paligemma_prefix_attends_bidirectionally_and_vision_probs_are_full()
    {
        using var g = new GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var obs = new TraceRecorder(wantsAttentionProbabilities: true);
        var s = model.CreateSession(new SessionOptions { Observer = obs });
        s.Prefill(g.Ints("input_ids"), s.EncodeImage(g["pixel_values"]));
        Assert.Equal(new[] { 4, 16, 16 }, obs["vision.layers.1.attn_probs"].Shape);
        var text = obs["text.layers.2.attn_probs"]; // [4, 23, 23]: every prefix token sees every prefix token
        Assert.All(text.Data, p => Assert.True(p > 0));
    }

    /// <summary>Replaces one activation with another buffer's values (activation patching).</summary>
    sealed class Patch(string name, float[] values) : IForwardObserver
    {
        public bool WantsAttentionProbabilities => false;
        public bool WantsAllLogits => true; // the same logits path as the recording, so equality can be exact
        public void OnTensor(string n, Tensor tensor, int step)
        {
            if (n == name && step == 0) values.CopyTo(tensor.Data.AsSpan(0, values.Length));
        }
    }

    [Fact]
    public void Patching_an_activation_changes_what_follows_and_restoring_it_changes_nothing()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var ids = g.Ints("input_ids");
        var rec = new TraceRecorder();
        var baseline = model.CreateSession(new SessionOptions { Observer = rec }).Prefill(ids).ToArray();
        var layer1 = rec["text.layers.1"].Data;

        var same = model.CreateSession(new SessionOptions { Observer = new Patch("text.layers.1", layer1) }).Prefill(ids).ToArray();
        Assert.Equal(baseline, same);

        var zeroed = model.CreateSession(new SessionOptions { Observer = new Patch("text.layers.1", new float[layer1.Length]) }).Prefill(ids).ToArray();
        Assert.True(GoldenFixture.Compare(zeroed, baseline).Diff > 0.1f);
    }
}
