namespace Autograd.Tests;

/// <summary>
/// The pooling family (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d): values and gradients against hand-computed results,
/// the tie rule of max pooling, and every kind of bad input with its message. Their gradient checks are rows of
/// <see cref="OpTable"/>, their PyTorch cases in tests/golden/normalization.json.
/// </summary>
public class PoolingTests
{
    private static Tensor Plane(double[,] values) => Tensor.From(values).Reshape(1, 1, values.GetLength(0), values.GetLength(1));

    [Fact]
    public void MaxPoolTakesTheLargestOfEachWindow()
    {
        var x = Plane(new double[,] { { 1, 5, 2, 0 }, { 3, 4, 8, 1 }, { -1, -2, 0, 0 }, { -3, -4, 0, 9 } });
        Assert.Equal([5.0, 8, -1, 9], x.MaxPool2d(2).ToArray());
        Assert.Equal(new Shape(1, 1, 2, 2), x.MaxPool2d(2).Shape);
    }

    [Fact]
    public void MaxPoolGivesTheGradientToTheFirstOfTiedMaxima()
    {
        // Every window of the 2×2 pooling holds a tie; row-major, the first one wins (PyTorch's rule).
        var x = Plane(new double[,] { { 1, 1, 2, 0 }, { 1, 0, 2, 2 }, { 3, 0, -1, -1 }, { 0, 3, -1, -1 } }).WithRequiresGrad();
        var y = x.MaxPool2d(2);
        Assert.Equal([1.0, 2, 3, -1], y.ToArray());
        var g = Autodiff.Grad(y, x, Tensor.FromArray([10.0, 20, 30, 40], 1, 1, 2, 2));
        Assert.Equal([10.0, 0, 20, 0, 0, 0, 0, 0, 30, 0, 40, 0, 0, 0, 0, 0], g.ToArray());
    }

    [Fact]
    public void MaxPoolPropagatesNaNAsPyTorchDoes()
    {
        // PyTorch's test is (v > max || isnan(v)), so a NaN wins its window and the last NaN takes the gradient.
        var x = Plane(new double[,] { { 1, double.NaN }, { double.NaN, 4 } }).WithRequiresGrad();
        var y = x.MaxPool2d(2);
        Assert.True(double.IsNaN(y.Item()));
        Assert.Equal([0.0, 0, 1, 0], Autodiff.Grad(y, x, Tensor.Ones(1, 1, 1, 1)).ToArray());
    }

    [Fact]
    public void MaxPoolPadsWithMinusInfinity()
    {
        // All values negative: a zero padding would win, −∞ padding does not.
        var x = Plane(new double[,] { { -1, -2 }, { -3, -4 } });
        Assert.Equal(new Shape(1, 1, 3, 3), x.MaxPool2d(2, 1, 1).Shape);
        Assert.Equal([-1.0, -1, -2, -1, -1, -2, -3, -3, -4], x.MaxPool2d(2, 1, 1).ToArray());
    }

    [Fact]
    public void MaxPoolSecondOrderIsAGatherAtTheSameIndices()
    {
        var x = Plane(new double[,] { { 1, 5, 2, 0 }, { 3, 4, 8, 1 } }).WithRequiresGrad();
        var g = Tensor.FromArray([1.0, 2], 1, 1, 1, 2).WithRequiresGrad();
        var dx = Autodiff.Grad([x.MaxPool2d(2)], [x], [g], createGraph: true)[0];
        Assert.Equal([0.0, 1, 0, 0, 0, 0, 2, 0], dx.ToArray());
        var v = Tensor.Arange(8).Reshape(1, 1, 2, 4);
        var dg = Autodiff.Grad((dx * v).Sum(), g);
        Assert.Equal([1.0, 6], dg.ToArray());
    }

    [Fact]
    public void AvgPoolDividesByTheKernelAreaOrByTheElementsInTheWindow()
    {
        var x = Plane(new double[,] { { 1, 2 }, { 3, 4 } });
        // Padding 1, kernel 2, stride 2: each window holds one element and three zeros of padding.
        Assert.Equal([0.25, 0.5, 0.75, 1], x.AvgPool2d(2, 2, 1).ToArray());
        Assert.Equal([1.0, 2, 3, 4], x.AvgPool2d(2, 2, 1, countIncludePad: false).ToArray());
        Assert.Equal([2.5], x.AvgPool2d(2).ToArray());
    }

