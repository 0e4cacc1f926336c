namespace Autograd.Tests;

/// <summary>
/// The forward-mode engine (<see cref="Autodiff.Jvp(Func{Tensor, Tensor}, Tensor, Tensor)"/>, <see cref="Autodiff.DualLevel"/>,
/// <see cref="Tensor.WithTangent"/>): tangents travel with the forward computation, are dropped with their level, do
/// not record anything by themselves, and are refused where they cannot work.
/// </summary>
public class ForwardModeTests
{
    private static Tensor V(params double[] values) => Tensor.From(values);

    [Fact]
    public void JvpOfAProductAndAQuotientIsTheProductAndQuotientRule()
    {
        var x = V(1, 2, 3);
        var v = V(0.5, -1, 2);

        // f(x) = x ⊙ exp(x) − 3 / x + x / 2: f'(x) = exp(x) (1 + x) + 3 / x² + 1/2.
        var (y, jv) = Autodiff.Jvp(t => (t * t.Exp()) - (3.0 / t) + (t / 2.0), x, v);
        var xs = x.ToArray<double>();
        var vs = v.ToArray<double>();
        for (var i = 0; i < 3; i++)
        {
            var d = (Math.Exp(xs[i]) * (1 + xs[i])) + (3 / (xs[i] * xs[i])) + 0.5;
            Assert.Equal(d * vs[i], jv.ToArray<double>()[i], 1e-12);
            Assert.Equal((xs[i] * Math.Exp(xs[i])) - (3 / xs[i]) + (xs[i] / 2), y.ToArray<double>()[i], 1e-12);
        }
    }

    [Fact]
    public void TangentsOfBroadcastInputsAreBroadcastToTheResult()
    {
        var a = Tensor.FromArray(new double[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var b = V(10, 20, 30);
        var ta = Tensor.FromArray(new double[] { 1, 0, 0, 0, 0, 1 }, 2, 3);
        var tb = V(1, 2, 3);
        var (_, tangents) = Autodiff.Jvp(p => [(p[0] * p[1]) + p[1] - (p[0] / p[1])], [a, b], [ta, tb]);

        // ẏ = ȧ ⊙ b + a ⊙ ḃ + ḃ − (ȧ − (a / b) ⊙ ḃ) / b.
        var expected = (ta * b) + (a * tb) + tb - ((ta - (a / b * tb)) / b);
        Assert.Equal(new Shape(2, 3), tangents[0].Shape);
        Assert.Equal(expected.ToArray<double>(), tangents[0].ToArray<double>());
    }

    [Fact]
    public void PureForwardModeRecordsNothingAndTheLevelDropsItsTangents()
    {
        var x = V(1, 2);
        Tensor y;
        using (Autodiff.DualLevel())
        {
            x.WithTangent(V(1, 1));
            y = x * x;
            Assert.NotNull(y.Tangent);
            Assert.Equal([2.0, 4.0], y.Tangent!.ToArray<double>());
            Assert.Null(y.GradFn);
            Assert.False(y.RequiresGrad);
        }

        Assert.Null(y.Tangent);
        Assert.Null(x.Tangent);

        // A new level does not see the old one's tangents.
        using (Autodiff.DualLevel())
        {
            Assert.Null(x.Tangent);
            Assert.Null((x * x).Tangent);
        }
    }

    [Fact]
    public void AResultThatDoesNotDependOnThePrimalHasAZeroTangent()
    {
        var c = V(4, 5);
        var (y, jv) = Autodiff.Jvp(_ => c * 2.0, V(1, 2), V(1, 1));
        Assert.Equal([8.0, 10.0], y.ToArray<double>());
        Assert.Equal([0.0, 0.0], jv.ToArray<double>());
    }

    [Fact]
    public void WithGradientsTheForwardIsRecordedAndTheTangentCanBeDifferentiated()
    {
        // Reverse over forward: d/dx of the JVP x ↦ (x²)' v = 2 x v is 2 v.
        var x = V(1, 2, 3).WithRequiresGrad();
        var v = V(1, -1, 2);
        var (y, jv) = Autodiff.Jvp(t => t * t, x, v);
        Assert.NotNull(y.GradFn);
        Assert.True(jv.RequiresGrad);
        jv.Sum().Backward();
        Assert.Equal([2.0, -2.0, 4.0], x.Grad!.ToArray<double>());
        Assert.Null(x.Tangent);
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(4, 16)]
    [InlineData(7, 1000)]
    [InlineData(301, 2048)] // float32 2.4 MB: blocks of 4 rows, split between threads, the tangent streamed as a large backward's gradient
    public void SoftmaxAndItsTangentInOneSweepGiveWhatTheForwardRuleGives(int rows, int size)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var x = Tensor.RandN(new Shape(rows, size), seed: 31, dtype);
            var v = Tensor.RandN(new Shape(rows, size), seed: 32, dtype);

            // Over the last dim with nothing recorded, the softmax computes y and ẏ together; the forward rule's
            // ẏ = y ⊙ (ẋ − Σ y⊙ẋ) is the fused backward kernel with g = ẋ, on the same y.
            var (y, jv) = Autodiff.Jvp(t => t.Softmax(-1), x, v);
            var expectedY = x.Softmax(-1);
            var expected = Tensor.SoftmaxBackward(v, expectedY, -1);
            Assert.Equal(expectedY.ToArray(), y.ToArray());
            Assert.Equal(expected.ToArray(), jv.ToArray());
            Assert.False(jv.RequiresGrad);

            // Over another dim, and with gradients recorded (the tangent is then differentiable), the rule runs.
            var (_, jv0) = Autodiff.Jvp(t => t.Softmax(0), x, v);
            Assert.Equal(Tensor.SoftmaxBackward(v, x.Softmax(0), 0).ToArray(), jv0.ToArray());
            var xg = x.Detach().WithRequiresGrad();
            var (_, jvg) = Autodiff.Jvp(t => t.Softmax(-1), xg, v);
            Assert.True(jvg.RequiresGrad);
            Assert.Equal(expected.ToArray(), jvg.ToArray());
        }
    }

