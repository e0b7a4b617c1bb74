using PureVlm.Formats;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// HF <c>CLIPVisionModel</c> as LLaVA uses it: embeddings (class token first), <c>pre_layrnorm</c>, pre-LN encoder layers
/// with quick_gelu. LLaVA reads one layer's hidden states and never applies <c>post_layernorm</c>, so neither is there.
/// </summary>
public sealed class ClipVisionModel
{
    /// <summary>The config it was built from.</summary>
    public VisionConfig Config { get; }
    readonly ClipVisionEmbeddings _embeddings;
    readonly LayerNorm _preLayrnorm;
    readonly EncoderLayer[] _layers;
    readonly string[] _layerNames;

    /// <summary>Loads the tower under <paramref name="scope"/> (<c>…vision_tower.vision_model</c>).</summary>
    public ClipVisionModel(WeightScope scope, VisionConfig c)
    {
        Config = c;
        _embeddings = new ClipVisionEmbeddings(scope.Sub("embeddings"), c);
        _preLayrnorm = new LayerNorm(scope.Sub("pre_layrnorm"), c.HiddenSize, c.LayerNormEps); // sic: HF's spelling
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"vision.layers.{i}").ToArray();
        var layers = scope.Sub("encoder").Sub("layers");
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new EncoderLayer(layers.Sub(i), c, _layerNames[i])).ToArray();
    }

    /// <summary>
    /// Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>): the encoder layers'. The patch
    /// embedding runs as a GEMM but is an <c>nn.Conv2d</c> in HF, which PEFT adapts with conv-shaped LoRA weights, so it is not listed.
    /// </summary>
    public IEnumerable<Linear> Linears() => _layers.SelectMany(l => l.Linears());

    /// <summary>
    /// pixels [C, S, S] → HF <c>hidden_states[<paramref name="hiddenStateIndex"/>]</c> [P + 1, d] (index 0 is the
    /// <c>pre_layrnorm</c> output, i + 1 layer i's output), in the returned scratch buffer. The layers after it change
    /// nothing LLaVA uses, so they run only when an observer is attached, which then sees every layer as HF computes it.
    /// </summary>
    public float[] Forward(ReadOnlySpan<float> pixels, int hiddenStateIndex, ForwardContext ctx)
    {
        int n = Config.NumPatches + 1, d = Config.HiddenSize;
        var x = ctx.Scratch.Get(Slot.Hidden, n * d); // [P + 1, d]
        var xs = x.AsSpan(0, n * d);
        _embeddings.Forward(pixels, xs, ctx);
        ctx.Report("vision.embeddings", x, 1, n, d);
        _preLayrnorm.Forward(xs, xs);
        ctx.Report("vision.pre_layrnorm", x, 1, n, d);
        if (hiddenStateIndex == 0 && ctx.Observer == null) return x;
        float[]? selected = hiddenStateIndex == 0 ? xs.ToArray() : null;
        int last = ctx.Observer == null ? hiddenStateIndex : _layers.Length;
        for (int i = 0; i < last; i++)
        {
            _layers[i].Forward(xs, n, ctx);
            ctx.Report(_layerNames[i], x, 1, n, d);
            if (i + 1 == hiddenStateIndex && last > hiddenStateIndex) selected = xs.ToArray();
        }
        return selected ?? x;
    }
}
