using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using PureVlm.Server;
using PureVlm.Tests.Demo;
using Xunit;

namespace PureVlm.Tests.Server;

/// <summary>`purevlm serve` in-process on a loopback port, against the demo model's reference answers (samples/expected.jsonl).</summary>
// In the console collection: one test runs the CLI in-process, which redirects the process-wide console.
[Collection(PureVlm.Tests.Cli.ConsoleCollection.Name)]
public class ServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    static DemoModelTests.Sample Sample(string prompt, string image = "04-red-circle.png") =>
        DemoModelTests.Samples.First(s => s.Image == image && s.Prompt == prompt);

    [Fact(Timeout = 60_000)]
    public async Task Health_and_models()
    {
        var health = JsonNode.Parse(await fixture.Http.GetStringAsync("/health"))!;
        Assert.Equal("ok", (string?)health["status"]);
        var models = JsonNode.Parse(await fixture.Http.GetStringAsync("/v1/models"))!;
        Assert.Equal("list", (string?)models["object"]);
        Assert.Equal("paligemma-shapes", (string?)models["data"]![0]!["id"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Chat_completion_gives_the_reference_answer_with_usage_and_logprobs()
    {
        var s = Sample("detect circle");
        var (status, body, _) = await fixture.PostAsync("/v1/chat/completions", ServerFixture.Json(ServerFixture.Chat(s, b => { b["logprobs"] = true; b["top_logprobs"] = 5; })));
        Assert.Equal(200, status);
        var choice = body["choices"]![0]!;
        Assert.Equal(s.Expected, (string?)choice["message"]!["content"]);
        Assert.Equal("stop", (string?)choice["finish_reason"]);
        var logprobs = choice["logprobs"]!["content"]!.AsArray();
        Assert.Equal(s.ExpectedIds.Length - 1, logprobs.Count); // eos is not part of the answer
        Assert.All(logprobs, t => Assert.Equal(5, t!["top_logprobs"]!.AsArray().Count));
        Assert.Equal(s.ExpectedIds.Length - 1, (int)body["usage"]!["completion_tokens"]!);
        Assert.Equal(64 + s.PromptIds.Length, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Contains(fixture.Log, line => line.Contains("/v1/chat/completions 200") && line.Contains("answer"));
    }

    [Fact(Timeout = 60_000)]
    public async Task Streaming_sends_chunks_then_usage_then_done()
    {
        var s = Sample("caption en");
        var body = ServerFixture.Chat(s, b => { b["stream"] = true; b["stream_options"] = new JsonObject { ["include_usage"] = true }; });
        using var response = await fixture.Http.PostAsync("/v1/chat/completions", ServerFixture.Json(body));
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        string text = string.Concat(chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => (string?)c["choices"]![0]!["delta"]!["content"]));
        Assert.Equal(s.Expected, text);
        Assert.Equal("stop", (string?)chunks[^2]["choices"]![0]!["finish_reason"]);
        Assert.Equal(s.ExpectedIds.Length - 1, (int)chunks[^1]["usage"]!["completion_tokens"]!);
    }

    [Fact(Timeout = 60_000)]
    public async Task The_official_OpenAI_client_gets_the_reference_answers()
    {
        var client = new ChatClient("paligemma-shapes", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.Url + "/v1") });
        var s = DemoModelTests.Samples.First(x => x.Prompt.StartsWith("answer en what color"));
        ChatMessage[] messages = [new UserChatMessage(
            ChatMessageContentPart.CreateTextPart(s.Prompt),
            ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(File.ReadAllBytes(ServerFixture.SamplePath(s.Image))), "image/png"))];
        ChatCompletion completion = await client.CompleteChatAsync(messages, new ChatCompletionOptions { MaxOutputTokenCount = 16, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 });
        Assert.Equal(s.Expected, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(3, completion.ContentTokenLogProbabilities[0].TopLogProbabilities.Count);

        var streamed = new System.Text.StringBuilder();
        await foreach (var update in client.CompleteChatStreamingAsync(messages))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(s.Expected, streamed.ToString());
    }

    [Fact(Timeout = 120_000)]
    public async Task Eight_concurrent_clients_get_the_sequential_answers()
    {
        var samples = DemoModelTests.Samples.Take(8).ToList();
        var answers = await Task.WhenAll(samples.Select(async s =>
        {
            var (status, body, _) = await fixture.PostAsync("/v1/chat/completions", ServerFixture.Json(ServerFixture.Chat(s)));
            Assert.Equal(200, status);
            return (string?)body["choices"]![0]!["message"]!["content"];
        }));
        Assert.Equal(samples.Select(s => s.Expected), answers);
    }

    [Fact(Timeout = 60_000)]
    public async Task Native_generate_returns_the_run_json_object_from_json_or_multipart()
    {
        var s = Sample("detect circle");
        var (status, json, _) = await fixture.PostAsync("/api/generate", ServerFixture.Json(new JsonObject
        {
            ["image"] = Convert.ToBase64String(File.ReadAllBytes(ServerFixture.SamplePath(s.Image))),
            ["prompt"] = s.Prompt,
        }));
        Assert.Equal(200, status);

        var cliOut = new StringWriter();
        Assert.Equal(0, PureVlm.Cli.Program.Run(["run", "--image", ServerFixture.SamplePath(s.Image), "--prompt", s.Prompt, "--json"], cliOut, new StringWriter()));
        var cli = JsonNode.Parse(cliOut.ToString())!.AsObject();
        foreach (var doc in new[] { json, cli }) doc.Remove("timings");
        Assert.Equal(cli.ToJsonString(), json.ToJsonString());
        Assert.Equal(s.Expected, (string?)json["text"]);
        Assert.Single(json["detections"]!.AsArray());

        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(File.ReadAllBytes(ServerFixture.SamplePath(s.Image))), "image", s.Image },
            { new StringContent(s.Prompt), "prompt" },
        };
        var (formStatus, formJson, _) = await fixture.PostAsync("/api/generate", form);
        Assert.Equal(200, formStatus);
        Assert.Equal(s.Expected, (string?)formJson["text"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task Native_explain_returns_the_report_with_png_heatmaps()
    {
        var s = Sample("caption en");
        var (status, report, _) = await fixture.PostAsync("/api/explain", ServerFixture.Json(new JsonObject { ["image"] = ServerFixture.DataUri(s.Image), ["prompt"] = s.Prompt }));
        Assert.Equal(200, status);
        Assert.Equal("purevlm.explain/1", (string?)report["schema"]);
        Assert.Equal(s.Expected, (string?)report["answer"]!["text"]);
        var heatmaps = report["heatmaps"]!.AsArray();
        Assert.Equal(report["tokens"]!.AsArray().Count, heatmaps.Count);
        Assert.All(heatmaps, h => Assert.StartsWith("data:image/png;base64,", (string?)h!["layer"]));
    }

    public static TheoryData<string, string, string> BadRequests() => new()
    {
        { "{not json", "", "invalid_json" },
        { """{"messages": [{"role": "user", "content": "caption en"}]}""", "messages", "missing_image" },
        { """{"messages": [{"role": "user", "content": [{"type": "text", "text": "caption en"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}""", "messages[0].content[1].image_url.url", "invalid_image_url" },
        { """{"messages": [{"role": "user", "content": [{"type": "text", "text": "caption en"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]}]}""", "messages[0].content[1].image_url.url", "invalid_image" },
        { """{"model": "paligemma-shapes+nope", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "IMAGE"}}]}]}""", "model", "unknown_adapter" },
        { """{"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "IMAGE"}}]}]}""", "model", "model_not_found" },
        { """{"max_tokens": 0, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "IMAGE"}}]}]}""", "max_tokens", "" },
        { """{"messages": [{"role": "user", "content": [{"type": "text", "text": "LONG"}, {"type": "image_url", "image_url": {"url": "IMAGE"}}]}]}""", "messages", "context_length_exceeded" },
        { """{"messages": [{"role": "user", "content": [{"type": "text", "text": "<image> caption en"}, {"type": "image_url", "image_url": {"url": "IMAGE"}}]}]}""", "messages", "invalid_prompt" },
    };

    [Theory(Timeout = 60_000)]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_input_is_a_400_in_OpenAI_error_shape(string body, string param, string code)
    {
        body = body.Replace("IMAGE", ServerFixture.DataUri("04-red-circle.png")).Replace("LONG", string.Concat(Enumerable.Repeat("circle ", 9000)));
        var (status, json, _) = await fixture.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, status);
        var error = json["error"]!;
        Assert.Equal("invalid_request_error", (string?)error["type"]);
        Assert.False(string.IsNullOrEmpty((string?)error["message"]));
        Assert.DoesNotContain('\n', (string)error["message"]!);
        if (param != "") Assert.Equal(param, (string?)error["param"]);
        if (code != "") Assert.Equal(code, (string?)error["code"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_body_over_the_limit_is_a_413()
    {
        // Expect: 100-continue, as curl sends it for large bodies: the refusal comes before the body is sent, so the client
        // reads it instead of racing the server's close of the connection while it is still writing.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/generate")
        {
            Content = new ByteArrayContent(new byte[(1 << 20) + 1]) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } },
        };
        request.Headers.ExpectContinue = true;
        using var response = await fixture.Http.SendAsync(request);
        Assert.Equal(413, (int)response.StatusCode);
        Assert.Equal("request_too_large", (string?)JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!["code"]);
    }

    [Fact(Timeout = 60_000)]
    public async Task A_client_that_disconnects_cancels_its_generation()
    {
        var body = ServerFixture.Chat(Sample("caption en"), b => { b["stream"] = true; b["ignore_eos"] = true; b["max_tokens"] = 4000; });
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ServerFixture.Json(body) })
        using (var response = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            using var stream = await response.Content.ReadAsStreamAsync();
            await stream.ReadExactlyAsync(new byte[64]); // generation is under way
        } // disconnect
        await WaitUntil(async () => (int)JsonNode.Parse(await fixture.Http.GetStringAsync("/health"))!["active"]! == 0);
        await WaitUntil(() => Task.FromResult(fixture.Log.Any(l => l.Contains("/v1/chat/completions cancelled"))));
    }

    static async Task WaitUntil(Func<Task<bool>> condition)
    {
        for (int i = 0; i < 200 && !await condition(); i++) await Task.Delay(50);
        Assert.True(await condition(), "not within 10 s");
    }
}

