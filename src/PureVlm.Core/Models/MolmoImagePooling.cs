using PureVlm.Formats;
using PureVlm.Kernels;

namespace PureVlm.Models;

/// <summary>
/// Molmo's <c>image_pooling_2d</c> with <c>attention-meanq</c>: each cell of pool_h × pool_w patches is one query (the mean
/// of the cell's patches) attending over the cell's patches, multi-head with biased wq/wk/wv/wo, scale head_dim^-0.5,
/// no residual and no norm.
/// </summary>
public sealed class MolmoImagePooling
{
    readonly Linear _wq, _wk, _wv, _wo;
    readonly int _heads, _headDim, _inDim;

    /// <summary>Loads <c>{wq,wk,wv,wo}</c> under <paramref name="scope"/>: input <paramref name="inDim"/> wide (the concatenated ViT layers), <paramref name="heads"/> × <paramref name="headDim"/> out.</summary>
    public MolmoImagePooling(WeightScope scope, int inDim, int heads, int headDim)
    {
        int d = heads * headDim;
        _wq = new Linear(scope.Sub("wq"), inDim, d, bias: true);
        _wk = new Linear(scope.Sub("wk"), inDim, d, bias: true);
        _wv = new Linear(scope.Sub("wv"), inDim, d, bias: true);
        _wo = new Linear(scope.Sub("wo"), d, d, bias: true);
        (_heads, _headDim, _inDim) = (heads, headDim, inDim);
    }

    /// <summary>Width of a pooled cell.</summary>
    public int OutDim => _heads * _headDim;

    /// <summary>Its Linear modules, in forward order (see <see cref="IGenerativeModel.Linears"/>).</summary>
    public IEnumerable<Linear> Linears() => [_wq, _wk, _wv, _wo];

    /// <summary>cells [m, k, in] (k patches per cell) → pooled [m, out]; reports <c>vision.pool_query</c> and <c>vision.pooled</c>.</summary>
    public float[] Forward(float[] cells, int m, int k, ForwardContext ctx)
    {
        int d = OutDim, inDim = _inDim;
        var query = new float[m * inDim]; // [m, in]: mean of the cell's patches
        for (int c = 0; c < m; c++)
        {
            var q = query.AsSpan(c * inDim, inDim);
            for (int j = 0; j < k; j++) ElementWise.Add(q, cells.AsSpan((c * k + j) * inDim, inDim));
            ElementWise.Scale(q, 1f / k);
        }
        ctx.Report("vision.pool_query", query, m, 1, inDim);
        var q2 = new float[m * d];
        var keys = new float[m * k * d];
        var values = new float[m * k * d];
        _wq.Forward(query, m, q2, ctx);
        _wk.Forward(cells, m * k, keys, ctx);
        _wv.Forward(cells, m * k, values, ctx);
        var attended = new float[m * d];
        float scale = (float)(1.0 / Math.Sqrt(_headDim));
        for (int c = 0; c < m; c++)
            Attention.Compute(q2.AsSpan(c * d, d), keys.AsSpan(c * k * d, k * d), values.AsSpan(c * k * d, k * d), attended.AsSpan(c * d, d),
                1, k, _heads, _heads, _headDim, scale, 0, AttentionMask.Full);
        var pooled = new float[m * d];
        _wo.Forward(attended, m, pooled, ctx);
        ctx.Report("vision.pooled", pooled, m, 1, d);
        return pooled;
    }
}
