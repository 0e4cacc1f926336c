using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>The convolution, pooling, normalisation, embedding and attention modules.</summary>
public class LayerModuleTests
{
    [Fact]
    public void SoftmaxLogSoftmaxAndAdaptiveAvgPoolModulesComputeTheirOperators()
    {
        var x = Tensor.RandN(new Shape(2, 3, 4, 5), seed: 3).WithRequiresGrad();
        Assert.Equal(x.Softmax(1).ToArray<double>(), new Softmax(1).Forward(x).ToArray<double>());
        Assert.Equal(x.LogSoftmax(-1).ToArray<double>(), new LogSoftmax(-1).Forward(x).ToArray<double>());
        var pooled = new AdaptiveAvgPool2d().Forward(x);
        Assert.Equal([2, 3, 1, 1], pooled.Shape.ToArray());
        Assert.Equal(x.AdaptiveAvgPool2d(1).ToArray<double>(), pooled.ToArray<double>());
        Assert.Contains("Softmax(dim=1)", new Sequential(new Softmax(1)).ToString(), StringComparison.Ordinal);
        Assert.Contains("AdaptiveAvgPool2d(output_size=2)", new Sequential(new AdaptiveAvgPool2d(2)).ToString(), StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Softmax(4).Forward(x));
        Assert.Empty(new Softmax(0).Parameters());
    }

    [Fact]
    public void Conv2dInitialisesAsPyTorchAndComputesTheOperator()
    {
        var conv = new Conv2d(4, 6, 3, seed: 5, padding: 1, groups: 2);
        Assert.Equal([6, 2, 3, 3], conv.Weight.Shape.ToArray());
        Assert.Equal([6], conv.Bias!.Shape.ToArray());
        var bound = 1.0 / Math.Sqrt(2 * 3 * 3);
        Assert.All(conv.Weight.ToArray<double>(), w => Assert.InRange(w, -bound, bound));
        Assert.All(conv.Bias.ToArray<double>(), b => Assert.InRange(b, -bound, bound));
        Assert.True(conv.Weight.ToArray<double>().Max() > bound * 0.8, "the weights should fill the range");
        Assert.Equal(["weight", "bias"], conv.NamedParameters().Select(p => p.Key).ToArray());

        var x = Tensor.RandN(new Shape(2, 4, 5, 5), 3);
        var expected = x.Conv2d(conv.Weight, conv.Bias, 1, 1, 1, 2);
        Assert.Equal(expected.ToArray<double>(), conv.Forward(x).ToArray<double>());
        Assert.Equal("Conv2d(4, 6, kernel_size=3, stride=1, padding=1, groups=2, bias=True)", conv.ToString());
        Assert.Throws<ArgumentException>(() => new Conv2d(4, 6, 3, seed: 1, groups: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Conv2d(4, 6, 3, seed: 1, stride: 0));
    }

    [Fact]
    public void PoolingModulesDefaultTheStrideToTheKernel()
    {
        var x = Tensor.Arange(0, 32).Reshape(1, 2, 4, 4);
        Assert.Equal([1, 2, 2, 2], new MaxPool2d(2).Forward(x).Shape.ToArray());
        Assert.Equal(x.MaxPool2d(2, 2, 0).ToArray<double>(), new MaxPool2d(2).Forward(x).ToArray<double>());
        Assert.Equal(x.AvgPool2d(3, 1, 1, true).ToArray<double>(), new AvgPool2d(3, 1, 1).Forward(x).ToArray<double>());
        Assert.Equal((0 + 1 + 4 + 5) / 4.0, new AvgPool2d(2).Forward(x).ToArray<double>()[0]);
        Assert.Equal(5.0, new MaxPool2d(2).Forward(x).ToArray<double>()[0]);
    }

    [Fact]
    public void LayerNormModuleNormalisesTheLastDimsWithUnitAffineAtFirst()
    {
        var ln = new LayerNorm(8);
        Assert.Equal(["weight", "bias"], ln.NamedParameters().Select(p => p.Key).ToArray());
        var x = Tensor.RandN(new Shape(3, 8), 4, mean: 2, std: 3);
        var y = ln.Forward(x).ToArray<double>();
        for (var r = 0; r < 3; r++)
        {
            var row = y.AsSpan(r * 8, 8).ToArray();
            Assert.Equal(0, row.Average(), 10);
            Assert.Equal(1, row.Select(v => v * v).Average(), 3);
        }

        Assert.Empty(new LayerNorm(8, elementwiseAffine: false).NamedParameters());
        Assert.Throws<ArgumentException>(() => new LayerNorm(Array.Empty<int>()));
    }

    [Fact]
    public void BatchNormUpdatesItsRunningStatisticsInTrainingAndUsesThemInEval()
    {
        var bn = new BatchNorm1d(2, momentum: 0.5);
        Assert.Equal(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], bn.NamedState().Select(s => s.Key).ToArray());
        var x = Tensor.From(new double[,] { { 1, 10 }, { 3, 20 }, { 5, 60 } });
        var y = bn.Forward(x).ToArray<double>();

        // Channel 0: mean 3, biased variance 8/3, unbiased 4.
        Assert.Equal((1 - 3) / Math.Sqrt((8.0 / 3) + 1e-5), y[0], 10);
        Assert.Equal([1.5, 15], bn.RunningMean.ToArray<double>());
        Assert.Equal(0.5 + (0.5 * 4), bn.RunningVar.ToArray<double>()[0], 12);
        Assert.Equal(1L, bn.NumBatchesTracked.ToArray<long>()[0]);

        bn.Eval();
        var e = bn.Forward(x).ToArray<double>();
        Assert.Equal((1 - 1.5) / Math.Sqrt(2.5 + 1e-5), e[0], 10);
        Assert.Equal(1L, bn.NumBatchesTracked.ToArray<long>()[0]);
    }