/// <summary>A server that holds one request at a time and queues none, and one that needs an API key.</summary>
public class ServerLimitTests
{
    [Fact(Timeout = 60_000)]
    public async Task A_full_queue_is_a_503_with_Retry_After()
    {
        using var fixture = new ServerFixture(new ServerOptions { MaxBatch = 1, MaxQueue = 0 });
        var s = DemoModelTests.Samples[0];
        var body = ServerFixture.Chat(s, b => { b["stream"] = true; b["ignore_eos"] = true; b["max_tokens"] = 4000; });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = ServerFixture.Json(body) };
        using var busy = await fixture.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var (status, json, response) = await fixture.PostAsync("/v1/chat/completions", ServerFixture.Json(ServerFixture.Chat(s)));
        Assert.Equal(503, status);
        Assert.Equal("queue_full", (string?)json["error"]!["code"]);
        Assert.True(response.Headers.RetryAfter != null);
    }

    [Fact(Timeout = 60_000)]
    public async Task With_an_api_key_every_endpoint_but_health_needs_it()
    {
        using var fixture = new ServerFixture(new ServerOptions { ApiKey = "sesame" });
        Assert.Equal(HttpStatusCode.OK, (await fixture.Http.GetAsync("/health")).StatusCode);
        var refused = await fixture.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("invalid_api_key", (string?)JsonNode.Parse(await refused.Content.ReadAsStringAsync())!["error"]!["code"]);
        var s = DemoModelTests.Samples[0];
        Assert.Equal(401, (await fixture.PostAsync("/v1/chat/completions", ServerFixture.Json(ServerFixture.Chat(s)), key: "wrong")).Status);
        var (status, body, _) = await fixture.PostAsync("/v1/chat/completions", ServerFixture.Json(ServerFixture.Chat(s)), key: "sesame");
        Assert.Equal(200, status);
        Assert.Equal(s.Expected, (string?)body["choices"]![0]!["message"]!["content"]);
    }
}
