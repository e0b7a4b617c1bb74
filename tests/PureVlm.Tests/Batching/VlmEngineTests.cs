using PureVlm.Formats.Images;
using PureVlm.Runtime;
using PureVlm.Tests.Demo;
using Xunit;

namespace PureVlm.Tests.Batching;

/// <summary>The engine that batches requests, on the demo model against the reference answers of samples/expected.jsonl.</summary>
public class VlmEngineTests : IClassFixture<DemoModelTests.Loaded>
{
    readonly VlmModel _model;
    public VlmEngineTests(DemoModelTests.Loaded loaded) => _model = loaded.Model;

    static RgbImage Image(DemoModelTests.Sample s) => ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", s.Image));

    [Fact(Timeout = 120_000)]
    public async Task All_reference_prompts_at_once_give_the_reference_answers()
    {
        using var engine = new VlmEngine(_model, maxBatch: 8, maxQueue: 64);
        var samples = DemoModelTests.Samples;
        // All 24 queued at once: prompts of 3 to 10 text tokens join and leave the batch at different steps.
        var answers = await Task.WhenAll(samples.Select(s => engine.GenerateAsync(Image(s), s.Prompt, new GenerationOptions { MaxNewTokens = 32 })));
        for (int i = 0; i < samples.Count; i++)
        {
            Assert.Equal(samples[i].Expected, answers[i].Text);
            Assert.Equal(samples[i].ExpectedIds[..^1], answers[i].Tokens.Select(t => t.Id).ToArray());
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Pieces_stream_in_order_and_make_the_answer()
    {
        using var engine = new VlmEngine(_model);
        var s = DemoModelTests.Samples.First(x => x.Prompt.StartsWith("detect"));
        var pieces = new List<string>();
        var result = await engine.GenerateAsync(Image(s), s.Prompt, new GenerationOptions { TopLogprobs = 5 }, (piece, _) => pieces.Add(piece));
        Assert.Equal(s.Expected, string.Concat(pieces));
        Assert.All(result.Tokens, t => Assert.Equal(t.Id, t.TopLogprobs![0].Id)); // greedy: the chosen token is the most likely
        Assert.NotEmpty(result.Detections);
    }

    [Fact(Timeout = 60_000)]
    public async Task Bad_input_is_refused_before_queueing_and_a_full_queue_says_so()
    {
        using var engine = new VlmEngine(_model, maxBatch: 1, maxQueue: 0);
        var s = DemoModelTests.Samples[0];
        var image = Image(s);
        await Assert.ThrowsAsync<ArgumentException>(() => engine.GenerateAsync([], s.Prompt));
        await Assert.ThrowsAsync<ArgumentException>(() => engine.GenerateAsync(Image(s), s.Prompt, new GenerationOptions { Adapters = ["nope"] }));
        await Assert.ThrowsAsync<ContextLengthException>(() => engine.GenerateAsync(Image(s), s.Prompt, new GenerationOptions { MaxNewTokens = 1 << 20 }));

        using var hold = new CancellationTokenSource();
        var first = engine.GenerateAsync(image, s.Prompt, new GenerationOptions { MaxNewTokens = 4000, StopAtEos = false }, cancel: hold.Token);
        await Assert.ThrowsAsync<QueueFullException>(() => engine.GenerateAsync(image, s.Prompt));
        hold.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
    }

    [Fact(Timeout = 60_000)]
    public async Task Cancelling_one_request_stops_it_within_a_step_and_leaves_the_others()
    {
        using var engine = new VlmEngine(_model);
        var s = DemoModelTests.Samples[0];
        using var cancel = new CancellationTokenSource();
        int piecesAfterCancel = 0;
        bool cancelled = false;
        var endless = engine.GenerateAsync(Image(s), s.Prompt, new GenerationOptions { MaxNewTokens = 4000, StopAtEos = false }, (_, _) =>
        {
            if (cancelled) piecesAfterCancel++;
            if (!cancelled) { cancelled = true; cancel.Cancel(); }
        }, cancel.Token);
        var other = engine.GenerateAsync(Image(s), s.Prompt);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => endless);
        Assert.True(piecesAfterCancel <= 1, $"{piecesAfterCancel} pieces after the cancel");
        Assert.Equal(s.Expected, (await other).Text);
    }
}
