using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit;

namespace PureVlm.Tests.Cli;

/// <summary>`run --batch` and `bench --concurrency`: the command-line faces of batched decoding.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class BatchCliTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-batch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    [Fact(Timeout = 120_000)]
    public async Task Run_batch_prints_every_reference_answer_in_order_and_an_error_line_for_a_bad_request()
    {
        await Task.Yield();
        var samples = Demo.DemoModelTests.Samples;
        // Images by relative path: they are looked up beside the requests file.
        foreach (var image in samples.Select(s => s.Image).Distinct())
            File.Copy(Path.Combine(TestPaths.DemoModel, "samples", image), Path.Combine(_dir, image));
        var lines = samples.Select(s => new JsonObject { ["image"] = s.Image, ["prompt"] = s.Prompt }.ToJsonString()).ToList();
        lines.Insert(3, """{"image": "missing.png", "prompt": "caption en"}""");
        string requests = Path.Combine(_dir, "requests.jsonl");
        File.WriteAllLines(requests, lines);

        var r = Run("run", "--batch", requests, "--max-batch", "6");
        Assert.Equal(1, r.Code);
        var output = r.Out.TrimEnd().Split('\n');
        Assert.Equal(lines.Count, output.Length);
        Assert.Contains("missing.png", (string?)JsonNode.Parse(output[3])!["error"]);
        var answers = output.Where((_, i) => i != 3).Select(line => JsonNode.Parse(line)!).ToList();
        Assert.Equal(samples.Select(s => s.Expected), answers.Select(a => (string?)a["text"]));
        Assert.All(answers, a => Assert.NotNull(a["timings"]));
        Assert.Contains($"{samples.Count} of {lines.Count} requests answered", r.Err);
    }

    [Fact]
    public void Run_batch_refuses_single_request_options()
    {
        var r = Run("run", "--batch", "x.jsonl", "--prompt", "caption en");
        Assert.Equal(2, r.Code);
        Assert.Contains("--batch takes its images and prompts from the file", r.Err);
    }

    [Fact]
    public void Bench_concurrency_reports_single_and_aggregate_decode_speed()
    {
        var r = Run("bench", "--tokens", "2", "--concurrency", "3");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out.TrimEnd().Split('\n')[^1]);
        var root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("concurrency").GetDouble());
        foreach (var key in new[] { "decode_tok_s", "aggregate_decode_tok_s", "aggregate_speedup" })
            Assert.True(root.GetProperty(key).GetDouble() > 0, key);
    }
}