    [Fact]
    public void AvgPoolGradientSpreadsEachOutputOverItsWindow()
    {
        var x = Tensor.Ones(1, 3, 3).WithRequiresGrad();
        var dx = Autodiff.Grad(x.AvgPool2d(2, 1), x, Tensor.FromArray([4.0, 8, 12, 16], 1, 2, 2));
        Assert.Equal([1.0, 3, 2, 4, 10, 6, 3, 7, 4], dx.ToArray());
    }

    [Fact]
    public void PoolingWorksOnChwAndFloat32()
    {
        var x = Tensor.RandN(new Shape(2, 4, 6), 3, DType.Float32);
        var batched = x.Reshape(1, 2, 4, 6);
        Assert.Equal(batched.MaxPool2d(2).ToArray(), x.MaxPool2d(2).ToArray());
        Assert.Equal(batched.AvgPool2d(3, 1, 1).ToArray(), x.AvgPool2d(3, 1, 1).ToArray());
        Assert.Equal(DType.Float32, x.MaxPool2d(2).DType);
        Assert.Equal(new Shape(2, 1, 1), x.AdaptiveAvgPool2d(1).Shape);
    }

    [Fact]
    public void AdaptiveAvgPoolIsTheSpatialMeanOrAnEvenAveragePool()
    {
        var x = Tensor.RandN(new Shape(2, 3, 4, 6), 1);
        var y = x.AdaptiveAvgPool2d(1);
        Assert.Equal(new Shape(2, 3, 1, 1), y.Shape);
        var mean = x.Mean([2, 3], keepDim: true).ToArray();
        Assert.All(y.ToArray().Zip(mean), p => Assert.Equal(p.Second, p.First, 1e-14));
        Assert.Equal(x.AvgPool2d((2, 3), (2, 3)).ToArray(), x.AdaptiveAvgPool2d((2, 2)).ToArray());
    }

