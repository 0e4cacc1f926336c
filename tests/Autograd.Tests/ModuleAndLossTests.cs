using Autograd.Nn;
using MathNet.Numerics;

namespace Autograd.Tests;

/// <summary>
/// The neural-network layer: module parameter registration and naming, train/eval mode, <see cref="Linear"/>
/// (PyTorch's initialisation, the forward pass against a hand computation), the activation modules and the exact
/// GELU, <see cref="Dropout"/>, and the losses of <see cref="Functional"/> against numbers computed here with
/// plain double arithmetic, finite differences and the closed-form gradients.
/// </summary>
public class ModuleAndLossTests
{
    private static void AssertClose(double[] expected, double[] actual, double tol = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }

    private static void AssertClose(double expected, double actual, double tol = 1e-12)
        => AssertClose([expected], [actual], tol);

    private static void AssertGradCheck(Func<Tensor[], Tensor> f, Tensor[] inputs, string what)
    {
        var first = GradCheck.Check(f, inputs);
        Assert.True(first.Passed, $"{what}: {first.Message}");
        var second = GradCheck.GradGradCheck(x => [f(x)], inputs);
        Assert.True(second.Passed, $"{what}: {second.Message}");
    }

    private static double Sigmoid(double x) => 1.0 / (1.0 + Math.Exp(-x));

    /// <summary>log Σ_c exp(row[c]), computed with the maximum subtracted.</summary>
    private static double LogSumExp(double[] row)
    {
        var m = row.Max();
        return m + Math.Log(row.Sum(v => Math.Exp(v - m)));
    }

    private static double[] Row(double[,] a, int i)
    {
        var r = new double[a.GetLength(1)];
        for (var j = 0; j < r.Length; j++)
        {
            r[j] = a[i, j];
        }

        return r;
    }

    // ---------------------------------------------------------------- Test modules

    /// <summary>A module that exposes registration, to probe the naming rules.</summary>
    private sealed class Probe : Module
    {
        public Tensor AddParameter(string name, Tensor parameter) => RegisterParameter(name, parameter);

        public T AddModule<T>(string name, T module)
            where T : Module => RegisterModule(name, module);

        public override Tensor Forward(Tensor input) => input;
    }

    /// <summary>A child with its own parameter and a grandchild: y = tanh(Linear(x)) ⊙ scale.</summary>
    private sealed class Block : Module
    {
        public Block(int seed)
        {
            // The child is registered first, the parameter second: own parameters are still listed first.
            Inner = RegisterModule("inner", new Sequential(new Linear(2, 3, seed), new Tanh()));
            Scale = RegisterParameter("scale", Tensor.Ones(3));
        }

        public Sequential Inner { get; }

        public Tensor Scale { get; }

        public override Tensor Forward(Tensor input) => Inner.Forward(input) * Scale;
    }

    private sealed class Outer : Module
    {
        public Outer()
        {
            Body = RegisterModule("body", new Block(1));
            Drop = RegisterModule("drop", new Dropout(0.5, 3));
            Head = RegisterModule("head", new Linear(3, 1, 2));
            Gain = RegisterParameter("gain", Tensor.From(2.0));
        }

        public Block Body { get; }

        public Dropout Drop { get; }

        public Linear Head { get; }

        public Tensor Gain { get; }

        public override Tensor Forward(Tensor input) => Head.Forward(Drop.Forward(Body.Forward(input))) * Gain;
    }

    private static Sequential SmallMlp() => new(new Linear(4, 3, seed: 1), new ReLU(), new Linear(3, 2, seed: 2));

    // ---------------------------------------------------------------- Module: registration and naming

