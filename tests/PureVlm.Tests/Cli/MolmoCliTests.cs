using System.Text.Json;
using PureVlm.Tests.SafeTensors;
using Xunit;

namespace PureVlm.Tests.Cli;

/// <summary>run, info, bench and explain on molmo-tiny.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class MolmoCliTests : IDisposable
{
    static readonly string Dir = TestPaths.Fixture("molmo-tiny");
    static readonly string Image = Path.Combine(Dir, "input.png");
    readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    [Fact]
    public void Run_json_has_the_reference_answer_and_a_points_list()
    {
        var r = Run("run", "--model", Dir, "--image", Image, "--prompt", "Point to the red disc.", "--max-tokens", "12", "--json", "--annotate", _tmp.File("annotated.png"));
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        // molmo-tiny's greedy ids (README), eos never reached: the random model writes no point, so the list is empty.
        Assert.Equal([295, 252, 84, 206, 274, 337, 303, 243, 211, 164, 165, 124], doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()));
        Assert.Equal(JsonValueKind.Array, doc.RootElement.GetProperty("points").ValueKind);
        Assert.Contains("0 point(s)", r.Err);
        Assert.True(File.Exists(_tmp.File("annotated.png")));
    }

    [Fact]
    public void Info_describes_the_molmo_parts()
    {
        var r = Run("info", "--model", Dir);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("type       molmo", r.Out);
        Assert.Contains("vit_layers [-2, -9]", r.Out);
        Assert.Contains("<im_patch> (id 386)", r.Out);
        Assert.Contains("total                      267,040", r.Out);
    }

    [Fact]
    public void Bench_runs_the_crops_of_a_synthetic_image()
    {
        var r = Run("bench", "--model", Dir, "--tokens", "2");
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(r.Out);
        // 640×480 → 3 × 4 tiles: a 5 × 6 cell grid plus the global view's 3 × 3.
        Assert.Equal(39, doc.RootElement.GetProperty("image_tokens").GetDouble());
        Assert.Contains("13: a global view + 3x4 tiles", r.Err);
    }

    [Fact]
    public void Explain_maps_attention_onto_the_global_view_cells()
    {
        string outDir = _tmp.File("explain");
        var r = Run("explain", "--model", Dir, "--image", Image, "--prompt", "Point to the red disc.", "--max-tokens", "3", "--out", outDir);
        Assert.True(r.Code == 0, r.Err);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var root = doc.RootElement;
        Assert.Equal(3, root.GetProperty("model").GetProperty("patch_grid").GetInt32());
        Assert.Equal(46, root.GetProperty("request").GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(9, root.GetProperty("tokens")[0].GetProperty("attention").GetProperty("mean").GetArrayLength());
        Assert.False(root.TryGetProperty("points", out _)); // the random model writes no point; a pointing answer lists them
        Assert.True(File.Exists(Path.Combine(outDir, "report.html")));
    }
}
