using PureVlm.Formats;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>Molmo's config.json: the hard-coded defaults of MolmoForCausalLM when keys are absent, one-line errors otherwise.</summary>
public class MolmoConfigTests
{
    [Fact]
    public void Molmo_7b_d_config_json_takes_the_hard_coded_vision_and_pooling_settings()
    {
        // The keys of the real config.json (decoder only).
        var c = ModelConfig.Parse("""
            {"model_type": "molmo", "hidden_size": 3584, "intermediate_size": 37888, "num_hidden_layers": 28, "num_attention_heads": 28,
             "num_key_value_heads": 4, "embedding_size": 152064, "vocab_size": 152064, "rope_theta": 1000000.0, "layer_norm_eps": 1e-06,
             "qkv_bias": true, "weight_tying": false, "max_position_embeddings": 4096}
            """);
        Assert.Equal((18944, 128, 152064 + 2), (c.Text.IntermediateSize, c.Text.HeadDim, c.ImageTokenIndex));
        Assert.Equal((336, 14, 1024, 23, 16, 4096), (c.Vision!.ImageSize, c.Vision.PatchSize, c.Vision.HiddenSize, c.Vision.NumHiddenLayers, c.Vision.NumAttentionHeads, c.Vision.IntermediateSize));
        Assert.Equal([-2, -9], c.Molmo!.VitLayers);
        Assert.Equal((2, 2, 128), (c.Molmo.PoolingH, c.Molmo.PoolingW, c.Molmo.AdditionalVocabSize));
        Assert.Equal([-1], c.EosTokenIds); // none in config.json: the tokenizer's <|endoftext|> is used
    }

    [Theory]
    [InlineData("""{"model_type": "molmo", "image_pooling_2d": "attention"}""", "image_pooling_2d is 'attention', expected 'attention-meanq'")]
    [InlineData("""{"model_type": "molmo", "vit_layers": [-2, -30]}""", "vit_layers holds -30, expected block indices -23..22")]
    [InlineData("""{"model_type": "molmo", "intermediate_size": 37887}""", "intermediate_size is 37887, expected an even number")]
    [InlineData("""{"model_type": "molmo", "vocab_size": 152000, "embedding_size": 152064}""", "vocab_size is 152000, embedding_size is 152064")]
    [InlineData("""{"model_type": "molmo", "norm_after": true}""", "norm_after is true, expected false")]
    [InlineData("""{"model_type": "molmo", "vision_backbone": {"image_num_pos": 500}}""", "vision_backbone.image_num_pos is 500, expected (image size / patch size)² + 1 = 577")]
    public void An_unsupported_setting_is_a_one_line_error_naming_the_key(string json, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
