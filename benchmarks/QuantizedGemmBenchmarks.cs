using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

namespace PureVlm.Benchmarks;

/// <summary>
/// QuantizedGemm.Linear (4- and 8-bit weights × int8 activations) at the model shapes, as GFLOP/s (2·m·n·k, as for
/// <see cref="GemmBenchmarks"/>, so the two tables compare directly) and GB/s of packed weights streamed.
/// SigLIP's fc2 (k = 4304, not a multiple of the group size 64) has a partial last group, quantized at load.
/// </summary>
[Config(typeof(Config))]
public class QuantizedGemmBenchmarks
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new RateColumn("GFLOP/s", c => ShapeOf(c).Flops * Copies(c) / 1e9));
            AddColumn(new RateColumn("Weights GB/s", c => (double)ShapeOf(c).N * ShapeOf(c).K * BitsOf(c) / 8 * Copies(c) / 1e9));
        }
    }

    public static IEnumerable<GemmShape> Shapes => GemmShape.Siglip.Concat(GemmShape.GemmaPrefill).Concat(GemmShape.GemmaDecode)
        .Append(GemmShape.LmHead);

    [ParamsSource(nameof(Shapes))] public GemmShape Shape;
    [Params(8, 4)] public int Bits;

    QuantizedOperands? operands;

    static GemmShape ShapeOf(BenchmarkCase c) => (GemmShape)c.Parameters["Shape"];
    static int BitsOf(BenchmarkCase c) => (int)c.Parameters["Bits"];
    static int Copies(BenchmarkCase c) => Copies(ShapeOf(c), BitsOf(c));
    static int Copies(GemmShape s, int bits) => s.M <= 4 ? (int)Math.Max(1, (256L << 20) / ((long)s.N * s.K * bits / 8)) : 1;

    [GlobalSetup] public void Setup() => operands = new QuantizedOperands(Shape, Bits, Copies(Shape, Bits));

    [GlobalCleanup] public void Cleanup() => operands?.Dispose();

    /// <summary>One Linear call per weight copy (one copy except for decode, whose weights must come from memory).</summary>
    [Benchmark] public void Linear() => operands!.RunAllCopies();
}
