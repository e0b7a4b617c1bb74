using System.Text.Json.Nodes;
using PureVlm.Formats;
using PureVlm.Formats.Images;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tensors;
using PureVlm.Tests.SafeTensors;
using PureVlm.WeightsTools;
using Xunit;

namespace PureVlm.Tests.VideoLlava;

/// <summary>weights-tools synth --arch video-llava-7b: the fixture's layout at the fixture's sizes, and the published sizes.</summary>
public class VideoLlavaSynthTests
{
    static string Fixture(string file) => Path.Combine(TestPaths.Fixture("video-llava-tiny"), file);

    /// <summary>video-llava-7b with the video-llava-tiny fixture's sizes (the table in its README).</summary>
    static readonly LlavaArch VideoLlavaTiny = LlavaArch.VideoLlava7b with
    {
        Name = "video-llava-tiny", ImageSize = 56, VisionHidden = 32, VisionLayers = 3, VisionHeads = 4, VisionIntermediate = 128,
        TextHidden = 48, TextLayers = 2, Heads = 4, KvHeads = 4, HeadDim = 12, TextIntermediate = 128, Vocab = 416,
        ImageTokenIndex = 384, VideoTokenIndex = 385, PadTokenId = 386,
    };

    [Fact]
    public void Synth_at_the_fixture_sizes_writes_its_tensors_and_config_and_runs_a_video()
    {
        using var dir = new TempDir();
        SynthCommand.Synthesize(VideoLlavaTiny, DType.BF16, dir.Path, seed: 5, maxShardBytes: 100_000);
        using (var model = LoadedModel.Load(dir.Path))
        using (var fixture = SafeTensorsFile.Open(Fixture("model.safetensors")))
        {
            Assert.Equal(fixture.Names.Order(StringComparer.Ordinal), model.Checkpoint.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
            foreach (var t in fixture.Tensors) Assert.Equal(t.Shape, model.Checkpoint[t.Name].Shape);
            var video = Assert.IsType<VideoLlavaForConditionalGeneration>(model.Modules);
            Assert.Equal((8, 17, 385), (video.FramesPerVideo, video.VideoTokensPerFrame, video.VideoTokenIndex));
            var pre = ImagePreprocessor.FromCheckpoint(dir.Path);
            var frames = Enumerable.Range(0, 8).Select(f => RgbImage.FromPixels(70, 50, Enumerable.Repeat((byte)(30 * f), 70 * 50 * 3).ToArray())).ToList();
            int[] ids = ModelFamilies.PromptFormat(video).SyntheticIds([MediaKind.Video], textTokens: 4, model.Config.BosTokenId);
            Assert.Equal(1 + 4 + 136, ids.Length);
            var session = model.CreateSession();
            var logits = session.Prefill(ids, session.EncodeVideo(pre.VideoPixelValues(frames))).ToArray();
            Assert.Equal(416, logits.Length);
            Assert.All(logits, x => Assert.True(float.IsFinite(x)));
        }
        // config.json: the fixture's keys and values, but for the dtype and the text pad id (null in the hub's, 0 in the fixture's).
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")))!.AsObject();
        var expected = JsonNode.Parse(File.ReadAllText(Fixture("config.json")))!.AsObject();
        foreach (var c in new[] { config, expected })
        {
            foreach (var key in new[] { "torch_dtype" }) { c.Remove(key); c["text_config"]!.AsObject().Remove(key); c["vision_config"]!.AsObject().Remove(key); }
            c["text_config"]!.AsObject().Remove("pad_token_id");
        }
        Assert.True(JsonNode.DeepEquals(expected, config), $"synth:\n{config}\nfixture:\n{expected}");
        // preprocessor_config.json: the fixture's but for _valid_processor_keys, a list of the processor's own arguments.
        var preprocessor = JsonNode.Parse(File.ReadAllText(Fixture("preprocessor_config.json")))!.AsObject();
        preprocessor.Remove("_valid_processor_keys");
        Assert.True(JsonNode.DeepEquals(preprocessor, JsonNode.Parse(File.ReadAllText(Path.Combine(dir.Path, "preprocessor_config.json")))));
    }

    [Fact]
    public void Video_llava_7b_has_two_towers_of_clip_l14_224_and_the_published_parameter_count()
    {
        var arch = LlavaArch.VideoLlava7b;
        var tensors = arch.Tensors().ToDictionary(t => t.Name);
        Assert.Equal([257, 1024], tensors["image_tower.vision_model.embeddings.position_embedding.weight"].Shape);
        Assert.Equal([257, 1024], tensors["video_tower.vision_model.embeddings.position_embedding.weight"].Shape);
        Assert.Equal([32064, 4096], tensors["language_model.lm_head.weight"].Shape);
        Assert.DoesNotContain(tensors.Keys, n => n.StartsWith("vision_tower.", StringComparison.Ordinal));
        // llava-1.5-7b (7,063,427,072) with the 336-px tower's 577 positions cut to 257 and a second tower:
        // one 224-px tower = 303,507,456 − 320·1024 = 303,179,776.
        Assert.Equal(LlavaArch.Llava15_7b.Parameters - 320 * 1024 + 303_179_776, arch.Parameters);
        Assert.Equal(2056, arch.VideoTokens);
    }
}