    [Fact]
    public void LargeInputsSplitBetweenCoresGiveThePerPlaneResults()
    {
        // 8·16 planes of 32×32: above the size from which the kernels split the planes between threads.
        var x = Tensor.RandN(new Shape(8, 16, 32, 32), 5).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(8, 16, 16, 16), 6);
        var max = x.MaxPool2d(3, 2, 1);
        var avg = x.AvgPool2d(3, 2, 1, countIncludePad: false);
        var dMax = Autodiff.Grad(max, x, g);
        var dAvg = Autodiff.Grad(avg, x, g);
        foreach (var plane in new[] { 0, 37, 127 })
        {
            var (n, c) = (plane / 16, plane % 16);
            var xp = x.Detach().Narrow(0, n, 1).Narrow(1, c, 1).WithRequiresGrad();
            var gp = g.Narrow(0, n, 1).Narrow(1, c, 1);
            var pm = xp.MaxPool2d(3, 2, 1);
            var pa = xp.AvgPool2d(3, 2, 1, countIncludePad: false);
            Assert.Equal(pm.ToArray(), max.Narrow(0, n, 1).Narrow(1, c, 1).ToArray());
            Assert.Equal(pa.ToArray(), avg.Narrow(0, n, 1).Narrow(1, c, 1).ToArray());
            Assert.Equal(Autodiff.Grad(pm, xp, gp).ToArray(), dMax.Narrow(0, n, 1).Narrow(1, c, 1).ToArray());
            Assert.Equal(Autodiff.Grad(pa, xp, gp).ToArray(), dAvg.Narrow(0, n, 1).Narrow(1, c, 1).ToArray());
        }
    }

    public static TheoryData<string, string, Type> BadInputs() => new()
    {
        { "max rank 2", "MaxPool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape [4, 4] (rank 2).", typeof(ArgumentException) },
        { "avg rank 5", "AvgPool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape [1, 1, 1, 4, 4] (rank 5).", typeof(ArgumentException) },
        { "max int64", "MaxPool2d: expected a float64 or float32 tensor, got int64", typeof(ArgumentException) },
        { "max kernel larger than the padded input", "MaxPool2d: the kernel (5, 5) is larger than the padded input (4, 4) (input [1, 1, 4, 4], padding (0, 0)).", typeof(ArgumentException) },
        { "avg kernel larger than the padded input", "AvgPool2d: the kernel (3, 6) is larger than the padded input (6, 5) (input [1, 4, 3], padding (1, 1)).", typeof(ArgumentException) },
        { "max stride 0", "MaxPool2d: the stride must be positive, got (0, 0) (input [1, 1, 4, 4], kernel (2, 2)).", typeof(ArgumentOutOfRangeException) },
        { "avg stride -1", "AvgPool2d: the stride must be positive, got (1, -1) (input [1, 1, 4, 4], kernel (2, 2)).", typeof(ArgumentOutOfRangeException) },
        { "max kernel 0", "MaxPool2d: the kernel size must be positive, got (0, 0) (input [1, 1, 4, 4]).", typeof(ArgumentOutOfRangeException) },
        { "max padding more than half the kernel", "MaxPool2d: the padding must be between 0 and half the kernel size, got padding (2, 2) for kernel (3, 3) (input [1, 1, 4, 4]).", typeof(ArgumentOutOfRangeException) },
        { "avg negative padding", "AvgPool2d: the padding must be between 0 and half the kernel size, got padding (-1, 0) for kernel (2, 2) (input [1, 1, 4, 4]).", typeof(ArgumentOutOfRangeException) },
        { "adaptive size 0", "AdaptiveAvgPool2d: the output size must be positive, got (0, 0) (input [1, 1, 4, 4]).", typeof(ArgumentOutOfRangeException) },
        { "adaptive uneven", "AdaptiveAvgPool2d: output size (3, 3) does not divide the input's spatial size (4, 4) (input [1, 1, 4, 4]); only output size 1 or sizes that divide the input are supported.", typeof(NotSupportedException) },
        { "adaptive rank 2", "AdaptiveAvgPool2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape [4, 4] (rank 2).", typeof(ArgumentException) },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputsThrowWithAClearMessage(string name, string message, Type type)
    {
        var x = Tensor.Zeros(1, 1, 4, 4);
        Func<Tensor> call = name switch
        {
            "max rank 2" => () => Tensor.Zeros(4, 4).MaxPool2d(2),
            "avg rank 5" => () => Tensor.Zeros(1, 1, 1, 4, 4).AvgPool2d(2),
            "max int64" => () => Tensor.FromArray(new long[16], 1, 1, 4, 4).MaxPool2d(2),
            "max kernel larger than the padded input" => () => x.MaxPool2d(5),
            "avg kernel larger than the padded input" => () => Tensor.Zeros(1, 4, 3).AvgPool2d((3, 6), null, (1, 1)),
            "max stride 0" => () => x.MaxPool2d(2, 0),
            "avg stride -1" => () => x.AvgPool2d((2, 2), (1, -1)),
            "max kernel 0" => () => x.MaxPool2d(0),
            "max padding more than half the kernel" => () => x.MaxPool2d(3, 1, 2),
            "avg negative padding" => () => x.AvgPool2d((2, 2), null, (-1, 0)),
            "adaptive size 0" => () => x.AdaptiveAvgPool2d(0),
            "adaptive uneven" => () => x.AdaptiveAvgPool2d(3),
            "adaptive rank 2" => () => Tensor.Zeros(4, 4).AdaptiveAvgPool2d(1),
            _ => throw new InvalidOperationException(name),
        };
        var e = Assert.Throws(type, () => call());
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFailedCallRecordsNothing()
    {
        var x = Tensor.Zeros(1, 1, 4, 4).WithRequiresGrad();
        Assert.Throws<ArgumentOutOfRangeException>(() => x.MaxPool2d(3, 1, 2));
        Assert.True(x.IsLeaf);
        Assert.Null(x.Grad);
    }
}
