using Autograd.Nn;
using Autograd.Nn.Optim;
using BenchmarkDotNet.Attributes;

namespace Autograd.Benchmarks;

/// <summary>
/// Question 4: one training step of the Fashion-MNIST MLP (784-256-128-10, ReLU, float32, batch 64, Adam 1e-3,
/// cross-entropy) on synthetic data of the same shape (pixels uniform in [0, 1), labels uniform in 0…9), so it runs
/// without the data set. The baseline is the forward pass with its loss (recorded, as in training); then forward +
/// backward, then the whole step (zero grad, forward, backward, Adam). Allocated is per step.
/// </summary>
[MemoryDiagnoser]
public class TrainingStepBenchmarks
{
    private Sequential _model = null!;
    private Adam _optimizer = null!;
    private Tensor _images = null!;
    private Tensor _labels = null!;

    [GlobalSetup]
    public void Setup()
    {
        _model = Mlp.Create(seed: 1);
        _optimizer = new Adam(_model.Parameters(), learningRate: 1e-3);
        (_images, _labels) = Mlp.SyntheticBatch(Workloads.BatchSize, Workloads.Seed);
    }

    [Benchmark(Baseline = true)]
    public Tensor Forward() => Functional.CrossEntropy(_model.Forward(_images), _labels);

    [Benchmark]
    public Tensor ForwardBackward()
    {
        _optimizer.ZeroGrad();
        var loss = Functional.CrossEntropy(_model.Forward(_images), _labels);
        loss.Backward();
        return loss;
    }

    [Benchmark]
    public Tensor TrainingStep() => Mlp.Step(_model, _optimizer, _images, _labels);
}
