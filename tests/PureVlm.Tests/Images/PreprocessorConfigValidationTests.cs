using PureVlm.Formats;
using PureVlm.Formats.Images;
using Xunit;

namespace PureVlm.Tests.Images;

/// <summary>A bad preprocessor_config.json is an <see cref="InvalidModelFileException"/> naming the file and the key.</summary>
public sealed class PreprocessorConfigValidationTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-preproc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("""{"do_resize": "yes", "size": {"height": 8, "width": 8}}""", "do_resize")]
    [InlineData("""{"do_resize": 1, "size": {"height": 8, "width": 8}}""", "do_resize")]
    [InlineData("""{"do_rescale": "true", "size": {"height": 8, "width": 8}}""", "do_rescale")]
    [InlineData("""{"do_normalize": [], "size": {"height": 8, "width": 8}}""", "do_normalize")]
    [InlineData("""{"rescale_factor": "1/255", "size": {"height": 8, "width": 8}}""", "rescale_factor")]
    [InlineData("""{"rescale_factor": 0, "size": {"height": 8, "width": 8}}""", "rescale_factor")]
    [InlineData("""{"image_std": [0.5, 0, 0.5], "size": {"height": 8, "width": 8}}""", "image_std")]
    [InlineData("""{"image_std": -0.5, "size": {"height": 8, "width": 8}}""", "image_std")]
    [InlineData("""{"image_std": [0.5, 0.5, 1e300], "size": {"height": 8, "width": 8}}""", "image_std")]
    [InlineData("""{"image_mean": [0.5, 1e300, 0.5], "size": {"height": 8, "width": 8}}""", "image_mean")]
    public void Bad_preprocessor_value_names_file_and_key(string json, string key)
    {
        string path = Path.Combine(_dir, "preprocessor_config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<InvalidModelFileException>(() => ImagePreprocessor.FromPreprocessorConfig(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(key, e.Message);
    }

    [Fact]
    public void Zero_image_std_is_rejected_by_the_constructor_too()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ImagePreprocessor(8, 8, std: [0.5f, 0f, 0.5f]));
        Assert.Contains("image_std", e.Message);
    }
}
