using PureVlm.Formats;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>HF <c>SiglipVisionModel</c> as PaliGemma uses it: embeddings, encoder layers, <c>post_layernorm</c>, no pooling head.</summary>
public sealed class SiglipVisionModel
{
    /// <summary>The config it was built from.</summary>
    public VisionConfig Config { get; }
    readonly SiglipVisionEmbeddings _embeddings;
    readonly EncoderLayer[] _layers;
    readonly LayerNorm _postLayernorm;
    readonly string[] _layerNames;

    /// <summary>Loads the tower under <paramref name="scope"/> (<c>…vision_tower.vision_model</c>).</summary>
    public SiglipVisionModel(WeightScope scope, VisionConfig c)
    {
        Config = c;
        _embeddings = new SiglipVisionEmbeddings(scope.Sub("embeddings"), c);
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"vision.layers.{i}").ToArray();
        var layers = scope.Sub("encoder").Sub("layers");
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new EncoderLayer(layers.Sub(i), c, _layerNames[i])).ToArray();
        _postLayernorm = new LayerNorm(scope.Sub("post_layernorm"), c.HiddenSize, c.LayerNormEps);
    }

    /// <summary>
    /// Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>): the encoder layers'. The patch
    /// embedding runs as a GEMM but is an <c>nn.Conv2d</c> in HF, which PEFT adapts with conv-shaped LoRA weights, so it is not listed.
    /// </summary>
    public IEnumerable<Linear> Linears() => _layers.SelectMany(l => l.Linears());

    /// <summary>pixels [C, S, S] → last_hidden_state [P, d], in the returned scratch buffer.</summary>
    public float[] Forward(ReadOnlySpan<float> pixels, ForwardContext ctx)
    {
        int n = Config.NumPatches, d = Config.HiddenSize;
        var x = ctx.Scratch.Get(Slot.Hidden, n * d); // [P, d]
        var xs = x.AsSpan(0, n * d);
        _embeddings.Forward(pixels, xs, ctx);
        ctx.Report("vision.embeddings", x, 1, n, d);
        for (int i = 0; i < _layers.Length; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            _layers[i].Forward(xs, n, ctx);
            ctx.Report(_layerNames[i], x, 1, n, d);
        }
        _postLayernorm.Forward(xs, xs);
        ctx.Report("vision.post_layernorm", x, 1, n, d);
        return x;
    }
}
