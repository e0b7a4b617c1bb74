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
    [InlineData("""{"resample": "bicubic", "size": {"height": 8, "width": 8}}""", "resample")]
    [InlineData("""{"size": {"shortest_edge": 8}}""", "size")] // SigLIP has no shortest-edge resize
    [InlineData("""{"size": {"height": 0, "width": 8}}""", "size.height")]
    [InlineData("""{"image_processor_type": "LlavaNextImageProcessor", "size": {"height": 8, "width": 8}}""", "image_processor_type")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessorFast", "size": {"height": 8, "width": 8}}""", "image_processor_type")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "resample": 2, "size": {"shortest_edge": 8}, "crop_size": 8}""", "resample")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 0}, "crop_size": 8}""", "size.shortest_edge")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8.5}, "crop_size": 8}""", "size.shortest_edge")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8, "longest_edge": 16}, "crop_size": 8}""", "size")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": -8, "crop_size": 8}""", "size")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8}, "crop_size": {"height": 8, "width": 99999}}""", "crop_size.width")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8}, "crop_size": {"shortest_edge": 8}}""", "crop_size")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8}, "crop_size": 8, "do_center_crop": false}""", "do_center_crop")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8}, "crop_size": 8, "do_center_crop": "yes"}""", "do_center_crop")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"height": 8, "width": 8}, "crop_size": 6}""", "crop_size")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 8}}""", "crop_size")] // and no image size to fall back on
    public void Bad_preprocessor_value_names_file_and_key(string json, string key)
    {
        string path = Path.Combine(_dir, "preprocessor_config.json");
        File.WriteAllText(path, json);
        var e = Assert.Throws<InvalidModelFileException>(() => ImagePreprocessor.FromPreprocessorConfig(path));
        Assert.StartsWith(path + ":", e.Message);
        Assert.Contains(key, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor"}""", 56, 56, 56)] // missing sizes: the vision tower's
    [InlineData("""{"feature_extractor_type": "CLIPFeatureExtractor", "size": 40, "crop_size": 36}""", 40, 36, 36)] // older files
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 40}, "crop_size": {"height": 30, "width": 36}}""", 40, 30, 36)]
    public void Clip_config_reads_shortest_edge_and_crop(string json, int edge, int height, int width)
    {
        string path = Path.Combine(_dir, "preprocessor_config.json");
        File.WriteAllText(path, json);
        var p = ImagePreprocessor.FromPreprocessorConfig(path, defaultImageSize: 56);
        Assert.Equal((edge, height, width), (p.ShortestEdge, p.Height, p.Width));
        Assert.Equal(new[] { 0.48145466f, 0.4578275f, 0.40821073f }, p.Mean); // CLIPImageProcessor's default
    }

    [Theory]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"height": 40, "width": 36}, "crop_size": {"height": 40, "width": 36}}""")]
    [InlineData("""{"image_processor_type": "CLIPImageProcessor", "size": {"height": 40, "width": 36}, "do_center_crop": false}""")]
    public void Clip_config_with_a_fixed_size_resizes_straight_to_it(string json)
    {
        string path = Path.Combine(_dir, "preprocessor_config.json");
        File.WriteAllText(path, json);
        var p = ImagePreprocessor.FromPreprocessorConfig(path);
        Assert.Equal((null, 40, 36), (p.ShortestEdge, p.Height, p.Width));
    }

    [Fact]
    public void Zero_image_std_is_rejected_by_the_constructor_too()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ImagePreprocessor(8, 8, std: [0.5f, 0f, 0.5f]));
        Assert.Contains("image_std", e.Message);
    }
}
