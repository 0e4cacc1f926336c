using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Autograd.Benchmarks;

/// <summary>One measured figure: the median time per operation and the bytes allocated per operation.</summary>
public sealed record Measurement(string Key, double MedianNs, double? AllocatedBytes);

/// <summary>
/// Turns BenchmarkDotNet reports into <see cref="Measurement"/>s with the keys the PyTorch peers also write:
/// softmax/{fwd|bwd|fwdbwd}/{composed|fused|logsoftmax|logsumexp}/{f32|f64}/{shape}, tape/{nograd|recorded|fwdbwd},
/// matmul/{matmul|rowkernel}/{f32|f64}/{NxKxM}/t{threads}, training/{forward|fwdbwd|step},
/// LayerBenchmarks/{method}/{small|large}.
/// </summary>
public static class Results
{
    /// <summary>The measurements of every successful benchmark of <paramref name="summary"/>.</summary>
    public static IEnumerable<Measurement> From(Summary summary)
    {
        foreach (var report in summary.Reports)
        {
            if (!report.Success || report.ResultStatistics is null)
            {
                continue;
            }

            var benchmark = report.BenchmarkCase;
            var allocated = report.GcStats.GetBytesAllocatedPerOperation(benchmark);
            yield return new Measurement(Key(benchmark), report.ResultStatistics.Median, allocated);
        }
    }

    /// <summary>The key of a benchmark case.</summary>
    public static string Key(BenchmarkCase benchmark)
    {
        var method = benchmark.Descriptor.WorkloadMethod.Name;
        var type = benchmark.Descriptor.Type;
        if (type == typeof(SoftmaxBenchmarks))
        {
            var parts = method.Split('_');
            var mode = parts[0] switch
            {
                "Forward" => "fwd",
                "Backward" => "bwd",
                "ForwardBackward" => "fwdbwd",
                _ => parts[0],
            };
            return $"softmax/{mode}/{parts[1].ToLowerInvariant()}/{DType(benchmark)}/{Shape(benchmark)}";
        }

        if (type == typeof(TapeOverheadBenchmarks))
        {
            return "tape/" + method switch
            {
                nameof(TapeOverheadBenchmarks.ForwardNoGrad) => "nograd",
                nameof(TapeOverheadBenchmarks.ForwardRecorded) => "recorded",
                nameof(TapeOverheadBenchmarks.ForwardBackward) => "fwdbwd",
                _ => method,
            };
        }

        if (type == typeof(MatMulBenchmarks))
        {
            return $"matmul/{method.ToLowerInvariant()}/{DType(benchmark)}/{Shape(benchmark)}/t{Threads(benchmark)}";
        }

        if (type == typeof(TrainingStepBenchmarks))
        {
            return "training/" + method switch
            {
                nameof(TrainingStepBenchmarks.Forward) => "forward",
                nameof(TrainingStepBenchmarks.ForwardBackward) => "fwdbwd",
                nameof(TrainingStepBenchmarks.TrainingStep) => "step",
                _ => method,
            };
        }

        if (type == typeof(LayerBenchmarks))
        {
            return $"LayerBenchmarks/{method}/{benchmark.Parameters["Case"]}";
        }

        return $"{type.Name}/{method}";
    }

    private static int Threads(BenchmarkCase benchmark) => (int)benchmark.Parameters["Threads"];

    private static string Shape(BenchmarkCase benchmark) => (string)benchmark.Parameters["Shape"];

    private static string DType(BenchmarkCase benchmark) => Workloads.DTypeName((DType)benchmark.Parameters["DType"]);
}
