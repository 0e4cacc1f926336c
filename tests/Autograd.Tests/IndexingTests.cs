namespace Autograd.Tests;

/// <summary>
/// The indexing family (Gather, ScatterAdd, IndexSelect, IndexAdd, Narrow, Slice, Concat, Stack, OneHot): values against
/// hand-computed results, gradients by hand where repeated indices accumulate, and every kind of bad input with its
/// message. Their gradient checks are rows of <see cref="OpTable"/>.
/// </summary>
public class IndexingTests
{
    private static Shape S(params int[] dims) => new(dims);

    private static Tensor I(params long[] values) => Tensor.FromArray(values, values.Length);

    private static Tensor I2(long[,] values) => Tensor.From(values);

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

    // ---------------------------------------------------------------- Gather and ScatterAdd values

    [Fact]
    public void GatherPicksAlongTheDimAsTorchGather()
    {
        // torch.gather(torch.tensor([[1, 2], [3, 4]]), 1, torch.tensor([[0, 0], [1, 0]])) = [[1, 1], [4, 3]]
        var t = M(new double[,] { { 1, 2 }, { 3, 4 } });
        AssertValues([1, 1, 4, 3], t.Gather(1, I2(new long[,] { { 0, 0 }, { 1, 0 } })), [2, 2]);
        AssertValues([1, 1, 4, 3], t.Gather(-1, I2(new long[,] { { 0, 0 }, { 1, 0 } })), [2, 2]);

        // dim 0: y[i, j] = x[index[i, j], j]
        var x = M(new double[,] { { 10, 11, 12 }, { 20, 21, 22 } });
        AssertValues([20, 11, 22, 10, 11, 12], x.Gather(0, I2(new long[,] { { 1, 0, 1 }, { 0, 0, 0 } })), [2, 3]);

        // The index may be longer than x along dim and shorter along the others.
        AssertValues([12, 10, 10, 11, 12], x.Gather(1, I2(new long[,] { { 2, 0, 0, 1, 2 } })), [1, 5]);
        AssertValues([20], x.Gather(0, I2(new long[,] { { 1 } })), [1, 1]);
    }

