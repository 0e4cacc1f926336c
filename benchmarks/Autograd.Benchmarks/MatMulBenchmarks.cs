using System.Numerics;
using System.Numerics.Tensors;
using Autograd.Kernels;
using BenchmarkDotNet.Attributes;

namespace Autograd.Benchmarks;

/// <summary>
/// Question 3: matrix products [N,K]·[K,M] (shape "NxKxM"), square 64…1024 and the Fashion-MNIST MLP's products,
/// float32 and float64, inputs not requiring grad (nothing recorded), on one thread and on all cores (the kernel's
/// <see cref="Gemm.MaxThreads"/>). The GFLOP/s column is 2·N·K·M / median. The baseline is the row-by-row kernel the
/// library started with (c_i = Σ_p a_ip · b_p with TensorPrimitives.MultiplyAdd, always one thread), kept here as a
/// fixed yardstick, so Ratio is MatMul / that kernel.
/// </summary>
[MemoryDiagnoser]
public class MatMulBenchmarks
{
    private Tensor _a = null!;
    private Tensor _b = null!;
    private float[] _a32 = [], _b32 = [], _c32 = [];
    private double[] _a64 = [], _b64 = [], _c64 = [];
    private int _n, _k, _m;

    public static IEnumerable<string> Shapes => Workloads.MatMulShapes;

    [ParamsSource(nameof(Shapes))]
    public string Shape { get; set; } = "64x64x64";

    [Params(DType.Float32, DType.Float64)]
    public DType DType { get; set; } = DType.Float32;

    public static IEnumerable<int> ThreadCounts => Suite.ThreadCounts;

    /// <summary>The most threads one product may use: 1, and all cores.</summary>
    [ParamsSource(nameof(ThreadCounts))]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        Gemm.MaxThreads = Threads;
        var d = Workloads.Dims(Shape);
        (_n, _k, _m) = (d[0], d[1], d[2]);
        _a = Tensor.RandN(new Shape(_n, _k), Workloads.Seed, DType);
        _b = Tensor.RandN(new Shape(_k, _m), Workloads.Seed + 1, DType);
        if (DType == DType.Float32)
        {
            (_a32, _b32, _c32) = (_a.ToArray<float>(), _b.ToArray<float>(), new float[_n * _m]);
        }
        else
        {
            (_a64, _b64, _c64) = (_a.ToArray<double>(), _b.ToArray<double>(), new double[_n * _m]);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => Gemm.MaxThreads = Environment.ProcessorCount;

    [Benchmark(Baseline = true)]
    public void RowKernel()
    {
        if (DType == DType.Float32)
        {
            RowGemm<float>(_a32, _b32, _c32, _n, _k, _m);
        }
        else
        {
            RowGemm<double>(_a64, _b64, _c64, _n, _k, _m);
        }
    }

    [Benchmark]
    public Tensor MatMul() => _a.MatMul(_b);

    /// <summary>
    /// The blocked kernel MatMul runs, writing into a result allocated once: the speed of the vector path itself, without
    /// the cost of a new result per call (on a virtual machine, where the memory the collector hands back to the system
    /// costs a page fault per 4 KiB when it is taken again, that cost is a large part of MatMul's time at 512³).
    /// </summary>
    [Benchmark]
    public void Kernel()
    {
        if (DType == DType.Float32)
        {
            Gemm.Multiply(false, false, _n, _m, _k, _a32.AsMemory(), _k, _b32.AsMemory(), _m, _c32.AsMemory(), _m);
        }
        else
        {
            Gemm.Multiply(false, false, _n, _m, _k, _a64.AsMemory(), _k, _b64.AsMemory(), _m, _c64.AsMemory(), _m);
        }
    }

    /// <summary>c[n×m] = a[n×k] · b[k×m], one row of c at a time, vectorised along the row.</summary>
    private static void RowGemm<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int n, int k, int m)
        where T : IFloatingPointIeee754<T>
    {
        c.Clear();
        for (var i = 0; i < n; i++)
        {
            var row = c.Slice(i * m, m);
            for (var p = 0; p < k; p++)
            {
                TensorPrimitives.MultiplyAdd(b.Slice(p * m, m), a[(i * k) + p], row, row);
            }
        }
    }
}
