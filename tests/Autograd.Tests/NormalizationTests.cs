using System.Globalization;

namespace Autograd.Tests;

/// <summary>
/// The normalisation family: the fused LayerNorm against its composed form (values, gradients and gradients of
/// gradients, through <see cref="FusedCheck.Compare"/>), BatchNorm's running statistics against hand-computed values,
/// and every kind of bad input with its message (and nothing updated when a call fails). Gradient checks are rows of
/// <see cref="OpTable"/>; PyTorch cases are in tests/golden/normalization.json.
/// </summary>
public class NormalizationTests
{
    private static Shape S(params int[] dims) => new(dims);

    public static TheoryData<string, int, bool> LayerNormCases()
    {
        var data = new TheoryData<string, int, bool>();
        foreach (var dtype in new[] { "float64", "float32" })
        {
            foreach (var (shape, k) in new[] { ("3,5", 1), ("2,3,4", 1), ("2,3,4", 2), ("2,3,4", 3), ("7", 1), ("4,1", 1), ("2,300", 1), ("3,2,40", 2) })
            {
                foreach (var affine in new[] { false, true })
                {
                    data.Add($"{dtype} [{shape}]", k, affine);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(LayerNormCases))]
    public void FusedLayerNormMatchesTheComposedForm(string shapeAndDType, int normalizedDims, bool affine)
    {
        var dtype = shapeAndDType.StartsWith("float32", StringComparison.Ordinal) ? DType.Float32 : DType.Float64;
        var dims = shapeAndDType[(shapeAndDType.IndexOf('[', StringComparison.Ordinal) + 1)..^1].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var shape = new Shape(dims);
        var normalized = dims[^normalizedDims..];
        var x = (Tensor.RandN(shape, 11, dtype) * 2.0) + 0.5;
        var w = affine ? Tensor.RandN(S(normalized), 12, dtype) + 1.0 : null;
        var b = affine ? Tensor.RandN(S(normalized), 13, dtype) : null;
        var r = FusedCheck.Compare(t => t.LayerNorm(normalized, w, b), t => t.LayerNormComposed(normalized, w, b), x);
        var tol = ForDType.Pick(dtype, float64: 1e-9, float32: 2e-3);
        Assert.True(r.MaxRel <= tol || r.MaxAbs <= tol * 10, $"{shapeAndDType} over {normalizedDims} dims, affine {affine}: {r}");
        Assert.True(r.MaxAbs <= ForDType.Pick(dtype, float64: 1e-10, float32: 1e-3), $"{shapeAndDType} over {normalizedDims} dims, affine {affine}: {r}");
        Assert.Equal("LayerNorm", x.Clone().WithRequiresGrad().LayerNorm(normalized, w, b).OpName);
    }

    [Fact]
    public void FusedLayerNormWeightAndBiasGradientsMatchTheComposedForm()
    {
        var x = Tensor.RandN(S(3, 4, 5), 1);
        var g = Tensor.RandN(S(3, 4, 5), 2);
        var grads = new List<Tensor[]>();
        foreach (var fused in new[] { true, false })
        {
            var xs = x.Clone().WithRequiresGrad();
            var w = (Tensor.RandN(S(4, 5), 3) + 1.0).WithRequiresGrad();
            var b = Tensor.RandN(S(4, 5), 4).WithRequiresGrad();
            var y = fused ? xs.LayerNorm([4, 5], w, b, 1e-3) : xs.LayerNormComposed([4, 5], w, b, 1e-3);
            var first = Autodiff.Grad([y], [xs, w, b], [g], createGraph: true);
            var s = (first[0] * first[0]).Sum() + (first[1] * first[1]).Sum();
            var second = Autodiff.Grad([s], [xs, w], allowUnused: true);
            grads.Add([.. first, .. second]);
        }

        for (var i = 0; i < grads[0].Length; i++)
        {
            var a = grads[0][i].ToArray();
            var c = grads[1][i].ToArray();
            Assert.All(a.Zip(c), p => Assert.Equal(p.Second, p.First, 1e-10));
        }
    }

    public static TheoryData<string, bool, bool, string> FirstOrderCases()
    {
        var data = new TheoryData<string, bool, bool, string>();
        foreach (var shape in new[] { "float64 [5,7]", "float64 [96,1024]", "float32 [33,300]", "float64 [0,4]" })
        {
            foreach (var (weight, bias) in new[] { (true, true), (true, false), (false, true), (false, false) })
            {
                foreach (var wanted in new[] { "x,w,b", "x", "w,b", "w", "b" })
                {
                    if ((weight || !wanted.Contains('w', StringComparison.Ordinal)) && (bias || !wanted.Contains('b', StringComparison.Ordinal)))
                    {
                        data.Add(shape, weight, bias, wanted);
                    }
                }
            }
        }

        return data;
    }

    /// <summary>
    /// Without create-graph, the fused rule computes dx, dw and db in one kernel pass (rows split between the cores for
    /// the large shapes); each gradient asked for, alone or with the others, matches the composed form's.
    /// </summary>
    [Theory]
    [MemberData(nameof(FirstOrderCases))]
    public void FirstOrderGradientsOfEveryInputSubsetMatchTheComposedForm(string shapeAndDType, bool weight, bool bias, string wanted)
    {
        var dtype = shapeAndDType.StartsWith("float32", StringComparison.Ordinal) ? DType.Float32 : DType.Float64;
        var dims = shapeAndDType[(shapeAndDType.IndexOf('[', StringComparison.Ordinal) + 1)..^1].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var d = dims[^1];
        var x = (Tensor.RandN(S(dims), 21, dtype) * 3.0) - 1.0;
        var g = Tensor.RandN(S(dims), 22, dtype);
        var w = weight ? Tensor.RandN(S(d), 23, dtype) + 1.0 : null;
        var b = bias ? Tensor.RandN(S(d), 24, dtype) : null;
        var results = new List<Tensor[]>();
        foreach (var fused in new[] { true, false })
        {
            var xs = wanted.Contains('x', StringComparison.Ordinal) ? x.Clone().WithRequiresGrad() : x;
            var ws = w is not null && wanted.Contains('w', StringComparison.Ordinal) ? w.Clone().WithRequiresGrad() : w;
            var bs = b is not null && wanted.Contains('b', StringComparison.Ordinal) ? b.Clone().WithRequiresGrad() : b;
            var inputs = new[] { xs, ws, bs }.OfType<Tensor>().Where(t => t.RequiresGrad).ToArray();
            var y = fused ? xs.LayerNorm([d], ws, bs) : xs.LayerNormComposed([d], ws, bs);
            if (fused)
            {
                Assert.Equal("LayerNorm", y.OpName);
            }

            results.Add(Autodiff.Grad([y], inputs, [g]));
        }

        var tol = ForDType.Pick(dtype, float64: 1e-9, float32: 2e-3);
        for (var i = 0; i < results[0].Length; i++)
        {
            Assert.Equal(results[1][i].Shape, results[0][i].Shape);
            var fusedValues = results[0][i].ToArray();
            var composedValues = results[1][i].ToArray();
            var scale = composedValues.Length == 0 ? 1 : Math.Max(1, composedValues.Max(Math.Abs));
            for (var j = 0; j < fusedValues.Length; j++)
            {
                Assert.True(Math.Abs(fusedValues[j] - composedValues[j]) <= tol * scale, $"{shapeAndDType} weight {weight} bias {bias}, gradient {i} of ({wanted}) at {j}: fused {fusedValues[j]}, composed {composedValues[j]}");
            }
        }
    }

    [Fact]
    public void LargeInputsSplitBetweenCoresGiveTheRowByRowResults()
    {
        // 96 rows of 1024: above the size from which the kernels split the rows between threads.
        var x = Tensor.RandN(S(96, 1024), 7).WithRequiresGrad();
        var g = Tensor.RandN(S(96, 1024), 8);
        var y = x.LayerNorm([1024]);
        var dx = Autodiff.Grad(y, x, g);
        foreach (var row in new[] { 0, 50, 95 })
        {
            var xr = x.Detach().Narrow(0, row, 1).WithRequiresGrad();
            var yr = xr.LayerNorm([1024]);
            Assert.Equal(yr.ToArray(), y.Narrow(0, row, 1).ToArray());
            Assert.Equal(Autodiff.Grad(yr, xr, g.Narrow(0, row, 1)).ToArray(), dx.Narrow(0, row, 1).ToArray());
        }
    }

    [Fact]
    public void TrainingUsesBatchStatisticsAndUpdatesTheRunningOnes()
    {
        // Channel 0 holds 1 and 3 (mean 2, biased variance 1, unbiased 2); channel 1 holds 2 and 6 (mean 4, 4, 8).
        var x = Tensor.From(new double[,] { { 1, 2 }, { 3, 6 } });
        var rm = Tensor.From(0.0, 0.0);
        var rv = Tensor.From(1.0, 1.0);
        var y = x.BatchNorm(rm, rv, training: true, momentum: 0.1, eps: 0);
        Assert.Equal([-1.0, -1, 1, 1], y.ToArray());
        Assert.Equal([0.2, 0.4], rm.ToArray(), (p, q) => Math.Abs(p - q) < 1e-15);
        Assert.Equal([1.1, 1.7], rv.ToArray(), (p, q) => Math.Abs(p - q) < 1e-15);

        // A second step from the updated statistics, with momentum 0.5.
        x.BatchNorm(rm, rv, training: true, momentum: 0.5);
        Assert.Equal([1.1, 2.2], rm.ToArray(), (p, q) => Math.Abs(p - q) < 1e-15);
        Assert.Equal([1.55, 4.85], rv.ToArray(), (p, q) => Math.Abs(p - q) < 1e-15);
    }

    [Fact]
    public void TrainingOverSpatialDimsCountsEveryPositionOfAChannel()
    {
        // [N=1, C=1, H=2, W=2]: values 0, 1, 2, 3, mean 1.5, unbiased variance 5/3.
        var x = Tensor.Arange(4).Reshape(1, 1, 2, 2);
        var rm = Tensor.From(1.0);
        var rv = Tensor.From(1.0);
        x.BatchNorm(rm, rv, training: true, momentum: 0.25);
        Assert.Equal((0.75 * 1.0) + (0.25 * 1.5), rm.Item(), 1e-15);
        Assert.Equal((0.75 * 1.0) + (0.25 * 5.0 / 3.0), rv.Item(), 1e-15);
    }

    [Fact]
    public void TheRunningUpdateIsNotRecorded()
    {
        var x = Tensor.RandN(S(4, 3), 1).WithRequiresGrad();
        var rm = Tensor.Zeros(3);
        var rv = Tensor.Ones(3);
        var y = x.BatchNorm(rm, rv, training: true);
        Assert.False(rm.RequiresGrad);
        Assert.False(rv.RequiresGrad);
        Assert.True(y.RequiresGrad);
    }

    [Fact]
    public void EvaluationUsesTheRunningStatisticsAndLeavesThemAlone()
    {
        var x = Tensor.From(new double[,] { { 1, 2 }, { 3, 6 } });
        var rm = Tensor.From(1.0, 2.0);
        var rv = Tensor.From(4.0, 0.25);
        var y = x.BatchNorm(rm, rv, Tensor.From(2.0, 1.0), Tensor.From(0.5, -1.0), eps: 0);
        Assert.Equal([0.5, -1, 2.5, 7], y.ToArray());
        Assert.Equal([1.0, 2], rm.ToArray());
        Assert.Equal([4.0, 0.25], rv.ToArray());
    }

    public static TheoryData<string, string> BadInputs() => new()
    {
        { "layer norm shape", "LayerNorm: normalizedShape [3] does not match the trailing dims of the input [2, 4]; expected an input of shape [*, 3]." },
        { "layer norm too long", "LayerNorm: normalizedShape [2, 2, 4] does not match the trailing dims of the input [2, 4]; expected an input of shape [*, 2, 2, 4]." },
        { "layer norm empty", "LayerNorm: normalizedShape must name at least one dim (input [2, 4])." },
        { "layer norm weight", "LayerNorm: weight has shape [3] but normalizedShape is [4] (input [2, 4]); they must match." },
        { "layer norm bias dtype", "LayerNorm: bias is float32 (shape [4]) but the input is float64 (shape [2, 4]); they must have the same dtype." },
        { "composed shape", "LayerNormComposed: normalizedShape [2] does not match the trailing dims of the input [2, 4]; expected an input of shape [*, 2]." },
        { "backward shapes", "LayerNormBackward: the gradient has shape [4, 2] but the input has shape [2, 4]; they must match." },
        { "batch norm rank", "BatchNorm: expected an input of shape [N, C], [N, C, L] or [N, C, H, W], got shape [4] (rank 1)." },
        { "batch norm one value", "BatchNorm: expected more than 1 value per channel when training, got input of shape [1, 3]." },
        { "batch norm one value spatial", "BatchNorm: expected more than 1 value per channel when training, got input of shape [1, 3, 1, 1]." },
        { "batch norm running mean", "BatchNorm: runningMean has shape [4] but the input [2, 3] has 3 channels (dim 1); expected shape [3]." },
        { "batch norm running var", "BatchNorm: runningVar has shape [3, 1] but the input [2, 3] has 3 channels (dim 1); expected shape [3]." },
        { "batch norm weight", "BatchNorm: weight has shape [2] but the input [2, 3] has 3 channels (dim 1); expected shape [3]." },
        { "batch norm bias dtype", "BatchNorm: bias is float32 (shape [3]) but the input is float64 (shape [2, 3]); they must have the same dtype." },
        { "batch norm one stat", "BatchNorm: runningMean and runningVar must be given together or both be null (input [2, 3])." },
        { "batch norm eval without stats", "BatchNorm: evaluation (training: false) needs runningMean and runningVar (input [2, 3])." },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputsThrowWithAClearMessageAndChangeNothing(string name, string message)
    {
        var x = Tensor.RandN(S(2, 4), 1);
        var xb = Tensor.RandN(S(2, 3), 2);
        var rm = Tensor.From(0.5, 0.25, 0.125);
        var rv = Tensor.From(1.0, 2.0, 3.0);
        Action call = name switch
        {
            "layer norm shape" => () => x.LayerNorm([3]),
            "layer norm too long" => () => x.LayerNorm([2, 2, 4]),
            "layer norm empty" => () => x.LayerNorm(Array.Empty<int>()),
            "layer norm weight" => () => x.LayerNorm([4], Tensor.Ones(3)),
            "layer norm bias dtype" => () => x.LayerNorm([4], null, Tensor.Ones(S(4), DType.Float32)),
            "composed shape" => () => x.LayerNormComposed([2]),
            "backward shapes" => () => Tensor.LayerNormBackward(Tensor.Zeros(4, 2), x, [4]),
            "batch norm rank" => () => Tensor.Zeros(4).BatchNorm(null, null, training: true),
            "batch norm one value" => () => Tensor.Zeros(1, 3).BatchNorm(rm, rv, training: true),
            "batch norm one value spatial" => () => Tensor.Zeros(1, 3, 1, 1).BatchNorm(rm, rv, training: true),
            "batch norm running mean" => () => xb.BatchNorm(Tensor.Zeros(4), rv, training: true),
            "batch norm running var" => () => xb.BatchNorm(rm, Tensor.Zeros(3, 1), training: true),
            "batch norm weight" => () => xb.BatchNorm(rm, rv, Tensor.Ones(2), training: true),
            "batch norm bias dtype" => () => xb.BatchNorm(rm, rv, null, Tensor.Ones(S(3), DType.Float32), training: true),
            "batch norm one stat" => () => xb.BatchNorm(rm, null, training: true),
            "batch norm eval without stats" => () => xb.BatchNorm(null, null),
            _ => throw new InvalidOperationException(name),
        };
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
        Assert.Equal([0.5, 0.25, 0.125], rm.ToArray());
        Assert.Equal([1.0, 2.0, 3.0], rv.ToArray());
    }
}
