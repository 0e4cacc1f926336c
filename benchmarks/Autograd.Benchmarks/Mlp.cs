using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;

namespace Autograd.Benchmarks;

/// <summary>The Fashion-MNIST MLP of examples/FashionMnist, its training step, synthetic batches and an epoch timer.</summary>
public static class Mlp
{
    /// <summary>784-256-128-10 with ReLU, float32, layers seeded seed, seed + 1, seed + 2 (as the example).</summary>
    public static Sequential Create(int seed) => new(
        new Linear(784, 256, seed: seed, dtype: DType.Float32),
        new ReLU(),
        new Linear(256, 128, seed: seed + 1, dtype: DType.Float32),
        new ReLU(),
        new Linear(128, 10, seed: seed + 2, dtype: DType.Float32));

    /// <summary>A batch shaped like Fashion-MNIST's: float32 pixels uniform in [0, 1) of shape [n, 784] and int64 labels in 0…9.</summary>
    public static (Tensor Images, Tensor Labels) SyntheticBatch(int n, int seed)
    {
        var images = Tensor.Rand(new Shape(n, 784), seed, DType.Float32);
        var rng = new Random(seed);
        var labels = new long[n];
        for (var i = 0; i < n; i++)
        {
            labels[i] = rng.Next(10);
        }

        return (images, Tensor.FromArray(labels, n));
    }

    /// <summary>A synthetic data set of <paramref name="n"/> Fashion-MNIST-shaped samples.</summary>
    public static TensorDataset SyntheticDataset(int n, int seed)
    {
        var (images, labels) = SyntheticBatch(n, seed);
        return new TensorDataset(images, labels);
    }

    /// <summary>One training step: zero the gradients, forward, cross-entropy, backward, Adam. Returns the loss.</summary>
    public static Tensor Step(Module model, Optimizer optimizer, Tensor images, Tensor labels)
    {
        optimizer.ZeroGrad();
        var loss = Functional.CrossEntropy(model.Forward(images), labels);
        loss.Backward();
        optimizer.Step();
        return loss;
    }

    /// <summary>
    /// Trains a fresh MLP for one epoch over <paramref name="train"/> and returns the wall-clock time; see
    /// <see cref="Networks.TimeEpoch"/>.
    /// </summary>
    public static EpochTiming TimeEpoch(TensorDataset train, int warmupSteps = 20, int seed = 1)
        => Networks.TimeEpoch(Create, static rows => rows, train, warmupSteps, seed);
}

/// <summary>The time of one training epoch, its batch and sample counts and the mean training loss.</summary>
public sealed record EpochTiming(double Seconds, int Batches, int Samples, double MeanLoss);
