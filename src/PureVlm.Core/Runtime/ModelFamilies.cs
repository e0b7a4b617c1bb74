using PureVlm.Formats;
using PureVlm.Models;
using PureVlm.Prompts;
using PureVlm.Tensors;

namespace PureVlm.Runtime;

/// <summary>
/// Which module tree a <c>model_type</c> builds, as HF's Auto classes map it. A new architecture adds its line here
/// (and its prompt format in <see cref="PromptFormat"/>); nothing else in the runtime knows the architectures.
/// </summary>
public static class ModelFamilies
{
    /// <summary>
    /// Builds the module tree of <paramref name="config"/> over <paramref name="checkpoint"/>'s tensors, quantizing float
    /// matrices as <paramref name="quantize"/> says (null keeps them as stored).
    /// </summary>
    public static IGenerativeModel Build(ModelConfig config, Checkpoint checkpoint, QuantizationRecipe? quantize = null)
    {
        var root = new WeightScope(checkpoint, quantize: quantize);
        return config.ModelType switch
        {
            "paligemma" => new PaliGemmaForConditionalGeneration(root, config, NewMultimodalLayout(checkpoint, "PaliGemma")),
            "llava" => new LlavaForConditionalGeneration(root, config, NewMultimodalLayout(checkpoint, "LLaVA")),
            "video_llava" => new VideoLlavaForConditionalGeneration(root, config, NewMultimodalLayout(checkpoint, "Video-LLaVA")),
            "gemma3" => new Gemma3ForConditionalGeneration(root, config, NewMultimodalLayout(checkpoint, "Gemma 3")),
            "molmo" => new MolmoForCausalLM(root, config),
            "gemma" or "gemma2" or "gemma3_text" => new CausalLM(config, new GemmaModel(root.Sub("model"), config.Text, "lm_head", DecoderModel.LmHeadWeight(root, "lm_head", config.Text))),
            "llama" => new CausalLM(config, new LlamaModel(root.Sub("model"), config.Text, "lm_head", DecoderModel.LmHeadWeight(root, "lm_head", config.Text))),
            _ => throw new ModelConfigException($"model_type '{config.ModelType}' is not supported (expected one of {string.Join(", ", ModelConfig.SupportedModelTypes)})"),
        };
    }

    /// <summary>The prompt format of a vision-language family (how its processor lays out image tokens and text).</summary>
    public static IPromptFormat PromptFormat(IVisionLanguageModel model) => model.Config.ModelType switch
    {
        "paligemma" => new PaliGemmaPrompt(model.ImageTokensPerImage, model.Config.ImageTokenIndex),
        "llava" => new LlavaPrompt(model.ImageTokensPerImage, model.Config.ImageTokenIndex),
        "video_llava" when model is IVideoLanguageModel video => new LlavaPrompt(model.ImageTokensPerImage, model.Config.ImageTokenIndex,
            video.FramesPerVideo * video.VideoTokensPerFrame, video.VideoTokenIndex),
        "gemma3" => new Gemma3Prompt(model.ImageTokensPerImage, model.Config.ImageTokenIndex, model.Config.Gemma3!.BoiTokenIndex, model.Config.Gemma3.EoiTokenIndex),
        "molmo" => new MolmoPrompt(model.Config.ImageTokenIndex, model.ImageTokenGridSide),
        _ => throw new ModelConfigException($"model_type '{model.Config.ModelType}' has no prompt format"),
    };

    /// <summary>
    /// True for transformers ≥ 4.52 names of a vision-language checkpoint (<c>model.language_model.…</c>), false for the
    /// hub's (<c>language_model.model.…</c>); PaliGemma, LLaVA, Video-LLaVA and Gemma 3 were renamed the same way.
    /// </summary>
    public static bool NewMultimodalLayout(Checkpoint c, string family)
    {
        if (c.Contains("model.language_model.embed_tokens.weight")) return true;
        if (c.Contains("language_model.model.embed_tokens.weight")) return false;
        throw new InvalidModelFileException($"{c.Path}: missing tensor 'language_model.model.embed_tokens.weight' (or 'model.language_model.embed_tokens.weight'): not a {family} checkpoint");
    }
}
