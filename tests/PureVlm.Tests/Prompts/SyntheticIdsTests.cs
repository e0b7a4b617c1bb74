using PureVlm.Prompts;
using Xunit;

namespace PureVlm.Tests.Prompts;

/// <summary>Tokenizer-free ids put the image tokens and bos where each family's processor does.</summary>
public class SyntheticIdsTests
{
    [Fact]
    public void PaliGemma_puts_every_image_token_first_then_bos_then_text()
    {
        int[] ids = new PaliGemmaPrompt(imageTokensPerImage: 3, imageTokenId: 99).SyntheticIds(images: 2, textTokens: 3, bos: 2);
        Assert.Equal([99, 99, 99, 99, 99, 99, 2, 8, 9, 10], ids);
    }

    [Fact]
    public void Llava_puts_bos_first_and_the_image_tokens_between_the_text_halves()
    {
        int[] ids = new LlavaPrompt(imageSeqLength: 3, imageTokenId: 352).SyntheticIds(images: 1, textTokens: 5, bos: 1);
        Assert.Equal([1, 8, 9, 352, 352, 352, 10, 11, 12], ids);
        Assert.Equal([1, 352, 352, 352], new LlavaPrompt(3, 352).SyntheticIds(1, 0, 1));
    }

    [Fact]
    public void Stand_in_text_ids_stay_below_48() =>
        Assert.All(Enumerable.Range(0, 200).Select(IPromptFormat.FillerId), id => Assert.InRange(id, 8, 47));
}
