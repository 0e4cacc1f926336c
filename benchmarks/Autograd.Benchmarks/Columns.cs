using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Autograd.Benchmarks;

/// <summary>
/// A column derived from a benchmark's median time: ns per element for softmax, GFLOP/s for matmul. Rows of other
/// classes show "-".
/// </summary>
public sealed class DerivedColumn(string id, string name, string legend, Type benchmarkClass, Func<BenchmarkCase, double, double> value, string format) : IColumn
{
    /// <summary>ns per element of the softmax input: median / element count.</summary>
    public static readonly DerivedColumn NsPerElement = new(
        "NsPerElement", "ns/elem", "Median time divided by the number of elements of the input", typeof(SoftmaxBenchmarks),
        (c, ns) => ns / Workloads.Elements((string)c.Parameters["Shape"]), "0.000");

    /// <summary>GFLOP/s of the product: 2·N·K·M / median.</summary>
    public static readonly DerivedColumn Gflops = new(
        "GflopPerSecond", "GFLOP/s", "2·N·K·M floating-point operations divided by the median time", typeof(MatMulBenchmarks),
        (c, ns) => Workloads.MatMulFlops((string)c.Parameters["Shape"]) / ns, "0.00");

    public string Id => id;

    public string ColumnName => name;

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => legend;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (benchmarkCase.Descriptor.Type != benchmarkClass || stats is null)
        {
            return "-";
        }

        return value(benchmarkCase, stats.Median).ToString(format, CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => summary.BenchmarksCases.Any(c => c.Descriptor.Type == benchmarkClass);

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public override string ToString() => ColumnName;
}
