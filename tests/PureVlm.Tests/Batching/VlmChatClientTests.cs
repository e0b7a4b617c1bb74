using Microsoft.Extensions.AI;
using PureVlm.AI;
using PureVlm.Tests.Demo;
using Xunit;

namespace PureVlm.Tests.Batching;

/// <summary>The demo model through Microsoft.Extensions.AI's IChatClient, against samples/expected.jsonl.</summary>
public class VlmChatClientTests(DemoModelTests.Loaded loaded) : IClassFixture<DemoModelTests.Loaded>
{
    static ChatMessage Ask(DemoModelTests.Sample s) => new(ChatRole.User,
        [new TextContent(s.Prompt), new DataContent(File.ReadAllBytes(Path.Combine(TestPaths.DemoModel, "samples", s.Image)), "image/png")]);

    [Fact(Timeout = 60_000)]
    public async Task Answers_and_streams_the_reference_answers()
    {
        using IChatClient client = new VlmChatClient(loaded.Model);
        var samples = DemoModelTests.Samples.Take(4).ToList();
        var responses = await Task.WhenAll(samples.Select(s => client.GetResponseAsync([Ask(s)])));
        Assert.Equal(samples.Select(s => s.Expected), responses.Select(r => r.Text));
        Assert.All(responses, r => Assert.Equal(ChatFinishReason.Stop, r.FinishReason));
        Assert.Equal(samples[0].ExpectedIds.Length - 1, responses[0].Usage!.OutputTokenCount);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([Ask(samples[1])], new ChatOptions { MaxOutputTokens = 16 })) updates.Add(update);
        Assert.Equal(samples[1].Expected, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal("paligemma-shapes", client.GetService<ChatClientMetadata>()!.DefaultModelId);
    }

    [Fact(Timeout = 60_000)]
    public async Task Refuses_image_uris_and_unknown_adapters()
    {
        using IChatClient client = new VlmChatClient(loaded.Model);
        var s = DemoModelTests.Samples[0];
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, [new TextContent(s.Prompt), new UriContent("https://example.com/a.png", "image/png")])]));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([Ask(s)], new ChatOptions { ModelId = "paligemma-shapes+nope" }));
    }
}
