using PureVlm.Formats;
using Xunit;

namespace PureVlm.Tests.Models;

/// <summary>config.json values that would give NaN, division by zero or int-overflowing buffers are rejected by key.</summary>
public class ConfigValidationTests
{
    [Theory]
    [InlineData("""{"model_type": "gemma", "rope_theta": 0}""", "rope_theta is 0")]
    [InlineData("""{"model_type": "gemma", "rope_theta": -10000}""", "rope_theta is -10000")]
    [InlineData("""{"model_type": "gemma", "rope_theta": 1e300}""", "rope_theta")] // overflows float to +inf
    [InlineData("""{"model_type": "gemma2", "rms_norm_eps": 0}""", "rms_norm_eps is 0")]
    [InlineData("""{"model_type": "gemma2", "rms_norm_eps": -1e-6}""", "rms_norm_eps")]
    [InlineData("""{"model_type": "paligemma", "vision_config": {"layer_norm_eps": 0}}""", "vision_config.layer_norm_eps is 0")]
    [InlineData("""{"model_type": "paligemma", "text_config": {"rms_norm_eps": 0}}""", "text_config.rms_norm_eps is 0")]
    [InlineData("""{"model_type": "gemma", "head_dim": -256}""", "head_dim is -256")]
    [InlineData("""{"model_type": "gemma", "hidden_size": 2000000000, "num_attention_heads": 1, "num_key_value_heads": 1}""", "hidden_size is 2000000000")]
    [InlineData("""{"model_type": "gemma", "vocab_size": 1048576, "hidden_size": 4096}""", "vocab_size × hidden_size")]
    [InlineData("""{"model_type": "gemma", "intermediate_size": 1048576, "hidden_size": 4096}""", "intermediate_size × hidden_size")]
    [InlineData("""{"model_type": "gemma", "num_attention_heads": 1024, "num_key_value_heads": 1, "head_dim": 1024, "hidden_size": 4096}""", "num_attention_heads × head_dim × hidden_size")]
    [InlineData("""{"model_type": "paligemma", "vision_config": {"image_size": 65536, "patch_size": 16}}""", "vision_config.num_channels × image_size²")]
    [InlineData("""{"model_type": "paligemma", "vision_config": {"image_size": 1048576, "patch_size": 1048576, "hidden_size": 1024, "num_attention_heads": 1}}""", "vision_config.num_channels × patch_size² × hidden_size")]
    public void Config_with_a_value_that_breaks_the_math_names_the_key(string json, string expected)
    {
        var e = Assert.Throws<ModelConfigException>(() => ModelConfig.Parse(json));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Real_paligemma_sizes_pass_the_limits()
    {
        // PaliGemma 3B: vocab 257216 × hidden 2048, mlp 16384, SigLIP So400m 1152 × 4304 at 448 px.
        var c = ModelConfig.Parse("""
            {"model_type": "paligemma", "text_config": {"vocab_size": 257216, "hidden_size": 2048, "intermediate_size": 16384},
             "vision_config": {"image_size": 448, "patch_size": 14, "hidden_size": 1152, "intermediate_size": 4304, "num_attention_heads": 16}}
            """);
        Assert.Equal(257216, c.Text.VocabSize);
        Assert.Equal(1024, c.Vision!.NumPatches);
    }
}
