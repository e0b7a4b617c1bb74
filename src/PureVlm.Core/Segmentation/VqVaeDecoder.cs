using PureVlm.Formats;
using PureVlm.Kernels;
using PureVlm.Models;

namespace PureVlm.Segmentation;

/// <summary>
/// The decoder half of PaliGemma's mask VQ-VAE (Google's <c>vae-oid.npz</c>; big_vision
/// <c>evaluators/proj/paligemma/transfers/segmentation.py</c>): 16 <c>&lt;segNNN&gt;</c> codes → codebook rows on a 4×4 grid →
/// <c>decoder.0</c> (1×1 conv + ReLU) → ResBlocks <c>decoder.2</c>, <c>decoder.3</c> → transposed convs <c>decoder.4/6/8/10</c>
/// (each + ReLU, 4 → 64 pixels) → <c>decoder.12</c> (1×1 conv) = a 64×64 mask, positive inside the object.
/// Immutable and thread-safe; each call works in the scratch of the <see cref="ForwardContext"/> it is given.
/// </summary>
public sealed class VqVaeDecoder
{
    /// <summary>Codebook entries (valid codes are 0..127).</summary>
    public const int CodebookSize = 128;
    /// <summary>Codes per mask: a 4×4 grid, row-major.</summary>
    public const int CodesPerMask = 16;
    /// <summary>Side of the decoded mask.</summary>
    public const int MaskSide = 64;
    const int EmbeddingWidth = 512, Grid = 4, Width = 128;
    const string EmbeddingName = "_vq_vae._embedding";

    /// <summary>The file the weights came from.</summary>
    public string Path { get; }
    /// <summary><c>decoder.0</c>: 1×1 conv 512 → 128.</summary>
    public Conv2d Input { get; }
    /// <summary><c>decoder.2</c>, <c>decoder.3</c>.</summary>
    public IReadOnlyList<ResBlock> ResBlocks => _resBlocks;
    /// <summary><c>decoder.4</c>, <c>.6</c>, <c>.8</c>, <c>.10</c>: 128 → 128 → 64 → 32 → 16 channels.</summary>
    public IReadOnlyList<ConvTranspose2d> Upsample => _upsample;
    /// <summary><c>decoder.12</c>: 1×1 conv 16 → 1.</summary>
    public Conv2d Output { get; }

    readonly float[] _codebook; // [128, 512]: row = code
    // Arrays, not the interfaces above, in the hot path: foreach over an IReadOnlyList boxes its enumerator.
    readonly ResBlock[] _resBlocks;
    readonly ConvTranspose2d[] _upsample;

    VqVaeDecoder(string path, IReadOnlyDictionary<string, float[]> w)
    {
        Path = path;
        _codebook = w[EmbeddingName];
        Input = new Conv2d(w, "decoder.0", EmbeddingWidth, Width, 1);
        _resBlocks = [new ResBlock(w, "decoder.2", Width), new ResBlock(w, "decoder.3", Width)];
        _upsample = [new ConvTranspose2d(w, "decoder.4", 128, 128), new ConvTranspose2d(w, "decoder.6", 128, 64),
                    new ConvTranspose2d(w, "decoder.8", 64, 32), new ConvTranspose2d(w, "decoder.10", 32, 16)];
        Output = new Conv2d(w, "decoder.12", 16, 1, 1);
    }

    /// <summary>
    /// Reads the 25 arrays the decoder uses (<c>decoder.*</c> and <c>_vq_vae._embedding</c>) from a <c>vae-oid.npz</c>;
    /// the encoder and EMA buffers are ignored. A malformed file throws <see cref="InvalidModelFileException"/> naming the member.
    /// </summary>
    public static VqVaeDecoder Load(string path)
    {
        var expected = new Dictionary<string, int[]> { [EmbeddingName] = [CodebookSize, EmbeddingWidth] };
        foreach (var (name, weight, bias) in Arrays)
        {
            expected[name + ".weight"] = weight;
            expected[name + ".bias"] = [bias];
        }
        return new VqVaeDecoder(path, NpzFile.ReadFloat32(path, expected));
    }

