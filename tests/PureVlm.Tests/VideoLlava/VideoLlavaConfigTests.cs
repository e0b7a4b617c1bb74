using PureVlm.Formats;
using Xunit;

namespace PureVlm.Tests.VideoLlava;

/// <summary>config.json of model_type video_llava: HF VideoLlavaConfig's defaults and one-line errors naming the key.</summary>
public class VideoLlavaConfigTests
{
    static string FixtureConfig => File.ReadAllText(Path.Combine(TestPaths.Fixture("video-llava-tiny"), "config.json"));

    [Fact]
    public void The_fixture_config_gives_8_frames_of_17_tokens()
    {
        var c = ModelConfig.Parse(FixtureConfig);
        Assert.Equal("video_llava", c.ModelType);
        Assert.Equal(new VideoLlavaConfig(385, 136, 8), c.VideoLlava);
        Assert.Equal((384, -2, "default", 16), (c.ImageTokenIndex, c.Llava!.VisionFeatureLayer, c.Llava.VisionFeatureSelectStrategy, c.Llava.ImageSeqLength));
    }

    [Fact]
    public void Defaults_are_video_llava_7b_hf()
    {
        // LlamaConfig's default vocabulary (32000) does not hold <image> 32000: the hub's text_config pads it to 32064.
        var c = ModelConfig.Parse("""{"model_type": "video_llava", "text_config": {"vocab_size": 32064}}""");
        Assert.Equal((224, 14, 1024, 24), (c.Vision!.ImageSize, c.Vision.PatchSize, c.Vision.HiddenSize, c.Vision.NumHiddenLayers));
        Assert.Equal(new VideoLlavaConfig(32001, 2056, 8), c.VideoLlava);
        Assert.Equal((32000, 256), (c.ImageTokenIndex, c.Llava!.ImageSeqLength));
    }

    [Theory]
    [InlineData("\"video_seq_length\": 130", "video_seq_length is 130, expected a positive multiple of 17")]
    [InlineData("\"video_token_index\": 500", "video_token_index 500 is outside the vocabulary [0, 416)")]
    [InlineData("\"video_token_index\": 384", "video_token_index 384 equals image_token_index")]
    public void Bad_video_keys_are_one_line_errors_naming_the_key(string replacement, string message)
    {
        string key = replacement.Split(':')[0];
        string json = System.Text.RegularExpressions.Regex.Replace(FixtureConfig, key + @":\s*\d+", replacement);
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json, "config.json"));
        Assert.StartsWith($"config.json: {message}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
