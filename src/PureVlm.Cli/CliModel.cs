using PureVlm.Formats;
using PureVlm.Tensors;

namespace PureVlm.Cli;

/// <summary>Loads the model a command names (or the embedded demo model), showing progress on stderr.</summary>
static class CliModel
{
    /// <summary>Help text of the two options every model-loading command takes.</summary>
    public const string OptionsHelp = """
          --model DIR|ID       Hugging Face model folder, or a repo id (google/paligemma2-3b-pt-224) found offline in the
                               local hub cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)
                               (where --model is optional, the default is the embedded demo model)
          --revision REV       with a repo id: the branch, tag or commit of the cached snapshot (default main)
        """;

    /// <summary>Help text of <c>--quantize</c>, for the commands that run a model.</summary>
    public const string QuantizeHelp = """
          --quantize 4|8       quantize the float Linear weights as they load (MLX affine, groups of 64; the token
                               embedding / tied LM head at 8 bits), no second copy on disk; see weights-tools quantize
        """;

    /// <summary>The recipe <c>--quantize</c> asks for, or null.</summary>
    public static QuantizationRecipe? Quantization(CommandLine cl)
    {
        string? bits = cl.Get("--quantize");
        if (bits == null) return null;
        return bits is "4" or "8" ? new QuantizationRecipe(int.Parse(bits))
            : throw new UsageException($"--quantize '{bits}': expected 4 or 8");
    }

    /// <summary>The model folder <c>--model</c> and <c>--revision</c> name, the demo model's without <c>--model</c>.</summary>
    public static string Directory(CommandLine cl)
    {
        string? model = cl.Get("--model"), revision = cl.Get("--revision");
        if (model == null && revision != null) throw new UsageException("--revision needs --model with a Hugging Face repo id");
        return HfCache.ResolveModel(model ?? VlmModel.DefaultModelPath, revision);
    }

    public static VlmModel Load(CommandLine cl, string? segmentationDecoder = null)
    {
        bool interactive = !Console.IsErrorRedirected;
        var model = VlmModel.Load(Directory(cl), status =>
        {
            if (interactive) Console.Error.Write($"\rloading: {status}...\u001b[K");
        }, segmentationDecoder, quantize: Quantization(cl));
        if (interactive) Console.Error.Write("\r\u001b[K");
        return model;
    }
}
