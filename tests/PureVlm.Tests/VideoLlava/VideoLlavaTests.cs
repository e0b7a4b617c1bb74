using PureVlm.Cli;
using PureVlm.Formats.Images;
using PureVlm.Inspection;
using PureVlm.Prompts;
using PureVlm.Runtime;
using PureVlm.Tests.Images;
using PureVlm.Tests.Models;
using Xunit;

namespace PureVlm.Tests.VideoLlava;

/// <summary>
/// Video-LLaVA end to end on video-llava-tiny (its README): from input.png / the frames folder and the prompt text to
/// every golden tensor (rtol 1e-4, ids exact), run --video on a frames folder and on an animated GIF, and the five
/// per-modality LoRA goldens with the adapters loaded once and chosen per request.
/// </summary>
[Collection(PureVlm.Tests.Cli.ConsoleCollection.Name)] // trace and run write to the console, which other tests redirect
public sealed class VideoLlavaTests : IDisposable
{
    static readonly string Fixture = TestPaths.Fixture("video-llava-tiny");
    const string ImagePrompt = "What is in the picture?", VideoPrompt = "What happens in the video?";
    readonly string _dir = Directory.CreateTempSubdirectory("purevlm-vllava-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("model.safetensors", "golden-image.safetensors", 20)]
    [InlineData("model-bf16.safetensors", "golden-image-bf16.safetensors", 16)]
    [InlineData("model.safetensors", "golden-video.safetensors", 18)]
    [InlineData("model-bf16.safetensors", "golden-video-bf16.safetensors", 16)]
    public void Trace_from_the_image_file_or_frames_folder_and_the_prompt_text_matches_every_golden_tensor(string weights, string golden, int tensors)
    {
        bool video = golden.Contains("video");
        string output = Path.Combine(_dir, "trace.safetensors");
        Assert.Equal(0, Program.Main(["trace", "--model", Fixture, "--weights", Path.Combine(Fixture, weights),
            video ? "--video" : "--image", Path.Combine(Fixture, video ? "frames" : "input.png"),
            "--prompt", video ? VideoPrompt : ImagePrompt, "--generate", "12", "--out", output]));
        var diffs = TraceDiff.Compare(Path.Combine(Fixture, golden), output, 1e-4);
        Assert.Equal(tensors, diffs.Count); // every golden tensor is in the trace
        Assert.All(diffs, d => Assert.True(d.WithinTolerance, $"{d.Name}: max|diff| {d.MaxAbs:E2}, relative {d.MaxRel:E2}"));
        foreach (var exact in new[] { "image.resized", "image.cropped", "pixel_values_images", "pixel_values_videos", "input_ids", "position_ids", "generated_ids" })
            if (diffs.SingleOrDefault(d => d.Name == exact) is { } d) Assert.Equal(0, d.MaxAbs);
    }

    [Fact]
    public void Run_video_on_the_frames_folder_gives_the_golden_ids()
    {
        using var g = new GoldenFixture("video-llava-tiny", "golden-video.safetensors");
        var r = Run("run", "--model", Fixture, "--video", Path.Combine(Fixture, "frames"), "--prompt", VideoPrompt, "--max-tokens", "12", "--json");
        Assert.Equal(0, r.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(r.Out);
        Assert.Equal(g.Ints("generated_ids"), doc.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()).ToArray());
        Assert.Equal(159, doc.RootElement.GetProperty("timings").GetProperty("prefill_tokens").GetInt32());
    }

    /// <summary>Ten 8×8 frames; frame k is colour k mod 4 of the palette everywhere but one column, k mod 8, in colour (k + 1) mod 4.</summary>
    static int[] GifFrame(int k) => Enumerable.Range(0, 64).Select(i => i % 8 == k % 8 ? (k + 1) % 4 : k % 4).ToArray();
    static readonly byte[] Palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];