    [Theory]
    [InlineData("Tanh")]
    [InlineData("Sigmoid")]
    [InlineData("Relu")]
    public void RulesThatRecordNothingRunOneKernelWithTheComposedValues(string op)
    {
        // Tanh's, sigmoid's and ReLU's rules, g ⊙ (1 − y²), g ⊙ (1 − y) ⊙ y and g ⊙ [y > 0], run as one kernel when
        // nothing is recorded (a backward walk without create-graph, a tangent under no-grad) and as tensor operations
        // otherwise: same values.
        Func<Tensor, Tensor> f = op switch
        {
            "Tanh" => t => t.Tanh(),
            "Sigmoid" => t => t.Sigmoid(),
            _ => t => t.Relu(),
        };
        // The large shape's rows run in the one-pass loops with stores that bypass the caches, split between threads.
        foreach (var (dtype, shape) in new[] { (DType.Float64, new Shape(5, 7)), (DType.Float32, new Shape(5, 7)), (DType.Float64, new Shape(600, 601)), (DType.Float32, new Shape(600, 601)) })
        {
            var x = Tensor.RandN(shape, seed: 51, dtype).WithRequiresGrad();
            var g = Tensor.RandN(shape, seed: 52, dtype);
            var fast = Autodiff.Grad([f(x)], [x], [g])[0];
            var taped = Autodiff.Grad([f(x)], [x], [g], createGraph: true)[0];
            Assert.False(fast.RequiresGrad);

            // ReLU's taped rule multiplies g by a constant mask, so with this g (no grad) nothing in it requires grad.
            Assert.Equal(op != "Relu", taped.RequiresGrad);
            Assert.Equal(taped.ToArray(), fast.ToArray());

            using var noGrad = Tensor.NoGrad();
            var (_, jv) = Autodiff.Jvp(f, x.Detach(), g);
            Assert.Equal(taped.ToArray(), jv.ToArray());
        }
    }

