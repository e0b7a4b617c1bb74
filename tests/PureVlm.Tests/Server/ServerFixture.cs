using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using PureVlm.Server;
using PureVlm.Tests.Demo;

namespace PureVlm.Tests.Server;

/// <summary>The demo model served in-process on a free loopback port, with a client that gives up after 60 s.</summary>
public sealed class ServerFixture : IDisposable
{
    public VlmModel Model { get; } = VlmModel.Load(TestPaths.DemoModel);
    public VlmServer Server { get; }
    public HttpClient Http { get; }
    public List<string> Log { get; } = new();

    public ServerFixture() : this(new ServerOptions()) { }

    // Not public: xunit builds a class fixture through its single public constructor.
    internal ServerFixture(ServerOptions options)
    {
        Server = VlmServer.StartAsync(Model, options with { Port = 0, MaxBodyBytes = 1 << 20, Log = line => { lock (Log) Log.Add(line); } })
            .GetAwaiter().GetResult();
        Http = new HttpClient { BaseAddress = new Uri(Server.Url), Timeout = TimeSpan.FromSeconds(60) };
    }

    public void Dispose()
    {
        Http.Dispose();
        Server.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(30));
        Model.Dispose();
    }

    public static string SamplePath(string image) => Path.Combine(TestPaths.DemoModel, "samples", image);

    public static string DataUri(string image) => "data:image/png;base64," + Convert.ToBase64String(File.ReadAllBytes(SamplePath(image)));

    /// <summary>A chat request body for one sample: its prompt and image.</summary>
    public static JsonObject Chat(DemoModelTests.Sample s, Action<JsonObject>? edit = null)
    {
        var body = new JsonObject
        {
            ["model"] = "paligemma-shapes",
            ["messages"] = new JsonArray(new JsonObject
            {
                ["role"] = "user",
                ["content"] = new JsonArray(
                    new JsonObject { ["type"] = "text", ["text"] = s.Prompt },
                    new JsonObject { ["type"] = "image_url", ["image_url"] = new JsonObject { ["url"] = DataUri(s.Image) } }),
            }),
        };
        edit?.Invoke(body);
        return body;
    }

    public static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    public async Task<(int Status, JsonObject Body, HttpResponseMessage Response)> PostAsync(string path, HttpContent content, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        if (key != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonNode.Parse(text)!.AsObject(), response);
    }
}
