// The benchmark suite. Modes:
//   --quick [CLASS]   every benchmark once (Dry, in-process), exit 1 on any failure; what CI runs
//   --report [...]    our side with a moderate job, the PyTorch peers, then docs/benchmarks.md (see ReportRun)
//   --report-case CLASS INDEX   one benchmark of the report, in this process (the report runs each so, in a child)
//   --plain [...]     workloads timed the way a user's console program times them (see PlainRun)
//   --plain-table     --plain all in each setting of PlainSetting.ForReport, printed as the report's table
//   --checkpoint      the memory the tape keeps for a deep MLP, plain and with Autodiff.Checkpoint (see CheckpointMemory)
//   anything else     BenchmarkDotNet's switcher: --filter '*Softmax*', --job short, --inProcess, ...
// --isa avx512|avx2|vector128 with any of them re-launches this program with that vector width (see VectorPath).
using Autograd.Benchmarks;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

if (VectorPath.RelaunchIfAsked(args, Machine.CpuFlags()) is { } exitCode)
{
    return exitCode;
}

if (VectorPath.CheckRequest() is { } wrongWidth)
{
    Console.Error.WriteLine(wrongWidth);
    return 2;
}

if (args is ["--quick", .. var quick])
{
    return QuickRun.Run(quick);
}

if (args is ["--report", .. var report])
{
    return ReportRun.Run(report);
}

if (args is ["--report-case", .. var reportCase])
{
    return ReportRun.Case(reportCase);
}

if (args is ["--plain-table", .. var table])
{
    // The plain-program settings in child processes, printed as the report's table (without the BenchmarkDotNet side).
    var results = PlainRun.RunSettings(PlainSetting.ForReport(ReportRun.RepositoryRoot()), smoke: table is ["--smoke"], Console.Out);
    Console.WriteLine();
    Console.Write(ReportWriter.PlainTable(results, _ => null, _ => null));
    return results.Any(r => r.Error is not null) ? 1 : 0;
}

if (args is ["--checkpoint"])
{
    var checkpoint = CheckpointMemory.Measure();
    Console.WriteLine(checkpoint);
    Console.WriteLine(FormattableString.Invariant($"{CheckpointMemory.BytesPrefix} {checkpoint.PlainBytes} {checkpoint.CheckpointedBytes} {(checkpoint.GradientsEqual ? "equal" : "differ")}"));
    return checkpoint.GradientsEqual && checkpoint.CheckpointedBytes < checkpoint.PlainBytes ? 0 : 1;
}

if (args is ["--plain", .. var plain])
{
    return PlainRun.Child(plain);
}

var config = DefaultConfig.Instance.AddColumn(DerivedColumn.NsPerElement, DerivedColumn.Gflops);
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Workloads).Assembly).Run(args, config);
return summaries.SelectMany(Suite.Problems).Any() ? 1 : 0;