    [Fact]
    public void An_animated_gif_is_sampled_uniformly_to_the_models_frames_as_HFs_examples_do()
    {
        string gif = Path.Combine(_dir, "clip.gif");
        File.WriteAllBytes(gif, ImageBytes.AnimatedGif(8, 8, Palette, Enumerable.Range(0, 10).Select(GifFrame).ToList()));
        var frames = VideoLoader.Load(gif, 8);
        int[] taken = [0, 1, 2, 3, 5, 6, 7, 8]; // np.arange(0, 10, 10 / 8).astype(int)
        Assert.Equal(taken, VideoLoader.SampleIndices(10, 8, "x"));
        for (int t = 0; t < 8; t++)
        {
            int k = taken[t];
            for (int x = 0; x < 8; x++)
            {
                int colour = x == k % 8 ? (k + 1) % 4 : k % 4;
                Assert.Equal((Palette[3 * colour], Palette[3 * colour + 1], Palette[3 * colour + 2]), frames[t][x, 3]);
            }
        }
        Assert.Contains("3 frame(s), the model takes 8", Assert.Throws<InvalidImageException>(() => VideoLoader.Load(WriteGif(3), 8)).Message);
    }

    string WriteGif(int frames)
    {
        string gif = Path.Combine(_dir, $"clip{frames}.gif");
        File.WriteAllBytes(gif, ImageBytes.AnimatedGif(8, 8, Palette, Enumerable.Range(0, frames).Select(GifFrame).ToList()));
        return gif;
    }

    [Fact]
    public void Run_video_answers_on_an_animated_gif_and_an_image_with_a_video_in_marker_order()
    {
        string gif = WriteGif(10);
        var r = Run("run", "--model", Fixture, "--video", gif, "--prompt", VideoPrompt, "--max-tokens", "4", "--json");
        Assert.Equal(0, r.Code);
        using (var doc = System.Text.Json.JsonDocument.Parse(r.Out)) Assert.Equal(4, doc.RootElement.GetProperty("tokens").GetArrayLength());

        // The markers give the order: the video's 136 tokens first, then the image's 16.
        using var model = VlmModel.Load(Fixture);
        int[] ids = model.PromptIds("<video> then <image>: same?", [MediaKind.Video, MediaKind.Image]);
        int firstImage = Array.IndexOf(ids, 384), firstVideo = Array.IndexOf(ids, 385);
        Assert.True(firstVideo < firstImage);
        Assert.Equal(136, ids.Count(i => i == 385));
        Assert.Equal(16, ids.Count(i => i == 384));
        r = Run("run", "--model", Fixture, "--image", Path.Combine(Fixture, "input.png"), "--video", gif, "--prompt", "<video> then <image>: same?", "--max-tokens", "2");
        Assert.Equal(0, r.Code);
        Assert.Contains($"prefill {ids.Length} tokens", r.Err);
    }

    [Fact]
    public void Video_errors_are_one_line_and_name_what_is_wrong()
    {
        var r = Run("run", "--model", Fixture, "--video", WriteGif(3), "--prompt", VideoPrompt);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("3 frame(s), the model takes 8", r.Err);
        r = Run("run", "--model", Fixture, "--video", Path.Combine(Fixture, "frames"), "--prompt", "<image> and <video>");
        Assert.Contains("the prompt's markers are [<image>, <video>], the inputs are [<video>]", r.Err);
        r = Run("run", "--model", TestPaths.Fixture("llava-tiny"), "--video", Path.Combine(Fixture, "frames"), "--prompt", VideoPrompt);
        Assert.Contains("has no video tower", r.Err);
    }

    [Fact]
    public void Explain_video_draws_a_strip_of_frames_and_reads_each_frames_patches()
    {
        string output = Path.Combine(_dir, "explain");
        var r = Run("explain", "--model", Fixture, "--video", Path.Combine(Fixture, "frames"), "--prompt", VideoPrompt, "--out", output,
            "--max-tokens", "2", "--lora", Path.Combine(Fixture, "lora", "video_tower"));
        Assert.Equal(0, r.Code);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json")));
        var request = doc.RootElement.GetProperty("request");
        Assert.Equal(8, request.GetProperty("frames").GetInt32());
        Assert.Equal("video_tower", request.GetProperty("adapters")[0].GetString());
        Assert.Equal(8 * 16, doc.RootElement.GetProperty("tokens")[0].GetProperty("attention").GetProperty("layers")[0].GetArrayLength());
        Assert.Contains("frame 7", File.ReadAllText(Path.Combine(output, "report.html")));

        // Frame f's 17 tokens start at 4 + 17 f (after bos and "USER: "); the heatmap skips its class token.
        using var model = VlmModel.Load(Fixture);
        var video = (PureVlm.Models.IVideoLanguageModel)model.VisionLanguage;
        var positions = ExplainRecorder.VideoPatchPositions(video, model.PromptIds(VideoPrompt, [MediaKind.Video]));
        Assert.Equal(Enumerable.Range(0, 8).SelectMany(f => Enumerable.Range(4 + 17 * f + 1, 16)), positions);
    }

