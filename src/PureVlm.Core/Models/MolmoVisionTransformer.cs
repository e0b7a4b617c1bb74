using PureVlm.Formats;
using PureVlm.Kernels;
using static PureVlm.Models.Workspace;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>VisionTransformer</c> (<c>model.vision_backbone.image_vit</c>): the CLIP ViT with its patch convolution stored
/// as a Linear over a patch's pixels in (dy, dx, c) order, class token, learned positions, <c>pre_ln</c>, pre-LN blocks
/// with quick_gelu and no post-LN. All crops of an image run as one batch; each attends only within itself.
/// </summary>
public sealed class MolmoVisionTransformer
{
    /// <summary>The config it was built from.</summary>
    public VisionConfig Config { get; }
    readonly Linear _patchEmbedding;
    readonly float[] _classEmbedding, _positionalEmbedding;
    readonly LayerNorm _preLn;
    readonly EncoderLayer[] _resblocks;
    readonly string[] _layerNames;

    /// <summary>Loads the ViT under <paramref name="scope"/> (<c>…image_vit</c>).</summary>
    public MolmoVisionTransformer(WeightScope scope, VisionConfig c)
    {
        Config = c;
        int d = c.HiddenSize;
        _patchEmbedding = new Linear(scope.Sub("patch_embedding"), c.PatchSize * c.PatchSize * c.NumChannels, d, bias: false);
        _classEmbedding = scope.GetFloats("class_embedding", d);
        _positionalEmbedding = scope.GetFloats("positional_embedding", c.NumPatches + 1, d);
        _preLn = new LayerNorm(scope.Sub("pre_ln"), d, c.LayerNormEps);
        _layerNames = Enumerable.Range(0, c.NumHiddenLayers).Select(i => $"vision.layers.{i}").ToArray();
        var blocks = scope.Sub("transformer").Sub("resblocks");
        _resblocks = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new EncoderLayer(blocks.Sub(i), c, _layerNames[i], EncoderLayerNames.Molmo)).ToArray();
    }

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>): the patch embedding (a Linear here), then the blocks'.</summary>
    public IEnumerable<Linear> Linears() => _resblocks.SelectMany(l => l.Linears()).Prepend(_patchEmbedding);

    /// <summary>
    /// patches [crops, P, p·p·3] → the outputs of the blocks in <paramref name="keep"/> (0-based), each [crops, P + 1, d].
    /// Blocks after the last kept one change nothing Molmo uses and run only for an observer.
    /// </summary>
    public float[][] Forward(ReadOnlySpan<float> patches, int crops, IReadOnlyList<int> keep, ForwardContext ctx)
    {
        int p = Config.NumPatches, n = p + 1, d = Config.HiddenSize, rows = crops * n;
        var x = ctx.Scratch.Get(Slot.Hidden, rows * d); // [crops, P + 1, d]
        var xs = x.AsSpan(0, rows * d);
        var embedded = ctx.Scratch.Span(Slot.Patches, crops * p * d);
        _patchEmbedding.Forward(patches, crops * p, embedded, ctx);
        for (int c = 0; c < crops; c++)
        {
            var crop = xs.Slice(c * n * d, n * d);
            _classEmbedding.CopyTo(crop);
            embedded.Slice(c * p * d, p * d).CopyTo(crop[d..]);
            ElementWise.Add(crop, _positionalEmbedding);
        }
        ctx.Report("vision.embeddings", x, crops, n, d);
        _preLn.Forward(xs, xs);
        ctx.Report("vision.pre_ln", x, crops, n, d);
        var kept = new float[keep.Count][];
        int last = ctx.Observer == null ? keep.Max() + 1 : _resblocks.Length;
        for (int i = 0; i < last; i++)
        {
            ctx.Cancel.ThrowIfCancellationRequested();
            _resblocks[i].Forward(xs, rows, ctx, sequences: crops);
            ctx.Report(_layerNames[i], x, crops, n, d);
            for (int k = 0; k < keep.Count; k++)
                if (keep[k] == i) kept[k] = xs.ToArray();
        }
        return kept;
    }
}