    public static TheoryData<string> OutputRules() => ["Softmax", "LogSoftmax", "Exp", "Tanh", "Sigmoid", "Sqrt"];

    [Theory]
    [MemberData(nameof(OutputRules))]
    public void ReverseOverForwardSeesTheOutputThatARuleReads(string op)
    {
        // These forward rules read the operation's own output (y = softmax(x), exp(x), …). With gradients recorded the
        // tangent J(x)·v is a function of x through y as well: ∇x ⟨u, J(x)·v⟩ by reverse over forward must equal
        // ∇x ⟨J(x)ᵀ·u, v⟩ by reverse over reverse.
        Func<Tensor, Tensor> f = op switch
        {
            "Softmax" => t => t.Softmax(-1),
            "LogSoftmax" => t => t.LogSoftmax(-1),
            "Exp" => t => t.Exp(),
            "Tanh" => t => t.Tanh(),
            "Sigmoid" => t => t.Sigmoid(),
            _ => t => t.Sqrt(),
        };
        var x0 = Tensor.RandN(new Shape(3, 5), seed: 41).Abs() + 0.5;
        var v = Tensor.RandN(new Shape(3, 5), seed: 42);
        var u = Tensor.RandN(new Shape(3, 5), seed: 43);

        var x = x0.Detach().WithRequiresGrad();
        var (_, jv) = Autodiff.Jvp(f, x, v);
        var viaForward = Autodiff.Grad([(jv * u).Sum()], [x])[0];

        var xr = x0.Detach().WithRequiresGrad();
        var jtu = Autodiff.Grad([f(xr)], [xr], [u], createGraph: true)[0];
        var viaReverse = Autodiff.Grad([(jtu * v).Sum()], [xr])[0];

        var a = viaForward.ToArray();
        var b = viaReverse.ToArray();
        for (var i = 0; i < a.Length; i++)
        {
            Assert.Equal(b[i], a[i], 1e-12);
        }
    }

    public static TheoryData<string> ElementwiseOps() =>
    [
        "Add", "Sub", "Mul", "Div", "Add a number", "Sub from a number", "Mul by a number", "Div a number", "Div by a number",
        "Neg", "Exp", "Log", "Sqrt", "Abs", "Tanh", "Sigmoid", "Relu", "Erf",
    ];

