using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Tests.Models;

/// <summary>A fixture's golden.safetensors, plus the tolerance rule of tests/data/fixtures/README.md.</summary>
sealed class GoldenFixture : IDisposable
{
    /// <summary>Per tensor: max|got − want| ≤ rtol · max|want| (README: f32 engine vs goldens, rtol 1e-4).</summary>
    public const float Rtol = 1e-4f;

    readonly SafeTensorsFile _file;
    readonly string _golden;
    public string Dir { get; }
    public string Name { get; }

    public GoldenFixture(string fixture, string goldenFile)
    {
        Name = fixture;
        _golden = goldenFile;
        Dir = TestPaths.Fixture(fixture);
        _file = SafeTensorsFile.Open(Path.Combine(Dir, goldenFile));
    }

    public bool Has(string name) => _file.Contains(name);
    public IReadOnlyList<string> Names => _file.Names;
    public Tensor this[string name] => _file[name].ToTensor();
    public int[] Ints(string name) => _file[name].ToTensor().Data.Select(f => (int)f).ToArray();

    /// <summary>
    /// The features of the golden's visual input (<c>pixel_values</c>, or Video-LLaVA's <c>pixel_values_images</c> /
    /// <c>pixel_values_videos</c>), or null for a text-only golden. Video-LLaVA's bf16 goldens leave preprocessing out
    /// (its README: use the f32 golden's), so they are read from the f32 golden of the same prompt.
    /// </summary>
    public float[]? EncodeInputs(Runtime.InferenceSession session)
    {
        if (Has("pixel_values")) return session.EncodeImage(this["pixel_values"]);
        using var f32 = Name == "video-llava-tiny" && _golden.EndsWith("-bf16.safetensors") ? new GoldenFixture(Name, _golden.Replace("-bf16", "")) : null;
        var source = f32 ?? this;
        if (source.Has("pixel_values_images")) return session.EncodeImage(source["pixel_values_images"]);
        if (source.Has("pixel_values_videos")) return session.EncodeVideo(source["pixel_values_videos"]);
        return null;
    }

    /// <summary>(max |got − want|, max |want|).</summary>
    public static (float Diff, float Scale) Compare(ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        if (got.Length != want.Length) return (float.PositiveInfinity, 0);
        float diff = 0, scale = 0;
        for (int i = 0; i < want.Length; i++)
        {
            diff = MathF.Max(diff, MathF.Abs(got[i] - want[i]));
            if (float.IsNaN(got[i])) diff = float.PositiveInfinity;
            scale = MathF.Max(scale, MathF.Abs(want[i]));
        }
        return (diff, scale);
    }

    public void Dispose() => _file.Dispose();
}
