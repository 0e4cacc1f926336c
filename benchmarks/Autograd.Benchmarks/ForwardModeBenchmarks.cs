using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Autograd.Benchmarks;

/// <summary>
/// What forward mode costs. The chain of <see cref="TapeOverheadBenchmarks"/> (one-element float64 tensors,
/// <see cref="Workloads.TapeChainLength"/> operations, OperationsPerInvoke the chain length): the plain forward without
/// recording (the baseline), recorded, and <see cref="Autodiff.Jvp(Func{Tensor, Tensor}, Tensor, Tensor)"/> of it,
/// which runs every operation's forward rule after its kernel. And softmax 1024×1024 float32 over the last dim: the
/// fused forward (the baseline) against its JVP. Ratio is each one's cost relative to the plain forward.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class ForwardModeBenchmarks
{
    private const int Ops = Workloads.TapeChainLength;
    private Tensor _x = null!;
    private Tensor _leaf = null!;
    private Tensor _dx = null!;
    private Tensor _a = null!;
    private Tensor _b = null!;
    private Tensor _c = null!;
    private Tensor _s = null!;
    private Tensor _ds = null!;

    [GlobalSetup]
    public void Setup()
    {
        _x = Tensor.Scalar(0.5);
        _leaf = Tensor.Scalar(0.5).WithRequiresGrad();
        _dx = Tensor.Scalar(1.0);
        _a = Tensor.Scalar(0.9).WithRequiresGrad();
        _b = Tensor.Scalar(0.1).WithRequiresGrad();
        _c = Tensor.Scalar(0.05).WithRequiresGrad();
        _s = Tensor.RandN(new Shape(1024, 1024), Workloads.Seed, DType.Float32);
        _ds = Tensor.RandN(new Shape(1024, 1024), Workloads.Seed + 1, DType.Float32);
    }

    [BenchmarkCategory("Chain"), Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public Tensor Chain_NoGrad()
    {
        using var _ = Tensor.NoGrad();
        return TapeOverheadBenchmarks.Chain(_x, _a, _b, _c);
    }

    [BenchmarkCategory("Chain"), Benchmark(OperationsPerInvoke = Ops)]
    public Tensor Chain_Recorded() => TapeOverheadBenchmarks.Chain(_leaf, _a, _b, _c);

    [BenchmarkCategory("Chain"), Benchmark(OperationsPerInvoke = Ops)]
    public Tensor Chain_Jvp()
    {
        using var _ = Tensor.NoGrad();
        return Autodiff.Jvp(x => TapeOverheadBenchmarks.Chain(x, _a, _b, _c), _x, _dx).Tangent;
    }

    [BenchmarkCategory("Softmax"), Benchmark(Baseline = true)]
    public Tensor Softmax_Forward() => _s.Softmax(-1);

    [BenchmarkCategory("Softmax"), Benchmark]
    public Tensor Softmax_Jvp() => Autodiff.Jvp(x => x.Softmax(-1), _s, _ds).Tangent;
}
