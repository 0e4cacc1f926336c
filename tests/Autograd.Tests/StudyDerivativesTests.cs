using Autograd.Study;
using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tests;

/// <summary>
/// The study tools: Jacobians by reverse and forward mode, Hessians and Hessian-vector products by forward-over-reverse
/// (checked against reverse-over-reverse), the profiler and anomaly mode.
/// </summary>
public class StudyDerivativesTests
{
    private const double Tol = 1e-12;

    private static void AssertClose(double[] expected, double[] actual, double tol = Tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    private static void AssertClose(Matrix<double> expected, Tensor actual, double tol = Tol)
    {
        Assert.Equal(expected.RowCount * expected.ColumnCount, actual.ElementCount);

        // Row-major, as the tensor stores it.
        AssertClose(expected.ToRowMajorArray(), actual.ToArray(), tol);
    }

    private static Matrix<double> AsMatrix(Tensor t, int rows, int cols)
        => Matrix<double>.Build.DenseOfRowMajor(rows, cols, t.ToArray());

    private static Vector<double> Vec(Tensor t) => Vector<double>.Build.DenseOfArray(t.ToArray());

    private static double Dot(Tensor a, Tensor b) => Vec(a).DotProduct(Vec(b));

    // ---------------------------------------------------------------- Jacobian

    [Fact]
    public void JacobianOfSoftmaxIsTheArticlesMatrix()
    {
        var x = Tensor.Arange(1, 10);
        var s = Vector<double>.Build.DenseOfArray(x.Softmax(0).ToArray());
        var expected = Matrix<double>.Build.DenseOfDiagonalVector(s) - s.OuterProduct(s);

        var fused = Derivatives.Jacobian(t => t.Softmax(0), x);
        var composed = Derivatives.Jacobian(t => t.SoftmaxComposed(0), x);

        Assert.Equal(new Shape(9, 9), fused.Shape);
        AssertClose(expected, fused, 1e-15);
        AssertClose(expected, composed, 1e-15);
        Assert.False(fused.RequiresGrad);

        // The article's dx = J·dL is the gradient backward computes for dL = 11..19.
        var dL = Tensor.Arange(11, 20);
        var xg = Tensor.Arange(1, 10).WithRequiresGrad();
        xg.Softmax(0).Backward(dL);
        AssertClose(xg.Grad!.ToArray(), (AsMatrix(fused, 9, 9) * Vec(dL)).ToArray());

        // x itself is untouched: no Grad, no RequiresGrad.
        Assert.False(x.RequiresGrad);
        Assert.Null(x.Grad);
    }

    [Fact]
    public void JacobianOfTheArticlesSoftmaxByForwardModeByReverseModeAndExplicitlyAgree()
    {
        var x = Tensor.Arange(1, 10);
        var s = Vector<double>.Build.DenseOfArray(x.Softmax(0).ToArray());
        var expected = Matrix<double>.Build.DenseOfDiagonalVector(s) - s.OuterProduct(s);
        foreach (var (name, f) in new (string, Func<Tensor, Tensor>)[] { ("fused", t => t.Softmax(0)), ("composed", t => t.SoftmaxComposed(0)) })
        {
            var forward = Derivatives.Jacobian(f, x, JacobianMode.Forward);
            var reverse = Derivatives.Jacobian(f, x, JacobianMode.Reverse);
            Assert.Equal(new Shape(9, 9), forward.Shape);
            AssertClose(expected, forward, 1e-15);
            AssertClose(expected, reverse, 1e-15);
            AssertClose(reverse.ToArray(), forward.ToArray(), 1e-15);
            Assert.False(forward.RequiresGrad, name);
        }
    }

    [Fact]
    public void JacobianModesAgreeOnAWideAndATallFunctionAndOnMatrixInputs()
    {
        var x = Tensor.From(0.2, -0.4, 0.9, -1.3);
        AssertClose(Derivatives.Jacobian(F, x).ToArray(), Derivatives.Jacobian(F, x, JacobianMode.Forward).ToArray(), 1e-14);

        var m = Tensor.FromArray([0.5, -1, 2, 0.25, 1.5, -0.75], 2, 3);
        var w = Tensor.FromArray([1.0, 2, -1, 0.5, 0.3, -0.2], 3, 2);
        Tensor G(Tensor t) => (t.MatMul(w).Tanh() * 2.0).Softmax(1);
        var forward = Derivatives.Jacobian(G, m, JacobianMode.Forward);
        Assert.Equal(new Shape(2, 2, 2, 3), forward.Shape);
        AssertClose(Derivatives.Jacobian(G, m).ToArray(), forward.ToArray(), 1e-14);

        Assert.Throws<ArgumentOutOfRangeException>(() => Derivatives.Jacobian(F, x, (JacobianMode)7));
    }

    [Fact]
    public void JacobianOfSoftmaxAlongRowsIsBlockDiagonalWithTorchLayout()
    {
        var x = Tensor.FromArray([0.5, -1, 2, 3, 0, 1], 2, 3);
        var jac = Derivatives.Jacobian(t => t.Softmax(1), x);
        Assert.Equal(new Shape(2, 3, 2, 3), jac.Shape);
        var s = x.Softmax(1);
        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                for (var k = 0; k < 2; k++)
                {
                    for (var l = 0; l < 3; l++)
                    {
                        var expected = i != k ? 0 : (j == l ? s[i, j] : 0) - (s[i, j] * s[i, l]);
                        Assert.Equal(expected, jac[i, j, k, l], 1e-15);
                    }
                }
            }
        }
    }

    [Fact]
    public void JacobianOfExpIsDiagonalOfExp()
    {
        var x = Tensor.From(-1.5, 0, 0.25, 2);
        var jac = Derivatives.Jacobian(t => t.Exp(), x);
        var expected = Matrix<double>.Build.DenseOfDiagonalArray(x.ToArray().Select(Math.Exp).ToArray());
        AssertClose(expected, jac);
    }

    [Fact]
    public void JacobianOfMatMulIsAKroneckerProduct()
    {
        // Y = A X with A [2, 3], X [3, 4]: ∂Y[i, j]/∂X[k, l] = A[i, k] δ(j, l), and ∂Y[i, j]/∂A[k, l] = δ(i, k) X[l, j].
        var a = Tensor.Rand(new Shape(2, 3), seed: 1, low: -1, high: 1);
        var x = Tensor.Rand(new Shape(3, 4), seed: 2, low: -1, high: 1);
        var byX = Derivatives.Jacobian(t => a.MatMul(t), x);
        var byA = Derivatives.Jacobian(t => t.MatMul(x), a);
        Assert.Equal(new Shape(2, 4, 3, 4), byX.Shape);
        Assert.Equal(new Shape(2, 4, 2, 3), byA.Shape);

        // Flattened row-major, Jx = A ⊗ I₄ and Ja = I₂ ⊗ Xᵀ.
        var am = AsMatrix(a, 2, 3);
        var xm = AsMatrix(x, 3, 4);
        AssertClose(am.KroneckerProduct(Matrix<double>.Build.DenseIdentity(4)), byX);
        AssertClose(Matrix<double>.Build.DenseIdentity(2).KroneckerProduct(xm.Transpose()), byA);
    }

    [Fact]
    public void JacobianOfAFunctionThatIgnoresXIsZeroAndWorksUnderNoGrad()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();     // a parameter the function closes over
        var x = Tensor.From(3.0, 4.0, 5.0);
        using (Tensor.NoGrad())
        {
            var zero = Derivatives.Jacobian(_ => w.Exp(), x);
            Assert.Equal(new Shape(2, 3), zero.Shape);
            Assert.All(zero.ToArray(), v => Assert.Equal(0, v));

            var scaled = Derivatives.Jacobian(t => t * w.Sum(), x);
            AssertClose(Matrix<double>.Build.DenseIdentity(3) * 3.0, scaled);
        }

        Assert.Null(w.Grad);
    }

    // ---------------------------------------------------------------- Hessian

    [Fact]
    public void HessianOfSumOfCubesIsDiagonalSixX()
    {
        var x = Tensor.From(-2, 0.5, 1, 3);
        var h = Derivatives.Hessian(t => t.Pow(3).Sum(), x);
        Assert.Equal(new Shape(4, 4), h.Shape);
        AssertClose(Matrix<double>.Build.DenseOfDiagonalArray(x.ToArray().Select(v => 6 * v).ToArray()), h);
    }

    [Fact]
    public void HessianOfAQuadraticFormIsASymmetrised()
    {
        double[,] values = { { 1, 2, 0 }, { -3, 4, 5 }, { 0.5, 0, -1 } };
        var a = Tensor.From(values);
        var x = Tensor.From(0.3, -0.7, 1.1);
        var h = Derivatives.Hessian(t => (t * a.MatMul(t)).Sum(), x);
        var am = Matrix<double>.Build.DenseOfArray(values);
        AssertClose(am + am.Transpose(), h);
    }

    [Fact]
    public void HessianOfLogSumExpIsTheSoftmaxJacobian()
    {
        var x = Tensor.Arange(1, 10) / 3.0;
        var s = Vector<double>.Build.DenseOfArray(x.Softmax(0).ToArray());
        var expected = Matrix<double>.Build.DenseOfDiagonalVector(s) - s.OuterProduct(s);
        AssertClose(expected, Derivatives.Hessian(t => t.LogSumExp(0), x), 1e-14);
        AssertClose(expected, Derivatives.Hessian(t => t.LogSumExpComposed(0), x), 1e-14);
    }

    [Fact]
    public void HessianOfAMatrixInputHasShapeXShapeTwiceAndIsSymmetric()
    {
        var x = Tensor.Rand(new Shape(2, 3), seed: 5, low: -1, high: 1);
        var h = Derivatives.Hessian(t => (t.Tanh() * t.Exp()).Sum(), x);
        Assert.Equal(new Shape(2, 3, 2, 3), h.Shape);
        var hm = AsMatrix(h, 6, 6);
        AssertClose(hm.ToRowMajorArray(), hm.Transpose().ToRowMajorArray(), 1e-13);
        Assert.NotEqual(0, hm[0, 0]);
    }

    [Fact]
    public void HessianOfALinearFunctionIsZeroAndANonScalarIsRejected()
    {
        var x = Tensor.From(1.0, 2.0, 3.0);
        var h = Derivatives.Hessian(t => (t * 2.0).Sum(), x);
        Assert.All(h.ToArray(), v => Assert.Equal(0, v));

        var e = Assert.Throws<ArgumentException>(() => Derivatives.Hessian(t => t.Exp(), x));
        Assert.Contains("one element", e.Message);
        Assert.Contains("[3]", e.Message);
    }

    // ---------------------------------------------------------------- products

    private static Tensor F(Tensor x)
    {
        // R⁴ → R³, nonlinear in every input.
        double[,] m = { { 1, -2, 0.5, 0 }, { 0.3, 0.1, -1, 2 }, { -0.5, 1, 1, 1 } };
        return Tensor.From(m).MatMul(x).Tanh() * x.Exp().Sum();
    }

    [Fact]
    public void VjpAndJvpAreTheTwoProductsOfTheJacobianAndAreAdjoint()
    {
        var x = Tensor.From(0.2, -0.4, 0.9, -1.3);
        var u = Tensor.From(1.5, -2, 0.7);
        var v = Tensor.From(-0.3, 0.8, 1.2, 0.1);
        var jac = AsMatrix(Derivatives.Jacobian(F, x), 3, 4);

        var (yv, vjp) = Derivatives.Vjp(F, x, u);
        var (yj, jvp) = Derivatives.Jvp(F, x, v);
        AssertClose(F(x).ToArray(), yv.ToArray());
        AssertClose(F(x).ToArray(), yj.ToArray());
        Assert.Equal(x.Shape, vjp.Shape);
        Assert.Equal(u.Shape, jvp.Shape);

        AssertClose((jac.Transpose() * Vec(u)).ToArray(), vjp.ToArray());
        AssertClose((jac * Vec(v)).ToArray(), jvp.ToArray());

        // ⟨u, J v⟩ = ⟨Jᵀ u, v⟩.
        Assert.Equal(Dot(u, jvp), Dot(vjp, v), 12);

        // J v is the directional derivative: compare with central differences along v.
        const double h = 1e-6;
        var plus = F(Tensor.FromArray(x.ToArray().Zip(v.ToArray(), (a, b) => a + (h * b)).ToArray(), 4));
        var minus = F(Tensor.FromArray(x.ToArray().Zip(v.ToArray(), (a, b) => a - (h * b)).ToArray(), 4));
        AssertClose(plus.ToArray().Zip(minus.ToArray(), (p, m) => (p - m) / (2 * h)).ToArray(), jvp.ToArray(), 1e-7);
    }

    [Fact]
    public void JvpOfIdentityAndOfAFunctionIgnoringX()
    {
        var x = Tensor.From(1.0, 2.0);
        var v = Tensor.From(3.0, -4.0);
        AssertClose(v.ToArray(), Derivatives.Jvp(t => t, x, v).Jvp.ToArray());
        var (y, jvp) = Derivatives.Jvp(_ => Tensor.From(5.0, 6.0, 7.0), x, v);
        Assert.Equal([5.0, 6.0, 7.0], y.ToArray());
        Assert.Equal([0.0, 0.0, 0.0], jvp.ToArray());
    }

    [Fact]
    public void HvpIsHessianTimesVector()
    {
        static Tensor G(Tensor t) => (t.Exp() * t * t).Sum() + t.LogSumExp(0);
        var x = Tensor.From(0.1, -0.6, 0.8, 1.4, -2);
        var v = Tensor.From(1.0, -1.0, 0.5, 2.0, 0.25);
        var hm = AsMatrix(Derivatives.Hessian(G, x), 5, 5);
        var (y, hvp) = Derivatives.Hvp(G, x, v);
        Assert.Equal(G(x).Item(), y.Item(), 14);
        AssertClose((hm * Vec(v)).ToArray(), hvp.ToArray(), 1e-13);

        // The Hessian's columns are the Hvp of the unit vectors.
        var e2 = Tensor.From(0.0, 0, 1, 0, 0);
        AssertClose(hm.Column(2).ToArray(), Derivatives.Hvp(G, x, e2).Hvp.ToArray(), 1e-13);

        // Both are forward-over-reverse: check them against reverse-over-reverse, row by row of the gradient's Jacobian.
        var xr = x.Detach().WithRequiresGrad();
        var g = Autodiff.Grad(G(xr), xr, createGraph: true);
        for (var i = 0; i < 5; i++)
        {
            var row = Autodiff.Grad(g.Narrow(0, i, 1).Sum(), xr, retainGraph: true);
            AssertClose(row.ToArray(), hm.Row(i).ToArray(), 1e-13);
        }

        var reverseHvp = Autodiff.Grad((g * v).Sum(), xr);
        AssertClose(reverseHvp.ToArray(), hvp.ToArray(), 1e-13);
    }

    [Fact]
    public void ProductsRejectVectorsOfTheWrongShape()
    {
        var x = Tensor.From(0.2, -0.4, 0.9, -1.3);
        Assert.Contains("f(x) has shape [3]", Assert.Throws<ArgumentException>(() => Derivatives.Vjp(F, x, Tensor.Zeros(4))).Message);
        Assert.Contains("x has shape [4]", Assert.Throws<ArgumentException>(() => Derivatives.Jvp(F, x, Tensor.Zeros(3))).Message);
        Assert.Contains("x has shape [4]", Assert.Throws<ArgumentException>(() => Derivatives.Hvp(t => t.Sum(), x, Tensor.Zeros(2))).Message);
    }

    // ---------------------------------------------------------------- profiler

    private static Dictionary<string, int> Counts(Profiler p, bool backward)
        => p.Entries.Where(e => (backward ? e.BackwardCount : e.ForwardCount) > 0)
            .ToDictionary(e => e.Name, e => backward ? e.BackwardCount : e.ForwardCount);

    [Fact]
    public void ProfilerCountsEachPrimitiveOfComposedSoftmaxOnce()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var dL = Tensor.Arange(11, 20);
        using var p = Profiler.Start();
        var s = x.SoftmaxComposed(0);
        s.Backward(dL);
        p.Dispose();

        Assert.Equal(new Dictionary<string, int> { ["Max"] = 1, ["Sub"] = 1, ["Exp"] = 1, ["Sum"] = 1, ["Div"] = 1 }, Counts(p, backward: false));
        Assert.Equal(
            new Dictionary<string, int> { ["Max"] = 1, ["Sub"] = 1, ["Exp"] = 1, ["Sum"] = 1, ["Div"] = 1, ["AccumulateGrad"] = 1 },
            Counts(p, backward: true));
        Assert.Equal(5, p.ForwardCount);
        Assert.Equal(6, p.BackwardCount);
        Assert.All(p.Entries, e => Assert.True(e.ForwardTime >= TimeSpan.Zero && e.BackwardTime >= TimeSpan.Zero && e.ForwardBytes >= 0 && e.BackwardBytes >= 0));
        Assert.True(p["Exp"]!.TotalTime > TimeSpan.Zero);

        // Each forward op allocated at least its [9] or [1] float64 result; each backward rule its gradient.
        Assert.True(p["Exp"]!.ForwardBytes >= 9 * 8, $"Exp forward bytes {p["Exp"]!.ForwardBytes}");
        Assert.True(p["Div"]!.BackwardBytes >= 2 * 9 * 8, $"Div backward bytes {p["Div"]!.BackwardBytes}");

        // The table: sorted by total time, one row per op type, then the totals.
        var entries = p.Entries;
        for (var i = 1; i < entries.Count; i++)
        {
            Assert.True(entries[i - 1].TotalTime >= entries[i].TotalTime);
        }

        var lines = p.Report().Split('\n');
        Assert.StartsWith("operation", lines[0]);
        Assert.Equal(entries.Select(e => e.Name), lines.Skip(2).Take(entries.Count).Select(l => l.Split(' ')[0]));
        Assert.Matches(@"^total\s+5\s+[\d.]+\s+6\s", lines[2 + entries.Count + 1]);
        Assert.Equal(p.Report(), p.ToString());
    }

    [Fact]
    public void ProfilerCountsTheFusedSoftmaxAsOneOperationAndRepeatedOpsEachTime()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        Profiler p;
        using (p = Profiler.Start())
        {
            x.Softmax(0).Backward(Tensor.Arange(11, 20));
            var y = x;
            for (var i = 0; i < 10; i++)
            {
                y = y.Tanh();
            }

            y.Sum().Backward();
        }

        Assert.False(p.IsRunning);
        Assert.Equal(1, p["Softmax"]!.ForwardCount);
        Assert.Equal(1, p["Softmax"]!.BackwardCount);
        Assert.Equal(10, p["Tanh"]!.ForwardCount);
        Assert.Equal(10, p["Tanh"]!.BackwardCount);
        Assert.Equal(1, p["Sum"]!.ForwardCount);
        Assert.Equal(2, p["AccumulateGrad"]!.BackwardCount);
        Assert.Equal(0, p["AccumulateGrad"]!.ForwardCount);
        Assert.Equal(12, p.ForwardCount);

        // After disposal nothing more is counted.
        _ = x.Exp();
        Assert.Null(p["Exp"]);
    }

    private sealed class RecordCounter : TapeObserver
    {
        public int Recorded { get; private set; }

        public int Rules { get; private set; }

        protected override void OnRecorded(Node node, Tensor output) => Recorded++;

        protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads) => Rules++;
    }

    [Fact]
    public void ProfilerCountsMatchTheTapeAlsoInACreateGraphWalk()
    {
        var counter = new RecordCounter();
        using var attach = TapeObserver.Attach(counter);
        using var p = Profiler.Start();
        var x = Tensor.Rand(new Shape(3, 4), seed: 3).WithRequiresGrad();
        var w = Tensor.Rand(new Shape(4, 2), seed: 4).WithRequiresGrad();
        var loss = x.MatMul(w).Sigmoid().LogSoftmax(1).Sum();
        var g = Autodiff.Grad(loss, w, createGraph: true);
        (g * g).Sum().Backward();

        Assert.Equal(counter.Recorded, p.ForwardCount);
        Assert.Equal(counter.Rules, p.BackwardCount);
        Assert.True(p["MatMul"]!.ForwardCount >= 2, "the create-graph walk records MatMuls for the gradient of w");
        Assert.True(p["LogSoftmaxBackward"]!.ForwardCount == 1 && p["LogSoftmaxBackward"]!.BackwardCount == 1);
    }

    [Fact]
    public void ProfilerChargesAnOperationItsResultsBytes()
    {
        var x = Tensor.Rand(new Shape(100_000), seed: 1).WithRequiresGrad();
        using var p = Profiler.Start();
        x.Exp().Sum().Backward();
        var exp = p["Exp"]!;
        Assert.InRange(exp.ForwardBytes, 800_000, 800_000 + 4096);

        // Exp's rule computes g ⊙ y: one new [100000] float64 tensor.
        Assert.InRange(exp.BackwardBytes, 800_000, 800_000 + 4096);
        Assert.InRange(p["Sum"]!.ForwardBytes, 0, 4096);
    }

    // ---------------------------------------------------------------- anomaly mode

    [Fact]
    public void AnomalyModeNamesTheForwardOperationThatMadeANaN()
    {
        var x = Tensor.From(1.0, -2.0).WithRequiresGrad();
        AnomalyException e;
        using (Anomaly.Detect())
        {
            var a = x * 2.0;
            var b = a + 1.0;
            e = Assert.Throws<AnomalyException>(() => b.Log());
        }

        Assert.Equal(AnomalyPhase.Forward, e.Phase);
        Assert.Equal("Log", e.OperationName);
        Assert.Equal(3, e.Position);
        Assert.Equal([new Shape(2)], e.InputShapes);
        Assert.Equal(1, e.ElementIndex);
        Assert.True(double.IsNaN(e.Value));
        Assert.Contains("'Log'", e.Message);
        Assert.Contains("the 3rd operation recorded in this scope", e.Message);
        Assert.Contains("Inputs: [2]", e.Message);
        Assert.Contains("all finite", e.Message);
        Assert.Equal(e.Sequence, e.Node!.Sequence);
    }

    [Fact]
    public void AnomalyModeCatchesZeroOverZeroWithBroadcastShapes()
    {
        var a = Tensor.From(new double[,] { { 1, 0, 2 }, { 3, 4, 5 } }).WithRequiresGrad();
        var b = Tensor.From(1.0, 0.0, 2.0);
        using var detect = Anomaly.Detect();
        var e = Assert.Throws<AnomalyException>(() => a / b);
        Assert.Equal("Div", e.OperationName);
        Assert.Equal(1, e.Position);
        Assert.Equal([new Shape(2, 3), new Shape(3)], e.InputShapes);
        Assert.Contains("the 1st operation", e.Message);
        Assert.Contains("Inputs: [2, 3], [3]", e.Message);
        Assert.Contains("NaN at element 1", e.Message);
    }

    [Fact]
    public void AnomalyModeNamesTheBackwardRuleThatMadeAnInfiniteGradient()
    {
        // d √x / dx = 1 / (2 √x) is +Inf at 0, although √0 = 0 is fine.
        var x = Tensor.From(0.0, 4.0).WithRequiresGrad();
        AnomalyException e;
        using (Anomaly.Detect())
        {
            var loss = (x.Sqrt() * 3.0).Sum();
            e = Assert.Throws<AnomalyException>(() => loss.Backward());
        }

        Assert.Equal(AnomalyPhase.Backward, e.Phase);
        Assert.Equal("Sqrt", e.OperationName);
        Assert.Equal(1, e.Position);
        Assert.Equal(0, e.InputIndex);
        Assert.Equal(0, e.ElementIndex);
        Assert.Equal(double.PositiveInfinity, e.Value);
        Assert.Equal([new Shape(2)], e.InputShapes);
        Assert.Contains("backward rule of 'Sqrt'", e.Message);
        Assert.Contains("dx = g / (2y)", e.Message);
        Assert.Contains("the 1st operation recorded in this scope", e.Message);
        Assert.Null(x.Grad);

        // The walk cleaned up: the same graph cannot be walked again only because it was released, not because of stale state.
        var y = Tensor.From(1.0, 4.0).WithRequiresGrad();
        (y.Sqrt() * 3.0).Sum().Backward();
        AssertClose([1.5, 0.75], y.Grad!.ToArray());
    }

    [Fact]
    public void AnomalyModeCatchesAnInfiniteGradientFromPowOnAGraphBuiltBeforeTheScope()
    {
        var x = Tensor.From(new double[,] { { 1, 0 }, { 2, 3 } }).WithRequiresGrad();
        var w = Tensor.From(1.0, 2.0);
        var loss = (x.Pow(0.5) * w).Sum();
        using var detect = Anomaly.Detect();
        var e = Assert.Throws<AnomalyException>(() => loss.Backward());
        Assert.Equal("Pow", e.OperationName);
        Assert.Equal(0, e.Position);
        Assert.Contains("recorded before this scope", e.Message);
        Assert.Equal([new Shape(2, 2)], e.InputShapes);
        Assert.Equal(1, e.ElementIndex);
    }

    [Fact]
    public void CleanComputationsDoNotThrowAndTheScopeDetachesAfterAnException()
    {
        var observersBefore = TapeObserver.Current;
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        using (Anomaly.Detect())
        {
            x.SoftmaxComposed(0).Backward(Tensor.Arange(11, 20));
            var h = Derivatives.Hessian(t => t.LogSumExp(0), x);
            Assert.All(h.ToArray(), v => Assert.True(double.IsFinite(v)));
        }

        Assert.Equal(-0.00157344, x.Grad![0], 8);

        var bad = Tensor.From(-1.0).WithRequiresGrad();
        var thrown = false;
        try
        {
            using (Anomaly.Detect())
            {
                _ = bad.Log();
            }
        }
        catch (AnomalyException)
        {
            thrown = true;
        }

        Assert.True(thrown);
        Assert.Same(observersBefore, TapeObserver.Current);
        Assert.True(double.IsNaN(bad.Log().Item()));      // no longer detecting

        // Operations that are not recorded are not checked.
        using (Anomaly.Detect())
        {
            Assert.True(double.IsNaN(Tensor.From(-1.0).Log().Item()));
        }
    }

    [Fact]
    public void AnomalyModeNamesAnOperationRecordedByACreateGraphWalk()
    {
        // The backward of Sqrt records g / (2y); at 0 that Div makes +Inf on the tape.
        var x = Tensor.From(0.0, 1.0).WithRequiresGrad();
        using var detect = Anomaly.Detect();
        var y = x.Sqrt().Sum();
        var e = Assert.Throws<AnomalyException>(() => Autodiff.Grad(y, x, createGraph: true));
        Assert.Equal(AnomalyPhase.Forward, e.Phase);
        Assert.Equal("Div", e.OperationName);
        Assert.Equal("Sqrt", e.DuringBackwardOf);
        Assert.Contains("while the backward rule of 'Sqrt' ran", e.Message);
    }
}
