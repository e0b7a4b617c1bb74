using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Sessions;

/// <summary>A cancelled request stops within one layer, even in the middle of a prefill, and leaves its session usable.</summary>
public class CancellationTests
{
    /// <summary>Cancels when it sees <paramref name="trigger"/> at step 0, and records every name it sees afterwards.</summary>
    sealed class CancelAt(string trigger, CancellationTokenSource source) : IForwardObserver
    {
        public List<string> After { get; } = new();
        bool _fired;
        public bool WantsAttentionProbabilities => false;
        public void OnTensor(string name, Tensor tensor, int step)
        {
            if (_fired) After.Add(name);
            else if (name == trigger && step == 0) { _fired = true; source.Cancel(); }
        }
    }

    [Fact]
    public void Cancelling_during_the_prefill_stops_before_the_next_layer()
    {
        using var model = VlmModel.Load(TestPaths.DemoModel);
        var s = Demo.DemoModelTests.Samples[0];
        var image = ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", s.Image));
        using var source = new CancellationTokenSource();
        var observer = new CancelAt("text.layers.0", source);
        Assert.ThrowsAny<OperationCanceledException>(() => model.Generate(image, s.Prompt, new GenerationOptions { Observer = observer }, source.Token));
        Assert.Empty(observer.After); // text.layers.1 never ran

        // The model answers the next request as the reference does.
        Assert.Equal(s.Expected, model.Generate(image, s.Prompt).Text);
    }

    [Fact]
    public void A_session_cancelled_in_the_vision_tower_or_the_prefill_keeps_nothing_and_runs_again_exactly()
    {
        using var g = new Models.GoldenFixture("paligemma-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        using var source = new CancellationTokenSource();
        var observer = new CancelAt("text.layers.1", source);
        var session = model.CreateSession(new SessionOptions { Observer = observer });
        session.Cancel = source.Token;
        var features = session.EncodeImage(g["pixel_values"]);
        Assert.ThrowsAny<OperationCanceledException>(() => session.Prefill(g.Ints("input_ids"), features));
        Assert.Empty(observer.After); // cancelled as layer 1 reported: layer 2 never ran
        Assert.Equal(0, session.Length); // the layers that had appended keys were cut back

        session.Cancel = CancellationToken.None;
        var again = session.Prefill(g.Ints("input_ids"), features).ToArray();
        var fresh = model.CreateSession().Prefill(g.Ints("input_ids"), features).ToArray();
        Assert.Equal(fresh, again);

        using var early = new CancellationTokenSource();
        early.Cancel();
        var cancelled = model.CreateSession();
        cancelled.Cancel = early.Token;
        Assert.ThrowsAny<OperationCanceledException>(() => cancelled.EncodeImage(g["pixel_values"])); // before the first vision layer
    }
}
