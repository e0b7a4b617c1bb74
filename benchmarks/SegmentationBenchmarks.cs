using BenchmarkDotNet.Attributes;
using PureVlm.Models;
using PureVlm.Segmentation;

namespace PureVlm.Benchmarks;

/// <summary>
/// One PaliGemma mask: the VQ-VAE decoder (16 codes → 64×64) alone, which allocates nothing once warm, and with
/// big_vision's paste into a 320×240 image (which allocates the mask it returns). The weights are the fixture's random
/// ones in the exact <c>vae-oid.npz</c> layout, so the work is that of Google's file.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class SegmentationBenchmarks
{
    // The fixture case "center": <loc0096><loc0300><loc0700><loc0800> and its 16 codes.
    static readonly int[] Codes = [101, 49, 127, 70, 66, 41, 9, 83, 119, 124, 74, 115, 96, 60, 59, 17];
    static readonly int[] Loc = [96, 300, 700, 800];

    VqVaeDecoder? _decoder;
    readonly ForwardContext _context = new();
    readonly float[] _mask64 = new float[VqVaeDecoder.MaskSide * VqVaeDecoder.MaskSide];

    [GlobalSetup]
    public void Setup()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "PureVlm.sln")))
            root = Path.GetDirectoryName(root.TrimEnd('/')) ?? throw new DirectoryNotFoundException($"PureVlm.sln not found above {AppContext.BaseDirectory}");
        _decoder = VqVaeDecoder.Load(Path.Combine(root, "tests", "data", "fixtures", "paligemma-seg", "vae-oid.npz"));
        _decoder.Decode(Codes, _mask64, _context);
    }

    /// <summary>16 codes → 64×64 mask.</summary>
    [Benchmark]
    public float Decode()
    {
        _decoder!.Decode(Codes, _mask64, _context);
        return _mask64[0];
    }

    /// <summary>Decode, then big_vision's float bilinear paste into a 320×240 image.</summary>
    [Benchmark]
    public int DecodeAndPaste()
    {
        _decoder!.Decode(Codes, _mask64, _context);
        return MaskPaste.Paste(_mask64, Loc, 320, 240, MaskConvention.BigVision)!.Y1;
    }
}
