using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Autograd.Benchmarks;

/// <summary>
/// Question 5: the layers of a CNN and a small transformer, forward and backward (float32), at the shapes of the
/// examples: the two convolutions of examples/FashionCnn at batch 64, layer norm over d_model 64 for 64·16 tokens and over
/// 1024 for 4096 rows, and attention at the GPT's [64, 4, 16, 16] (causal) and at [8, 8, 256, 64] (causal). Layer norm
/// and attention run fused and composed (the composed form is each category's baseline, so Ratio is fused ÷ composed).
/// </summary>
[MemoryDiagnoser]
[LongIterations(500)]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory, BenchmarkLogicalGroupRule.ByParams)]
public class LayerBenchmarks
{
    private Tensor _convX = null!;
    private Tensor _convW = null!;
    private Tensor _convB = null!;
    private Tensor _convG = null!;
    private Tensor _lnX = null!;
    private Tensor _lnW = null!;
    private Tensor _lnB = null!;
    private Tensor _lnG = null!;
    private Tensor _q = null!;
    private Tensor _k = null!;
    private Tensor _v = null!;
    private Tensor _attG = null!;

    /// <summary>The case: which convolution, layer-norm and attention shapes (one of each per case).</summary>
    [Params("small", "large")]
    public string Case { get; set; } = "small";

    [GlobalSetup]
    public void Setup()
    {
        var small = Case == "small";
        var seed = Workloads.Seed;

        // Conv 1→32 on [64, 1, 28, 28] (small) or 32→64 on [64, 32, 14, 14] (large), 3×3, padding 1.
        var (cin, cout, hw) = small ? (1, 32, 28) : (32, 64, 14);
        _convX = Tensor.RandN(new Shape(64, cin, hw, hw), seed, DType.Float32).WithRequiresGrad();
        _convW = Tensor.RandN(new Shape(cout, cin, 3, 3), seed + 1, DType.Float32, std: 0.1).WithRequiresGrad();
        _convB = Tensor.RandN(new Shape(cout), seed + 2, DType.Float32).WithRequiresGrad();
        _convG = Tensor.RandN(new Shape(64, cout, hw, hw), seed + 3, DType.Float32);

        var (rows, d) = small ? (64 * 16, 64) : (4096, 1024);
        _lnX = Tensor.RandN(new Shape(rows, d), seed + 4, DType.Float32).WithRequiresGrad();
        _lnW = Tensor.RandN(new Shape(d), seed + 5, DType.Float32).WithRequiresGrad();
        _lnB = Tensor.RandN(new Shape(d), seed + 6, DType.Float32).WithRequiresGrad();
        _lnG = Tensor.RandN(new Shape(rows, d), seed + 7, DType.Float32);

        var dims = small ? new[] { 64, 4, 16, 16 } : [8, 8, 256, 64];
        _q = Tensor.RandN(new Shape(dims), seed + 8, DType.Float32).WithRequiresGrad();
        _k = Tensor.RandN(new Shape(dims), seed + 9, DType.Float32).WithRequiresGrad();
        _v = Tensor.RandN(new Shape(dims), seed + 10, DType.Float32).WithRequiresGrad();
        _attG = Tensor.RandN(new Shape(dims), seed + 11, DType.Float32);
    }

    [BenchmarkCategory("Conv2d"), Benchmark(Baseline = true)]
    public Tensor Conv2d_Forward()
    {
        using var _ = Tensor.NoGrad();
        return _convX.Conv2d(_convW, _convB, padding: 1);
    }

    [BenchmarkCategory("Conv2d"), Benchmark]
    public Tensor[] Conv2d_ForwardBackward() => Autodiff.Grad([_convX.Conv2d(_convW, _convB, padding: 1)], [_convX, _convW, _convB], [_convG]);

    [BenchmarkCategory("LayerNorm"), Benchmark(Baseline = true)]
    public Tensor[] LayerNorm_Composed() => Autodiff.Grad([_lnX.LayerNormComposed([_lnX.Shape[1]], _lnW, _lnB)], [_lnX, _lnW, _lnB], [_lnG]);

    [BenchmarkCategory("LayerNorm"), Benchmark]
    public Tensor[] LayerNorm_Fused() => Autodiff.Grad([_lnX.LayerNorm([_lnX.Shape[1]], _lnW, _lnB)], [_lnX, _lnW, _lnB], [_lnG]);

    [BenchmarkCategory("Attention"), Benchmark(Baseline = true)]
    public Tensor[] Attention_Composed() => Autodiff.Grad([Tensor.ScaledDotProductAttentionComposed(_q, _k, _v, causal: true)], [_q, _k, _v], [_attG]);

    [BenchmarkCategory("Attention"), Benchmark]
    public Tensor[] Attention_Fused() => Autodiff.Grad([Tensor.ScaledDotProductAttention(_q, _k, _v, causal: true)], [_q, _k, _v], [_attG]);
}
