using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Autograd.Benchmarks;

/// <summary>
/// Question 1: the fused softmax kernel against softmax composed from primitives on the tape (max, sub, exp, sum,
/// div), and the fused log-softmax and logsumexp, over the last dim (logsumexp's upstream gradient has the reduced
/// shape). Forward (recorded, as in training), backward alone (the graph is kept and walked again) and
/// forward+backward. The composed form is the baseline of each category, so the Ratio column is fused / composed; the
/// ns/elem column divides the median by the element count. Each has a twin (<c>…Scoped</c>) that runs the call inside a
/// <see cref="TensorScope"/>.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
public class SoftmaxBenchmarks
{
    private Tensor _x = null!;
    private Tensor _g = null!;
    private Tensor _yComposed = null!;
    private Tensor _yFused = null!;
    private Tensor _yLog = null!;
    private Tensor _gLse = null!;
    private Tensor _yLse = null!;

    public static IEnumerable<string> Shapes => Workloads.SoftmaxShapes;

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "9";

    [Params(DType.Float32, DType.Float64)]
    public DType DType { get; set; } = DType.Float32;

    [GlobalSetup]
    public void Setup()
    {
        var shape = new Shape(Workloads.Dims(Shape));
        _x = Tensor.RandN(shape, Workloads.Seed, DType).WithRequiresGrad();
        _g = Tensor.RandN(shape, Workloads.Seed + 1, DType);
        _yComposed = _x.SoftmaxComposed(-1);
        _yFused = _x.Softmax(-1);
        _yLog = _x.LogSoftmax(-1);
        var dims = Workloads.Dims(Shape);
        _gLse = Tensor.RandN(new Shape(dims.AsSpan(0, dims.Length - 1)), Workloads.Seed + 2, DType);
        _yLse = _x.LogSumExp(-1);
    }

    [BenchmarkCategory("Forward"), Benchmark(Baseline = true)]
    public Tensor Forward_Composed() => _x.SoftmaxComposed(-1);

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_Fused() => _x.Softmax(-1);

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_LogSoftmax() => _x.LogSoftmax(-1);

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_LogSumExp() => _x.LogSumExp(-1);

    [BenchmarkCategory("Backward"), Benchmark(Baseline = true)]
    public Tensor Backward_Composed() => Autodiff.Grad(_yComposed, _x, _g, retainGraph: true);

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_Fused() => Autodiff.Grad(_yFused, _x, _g, retainGraph: true);

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_LogSoftmax() => Autodiff.Grad(_yLog, _x, _g, retainGraph: true);

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_LogSumExp() => Autodiff.Grad(_yLse, _x, _gLse, retainGraph: true);

    [BenchmarkCategory("ForwardBackward"), Benchmark(Baseline = true)]
    public Tensor ForwardBackward_Composed() => Autodiff.Grad(_x.SoftmaxComposed(-1), _x, _g);

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_Fused() => Autodiff.Grad(_x.Softmax(-1), _x, _g);

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_LogSoftmax() => Autodiff.Grad(_x.LogSoftmax(-1), _x, _g);

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_LogSumExp() => Autodiff.Grad(_x.LogSumExp(-1), _x, _gLse);

    // The same calls, each in a TensorScope (the program's loop body as the docs advise for large tensors): the results
    // end with the call and the next call works in their arrays. Keys .../{variant}scoped/...; PyTorch's figure is that
    // of the same variant.

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_ComposedScoped()
    {
        using (Tensor.NewScope())
        {
            return Forward_Composed();
        }
    }

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_FusedScoped()
    {
        using (Tensor.NewScope())
        {
            return Forward_Fused();
        }
    }

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_LogSoftmaxScoped()
    {
        using (Tensor.NewScope())
        {
            return Forward_LogSoftmax();
        }
    }

    [BenchmarkCategory("Forward"), Benchmark]
    public Tensor Forward_LogSumExpScoped()
    {
        using (Tensor.NewScope())
        {
            return Forward_LogSumExp();
        }
    }

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_ComposedScoped()
    {
        using (Tensor.NewScope())
        {
            return Backward_Composed();
        }
    }

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_FusedScoped()
    {
        using (Tensor.NewScope())
        {
            return Backward_Fused();
        }
    }

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_LogSoftmaxScoped()
    {
        using (Tensor.NewScope())
        {
            return Backward_LogSoftmax();
        }
    }

    [BenchmarkCategory("Backward"), Benchmark]
    public Tensor Backward_LogSumExpScoped()
    {
        using (Tensor.NewScope())
        {
            return Backward_LogSumExp();
        }
    }

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_ComposedScoped()
    {
        using (Tensor.NewScope())
        {
            return ForwardBackward_Composed();
        }
    }

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_FusedScoped()
    {
        using (Tensor.NewScope())
        {
            return ForwardBackward_Fused();
        }
    }

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_LogSoftmaxScoped()
    {
        using (Tensor.NewScope())
        {
            return ForwardBackward_LogSoftmax();
        }
    }

    [BenchmarkCategory("ForwardBackward"), Benchmark]
    public Tensor ForwardBackward_LogSumExpScoped()
    {
        using (Tensor.NewScope())
        {
            return ForwardBackward_LogSumExp();
        }
    }
}
