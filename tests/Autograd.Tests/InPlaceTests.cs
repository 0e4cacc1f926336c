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
        { "fill", [] }, { "copy", [2, 3] }, { "copy", [3] }, { "copy", [2, 1] }, { "copy", [] },
        { "addcmul", [2, 3] }, { "addcmul", [3] }, { "addcdiv", [2, 3] }, { "addcdiv", [2, 1] }, { "sqrt", [] },
    };

    /// <summary>The operators whose gradient to the old values is zero (the history is cut).</summary>
    private static bool Cuts(string op) => op is "zero" or "fill" or "copy";

    /// <summary>The tensor written: positive for the square root.</summary>
    private static Tensor Base(string op, Tensor x) => op == "sqrt" ? (x * 1.5).Exp() * 1.0 : (x * 1.5).Tanh() * 1.0;

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
        "fill" => s.FillInPlace(2.5),
        "copy" => s.CopyFrom(b),
        "addcmul" => s.AddcmulInPlace(b, b.Exp(), 0.7),
        "addcdiv" => s.AddcdivInPlace(b, b.Exp(), -0.7),
        "sqrt" => s.SqrtInPlace(),
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
        "fill" => (s * 0.0) + 2.5,
        "copy" => (s * 0.0) + b,
        "addcmul" => s + (b * 0.7 * b.Exp()),
        "addcdiv" => s + (b * -0.7 / b.Exp()),
        "sqrt" => s.Sqrt(),
        _ => s * 0.0,
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValuesAndGradientsAreThoseOfTheComposition(string op, int[] sb)
    {
        var x = N(1, 2, 3).WithRequiresGrad();
        var b = (op == "div" ? P(2, sb) : N(2, sb)).WithRequiresGrad();
        var y = InPlaceOp(op, Base(op, x), b);
        var z = Composed(op, Base(op, x), b);
        Assert.Equal(z.ToArray<double>(), y.ToArray<double>());
        Assert.Equal(op switch
        {
            "add" or "addalpha" or "addn" => "AddInPlace",
            "sub" or "subn" => "SubInPlace",
            "mul" or "muln" => "MulInPlace",
            "div" or "divn" => "DivInPlace",
            "fill" => "FillInPlace",
            "copy" => "CopyFrom",
            "addcmul" => "AddcmulInPlace",
            "addcdiv" => "AddcdivInPlace",
            "sqrt" => "SqrtInPlace",
            _ => "ZeroInPlace",
        }, y.OpName);

        var w = N(3, 2, 3);
        var gy = Autodiff.Grad([(y * w).Sum()], [x, b], allowUnused: true, createGraph: true);
        var gz = Autodiff.Grad([(z * w).Sum()], [x, b], allowUnused: true, createGraph: true);
        for (var i = 0; i < 2; i++)
        {
            AssertClose(gz[i], gy[i]);
        }

        // Second order through the rules of the in-place nodes.
        if (!Cuts(op))
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
        Tensor F(Tensor[] t) => InPlaceOp(op, op == "sqrt" ? t[0].Exp() * 1.0 : t[0] * 1.5, t[1]).Tanh();
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
        if (op is "zero" or "fill")
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
        { "broadcast", "AddInPlace: the operand of shape [4] cannot be broadcast to the shape [2, 3] of the tensor written (an in-place result keeps that shape). (Parameter 'b')" },
        { "grow", "MulInPlace: the operand of shape [2, 2, 3] cannot be broadcast to the shape [2, 3] of the tensor written (an in-place result keeps that shape). (Parameter 'b')" },
        { "dtype", "SubInPlace: the operand is float32 [3] but the tensor written is float64 [2, 3]; convert the operand with To(DType.Float64). (Parameter 'b')" },
        { "int", "DivInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
        { "intnumber", "ZeroInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
        { "copyshape", "CopyFrom: the source of shape [3, 3] float32 cannot be broadcast to the shape [2, 3] float64 of the tensor written (an in-place result keeps that shape). (Parameter 'source')" },
        { "addcmulshape", "AddcmulInPlace: the operand of shape [4] cannot be broadcast to the shape [2, 3] of the tensor written (an in-place result keeps that shape). (Parameter 't2')" },
        { "addcdivdtype", "AddcdivInPlace: the operand is float32 [3] but the tensor written is float64 [2, 3]; convert the operand with To(DType.Float64). (Parameter 't1')" },
        { "sqrtint", "SqrtInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
        { "addcmulint", "AddcmulInPlace: expected a float64 or float32 tensor to write into, got int64 (shape [2])." },
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
            "copyshape" => () => s.CopyFrom(Tensor.Zeros(new Shape(3, 3), DType.Float32)),
            "addcmulshape" => () => s.AddcmulInPlace(N(2, 3), N(3, 4)),
            "addcdivdtype" => () => s.AddcdivInPlace(Tensor.From(1f, 2f, 3f), N(2, 3)),
            "sqrtint" => () => i.SqrtInPlace(),
            "addcmulint" => () => i.AddcmulInPlace(i, i),
            _ => () => i.ZeroInPlace(),
        };
        var before = s.ToArray<double>();
        var e = Assert.ThrowsAny<ArgumentException>(act);
        Assert.Equal(message, e.Message);
        Assert.Equal(before, s.ToArray<double>());
        Assert.Equal(0, s.Version);
        Assert.Equal(0, i.Version);
    }

    [Fact]
    public void FillAndCopyWorkOnInt64TensorsAndConvertBetweenDTypes()
    {
        var i = Tensor.FromArray(new long[] { 1, 2, 3, 4 }, 2, 2);
        Assert.Same(i, i.FillInPlace(-2.75));
        Assert.Equal(new long[] { -2, -2, -2, -2 }, i.ToArray<long>());
        i.CopyFrom(Tensor.From(1.9f, -3.5f));
        Assert.Equal(new long[] { 1, -3, 1, -3 }, i.ToArray<long>());
        Assert.Equal(2, i.Version);

        var f = Tensor.Zeros(new Shape(2, 3), DType.Float32);
        f.CopyFrom(Tensor.FromArray(new long[] { 7, 8, 9 }, 3));
        Assert.Equal(new[] { 7f, 8f, 9f, 7f, 8f, 9f }, f.ToArray<float>());
        f.CopyFrom(Tensor.From(0.1));
        Assert.All(f.ToArray<float>(), v => Assert.Equal(0.1f, v));
        f.CopyFrom(Tensor.From(new[,] { { 1.0 }, { 2.0 } }));
        Assert.Equal(new[] { 1f, 1f, 1f, 2f, 2f, 2f }, f.ToArray<float>());
        Assert.False(f.RequiresGrad);
        Assert.True(f.IsLeaf);
    }

    [Fact]
    public void CopyFromAFloat32SourceGetsAFloat32GradientSummedOverTheBroadcast()
    {
        var src = Tensor.From(1f, 2f, 3f).WithRequiresGrad();
        var x = N(1, 2, 3).WithRequiresGrad();
        var s = (x * 1.0).CopyFrom(src);
        Assert.Equal(DType.Float64, s.DType);
        Assert.Equal(new[] { 1.0, 2.0, 3.0, 1.0, 2.0, 3.0 }, s.ToArray<double>());
        var w = N(3, 2, 3);
        (s * w).Sum().Backward();
        Assert.Equal(DType.Float32, src.Grad!.DType);
        // As PyTorch: the gradient is converted to the source's dtype, then summed over the broadcast dimension.
        Assert.Equal(w.To(DType.Float32).Sum(0).ToArray<float>(), src.Grad.ToArray<float>());

        Assert.Null(x.Grad);

        // Forward mode: the tangent is the source's, converted and broadcast.
        var (_, t) = Autodiff.Jvp(a => Tensor.Zeros(new Shape(2, 3)).CopyFrom(a.To(DType.Float32)), Tensor.From(1.0, 2.0, 3.0), Tensor.From(0.5, -1.0, 2.0));
        Assert.Equal(new[] { 0.5, -1.0, 2.0, 0.5, -1.0, 2.0 }, t.ToArray<double>());
    }

    [Fact]
    public void CopyFromItselfOrAViewOfItselfKeepsTheValues()
    {
        var x = N(1, 2, 3);
        var before = x.ToArray<double>();
        x.CopyFrom(x);
        x.CopyFrom(x.Reshape(6).Reshape(2, 3));
        Assert.Equal(before, x.ToArray<double>());

        var a = N(2, 2, 3).WithRequiresGrad();
        var s = a * 1.0;
        s.AddcmulInPlace(s, s, 0.5);
        var expected = (a + (a * 0.5 * a)).ToArray<double>();
        Assert.Equal(expected, s.ToArray<double>());
        s.Sum().Backward();
        AssertClose(1.0 + a, a.Grad!);
    }

    [Fact]
    public void TheNewOperatorsRefuseALeafWhileRecordingAndWriteItUnderNoGrad()
    {
        var p = Tensor.From(1.0, 4.0).WithRequiresGrad();
        var u = Tensor.From(2.0, 3.0);
        foreach (var write in new Action[] { () => p.FillInPlace(1), () => p.CopyFrom(u), () => p.AddcmulInPlace(u, u), () => p.AddcdivInPlace(u, u), () => p.SqrtInPlace() })
        {
            var e = Assert.Throws<InvalidOperationException>(write);
            Assert.EndsWith("a leaf tensor that requires grad ([2] float64) cannot be changed in place while gradients are recorded; do it under Tensor.NoGrad() or on a clone.", e.Message, StringComparison.Ordinal);
        }

        Assert.Equal(0, p.Version);
        using (Tensor.NoGrad())
        {
            p.SqrtInPlace().AddcmulInPlace(u, u, 2.0).AddcdivInPlace(u, Tensor.From(4.0), -1.0);
        }

        Assert.Equal(new[] { 1.0 + 8.0 - 0.5, 2.0 + 18.0 - 0.75 }, p.ToArray<double>());
        Assert.Equal(3, p.Version);
        Assert.True(p.IsLeaf);
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
