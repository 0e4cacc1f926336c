using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tests;

/// <summary>
/// The Tensor type: layout, dtypes, factories, members, printing, zero-length dims, ArgMax/ArgMin and MatMul values
/// (checked against MathNet.Numerics).
/// </summary>
public class TensorTests
{
    // ---------------------------------------------------------------- layout and dtypes

    [Fact]
    public void StorageIsRowMajorAndContiguous()
    {
        var x = Tensor.From(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        Assert.Equal(new[] { 2, 3 }, x.Shape.ToArray());
        Assert.Equal(new[] { 3, 1 }, x.Shape.Strides.ToArray());
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }, x.ToArray());
        Assert.Equal(6.0, x[1, 2]);
        Assert.Equal(2.0, x[0, 1]);

        var t = x.Transpose(0, 1);
        Assert.Equal(new[] { 3, 2 }, t.Shape.ToArray());
        Assert.Equal(new double[] { 1, 4, 2, 5, 3, 6 }, t.ToArray());

        var cube = Tensor.Arange(24).Reshape(2, 3, 4);
        Assert.Equal(new[] { 12, 4, 1 }, cube.Shape.Strides.ToArray());
        Assert.Equal(23.0, cube[1, 2, 3]);
        Assert.Equal(13.0, cube[1, 0, 1]);
    }

    [Fact]
    public void Float64IsTheDefaultAndFloat32IsSupported()
    {
        Assert.Equal(DType.Float64, Tensor.Zeros(2).DType);
        Assert.Equal(DType.Float64, Tensor.From(1.0, 2.0).DType);
        Assert.Equal(DType.Float64, Tensor.Arange(3).DType);
        Assert.Equal(DType.Float64, Tensor.Scalar(1).DType);

        var f = Tensor.From(1f, 2f, 3f);
        Assert.Equal(DType.Float32, f.DType);
        var y = (f * f).Sum();
        Assert.Equal(DType.Float32, y.DType);
        Assert.Equal(14.0, y.Item());
        Assert.Equal(new float[] { 1f, 2f, 3f }, f.ToArray<float>());
        Assert.Throws<InvalidOperationException>(() => f.ToArray<double>());
    }

    [Fact]
    public void MixedDTypesThrowNamingBothTypes()
    {
        var a = Tensor.From(1.0, 2.0);
        var b = Tensor.From(1f, 2f);
        foreach (var (op, f) in new (string, Func<Tensor>)[]
        {
            ("Add", () => a + b),
            ("Sub", () => a - b),
            ("Mul", () => a * b),
            ("Div", () => b / a),
            ("MatMul", () => a.MatMul(b)),
        })
        {
            var ex = Assert.Throws<ArgumentException>(f);
            Assert.Contains(op, ex.Message);
            Assert.Contains("float64", ex.Message);
            Assert.Contains("float32", ex.Message);
        }
    }

    [Fact]
    public void ToConvertsAndTheGradientComesBackInTheSourceDType()
    {
        var x = Tensor.From(1.5, -2.0, 3.0).WithRequiresGrad();
        var y = x.To(DType.Float32);
        Assert.Equal(DType.Float32, y.DType);
        Assert.Equal("To", y.OpName);
        Assert.Equal(new float[] { 1.5f, -2f, 3f }, y.ToArray<float>());

        (y * y).Sum().Backward();
        Assert.NotNull(x.Grad);
        Assert.Equal(DType.Float64, x.Grad!.DType);
        Assert.Equal(new double[] { 3, -4, 6 }, x.Grad.ToArray());

        // float32 -> float64 -> float32 as well.
        var f = Tensor.From(2f, 4f).WithRequiresGrad();
        f.To(DType.Float64).Pow(2).Sum().Backward();
        Assert.Equal(DType.Float32, f.Grad!.DType);
        Assert.Equal(new float[] { 4f, 8f }, f.Grad.ToArray<float>());

        // Same dtype: no copy, no node.
        Assert.Same(x, x.To(DType.Float64));

        // To an integer type: values truncate and nothing is recorded.
        var i = x.To(DType.Int64);
        Assert.Equal(DType.Int64, i.DType);
        Assert.Equal(new long[] { 1, -2, 3 }, i.ToArray<long>());
        Assert.False(i.RequiresGrad);
        Assert.True(i.IsLeaf);
    }

    // ---------------------------------------------------------------- factories

    [Fact]
    public void FromArrayUsesTheGivenShapeAndCopiesTheData()
    {
        var data = new double[] { 1, 2, 3, 4, 5, 6 };
        var x = Tensor.FromArray(data, 3, 2);
        Assert.Equal(new[] { 3, 2 }, x.Shape.ToArray());
        data[0] = 100;
        Assert.Equal(1.0, x[0, 0]);

        var f = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 2, 1, 2);
        Assert.Equal(DType.Float32, f.DType);
        Assert.Equal(3, f.Rank);

        var ex = Assert.Throws<ArgumentException>(() => Tensor.FromArray(new double[] { 1, 2, 3 }, 2, 2));
        Assert.Contains("FromArray", ex.Message);
        Assert.Contains("[2, 2]", ex.Message);
        Assert.Contains("3", ex.Message);
    }

    [Fact]
    public void FromNestedArrays()
    {
        var m = Tensor.From(new double[,] { { 1, 2 }, { 3, 4 }, { 5, 6 } });
        Assert.Equal(new[] { 3, 2 }, m.Shape.ToArray());
        Assert.Equal(DType.Float64, m.DType);
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }, m.ToArray());

        var j = Tensor.From(new[] { new double[] { 1, 2, 3 }, new double[] { 4, 5, 6 } });
        Assert.Equal(new[] { 2, 3 }, j.Shape.ToArray());
        Assert.Equal(new double[] { 1, 2, 3, 4, 5, 6 }, j.ToArray());

        var c = Tensor.From(new float[,,] { { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } });
        Assert.Equal(DType.Float32, c.DType);
        Assert.Equal(new[] { 2, 2, 2 }, c.Shape.ToArray());
        Assert.Equal(7.0, c[1, 1, 0]);

        var l = Tensor.From(new long[,] { { 1, 2 } });
        Assert.Equal(DType.Int64, l.DType);

        var asF32 = Tensor.From(new double[,] { { 1, 2 } }, DType.Float32);
        Assert.Equal(DType.Float32, asF32.DType);

        var s = Tensor.Scalar(2.5);
        Assert.Equal(0, s.Rank);
        Assert.Equal(1, s.ElementCount);
        Assert.Equal(2.5, s.Item());
        Assert.Equal(DType.Float32, Tensor.Scalar(1, DType.Float32).DType);

        var ragged = Assert.Throws<ArgumentException>(() => Tensor.From(new[] { new double[] { 1, 2 }, new double[] { 3 } }));
        Assert.Contains("ragged", ragged.Message);
    }

    [Fact]
    public void ConstantFactories()
    {
        var z = Tensor.Zeros(2, 3);
        Assert.Equal(new[] { 2, 3 }, z.Shape.ToArray());
        Assert.All(z.ToArray(), v => Assert.Equal(0.0, v));

        var o = Tensor.Ones(new Shape(4), DType.Float32);
        Assert.Equal(DType.Float32, o.DType);
        Assert.Equal(new float[] { 1, 1, 1, 1 }, o.ToArray<float>());

        var f = Tensor.Full(new Shape(2, 2), -1.5);
        Assert.Equal(new double[] { -1.5, -1.5, -1.5, -1.5 }, f.ToArray());

        Assert.Equal(new double[] { 0, 1, 2, 3, 4 }, Tensor.Arange(5).ToArray());
        Assert.Equal(new double[] { 2, 2.5, 3, 3.5 }, Tensor.Arange(2, 4, 0.5).ToArray());
        Assert.Equal(new double[] { 5, 4, 3, 2, 1 }, Tensor.Arange(5, 0, -1).ToArray());
        Assert.Equal(10, Tensor.Arange(0, 1, 0.1).ElementCount);
        Assert.Equal(0, Tensor.Arange(3, 3).ElementCount);

        var zeroStep = Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 1, 0));
        Assert.Contains("Arange", zeroStep.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 5, -1));
    }

    [Fact]
    public void RandomFactoriesAreReproducibleFromTheSeed()
    {
        var a = Tensor.RandN(new Shape(100), seed: 42);
        var b = Tensor.RandN(new Shape(100), seed: 42);
        var c = Tensor.RandN(new Shape(100), seed: 43);
        Assert.Equal(a.ToArray(), b.ToArray());
        Assert.NotEqual(a.ToArray(), c.ToArray());

        var u1 = Tensor.Rand(new Shape(100), seed: 7);
        var u2 = Tensor.Rand(new Shape(100), seed: 7);
        var u3 = Tensor.Rand(new Shape(100), seed: 8);
        Assert.Equal(u1.ToArray(), u2.ToArray());
        Assert.NotEqual(u1.ToArray(), u3.ToArray());

        Assert.Equal(DType.Float32, Tensor.RandN(new Shape(3), 1, DType.Float32).DType);
        Assert.Throws<ArgumentException>(() => Tensor.RandN(new Shape(3), 1, DType.Int64));
    }

    [Fact]
    public void RandomFactoriesHaveTheRightMoments()
    {
        const int n = 200_000;
        var normal = Tensor.RandN(new Shape(n), seed: 1).ToArray();
        var (mean, std) = Moments(normal);
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(std, 0.99, 1.01);

        var shifted = Tensor.RandN(new Shape(n), seed: 2, mean: 3.0, std: 0.5).ToArray();
        (mean, std) = Moments(shifted);
        Assert.InRange(mean, 2.99, 3.01);
        Assert.InRange(std, 0.495, 0.505);

        var uniform = Tensor.Rand(new Shape(n), seed: 3, low: -2, high: 4).ToArray();
        Assert.All(uniform, v => Assert.InRange(v, -2.0, 4.0));
        Assert.True(uniform.Max() < 4.0);
        (mean, std) = Moments(uniform);
        Assert.InRange(mean, 0.98, 1.02);
        Assert.InRange(std, (6 / Math.Sqrt(12)) - 0.01, (6 / Math.Sqrt(12)) + 0.01);

        static (double Mean, double Std) Moments(double[] v)
        {
            var m = v.Average();
            return (m, Math.Sqrt(v.Sum(e => (e - m) * (e - m)) / v.Length));
        }
    }

    // ---------------------------------------------------------------- members

    [Fact]
    public void MembersDescribeTheTensor()
    {
        var x = Tensor.Zeros(2, 3, 4);
        Assert.Equal(new Shape(2, 3, 4), x.Shape);
        Assert.Equal("[2, 3, 4]", x.Shape.ToString());
        Assert.Equal(3, x.Rank);
        Assert.Equal(24, x.ElementCount);
        Assert.Equal(DType.Float64, x.DType);
        Assert.False(x.RequiresGrad);
        Assert.Null(x.Grad);
        Assert.True(x.IsLeaf);
        Assert.Null(x.OpName);
        Assert.Null(x.GradFn);

        x.RequiresGrad = true;
        Assert.True(x.RequiresGrad);
        Assert.True(x.IsLeaf);

        var y = x.Exp();
        Assert.True(y.RequiresGrad);
        Assert.False(y.IsLeaf);
        Assert.Equal("Exp", y.OpName);
        Assert.NotNull(y.GradFn);
        Assert.Null(y.Grad);

        var s = Tensor.Scalar(1);
        Assert.Equal(0, s.Rank);
        Assert.Equal("[]", s.Shape.ToString());

        var ex = Assert.Throws<InvalidOperationException>(() => Tensor.From(new long[,] { { 1 } }).RequiresGrad = true);
        Assert.Contains("int64", ex.Message);
    }

    [Fact]
    public void IndexerAcceptsNegativeIndicesAndChecksRange()
    {
        var x = Tensor.Arange(6).Reshape(2, 3);
        Assert.Equal(5.0, x[-1, -1]);
        Assert.Equal(3.0, x[-1, 0]);
        Assert.Equal(1.0, x[0, -2]);
        Assert.Equal(4.0, x[1, 1]);

        var outOfRange = Assert.Throws<ArgumentOutOfRangeException>(() => x[2, 0]);
        Assert.Contains("index 2", outOfRange.Message);
        Assert.Contains("[2, 3]", outOfRange.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => x[0, -4]);
        var wrongCount = Assert.Throws<ArgumentException>(() => x[1]);
        Assert.Contains("rank 2", wrongCount.Message);
    }

    [Fact]
    public void ItemNeedsExactlyOneElement()
    {
        Assert.Equal(3.0, Tensor.Scalar(3).Item());
        Assert.Equal(4.0, Tensor.FromArray(new double[] { 4 }, 1, 1).Item());
        var ex = Assert.Throws<InvalidOperationException>(() => Tensor.From(1.0, 2.0).Item());
        Assert.Contains("[2]", ex.Message);
        Assert.Contains("Item", ex.Message);
        Assert.Throws<InvalidOperationException>(() => Tensor.Zeros(0).Item());
    }

    // ---------------------------------------------------------------- printing

    [Fact]
    public void ToStringPrintsAMatrixLikeNumPy()
    {
        var x = Tensor.From(new double[,] { { 1, 2 }, { 3, 4 } });
        Assert.Equal("[[1.0000 2.0000]\n [3.0000 4.0000]]", x.ToString());

        var y = Tensor.From(new double[,] { { -1.5, 2 }, { 3, 10 } });
        Assert.Equal("[[-1.5000  2.0000]\n [ 3.0000 10.0000]]", y.ToString());
    }

    [Fact]
    public void ToStringPrintsAVectorAndAScalar()
    {
        Assert.Equal("[ 1.0000  2.5000 -3.0000]", Tensor.From(1.0, 2.5, -3.0).ToString());
        Assert.Equal("3.1416", Tensor.Scalar(Math.PI).ToString());
        Assert.Equal("[1.0000 2.0000] dtype=float32", Tensor.From(1f, 2f).ToString());
        Assert.Equal("[0 2 1] dtype=int64", Tensor.FromArray(new long[] { 0, 2, 1 }, 3).ToString());
    }

    [Fact]
    public void ToStringShowsTapeInformation()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        Assert.Equal("[1.0000 2.0000] requiresGrad=true", x.ToString());
        Assert.Equal("[2.0000 4.0000] gradFn=Mul", (x * 2.0).ToString());
    }

    [Fact]
    public void PrintPrecisionIsSettable()
    {
        var x = Tensor.From(1.0, 2.5, -3.0);
        Assert.Equal("[ 1.00  2.50 -3.00]", x.ToString(2));
        Assert.Equal("[ 1  2 -3]", Tensor.From(1.0, 2.0, -3.0).ToString(0));

        var saved = Tensor.PrintPrecision;
        try
        {
            Tensor.PrintPrecision = 1;
            Assert.Equal("[ 1.0  2.5 -3.0]", x.ToString());
            Assert.Equal("3.1", Tensor.Scalar(Math.PI).ToString());
        }
        finally
        {
            Tensor.PrintPrecision = saved;
        }

        Assert.Equal("[ 1.0000  2.5000 -3.0000]", x.ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.PrintPrecision = -1);
    }

    [Fact]
    public void ToStringPrintsNanAndInfinity()
    {
        var x = Tensor.From(1.0, double.NaN, double.PositiveInfinity, double.NegativeInfinity);
        Assert.Equal("[1.0000    nan    inf   -inf]", x.ToString());
        Assert.Equal("nan", Tensor.Scalar(double.NaN).ToString());
    }

    [Fact]
    public void ToStringSummarisesLargeTensors()
    {
        var v = Tensor.Arange(2000);
        Assert.Equal("[   0.0000    1.0000    2.0000 ... 1997.0000 1998.0000 1999.0000]", v.ToString());

        var m = Tensor.Arange(10_000).Reshape(100, 100);
        var lines = m.ToString(0).Split('\n');
        Assert.Equal(7, lines.Length);
        Assert.Equal("[[   0    1    2 ...   97   98   99]", lines[0]);
        Assert.Equal(" ...", lines[3]);
        Assert.Equal(" [9900 9901 9902 ... 9997 9998 9999]]", lines[6]);

        // Small tensors are printed in full.
        Assert.DoesNotContain("...", Tensor.Arange(1000).ToString());
    }

    // ---------------------------------------------------------------- zero-length dims

    [Fact]
    public void ZeroLengthDimsWorkForElementwiseOps()
    {
        var a = Tensor.Zeros(0, 3).WithRequiresGrad();
        var b = Tensor.Ones(3).WithRequiresGrad();
        var y = ((a + b) * 2.0).Exp();
        Assert.Equal(new[] { 0, 3 }, y.Shape.ToArray());
        Assert.Equal(0, y.ElementCount);
        Assert.Empty(y.ToArray());

        y.Sum().Backward();
        Assert.Equal(new[] { 0, 3 }, a.Grad!.Shape.ToArray());
        Assert.Equal(new double[] { 0, 0, 0 }, b.Grad!.ToArray());
        Assert.Equal("[] shape=[0, 3]", Tensor.Zeros(0, 3).ToString());

        var r = Tensor.Zeros(2, 0).Reshape(0, 5);
        Assert.Equal(new[] { 0, 5 }, r.Shape.ToArray());
        Assert.Equal(new[] { 0, 2 }, Tensor.Zeros(2, 0).Transpose(0, 1).Shape.ToArray());
    }

    [Fact]
    public void ZeroLengthReductions()
    {
        var e = Tensor.Zeros(0, 3);
        Assert.Equal(0.0, e.Sum().Item());
        Assert.Equal(new double[] { 0, 0, 0 }, e.Sum(0).ToArray());
        Assert.Equal(new[] { 0 }, e.Sum(1).Shape.ToArray());
        Assert.True(double.IsNaN(e.Mean().Item()));
        Assert.All(e.Mean(0).ToArray(), v => Assert.True(double.IsNaN(v)));
        Assert.Equal(0.0, Tensor.Zeros(0).Sum().Item());
        Assert.True(double.IsNaN(Tensor.Zeros(0).Mean().Item()));

        // Reducing over the non-empty dim of an empty tensor is fine (the result is empty).
        Assert.Equal(new[] { 0 }, e.Max(1).Shape.ToArray());

        var max = Assert.Throws<ArgumentException>(() => e.Max(0));
        Assert.Contains("Max", max.Message);
        Assert.Contains("size 0", max.Message);
        Assert.Contains("[0, 3]", max.Message);
        Assert.Throws<ArgumentException>(() => e.Max());
        Assert.Throws<ArgumentException>(() => e.Min(0));
        Assert.Throws<ArgumentException>(() => e.ArgMax(0));
    }

    // ---------------------------------------------------------------- ArgMax / ArgMin

    [Fact]
    public void ArgMaxAndArgMinAlongADim()
    {
        var x = Tensor.From(new double[,] { { 1, 5, 3 }, { 7, 2, 7 } });

        var am1 = x.ArgMax(1);
        Assert.Equal(DType.Int64, am1.DType);
        Assert.Equal(new long[] { 1, 0 }, am1.ToArray<long>());
        Assert.Equal(new long[] { 1, 0, 1 }, x.ArgMax(0).ToArray<long>());
        Assert.Equal(new long[] { 0, 1 }, x.ArgMin(1).ToArray<long>());
        Assert.Equal(new long[] { 0, 1, 0 }, x.ArgMin(-2).ToArray<long>());
        Assert.Equal(new[] { 2, 1 }, x.ArgMax(1, keepDim: true).Shape.ToArray());
        Assert.False(am1.RequiresGrad);

        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => x.ArgMax(2));
        Assert.Contains("ArgMax", ex.Message);
        Assert.Contains("rank 2", ex.Message);
    }

    [Fact]
    public void ArgMaxAndArgMinOverAllElementsGiveTheFirstIndexOnTies()
    {
        var x = Tensor.From(new double[,] { { 1, 9, 3 }, { 9, -4, -4 } });
        var am = x.ArgMax();
        Assert.Equal(DType.Int64, am.DType);
        Assert.Equal(0, am.Rank);
        Assert.Equal(1.0, am.Item());
        Assert.Equal(4.0, x.ArgMin().Item());

        Assert.Equal(0.0, Tensor.From(2.0, 2.0, 2.0).ArgMax().Item());
        Assert.Equal(0.0, Tensor.From(2.0, 2.0, 2.0).ArgMin().Item());
        Assert.Equal(new long[] { 0, 0 }, Tensor.Ones(2, 3).ArgMax(1).ToArray<long>());
        Assert.Equal(2.0, Tensor.From(0f, 1f, 5f, 5f).ArgMax().Item());
    }

    // ---------------------------------------------------------------- MatMul against MathNet

    private static Matrix<double> Mat(Tensor t, int batch = 0)
    {
        var r = t.Shape[-2];
        var c = t.Shape[-1];
        var data = t.ToArray().AsSpan(batch * r * c, r * c).ToArray();
        return Matrix<double>.Build.Dense(r, c, (i, j) => data[(i * c) + j]);
    }

    private static void AssertClose(double[] expected, double[] actual, double tol = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    private static double[] RowMajor(Matrix<double> m)
    {
        var r = new double[m.RowCount * m.ColumnCount];
        for (var i = 0; i < m.RowCount; i++)
        {
            for (var j = 0; j < m.ColumnCount; j++)
            {
                r[(i * m.ColumnCount) + j] = m[i, j];
            }
        }

        return r;
    }

    [Fact]
    public void MatMulOfMatricesMatchesMathNet()
    {
        var a = Tensor.RandN(new Shape(3, 4), seed: 10);
        var b = Tensor.RandN(new Shape(4, 5), seed: 11);
        var y = a.MatMul(b);
        Assert.Equal(new[] { 3, 5 }, y.Shape.ToArray());
        AssertClose(RowMajor(Mat(a) * Mat(b)), y.ToArray());

        var af = a.To(DType.Float32);
        var bf = b.To(DType.Float32);
        var yf = af.MatMul(bf);
        Assert.Equal(DType.Float32, yf.DType);
        AssertClose(RowMajor(Mat(a) * Mat(b)), yf.ToArray(), 1e-5);
    }

    [Fact]
    public void BatchedMatMulBroadcastsBatchDimsAndMatchesMathNet()
    {
        var a = Tensor.RandN(new Shape(2, 1, 3, 4), seed: 12);
        var b = Tensor.RandN(new Shape(5, 4, 2), seed: 13);
        var y = a.MatMul(b);
        Assert.Equal(new[] { 2, 5, 3, 2 }, y.Shape.ToArray());
        var yv = y.ToArray();
        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 5; j++)
            {
                var expected = RowMajor(Mat(a, i) * Mat(b, j));
                AssertClose(expected, yv.AsSpan(((i * 5) + j) * 6, 6).ToArray());
            }
        }

        // A plain matrix against a batch.
        var m = Tensor.RandN(new Shape(3, 4), seed: 14);
        var z = m.MatMul(b);
        Assert.Equal(new[] { 5, 3, 2 }, z.Shape.ToArray());
        for (var j = 0; j < 5; j++)
        {
            AssertClose(RowMajor(Mat(m) * Mat(b, j)), z.ToArray().AsSpan(j * 6, 6).ToArray());
        }
    }

    [Fact]
    public void MatMulWithVectorsMatchesMathNet()
    {
        var m = Tensor.RandN(new Shape(3, 4), seed: 15);
        var v4 = Tensor.RandN(new Shape(4), seed: 16);
        var v3 = Tensor.RandN(new Shape(3), seed: 17);
        var mv = Vector<double>.Build.DenseOfArray(v4.ToArray());
        var mv3 = Vector<double>.Build.DenseOfArray(v3.ToArray());

        var matVec = m.MatMul(v4);
        Assert.Equal(new[] { 3 }, matVec.Shape.ToArray());
        AssertClose((Mat(m) * mv).ToArray(), matVec.ToArray());

        var vecMat = v3.MatMul(m);
        Assert.Equal(new[] { 4 }, vecMat.Shape.ToArray());
        AssertClose((mv3 * Mat(m)).ToArray(), vecMat.ToArray());

        var dot = v4.MatMul(v4);
        Assert.Equal(0, dot.Rank);
        Assert.Equal(mv.DotProduct(mv), dot.Item(), 12);

        var batch = Tensor.RandN(new Shape(2, 3, 4), seed: 18);
        var bv = batch.MatMul(v4);
        Assert.Equal(new[] { 2, 3 }, bv.Shape.ToArray());
        for (var i = 0; i < 2; i++)
        {
            AssertClose((Mat(batch, i) * mv).ToArray(), bv.ToArray().AsSpan(i * 3, 3).ToArray());
        }

        var vb = v3.MatMul(batch);
        Assert.Equal(new[] { 2, 4 }, vb.Shape.ToArray());
        for (var i = 0; i < 2; i++)
        {
            AssertClose((mv3 * Mat(batch, i)).ToArray(), vb.ToArray().AsSpan(i * 4, 4).ToArray());
        }
    }

    [Fact]
    public void MatMulGradientsMatchMathNetWithBroadcastBatchDims()
    {
        // L = sum(A · B_b) over a batch of B: dA = Σ_b 1 · B_bᵀ, dB_b = Aᵀ · 1.
        var a = Tensor.RandN(new Shape(3, 4), seed: 19).WithRequiresGrad();
        var b = Tensor.RandN(new Shape(2, 4, 5), seed: 20).WithRequiresGrad();
        a.MatMul(b).Sum().Backward();

        var ones = Matrix<double>.Build.Dense(3, 5, 1.0);
        var da = (ones * Mat(b, 0).Transpose()) + (ones * Mat(b, 1).Transpose());
        AssertClose(RowMajor(da), a.Grad!.ToArray());
        var db = RowMajor(Mat(a).Transpose() * ones);
        AssertClose([.. db, .. db], b.Grad!.ToArray());

        // Both operands broadcast over batch dims: [2, 1, 3, 4] · [5, 4, 2] → [2, 5, 3, 2].
        var p = Tensor.RandN(new Shape(2, 1, 3, 4), seed: 23).WithRequiresGrad();
        var q = Tensor.RandN(new Shape(5, 4, 2), seed: 24).WithRequiresGrad();
        p.MatMul(q).Sum().Backward();
        Assert.Equal(p.Shape, p.Grad!.Shape);
        Assert.Equal(q.Shape, q.Grad!.Shape);
        var ones32 = Matrix<double>.Build.Dense(3, 2, 1.0);
        var sumQt = Enumerable.Range(0, 5).Select(j => ones32 * Mat(q, j).Transpose()).Aggregate((l, r) => l + r);
        AssertClose([.. RowMajor(sumQt), .. RowMajor(sumQt)], p.Grad.ToArray(), 1e-10);
        var sumPt = Enumerable.Range(0, 2).Select(i => Mat(p, i).Transpose() * ones32).Aggregate((l, r) => l + r);
        AssertClose([.. Enumerable.Range(0, 5).SelectMany(_ => RowMajor(sumPt))], q.Grad.ToArray(), 1e-10);

        // Vector cases: d/dv sum(M · v) = column sums of M; d/dM = 1 vᵀ.
        var m = Tensor.RandN(new Shape(3, 4), seed: 21).WithRequiresGrad();
        var v = Tensor.RandN(new Shape(4), seed: 22).WithRequiresGrad();
        m.MatMul(v).Sum().Backward();
        AssertClose(Mat(m).ColumnSums().ToArray(), v.Grad!.ToArray());
        var vv = v.ToArray();
        AssertClose([.. vv, .. vv, .. vv], m.Grad!.ToArray());
    }
}
