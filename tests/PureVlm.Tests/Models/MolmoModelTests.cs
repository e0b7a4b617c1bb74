using PureVlm.Formats.Images;
using PureVlm.Runtime;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>
/// Molmo through the library's front door (every stage against the goldens from the golden crops is in
/// <see cref="FixtureParityTests"/>, from the image file in TraceCommandDiffTests).
/// </summary>
public class MolmoModelTests
{
    /// <summary>The golden <c>images</c>, <c>image_masks</c> and <c>image_input_idx</c> as a <see cref="MultiCropImage"/>.</summary>
    internal static MultiCropImage GoldenCrops(GoldenFixture g)
    {
        int[] ids = g.Ints("input_ids"), idx = g.Ints("image_input_idx");
        // image_input_idx holds positions in input_ids; the model wants the index among the <im_patch> tokens.
        var patchPositions = Enumerable.Range(0, ids.Length).Where(i => ids[i] == 386).ToList();
        var cellTokens = idx.Select(p => p < 0 ? -1 : patchPositions.IndexOf(p)).ToArray();
        return new MultiCropImage(g["images"].Data.ToArray(), g["image_masks"].Data.ToArray(), cellTokens, 4, 1, 3, [(3, 3), (3, 5)]);
    }

    [Fact]
    public void Generate_from_the_image_file_and_prompt_gives_the_reference_ids()
    {
        using var g = new GoldenFixture("molmo-tiny", "golden.safetensors");
        using var model = VlmModel.Load(g.Dir);
        var image = ImageLoader.Load(Path.Combine(g.Dir, "input.png"));
        Assert.Equal(g.Ints("input_ids"), model.PromptIds("Point to the red disc.", [image]));
        var answer = model.Generate(image, "Point to the red disc.", new GenerationOptions { MaxNewTokens = 12, StopAtEos = false });
        Assert.Equal(g.Ints("generated_ids"), answer.Tokens.Select(t => t.Id));
        Assert.Equal(model.Tokenizer.Decode(g.Ints("generated_ids")), answer.Text);
    }

    [Fact]
    public void A_text_only_prompt_is_bos_and_the_message_and_image_counts_need_the_images()
    {
        using var model = VlmModel.Load(TestPaths.Fixture("molmo-tiny"));
        Assert.Equal([356, 220, 311, 25, 347, 272, 262, 304, 286, 13, 318, 25], model.PromptIds("Point to the red disc.", images: 0));
        Assert.Contains("depend on each image's size", Assert.Throws<ArgumentException>(() => model.PromptIds("Point", images: 1)).Message);
    }
}