    [Fact]
    public void AFailedBatchNormCallChangesNothing()
    {
        var bn = new BatchNorm2d(3);
        var before = bn.NamedState().Select(s => s.Value.ToArray()).ToArray();
        Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(1, 3, 1, 1)));
        var wrong = Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(2, 4, 3, 3)));
        Assert.Contains("BatchNorm2d", wrong.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 4, 3, 3]", wrong.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => bn.Forward(Tensor.Zeros(2, 3, 3)));
        Assert.Equal(before, bn.NamedState().Select(s => s.Value.ToArray()).ToArray());
    }

    [Fact]
    public void EmbeddingLooksUpRowsAndKeepsThePaddingRowAtZero()
    {
        var emb = new Embedding(5, 3, seed: 2, paddingIndex: 0);
        Assert.Equal([0.0, 0, 0], emb.Weight.ToArray<double>()[..3]);
        var idx = Tensor.FromArray([4L, 0, 4, 2], 2, 2);
        var y = emb.Forward(idx);
        Assert.Equal([2, 2, 3], y.Shape.ToArray());
        Assert.Equal(emb.Weight.ToArray<double>()[12..15], y.ToArray<double>()[..3]);
        y.Sum().Backward();
        var g = emb.Weight.Grad!.ToArray<double>();
        Assert.Equal([0.0, 0, 0], g[..3]);
        Assert.Equal([2.0, 2, 2], g[12..15]);
        Assert.Equal([1.0, 1, 1], g[6..9]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Embedding(5, 3, seed: 1, paddingIndex: 5));
    }

    [Fact]
    public void CausalAttentionAtAPositionIgnoresLaterPositions()
    {
        var mha = new MultiHeadAttention(8, 2, seed: 3, causal: true);
        Assert.Equal(["qkv.weight", "qkv.bias", "proj.weight", "proj.bias"], mha.NamedParameters().Select(p => p.Key).ToArray());
        var x = Tensor.RandN(new Shape(2, 5, 8), 7);
        var y = mha.Forward(x).ToArray<double>();
        var changed = x.ToArray<double>();
        for (var j = 4 * 8; j < 5 * 8; j++)
        {
            changed[j] += 1.0;
        }

        var y2 = mha.Forward(Tensor.FromArray(changed, 2, 5, 8)).ToArray<double>();
        for (var i = 0; i < 4 * 8; i++)
        {
            Assert.Equal(y[i], y2[i], 12);
        }

        Assert.NotEqual(y[(4 * 8) + 1], y2[(4 * 8) + 1]);
        Assert.Throws<ArgumentException>(() => new MultiHeadAttention(8, 3, seed: 1));
        Assert.Throws<ArgumentException>(() => mha.Forward(Tensor.Zeros(2, 5, 7)));
    }

    [Fact]
    public void TheGptOfTheExampleHasPyTorchsParameterNamesAndCount()
    {
        var block = new TransformerBlock(64, 4, seed: 1);
        Assert.Equal(
            ["ln1.weight", "ln1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "ln2.weight", "ln2.bias",
             "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"],
            block.NamedParameters().Select(p => p.Key).ToArray());

        // Token (70·64) and position (16·64) embeddings, two blocks, a final LayerNorm and the head: 110 150, as the PyTorch peer prints.
        Assert.Equal(110150, (70 * 64) + (16 * 64) + (2 * block.ParameterCount) + 128 + (64 * 70) + 70);
        Assert.Equal(110150, new Gpt(vocabulary: 70, dModel: 64, context: 16, layers: 2, heads: 4, seed: 1).ParameterCount);
        var x = Tensor.RandN(new Shape(2, 16, 64), 1);
        Assert.Equal([2, 16, 64], block.Forward(x).Shape.ToArray());
    }
}
