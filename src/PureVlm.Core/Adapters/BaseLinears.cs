using PureVlm.Models;
using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Adapters;

/// <summary>A Linear module of a base model, under its own name and under both HF key layouts of its family.</summary>
/// <param name="Path">The name in the base checkpoint (<see cref="Linear.ModulePath"/>).</param>
/// <param name="HubName">transformers &lt; 4.52 name (<c>language_model.model.layers.0…</c>, <c>vision_tower.…</c>, <c>language_model.lm_head</c>).</param>
/// <param name="NewName">transformers ≥ 4.52 name (<c>model.language_model.layers.0…</c>, <c>model.vision_tower.…</c>, <c>lm_head</c>).</param>
/// <param name="Weight">The base weight [out, in] (for a tied LM head, <c>embed_tokens</c>).</param>
/// <param name="IsOutputLayer">True for the LM head.</param>
/// <param name="IsVision">True in the vision tower or the multimodal projector.</param>
sealed record BaseLinear(string Path, string HubName, string NewName, IWeightMatrix Weight, bool IsOutputLayer, bool IsVision)
{
    /// <summary>in_features.</summary>
    public int InFeatures => checked((int)Weight.Shape[1]);
    /// <summary>out_features.</summary>
    public int OutFeatures => checked((int)Weight.Shape[0]);
}

/// <summary>
/// The Linear modules of a loaded model, as its module tree lists them (<see cref="IGenerativeModel.Linears"/>), with the
/// names a PEFT adapter may give them.
/// </summary>
static class BaseLinears
{
    /// <summary>The model's Linear modules, in forward order.</summary>
    public static List<BaseLinear> Of(LoadedModel model)
    {
        var lm = model.Modules.LanguageModel;
        var text = lm.Linears().ToHashSet(ReferenceEqualityComparer.Instance);
        // Vision-language checkpoints were renamed in transformers 4.52 (PaliGemma and LLaVA alike); text-only LMs were not.
        bool renamed = model.VisionLanguage != null;
        return model.Modules.Linears().Select(l =>
        {
            string hub = renamed ? ToHub(l.ModulePath) : l.ModulePath;
            return new BaseLinear(l.ModulePath, hub, renamed ? ToNew(hub) : hub, l.Weight, ReferenceEquals(l, lm.LmHead), !text.Contains(l));
        }).ToList();
    }

    static readonly (string Hub, string New)[] Prefixes =
    [
        ("language_model.model.", "model.language_model."),
        ("vision_tower.", "model.vision_tower."),
        ("image_tower.", "model.image_tower."), // Video-LLaVA's two towers
        ("video_tower.", "model.video_tower."),
        ("multi_modal_projector.", "model.multi_modal_projector."),
    ];

    /// <summary>A vision-language module name in transformers &lt; 4.52 form.</summary>
    public static string ToHub(string name)
    {
        if (name == "lm_head") return "language_model.lm_head";
        foreach (var (hub, newer) in Prefixes)
            if (name.StartsWith(newer, StringComparison.Ordinal)) return hub + name[newer.Length..];
        return name;
    }

    /// <summary>A vision-language module name in transformers ≥ 4.52 form.</summary>
    public static string ToNew(string hubName)
    {
        if (hubName == "language_model.lm_head") return "lm_head";
        foreach (var (hub, newer) in Prefixes)
            if (hubName.StartsWith(hub, StringComparison.Ordinal)) return newer + hubName[hub.Length..];
        return hubName;
    }
}
