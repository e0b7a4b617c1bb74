using PureVlm.Formats;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>MolmoVisionBackbone</c> (<c>model.vision_backbone</c>): the ViT over every crop, the outputs of the
/// <c>vit_layers</c> blocks concatenated (class token dropped), <c>pad_embed</c> added by each patch's padding mask,
/// attention pooling of pool_h × pool_w cells and the SwiGLU projector <c>w2(silu(w1 x) · w3 x)</c>.
/// </summary>
public sealed class MolmoVisionBackbone
{
    /// <summary>The ViT.</summary>
    public MolmoVisionTransformer ImageVit { get; }
    /// <summary>The attention pooling.</summary>
    public MolmoImagePooling ImagePooling2d { get; }
    /// <summary>The projector into the text embedding space.</summary>
    public GatedMlp ImageProjector { get; }
    readonly float[] _padEmbed; // [2, features]: row 0 for all-padding patches, row 1 for partly padded ones
    readonly int[] _layers;
    readonly int _poolH, _poolW, _textHidden;

    /// <summary>Loads the backbone under <paramref name="scope"/> (<c>model.vision_backbone</c>).</summary>
    public MolmoVisionBackbone(WeightScope scope, ModelConfig config)
    {
        var v = config.Vision!;
        var molmo = config.Molmo!;
        // vit_layers index Molmo's list of block outputs (no embeddings entry), so −1 is the last block.
        _layers = molmo.VitLayers.Select(l => l < 0 ? v.NumHiddenLayers + l : l).ToArray();
        (_poolH, _poolW, _textHidden) = (molmo.PoolingH, molmo.PoolingW, config.Text.HiddenSize);
        if (v.GridSize % _poolH != 0 || v.GridSize % _poolW != 0)
            throw new ModelConfigException($"config.json: the {v.GridSize}×{v.GridSize} patch grid does not split into image_pooling_h × image_pooling_w = {_poolH}×{_poolW} cells (odd grids are padded by the reference; not supported)");
        int features = v.HiddenSize * _layers.Length;
        ImageVit = new MolmoVisionTransformer(scope.Sub("image_vit"), v);
        _padEmbed = scope.GetFloats("pad_embed", 2, features);
        ImagePooling2d = new MolmoImagePooling(scope.Sub("image_pooling_2d"), features, v.NumAttentionHeads, v.HeadDim);
        ImageProjector = new GatedMlp(scope.Sub("image_projector"), ImagePooling2d.OutDim, config.Text.IntermediateSize, Activation.Silu,
            bias: false, "projector", gate: "w1", up: "w3", down: "w2", outputSize: config.Text.HiddenSize);
    }

    /// <summary>Pooled cells per crop: (grid / pool_h) × (grid / pool_w).</summary>
    public int CellsPerCrop => ImageVit.Config.GridSize / _poolH * (ImageVit.Config.GridSize / _poolW);

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => ImageVit.Linears().Concat(ImagePooling2d.Linears()).Concat(ImageProjector.Linears());

    /// <summary>
    /// images [crops, P, p·p·3] and their padding masks [crops, P] (1 image, 0 padding, between or −1 partly) →
    /// projected cells [crops, cells, text hidden], every cell of every crop (the caller drops the margins').
    /// </summary>
    public float[] Forward(ReadOnlySpan<float> images, ReadOnlySpan<float> masks, int crops, ForwardContext ctx)
    {
        var v = ImageVit.Config;
        int p = v.NumPatches, d = v.HiddenSize, grid = v.GridSize, width = d * _layers.Length;
        var kept = ImageVit.Forward(images, crops, _layers, ctx);
        var features = new float[crops * p * width]; // [crops, P, width]: the kept layers side by side, class token dropped
        for (int c = 0; c < crops; c++)
            for (int i = 0; i < p; i++)
                for (int l = 0; l < kept.Length; l++)
                    kept[l].AsSpan((c * (p + 1) + 1 + i) * d, d).CopyTo(features.AsSpan((c * p + i) * width + l * d, d));
        ctx.Report("vision.features", features, 1, crops, p, width);
        for (int i = 0; i < crops * p; i++)
        {
            float m = masks[i];
            // As the reference: all padding when the mask is 0, partly when below 1 (which includes the −1 of its shifted masks).
            if (m == 0) ElementWise.Add(features.AsSpan(i * width, width), _padEmbed.AsSpan(0, width));
            else if (m < 1) ElementWise.Add(features.AsSpan(i * width, width), _padEmbed.AsSpan(width, width));
        }

        int cellRows = grid / _poolH, cellCols = grid / _poolW, perCell = _poolH * _poolW, cells = crops * cellRows * cellCols;
        var pooled = new float[cells * perCell * width]; // [cells, pool_h·pool_w, width], cells crop-major and row-major, patches row-major
        for (int c = 0, m = 0; c < crops; c++)
            for (int cy = 0; cy < cellRows; cy++)
                for (int cx = 0; cx < cellCols; cx++, m++)
                    for (int dy = 0, j = 0; dy < _poolH; dy++)
                        for (int dx = 0; dx < _poolW; dx++, j++)
                        {
                            int patch = (cy * _poolH + dy) * grid + cx * _poolW + dx;
                            features.AsSpan((c * p + patch) * width, width).CopyTo(pooled.AsSpan((m * perCell + j) * width, width));
                        }
        ctx.Report("vision.pool_input", pooled, cells, perCell, width);
        var cellsOut = ImagePooling2d.Forward(pooled, cells, perCell, ctx);
        var projected = new float[cells * _textHidden];
        ImageProjector.Forward(cellsOut, cells, projected, ctx);
        ctx.Report("projector", projected, 1, crops, cellRows * cellCols, _textHidden);
        return projected;
    }
}