    /// <summary>Every module's weight shape as PyTorch stores it (Conv2d [out, in, k, k], ConvTranspose2d [in, out, k, k]) and bias length.</summary>
    static readonly (string Name, int[] Weight, int Bias)[] Arrays =
    [
        ("decoder.0", [128, 512, 1, 1], 128),
        ("decoder.2.net.0", [128, 128, 3, 3], 128), ("decoder.2.net.2", [128, 128, 3, 3], 128), ("decoder.2.net.4", [128, 128, 1, 1], 128),
        ("decoder.3.net.0", [128, 128, 3, 3], 128), ("decoder.3.net.2", [128, 128, 3, 3], 128), ("decoder.3.net.4", [128, 128, 1, 1], 128),
        ("decoder.4", [128, 128, 4, 4], 128), ("decoder.6", [128, 64, 4, 4], 64), ("decoder.8", [64, 32, 4, 4], 32), ("decoder.10", [32, 16, 4, 4], 16),
        ("decoder.12", [1, 16, 1, 1], 1),
    ];

    /// <summary>
    /// Decodes 16 codes (each 0..127) into <paramref name="mask64"/> (64 × 64, row-major, row = y). With an observer on
    /// <paramref name="context"/>, reports <c>seg.{segment}.embeddings</c> [512, 4, 4], every convolution's output before
    /// its ReLU (<c>seg.{segment}.decoder.0</c>, <c>….decoder.2.net.0</c>, …, <c>….decoder.12</c>, CHW), the ResBlock
    /// outputs <c>….decoder.2</c>, <c>….decoder.3</c>, and <c>seg.{segment}.mask64</c> [64, 64]. Allocates nothing once the
    /// context's scratch has grown.
    /// </summary>
    public void Decode(ReadOnlySpan<int> codes, Span<float> mask64, ForwardContext context, int segment = 0)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (codes.Length != CodesPerMask) throw new ArgumentException($"{codes.Length} seg codes, expected {CodesPerMask}", nameof(codes));
        foreach (int code in codes)
            if ((uint)code >= CodebookSize) throw new ArgumentOutOfRangeException(nameof(codes), code, $"seg code {code}, expected 0..{CodebookSize - 1}");
        if (mask64.Length != MaskSide * MaskSide) throw new ArgumentException($"mask64 has {mask64.Length} floats, expected {MaskSide * MaskSide}", nameof(mask64));

        var trace = new SegmentTrace(context, segment);
        const int maxActivation = 16 * MaskSide * MaskSide; // decoder.10's output is the largest
        var a = context.Scratch.Get(Workspace.Slot.Hidden, maxActivation);
        var b = context.Scratch.Get(Workspace.Slot.BlockOut, maxActivation);
        var t = context.Scratch.Get(Workspace.Slot.Normed, Width * Grid * Grid);
        var patches = context.Scratch.Get(Workspace.Slot.Patches, _upsample[^1].ColumnLength(MaskSide / 2 * (MaskSide / 2)));

        // Code k sits at grid cell (k / 4, k % 4): embeddings[c, i, j] = codebook[codes[4i + j], c].
        for (int k = 0; k < CodesPerMask; k++)
        {
            var row = _codebook.AsSpan(codes[k] * EmbeddingWidth, EmbeddingWidth);
            for (int c = 0; c < EmbeddingWidth; c++) a[c * CodesPerMask + k] = row[c];
        }
        trace.Report("embeddings", a, EmbeddingWidth, Grid, Grid);

        Input.Forward(a, Grid, Grid, b, patches);
        trace.Report(Input.Name, b, Width, Grid, Grid);
        ElementWise.Relu(b.AsSpan(0, Width * Grid * Grid));
        foreach (var block in _resBlocks)
        {
            block.Forward(b, Grid, Grid, a, t, patches, trace);
            trace.Report(block.Name, b, Width, Grid, Grid);
        }

        int side = Grid;
        var (x, y) = (b, a);
        foreach (var up in _upsample)
        {
            up.Forward(x, side, side, y, patches);
            side *= 2;
            int length = up.OutChannels * side * side;
            trace.Report(up.Name, y, up.OutChannels, side, side);
            ElementWise.Relu(y.AsSpan(0, length));
            (x, y) = (y, x);
        }
        Output.Forward(x, side, side, y, patches);
        trace.Report(Output.Name, y, 1, side, side);
        trace.Report("mask64", y, side, side);
        y.AsSpan(0, MaskSide * MaskSide).CopyTo(mask64);
    }
}
