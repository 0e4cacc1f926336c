using System.Text.Json;
using Autograd.Nn;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>
/// Weights written by PyTorch for the two example networks (tests/golden/models_interop.py) load into the same
/// architectures built from Autograd.Nn modules and give PyTorch's logits.
/// </summary>
public class ModelInteropTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "golden", "safetensors");

    /// <summary>The CNN of examples/FashionCnn.</summary>
    internal static Sequential FashionCnn(int seed) => new(
        new Conv2d(1, 32, 3, seed: seed, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
        new Conv2d(32, 64, 3, seed: seed + 1, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
        new Flatten(),
        new Linear(3136, 128, seed: seed + 2, dtype: DType.Float32), new ReLU(),
        new Linear(128, 10, seed: seed + 3, dtype: DType.Float32));

    private static (Tensor Input, float[] Logits, int[] LogitsShape) Case(string name, DType inputType)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, $"torch_{name}.json")));
        var root = doc.RootElement;
        var shape = root.GetProperty("input_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var input = inputType == DType.Int64
            ? Tensor.FromArray(root.GetProperty("input").EnumerateArray().Select(e => e.GetInt64()).ToArray(), shape)
            : Tensor.FromArray(root.GetProperty("input").EnumerateArray().Select(e => e.GetSingle()).ToArray(), shape);
        var logits = root.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        return (input, logits, root.GetProperty("logits_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray());
    }

    private static void AssertClose(float[] expected, Tensor actual)
    {
        var a = actual.ToArray<float>();
        Assert.Equal(expected.Length, a.Length);
        var scale = expected.Max(Math.Abs);
        for (var i = 0; i < a.Length; i++)
        {
            Assert.True(Math.Abs(a[i] - expected[i]) <= (1e-5 * Math.Abs(expected[i])) + (1e-6 * scale), $"logit {i}: {a[i]} vs PyTorch {expected[i]}");
        }
    }

    [Fact]
    public void PyTorchsCnnWeightsGiveItsLogits()
    {
        var model = FashionCnn(seed: 1);
        var result = model.LoadSafeTensors(Path.Combine(Dir, "torch_cnn.safetensors"));
        Assert.Empty(result.MissingKeys);
        var (x, logits, shape) = Case("cnn", DType.Float32);
        model.Eval();
        using var _ = Tensor.NoGrad();
        var y = model.Forward(x);
        Assert.Equal(shape, y.Shape.ToArray());
        AssertClose(logits, y);
    }

    [Fact]
    public void PyTorchsGptWeightsGiveItsLogits()
    {
        var model = new Gpt(vocabulary: 70, dModel: 64, context: 16, layers: 2, heads: 4, seed: 1);
        Assert.Equal(110150, model.ParameterCount);
        var result = model.LoadSafeTensors(Path.Combine(Dir, "torch_gpt.safetensors"));
        Assert.Empty(result.MissingKeys);
        var (x, logits, shape) = Case("gpt", DType.Int64);
        model.Eval();
        using var _ = Tensor.NoGrad();
        var y = model.Forward(x);
        Assert.Equal(shape, y.Shape.ToArray());
        AssertClose(logits, y);
    }
}