    [Fact]
    public void Trace_names_the_active_adapters_in_its_metadata()
    {
        string output = Path.Combine(_dir, "lora.safetensors");
        Assert.Equal(0, Program.Main(["trace", "--model", Fixture, "--video", Path.Combine(Fixture, "frames"), "--prompt", VideoPrompt,
            "--lora", Path.Combine(Fixture, "lora", "video_tower"), "--lora", Path.Combine(Fixture, "lora", "language_model"), "--out", output]));
        using var file = PureVlm.Formats.SafeTensorsFile.Open(output);
        Assert.Equal("video_tower (Vision, 12 modules), language_model (Text, 14 modules)", file.Metadata["adapters"]);
    }

    static (int Code, string Out, string Err) Run(params string[] args) => CommandRunner.Purevlm(args);

    public static TheoryData<string, string[]> LoraGoldens => new()
    {
        { "golden-image+image_tower.safetensors", ["image_tower"] },
        { "golden-image+all.safetensors", ["image_tower", "video_tower", "language_model"] },
        { "golden-video+video_tower.safetensors", ["video_tower"] },
        { "golden-video+language_model.safetensors", ["language_model"] },
        { "golden-video+all.safetensors", ["image_tower", "video_tower", "language_model"] },
    };

    static readonly Lazy<VlmModel> WithAdapters = new(() =>
    {
        // Loaded once; each request picks its adapters by name (lora/README.md: "+all" = all three active together).
        var model = VlmModel.Load(Fixture);
        foreach (var name in new[] { "image_tower", "video_tower", "language_model" }) model.LoadAdapter(Path.Combine(Fixture, "lora", name));
        return model;
    });

    [Theory, MemberData(nameof(LoraGoldens))]
    public void Per_modality_lora_goldens_match_with_adapters_chosen_per_request(string golden, string[] adapters)
    {
        using var g = new GoldenFixture("video-llava-tiny", Path.Combine("lora", golden));
        bool video = golden.Contains("video");
        var model = WithAdapters.Value;
        var recorder = new TraceRecorder();
        MediaInput input = video ? model.LoadVideo(Path.Combine(Fixture, "frames")) : MediaInput.Image(ImageLoader.Load(Path.Combine(Fixture, "input.png")));
        var result = model.Generate([input], video ? VideoPrompt : ImagePrompt,
            new GenerationOptions { MaxNewTokens = 12, StopAtEos = false, Adapters = adapters, Observer = recorder });
        Assert.Equal(g.Ints("generated_ids"), result.Tokens.Select(t => t.Id).ToArray());
        Assert.Equal(g.Ints("input_ids"), model.PromptIds(video ? VideoPrompt : ImagePrompt, [video ? MediaKind.Video : MediaKind.Image]));
        var report = new List<string>();
        foreach (var name in new[] { "image_tower.selected", "video_tower.selected", "projector" }.Where(g.Has))
            report.Add(Check(name, recorder[name].Span, g[name].Span));
        var want = g["generated_logits"];
        int vocab = want.Shape[1];
        for (int k = 0; k < 12; k++) report.Add(Check($"generated_logits[{k}]", recorder.StepLogits[k], want.Span.Slice(k * vocab, vocab)));
        Assert.True(report.All(l => !l.EndsWith("FAIL")), string.Join("\n", report));
    }

    static string Check(string name, ReadOnlySpan<float> got, ReadOnlySpan<float> want)
    {
        var (diff, scale) = GoldenFixture.Compare(got, want);
        return $"{name}: max|diff| {diff:E2} (rel {diff / scale:E2}){(diff <= GoldenFixture.Rtol * scale ? "" : "  FAIL")}";
    }
}
