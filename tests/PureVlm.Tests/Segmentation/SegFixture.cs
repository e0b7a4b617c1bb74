using System.Text.Json;
using PureVlm.Formats;
using PureVlm.Segmentation;
using Xunit;

namespace PureVlm.Tests.Segmentation;

/// <summary>One case of tests/data/fixtures/paligemma-seg/cases.json.</summary>
public sealed record SegCase(string Name, int Width, int Height, int[] Loc, int[] Indices, string Text, bool BigVisionValid, bool DemoDrawn, int BorderlinePixels);

/// <summary>The segmentation fixtures: the random <c>vae-oid.npz</c>, the cases and the goldens.</summary>
public static class SegFixture
{
    public static string Folder => TestPaths.Fixture("paligemma-seg");
    public static string Npz => Path.Combine(Folder, "vae-oid.npz");

    static readonly Lazy<VqVaeDecoder> _decoder = new(() => VqVaeDecoder.Load(Npz));
    public static VqVaeDecoder Decoder => _decoder.Value;

    static readonly Lazy<SafeTensorsFile> _golden = new(() => SafeTensorsFile.Open(Path.Combine(Folder, "golden.safetensors")));

    public static IReadOnlyList<SegCase> Cases { get; } = LoadCases();

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var c in Cases) data.Add(c.Name);
        return data;
    }

    public static SegCase Case(string name) => Cases.Single(c => c.Name == name);

    public static bool Has(string name) => _golden.Value.Contains(name);

    /// <summary>A golden tensor as floats (I32 and U8 converted exactly) and its shape.</summary>
    public static (float[] Data, int[] Shape) Golden(string name)
    {
        var t = _golden.Value[name];
        var data = new float[t.ElementCount];
        t.ReadFloats(0, data);
        return (data, t.Shape.Select(s => (int)s).ToArray());
    }

    static IReadOnlyList<SegCase> LoadCases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder, "cases.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new SegCase(
            c.GetProperty("name").GetString()!,
            c.GetProperty("image_size").GetProperty("width").GetInt32(),
            c.GetProperty("image_size").GetProperty("height").GetInt32(),
            c.GetProperty("loc").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            c.GetProperty("indices").EnumerateArray().Select(v => v.GetInt32()).ToArray(),
            c.GetProperty("text").GetString()!,
            c.GetProperty("big_vision").GetProperty("valid").GetBoolean(),
            c.GetProperty("demo").GetProperty("drawn").GetBoolean(),
            c.GetProperty("big_vision").TryGetProperty("borderline_pixels", out var b) && b.ValueKind == JsonValueKind.Number ? b.GetInt32() : 0)).ToList();
    }
}
