namespace Autograd.Tests;

/// <summary>
/// Comparisons (Eq, Ne, Lt, Le, Gt, Ge), Where, Maximum, Minimum and Clamp: values against hand-computed results with
/// broadcasting and NaN, masks in the operands' float dtype and never recorded, gradients by hand at ties and at clamp
/// bounds, and every kind of bad input with its message. Their gradient checks are rows of <see cref="OpTable"/>.
/// </summary>
public class ComparisonTests
{
    private static Tensor M(double[,] values) => Tensor.From(values);

    private static void AssertValues(double[] expected, Tensor actual, int[] shape)
    {
        Assert.Equal(shape, actual.Shape.ToArray());
        Assert.Equal(expected, actual.ToArray());
    }

    private static void AssertMessage(Exception e, params string[] parts)
    {
        foreach (var p in parts)
        {
            Assert.Contains(p, e.Message, StringComparison.Ordinal);
        }
    }

    // ---------------------------------------------------------------- comparisons

    [Fact]
    public void ComparisonsBroadcastAndReturnOneOrZero()
    {
        var a = M(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        var b = Tensor.From(3.0, 5.0, 3.0);
        AssertValues([0, 0, 1, 0, 1, 0], a.Eq(b), [2, 3]);
        AssertValues([1, 1, 0, 1, 0, 1], a.Ne(b), [2, 3]);
        AssertValues([1, 1, 0, 0, 0, 0], a.Lt(b), [2, 3]);
        AssertValues([1, 1, 1, 0, 1, 0], a.Le(b), [2, 3]);
        AssertValues([0, 0, 0, 1, 0, 1], a.Gt(b), [2, 3]);
        AssertValues([0, 0, 1, 1, 1, 1], a.Ge(b), [2, 3]);

        // b on the left: the broadcast works from either side.
        AssertValues([0, 0, 0, 1, 0, 1], b.Lt(a), [2, 3]);

        var col = M(new double[,] { { 1 }, { 2 } });
        var row = M(new double[,] { { 0, 1, 2 } });
        AssertValues([0, 1, 1, 0, 0, 1], col.Le(row), [2, 3]);
        AssertValues([1], Tensor.Scalar(2).Gt(Tensor.From(1.0)), [1]);
        AssertValues([], Tensor.Zeros(0, 3).Eq(b), [0, 3]);
    }

    [Fact]
    public void ScalarOverloadsCompareEveryElement()
    {
        var a = M(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        AssertValues([0, 0, 0, 0, 1, 0], a.Eq(5), [2, 3]);
        AssertValues([1, 1, 1, 1, 0, 1], a.Ne(5), [2, 3]);
        AssertValues([1, 1, 1, 0, 0, 0], a.Lt(4), [2, 3]);
        AssertValues([1, 1, 0, 0, 0, 0], a.Le(2), [2, 3]);
        AssertValues([0, 0, 0, 1, 1, 1], a.Gt(3), [2, 3]);
        AssertValues([0, 0, 0, 1, 1, 1], a.Ge(4), [2, 3]);
        AssertValues([1], Tensor.Scalar(-0.0).Eq(0.0).Reshape(1), [1]);
    }

    [Fact]
    public void NaNComparesAsIeee()
    {
        var a = Tensor.From(double.NaN, 1.0, double.NaN);
        var b = Tensor.From(double.NaN, 1.0, 0.0);
        AssertValues([0, 1, 0], a.Eq(b), [3]);
        AssertValues([1, 0, 1], a.Ne(b), [3]);
        AssertValues([0, 0, 0], a.Lt(b), [3]);
        AssertValues([0, 1, 0], a.Le(b), [3]);
        AssertValues([0, 0, 0], a.Gt(b), [3]);
        AssertValues([0, 1, 0], a.Ge(b), [3]);
        AssertValues([0, 0, 0], a.Ge(double.NaN), [3]);
    }

    [Fact]
    public void MasksHaveTheOperandsFloatDTypeAndAreNeverRecorded()
    {
        var f = Tensor.From(1f, 2f, 3f);
        var m = f.Gt(1.5);
        Assert.Equal(DType.Float32, m.DType);
        Assert.Equal(new float[] { 0f, 1f, 1f }, m.ToArray<float>());
        Assert.Equal(DType.Float32, f.Eq(Tensor.From(1f)).DType);

        var x = Tensor.From(-1.0, 2.0, -3.0, 4.0).WithRequiresGrad();
        var mask = x.Gt(0);
        Assert.False(mask.RequiresGrad);
        Assert.Null(mask.GradFn);
        Assert.Null(x.Le(x).GradFn);

        // The mask is a constant: the gradient of x ⊙ [x > 0] is the mask.
        (x * mask).Sum().Backward();
        AssertValues([0, 1, 0, 1], x.Grad!, [4]);
    }

    // ---------------------------------------------------------------- Where

    [Fact]
    public void WhereSelectsWithBroadcastingOfAllThree()
    {
        var cond = M(new double[,] { { 1 }, { 0 } });
        AssertValues([1, 2, 3, -1, -1, -1], Tensor.Where(cond, Tensor.From(1.0, 2.0, 3.0), Tensor.Scalar(-1)), [2, 3]);

        var c = M(new double[,] { { 1, 0, 1 }, { 0, 0, 1 } });
        var a = Tensor.From(10.0, 20.0, 30.0);
        var b = M(new double[,] { { -1 }, { -2 } });
        AssertValues([10, -1, 30, -2, -2, 30], Tensor.Where(c, a, b), [2, 3]);

        // Any nonzero is true (NaN included), and the condition may be int64 or float32.
        AssertValues([1, 20, 30], Tensor.Where(Tensor.FromArray([0L, 5, -2], 3), a, Tensor.From(1.0, 2.0, 3.0)), [3]);
        AssertValues([10, 2, 30], Tensor.Where(Tensor.From(double.NaN, 0.0, -0.5), a, Tensor.From(1.0, 2.0, 3.0)), [3]);
        AssertValues([1, 20, 3], Tensor.Where(Tensor.From(0f, 1f, 0f), a, Tensor.From(1.0, 2.0, 3.0)), [3]);

        // Scalar overloads: a masked fill and a relu.
        var x = Tensor.From(-1.5, 0.0, 2.5);
        AssertValues([0, 0, 2.5], Tensor.Where(x.Gt(0), x, 0.0), [3]);
        AssertValues([7, 0, 2.5], Tensor.Where(x.Lt(0), 7.0, x), [3]);

        var f = Tensor.Where(Tensor.From(1f, 0f), Tensor.From(1f, 2f), 9.0);
        Assert.Equal(new float[] { 1f, 9f }, f.ToArray<float>());

        AssertValues([4], Tensor.Where(Tensor.Scalar(0), Tensor.Scalar(3), Tensor.Scalar(4)).Reshape(1), [1]);
        AssertValues([], Tensor.Where(Tensor.Zeros(2, 0), Tensor.Zeros(0), Tensor.Scalar(1)), [2, 0]);
    }

    [Fact]
    public void WhereGradientsGoToTheSelectedSideSummedBackToEachShape()
    {
        var c = M(new double[,] { { 1, 0, 1 }, { 0, 0, 1 } });
        var a = Tensor.From(10.0, 20.0, 30.0).WithRequiresGrad();
        var b = M(new double[,] { { -1 }, { -2 } }).WithRequiresGrad();
        var y = Tensor.Where(c, a, b);
        Assert.Equal("Where", y.OpName);
        y.Backward(M(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }));

        // da = Σ_rows where(c, g, 0), db = Σ_cols where(c, 0, g)
        AssertValues([1, 0, 9], a.Grad!, [3]);
        AssertValues([2, 9], b.Grad!, [2, 1]);

        // A condition that requires grad is not differentiated.
        var cond = Tensor.From(1.0, 0.0).WithRequiresGrad();
        var z = Tensor.Where(cond, Tensor.From(1.0, 2.0).WithRequiresGrad(), Tensor.From(3.0, 4.0));
        z.Sum().Backward();
        Assert.Null(cond.Grad);
    }

    // ---------------------------------------------------------------- Maximum, Minimum, Clamp

    [Fact]
    public void MaximumAndMinimumAreElementwiseAndPropagateNaN()
    {
        var a = Tensor.From(1.0, 5.0, 3.0, double.NaN, 0.0);
        var b = Tensor.From(4.0, 2.0, 3.0, 0.0, double.NaN);
        var max = a.Maximum(b).ToArray();
        var min = a.Minimum(b).ToArray();
        Assert.Equal(new double[] { 4, 5, 3 }, max[..3]);
        Assert.Equal(new double[] { 1, 2, 3 }, min[..3]);
        Assert.True(double.IsNaN(max[3]) && double.IsNaN(max[4]));
        Assert.True(double.IsNaN(min[3]) && double.IsNaN(min[4]));

        var m = M(new double[,] { { 1 }, { 4 } });
        AssertValues([2, 3, 4, 4], m.Maximum(Tensor.From(2.0, 3.0)), [2, 2]);
        AssertValues([1, 1, 2, 3], m.Minimum(Tensor.From(2.0, 3.0)), [2, 2]);
        AssertValues([0, 0, 2], Tensor.From(-1.0, 0.0, 2.0).Maximum(0), [3]);
        AssertValues([-1, 0, 0], Tensor.From(-1.0, 0.0, 2.0).Minimum(0), [3]);

        var f = Tensor.From(1f, 5f).Maximum(Tensor.From(2f, 2f));
        Assert.Equal(new float[] { 2f, 5f }, f.ToArray<float>());
    }

    [Fact]
    public void MaximumAndMinimumSplitTheGradientAtTiesAsPyTorch()
    {
        var a = Tensor.From(1.0, 5.0, 3.0).WithRequiresGrad();
        var b = Tensor.From(4.0, 2.0, 3.0).WithRequiresGrad();
        var y = a.Maximum(b);
        Assert.Equal("Maximum", y.OpName);
        y.Backward(Tensor.From(10.0, 20.0, 30.0));
        AssertValues([0, 20, 15], a.Grad!, [3]);
        AssertValues([10, 0, 15], b.Grad!, [3]);

        a.ZeroGrad();
        b.ZeroGrad();
        var z = a.Minimum(b);
        Assert.Equal("Minimum", z.OpName);
        z.Backward(Tensor.From(10.0, 20.0, 30.0));
        AssertValues([10, 0, 15], a.Grad!, [3]);
        AssertValues([0, 20, 15], b.Grad!, [3]);

        // Broadcast: the gradient of a row vector sums over the rows it was broadcast to.
        var r = Tensor.From(2.0, 0.0).WithRequiresGrad();
        var col = M(new double[,] { { 1 }, { 2 } }).WithRequiresGrad();
        r.Maximum(col).Sum().Backward();
        AssertValues([1.5, 0], r.Grad!, [2]);
        AssertValues([1, 1.5], col.Grad!, [2, 1]);

        // Where either is NaN both get the whole gradient (PyTorch's masks are all false there).
        var n = Tensor.From(double.NaN).WithRequiresGrad();
        var one = Tensor.From(1.0).WithRequiresGrad();
        n.Maximum(one).Sum().Backward();
        AssertValues([1], n.Grad!, [1]);
        AssertValues([1], one.Grad!, [1]);

        // The scalar overload: half the gradient where x equals the scalar.
        var x = Tensor.From(-1.0, 0.0, 2.0).WithRequiresGrad();
        x.Maximum(0).Sum().Backward();
        AssertValues([0, 0.5, 1], x.Grad!, [3]);
    }

    [Fact]
    public void ClampLimitsValuesAndPassesTheGradientInsideBoundsIncluded()
    {
        var x = Tensor.From(-2.0, -1.0, 0.0, 1.0, 2.0, double.NaN).WithRequiresGrad();
        var y = x.Clamp(-1, 1);
        Assert.Equal("Clamp", y.OpName);
        var v = y.ToArray();
        Assert.Equal(new double[] { -1, -1, 0, 1, 1 }, v[..5]);
        Assert.True(double.IsNaN(v[5]));
        y.Backward(Tensor.From(1.0, 2.0, 3.0, 4.0, 5.0, 6.0));
        AssertValues([0, 2, 3, 4, 0, 0], x.Grad!, [6]);

        var w = Tensor.From(-2.0, 0.0, 2.0).WithRequiresGrad();
        var lower = w.Clamp(min: 0);
        AssertValues([0, 0, 2], lower, [3]);
        lower.Sum().Backward();
        AssertValues([0, 1, 1], w.Grad!, [3]);

        w.ZeroGrad();
        var upper = w.Clamp(max: 0);
        AssertValues([-2, 0, 0], upper, [3]);
        upper.Sum().Backward();
        AssertValues([1, 1, 0], w.Grad!, [3]);

        AssertValues([0.5, 0.5, 0.5], Tensor.From(-1.0, 0.5, 1.0).Clamp(0.5, 0.5), [3]);

        var f = Tensor.From(-2f, 0.25f, 2f).Clamp(-1, 1);
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal(new float[] { -1f, 0.25f, 1f }, f.ToArray<float>());
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void ComparisonsRejectIntegerMixedAndUnbroadcastableOperands()
    {
        var a = Tensor.From(1.0, 2.0);
        var l = Tensor.FromArray([1L, 2], 2);

        var e = Assert.Throws<ArgumentException>(() => a.Lt(l));
        AssertMessage(e, "Lt", "int64");
        e = Assert.Throws<ArgumentException>(() => l.Gt(0));
        AssertMessage(e, "Gt", "int64");

        e = Assert.Throws<ArgumentException>(() => a.Eq(Tensor.From(1f, 2f)));
        AssertMessage(e, "Eq", "float64", "float32");

        e = Assert.Throws<ArgumentException>(() => a.Ge(Tensor.From(1.0, 2.0, 3.0)));
        AssertMessage(e, "Ge", "[2]", "[3]");

        foreach (var (op, f) in new (string, Func<Tensor>)[]
        {
            ("Eq", () => a.Eq(Tensor.Zeros(3))),
            ("Ne", () => a.Ne(Tensor.Zeros(3))),
            ("Lt", () => a.Lt(Tensor.Zeros(3))),
            ("Le", () => a.Le(Tensor.Zeros(3))),
            ("Gt", () => a.Gt(Tensor.Zeros(3))),
            ("Ge", () => a.Ge(Tensor.Zeros(3))),
            ("Maximum", () => a.Maximum(Tensor.Zeros(3))),
            ("Minimum", () => a.Minimum(Tensor.Zeros(3))),
        })
        {
            var ex = Assert.Throws<ArgumentException>(f);
            AssertMessage(ex, op, "[2]", "[3]");
        }
    }

    [Fact]
    public void WhereRejectsBadOperands()
    {
        var c = Tensor.From(1.0, 0.0);
        var e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, Tensor.From(1.0, 2.0), Tensor.From(1f, 2f)));
        AssertMessage(e, "Where", "float64", "float32");

        e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, Tensor.FromArray([1L, 2], 2), Tensor.FromArray([1L, 2], 2)));
        AssertMessage(e, "Where", "int64");

        e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, Tensor.Zeros(3), Tensor.Zeros(3)));
        AssertMessage(e, "Where", "condition (shape [2])", "a (shape [3])", "b (shape [3])");

        e = Assert.Throws<ArgumentException>(() => Tensor.Where(Tensor.Zeros(4), Tensor.Zeros(4), Tensor.Zeros(2, 3)));
        AssertMessage(e, "Where", "[4]", "[2, 3]");

        e = Assert.Throws<ArgumentException>(() => Tensor.Where(c, Tensor.FromArray([1L, 2], 2), 0.0));
        AssertMessage(e, "Where", "int64");
    }

    [Fact]
    public void MaximumMinimumAndClampRejectBadOperands()
    {
        var a = Tensor.From(1.0, 2.0);
        var e = Assert.Throws<ArgumentException>(() => a.Maximum(Tensor.From(1f, 2f)));
        AssertMessage(e, "Maximum", "float64", "float32");
        e = Assert.Throws<ArgumentException>(() => Tensor.FromArray([1L], 1).Minimum(0));
        AssertMessage(e, "Minimum", "int64");

        e = Assert.Throws<ArgumentException>(() => a.Clamp());
        AssertMessage(e, "Clamp", "at least one", "[2]");
        e = Assert.Throws<ArgumentException>(() => a.Clamp(2, 1));
        AssertMessage(e, "Clamp", "min 2", "max 1");
        e = Assert.Throws<ArgumentException>(() => a.Clamp(double.NaN, 1));
        AssertMessage(e, "Clamp", "min is NaN");
        e = Assert.Throws<ArgumentException>(() => a.Clamp(max: double.NaN));
        AssertMessage(e, "Clamp", "max is NaN");
        e = Assert.Throws<ArgumentException>(() => Tensor.FromArray([1L], 1).Clamp(0, 1));
        AssertMessage(e, "Clamp", "int64");
    }
}
