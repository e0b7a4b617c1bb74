using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>A forward pass that throws part-way leaves the session as it was before the call.</summary>
public class SessionRollbackTests
{
    /// <summary>Throws once, at the first <c>text.layers.1</c> after being armed: layers 0 and 1 have appended K/V, the last has not.</summary>
    sealed class ThrowOnceObserver : IForwardObserver
    {
        public bool Armed { get; set; }
        public bool WantsAttentionProbabilities => false;
        public void OnTensor(string name, Tensor tensor, int step)
        {
            if (!Armed || name != "text.layers.1") return;
            Armed = false;
            throw new InvalidOperationException("observer failure");
        }
    }

    [Fact]
    public void Prefill_retried_after_an_observer_throws_equals_a_fresh_session()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var ids = g.Ints("input_ids");
        var failing = new ThrowOnceObserver { Armed = true };
        var s = model.CreateSession(new SessionOptions { Observer = failing });
        Assert.Throws<InvalidOperationException>(() => s.Prefill(ids));
        Assert.Equal(0, s.Length);
        var retried = s.Prefill(ids).ToArray();
        var fresh = model.CreateSession(new SessionOptions { Observer = new ThrowOnceObserver() }).Prefill(ids).ToArray();
        Assert.Equal(fresh, retried);
    }

    [Fact]
    public void Decode_retried_after_an_observer_throws_equals_an_uninterrupted_decode()
    {
        using var g = new GoldenFixture("gemma2-text-tiny", "golden.safetensors");
        using var model = LoadedModel.Load(g.Dir);
        var ids = g.Ints("input_ids");
        var failing = new ThrowOnceObserver();
        var s = model.CreateSession(new SessionOptions { Observer = failing });
        s.Prefill(ids);
        failing.Armed = true;
        Assert.Throws<InvalidOperationException>(() => s.Decode(7));
        Assert.Equal(ids.Length, s.Length);
        s.Decode(7);
        var retried = s.Decode(8).ToArray();

        var clean = model.CreateSession(new SessionOptions { Observer = new ThrowOnceObserver() });
        clean.Prefill(ids);
        clean.Decode(7);
        var want = clean.Decode(8).ToArray();
        Assert.Equal(want, retried);
        Assert.Equal(ids.Length + 2, s.Length);
    }

}
