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
            AddColumn(new RateColumn("GFLOP/s", (s, _) => s.Flops / 1e9));
            AddColumn(new RateColumn("Weights GB/s", (s, d) => (double)s.N * s.K * d.Size() / 1e9));
        }
    }

    public static IEnumerable<GemmShape> Shapes => GemmShape.Siglip.Concat(GemmShape.GemmaPrefill).Concat(GemmShape.GemmaDecode).Append(GemmShape.LmHead);

    [ParamsSource(nameof(Shapes))] public GemmShape Shape;
    [Params(DType.F32, DType.BF16)] public DType DType;

    Operands? operands;

    [GlobalSetup]
    public void Setup()
    {
        // Decode streams weights: keep enough copies (≥ 256 MiB) that none is cached between calls.
        long bytes = (long)Shape.N * Shape.K * DType.Size();
        operands = new Operands(Shape, DType, Shape.M <= 4 ? (int)Math.Max(1, (256L << 20) / bytes) : 1);
    }

    [GlobalCleanup] public void Cleanup() => operands?.Dispose();

    /// <summary>One Linear call per weight copy (one copy except for decode).</summary>
    [Benchmark] public void Linear() => operands!.RunAllCopies();

    /// <summary>A per-call rate: amount(shape, dtype) × copies / mean time.</summary>
    sealed class RateColumn(string name, Func<GemmShape, DType, double> amount) : IColumn
    {
        public string Id => name;
        public string ColumnName => name;
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => $"{name} per Linear call";
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public bool IsAvailable(Summary summary) => true;
        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var stats = summary[benchmarkCase]?.ResultStatistics;
            if (stats == null) return "-";
            var shape = (GemmShape)benchmarkCase.Parameters["Shape"];
            var dtype = (DType)benchmarkCase.Parameters["DType"];
            long bytes = (long)shape.N * shape.K * dtype.Size();
            int copies = shape.M <= 4 ? (int)Math.Max(1, (256L << 20) / bytes) : 1;
            return (amount(shape, dtype) * copies / (stats.Mean * 1e-9)).ToString("F1");
        }
    }
}
