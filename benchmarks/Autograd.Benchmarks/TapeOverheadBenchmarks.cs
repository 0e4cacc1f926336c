using BenchmarkDotNet.Attributes;

namespace Autograd.Benchmarks;

/// <summary>
/// Question 2: what the tape costs per recorded operation. A chain of <see cref="Workloads.TapeChainLength"/> operations
/// on one-element float64 tensors, cycling y ← y·a, y ← y + b, y ← tanh(y), y ← y − c (a, b, c are leaves that
/// require grad, so every operation is recorded and every leaf collects gradients). OperationsPerInvoke is the chain
/// length, so Mean/Median and Allocated are per recorded operation. The baseline runs the same chain with grad mode
/// off (the kernels and allocations alone), so Ratio is the cost of recording (and of the backward walk) relative to
/// the bare operations.
/// </summary>
[MemoryDiagnoser]
public class TapeOverheadBenchmarks
{
    private const int Ops = Workloads.TapeChainLength;
    private Tensor _x = null!;
    private Tensor _a = null!;
    private Tensor _b = null!;
    private Tensor _c = null!;

    [GlobalSetup]
    public void Setup()
    {
        _x = Tensor.Scalar(0.5).WithRequiresGrad();
        _a = Tensor.Scalar(0.9).WithRequiresGrad();
        _b = Tensor.Scalar(0.1).WithRequiresGrad();
        _c = Tensor.Scalar(0.05).WithRequiresGrad();
    }

    /// <summary>The chain: <see cref="Workloads.TapeChainLength"/> operations, four per turn.</summary>
    public static Tensor Chain(Tensor x, Tensor a, Tensor b, Tensor c)
    {
        var y = x;
        for (var i = 0; i < Ops / 4; i++)
        {
            y = y * a;
            y = y + b;
            y = y.Tanh();
            y = y - c;
        }

        return y;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Ops)]
    public Tensor ForwardNoGrad()
    {
        using var _ = Tensor.NoGrad();
        return Chain(_x, _a, _b, _c);
    }

    [Benchmark(OperationsPerInvoke = Ops)]
    public Tensor ForwardRecorded() => Chain(_x, _a, _b, _c);

    [Benchmark(OperationsPerInvoke = Ops)]
    public Tensor ForwardBackward()
    {
        var y = Chain(_x, _a, _b, _c);
        y.Backward();
        return y;
    }
}
