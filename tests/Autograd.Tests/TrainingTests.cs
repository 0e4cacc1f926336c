using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;

namespace Autograd.Tests;

/// <summary>End-to-end: a small MLP learns the two-moons set in a fixed number of deterministic steps.</summary>
public class TrainingTests
{
    private static (double Accuracy, double Loss) TrainMoons(int seed)
    {
        var data = SyntheticData.MakeMoons(200, noise: 0.1, seed: 1);
        var y = data.Labels.To(DType.Float64).Reshape(-1, 1);
        var model = new Sequential(new Linear(2, 16, seed), new ReLU(), new Linear(16, 16, seed + 1), new ReLU(), new Linear(16, 1, seed + 2));
        var optimizer = new Adam(model.Parameters(), learningRate: 0.01);
        Tensor loss = Tensor.Scalar(0);
        for (var step = 0; step < 150; step++)
        {
            optimizer.ZeroGrad();
            loss = Functional.BinaryCrossEntropyWithLogits(model.Forward(data.Features), y);
            loss.Backward();
            optimizer.Step();
        }

        using var _ = Tensor.NoGrad();
        var predicted = model.Forward(data.Features).Gt(0.0).ToArray();
        var truth = y.ToArray();
        return (predicted.Zip(truth, (p, t) => p == t ? 1.0 : 0.0).Average(), loss.Item());
    }

    [Fact]
    public void MlpLearnsTwoMoonsToAtLeast97PercentIn150Steps()
    {
        var (accuracy, loss) = TrainMoons(seed: 1);
        Assert.True(accuracy >= 0.97, $"accuracy {accuracy:P1} after 150 steps");
        Assert.True(loss < 0.1, $"loss {loss} after 150 steps");
    }

    [Fact]
    public void TrainingIsDeterministicForASeed()
    {
        Assert.Equal(TrainMoons(seed: 5), TrainMoons(seed: 5));
        Assert.NotEqual(TrainMoons(seed: 5).Loss, TrainMoons(seed: 6).Loss);
    }
}
