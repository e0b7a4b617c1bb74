using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace PureVlm.Benchmarks;

/// <summary>A BenchmarkDotNet column of a per-call rate: <c>amount(case) / mean time</c> (GFLOP/s, GB/s).</summary>
sealed class RateColumn(string name, Func<BenchmarkCase, double> amountPerCall) : IColumn
{
    public string Id => name;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => $"{name} per benchmark call";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) => GetValue(summary, benchmarkCase);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        return stats == null ? "-" : (amountPerCall(benchmarkCase) / (stats.Mean * 1e-9)).ToString("F1");
    }
}
