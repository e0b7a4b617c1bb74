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
    /// <summary>The prefix of its activations' names: <c>vision</c> (LLaVA), <c>image_tower</c> / <c>video_tower</c> (Video-LLaVA).</summary>
    public string TraceName { get; }
    readonly ClipVisionEmbeddings _embeddings;
    readonly LayerNorm _preLayrnorm;
    readonly EncoderLayer[] _layers;
    readonly string[] _layerNames;

    /// <summary>Loads the tower under <paramref name="scope"/> (<c>…vision_tower.vision_model</c>); <paramref name="traceName"/> prefixes its activations.</summary>
    public ClipVisionModel(WeightScope scope, VisionConfig c, string traceName = "vision")
    {
        Config = c;
        TraceName = traceName;
        _embeddings = new ClipVisionEmbeddings(scope.Sub("embeddings"), c);
        _preLayrnorm = new LayerNorm(scope.Sub("pre_layrnorm"), c.HiddenSize, c.LayerNormEps); // sic: HF's spelling
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"{traceName}.layers.{i}").ToArray();
        var layers = scope.Sub("encoder").Sub("layers");
        _layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new EncoderLayer(layers.Sub(i), c, _layerNames[i])).ToArray();
    }

    /// <summary>
    /// Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>): the encoder layers'. The patch
    /// embedding runs as a GEMM but is an <c>nn.Conv2d</c> in HF, which PEFT adapts with conv-shaped LoRA weights, so it is not listed.
    /// </summary>
    public IEnumerable<Linear> Linears() => _layers.SelectMany(l => l.Linears());

    /// <summary>
    /// pixels [B, C, S, S] → HF <c>hidden_states[<paramref name="hiddenStateIndex"/>]</c> [B, P + 1, d] (index 0 is the
    /// <c>pre_layrnorm</c> output, i + 1 layer i's output), in the returned buffer. The B images (a video's frames) are
    /// encoded independently, as one batch: they share the GEMMs and attend only within themselves. The layers after
    /// the selected one change nothing LLaVA uses, so they run only when an observer is attached, which then sees every
    /// layer as HF computes it, as [B, P + 1, d].
    /// </summary>
    public float[] Forward(ReadOnlySpan<float> pixels, int images, int hiddenStateIndex, ForwardContext ctx)
    {
        int n = Config.NumPatches + 1, d = Config.HiddenSize, rows = images * n;
        int perImage = Config.NumChannels * Config.ImageSize * Config.ImageSize;
        if (images < 1 || pixels.Length != images * perImage)
            throw new ArgumentException($"pixels hold {pixels.Length} floats, expected {images} image(s) of {perImage}", nameof(pixels));
        var x = ctx.Scratch.Get(Slot.Hidden, rows * d); // [B, P + 1, d]
        var xs = x.AsSpan(0, rows * d);
        for (int b = 0; b < images; b++) _embeddings.Forward(pixels.Slice(b * perImage, perImage), xs.Slice(b * n * d, n * d), ctx);
        ctx.Report($"{TraceName}.embeddings", x, images, n, d);
        _preLayrnorm.Forward(xs, xs);
        ctx.Report($"{TraceName}.pre_layrnorm", x, images, n, d);
        if (hiddenStateIndex == 0 && ctx.Observer == null) return x;
        float[]? selected = hiddenStateIndex == 0 ? xs.ToArray() : null;
        int last = ctx.Observer == null ? hiddenStateIndex : _layers.Length;
        for (int i = 0; i < last; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            _layers[i].Forward(xs, rows, ctx, images);
            ctx.Report(_layerNames[i], x, images, n, d);
            if (i + 1 == hiddenStateIndex && last > hiddenStateIndex) selected = xs.ToArray();
        }
        return selected ?? x;
    }
}
