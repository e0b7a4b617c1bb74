using System.Text.Json;
using PureVlm.Formats.Images;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Demo;

/// <summary>The embedded demo model against the reference's greedy outputs in its samples/expected.jsonl.</summary>
public class DemoModelTests : IClassFixture<DemoModelTests.Loaded>
{
    public sealed class Loaded : IDisposable
    {
        public VlmModel Model { get; } = VlmModel.Load(TestPaths.DemoModel);
        public void Dispose() => Model.Dispose();
    }

    public sealed record Sample(string Image, string Prompt, string Expected, int[] PromptIds, int[] ExpectedIds);

    public static IReadOnlyList<Sample> Samples { get; } = File.ReadLines(Path.Combine(TestPaths.DemoModel, "samples", "expected.jsonl"))
        .Select(line => JsonDocument.Parse(line).RootElement)
        .Select(e => new Sample(e.GetProperty("image").GetString()!, e.GetProperty("prompt").GetString()!, e.GetProperty("expected").GetString()!,
            e.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            e.GetProperty("expected_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()))
        .ToList();

    public static TheoryData<int> SampleIndices() => new(Enumerable.Range(0, Samples.Count));

    readonly VlmModel _model;
    public DemoModelTests(Loaded loaded) => _model = loaded.Model;

    static RgbImage Image(Sample s) => ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", s.Image));

    static int[] IdsWithEos(GenerationResult r) => [.. r.Tokens.Select(t => t.Id), 1];

    [Fact]
    public void Expected_file_has_all_24_prompts() => Assert.Equal(24, Samples.Count);

    [Theory]
    [MemberData(nameof(SampleIndices))]
    public void Sample_prompt_gives_the_reference_ids_and_text(int index)
    {
        var s = Samples[index];
        Assert.Equal([.. Enumerable.Repeat(4, 64), .. s.PromptIds], _model.PromptIds(s.Prompt));
        var result = _model.Generate(Image(s), s.Prompt, new GenerationOptions { MaxNewTokens = 32 });
        Assert.Equal(s.ExpectedIds, IdsWithEos(result));
        Assert.Equal(s.Expected, result.Text);
    }

    [Fact]
    public void Concurrent_requests_on_one_model_give_the_sequential_answers()
    {
        var samples = Samples.Take(8).ToList();
        var images = samples.Select(Image).ToList();
        var sequential = samples.Select((s, i) => _model.Generate(images[i], s.Prompt).Text).ToList();
        var parallel = new string[samples.Count];
        Parallel.For(0, samples.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 },
            i => parallel[i] = _model.Generate(images[i], samples[i].Prompt).Text);
        Assert.Equal(sequential, parallel);
    }

    [Fact]
    public async Task Streaming_gives_the_same_text_and_stops_when_cancelled()
    {
        var s = Samples[1]; // a detect prompt: six tokens
        var pieces = new List<string>();
        await foreach (var piece in _model.GenerateStreaming(Image(s), s.Prompt)) pieces.Add(piece);
        Assert.Equal(s.Expected, string.Concat(pieces));

        using var cancel = new CancellationTokenSource();
        var seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var piece in _model.GenerateStreaming(Image(s), s.Prompt, cancel: cancel.Token))
            {
                seen++;
                cancel.Cancel();
            }
        });
        Assert.Equal(1, seen);
    }

    [Fact]
    public void Detect_answers_are_parsed_into_boxes_in_original_pixels()
    {
        foreach (var s in Samples.Where(x => x.Prompt.StartsWith("detect ", StringComparison.Ordinal)))
        {
            var image = Image(s);
            var d = Assert.Single(_model.Generate(image, s.Prompt).Detections);
            // The reference answer is <locY0><locX0><locY1><locX1> label; each value n is n/1024 of the side.
            var loc = System.Text.RegularExpressions.Regex.Matches(s.Expected, @"<loc(\d{4})>").Select(m => int.Parse(m.Groups[1].Value)).ToArray();
            Assert.Equal(s.Expected[(s.Expected.LastIndexOf('>') + 1)..].Trim(), d.Label);
            Assert.Equal(new[] { loc[1] / 1024f * image.Width, loc[0] / 1024f * image.Height, loc[3] / 1024f * image.Width, loc[2] / 1024f * image.Height }, d.Box);
        }
    }
}

public class VlmModelLifetimeTests
{
    [Fact]
    public async Task Dispose_during_a_streamed_request_lets_it_finish_and_refuses_new_ones()
    {
        var model = VlmModel.Load(TestPaths.DemoModel);
        var s = DemoModelTests.Samples.First(x => x.Prompt.StartsWith("detect ", StringComparison.Ordinal));
        var image = PureVlm.Formats.Images.ImageLoader.Load(Path.Combine(TestPaths.DemoModel, "samples", s.Image));
        var pieces = new List<string>();
        await foreach (var piece in model.GenerateStreaming(image, s.Prompt))
        {
            if (pieces.Count == 0) model.Dispose(); // the weights must stay mapped until this request ends
            pieces.Add(piece);
        }
        Assert.Equal(s.Expected, string.Concat(pieces));
        Assert.Throws<ObjectDisposedException>(() => model.Generate(image, "caption en"));
        model.Dispose(); // twice is harmless
    }
}
