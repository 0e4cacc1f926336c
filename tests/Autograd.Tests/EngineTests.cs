using System.Runtime.CompilerServices;
using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tests;

/// <summary>
/// The backward engine (accumulation, retained and released graphs, grad mode, the functional API, higher-order
/// gradients, detach), broadcasting, IEEE special values and the errors raised for bad input.
/// </summary>
public class EngineTests
{
    private static void AssertClose(double[] expected, double[] actual, double tol = 1e-10)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    // ---------------------------------------------------------------- Backward basics

    [Fact]
    public void BackwardOnAOneElementTensor()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var y = (x * x).Sum();
        y.Backward();
        Assert.Equal(new double[] { 2, 4, 6 }, x.Grad!.ToArray());

        // Any one-element shape, not only rank 0.
        var z = Tensor.FromArray(new double[] { 3 }, 1, 1).WithRequiresGrad();
        z.Exp().Backward();
        Assert.Equal(Math.Exp(3), z.Grad!.Item(), 12);
    }

    [Fact]
    public void BackwardWithAGradientOnAnyTensor()
    {
        var x = Tensor.From(new double[,] { { 1, 2 }, { 3, 4 } }).WithRequiresGrad();
        var y = x * 3.0;
        y.Backward(Tensor.From(new double[,] { { 1, 10 }, { 100, 1000 } }));
        Assert.Equal(new double[] { 3, 30, 300, 3000 }, x.Grad!.ToArray());

        // Several outputs at once through the Autodiff entry point.
        var a = Tensor.From(1.0, 2.0).WithRequiresGrad();
        Autodiff.Backward([a * 2.0, (a * a).Sum()], [Tensor.From(1.0, 1.0), null]);
        Assert.Equal(new double[] { 4, 6 }, a.Grad!.ToArray());
    }

    [Fact]
    public void BackwardWorksInFloat32AndOnALeaf()
    {
        var f = Tensor.From(1f, 2f).WithRequiresGrad();
        (f * f).Sum().Backward();
        Assert.Equal(DType.Float32, f.Grad!.DType);
        Assert.Equal(new float[] { 2f, 4f }, f.Grad.ToArray<float>());

        var leaf = Tensor.From(1.0, 2.0).WithRequiresGrad();
        leaf.Backward(Tensor.From(5.0, 6.0));
        Assert.Equal(new double[] { 5, 6 }, leaf.Grad!.ToArray());
    }

    [Fact]
    public void GradientsAccumulateAcrossBackwardCalls()
    {
        var x = Tensor.From(1.0, -2.0).WithRequiresGrad();
        (x * x).Sum().Backward();
        var first = x.Grad;
        Assert.Equal(new double[] { 2, -4 }, first!.ToArray());
        (x * 5.0).Sum().Backward();
        Assert.Equal(new double[] { 7, 1 }, x.Grad!.ToArray());
        (x * x).Sum().Backward();
        Assert.Equal(new double[] { 9, -3 }, x.Grad!.ToArray());
        Assert.True(x.Grad.IsLeaf);
        Assert.False(x.Grad.RequiresGrad);
    }

    [Fact]
    public void ZeroGradSetsToNullOrFillsWithZeros()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        (x * x).Sum().Backward();
        x.ZeroGrad();
        Assert.Null(x.Grad);

        (x * x).Sum().Backward();
        Assert.Equal(new double[] { 2, 4 }, x.Grad!.ToArray());
        var before = x.Grad;
        x.ZeroGrad(setToNull: false);
        Assert.Same(before, x.Grad);
        Assert.Equal(new double[] { 0, 0 }, x.Grad!.ToArray());
        Assert.Equal(x.Shape, x.Grad.Shape);

        (x * 3.0).Sum().Backward();
        Assert.Equal(new double[] { 3, 3 }, x.Grad!.ToArray());

        // ZeroGrad on a tensor that never had a gradient.
        var fresh = Tensor.Ones(2).WithRequiresGrad();
        fresh.ZeroGrad(setToNull: false);
        Assert.Null(fresh.Grad);
    }

    [Fact]
    public void AValueUsedTwiceGetsBothContributions()
    {
        var x = Tensor.From(3.0).WithRequiresGrad();
        (x * x).Sum().Backward();
        Assert.Equal(6.0, x.Grad!.Item());

        var y = Tensor.From(2.0, 5.0).WithRequiresGrad();
        (y + y).Sum().Backward();
        Assert.Equal(new double[] { 2, 2 }, y.Grad!.ToArray());

        // Diamond: a = exp(z); f = a·a + a  →  df/dz = (2a + 1)·a.
        var z = Tensor.From(0.5).WithRequiresGrad();
        var a = z.Exp();
        ((a * a) + a).Sum().Backward();
        var ea = Math.Exp(0.5);
        Assert.Equal(((2 * ea) + 1) * ea, z.Grad!.Item(), 12);
    }

    // ---------------------------------------------------------------- deep graphs

    [Fact]
    public void AChainOfAHundredThousandMultipliesIsWalkedIteratively()
    {
        const int n = 100_000;
        var x = Tensor.From(1.0).WithRequiresGrad();
        var y = x;
        for (var i = 0; i < n; i++)
        {
            y = y * 1.0000001;
        }

        var expected = Math.Pow(1.0000001, n);
        Assert.Equal(expected, y.Item(), 9);
        y.Backward();
        Assert.Equal(expected, x.Grad!.Item(), 9);
    }

    [Fact]
    public void AChainOfAHundredThousandAddsAccumulatesEveryUse()
    {
        const int n = 100_000;
        var x = Tensor.From(0.5, 1.5).WithRequiresGrad();
        var y = Tensor.Zeros(2);
        for (var i = 0; i < n; i++)
        {
            y = y + x;
        }

        y.Sum().Backward();
        Assert.Equal(new double[] { n, n }, x.Grad!.ToArray());
        Assert.Equal(n * 0.5, y[0], 6);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (Tensor Output, WeakReference Middle) BuildChain(Tensor x, int n)
    {
        // A tensor factor, so that each Mul saves its input (a number factor needs only the number for its rule).
        var k = Tensor.Scalar(1.0000001);
        var y = x;
        WeakReference? middle = null;
        for (var i = 0; i < n; i++)
        {
            y = y * k;
            if (i == n / 2)
            {
                middle = new WeakReference(y);
            }
        }

        return (y.Sum(), middle!);
    }

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [Fact]
    public void ADeepChainReleasesItsSavedTensorsAfterBackward()
    {
        var x = Tensor.Ones(4).WithRequiresGrad();
        var (y, middle) = BuildChain(x, 100_000);

        // Before backward the tape keeps the intermediate (saved by the next Mul).
        Collect();
        Assert.True(middle.IsAlive);

        y.Backward();
        Collect();
        Assert.False(middle.IsAlive);
        Assert.Equal(Math.Pow(1.0000001, 100_000), x.Grad![0], 9);
        Assert.True(y.GradFn!.IsReleased);
        GC.KeepAlive(y);
    }

    [Fact]
    public void RetainGraphKeepsTheSavedTensors()
    {
        var x = Tensor.Ones(4).WithRequiresGrad();
        var (y, middle) = BuildChain(x, 1000);
        y.Backward(retainGraph: true);
        Collect();
        Assert.True(middle.IsAlive);
        Assert.False(y.GradFn!.IsReleased);
        GC.KeepAlive(y);
    }

    // ---------------------------------------------------------------- released and retained graphs

    [Fact]
    public void ASecondBackwardThroughAReleasedGraphThrowsNamingRetainGraph()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (x.Exp() * x).Sum();
        y.Backward();
        var after = x.Grad!.ToArray();

        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("retainGraph", ex.Message);
        Assert.Contains("second time", ex.Message);

        // The failed walk changed nothing.
        Assert.Equal(after, x.Grad!.ToArray());

        // A graph that shares a released node also fails, before touching anything.
        var x2 = Tensor.From(1.0).WithRequiresGrad();
        var e = x2.Exp();
        e.Sum().Backward();
        var g2 = x2.Grad!.Item();
        var w = Tensor.From(2.0).WithRequiresGrad();
        Assert.Throws<InvalidOperationException>(() => ((e * w) + w).Sum().Backward());
        Assert.Equal(g2, x2.Grad!.Item());
        Assert.Null(w.Grad);

        // Autodiff.Grad too.
        var gx = Assert.Throws<InvalidOperationException>(() => Autodiff.Grad(y, x));
        Assert.Contains("retainGraph", gx.Message);
    }

    [Fact]
    public void RetainGraphAllowsASecondBackwardThatDoublesTheGradient()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (x.Exp() * x).Sum();
        y.Backward(retainGraph: true);
        var once = x.Grad!.ToArray();
        AssertClose([2 * Math.Exp(1), 3 * Math.Exp(2)], once);
        y.Backward();
        AssertClose(once.Select(v => 2 * v).ToArray(), x.Grad!.ToArray());
        Assert.Throws<InvalidOperationException>(() => y.Backward());
    }

    // ---------------------------------------------------------------- grad mode

    [Fact]
    public void NoGradRecordsNothing()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        Tensor y;
        using (Tensor.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            y = (x * 2.0).Exp().Sum();
        }

        Assert.True(GradMode.IsEnabled);
        Assert.True(y.IsLeaf);
        Assert.False(y.RequiresGrad);
        Assert.Null(y.OpName);
        Assert.Null(y.GradFn);
        Assert.Equal(Math.Exp(2) + Math.Exp(4), y.Item(), 12);
        Assert.Throws<InvalidOperationException>(() => y.Backward());

        using (GradMode.NoGrad())
        {
            Assert.True((x * x).IsLeaf);
        }

        Assert.False((x * x).IsLeaf);
    }

    [Fact]
    public void GradModeScopesNestAndRestore()
    {
        var x = Tensor.From(1.0).WithRequiresGrad();
        Assert.True(GradMode.IsEnabled);
        using (Tensor.NoGrad())
        {
            using (Tensor.NoGrad())
            {
                Assert.False(GradMode.IsEnabled);
            }

            Assert.False(GradMode.IsEnabled);
            using (Tensor.EnableGrad())
            {
                Assert.True(GradMode.IsEnabled);
                Assert.Equal("Mul", (x * x).OpName);
            }

            Assert.False(GradMode.IsEnabled);
            Assert.True((x * x).IsLeaf);
        }

        Assert.True(GradMode.IsEnabled);

        // A scope disposed by an exception still restores.
        try
        {
            using (GradMode.NoGrad())
            {
                throw new InvalidOperationException("boom");
            }
        }
        catch (InvalidOperationException)
        {
        }

        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public void GradModeFollowsTheFlowOfExecution()
    {
        // A thread started with the execution context inherits the mode of the flow that started it; one started without
        // it (UnsafeStart) begins with grad mode on.
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        bool? inheritedEnabled = null;
        bool? otherEnabled = null;
        bool? otherRecorded = null;
        using (Tensor.NoGrad())
        {
            var inherits = new Thread(() => inheritedEnabled = GradMode.IsEnabled);
            inherits.Start();
            inherits.Join();
            var t = new Thread(() =>
            {
                otherEnabled = GradMode.IsEnabled;
                otherRecorded = !(x * x).IsLeaf;
            });
            t.UnsafeStart();
            t.Join();
            Assert.False(GradMode.IsEnabled);
        }

        Assert.False(inheritedEnabled);
        Assert.True(otherEnabled);
        Assert.True(otherRecorded);

        // And the other way: a NoGrad scope on another thread does not switch off recording here.
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var worker = new Thread(() =>
        {
            using (Tensor.NoGrad())
            {
                entered.Set();
                release.Wait();
            }
        });
        worker.Start();
        entered.Wait(TestContext.Current.CancellationToken);
        Assert.True(GradMode.IsEnabled);
        Assert.Equal("Mul", (x * x).OpName);
        release.Set();
        worker.Join();
    }

    // ---------------------------------------------------------------- functional Grad

    [Fact]
    public void GradReturnsGradientsWithoutTouchingGrad()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var w = Tensor.From(0.5, -1.0, 2.0).WithRequiresGrad();
        var y = (x * w).Sum();
        var g = Autodiff.Grad([y], [x, w]);
        Assert.Equal(new double[] { 0.5, -1, 2 }, g[0].ToArray());
        Assert.Equal(new double[] { 1, 2, 3 }, g[1].ToArray());
        Assert.Null(x.Grad);
        Assert.Null(w.Grad);

        // With gradOutputs for a non-scalar output.
        var z = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var gz = Autodiff.Grad(z * z, z, Tensor.From(10.0, 100.0));
        Assert.Equal(new double[] { 20, 400 }, gz.ToArray());
        Assert.Null(z.Grad);
    }

    [Fact]
    public void GradWithRespectToAnIntermediate()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var h = x * 3.0;
        var y = (h * h).Sum();
        var gh = Autodiff.Grad(y, h, retainGraph: true);
        Assert.Equal(new double[] { 6, 12 }, gh.ToArray());
        Assert.Null(x.Grad);

        var both = Autodiff.Grad([y], [h, x]);
        Assert.Equal(new double[] { 6, 12 }, both[0].ToArray());
        Assert.Equal(new double[] { 18, 36 }, both[1].ToArray());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void GradThrowsForAnUnusedInputUnlessAllowed()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var unused = Tensor.From(5.0, 6.0, 7.0).WithRequiresGrad();
        var y = (x * x).Sum();
        var ex = Assert.Throws<InvalidOperationException>(() => Autodiff.Grad([y], [x, unused], retainGraph: true));
        Assert.Contains("input 1", ex.Message);
        Assert.Contains("allowUnused", ex.Message);
        Assert.Contains("[3]", ex.Message);

        var g = Autodiff.Grad([y], [x, unused], allowUnused: true);
        Assert.Equal(new double[] { 2, 4 }, g[0].ToArray());
        Assert.Equal(new double[] { 0, 0, 0 }, g[1].ToArray());
        Assert.Equal(unused.Shape, g[1].Shape);

        var noGrad = Tensor.From(1.0);
        Assert.Throws<InvalidOperationException>(() => Autodiff.Grad((x * 2.0).Sum(), noGrad));
    }

    [Fact]
    public void WithoutCreateGraphTheGradientIsNotRecorded()
    {
        var x = Tensor.From(0.3, -0.7).WithRequiresGrad();
        var g = Autodiff.Grad(x.Pow(3).Sum(), x);
        Assert.True(g.IsLeaf);
        Assert.False(g.RequiresGrad);
        Assert.Null(g.OpName);

        x.Tanh().Sum().Backward();
        Assert.True(x.Grad!.IsLeaf);
        Assert.False(x.Grad.RequiresGrad);
    }

    [Fact]
    public void SecondDerivativeOfCubeIsSixX()
    {
        var x = Tensor.From(-1.5, 0.5, 2.0).WithRequiresGrad();
        var g = Autodiff.Grad(x.Pow(3).Sum(), x, createGraph: true);
        Assert.False(g.IsLeaf);
        Assert.True(g.RequiresGrad);
        AssertClose([3 * 2.25, 3 * 0.25, 3 * 4], g.ToArray());

        var h = Autodiff.Grad(g.Sum(), x);
        AssertClose([-9, 3, 12], h.ToArray());
        Assert.Null(x.Grad);

        // The same through Backward(createGraph: true) and then x.Grad.
        var z = Tensor.From(3.0).WithRequiresGrad();
        (z * z * z).Sum().Backward(createGraph: true);
        var dz = z.Grad!;
        Assert.Equal(27.0, dz.Item(), 12);
        Assert.False(dz.IsLeaf);
        z.Grad = null;
        dz.Sum().Backward();
        Assert.Equal(18.0, z.Grad!.Item(), 12);
    }

    [Fact]
    public void GradientOfTheGradientOfTanh()
    {
        var xs = new[] { -1.2, 0.0, 0.4, 2.5 };
        var x = Tensor.From(xs).WithRequiresGrad();
        var g = Autodiff.Grad(x.Tanh().Sum(), x, createGraph: true);
        AssertClose(xs.Select(v => 1 - (Math.Tanh(v) * Math.Tanh(v))).ToArray(), g.ToArray());

        var gg = Autodiff.Grad(g.Sum(), x);
        AssertClose(xs.Select(v => -2 * Math.Tanh(v) * (1 - (Math.Tanh(v) * Math.Tanh(v)))).ToArray(), gg.ToArray());

        // Third order through a retained second-order graph: d³/dx³ tanh = (6 tanh² − 2)(1 − tanh²).
        var x3 = Tensor.From(xs).WithRequiresGrad();
        var g1 = Autodiff.Grad(x3.Tanh().Sum(), x3, createGraph: true);
        var g2 = Autodiff.Grad(g1.Sum(), x3, createGraph: true);
        var g3 = Autodiff.Grad(g2.Sum(), x3);
        AssertClose(xs.Select(v => ((6 * Math.Tanh(v) * Math.Tanh(v)) - 2) * (1 - (Math.Tanh(v) * Math.Tanh(v)))).ToArray(), g3.ToArray(), 1e-9);
    }

    [Fact]
    public void HessianVectorProductMatchesTheAnalyticHessian()
    {
        // f(x) = Σ x_i³ + x_0 · Σ x_i, where x_0 = x · e_0.
        // ∇f_j = 3x_j² + δ_j0 Σx + x_0;  H = diag(6x) + e_0 1ᵀ + 1 e_0ᵀ.
        double[] xs = [0.7, -1.3, 2.1, 0.4];
        double[] vs = [1.0, -2.0, 0.5, 3.0];
        var n = xs.Length;
        var x = Tensor.From(xs).WithRequiresGrad();
        var e0 = Tensor.From(1.0, 0, 0, 0);
        var x0 = x.MatMul(e0);
        var f = x.Pow(3).Sum() + (x0 * x.Sum());

        var grad = Autodiff.Grad(f, x, createGraph: true);
        var sum = xs.Sum();
        AssertClose(xs.Select((v, j) => (3 * v * v) + (j == 0 ? sum : 0) + xs[0]).ToArray(), grad.ToArray());

        var v = Tensor.From(vs);
        var hv = Autodiff.Grad((grad * v).Sum(), x);

        var h = Matrix<double>.Build.Dense(n, n, (i, j) => (i == j ? 6 * xs[i] : 0) + (i == 0 ? 1 : 0) + (j == 0 ? 1 : 0));
        var expected = h * Vector<double>.Build.DenseOfArray(vs);
        AssertClose(expected.ToArray(), hv.ToArray());
        Assert.Null(x.Grad);
    }

    // ---------------------------------------------------------------- detach

    [Fact]
    public void DetachSharesDataIsALeafAndStopsGradients()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var h = x * 2.0;
        var d = h.Detach();
        Assert.True(d.IsLeaf);
        Assert.False(d.RequiresGrad);
        Assert.Null(d.OpName);
        Assert.Equal(h.ToArray(), d.ToArray());
        Assert.Same(h.Storage, d.Storage);
        h.Span<double>()[0] = 42;
        Assert.Equal(42.0, d[0]);

        // Only the non-detached path contributes: y = x·detach(x) → dy/dx = detach(x).
        var y = (x * x.Detach()).Sum();
        y.Backward();
        Assert.Equal(new double[] { 1, 2, 3 }, x.Grad!.ToArray());

        // A detached tensor can start a new graph of its own.
        var root = h.Detach().WithRequiresGrad();
        (root * root).Sum().Backward();
        Assert.Equal(new double[] { 84, 8, 12 }, root.Grad!.ToArray());
    }

    // ---------------------------------------------------------------- broadcasting

    [Fact]
    public void BroadcastingValues()
    {
        var m = Tensor.From(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } });
        Assert.Equal(new double[] { 11, 12, 13, 14, 15, 16 }, (m + Tensor.Scalar(10)).ToArray());
        Assert.Equal(new double[] { 2, 4, 6, 8, 10, 12 }, (2.0 * m).ToArray());
        Assert.Equal(new double[] { 9, 8, 7, 6, 5, 4 }, (10.0 - m).ToArray());

        var row = Tensor.From(10.0, 20.0, 30.0);
        var s = m + row;
        Assert.Equal(new[] { 2, 3 }, s.Shape.ToArray());
        Assert.Equal(new double[] { 11, 22, 33, 14, 25, 36 }, s.ToArray());

        var col = Tensor.FromArray(new double[] { 100, 200 }, 2, 1);
        Assert.Equal(new double[] { 101, 102, 103, 204, 205, 206 }, (m + col).ToArray());

        var r = Tensor.FromArray(new double[] { 1, 2, 3 }, 1, 3);
        var c = Tensor.FromArray(new double[] { 10, 20, 30, 40 }, 4, 1);
        var outer = r * c;
        Assert.Equal(new[] { 4, 3 }, outer.Shape.ToArray());
        Assert.Equal(new double[] { 10, 20, 30, 20, 40, 60, 30, 60, 90, 40, 80, 120 }, outer.ToArray());

        var batch = Tensor.Arange(6).Reshape(2, 1, 3);
        var b2 = Tensor.FromArray(new double[] { 0, 100, 200, 300 }, 4, 1);
        var bs = batch + b2;
        Assert.Equal(new[] { 2, 4, 3 }, bs.Shape.ToArray());
        Assert.Equal(202.0, bs[0, 2, 2]);
        Assert.Equal(305.0, bs[1, 3, 2]);
        Assert.Equal(103.0, bs[1, 1, 0]);
    }

    /// <summary>
    /// Broadcasts large enough to be split between threads (whole rows of the innermost merged dim per thread) give, at
    /// every element, the operator applied to the elements its indices pick: a column per row (x − max), a row per
    /// matrix, an outer product, a 4-D case whose merged rows start mid-block, and a transposed (non-contiguous) operand.
    /// </summary>
    [Theory]
    [InlineData(new[] { 1024, 1024 }, new[] { 1024, 1 }, false)]
    [InlineData(new[] { 3, 130, 200 }, new[] { 3, 1, 200 }, false)]
    [InlineData(new[] { 300, 1 }, new[] { 1, 301 }, false)]
    [InlineData(new[] { 5, 7, 41, 53 }, new[] { 7, 1, 53 }, false)]
    [InlineData(new[] { 257, 263 }, new[] { 263, 257 }, true)]
    public void LargeBroadcastsSplitBetweenThreadsMatchTheirIndices(int[] shapeA, int[] shapeB, bool transposeB)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var a = Tensor.RandN(new Shape(shapeA), 1, dtype);
            var b = Tensor.RandN(new Shape(shapeB), 2, dtype);
            if (transposeB)
            {
                b = b.Transpose(0, 1);
            }

            var y = a - b;
            var q = a / b;
            var outShape = Shape.Broadcast(a.Shape, b.Shape, "test");
            Assert.Equal(outShape, y.Shape);
            Assert.True(outShape.ElementCount >= 1 << 16, "the case should be large enough to split");
            var dims = outShape.ToArray();
            var index = new int[dims.Length];
            var ya = y.ToArray();
            var qa = q.ToArray();
            for (var flat = 0; flat < ya.Length; flat++)
            {
                var rest = flat;
                for (var d = dims.Length - 1; d >= 0; d--)
                {
                    index[d] = rest % dims[d];
                    rest /= dims[d];
                }

                var av = a[Pick(index, a.Shape)];
                var bv = b[Pick(index, b.Shape)];
                var what = $"{dtype} {Shape.Format(shapeA)} op {Shape.Format(shapeB)} at [{string.Join(", ", index)}]";
                Assert.True(ya[flat] == (dtype == DType.Float32 ? (float)av - (float)bv : av - bv), $"{what}: {ya[flat]} against {av} − {bv}");
                Assert.True(qa[flat] == (dtype == DType.Float32 ? (float)av / (float)bv : av / bv), $"{what}: {qa[flat]} against {av} / {bv}");
            }
        }

        // The index of an operand of shape s (aligned at the right, size-1 dims at 0) for an element of the result.
        static int[] Pick(int[] index, Shape s)
        {
            var r = new int[s.Rank];
            for (var d = 0; d < s.Rank; d++)
            {
                r[d] = s[d] == 1 ? 0 : index[index.Length - s.Rank + d];
            }

            return r;
        }
    }

    [Fact]
    public void BroadcastGradientsAreSummedBackToEachInputsShape()
    {
        // d/db sum(a + b) with b a row of a [2, 3] matrix: each element of b is used once per row.
        var a = Tensor.Ones(2, 3).WithRequiresGrad();
        var b = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        (a + b).Sum().Backward();
        Assert.Equal(new double[] { 2, 2, 2 }, b.Grad!.ToArray());
        Assert.Equal(new[] { 3 }, b.Grad.Shape.ToArray());
        Assert.Equal(new double[] { 1, 1, 1, 1, 1, 1 }, a.Grad!.ToArray());

        // [1, 3] with [4, 1].
        var r = Tensor.FromArray(new double[] { 1, 2, 3 }, 1, 3).WithRequiresGrad();
        var c = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, 4, 1).WithRequiresGrad();
        (r + c).Sum().Backward();
        Assert.Equal(new[] { 1, 3 }, r.Grad!.Shape.ToArray());
        Assert.Equal(new double[] { 4, 4, 4 }, r.Grad.ToArray());
        Assert.Equal(new[] { 4, 1 }, c.Grad!.Shape.ToArray());
        Assert.Equal(new double[] { 3, 3, 3, 3 }, c.Grad.ToArray());

        // Mul: d/dw sum(m ⊙ w) = column sums of m; d/dm = w repeated.
        var m = Tensor.From(new double[,] { { 1, 2, 3 }, { 4, 5, 6 } }).WithRequiresGrad();
        var w = Tensor.From(10.0, 20.0, 30.0).WithRequiresGrad();
        (m * w).Sum().Backward();
        Assert.Equal(new double[] { 5, 7, 9 }, w.Grad!.ToArray());
        Assert.Equal(new double[] { 10, 20, 30, 10, 20, 30 }, m.Grad!.ToArray());

        // A scalar tensor and batch dims: [2, 1, 3] - [4, 1] - scalar.
        var x = Tensor.Ones(2, 1, 3).WithRequiresGrad();
        var y = Tensor.Ones(4, 1).WithRequiresGrad();
        var s = Tensor.Scalar(1).WithRequiresGrad();
        (x - y - s).Sum().Backward();
        Assert.Equal(new[] { 2, 1, 3 }, x.Grad!.Shape.ToArray());
        Assert.All(x.Grad.ToArray(), v => Assert.Equal(4.0, v));
        Assert.Equal(new[] { 4, 1 }, y.Grad!.Shape.ToArray());
        Assert.All(y.Grad.ToArray(), v => Assert.Equal(-6.0, v));
        Assert.Equal(0, s.Grad!.Rank);
        Assert.Equal(-24.0, s.Grad.Item());

        // Div with a broadcast denominator: d/db sum(a / b) = −Σ_rows a / b².
        var num = Tensor.From(new double[,] { { 1, 2 }, { 3, 4 } });
        var den = Tensor.From(2.0, 4.0).WithRequiresGrad();
        (num / den).Sum().Backward();
        AssertClose([-(1 + 3) / 4.0, -(2 + 4) / 16.0], den.Grad!.ToArray());
    }

    // ---------------------------------------------------------------- IEEE special values

    [Fact]
    public void IeeeSpecialValuesFollowPyTorch()
    {
        var log = Tensor.From(-1.0, 0.0, 1.0).Log().ToArray();
        Assert.True(double.IsNaN(log[0]));
        Assert.Equal(double.NegativeInfinity, log[1]);
        Assert.Equal(0.0, log[2]);

        var div = (Tensor.From(0.0, 1.0, -1.0) / Tensor.From(0.0, 0.0, 0.0)).ToArray();
        Assert.True(double.IsNaN(div[0]));
        Assert.Equal(double.PositiveInfinity, div[1]);
        Assert.Equal(double.NegativeInfinity, div[2]);

        Assert.True(double.IsNaN(Tensor.From(-1.0).Sqrt()[0]));
        Assert.Equal(double.PositiveInfinity, (1.0 / Tensor.Scalar(0)).Item());

        var f = Tensor.From(-1f, 0f);
        var fl = f.Log().ToArray<float>();
        Assert.True(float.IsNaN(fl[0]));
        Assert.Equal(float.NegativeInfinity, fl[1]);
        Assert.True(float.IsNaN(f.Sqrt().ToArray<float>()[0]));
        Assert.Equal(float.PositiveInfinity, (1.0 / f).ToArray<float>()[1]);

        // The gradient of log at 0 is inf, not an exception.
        var z = Tensor.From(0.0).WithRequiresGrad();
        z.Log().Sum().Backward();
        Assert.Equal(double.PositiveInfinity, z.Grad![0]);
    }

    // ---------------------------------------------------------------- bad input

    [Fact]
    public void IncompatibleShapesNameTheOpAndBothShapes()
    {
        var a = Tensor.Ones(2, 3);
        var b = Tensor.Ones(4);
        foreach (var (op, f) in new (string, Func<Tensor>)[]
        {
            ("Add", () => a + b),
            ("Mul", () => a * b),
            ("Sub", () => a - b),
            ("Div", () => a / b),
        })
        {
            var ex = Assert.Throws<ArgumentException>(f);
            Assert.Contains(op, ex.Message);
            Assert.Contains("[2, 3]", ex.Message);
            Assert.Contains("[4]", ex.Message);
        }
    }

    [Fact]
    public void MatMulShapeErrorsNameTheOpAndTheOperandsShapes()
    {
        void Check(Tensor x, Tensor y)
        {
            var ex = Assert.Throws<ArgumentException>(() => x.MatMul(y));
            Assert.Contains("MatMul", ex.Message);
            Assert.Contains(x.Shape.ToString(), ex.Message);
            Assert.Contains(y.Shape.ToString(), ex.Message);
        }

        Check(Tensor.Ones(2, 3), Tensor.Ones(4, 5));
        Check(Tensor.Ones(2, 3), Tensor.Ones(4));
        Check(Tensor.Ones(3), Tensor.Ones(4));
        Check(Tensor.Ones(3), Tensor.Ones(2, 4, 5));
        Check(Tensor.Ones(2, 2, 3), Tensor.Ones(3, 3, 4));
        Check(Tensor.Scalar(1), Tensor.Ones(3));
    }

    [Fact]
    public void DimOutOfRangeNamesTheOpTheDimAndTheRank()
    {
        var x = Tensor.Ones(2, 3);
        foreach (var (op, dim, f) in new (string, int, Func<Tensor>)[]
        {
            ("Sum", 2, () => x.Sum(2)),
            ("Sum", -3, () => x.Sum(-3)),
            ("Mean", 5, () => x.Mean(5)),
            ("Max", 2, () => x.Max(2)),
            ("Softmax", 2, () => x.Softmax(2)),
            ("LogSoftmax", -3, () => x.LogSoftmax(-3)),
            ("Transpose", 2, () => x.Transpose(0, 2)),
            ("Unsqueeze", 3, () => x.Unsqueeze(3)),
            ("Unsqueeze", -4, () => x.Unsqueeze(-4)),
        })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(f);
            Assert.Contains(op, ex.Message);
            Assert.Contains($"dim {dim}", ex.Message);
            Assert.Contains("rank 2", ex.Message);
        }

        // The boundaries are accepted.
        Assert.Equal(new[] { 2, 3, 1 }, x.Unsqueeze(2).Shape.ToArray());
        Assert.Equal(new[] { 1, 2, 3 }, x.Unsqueeze(-3).Shape.ToArray());
        Assert.Equal(new[] { 2 }, x.Sum(-1).Shape.ToArray());
    }

    [Fact]
    public void BackwardOnANonScalarWithoutAGradientThrows()
    {
        var x = Tensor.Ones(2, 3).WithRequiresGrad();
        var y = x * 2.0;
        var ex = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("Backward", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Null(x.Grad);

        // Nothing was released: a correct call afterwards works.
        y.Backward(Tensor.Ones(2, 3));
        Assert.All(x.Grad!.ToArray(), v => Assert.Equal(2.0, v));
    }

    [Fact]
    public void AGradientOfTheWrongShapeOrDTypeIsRejectedAndChangesNothing()
    {
        var x = Tensor.Ones(2, 3).WithRequiresGrad();
        var y = x.Exp();
        var ex = Assert.Throws<ArgumentException>(() => y.Backward(Tensor.Ones(3)));
        Assert.Contains("Backward", ex.Message);
        Assert.Contains("[3]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Null(x.Grad);

        var dt = Assert.Throws<ArgumentException>(() => y.Backward(Tensor.Ones(new Shape(2, 3), DType.Float32)));
        Assert.Contains("float32", dt.Message);
        Assert.Contains("float64", dt.Message);
        Assert.Null(x.Grad);

        // Also when only the second of two outputs is wrong: the first is not applied.
        var z = x * 3.0;
        Assert.Throws<ArgumentException>(() => Autodiff.Backward([y, z], [Tensor.Ones(2, 3), Tensor.Ones(6)]));
        Assert.Null(x.Grad);

        y.Backward(Tensor.Ones(2, 3));
        Assert.All(x.Grad!.ToArray(), v => Assert.Equal(Math.E, v, 12));
    }

    [Fact]
    public void BackwardOnATensorThatDoesNotRequireGradThrows()
    {
        var x = Tensor.Ones(2);
        var ex = Assert.Throws<InvalidOperationException>(() => (x * 2.0).Sum().Backward());
        Assert.Contains("does not require grad", ex.Message);
    }

    [Fact]
    public void ANegativeSizeIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => Tensor.Zeros(2, -1));
        Assert.Contains("[2, -1]", ex.Message);
        Assert.Contains("negative", ex.Message);
        Assert.Throws<ArgumentException>(() => Tensor.Ones(2).Reshape(-2, -1));
    }

    [Fact]
    public void ReshapeToADifferentElementCountThrows()
    {
        var x = Tensor.Ones(2, 3);
        var ex = Assert.Throws<ArgumentException>(() => x.Reshape(4));
        Assert.Contains("Reshape", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Contains("[4]", ex.Message);

        var infer = Assert.Throws<ArgumentException>(() => x.Reshape(-1, 4));
        Assert.Contains("Reshape", infer.Message);
        Assert.Contains("[2, 3]", infer.Message);
        Assert.Equal(new[] { 3, 2 }, x.Reshape(-1, 2).Shape.ToArray());
    }

    [Fact]
    public void RequiresGradCannotBeSetOnANonLeaf()
    {
        var x = Tensor.Ones(2).WithRequiresGrad();
        var y = x.Exp();
        var ex = Assert.Throws<InvalidOperationException>(() => y.RequiresGrad = false);
        Assert.Contains("leaf", ex.Message);
        Assert.Contains("Exp", ex.Message);
        Assert.True(y.RequiresGrad);
        Assert.Equal("Exp", y.OpName);
    }

    [Fact]
    public void AGradOfTheWrongShapeOrDTypeCannotBeAssigned()
    {
        var x = Tensor.Ones(2, 3).WithRequiresGrad();
        var ex = Assert.Throws<ArgumentException>(() => x.Grad = Tensor.Ones(3));
        Assert.Contains("Grad", ex.Message);
        Assert.Contains("[3]", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);
        Assert.Null(x.Grad);

        var dt = Assert.Throws<ArgumentException>(() => x.Grad = Tensor.Ones(new Shape(2, 3), DType.Float32));
        Assert.Contains("float32", dt.Message);
        Assert.Null(x.Grad);

        x.Grad = Tensor.Full(new Shape(2, 3), 5);
        (x * 2.0).Sum().Backward();
        Assert.All(x.Grad!.ToArray(), v => Assert.Equal(7.0, v));
    }

    [Fact]
    public void AFailedOpLeavesTheGraphUsable()
    {
        var x = Tensor.Ones(2, 3).WithRequiresGrad();
        var h = x * 2.0;
        Assert.Throws<ArgumentException>(() => h + Tensor.Ones(4));
        Assert.Throws<ArgumentOutOfRangeException>(() => h.Sum(7));
        Assert.Throws<ArgumentException>(() => h.Reshape(5));
        h.Sum().Backward();
        Assert.All(x.Grad!.ToArray(), v => Assert.Equal(2.0, v));
    }

    [Fact]
    public void AccumulatingAfterCreateGraphDoesNotWriteIntoTheCallersTensors()
    {
        // With createGraph the first gradient may be stored as is; a later plain backward must not add into it in
        // place when that tensor belongs to someone else (here: the gradient the caller passed in).
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var seed = Tensor.From(10.0, 20.0);
        (x + Tensor.Zeros(2)).Backward(seed, createGraph: true);
        Assert.Equal(new double[] { 10, 20 }, x.Grad!.ToArray());

        (x * 1.0).Sum().Backward();
        Assert.Equal(new double[] { 11, 21 }, x.Grad!.ToArray());
        Assert.Equal(new double[] { 10, 20 }, seed.ToArray());

        x.ZeroGrad(setToNull: false);
        Assert.Equal(new double[] { 10, 20 }, seed.ToArray());
        Assert.Equal(new double[] { 0, 0 }, x.Grad!.ToArray());

        // A gradOutput that itself requires grad stays differentiable, and is still never written into.
        var w = Tensor.From(3.0, 4.0).WithRequiresGrad();
        var v = Tensor.From(1.0, 2.0).WithRequiresGrad();
        (w + Tensor.Zeros(2)).Backward(v, createGraph: true);
        Assert.Equal(new double[] { 1, 1 }, Autodiff.Grad(w.Grad!.Sum(), v).ToArray());
        (w * 1.0).Sum().Backward();
        Assert.Equal(new double[] { 2, 3 }, w.Grad!.ToArray());
        Assert.Equal(new double[] { 1, 2 }, v.ToArray());

        (w + Tensor.Zeros(2)).Backward(v, createGraph: true);
        w.Grad = null;
        (w + Tensor.Zeros(2)).Backward(v, createGraph: true);
        w.ZeroGrad(setToNull: false);
        Assert.Equal(new double[] { 0, 0 }, w.Grad!.ToArray());
        Assert.Equal(new double[] { 1, 2 }, v.ToArray());
    }

    /// <summary>
    /// Tensors a large, thread-split kernel worked on are collectable once the program drops them: the helper threads
    /// keep no reference to their last job (they did, through a stale frame slot, which kept two 4 MB arrays alive
    /// across every collection and made each one copy them).
    /// </summary>
    [Fact]
    public void LargeSplitKernelsLeaveNothingAliveBehind()
    {
        var (output, storage, gradient) = RunLargeSoftmax();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(output.IsAlive, "the softmax output is still reachable");
        Assert.False(storage.IsAlive, "the softmax output's storage is still reachable");
        Assert.False(gradient.IsAlive, "the gradient is still reachable");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (WeakReference Output, WeakReference Storage, WeakReference Gradient) RunLargeSoftmax()
    {
        var x = Tensor.RandN(new Shape(512, 512), 3, DType.Float32).WithRequiresGrad();
        var y = x.Softmax(-1);
        var dx = Autodiff.Grad(y, x, Tensor.OnesLike(y));
        return (new WeakReference(y), new WeakReference(y.Storage), new WeakReference(dx));
    }
}
