using PureVlm.Models;
using PureVlm.Tensors;

namespace PureVlm.Inspection;

/// <summary>
/// What generation step k left behind about the row that produced token k (the last prefill row for k = 0, the only
/// row of decode step k otherwise).
/// </summary>
/// <param name="Logits">The logits of that row [vocab].</param>
/// <param name="Residual">Per decoder layer i, that row of <c>text.layers.{i}</c> [hidden] (the residual stream after layer i).</param>
/// <param name="ImageAttention">
/// Per decoder layer i, that row's attention to each patch's image-token key, mean over heads [patch_grid²], row-major over
/// the grid; for a video [frames · patch_grid²], frame by frame.
/// </param>
public sealed record StepRecord(float[] Logits, float[][] Residual, float[][] ImageAttention);

/// <summary>
/// An observer for <see cref="ExplainReport"/>: for every step, copies the logits, each decoder layer's residual stream and
/// each decoder layer's head-averaged attention to the image tokens of the patch grid, for the row that produced the
/// step's token only. Where the image tokens sit in the prompt is given as key positions (see <see cref="PatchPositions"/>).
/// </summary>
public sealed class ExplainRecorder : IForwardObserver
{
    readonly int[] _patchKeys;
    readonly Dictionary<string, (int Layer, bool IsProbs)> _points = new(StringComparer.Ordinal);
    readonly List<StepRecord> _steps = new();
    readonly int _layers;
    readonly int _lastKey;