    [Fact]
    public void SequentialNamesItsParametersByPositionInOrder()
    {
        var model = SmallMlp();
        var named = model.NamedParameters().ToArray();
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], named.Select(p => p.Key).ToArray());
        Assert.Equal([[3, 4], [3], [2, 3], [2]], named.Select(p => p.Value.Shape.ToArray()).ToArray());

        // The named tensors are the layers' own tensors, and Parameters() follows the same order.
        var l0 = (Linear)model.Layers[0];
        var l2 = (Linear)model.Layers[2];
        Assert.Same(l0.Weight, named[0].Value);
        Assert.Same(l0.Bias, named[1].Value);
        Assert.Same(l2.Weight, named[2].Value);
        Assert.Same(l2.Bias, named[3].Value);
        Assert.Equal(named.Select(p => p.Value), model.Parameters());
        Assert.Equal(["0", "1", "2"], model.NamedChildren().Select(c => c.Key).ToArray());
    }

    [Fact]
    public void NestedModulesGetDottedPrefixes()
    {
        var model = new Outer();
        Assert.Equal(
            ["gain", "body.scale", "body.inner.0.weight", "body.inner.0.bias", "head.weight", "head.bias"],
            model.NamedParameters().Select(p => p.Key).ToArray());
        Assert.Same(model.Body.Scale, model.NamedParameters().Single(p => p.Key == "body.scale").Value);
        Assert.Same(((Linear)model.Body.Inner.Layers[0]).Weight, model.NamedParameters().Single(p => p.Key == "body.inner.0.weight").Value);
        Assert.Equal(["body", "drop", "head"], model.NamedChildren().Select(c => c.Key).ToArray());

        // 1 + 3 + (2·3 + 3) + (3·1 + 1)
        Assert.Equal(17, model.ParameterCount);
    }

    [Fact]
    public void InvalidAndDuplicateNamesThrow()
    {
        var m = new Probe();
        m.AddParameter("w", Tensor.Zeros(2));
        m.AddModule("child", new ReLU());

        var dup = Assert.Throws<ArgumentException>(() => m.AddParameter("w", Tensor.Zeros(2)));
        Assert.Contains("'w'", dup.Message, StringComparison.Ordinal);
        Assert.Contains("already registered", dup.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => m.AddModule("w", new Tanh()));
        Assert.Throws<ArgumentException>(() => m.AddParameter("child", Tensor.Zeros(1)));
        Assert.Throws<ArgumentException>(() => m.AddModule("child", new Tanh()));

        var dot = Assert.Throws<ArgumentException>(() => m.AddParameter("a.b", Tensor.Zeros(2)));
        Assert.Contains("'a.b'", dot.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => m.AddModule("x.y", new ReLU()));
        Assert.Throws<ArgumentException>(() => m.AddModule(".", new ReLU()));
        Assert.Throws<ArgumentException>(() => m.AddParameter(string.Empty, Tensor.Zeros(2)));

        // The failed registrations left nothing behind.
        Assert.Equal(["w"], m.NamedParameters().Select(p => p.Key).ToArray());
        Assert.Equal(["child"], m.NamedChildren().Select(c => c.Key).ToArray());
    }

    [Fact]
    public void ParametersAreLeavesThatRequireGrad()
    {
        foreach (var (name, p) in new Outer().NamedParameters())
        {
            Assert.True(p.IsLeaf, name);
            Assert.True(p.RequiresGrad, name);
            Assert.Null(p.Grad);
        }

        // A plain tensor becomes a parameter; a tensor produced by an operation is refused.
        var m = new Probe();
        var plain = m.AddParameter("plain", Tensor.Zeros(3));
        Assert.True(plain.RequiresGrad);
        var produced = Tensor.Ones(3).WithRequiresGrad() * 2.0;
        var ex = Assert.Throws<ArgumentException>(() => m.AddParameter("produced", produced));
        Assert.Contains("leaf", ex.Message, StringComparison.Ordinal);
        Assert.Single(m.Parameters());
    }

    [Fact]
    public void ParameterCountSumsEveryElement()
    {
        Assert.Equal((4 * 3) + 3 + (3 * 2) + 2, SmallMlp().ParameterCount);
        Assert.Equal(784 * 256, new Linear(784, 256, seed: 0, bias: false).ParameterCount);
        Assert.Equal(0, new Sequential(new ReLU(), new Dropout(0.1, 0)).ParameterCount);
    }

    [Fact]
    public void TrainAndEvalPropagateToEveryDescendant()
    {
        var model = new Outer();
        Module[] all = [model, model.Body, model.Body.Inner, model.Body.Inner.Layers[0], model.Body.Inner.Layers[1], model.Drop, model.Head];
        Assert.All(all, m => Assert.True(m.IsTraining));

        Assert.Same(model, model.Eval());
        Assert.All(all, m => Assert.False(m.IsTraining));

        Assert.Same(model, model.Train());
        Assert.All(all, m => Assert.True(m.IsTraining));

        model.Train(false);
        Assert.All(all, m => Assert.False(m.IsTraining));

        // Switching a subtree leaves the parent alone.
        model.Body.Train();
        Assert.False(model.IsTraining);
        Assert.True(model.Body.Inner.Layers[1].IsTraining);
        Assert.False(model.Head.IsTraining);
    }

    [Fact]
    public void ZeroGradClearsTheGradientOfEveryParameter()
    {
        var model = new Outer();
        model.Eval();
        var x = Tensor.RandN(new Shape(5, 2), seed: 4);
        model.Forward(x).Sum().Backward();
        Assert.All(model.NamedParameters(), p => Assert.NotNull(p.Value.Grad));
        Assert.Contains(model.Parameters(), p => p.Grad!.ToArray().Any(v => v != 0));

        model.ZeroGrad(setToNull: false);
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.NotNull(p.Grad);
            Assert.Equal(p.Shape, p.Grad!.Shape);
            Assert.True(p.Grad.ToArray().All(v => v == 0), name);
        }

        model.Forward(x).Sum().Backward();
        model.ZeroGrad();
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void ToStringDescribesTheStructure()
    {
        Assert.Equal(
            "Sequential(\n  (0): Linear(in=4, out=3, bias=True)\n  (1): ReLU()\n  (2): Linear(in=3, out=2, bias=True)\n)",
            SmallMlp().ToString());
        Assert.Equal(
            "Outer(\n"
            + "  (body): Block(\n"
            + "    (inner): Sequential(\n"
            + "      (0): Linear(in=2, out=3, bias=True)\n"
            + "      (1): Tanh()\n"
            + "    )\n"
            + "  )\n"
            + "  (drop): Dropout(p=0.5)\n"
            + "  (head): Linear(in=3, out=1, bias=True)\n"
            + ")",
            new Outer().ToString());
        Assert.Equal("Linear(in=5, out=7, bias=False)", new Linear(5, 7, seed: 0, bias: false).ToString());
    }

    // ---------------------------------------------------------------- Linear

    [Fact]
    public void LinearInitialisationUsesPyTorchsBounds()
    {
        var layer = new Linear(784, 256, seed: 42);
        var bound = 1.0 / Math.Sqrt(784);
        var w = layer.Weight.ToArray();
        var b = layer.Bias!.ToArray();
        Assert.Equal(new Shape(256, 784), layer.Weight.Shape);
        Assert.Equal(new Shape(256), layer.Bias.Shape);
        Assert.All(w, v => Assert.InRange(v, -bound, bound));
        Assert.All(b, v => Assert.InRange(v, -bound, bound));

        // The spread uses the whole range: uniform on ±bound, so max |w| is near the bound, the mean near 0 and the
        // variance near bound²/3.
        Assert.True(w.Max(Math.Abs) > 0.8 * bound, $"max |w| = {w.Max(Math.Abs)}, bound {bound}");
        Assert.True(b.Max(Math.Abs) > 0.8 * bound, $"max |b| = {b.Max(Math.Abs)}, bound {bound}");
        Assert.True(w.Min() < -0.99 * bound && w.Max() > 0.99 * bound);
        var mean = w.Average();
        var variance = w.Average(v => (v - mean) * (v - mean));
        Assert.True(Math.Abs(mean) < 0.01 * bound, $"mean {mean}");
        Assert.True(Math.Abs((variance / (bound * bound / 3)) - 1) < 0.02, $"variance {variance}, expected {bound * bound / 3}");

        // A small layer: the bound depends on the number of inputs only.
        var small = new Linear(3, 50, seed: 5);
        var sb = 1.0 / Math.Sqrt(3);
        Assert.All(small.Weight.ToArray(), v => Assert.InRange(v, -sb, sb));
        Assert.True(small.Weight.ToArray().Max(Math.Abs) > 0.8 * sb);
    }

    [Fact]
    public void LinearInitialisationIsDeterministicPerSeed()
    {
        var a = new Linear(20, 10, seed: 7);
        var b = new Linear(20, 10, seed: 7);
        var c = new Linear(20, 10, seed: 8);
        Assert.Equal(a.Weight.ToArray(), b.Weight.ToArray());
        Assert.Equal(a.Bias!.ToArray(), b.Bias!.ToArray());
        Assert.NotEqual(a.Weight.ToArray(), c.Weight.ToArray());
        Assert.NotEqual(a.Bias.ToArray(), c.Bias!.ToArray());

        // The bias is not a copy of the first row of the weight.
        Assert.NotEqual(a.Weight.ToArray()[..10], a.Bias.ToArray());
    }

    [Fact]
    public void LinearInFloat32AndFloat64()
    {
        var f32 = new Linear(6, 4, seed: 3, dtype: DType.Float32);
        var f64 = new Linear(6, 4, seed: 3);
        Assert.Equal(DType.Float32, f32.Weight.DType);
        Assert.Equal(DType.Float32, f32.Bias!.DType);
        Assert.Equal(DType.Float64, f64.Weight.DType);
        Assert.Equal(DType.Float64, f64.Bias!.DType);
        Assert.True(f32.Weight.RequiresGrad && f32.Bias.RequiresGrad);

        // The same draws, rounded to float32.
        AssertClose(f64.Weight.ToArray(), f32.Weight.ToArray(), 1e-7);
        AssertClose(f64.Bias.ToArray(), f32.Bias.ToArray(), 1e-7);

        var x64 = Tensor.RandN(new Shape(3, 6), seed: 11);
        var x32 = x64.To(DType.Float32);
        var y32 = f32.Forward(x32);
        var y64 = f64.Forward(x64);
        Assert.Equal(DType.Float32, y32.DType);
        Assert.Equal(DType.Float64, y64.DType);
        AssertClose(y64.ToArray(), y32.ToArray(), 1e-5);

        // Float32 gradients reach the parameters.
        y32.Sum().Backward();
        Assert.Equal(DType.Float32, f32.Weight.Grad!.DType);
        Assert.Equal(new Shape(4, 6), f32.Weight.Grad.Shape);
        AssertClose([3, 3, 3, 3], f32.Bias.Grad!.ToArray());
    }

    private static double[] LinearByHand(double[] x, int rows, Linear layer)
    {
        var w = layer.Weight.ToArray();
        var b = layer.Bias?.ToArray();
        int n = layer.InFeatures, m = layer.OutFeatures;
        var y = new double[rows * m];
        for (var r = 0; r < rows; r++)
        {
            for (var j = 0; j < m; j++)
            {
                var s = b?[j] ?? 0.0;
                for (var k = 0; k < n; k++)
                {
                    s += x[(r * n) + k] * w[(j * n) + k];
                }

                y[(r * m) + j] = s;
            }
        }

        return y;
    }

    [Fact]
    public void LinearForwardIsXTimesWTransposedPlusB()
    {
        var layer = new Linear(4, 3, seed: 9);
        var x = Tensor.From(new double[,] { { 1, -2, 0.5, 3 }, { 0, 0.25, -1, 2 } });
        var y = layer.Forward(x);
        Assert.Equal(new Shape(2, 3), y.Shape);
        AssertClose(LinearByHand(x.ToArray(), 2, layer), y.ToArray());
        Assert.Equal(y.ToArray(), layer.Call(x).ToArray());

        // Against MathNet's matrix product too.
        var w = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfRowMajor(3, 4, layer.Weight.ToArray());
        var xm = MathNet.Numerics.LinearAlgebra.Matrix<double>.Build.DenseOfRowMajor(2, 4, x.ToArray());
        var expected = xm * w.Transpose();
        var bias = layer.Bias!.ToArray();
        for (var i = 0; i < 2; i++)
        {
            for (var j = 0; j < 3; j++)
            {
                AssertClose(expected[i, j] + bias[j], y[i, j]);
            }
        }

        // A single vector [in] gives [out].
        var v = layer.Forward(Tensor.From(1.0, -2.0, 0.5, 3.0));
        Assert.Equal(new Shape(3), v.Shape);
        AssertClose(LinearByHand([1, -2, 0.5, 3], 1, layer), v.ToArray());
    }

    [Fact]
    public void LinearGradientsPassGradCheck()
    {
        var layer = new Linear(3, 2, seed: 6);
        var x = Tensor.RandN(new Shape(4, 3), seed: 1).WithRequiresGrad();
        var r = GradCheck.Check(t => layer.Forward(t[0]), [x, layer.Weight, layer.Bias!]);
        Assert.True(r.Passed, r.Message);
        var rr = GradCheck.GradGradCheck(t => [layer.Forward(t[0]).Tanh()], [x, layer.Weight, layer.Bias!]);
        Assert.True(rr.Passed, rr.Message);
    }

    [Fact]
    public void LinearAcceptsBatchedInput()
    {
        var layer = new Linear(4, 5, seed: 2);
        var x = Tensor.RandN(new Shape(2, 3, 4), seed: 8);
        var y = layer.Forward(x);
        Assert.Equal(new Shape(2, 3, 5), y.Shape);
        AssertClose(LinearByHand(x.ToArray(), 6, layer), y.ToArray());
        AssertClose(layer.Forward(x.Reshape(6, 4)).ToArray(), y.ToArray());
    }

    [Fact]
    public void LinearRejectsAWrongLastDim()
    {
        var layer = new Linear(4, 3, seed: 0);
        var ex = Assert.Throws<ArgumentException>(() => layer.Forward(Tensor.Zeros(2, 5)));
        Assert.Contains("[2, 5]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("4", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Linear", ex.Message, StringComparison.Ordinal);

        var ex3 = Assert.Throws<ArgumentException>(() => layer.Forward(Tensor.Zeros(2, 4, 3)));
        Assert.Contains("[2, 4, 3]", ex3.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => layer.Forward(Tensor.Scalar(1.0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(0, 3, seed: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(3, -1, seed: 0));
    }

    [Fact]
    public void LinearWithoutBias()
    {
        var layer = new Linear(4, 3, seed: 9, bias: false);
        Assert.Null(layer.Bias);
        Assert.Equal(["weight"], layer.NamedParameters().Select(p => p.Key).ToArray());
        Assert.Equal(12, layer.ParameterCount);

        var withBias = new Linear(4, 3, seed: 9);
        Assert.Equal(withBias.Weight.ToArray(), layer.Weight.ToArray());
        var x = Tensor.RandN(new Shape(5, 4), seed: 3);
        var y = layer.Forward(x);
        AssertClose(LinearByHand(x.ToArray(), 5, layer), y.ToArray());
        var b = withBias.Bias!.ToArray();
        var yb = withBias.Forward(x).ToArray();
        AssertClose(y.ToArray().Select((v, i) => v + b[i % 3]).ToArray(), yb);
    }

    // ---------------------------------------------------------------- Activations

    private static readonly double[] ActivationPoints = [-10, -6, -3, -1.5, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 1.5, 3, 6, 10, 40];

    [Fact]
    public void ActivationModulesComputeTheirFunctions()
    {
        var x = Tensor.From(ActivationPoints);
        AssertClose(ActivationPoints.Select(v => Math.Max(v, 0)).ToArray(), new ReLU().Forward(x).ToArray(), 0);
        AssertClose(ActivationPoints.Select(Math.Tanh).ToArray(), new Tanh().Forward(x).ToArray(), 1e-15);
        AssertClose(ActivationPoints.Select(Sigmoid).ToArray(), new Sigmoid().Forward(x).ToArray(), 1e-14);

        // Shapes are kept, float32 stays float32.
        var x2 = Tensor.RandN(new Shape(3, 4), seed: 2).To(DType.Float32);
        foreach (Module m in new Module[] { new ReLU(), new Tanh(), new Sigmoid(), new GELU() })
        {
            var y = m.Forward(x2);
            Assert.Equal(x2.Shape, y.Shape);
            Assert.Equal(DType.Float32, y.DType);
        }

        Assert.Equal("ReLU()", new ReLU().ToString());
        Assert.Equal("GELU()", new GELU().ToString());
    }

    [Fact]
    public void GeluIsTheExactErfForm()
    {
        var x = Tensor.From(ActivationPoints);
        var expected = ActivationPoints.Select(v => 0.5 * v * (1 + SpecialFunctions.Erf(v / Math.Sqrt(2)))).ToArray();
        AssertClose(expected, new GELU().Forward(x).ToArray(), 1e-14);
        AssertClose(expected, Functional.Gelu(x).ToArray(), 1e-14);

        // Independent reference values: GELU(x) = x·Φ(x) with Φ(1) = 0.841344746068542948585…,
        // Φ(−1) = 0.158655253931457051414…, Φ(2) = 0.977249868051820792799…, Φ(−3) = 0.00134989803163009452665…
        var y = new GELU().Forward(Tensor.From(1.0, -1.0, 2.0, -3.0)).ToArray();
        AssertClose([0.841344746068542948585, -0.158655253931457051414, 2 * 0.977249868051820792799, -3 * 0.00134989803163009452665], y, 1e-13);

        // Large arguments: the identity far right, zero far left (no NaN).
        var big = new GELU().Forward(Tensor.From(40.0, -40.0, 1000.0, -1000.0)).ToArray();
        Assert.Equal(40.0, big[0]);
        Assert.Equal(0.0, big[1], 0);
        Assert.Equal(1000.0, big[2]);
        Assert.Equal(0.0, big[3], 0);

        // It is not the tanh approximation: at x = 1 the two differ by about 1.6e-4.
        var approx = 0.5 * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (1 + (0.044715 * 1))));
        Assert.True(Math.Abs(y[0] - approx) > 1e-4);

        // Float32.
        var y32 = new GELU().Forward(Tensor.From(ActivationPoints.Select(v => (float)v).ToArray())).ToArray();
        AssertClose(expected, y32, 1e-6);
    }

    [Fact]
    public void GeluGradientsHaveTheirClosedFormsAndTheModulePassesGradChecks()
    {
        // Functional.Gelu and Erf are checked by finite differences at these points as rows of OpTable.
        double[] points = [-3, -1.2, -0.5, -1e-3, 0, 0.3, 1, 2.5];
        AssertGradCheck(t => new GELU().Forward(t[0]).Sum(), [Tensor.RandN(new Shape(3, 4), seed: 5).WithRequiresGrad()], "GELU module");

        // The closed forms: d erf/dx = 2/√π e^(−x²); d GELU/dx = Φ(x) + x φ(x).
        var x = Tensor.From(points).WithRequiresGrad();
        var gErf = Autodiff.Grad(x.Erf().Sum(), x).ToArray();
        AssertClose(points.Select(v => 2 / Math.Sqrt(Math.PI) * Math.Exp(-v * v)).ToArray(), gErf, 1e-14);
        var gGelu = Autodiff.Grad(Functional.Gelu(x).Sum(), x).ToArray();
        AssertClose(
            points.Select(v => (0.5 * (1 + SpecialFunctions.Erf(v / Math.Sqrt(2)))) + (v * Math.Exp(-v * v / 2) / Math.Sqrt(2 * Math.PI))).ToArray(),
            gGelu,
            1e-14);
    }

    // ---------------------------------------------------------------- Dropout

    [Fact]
    public void DropoutIsTheIdentityInEval()
    {
        var d = new Dropout(0.5, seed: 1);
        d.Eval();
        var x = Tensor.RandN(new Shape(10, 10), seed: 3);
        Assert.Equal(x.ToArray(), d.Forward(x).ToArray());
        Assert.Equal(x.ToArray(), d.Forward(x).ToArray());
        Assert.Equal(x.ToArray(), new Sequential(new Dropout(0.9, 0)).Eval().Forward(x).ToArray());
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.3)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    public void DropoutZeroesAboutPAndScalesTheRestExactly(double p)
    {
        const int n = 200_000;
        var d = new Dropout(p, seed: 12);
        var x = Tensor.RandN(new Shape(400, 500), seed: 2);
        var xs = x.ToArray();
        var y = d.Forward(x);
        Assert.Equal(x.Shape, y.Shape);
        var ys = y.ToArray();
        var keep = 1.0 / (1 - p);
        var zeros = 0;
        for (var i = 0; i < n; i++)
        {
            if (ys[i] == 0)
            {
                zeros++;
            }
            else
            {
                Assert.Equal(xs[i] * keep, ys[i]);
            }
        }

        // Binomial(n, p): the fraction is within 6 standard deviations of p.
        var sd = Math.Sqrt(p * (1 - p) / n);
        var frac = zeros / (double)n;
        Assert.True(Math.Abs(frac - p) < 6 * sd, $"p = {p}: {frac} of the elements are zero");

        // The mean is preserved in expectation: E[y] = x.
        var ones = d.Forward(Tensor.Ones(400, 500)).ToArray();
        Assert.True(Math.Abs(ones.Average() - 1) < 6 * Math.Sqrt(p / (1 - p) / n), $"mean {ones.Average()}");
    }

    [Fact]
    public void DropoutInFloat32ScalesByTheRoundedFactor()
    {
        var d = new Dropout(0.3, seed: 4);
        var x = Tensor.RandN(new Shape(1000), seed: 1).To(DType.Float32);
        var y = d.Forward(x);
        Assert.Equal(DType.Float32, y.DType);
        var xs = x.ToArray<float>();
        var ys = y.ToArray<float>();
        var keep = (float)(1.0 / 0.7);
        Assert.Contains(ys, v => v == 0);
        for (var i = 0; i < xs.Length; i++)
        {
            Assert.True(ys[i] == 0 || ys[i] == xs[i] * keep, $"element {i}: {xs[i]} → {ys[i]}");
        }
    }

    [Fact]
    public void DropoutIsReproducibleForASeedAndVariesAcrossCalls()
    {
        var x = Tensor.Ones(50, 40);
        var a = new Dropout(0.5, seed: 7);
        var b = new Dropout(0.5, seed: 7);
        var a1 = a.Forward(x).ToArray();
        var a2 = a.Forward(x).ToArray();
        var a3 = a.Forward(x).ToArray();
        Assert.Equal(a1, b.Forward(x).ToArray());
        Assert.Equal(a2, b.Forward(x).ToArray());
        Assert.Equal(a3, b.Forward(x).ToArray());
        Assert.NotEqual(a1, a2);
        Assert.NotEqual(a2, a3);
        Assert.NotEqual(a1, new Dropout(0.5, seed: 8).Forward(x).ToArray());
    }

    [Fact]
    public void DropoutGradientIsTheMask()
    {
        var d = new Dropout(0.4, seed: 5);
        var x = Tensor.RandN(new Shape(20, 30), seed: 6).WithRequiresGrad();
        var y = d.Forward(x);
        var g = Tensor.RandN(y.Shape, seed: 7);
        y.Backward(g);
        var xs = x.ToArray();
        var ys = y.ToArray();
        var gs = g.ToArray();
        var grad = x.Grad!.ToArray();
        var keep = 1.0 / 0.6;
        var dropped = 0;
        for (var i = 0; i < xs.Length; i++)
        {
            var mask = ys[i] == 0 ? 0.0 : keep;
            dropped += ys[i] == 0 ? 1 : 0;
            Assert.Equal(xs[i] * mask, ys[i]);
            Assert.Equal(gs[i] * mask, grad[i]);
        }

        Assert.InRange(dropped, 1, xs.Length - 1);
    }

    [Fact]
    public void DropoutProbabilityMustBeInZeroToOne()
    {
        foreach (var p in new[] { -0.1, 1.0, 1.5, double.NaN, double.PositiveInfinity })
        {
            var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(p, seed: 0));
            Assert.Equal("p", ex.ParamName);
        }

        // p = 0 is the identity, in training too.
        var d = new Dropout(0, seed: 0);
        Assert.True(d.IsTraining);
        var x = Tensor.RandN(new Shape(30, 30), seed: 1).WithRequiresGrad();
        var y = d.Forward(x);
        Assert.Equal(x.ToArray(), y.ToArray());
        y.Sum().Backward();
        Assert.True(x.Grad!.ToArray().All(v => v == 1));
        Assert.Equal("Dropout(p=0)", d.ToString());
    }

    // ---------------------------------------------------------------- Losses: values

    /// <summary>Checks a loss for every reduction against its per-element values.</summary>
    private static void AssertReductions(Func<Reduction, Tensor> loss, double[] perElement, Shape noneShape, double tol = 1e-12)
    {
        var none = loss(Reduction.None);
        Assert.Equal(noneShape, none.Shape);
        AssertClose(perElement, none.ToArray(), tol);
        var sum = loss(Reduction.Sum);
        Assert.Equal(0, sum.Rank);
        AssertClose(perElement.Sum(), sum.Item(), tol);
        var mean = loss(Reduction.Mean);
        Assert.Equal(0, mean.Rank);
        AssertClose(perElement.Sum() / perElement.Length, mean.Item(), tol);
        AssertClose(mean.Item(), loss(default).Item(), 0);
    }

    [Fact]
    public void MseLossValues()
    {
        double[] p = [1, 2, 3, 4, -0.5, 0];
        double[] t = [0.5, 2.5, 2, 6, -0.5, 1.25];
        var pred = Tensor.FromArray(p, 2, 3);
        var target = Tensor.FromArray(t, 2, 3);
        var per = p.Zip(t, (a, b) => (a - b) * (a - b)).ToArray();
        AssertReductions(r => Functional.MseLoss(pred, target, r), per, new Shape(2, 3));

        // Written out: (0.25 + 0.25 + 1 + 4 + 0 + 1.5625) = 7.0625.
        Assert.Equal(7.0625, Functional.MseLoss(pred, target, Reduction.Sum).Item());
        Assert.Equal(7.0625 / 6, Functional.MseLoss(pred, target).Item(), 15);

        // d/dp mean((p − t)²) = 2 (p − t) / N.
        var pl = Tensor.FromArray(p, 2, 3).WithRequiresGrad();
        Functional.MseLoss(pl, target).Backward();
        AssertClose(p.Zip(t, (a, b) => 2 * (a - b) / 6).ToArray(), pl.Grad!.ToArray());
    }

    /// <summary>−[y log σ(x) + (1 − y) log(1 − σ(x))], the textbook form (fine for moderate x).</summary>
    private static double BceByHand(double x, double y) => -((y * Math.Log(Sigmoid(x))) + ((1 - y) * Math.Log(1 - Sigmoid(x))));

    [Fact]
    public void BinaryCrossEntropyWithLogitsValues()
    {
        double[] x = [-2, -0.5, 0, 0.5, 3, 1.25];
        double[] y = [0, 1, 1, 0, 1, 0.3];
        var logits = Tensor.FromArray(x, 3, 2);
        var target = Tensor.FromArray(y, 3, 2);
        var per = x.Zip(y, BceByHand).ToArray();
        AssertReductions(r => Functional.BinaryCrossEntropyWithLogits(logits, target, r), per, new Shape(3, 2));

        // At x = 0 the loss is log 2 whatever the target.
        AssertClose(Math.Log(2), Functional.BinaryCrossEntropyWithLogits(Tensor.From(0.0, 0.0), Tensor.From(0.0, 1.0), Reduction.None).ToArray()[0]);
    }

    [Fact]
    public void BinaryCrossEntropyWithLogitsGradientIsSigmoidMinusTarget()
    {
        // Including x = 0, where max(x, 0) and |x| have kinks that must cancel: d/dx = σ(x) − y everywhere.
        double[] x = [-2, -0.5, 0, 0.5, 3, 1.25, 0, 0];
        double[] y = [0, 1, 1, 0, 1, 0.3, 0, 0.5];
        var logits = Tensor.FromArray(x, x.Length).WithRequiresGrad();
        var target = Tensor.FromArray(y, y.Length).WithRequiresGrad();
        Functional.BinaryCrossEntropyWithLogits(logits, target).Backward();
        AssertClose(x.Zip(y, (a, b) => (Sigmoid(a) - b) / x.Length).ToArray(), logits.Grad!.ToArray());

        // d/dy = −x / N.
        AssertClose(x.Select(a => -a / x.Length).ToArray(), target.Grad!.ToArray());

        // Second derivative: d²/dx² = σ(x)(1 − σ(x)), 1/4 at 0.
        var l = Tensor.FromArray(x, x.Length).WithRequiresGrad();
        var g = Autodiff.Grad(Functional.BinaryCrossEntropyWithLogits(l, Tensor.FromArray(y, y.Length), Reduction.Sum), l, createGraph: true);
        var h = Autodiff.Grad(g.Sum(), l).ToArray();
        AssertClose(x.Select(a => Sigmoid(a) * (1 - Sigmoid(a))).ToArray(), h);
    }

    [Fact]
    public void BinaryCrossEntropyWithLogitsIsStableForHugeLogits()
    {
        double[] x = [1000, -1000, 1000, -1000, 800, -745];
        double[] y = [1, 0, 0, 1, 0.25, 1];
        var logits = Tensor.FromArray(x, x.Length).WithRequiresGrad();
        var loss = Functional.BinaryCrossEntropyWithLogits(logits, Tensor.FromArray(y, y.Length), Reduction.None);
        var l = loss.ToArray();
        Assert.All(l, v => Assert.True(double.IsFinite(v), $"loss {v}"));

        // Confidently right: ≈ 0; confidently wrong: ≈ |x|. Exactly: max(x, 0) − x·y + log(1 + e^(−|x|)).
        Assert.Equal(0.0, l[0], 12);
        Assert.Equal(0.0, l[1], 12);
        Assert.Equal(1000.0, l[2], 9);
        Assert.Equal(1000.0, l[3], 9);
        Assert.Equal(600.0, l[4], 9);
        Assert.Equal(745.0, l[5], 9);

        loss.Sum().Backward();
        var g = logits.Grad!.ToArray();
        Assert.All(g, v => Assert.True(double.IsFinite(v), $"gradient {v}"));
        AssertClose([0, 0, 1, -1, 0.75, -1], g);
    }

    [Fact]
    public void NllLossValues()
    {
        var lp = new double[,] { { -1.2, -0.3, -2.5, -4 }, { -0.1, -3, -2, -5 }, { -2.2, -1.1, -0.7, -1.9 } };
        long[] t = [2, 0, 3];
        var logp = Tensor.From(lp);
        var target = Tensor.FromArray(t, 3);
        double[] per = [2.5, 0.1, 1.9];
        AssertReductions(r => Functional.NllLoss(logp, target, r), per, new Shape(3));
        Assert.Equal((2.5 + 0.1 + 1.9) / 3, Functional.NllLoss(logp, target).Item(), 15);

        // The gradient is −onehot / N.
        var x = Tensor.From(lp).WithRequiresGrad();
        Functional.NllLoss(x, target).Backward();
        var expected = new double[12];
        for (var i = 0; i < 3; i++)
        {
            expected[(i * 4) + (int)t[i]] = -1.0 / 3;
        }

        AssertClose(expected, x.Grad!.ToArray());

        // On log-softmax outputs it is the cross-entropy.
        var logits = Tensor.RandN(new Shape(3, 4), seed: 9);
        AssertClose(Functional.CrossEntropy(logits, target, Reduction.None).ToArray(), Functional.NllLoss(logits.LogSoftmax(1), target, Reduction.None).ToArray(), 1e-14);
    }

    private static readonly double[,] CeLogits = { { 1, 2, 3, -1 }, { 0.5, 0.5, 0.5, 0.5 }, { -2, 4, 0, 1.5 }, { 10, -10, 0, 3 }, { 0.1, -0.2, 0.3, 0.05 } };
    private static readonly long[] CeTargets = [2, 0, 3, 0, 1];

    private static double[] CeByHand(double[,] x, long[] t, double eps)
    {
        var n = x.GetLength(0);
        var c = x.GetLength(1);
        var per = new double[n];
        for (var i = 0; i < n; i++)
        {
            var row = Row(x, i);
            var lse = LogSumExp(row);
            var nll = lse - row[t[i]];
            var meanNegLogP = row.Select(v => lse - v).Sum() / c;
            per[i] = ((1 - eps) * nll) + (eps * meanNegLogP);
        }

        return per;
    }

    [Fact]
    public void CrossEntropyValues()
    {
        var logits = Tensor.From(CeLogits);
        var target = Tensor.FromArray(CeTargets, CeTargets.Length);
        var per = CeByHand(CeLogits, CeTargets, 0);
        AssertReductions(r => Functional.CrossEntropy(logits, target, r), per, new Shape(5));

        // Two rows written out: log(e + e² + e³ + e⁻¹) − 3, and log 4 for a uniform row.
        AssertClose(Math.Log(Math.E + Math.Exp(2) + Math.Exp(3) + Math.Exp(-1)) - 3, per[0]);
        AssertClose(Math.Log(4), per[1]);

        // Float32 agrees to single precision.
        var l32 = Functional.CrossEntropy(logits.To(DType.Float32), target, Reduction.None);
        Assert.Equal(DType.Float32, l32.DType);
        AssertClose(per, l32.ToArray(), 1e-6);

        // Huge logits: no overflow.
        var huge = Functional.CrossEntropy(Tensor.From(new double[,] { { 1e4, -1e4, 0 }, { 1e4, -1e4, 0 } }), Tensor.FromArray([0L, 1L], 2), Reduction.None).ToArray();
        Assert.Equal(0.0, huge[0], 12);
        Assert.Equal(2e4, huge[1], 9);
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.25)]
    [InlineData(1.0)]
    public void CrossEntropyWithLabelSmoothing(double eps)
    {
        var logits = Tensor.From(CeLogits);
        var target = Tensor.FromArray(CeTargets, CeTargets.Length);
        var per = CeByHand(CeLogits, CeTargets, eps);
        AssertReductions(r => Functional.CrossEntropy(logits, target, r, labelSmoothing: eps), per, new Shape(5));

        // The same as the cross-entropy against the smoothed distribution q = (1 − ε)·onehot + ε/C: −Σ q_c log p_c.
        for (var i = 0; i < per.Length; i++)
        {
            var row = Row(CeLogits, i);
            var lse = LogSumExp(row);
            double h = 0;
            for (var c = 0; c < 4; c++)
            {
                var q = ((c == CeTargets[i] ? 1 : 0) * (1 - eps)) + (eps / 4);
                h += q * (lse - row[c]);
            }

            AssertClose(h, per[i]);
        }

        // Gradient of the mean: (softmax − q) / N.
        var x = Tensor.From(CeLogits).WithRequiresGrad();
        Functional.CrossEntropy(x, target, labelSmoothing: eps).Backward();
        var expected = new double[20];
        for (var i = 0; i < 5; i++)
        {
            var row = Row(CeLogits, i);
            var lse = LogSumExp(row);
            for (var c = 0; c < 4; c++)
            {
                var q = ((c == CeTargets[i] ? 1 : 0) * (1 - eps)) + (eps / 4);
                expected[(i * 4) + c] = (Math.Exp(row[c] - lse) - q) / 5;
            }
        }

        AssertClose(expected, x.Grad!.ToArray());
    }

    [Fact]
    public void CrossEntropyWithZeroSmoothingIsPlainCrossEntropy()
    {
        var logits = Tensor.From(CeLogits);
        var target = Tensor.FromArray(CeTargets, CeTargets.Length);
        Assert.Equal(Functional.CrossEntropy(logits, target).Item(), Functional.CrossEntropy(logits, target, labelSmoothing: 0).Item());
    }

    [Fact]
    public void CrossEntropyGradientIsSoftmaxMinusOneHotOverN()
    {
        const int n = 6, c = 5;
        var x = Tensor.RandN(new Shape(n, c), seed: 21, std: 3).WithRequiresGrad();
        long[] t = [4, 0, 2, 2, 1, 3];
        Functional.CrossEntropy(x, Tensor.FromArray(t, n)).Backward();
        var xs = x.ToArray();
        var expected = new double[n * c];
        for (var i = 0; i < n; i++)
        {
            var row = xs[(i * c)..((i + 1) * c)];
            var lse = LogSumExp(row);
            for (var j = 0; j < c; j++)
            {
                expected[(i * c) + j] = (Math.Exp(row[j] - lse) - (j == t[i] ? 1 : 0)) / n;
            }
        }

        var grad = x.Grad!.ToArray();
        for (var k = 0; k < grad.Length; k++)
        {
            Assert.True(Math.Abs(expected[k] - grad[k]) <= 1e-12, $"element {k}: expected {expected[k]:R}, got {grad[k]:R}");
        }

        // Sum reduction: without the 1/N.
        var xs2 = Tensor.FromArray(xs, n, c).WithRequiresGrad();
        Functional.CrossEntropy(xs2, Tensor.FromArray(t, n), Reduction.Sum).Backward();
        AssertClose(expected.Select(v => v * n).ToArray(), xs2.Grad!.ToArray());
    }

    // ---------------------------------------------------------------- Losses: gradient checks

    // Every loss, under every reduction, is checked by finite differences to second order as rows of OpTable.

    [Fact]
    public void TrainingAStepThroughAModelAndALossMovesEveryParameter()
    {
        var model = new Sequential(new Linear(3, 8, seed: 1), new GELU(), new Dropout(0.2, seed: 2), new Linear(8, 4, seed: 3));
        var x = Tensor.RandN(new Shape(6, 3), seed: 4);
        var t = Tensor.FromArray([0L, 1L, 2L, 3L, 0L, 1L], 6);
        var loss = Functional.CrossEntropy(model.Forward(x), t);
        Assert.True(double.IsFinite(loss.Item()));
        loss.Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            Assert.NotNull(p.Grad);
            Assert.True(p.Grad!.ToArray().Any(v => v != 0), name);
        }

        // Whole-model gradient check in eval mode (dropout off), with respect to the input and every parameter.
        model.Eval();
        var xi = x.Clone().WithRequiresGrad();
        var r = GradCheck.Check(a => Functional.CrossEntropy(model.Forward(a[0]), t), [xi, .. model.Parameters()]);
        Assert.True(r.Passed, r.Message);
    }

    // ---------------------------------------------------------------- Losses: bad inputs

    [Fact]
    public void ClassTargetsMustBeInt64OfTheBatchLength()
    {
        var scores = Tensor.RandN(new Shape(3, 4), seed: 1);
        Func<Tensor, Tensor, Tensor>[] losses = [(s, t) => Functional.NllLoss(s, t), (s, t) => Functional.CrossEntropy(s, t)];
        foreach (var loss in losses)
        {
            var dtype = Assert.Throws<ArgumentException>(() => loss(scores, Tensor.From(2.0, 0.0, 3.0)));
            Assert.Contains("int64", dtype.Message, StringComparison.Ordinal);
            Assert.Contains("float64", dtype.Message, StringComparison.Ordinal);
            Assert.Equal("target", dtype.ParamName);

            var length = Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([1L, 2L], 2)));
            Assert.Contains("[3]", length.Message, StringComparison.Ordinal);
            Assert.Contains("[2]", length.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([1L, 2L, 0L, 1L], 4)));
            Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([1L, 2L, 0L], 3, 1)));

            // Scores must be [N, C].
            var rank = Assert.Throws<ArgumentException>(() => loss(Tensor.RandN(new Shape(3, 4, 2), seed: 1), Tensor.FromArray([1L, 2L, 0L], 3)));
            Assert.Contains("[3, 4, 2]", rank.Message, StringComparison.Ordinal);
            Assert.Throws<ArgumentException>(() => loss(Tensor.From(1.0, 2.0, 3.0), Tensor.FromArray([1L, 2L, 0L], 3)));
        }
    }

    [Fact]
    public void ClassTargetsOutOfRangeNameTheValueAndPosition()
    {
        var scores = Tensor.RandN(new Shape(3, 4), seed: 1);
        Func<Tensor, Tensor, Tensor>[] losses = [(s, t) => Functional.NllLoss(s, t), (s, t) => Functional.CrossEntropy(s, t)];
        foreach (var loss in losses)
        {
            var high = Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([1L, 2L, 4L], 3)));
            Assert.Contains("target 4 at position 2", high.Message, StringComparison.Ordinal);
            Assert.Contains("[0, 4)", high.Message, StringComparison.Ordinal);

            var negative = Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([1L, -1L, 0L], 3)));
            Assert.Contains("target -1 at position 1", negative.Message, StringComparison.Ordinal);

            var huge = Assert.Throws<ArgumentException>(() => loss(scores, Tensor.FromArray([long.MaxValue, 0L, 0L], 3)));
            Assert.Contains($"target {long.MaxValue} at position 0", huge.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void PredictionAndTargetShapesMustMatch()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(3, 2);
        var mse = Assert.Throws<ArgumentException>(() => Functional.MseLoss(a, b));
        Assert.Contains("[2, 3]", mse.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 2]", mse.Message, StringComparison.Ordinal);
        Assert.Contains("MseLoss", mse.Message, StringComparison.Ordinal);
        var bce = Assert.Throws<ArgumentException>(() => Functional.BinaryCrossEntropyWithLogits(a, b));
        Assert.Contains("[2, 3]", bce.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 2]", bce.Message, StringComparison.Ordinal);
        Assert.Contains("BinaryCrossEntropyWithLogits", bce.Message, StringComparison.Ordinal);

        // No silent broadcasting, even where the shapes would broadcast.
        Assert.Throws<ArgumentException>(() => Functional.MseLoss(Tensor.Zeros(4, 1), Tensor.Zeros(4)));
        Assert.Throws<ArgumentException>(() => Functional.BinaryCrossEntropyWithLogits(Tensor.Zeros(4), Tensor.Zeros(1, 4)));
        Assert.Throws<ArgumentException>(() => Functional.MseLoss(Tensor.Zeros(4), Tensor.Scalar(0)));
    }

    [Fact]
    public void LabelSmoothingMustBeInZeroToOne()
    {
        var scores = Tensor.RandN(new Shape(3, 4), seed: 1);
        var target = Tensor.FromArray([1L, 2L, 0L], 3);
        foreach (var eps in new[] { -0.1, 1.1, -1e-12, double.NaN, double.PositiveInfinity })
        {
            var ex = Assert.Throws<ArgumentException>(() => Functional.CrossEntropy(scores, target, labelSmoothing: eps));
            Assert.Contains("labelSmoothing", ex.Message, StringComparison.Ordinal);
        }

        // The ends of the range are allowed.
        Assert.True(double.IsFinite(Functional.CrossEntropy(scores, target, labelSmoothing: 0).Item()));
        Assert.True(double.IsFinite(Functional.CrossEntropy(scores, target, labelSmoothing: 1).Item()));
    }
}
