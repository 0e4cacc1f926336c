// The benchmark suite. Modes:
//   --quick [CLASS]   every benchmark once (Dry, in-process), exit 1 on any failure; what CI runs
//   --report [...]    our side with a moderate job, the PyTorch peers, then docs/benchmarks.md (see ReportRun)
//   anything else     BenchmarkDotNet's switcher: --filter '*Softmax*', --job short, --inProcess, ...
using Autograd.Benchmarks;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;

if (args is ["--quick", .. var quick])
{
    return QuickRun.Run(quick);
}

if (args is ["--report", .. var report])
{
    return ReportRun.Run(report);
}

var config = DefaultConfig.Instance.AddColumn(DerivedColumn.NsPerElement, DerivedColumn.Gflops);
var summaries = BenchmarkSwitcher.FromAssembly(typeof(Workloads).Assembly).Run(args, config);
return summaries.SelectMany(Suite.Problems).Any() ? 1 : 0;
