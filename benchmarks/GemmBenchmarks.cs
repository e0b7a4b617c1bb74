using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using PureVlm.Tensors;

namespace PureVlm.Benchmarks;

/// <summary>Gemm.Linear at the model shapes, reported as GFLOP/s and GB/s of weights streamed.</summary>
[Config(typeof(Config))]
public class GemmBenchmarks
{
    sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new RateColumn("GFLOP/s", c => ShapeOf(c).Flops * Copies(c) / 1e9));
            AddColumn(new RateColumn("Weights GB/s", c => (double)ShapeOf(c).N * ShapeOf(c).K * DTypeOf(c).Size() * Copies(c) / 1e9));
        }
    }

    public static IEnumerable<GemmShape> Shapes => GemmShape.Siglip.Concat(GemmShape.GemmaPrefill).Concat(GemmShape.GemmaDecode).Append(GemmShape.LmHead);

    [ParamsSource(nameof(Shapes))] public GemmShape Shape;
    [Params(DType.F32, DType.BF16)] public DType DType;

    Operands? operands;

    static GemmShape ShapeOf(BenchmarkCase c) => (GemmShape)c.Parameters["Shape"];
    static DType DTypeOf(BenchmarkCase c) => (DType)c.Parameters["DType"];
    static int Copies(BenchmarkCase c) => Copies(ShapeOf(c), DTypeOf(c));
    // Decode streams weights: keep enough copies (≥ 256 MiB) that none is cached between calls.
    static int Copies(GemmShape s, DType dtype) => s.M <= 4 ? (int)Math.Max(1, (256L << 20) / ((long)s.N * s.K * dtype.Size())) : 1;

    [GlobalSetup]
    public void Setup() => operands = new Operands(Shape, DType, Copies(Shape, DType));

    [GlobalCleanup] public void Cleanup() => operands?.Dispose();

    /// <summary>One Linear call per weight copy (one copy except for decode).</summary>
    [Benchmark] public void Linear() => operands!.RunAllCopies();
}
