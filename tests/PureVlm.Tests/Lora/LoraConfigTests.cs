using System.Text;
using PureVlm.Adapters;
using Xunit;

namespace PureVlm.Tests.Lora;

/// <summary>PEFT's name rules: check_target_module_exists (list: exact or ".suffix"; string: re.fullmatch) and get_pattern_key.</summary>
public class LoraConfigTests
{
    static LoraConfig Parse(string fields) => LoraConfig.Parse(Encoding.UTF8.GetBytes("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, " + fields + "}"));

    [Theory]
    [InlineData("language_model.model.layers.0.self_attn.q_proj", true)]
    [InlineData("q_proj", true)]                                    // equal
    [InlineData("vision_tower.vision_model.encoder.layers.0.self_attn.q_proj", true)]
    [InlineData("language_model.model.layers.0.self_attn.xq_proj", false)] // suffix must follow a dot
    [InlineData("language_model.model.layers.0.self_attn.q_proj.base", false)]
    [InlineData("language_model.model.layers.0.mlp.up_proj", true)]
    public void Target_list_matches_exact_names_and_dot_suffixes(string name, bool expected) =>
        Assert.Equal(expected, Parse("\"target_modules\": [\"q_proj\", \"up_proj\"]").Targets(name, false));

    [Fact]
    public void Target_list_entry_with_dots_matches_as_a_suffix_only_after_a_dot()
    {
        var c = Parse("\"target_modules\": [\"2.self_attn.q_proj\"]");
        Assert.True(c.Targets("language_model.model.layers.2.self_attn.q_proj", false));
        Assert.False(c.Targets("language_model.model.layers.12.self_attn.q_proj", false));
    }

    [Fact]
    public void Target_string_is_a_full_match_regex()
    {
        var c = Parse("\"target_modules\": \".*\\\\.(q|v)_proj\"");
        Assert.True(c.Targets("language_model.model.layers.0.self_attn.v_proj", false));
        Assert.False(c.Targets("language_model.model.layers.0.self_attn.k_proj", false));
        Assert.False(Parse("\"target_modules\": \"q_proj\"").Targets("language_model.model.layers.0.self_attn.q_proj", false)); // no search
    }

    [Fact]
    public void All_linear_leaves_out_the_output_layer_and_exclude_modules_wins()
    {
        var c = Parse("\"target_modules\": \"all-linear\", \"exclude_modules\": [\"fc1\"]");
        Assert.True(c.Targets("language_model.model.layers.0.mlp.up_proj", false));
        Assert.False(c.Targets("language_model.lm_head", true));
        Assert.False(c.Targets("vision_tower.vision_model.encoder.layers.0.mlp.fc1", false));
    }

    [Fact]
    public void Modules_to_save_are_never_adapter_targets()
    {
        var c = Parse("\"target_modules\": [\"linear\", \"q_proj\"], \"modules_to_save\": [\"multi_modal_projector\"]");
        Assert.False(c.Targets("multi_modal_projector.linear", false));
        Assert.True(c.Targets("language_model.model.layers.0.self_attn.q_proj", false));
    }

    [Fact]
    public void Pattern_keys_match_the_end_of_the_name_at_a_dot_boundary_first_key_wins()
    {
        var c = Parse("\"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"layers.1.self_attn.q_proj\": 2, \"q_proj\": 8}, \"alpha_pattern\": {\"model.layers.0.self_attn.q_proj\": 16}");
        Assert.Equal(2, c.RankOf("language_model.model.layers.1.self_attn.q_proj"));
        Assert.Equal(8, c.RankOf("language_model.model.layers.11.self_attn.q_proj")); // "layers.1." does not match "layers.11."
        Assert.Equal(8, c.RankOf("q_proj"));                                           // the whole name is a match too
        Assert.Equal(4, c.RankOf("language_model.model.layers.1.self_attn.k_proj"));
        Assert.Equal(16, c.AlphaOf("language_model.model.layers.0.self_attn.q_proj"));
        Assert.Equal(8, c.AlphaOf("language_model.model.layers.1.self_attn.q_proj"));
        Assert.Equal(16 / 8.0, c.ScaleOf("language_model.model.layers.0.self_attn.q_proj")); // alpha 16 from alpha_pattern, r 8 from "q_proj"
    }

    [Fact]
    public void Scale_is_alpha_over_r_or_alpha_over_sqrt_r_with_rslora()
    {
        Assert.Equal(2.0, Parse("\"target_modules\": [\"q_proj\"]").ScaleOf("a.q_proj"));
        Assert.Equal(4.0, Parse("\"target_modules\": [\"q_proj\"], \"use_rslora\": true").ScaleOf("a.q_proj"));
        Assert.Equal(8 / Math.Sqrt(2), Parse("\"target_modules\": [\"q_proj\"], \"use_rslora\": true, \"rank_pattern\": {\"q_proj\": 2}").ScaleOf("a.q_proj"));
    }
}