    [Fact]
    public void GatherWorksOnThreeDimsRankZeroAndEveryDType()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);
        var index = Tensor.FromArray([2L, 0, 1, 1, 0, 2, 2, 2], 2, 1, 4);
        var y = x.Gather(-2, index);

        // y[i, 0, k] = x[i, index[i, 0, k], k] = 12i + 4·index + k
        AssertValues([8, 1, 6, 7, 12, 21, 22, 23], y, [2, 1, 4]);

        var s = Tensor.Scalar(7.5);
        AssertValues([7.5], s.Gather(0, Tensor.FromArray([0L], [])), []);

        var f = Tensor.From(1f, 2f, 3f).Gather(0, I(2, 2, 0));
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal(new float[] { 3f, 3f, 1f }, f.ToArray<float>());

        var l = Tensor.FromArray([5L, 6, 7], 3).Gather(0, I(1, 0));
        Assert.Equal(new long[] { 6, 5 }, l.ToArray<long>());
        Assert.Null(l.GradFn);

        AssertValues([], x.Gather(1, Tensor.FromArray(Array.Empty<long>(), 2, 0, 4)), [2, 0, 4]);
    }

    [Fact]
    public void GatherGradientScatterAddsRepeatedIndices()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var y = x.Gather(0, I(0, 0, 2, 0));
        Assert.Equal("Gather", y.OpName);
        AssertValues([1, 1, 3, 1], y, [4]);
        y.Backward(Tensor.From(1.0, 2.0, 3.0, 4.0));
        AssertValues([7, 0, 3], x.Grad!, [3]);
    }

    [Fact]
    public void ScatterAddAddsSourceValuesAtTheIndexedPositions()
    {
        // torch.zeros(3, 4).scatter_add(0, [[0, 1, 2, 0], [2, 0, 0, 1]], [[1, 2, 3, 4], [5, 6, 7, 8]])
        var y = Tensor.Zeros(3, 4).ScatterAdd(0, I2(new long[,] { { 0, 1, 2, 0 }, { 2, 0, 0, 1 } }), M(new double[,] { { 1, 2, 3, 4 }, { 5, 6, 7, 8 } }));
        AssertValues([1, 6, 7, 4, 0, 2, 0, 8, 5, 0, 3, 0], y, [3, 4]);

        // Repeated positions accumulate, the base tensor is kept and not modified.
        var x = Tensor.From(10.0, 20.0, 30.0);
        var z = x.ScatterAdd(-1, I(2, 2, 0), Tensor.From(1.0, 2.0, 3.0));
        AssertValues([13, 20, 33], z, [3]);
        AssertValues([10, 20, 30], x, [3]);

        var l = Tensor.FromArray([1L, 1], 2).ScatterAdd(0, I(1, 1), Tensor.FromArray([5L, 6], 2));
        Assert.Equal(new long[] { 1, 12 }, l.ToArray<long>());
    }

    [Fact]
    public void ScatterAddGradientsAreTheIdentityAndAGather()
    {
        var x = Tensor.Zeros(2, 3).WithRequiresGrad();
        var src = Tensor.From(1.0, 2.0, 3.0, 4.0).Reshape(2, 2).Detach().WithRequiresGrad();
        var index = I2(new long[,] { { 2, 2 }, { 0, 1 } });
        var y = x.ScatterAdd(1, index, src);
        Assert.Equal("ScatterAdd", y.OpName);
        var g = M(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        y.Backward(g);
        AssertValues([1, 2, 3, 4, 5, 6], x.Grad!, [2, 3]);
        AssertValues([3, 3, 4, 5], src.Grad!, [2, 2]);
    }

    // ---------------------------------------------------------------- IndexSelect and IndexAdd values

    [Fact]
    public void IndexSelectTakesWholeSlicesInIndexOrder()
    {
        var x = Tensor.Arange(12).Reshape(3, 4);
        AssertValues([8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11], x.IndexSelect(0, I(2, 0, 2)), [3, 4]);
        AssertValues([3, 1, 7, 5, 11, 9], x.IndexSelect(-1, I(3, 1)), [3, 2]);
        AssertValues([4, 5, 6, 7], x.IndexSelect(0, Tensor.FromArray([1L], [])), [1, 4]);
        AssertValues([], x.IndexSelect(1, Tensor.FromArray(Array.Empty<long>(), 0)), [3, 0]);

        var cube = Tensor.Arange(24).Reshape(2, 3, 4);
        AssertValues([4, 5, 6, 7, 4, 5, 6, 7, 16, 17, 18, 19, 16, 17, 18, 19], cube.IndexSelect(1, I(1, 1)), [2, 2, 4]);

        var l = Tensor.FromArray([7L, 8, 9], 3).IndexSelect(0, I(2, 0));
        Assert.Equal(new long[] { 9, 7 }, l.ToArray<long>());
    }

    [Fact]
    public void IndexSelectGradientIndexAddsRepeatedIndices()
    {
        var x = Tensor.Arange(6).Reshape(2, 3).Detach().WithRequiresGrad();
        var y = x.IndexSelect(1, I(2, 0, 2));
        Assert.Equal("IndexSelect", y.OpName);
        y.Backward(M(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }));
        AssertValues([2, 0, 4, 5, 0, 10], x.Grad!, [2, 3]);
    }

    [Fact]
    public void IndexAddAddsSlicesAndAccumulatesRepeats()
    {
        var x = Tensor.Ones(3, 2);
        var y = x.IndexAdd(0, I(2, 0, 2), M(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }));
        AssertValues([4, 5, 1, 1, 7, 9], y, [3, 2]);
        AssertValues([1, 1, 1, 1, 1, 1], x, [3, 2]);

        var a = Tensor.Ones(2, 2).WithRequiresGrad();
        var s = M(new double[,] { { 1 }, { 2 } }).WithRequiresGrad();
        var z = a.IndexAdd(-1, I(1), s);
        Assert.Equal("IndexAdd", z.OpName);
        AssertValues([1, 2, 1, 3], z, [2, 2]);
        z.Backward(M(new double[,] { { 1, 2 }, { 3, 4 } }));
        AssertValues([1, 2, 3, 4], a.Grad!, [2, 2]);
        AssertValues([2, 4], s.Grad!, [2, 1]);
    }

    // ---------------------------------------------------------------- Narrow and Slice values

    [Fact]
    public void NarrowTakesAContiguousRange()
    {
        var v = Tensor.Arange(10);
        AssertValues([2, 3, 4], v.Narrow(0, 2, 3), [3]);
        AssertValues([7, 8], v.Narrow(0, -3, 2), [2]);
        AssertValues([], v.Narrow(-1, 10, 0), [0]);
        AssertValues([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], v.Narrow(0, -10, 10), [10]);

        var m = Tensor.Arange(12).Reshape(3, 4);
        AssertValues([1, 2, 5, 6, 9, 10], m.Narrow(1, 1, 2), [3, 2]);
        AssertValues([8, 9, 10, 11], m.Narrow(-2, 2, 1), [1, 4]);

        var x = Tensor.Arange(5).Detach().WithRequiresGrad();
        var y = x.Narrow(0, 1, 2);
        Assert.Equal("Narrow", y.OpName);
        y.Backward(Tensor.From(10.0, 20.0));
        AssertValues([0, 10, 20, 0, 0], x.Grad!, [5]);
    }

    [Fact]
    public void SliceFollowsPythonSlicing()
    {
        var v = Tensor.Arange(10);
        AssertValues([1, 4, 7], v.Slice(0, 1, 8, 3), [3]);         // v[1:8:3]
        AssertValues([7, 8, 9], v.Slice(0, -3, int.MaxValue), [3]); // v[-3:]
        AssertValues([0, 4, 8], v.Slice(0, -100, 100, 4), [3]);    // v[-100:100:4]: bounds clamped
        AssertValues([], v.Slice(0, 5, 2), [0]);                     // v[5:2]: empty
        AssertValues([], v.Slice(0, 20, 30), [0]);                   // v[20:30]: empty
        AssertValues([2, 3, 4, 5, 6], v.Slice(0, 2, -3), [5]);      // v[2:-3]
        AssertValues([9], v.Slice(0, 9, 10, 5), [1]);                // v[9:10:5]

        var m = Tensor.Arange(12).Reshape(3, 4);
        AssertValues([0, 2, 4, 6, 8, 10], m.Slice(1, 0, 4, 2), [3, 2]);  // m[:, ::2]
        AssertValues([4, 5, 6, 7], m.Slice(-2, 1, 2), [1, 4]);            // m[1:2]
        AssertValues([3, 11], m.Slice(0, 0, 3, 2).Slice(1, -1, 4), [2, 1]);

        var l = Tensor.FromArray([1L, 2, 3, 4], 4).Slice(0, 1, 4, 2);
        Assert.Equal(new long[] { 2, 4 }, l.ToArray<long>());
    }

    [Fact]
    public void SliceGradientPadsWithZeros()
    {
        var x = Tensor.Arange(12).Reshape(3, 4).Detach().WithRequiresGrad();
        var y = x.Slice(1, 1, 4, 2);
        Assert.Equal("Slice", y.OpName);
        AssertValues([1, 3, 5, 7, 9, 11], y, [3, 2]);
        y.Backward(M(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } }));
        AssertValues([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6], x.Grad!, [3, 4]);

        // The padding is itself an operator whose gradient slices again (second order).
        var g = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var padded = Indexing.SliceBackward(g, S(5), 0, 1, 3);
        Assert.Equal("SliceBackward", padded.OpName);
        AssertValues([0, 1, 0, 0, 2], padded, [5]);
        padded.Backward(Tensor.From(10.0, 20.0, 30.0, 40.0, 50.0));
        AssertValues([20, 50], g.Grad!, [2]);
    }

    // ---------------------------------------------------------------- Concat and Stack values

    [Fact]
    public void ConcatJoinsAlongAnExistingDim()
    {
        var a = M(new double[,] { { 1, 2 } });
        var b = M(new double[,] { { 3, 4 }, { 5, 6 } });
        AssertValues([1, 2, 3, 4, 5, 6], Tensor.Concat([a, b], 0), [3, 2]);
        AssertValues([1, 2, 3, 4, 5, 6], Tensor.Concat([a, b]), [3, 2]);

        var c = M(new double[,] { { 7 }, { 8 } });
        AssertValues([3, 4, 7, 5, 6, 8], Tensor.Concat([b, c], -1), [2, 3]);
        AssertValues([7, 3, 4, 7, 8, 5, 6, 8], Tensor.Concat([c, b, c], 1), [2, 4]);
        AssertValues([1, 2], Tensor.Concat([a], 0), [1, 2]);
        AssertValues([1, 2], Tensor.Concat([a, Tensor.Zeros(0, 2)], 0), [1, 2]);

        var cube = Tensor.Concat([Tensor.Arange(4).Reshape(2, 1, 2), Tensor.Arange(4, 8).Reshape(2, 1, 2)], 1);
        AssertValues([0, 1, 4, 5, 2, 3, 6, 7], cube, [2, 2, 2]);

        var l = Tensor.Concat([Tensor.FromArray([1L], 1), Tensor.FromArray([2L, 3], 2)], 0);
        Assert.Equal(DType.Int64, l.DType);
        Assert.Equal(new long[] { 1, 2, 3 }, l.ToArray<long>());
    }

    [Fact]
    public void ConcatGradientSplitsAndSkipsInputsThatNeedNone()
    {
        var a = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var constant = Tensor.From(3.0);
        var b = Tensor.From(4.0, 5.0, 6.0).WithRequiresGrad();
        var y = Tensor.Concat([a, constant, b], 0);
        Assert.Equal("Concat", y.OpName);
        y.Backward(Tensor.From(10.0, 20.0, 30.0, 40.0, 50.0, 60.0));
        AssertValues([10, 20], a.Grad!, [2]);
        AssertValues([40, 50, 60], b.Grad!, [3]);
        Assert.Null(constant.Grad);
    }

    [Fact]
    public void StackJoinsAlongANewDim()
    {
        var a = Tensor.From(1.0, 2.0);
        var b = Tensor.From(3.0, 4.0);
        AssertValues([1, 2, 3, 4], Tensor.Stack([a, b], 0), [2, 2]);
        AssertValues([1, 3, 2, 4], Tensor.Stack([a, b], 1), [2, 2]);
        AssertValues([1, 3, 2, 4], Tensor.Stack([a, b], -1), [2, 2]);
        AssertValues([1, 2, 3, 4], Tensor.Stack([a, b], -2), [2, 2]);
        AssertValues([5, 6, 7], Tensor.Stack([Tensor.Scalar(5), Tensor.Scalar(6), Tensor.Scalar(7)]), [3]);

        var m = Tensor.Arange(6).Reshape(2, 3);
        var n = Tensor.Arange(6, 12).Reshape(2, 3);
        AssertValues([0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11], Tensor.Stack([m, n], 1), [2, 2, 3]);
        AssertValues([0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11], Tensor.Stack([m, n], 2), [2, 3, 2]);

        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = Tensor.Stack([x, x * 3.0], 1);
        Assert.Equal("Stack", y.OpName);
        y.Backward(M(new double[,] { { 1, 2 }, { 3, 4 } }));
        AssertValues([7, 15], x.Grad!, [2]);
    }

    // ---------------------------------------------------------------- OneHot

    [Fact]
    public void OneHotEncodesIndices()
    {
        AssertValues([1, 0, 0, 0, 0, 1, 0, 1, 0], Tensor.OneHot(I(0, 2, 1), 3), [3, 3]);
        AssertValues([0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1], Tensor.OneHot(I2(new long[,] { { 1, 2 }, { 0, 3 } }), 4), [2, 2, 4]);
        AssertValues([0, 0, 1], Tensor.OneHot(I(2), -1), [1, 3]);
        AssertValues([0, 1], Tensor.OneHot(Tensor.FromArray([1L], []), 2), [2]);
        AssertValues([], Tensor.OneHot(Tensor.FromArray(Array.Empty<long>(), 0), 5), [0, 5]);

        var f = Tensor.OneHot(I(1), 2, DType.Float32);
        Assert.Equal(DType.Float32, f.DType);
        var l = Tensor.OneHot(I(1), 2, DType.Int64);
        Assert.Equal(new long[] { 0, 1 }, l.ToArray<long>());
        Assert.False(l.RequiresGrad);
    }

    // ---------------------------------------------------------------- recording

    [Fact]
    public void NothingIsRecordedWithoutGradOrUnderNoGrad()
    {
        var x = Tensor.Arange(6).Reshape(2, 3);
        Assert.Null(x.Gather(1, I2(new long[,] { { 0 }, { 2 } })).GradFn);
        Assert.Null(x.Slice(1, 0, 2).GradFn);
        Assert.Null(Tensor.Concat([x, x], 0).GradFn);

        var w = Tensor.Arange(6).Reshape(2, 3).Detach().WithRequiresGrad();
        using (Tensor.NoGrad())
        {
            Assert.False(w.Gather(1, I2(new long[,] { { 0 }, { 2 } })).RequiresGrad);
            Assert.False(w.IndexSelect(0, I(1)).RequiresGrad);
            Assert.False(w.Narrow(0, 0, 1).RequiresGrad);
            Assert.False(Tensor.Stack([w, w]).RequiresGrad);
        }
    }

    [Fact]
    public void CrossEntropyThroughGatherMatchesTheOneHotForm()
    {
        var logits = Tensor.RandN(S(4, 5), 3).WithRequiresGrad();
        var targets = I(1, 4, 0, 4);
        var viaGather = -logits.LogSoftmax(1).Gather(1, targets.Reshape(4, 1)).Mean();
        var viaOneHot = -(logits.LogSoftmax(1) * Tensor.OneHot(targets, 5)).Sum(1).Mean();
        Assert.Equal(viaOneHot.Item(), viaGather.Item(), 12);

        var g1 = Autodiff.Grad(viaGather, logits);
        var g2 = Autodiff.Grad(viaOneHot, logits);
        var d1 = g1.ToArray();
        var d2 = g2.ToArray();
        for (var i = 0; i < d1.Length; i++)
        {
            Assert.Equal(d2[i], d1[i], 12);
        }
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void GatherRejectsBadIndices()
    {
        var x = Tensor.Arange(6).Reshape(2, 3);

        var e = Assert.Throws<ArgumentException>(() => x.Gather(1, Tensor.Zeros(2, 3)));
        AssertMessage(e, "Gather", "int64", "float64", "[2, 3]");

        e = Assert.Throws<ArgumentException>(() => x.Gather(1, I(0, 1)));
        AssertMessage(e, "Gather", "rank 1", "[2]", "rank 2", "[2, 3]");

        e = Assert.Throws<ArgumentException>(() => x.Gather(1, Tensor.FromArray(new long[6], 3, 2)));
        AssertMessage(e, "Gather", "[3, 2]", "[2, 3]", "dim 0", "3 > 2");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(1, I2(new long[,] { { 0, 1 }, { 3, 0 } })));
        AssertMessage(r, "Gather", "index 3", "position [1, 0]", "dim 1", "size 3", "[0, 2]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(-2, I2(new long[,] { { 0, -1, 0 } })));
        AssertMessage(r, "Gather", "index -1", "position [0, 1]", "dim 0", "size 2");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(2, I2(new long[,] { { 0 } })));
        AssertMessage(r, "Gather", "dim 2", "rank 2", "[2, 3]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Gather(-3, I2(new long[,] { { 0 } })));
        AssertMessage(r, "Gather", "dim -3");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Scalar(1).Gather(0, Tensor.FromArray([1L], [])));
        AssertMessage(r, "Gather", "index 1", "size 1");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Zeros(2, 0).Gather(1, Tensor.FromArray([0L], 1, 1)));
        AssertMessage(r, "Gather", "index 0", "size 0", "empty");
    }

    [Fact]
    public void ScatterAddRejectsBadInput()
    {
        var x = Tensor.Zeros(2, 3);

        var e = Assert.Throws<ArgumentException>(() => x.ScatterAdd(1, I2(new long[,] { { 0, 1 } }), Tensor.Ones(1, 3)));
        AssertMessage(e, "ScatterAdd", "src", "[1, 3]", "[1, 2]");

        e = Assert.Throws<ArgumentException>(() => x.ScatterAdd(1, I2(new long[,] { { 0 } }), Tensor.Ones(S(1, 1), DType.Float32)));
        AssertMessage(e, "ScatterAdd", "float64", "float32");

        e = Assert.Throws<ArgumentException>(() => x.ScatterAdd(1, Tensor.Zeros(1, 1), Tensor.Ones(1, 1)));
        AssertMessage(e, "ScatterAdd", "int64", "float64");

        e = Assert.Throws<ArgumentException>(() => x.ScatterAdd(0, Tensor.FromArray(new long[4], 1, 4), Tensor.Ones(1, 4)));
        AssertMessage(e, "ScatterAdd", "[1, 4]", "[2, 3]", "dim 1");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => x.ScatterAdd(0, I2(new long[,] { { 0, 2 } }), Tensor.Ones(1, 2)));
        AssertMessage(r, "ScatterAdd", "index 2", "position [0, 1]", "dim 0", "size 2");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.ScatterAdd(-3, I2(new long[,] { { 0 } }), Tensor.Ones(1, 1)));
        AssertMessage(r, "ScatterAdd", "dim -3");
    }

    [Fact]
    public void IndexSelectAndIndexAddRejectBadInput()
    {
        var x = Tensor.Arange(12).Reshape(3, 4);

        var e = Assert.Throws<ArgumentException>(() => x.IndexSelect(0, Tensor.From(0.0, 1.0)));
        AssertMessage(e, "IndexSelect", "int64", "float64");

        e = Assert.Throws<ArgumentException>(() => x.IndexSelect(0, I2(new long[,] { { 0, 1 } })));
        AssertMessage(e, "IndexSelect", "one-dimensional", "rank 2", "[1, 2]");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(1, I(0, 4)));
        AssertMessage(r, "IndexSelect", "index 4", "position [1]", "dim 1", "size 4", "[0, 3]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, I(-1)));
        AssertMessage(r, "IndexSelect", "index -1", "dim 0", "size 3");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(2, I(0)));
        AssertMessage(r, "IndexSelect", "dim 2", "[3, 4]");

        e = Assert.Throws<ArgumentException>(() => Tensor.Scalar(1).IndexSelect(0, I(0)));
        AssertMessage(e, "IndexSelect", "rank-0");

        e = Assert.Throws<ArgumentException>(() => x.IndexAdd(0, I(0, 1), Tensor.Ones(3, 4)));
        AssertMessage(e, "IndexAdd", "source", "[3, 4]", "[2, 4]", "index length 2");

        e = Assert.Throws<ArgumentException>(() => x.IndexAdd(0, I(0), Tensor.Ones(S(1, 4), DType.Float32)));
        AssertMessage(e, "IndexAdd", "float64", "float32");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexAdd(1, I(7), Tensor.Ones(3, 1)));
        AssertMessage(r, "IndexAdd", "index 7", "dim 1", "size 4");
    }

    [Fact]
    public void NarrowAndSliceRejectBadRanges()
    {
        var x = Tensor.Arange(12).Reshape(3, 4);

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(1, 5, 0));
        AssertMessage(r, "Narrow", "start 5", "dim 1", "size 4", "[-4, 4]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(1, -5, 1));
        AssertMessage(r, "Narrow", "start -5", "dim 1", "size 4");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(0, 2, 2));
        AssertMessage(r, "Narrow", "length 2", "start 2", "dim 0", "size 3", "[0, 1]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(0, 0, -1));
        AssertMessage(r, "Narrow", "length -1");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(0, 1, int.MaxValue));
        AssertMessage(r, "Narrow", $"length {int.MaxValue}");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(-3, 0, 1));
        AssertMessage(r, "Narrow", "dim -3");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Slice(1, 0, 4, 0));
        AssertMessage(r, "Slice", "step", "positive", "got 0");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Slice(0, 3, 0, -1));
        AssertMessage(r, "Slice", "got -1");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => x.Slice(2, 0, 1));
        AssertMessage(r, "Slice", "dim 2", "[3, 4]");

        var e = Assert.Throws<ArgumentException>(() => Tensor.Scalar(1).Slice(0, 0, 1));
        AssertMessage(e, "Slice", "rank-0");
        e = Assert.Throws<ArgumentException>(() => Tensor.Scalar(1).Narrow(0, 0, 1));
        AssertMessage(e, "Narrow", "rank-0");
    }

    [Fact]
    public void ConcatRejectsBadLists()
    {
        var a = Tensor.Zeros(2, 3);

        var e = Assert.Throws<ArgumentException>(() => Tensor.Concat([], 0));
        AssertMessage(e, "Concat", "empty");

        var n = Assert.Throws<ArgumentNullException>(() => Tensor.Concat(null!, 0));
        AssertMessage(n, "Concat", "null");

        n = Assert.Throws<ArgumentNullException>(() => Tensor.Concat([a, null!], 0));
        AssertMessage(n, "Concat", "tensor 1", "null");

        e = Assert.Throws<ArgumentException>(() => Tensor.Concat([a, a, Tensor.Zeros(S(2, 3), DType.Float32)], 0));
        AssertMessage(e, "Concat", "tensor 2", "float32", "tensor 0", "float64", "[2, 3]");

        e = Assert.Throws<ArgumentException>(() => Tensor.Concat([a, Tensor.Zeros(2, 3), Tensor.Zeros(3, 4)], 0));
        AssertMessage(e, "Concat", "tensor 2", "[3, 4]", "tensor 0", "[2, 3]", "dim 0", "dim 1");

        e = Assert.Throws<ArgumentException>(() => Tensor.Concat([a, Tensor.Zeros(3)], 0));
        AssertMessage(e, "Concat", "tensor 1", "[3]", "rank 1", "[2, 3]", "rank 2");

        e = Assert.Throws<ArgumentException>(() => Tensor.Concat([Tensor.Scalar(1), Tensor.Scalar(2)], 0));
        AssertMessage(e, "Concat", "tensor 0", "rank-0", "Stack");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Concat([a, a], 2));
        AssertMessage(r, "Concat", "dim 2", "[2, 3]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Concat([a, a], -3));
        AssertMessage(r, "Concat", "dim -3");
    }

    [Fact]
    public void StackRejectsBadLists()
    {
        var a = Tensor.Zeros(2, 3);

        var e = Assert.Throws<ArgumentException>(() => Tensor.Stack([], 0));
        AssertMessage(e, "Stack", "empty");

        e = Assert.Throws<ArgumentException>(() => Tensor.Stack([a, Tensor.Zeros(2, 4)], 0));
        AssertMessage(e, "Stack", "tensor 1", "[2, 4]", "tensor 0", "[2, 3]", "same shape");

        e = Assert.Throws<ArgumentException>(() => Tensor.Stack([a, Tensor.Zeros(S(2, 3), DType.Float32)], 0));
        AssertMessage(e, "Stack", "tensor 1", "float32", "float64");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Stack([a, a], 3));
        AssertMessage(r, "Stack", "dim 3", "rank 2", "[-3, 2]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Stack([a, a], -4));
        AssertMessage(r, "Stack", "dim -4");
    }

    [Fact]
    public void OneHotRejectsBadInput()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.OneHot(Tensor.From(0.0, 1.0), 2));
        AssertMessage(e, "OneHot", "int64", "float64");

        var r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.OneHot(I(0, 3), 3));
        AssertMessage(r, "OneHot", "index 3", "position [1]", "3 classes", "[0, 2]");

        r = Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.OneHot(I2(new long[,] { { 0 }, { -1 } }), 3));
        AssertMessage(r, "OneHot", "index -1", "position [1, 0]");

        e = Assert.Throws<ArgumentException>(() => Tensor.OneHot(I(0), 0));
        AssertMessage(e, "OneHot", "numClasses", "got 0");

        e = Assert.Throws<ArgumentException>(() => Tensor.OneHot(Tensor.FromArray(Array.Empty<long>(), 0), -1));
        AssertMessage(e, "OneHot", "infer", "empty");
    }
}