    [Theory]
    [MemberData(nameof(ElementwiseOps))]
    public void TangentsMadeWithoutANodeAreThoseOfTheNodesForwardRule(string op)
    {
        // With nothing to record, an elementwise operation runs its node's forward rule as a function and makes no node;
        // a tape observer makes it build the node again. Both must give the same tangent, bit for bit, with the tangent
        // on either input, on both, broadcast or not, in float64 and float32.
        Func<Tensor, Tensor, Tensor> f = op switch
        {
            "Add" => (p, q) => p + q,
            "Sub" => (p, q) => p - q,
            "Mul" => (p, q) => p * q,
            "Div" => (p, q) => p / q,
            "Add a number" => (p, _) => p + 0.25,
            "Sub from a number" => (p, _) => 0.25 - p,
            "Mul by a number" => (p, _) => p * 1.5,
            "Div a number" => (p, _) => 1.5 / p,
            "Div by a number" => (p, _) => p / 1.5,
            "Neg" => (p, _) => -p,
            "Exp" => (p, _) => p.Exp(),
            "Log" => (p, _) => p.Log(),
            "Sqrt" => (p, _) => p.Sqrt(),
            "Abs" => (p, _) => p.Abs(),
            "Tanh" => (p, _) => p.Tanh(),
            "Sigmoid" => (p, _) => p.Sigmoid(),
            "Relu" => (p, _) => p.Relu(),
            _ => (p, _) => p.Erf(),
        };
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            foreach (var shapeB in new[] { new Shape(3, 4), new Shape(4) })
            {
                var a = (Tensor.RandN(new Shape(3, 4), seed: 61, dtype).Abs() + 0.5).Detach();
                var b = (Tensor.RandN(shapeB, seed: 62, dtype).Abs() + 0.5).Detach();
                var va = Tensor.RandN(a.Shape, seed: 63, dtype);
                var vb = Tensor.RandN(b.Shape, seed: 64, dtype);
                foreach (var (ta, tb) in new[] { (va, (Tensor?)null), (null, vb), (va, vb) })
                {
                    var withoutNode = TangentOf(f, a, b, ta, tb, observed: false);
                    var throughNode = TangentOf(f, a, b, ta, tb, observed: true);
                    Assert.Equal(throughNode.Shape, withoutNode.Shape);
                    Assert.Equal(throughNode.ToArray(), withoutNode.ToArray());
                }
            }
        }
    }

    private static Tensor TangentOf(Func<Tensor, Tensor, Tensor> f, Tensor a, Tensor b, Tensor? ta, Tensor? tb, bool observed)
    {
        using var noGrad = Tensor.NoGrad();
        using var watch = observed ? TapeObserver.Attach(new Watcher()) : null;
        using var level = Autodiff.DualLevel();
        var p = ta is null ? a.Detach() : a.Detach().WithTangent(ta);
        var q = tb is null ? b.Detach() : b.Detach().WithTangent(tb);
        var y = f(p, q);
        return y.Tangent ?? Tensor.Zeros(y.Shape, y.DType);
    }

    /// <summary>An observer that watches without acting: operations then build their nodes, as for any observer.</summary>
    private sealed class Watcher : TapeObserver
    {
    }

    [Fact]
    public void TangentsTravelUnderNoGrad()
    {
        using var noGrad = Tensor.NoGrad();
        var (_, jv) = Autodiff.Jvp(t => t.Exp(), V(0, 1), V(1, 1));
        Assert.Equal(1.0, jv.ToArray<double>()[0], 1e-15);
        Assert.Equal(Math.E, jv.ToArray<double>()[1], 1e-15);
    }

    [Fact]
    public void BadUseIsRefusedWithTheApiAndTheShapes()
    {
        var e1 = Assert.Throws<ArgumentException>(() => Autodiff.Jvp(t => t, V(1, 2), V(1, 2, 3)));
        Assert.Contains("Jvp: tangent 0 of shape [3] float64 does not match primal 0 of shape [2] float64", e1.Message);

        var x = V(1);
        var e2 = Assert.Throws<ArgumentException>(() => Autodiff.Jvp(p => p, [x, x], [V(1), V(1)]));
        Assert.Contains("primals 0 and 1 are the same tensor", e2.Message);

        var e3 = Assert.Throws<ArgumentException>(() => Autodiff.Jvp(p => p, [V(1)], []));
        Assert.Contains("1 primals but 0 tangents", e3.Message);

        var e4 = Assert.Throws<InvalidOperationException>(() => V(1).WithTangent(V(1)));
        Assert.Contains("WithTangent: no dual level is open", e4.Message);

        using (Autodiff.DualLevel())
        {
            var e5 = Assert.Throws<InvalidOperationException>(() => Autodiff.DualLevel());
            Assert.Contains("does not nest", e5.Message);
            var e6 = Assert.Throws<ArgumentException>(() => V(1, 2).WithTangent(Tensor.From(new float[] { 1, 2 })));
            Assert.Contains("WithTangent: the tangent of shape [2] float32 does not match the tensor of shape [2] float64", e6.Message);
            var e7 = Assert.Throws<NotSupportedException>(() => Autodiff.Checkpoint(t => t, V(1).WithRequiresGrad()));
            Assert.Contains("Checkpoint: a dual level is open", e7.Message);
        }

        // The failed calls left no level open.
        using (Autodiff.DualLevel())
        {
        }
    }

    [Fact]
    public void TheFunctionsExceptionClosesTheLevelAndRestoresThePrimal()
    {
        var x = V(1, 2);
        Assert.Throws<InvalidDataException>(() => Autodiff.Jvp(_ => throw new InvalidDataException("boom"), x, V(1, 1)));
        using var level = Autodiff.DualLevel();
        Assert.Null(x.Tangent);
    }
}
