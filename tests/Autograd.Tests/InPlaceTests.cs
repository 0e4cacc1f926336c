namespace Autograd.Tests;

/// <summary>
/// The in-place operators (<see cref="InPlace"/>): values, gradients against the out-of-place composition, second order,
/// forward mode, versions, and the refusals (a leaf, a view on the tape, a saved tensor changed, bad operands).
/// </summary>
public class InPlaceTests
{
    private static Tensor N(int seed, params int[] shape) => Tensor.RandN(new Shape(shape), seed);

    private static Tensor P(int seed, params int[] shape) => Tensor.Rand(new Shape(shape), seed, low: 0.5, high: 2.0);

    /// <summary>Each in-place operator with its out-of-place composition, on a [2, 3] tensor and an operand of shape sb.</summary>
    public static TheoryData<string, int[]> Cases => new()
    {
        { "add", [2, 3] }, { "add", [3] }, { "add", [2, 1] }, { "add", [] },
        { "addalpha", [3] }, { "sub", [2, 3] }, { "sub", [1, 3] },
        { "mul", [2, 3] }, { "mul", [3] }, { "mul", [] },
        { "div", [2, 3] }, { "div", [2, 1] },
        { "addn", [] }, { "subn", [] }, { "muln", [] }, { "divn", [] }, { "zero", [] },
    };

    private static Tensor InPlaceOp(string op, Tensor s, Tensor b) => op switch
    {
        "add" => s.AddInPlace(b),
        "addalpha" => s.AddInPlace(b, -0.75),
        "sub" => s.SubInPlace(b),
        "mul" => s.MulInPlace(b),
        "div" => s.DivInPlace(b),
        "addn" => s.AddInPlace(2.5),
        "subn" => s.SubInPlace(2.5),
        "muln" => s.MulInPlace(2.5),
        "divn" => s.DivInPlace(2.5),
        _ => s.ZeroInPlace(),
    };

