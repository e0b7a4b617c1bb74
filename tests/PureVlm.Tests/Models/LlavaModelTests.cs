using PureVlm.Formats.Images;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>LLaVA through the library's front door: image file and prompt text in, the reference's greedy tokens out.</summary>
public class LlavaModelTests
{
    static readonly string Dir = TestPaths.Fixture("llava-tiny");
    const string Prompt = "What is in the picture?"; // the fixture README's prompt

    [Fact]
    public void Generate_from_the_image_file_and_prompt_gives_the_reference_ids()
    {
        using var g = new GoldenFixture("llava-tiny", "golden.safetensors");
        using var model = VlmModel.Load(Dir);
        Assert.Equal(g.Ints("input_ids"), model.PromptIds(Prompt));
        var answer = model.Generate(Path.Combine(Dir, "input.png"), Prompt, new GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), answer.Tokens.Select(t => t.Id));
        Assert.Empty(answer.Detections); // LLaVA answers in words; only PaliGemma's format has <loc> boxes
    }

    [Fact]
    public void Image_markers_in_the_prompt_place_each_image_and_must_match_the_image_count()
    {
        using var model = VlmModel.Load(Dir);
        // One image and no marker puts it first: the same ids as the marker written out.
        Assert.Equal(model.PromptIds(Prompt), model.PromptIds("<image>\n" + Prompt));
        var two = model.PromptIds("<image>\nand\n<image>\nWhat differs?", images: 2);
        int image = model.Loaded.Config.ImageTokenIndex;
        Assert.Equal(32, two.Count(id => id == image));
        Assert.Equal(1, two[0]); // <s>
        Assert.Contains("2 <image> markers for 1 images", Assert.Throws<PureVlm.Prompts.InvalidPromptException>(() => model.PromptIds("<image> and <image>", images: 1)).Message);
    }

    [Fact]
    public void Two_images_fill_their_image_tokens_in_order()
    {
        using var model = VlmModel.Load(Dir);
        var card = ImageLoader.Load(Path.Combine(Dir, "input.png"));
        var flipped = RgbImage.FromPixels(card.Width, card.Height, FlipHorizontally(card));
        const string prompt = "<image>\n<image>\nWhich one is mirrored?";
        var options = new GenerationOptions { MaxNewTokens = 4, StopAtEos = false };
        var answer = model.Generate([card, flipped], prompt, options).Tokens.Select(t => t.Id).ToArray();

        // The same request assembled by hand from the session: features of card then flipped, in prompt order.
        var session = model.Loaded.CreateSession();
        float[] features = [.. session.EncodeImage(model.Preprocessor.PixelValues(card)), .. session.EncodeImage(model.Preprocessor.PixelValues(flipped))];
        var byHand = session.Generate(model.PromptIds(prompt, images: 2), features, options).Select(t => t.Id).ToArray();
        Assert.Equal(byHand, answer);

        float[] swapped = [.. features.AsSpan(features.Length / 2), .. features.AsSpan(0, features.Length / 2)];
        var logits = model.Loaded.CreateSession().Prefill(model.PromptIds(prompt, images: 2), swapped).ToArray();
        var original = model.Loaded.CreateSession().Prefill(model.PromptIds(prompt, images: 2), features).ToArray();
        Assert.NotEqual(original, logits); // order matters: the causal decoder sees the two images differently
    }

    static byte[] FlipHorizontally(RgbImage image)
    {
        var pixels = new byte[image.Pixels.Length];
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
                for (int c = 0; c < 3; c++)
                    pixels[(y * image.Width + x) * 3 + c] = image.Pixels[(y * image.Width + image.Width - 1 - x) * 3 + c];
        return pixels;
    }
}
