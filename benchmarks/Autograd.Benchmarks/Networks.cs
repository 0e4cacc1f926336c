using System.Diagnostics;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;

namespace Autograd.Benchmarks;

/// <summary>
/// The small networks of examples/FashionCnn and examples/CharGpt, built and trained as those examples do, and timed
/// for the report next to their PyTorch peers (benchmarks/peers/fashion_cnn.py and char_gpt.py).
/// </summary>
public static class Networks
{
    /// <summary>
    /// The CNN of examples/FashionCnn: conv 1→32 3×3 pad 1, ReLU, max-pool 2; conv 32→64 3×3 pad 1, ReLU, max-pool 2;
    /// flatten; Linear 3136→128, ReLU, Linear 128→10 (float32, layers seeded seed … seed + 3).
    /// </summary>
    public static Sequential Cnn(int seed) => new(
        new Conv2d(1, 32, 3, seed: seed, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
        new Conv2d(32, 64, 3, seed: seed + 1, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
        new Flatten(),
        new Linear(3136, 128, seed: seed + 2, dtype: DType.Float32), new ReLU(),
        new Linear(128, 10, seed: seed + 3, dtype: DType.Float32));

    /// <summary>Fashion-MNIST rows [n, 784] as the CNN's images [n, 1, 28, 28].</summary>
    public static Tensor AsImages(Tensor rows) => rows.Reshape(rows.Shape[0], 1, 28, 28);

    /// <summary>
    /// Trains a fresh model from <paramref name="create"/> for one epoch over <paramref name="train"/> (batch 64,
    /// shuffled, Adam 1e-3, cross-entropy), as the Fashion-MNIST examples do, including the data loader's copies and
    /// reading each loss back, and returns the wall-clock time. <paramref name="warmupSteps"/> steps on a throwaway
    /// model come first so that the JIT has compiled the path.
    /// </summary>
    public static EpochTiming TimeEpoch(Func<int, Module> create, Func<Tensor, Tensor> input, TensorDataset train, int warmupSteps = 20, int seed = 1)
    {
        var warmModel = create(seed);
        var warmOptimizer = new Adam(warmModel.Parameters(), learningRate: 1e-3);
        var warmLoader = new DataLoader(train, Workloads.BatchSize, shuffle: true, seed: seed);
        foreach (var batch in warmLoader.Epoch(0).Take(warmupSteps))
        {
            Mlp.Step(warmModel, warmOptimizer, input(batch.Features), batch.Labels).Item();
        }

        var model = create(seed);
        var optimizer = new Adam(model.Parameters(), learningRate: 1e-3);
        var loader = new DataLoader(train, Workloads.BatchSize, shuffle: true, seed: seed);
        model.Train();
        double lossSum = 0;
        var batches = 0;
        var clock = Stopwatch.StartNew();
        foreach (var batch in loader.Epoch(1))
        {
            lossSum += Mlp.Step(model, optimizer, input(batch.Features), batch.Labels).Item();
            batches++;
        }

        return new EpochTiming(clock.Elapsed.TotalSeconds, batches, train.Count, lossSum / batches);
    }

    /// <summary>
    /// The GPT of examples/CharGpt (2 blocks, 4 heads, d_model 64, context 16, float32) trained with AdamW 3e-3
    /// (weight decay 0.01) on batches of 64 from <paramref name="corpus"/>: the mean time of <paramref name="steps"/>
    /// training steps (sampling the batch, zero grad, forward, loss, backward, step, reading the loss back), after
    /// <paramref name="warmupSteps"/> steps on a throwaway model.
    /// </summary>
    public static GptTiming TimeGptSteps(CharCorpus corpus, int steps = 300, int warmupSteps = 20, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        double Run(int count, out long parameters, out double meanLoss)
        {
            var model = new Gpt(corpus.VocabularySize, dModel: 64, context: 16, layers: 2, heads: 4, seed);
            var optimizer = new AdamW(model.Parameters(), learningRate: 3e-3, weightDecay: 0.01);
            var random = new Random(seed);
            parameters = model.ParameterCount;
            var lossSum = 0.0;
            var clock = Stopwatch.StartNew();
            for (var step = 0; step < count; step++)
            {
                var (x, y) = corpus.SampleBatch(validation: false, Workloads.BatchSize, 16, random);
                optimizer.ZeroGrad();
                var loss = model.Loss(x, y);
                loss.Backward();
                optimizer.Step();
                lossSum += loss.Item();
            }

            meanLoss = lossSum / Math.Max(1, count);
            return clock.Elapsed.TotalMilliseconds / Math.Max(1, count);
        }

        Run(warmupSteps, out _, out _);
        var ms = Run(steps, out var parameterCount, out var mean);
        return new GptTiming(ms, steps, parameterCount, mean);
    }
}

/// <summary>The mean time of one GPT training step, over how many steps, the model's size and its mean training loss.</summary>
public sealed record GptTiming(double MsPerStep, int Steps, long Parameters, double MeanLoss);