    private static Tensor Composed(string op, Tensor s, Tensor b) => op switch
    {
        "add" => s + b,
        "addalpha" => s + (b * -0.75),
        "sub" => s - b,
        "mul" => s * b,
        "div" => s / b,
        "addn" => s + 2.5,
        "subn" => s - 2.5,
        "muln" => s * 2.5,
        "divn" => s / 2.5,
        _ => s * 0.0,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValuesAndGradientsAreThoseOfTheComposition(string op, int[] sb)
    {
        var x = N(1, 2, 3).WithRequiresGrad();
        var b = (op == "div" ? P(2, sb) : N(2, sb)).WithRequiresGrad();
        var y = InPlaceOp(op, (x * 1.5).Tanh() * 1.0, b);
        var z = Composed(op, (x * 1.5).Tanh() * 1.0, b);
        Assert.Equal(z.ToArray<double>(), y.ToArray<double>());
        Assert.Equal(op switch { "add" or "addalpha" or "addn" => "AddInPlace", "sub" or "subn" => "SubInPlace", "mul" or "muln" => "MulInPlace", "div" or "divn" => "DivInPlace", _ => "ZeroInPlace" }, y.OpName);

        var w = N(3, 2, 3);
        var gy = Autodiff.Grad([(y * w).Sum()], [x, b], allowUnused: true, createGraph: true);
        var gz = Autodiff.Grad([(z * w).Sum()], [x, b], allowUnused: true, createGraph: true);
        for (var i = 0; i < 2; i++)
        {
            AssertClose(gz[i], gy[i]);
        }

        // Second order through the rules of the in-place nodes.
        if (op != "zero")
        {
            Assert.Equal(gz[0].RequiresGrad, gy[0].RequiresGrad);
        }

        if (gz[0].RequiresGrad && gy[0].RequiresGrad)
        {
            var hy = Autodiff.Grad([(gy[0] * gy[0]).Sum()], [x], allowUnused: true);
            var hz = Autodiff.Grad([(gz[0] * gz[0]).Sum()], [x], allowUnused: true);
            AssertClose(hz[0], hy[0]);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GradCheckAndGradGradCheckPass(string op, int[] sb)
    {
        Tensor F(Tensor[] t) => InPlaceOp(op, t[0] * 1.5, t[1]).Tanh();
        Tensor[] inputs = [N(4, 2, 3).WithRequiresGrad(), (op == "div" ? P(5, sb) : N(5, sb)).WithRequiresGrad()];
        var first = GradCheck.Check(F, inputs);
        Assert.True(first.Passed, first.Message);
        var second = GradCheck.GradGradCheck(t => [F(t)], inputs);
        Assert.True(second.Passed, second.Message);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ForwardModeUpdatesTheTangentOfTheTensorWritten(string op, int[] sb)
    {
        var x = N(6, 2, 3);
        var b = op == "div" ? P(7, sb) : N(7, sb);
        var (vx, vb) = (N(8, 2, 3), N(9, sb));
        Tensor[] F(Tensor[] t) => [InPlaceOp(op, t[0].Exp() * 1.0, t[1])];
        Tensor[] G(Tensor[] t) => [Composed(op, t[0].Exp() * 1.0, t[1])];
        var (yf, tf) = Autodiff.Jvp(F, [x, b], [vx, vb]);
        var (yg, tg) = Autodiff.Jvp(G, [x, b], [vx, vb]);
        Assert.Equal(yg[0].ToArray<double>(), yf[0].ToArray<double>());
        if (op == "zero")
        {
            Assert.All(tf[0].ToArray<double>(), v => Assert.Equal(0.0, v));
        }
        else
        {
            AssertClose(tg[0], tf[0]);
        }
    }

    [Fact]
    public void FloatThirtyTwoAndVersionsAndReturnsSelf()
    {
        var s = Tensor.From(1f, 2f, 3f, 4f).Reshape(2, 2);
        var v0 = s.Version;
        var r = s.AddInPlace(Tensor.From(10f, 20f)).MulInPlace(2.0).SubInPlace(1.0).DivInPlace(Tensor.From(1f, 2f));
        Assert.Same(s, r);
        Assert.Equal(new[] { 21f, 21.5f, 25f, 23.5f }, s.ToArray<float>());
        Assert.Equal(v0 + 4, s.Version);
        Assert.True(s.IsLeaf);
        Assert.False(s.RequiresGrad);
    }

    [Fact]
    public void MulOfATensorByItselfUsesTheOldValues()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var s = x * 1.0;
        s.MulInPlace(s);
        Assert.Equal(new[] { 1.0, 4.0, 9.0 }, s.ToArray<double>());
        s.Sum().Backward();
        Assert.Equal(new[] { 2.0, 4.0, 6.0 }, x.Grad!.ToArray<double>());
    }

    [Fact]
    public void ALeafThatRequiresGradIsRefusedWhileRecordingAndAllowedUnderNoGrad()
    {
        var p = Tensor.Zeros(new Shape(3)).WithRequiresGrad();
        var e = Assert.Throws<InvalidOperationException>(() => p.AddInPlace(1.0));
        Assert.Equal("AddInPlace: a leaf tensor that requires grad ([3] float64) cannot be changed in place while gradients are recorded; do it under Tensor.NoGrad() or on a clone.", e.Message);
        Assert.Equal(0, p.Version);
        using (Tensor.NoGrad())
        {
            p.AddInPlace(Tensor.From(1.0, 2.0, 3.0), 0.5);
        }

        Assert.Equal(new[] { 0.5, 1.0, 1.5 }, p.ToArray<double>());
        Assert.True(p.IsLeaf);
        Assert.Equal(1, p.Version);
    }

    [Fact]
    public void AViewOnTheTapeIsRefusedNamingBothShapes()
    {
        var x = N(1, 2, 3).WithRequiresGrad();
        var y = x * 2.0;
        var v = y.Reshape(6);
        var e = Assert.Throws<InvalidOperationException>(() => v.MulInPlace(3.0));
        Assert.Equal(
            "MulInPlace: this [6] float64 tensor shares its storage with another tensor on the tape (shapes [2, 3] and [6]: a view made by Reshape/View of a tensor that requires grad); an in-place write through a view is not recorded for the other tensor. Clone it first, or write under Tensor.NoGrad().",
            e.Message);
        Assert.Throws<InvalidOperationException>(() => y.AddInPlace(1.0));
        Assert.Equal(0, y.Version);

        // A clone may be written.
        var c = (v * 1.0).MulInPlace(3.0);
        Assert.Equal("MulInPlace", c.OpName);
    }

    [Fact]
    public void ASavedTensorChangedInPlaceFailsInBackwardNamingTheWrite()
    {
        var x = N(1, 4).WithRequiresGrad();
        var s = x * 2.0;
        var y = s.Exp() * s; // Mul saves s
        var line = CallerLine() + 1;
        s.AddInPlace(1.0);
        var e = Assert.Throws<InvalidOperationException>(() => y.Sum().Backward());
        Assert.Contains("Backward of Mul: its saved tensor", e.Message, StringComparison.Ordinal);
        Assert.Contains($"AddInPlace in {nameof(ASavedTensorChangedInPlaceFailsInBackwardNamingTheWrite)} at InPlaceTests.cs:{line}", e.Message, StringComparison.Ordinal);
    }

    private static int CallerLine([System.Runtime.CompilerServices.CallerLineNumber] int line = 0) => line;

    /// <summary>Bad operands: each message names the operator and the shapes, and nothing is written.</summary>
    public static TheoryData<string, string> BadInput => new()
    {
        { "broadcast", "AddInPlace: the operand of shape [4] cannot be broadcast to the shape [2, 3] of the tensor written (an in-place result keeps that shape)." },
        { "grow", "MulInPlace: the operand of shape [2, 2, 3] cannot be broadcast to the shape [2, 3] of the tensor written (an in-place result keeps that shape)." },
        { "dtype", "SubInPlace: the operand is float32 [3] but the tensor written is float64 [2, 3]; convert the operand with To(DType.Float64). (Parameter 'b')" },
        { "int", "DivInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
        { "intnumber", "ZeroInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
    };

    [Theory]
    [MemberData(nameof(BadInput))]
    public void BadInputIsRefusedBeforeAnythingIsWritten(string what, string message)
    {
        var s = N(1, 2, 3);
        var i = Tensor.FromArray(new long[] { 1, 2 }, 2);
        Action act = what switch
        {
            "broadcast" => () => s.AddInPlace(N(2, 4)),
            "grow" => () => s.MulInPlace(N(2, 2, 2, 3)),
            "dtype" => () => s.SubInPlace(Tensor.From(1f, 2f, 3f)),
            "int" => () => i.DivInPlace(Tensor.FromArray(new long[] { 1, 2 }, 2)),
            _ => () => i.ZeroInPlace(),
        };
        var before = s.ToArray<double>();
        var e = Assert.ThrowsAny<ArgumentException>(act);
        Assert.StartsWith(message.Replace(" (Parameter 'b')", string.Empty, StringComparison.Ordinal), e.Message, StringComparison.Ordinal);
        Assert.Equal(before, s.ToArray<double>());
        Assert.Equal(0, s.Version);
    }

    private static void AssertClose(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var (e, a) = (expected.ToArray<double>(), actual.ToArray<double>());
        for (var i = 0; i < e.Length; i++)
        {
            Assert.True(Math.Abs(e[i] - a[i]) <= 1e-12 * (1 + Math.Abs(e[i])), $"element {i}: expected {e[i]}, got {a[i]}");
        }
    }
}
