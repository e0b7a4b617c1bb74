using PureVlm.Runtime;
using PureVlm.Tensors;

namespace PureVlm.Adapters;

/// <summary>A Linear module of a base model, under its own name and under both HF key layouts of PaliGemma.</summary>
/// <param name="Path">The name in the base checkpoint (<see cref="Models.Linear.ModulePath"/>).</param>
/// <param name="HubName">transformers &lt; 4.52 name (<c>language_model.model.layers.0…</c>, <c>vision_tower.…</c>, <c>language_model.lm_head</c>).</param>
/// <param name="NewName">transformers ≥ 4.52 name (<c>model.language_model.layers.0…</c>, <c>model.vision_tower.…</c>, <c>lm_head</c>).</param>
/// <param name="Weight">The base weight [out, in] (for a tied LM head, <c>embed_tokens</c>).</param>
/// <param name="IsOutputLayer">True for the LM head.</param>
/// <param name="IsVision">True in the vision tower or the multimodal projector.</param>
sealed record BaseLinear(string Path, string HubName, string NewName, StoredTensor Weight, bool IsOutputLayer, bool IsVision)
{
    /// <summary>in_features.</summary>
    public int InFeatures => checked((int)Weight.Shape[1]);
    /// <summary>out_features.</summary>
    public int OutFeatures => checked((int)Weight.Shape[0]);
    /// <summary>True when the weight is this module's own tensor (false for an LM head tied to embed_tokens).</summary>
    public bool OwnsWeight => Weight.Name == Path + ".weight";
}

/// <summary>The Linear modules of a loaded model, found from its checkpoint: every 2-D <c>….weight</c> except embeddings, plus the LM head.</summary>
static class BaseLinears
{
    // nn.Embedding, not nn.Linear: PEFT would give them lora_embedding_A/B, which are not supported.
    static readonly string[] EmbeddingNames = ["embed_tokens", "position_embedding"];

    /// <summary>The model's Linear modules, in checkpoint order.</summary>
    public static List<BaseLinear> Of(LoadedModel model)
    {
        bool pali = model.Config.IsPaliGemma;
        var list = new List<BaseLinear>();
        foreach (var t in model.Checkpoint.Tensors)
        {
            if (t.Rank != 2 || !t.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
            string path = t.Name[..^".weight".Length];
            if (EmbeddingNames.Contains(path[(path.LastIndexOf('.') + 1)..])) continue;
            list.Add(Make(path, t, pali, isOutput: false));
        }
        var head = model.Model.LanguageModel.LmHead;
        int existing = list.FindIndex(l => l.Path == head.ModulePath);
        if (existing >= 0) list[existing] = list[existing] with { IsOutputLayer = true };
        else list.Add(Make(head.ModulePath, head.Weight, pali, isOutput: true));
        return list;
    }

    static BaseLinear Make(string path, StoredTensor weight, bool pali, bool isOutput)
    {
        string hub = pali ? ToHub(path) : path;
        string newer = pali ? ToNew(hub) : hub;
        bool vision = pali && (hub.StartsWith("vision_tower.", StringComparison.Ordinal) || hub.StartsWith("multi_modal_projector.", StringComparison.Ordinal));
        return new BaseLinear(path, hub, newer, weight, isOutput, vision);
    }

    static readonly (string Hub, string New)[] Prefixes =
    [
        ("language_model.model.", "model.language_model."),
        ("vision_tower.", "model.vision_tower."),
        ("multi_modal_projector.", "model.multi_modal_projector."),
    ];

    /// <summary>A PaliGemma module name in transformers &lt; 4.52 form.</summary>
    public static string ToHub(string name)
    {
        if (name == "lm_head") return "language_model.lm_head";
        foreach (var (hub, newer) in Prefixes)
            if (name.StartsWith(newer, StringComparison.Ordinal)) return hub + name[newer.Length..];
        return name;
    }

    /// <summary>A PaliGemma module name in transformers ≥ 4.52 form.</summary>
    public static string ToNew(string hubName)
    {
        if (hubName == "language_model.lm_head") return "lm_head";
        foreach (var (hub, newer) in Prefixes)
            if (hubName.StartsWith(hub, StringComparison.Ordinal)) return newer + hubName[hub.Length..];
        return hubName;
    }
}