    /// <summary>
    /// A recorder for a decoder of <paramref name="textLayers"/> layers whose heatmaps read the keys at
    /// <paramref name="patchKeys"/>: the prompt positions of the patch grid's image tokens, row-major over the grid.
    /// </summary>
    public ExplainRecorder(int textLayers, IReadOnlyList<int> patchKeys)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(textLayers);
        ArgumentNullException.ThrowIfNull(patchKeys);
        if (patchKeys.Count == 0) throw new ArgumentException("no image-token positions to record attention to", nameof(patchKeys));
        if (patchKeys.Any(p => p < 0)) throw new ArgumentOutOfRangeException(nameof(patchKeys), $"image-token position {patchKeys.First(p => p < 0)} is negative");
        _layers = textLayers;
        _patchKeys = patchKeys.ToArray();
        _lastKey = _patchKeys.Max();
        for (int i = 0; i < textLayers; i++)
        {
            _points[$"text.layers.{i}"] = (i, false);
            _points[$"text.layers.{i}.attn_probs"] = (i, true);
        }
    }

    /// <summary>A recorder for <paramref name="model"/> answering the prompt <paramref name="promptIds"/> (which holds one image).</summary>
    public static ExplainRecorder For(IVisionLanguageModel model, ReadOnlySpan<int> promptIds) =>
        new(model.Config.Text.NumHiddenLayers, PatchPositions(model, promptIds));

    /// <summary>A recorder for <paramref name="model"/> answering the prompt <paramref name="promptIds"/>, which holds one video.</summary>
    public static ExplainRecorder ForVideo(IVideoLanguageModel model, ReadOnlySpan<int> promptIds) =>
        new(model.Config.Text.NumHiddenLayers, VideoPatchPositions(model, promptIds));

    /// <summary>
    /// The prompt positions of the image tokens that stand for the patch grid's cells, row-major: the rows whose id is
    /// <c>image_token_index</c>, wherever the prompt format puts them (first in PaliGemma, after "USER: " in LLaVA).
    /// One image gives <see cref="IVisionLanguageModel.ImageTokensPerImage"/> rows, of which the last patch_grid² are the
    /// patches; any before them are not patches (CLIP's class token, kept by LLaVA's "full" strategy) and are skipped.
    /// </summary>
    public static int[] PatchPositions(IVisionLanguageModel model, ReadOnlySpan<int> promptIds)
    {
        int perImage = model.ImageTokensPerImage, grid = model.ImageTokenGridSide;
        int extra = perImage - grid * grid;
        if (extra < 0)
            throw new ArgumentException($"{model.Config.ModelType}: {perImage} image tokens per image cannot cover a {grid}×{grid} patch grid", nameof(model));
        return Positions(promptIds, model.Config.ImageTokenIndex, "image", 1, perImage, extra, grid * grid);
    }

    /// <summary>
    /// As <see cref="PatchPositions"/> for a prompt holding one video: the rows of <c>video_token_index</c>, frame by frame
    /// (<see cref="IVideoLanguageModel.VideoTokensPerFrame"/> each), of which each frame's patch_grid² patches (after its
    /// class token) are kept, frame-major.
    /// </summary>
    public static int[] VideoPatchPositions(IVideoLanguageModel model, ReadOnlySpan<int> promptIds)
    {
        int grid = model.ImageTokenGridSide;
        return Positions(promptIds, model.VideoTokenIndex, "video", model.FramesPerVideo, model.VideoTokensPerFrame, model.FirstPatchOfFrame, grid * grid);
    }

    /// <summary>The positions of <paramref name="id"/>, which must be <paramref name="blocks"/> × <paramref name="perBlock"/>; of each block, <paramref name="take"/> from <paramref name="skip"/> on.</summary>
    static int[] Positions(ReadOnlySpan<int> promptIds, int id, string kind, int blocks, int perBlock, int skip, int take)
    {
        var rows = new List<int>(blocks * perBlock);
        for (int i = 0; i < promptIds.Length; i++)
            if (promptIds[i] == id) rows.Add(i);
        if (rows.Count != blocks * perBlock)
            throw new ArgumentException($"the prompt has {rows.Count} {kind} tokens (id {id}), expected {blocks * perBlock} (one {kind})", nameof(promptIds));
        return Enumerable.Range(0, blocks).SelectMany(b => rows.GetRange(b * perBlock + skip, take)).ToArray();
    }

    /// <inheritdoc/>
    public bool WantsAttentionProbabilities => true;

    /// <summary>One record per step seen, in step order.</summary>
    public IReadOnlyList<StepRecord> Steps => _steps;

    /// <summary>The prompt positions whose attention the heatmaps hold, row-major over the patch grid.</summary>
    public IReadOnlyList<int> PatchKeys => _patchKeys;

    /// <inheritdoc/>
    public void OnTensor(string name, Tensor tensor, int step)
    {
        if (name == "logits")
        {
            var current = Current(step);
            _steps[step] = current with { Logits = LastRow(tensor).ToArray() };
            return;
        }
        if (!_points.TryGetValue(name, out var point)) return;
        var record = Current(step);
        if (!point.IsProbs) { record.Residual[point.Layer] = LastRow(tensor).ToArray(); return; }

        // tensor: [heads, nq, nk]; key j is prompt position j (the cache starts empty at the prefill).
        int heads = tensor.Shape[0], nq = tensor.Shape[1], nk = tensor.Shape[2];
        if (_lastKey >= nk)
            throw new InvalidOperationException($"{name} has {nk} keys, the image token at position {_lastKey} is not among them");
        var probs = tensor.Contiguous().Span;
        var mean = new float[_patchKeys.Length];
        for (int h = 0; h < heads; h++)
        {
            var row = probs.Slice((h * nq + nq - 1) * nk, nk);
            for (int j = 0; j < mean.Length; j++) mean[j] += row[_patchKeys[j]] / heads;
        }
        record.ImageAttention[point.Layer] = mean;
    }

    static ReadOnlySpan<float> LastRow(Tensor tensor)
    {
        int width = tensor.Shape[^1];
        return tensor.Contiguous().Span[^width..];
    }

    StepRecord Current(int step)
    {
        if (step == _steps.Count) _steps.Add(new StepRecord([], new float[_layers][], new float[_layers][]));
        if (step != _steps.Count - 1) throw new InvalidOperationException($"step {step} reported after step {_steps.Count - 1}; one recorder per request");
        return _steps[step];
    }
}
