using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace Autograd.Benchmarks;

/// <summary>The benchmark classes and the jobs and configs of the quick, report and interactive modes.</summary>
public static class Suite
{
    /// <summary>The five questions, one class each, and the cost of forward mode: what the report measures.</summary>
    public static readonly Type[] Classes =
        [typeof(SoftmaxBenchmarks), typeof(TapeOverheadBenchmarks), typeof(MatMulBenchmarks), typeof(TrainingStepBenchmarks), typeof(LayerBenchmarks), typeof(ForwardModeBenchmarks)];

    /// <summary>The classes the quick run smoke-tests: all of them.</summary>
    public static readonly Type[] QuickClasses = Classes;

    /// <summary>Every benchmark once, in this process (BenchmarkDotNet's Dry job, in-process): a smoke test, not a measurement.</summary>
    public static Job QuickJob { get; } = Job.Dry.WithToolchain(InProcessEmitToolchain.Instance).WithId("Quick");

    /// <summary>
    /// The report's job, in this process: 3 warm-up and 9 measured iterations of about 100 ms each, without
    /// BenchmarkDotNet's forced full collection between iterations. The PyTorch peers time a steady loop, and so do we:
    /// a forced full collection hands the young generation's memory back to the OS, and the next iteration's new
    /// tensors pay for mapping it again (softmax fwd+bwd 1024×1024 float32 measured 1.5–2.8 ms per call that way
    /// against 0.54–0.55 ms without, in the same hour).
    /// </summary>
    public static Job ReportJob { get; } = Moderate(Job.Default).WithGcForce(false).WithToolchain(InProcessEmitToolchain.Instance).WithId("Report");

    /// <summary>
    /// The report's job for <paramref name="type"/>: <see cref="ReportJob"/>, with the longer iterations a class marked
    /// <see cref="LongIterationsAttribute"/> asks for.
    /// </summary>
    public static Job ReportJobFor(Type type)
        => type.GetCustomAttributes(typeof(LongIterationsAttribute), inherit: false) is [LongIterationsAttribute longer]
            ? ReportJob.WithIterationTime(TimeInterval.FromMilliseconds(longer.Milliseconds))
            : ReportJob;

    /// <summary>The thread counts matmul is measured at: one, and all cores.</summary>
    public static int[] ThreadCounts => Environment.ProcessorCount > 1 ? [1, Environment.ProcessorCount] : [1];

    /// <summary>A config with the default columns, analysers and validators, the derived columns, the given job and logger.</summary>
    public static ManualConfig Config(Job job, ILogger logger, string artifactsPath, bool exporters)
    {
        var defaults = DefaultConfig.Instance;
        var config = ManualConfig.CreateEmpty()
            .AddColumnProvider(defaults.GetColumnProviders().ToArray())
            .AddColumn(DerivedColumn.NsPerElement, DerivedColumn.Gflops)
            .AddAnalyser(defaults.GetAnalysers().ToArray())
            .AddValidator(defaults.GetValidators().ToArray())
            .AddLogger(logger)
            .AddJob(job)
            .WithArtifactsPath(artifactsPath);
        if (exporters)
        {
            config.AddExporter(defaults.GetExporters().ToArray());
        }

        return config;
    }

    /// <summary>What went wrong in a run: critical validation errors, benchmarks that failed or produced no result.</summary>
    public static List<string> Problems(Summary summary)
    {
        var problems = summary.ValidationErrors.Where(e => e.IsCritical).Select(e => $"validation: {e.Message}").ToList();
        foreach (var benchmark in summary.BenchmarksCases)
        {
            var report = summary[benchmark];
            if (report is null || !report.Success || report.ResultStatistics is null)
            {
                problems.Add($"failed: {benchmark.DisplayInfo}");
            }
        }

        if (summary.BenchmarksCases.Length == 0)
        {
            problems.Add($"no benchmark ran in {summary.Title}");
        }

        return problems;
    }

    private static Job Moderate(Job job) => job
        .WithLaunchCount(1)
        .WithWarmupCount(3)
        .WithIterationCount(9)
        .WithIterationTime(TimeInterval.FromMilliseconds(100));
}
