using Autograd.Study;

namespace Autograd.Tests;

/// <summary>
/// Operators defined outside the library with <see cref="CustomOperator"/>: a stable softplus and a two-input operator
/// written here, checked for values, gradients (first and second order), forward mode, the fused-vs-composed checker,
/// how the study tools show them, and the errors for rules that return the wrong thing.
/// </summary>
public class CustomOperatorTests
{
    /// <summary>y = log(1 + eˣ) computed stably as max(x, 0) + log(1 + e^(−|x|)); dy = g ⊙ σ(x).</summary>
    [Rule("Softplus", Forward = "y = log(1 + eˣ)", Backward = "dx = g ⊙ σ(x)", Tangent = "ẏ = ẋ ⊙ σ(x)", Saves = "x")]
    private sealed class Softplus : CustomOperator
    {
        public override string Name => "Softplus";

        protected override Tensor Forward(CustomContext context, Tensor[] inputs)
        {
            var x = inputs[0];
            context.SaveForBackward(x);
            var xs = x.ToArray<double>();
            var y = new double[xs.Length];
            for (var i = 0; i < xs.Length; i++)
            {
                y[i] = Math.Max(xs[i], 0) + Math.Log(1 + Math.Exp(-Math.Abs(xs[i])));
            }

            return Tensor.FromArray(y, [.. x.Shape.Dims]);
        }

        protected override Tensor?[] Backward(CustomContext context, Tensor grad) => [grad * context.Saved(0).Sigmoid()];

        protected override Tensor? Jvp(CustomContext context, Tensor?[] tangents, Tensor output)
            => tangents[0] is { } t ? t * context.Saved(0).Sigmoid() : null;
    }

    /// <summary>y = a ⊙ b + a (two inputs, same shape), with no forward rule.</summary>
    private sealed class MulAddSelf : CustomOperator
    {
        protected override Tensor Forward(CustomContext context, Tensor[] inputs)
        {
            context.SaveForBackward(inputs[0], inputs[1]);
            return (inputs[0] * inputs[1]) + inputs[0];
        }

        protected override Tensor?[] Backward(CustomContext context, Tensor grad)
            => [context.NeedsInputGrad(0) ? grad * (context.Saved(1) + 1.0) : null, context.NeedsInputGrad(1) ? grad * context.Saved(0) : null];
    }

    /// <summary>Returns what it is told to from Backward, to test the checks.</summary>
    private sealed class Broken(Func<Tensor, Tensor?[]> backward) : CustomOperator
    {
        public override string Name => "Broken";

        protected override Tensor Forward(CustomContext context, Tensor[] inputs) => inputs[0] * 2.0;

        protected override Tensor?[] Backward(CustomContext context, Tensor grad) => backward(grad);
    }

    private static Tensor N(int seed, params int[] shape) => Tensor.RandN(new Shape(shape), seed) * 3.0;

    [Fact]
    public void SoftplusValuesAreStableAndMatchTheComposedForm()
    {
        var x = Tensor.From(-800.0, -30.0, -1.0, 0.0, 1e-8, 2.0, 30.0, 800.0);
        var y = new Softplus().Apply(x).ToArray<double>();
        Assert.Equal(800.0, y[7]);
        Assert.Equal(Math.Log(2), y[3], 15);
        Assert.True(y[0] >= 0 && y[0] < 1e-300);
        var composed = (1.0 + x.Exp()).Log().ToArray<double>();
        for (var i = 1; i < 7; i++)
        {
            Assert.Equal(composed[i], y[i], 1e-12);
        }
    }

    [Fact]
    public void SoftplusPassesGradCheckAndGradGradCheck()
    {
        var op = new Softplus();
        Tensor[] x = [N(1, 2, 5).WithRequiresGrad()];
        var first = GradCheck.Check(t => op.Apply(t[0]), x);
        Assert.True(first.Passed, first.Message);
        var second = GradCheck.GradGradCheck(t => [op.Apply(t[0])], x);
        Assert.True(second.Passed, second.Message);
    }

    [Fact]
    public void SoftplusAgreesWithTheComposedFormInTheFusedCheck()
    {
        var op = new Softplus();
        var r = FusedCheck.Compare(x => op.Apply(x), x => (1.0 + x.Exp()).Log(), N(2, 3, 4));
        Assert.True(r.ValueRel < 1e-12 && r.GradRel < 1e-12 && r.GradGradRel < 1e-10, r.ToString());
    }

    [Fact]
    public void SoftplusForwardRuleMatchesTheJvpOfTheComposedForm()
    {
        var op = new Softplus();
        var (x, v) = (N(3, 6), N(4, 6));
        var (y1, t1) = Autodiff.Jvp(t => op.Apply(t), x, v);
        var (y2, t2) = ((1.0 + x.Exp()).Log(), v * x.Sigmoid());
        var (a, b) = (t1.ToArray<double>(), t2.ToArray<double>());
        for (var i = 0; i < a.Length; i++)
        {
            Assert.Equal(b[i], a[i], 1e-12);
            Assert.Equal(y2.ToArray<double>()[i], y1.ToArray<double>()[i], 1e-12);
        }
    }

    [Fact]
    public void TheGraphAndTheTapeListingShowTheNameAndTheFormula()
    {
        var x = Tensor.From(1.0, -2.0).WithRequiresGrad();
        using var tape = new TapeListing();
        var y = new Softplus().Apply(x);
        Assert.Equal("Softplus", y.OpName);
        Assert.Equal("dx = g ⊙ σ(x)", y.GradFn!.Formula);
        Assert.Equal("y = log(1 + eˣ)", y.GradFn.Rule!.Forward);
        Assert.Equal("ẏ = ẋ ⊙ σ(x)", y.GradFn.Rule.Tangent);
        Assert.Equal("x", y.GradFn.SavedName(0));
        Assert.Contains("t0 = Softplus(x0)", tape.ToString(), StringComparison.Ordinal);
        Assert.Contains("saves: x=x0", tape.ToString(), StringComparison.Ordinal);
        var dot = Graph.ToDot(y.Sum(), null, tape);
        Assert.Contains("Softplus", dot, StringComparison.Ordinal);
        Assert.Contains("dx = g ⊙ σ(x)", dot, StringComparison.Ordinal);

        // Without a RuleAttribute the generic rule of custom operators is shown.
        var z = new MulAddSelf().Apply(x, x * 2.0);
        Assert.Equal("MulAddSelf", z.OpName);
        Assert.Equal("dxᵢ = the operator's Backward(g)", z.GradFn!.Formula);
    }

    [Fact]
    public void ATwoInputOperatorGetsBothGradientsFirstAndSecondOrder()
    {
        var op = new MulAddSelf();
        Tensor[] inputs = [N(5, 2, 3).WithRequiresGrad(), N(6, 2, 3).WithRequiresGrad()];
        var first = GradCheck.Check(t => op.Apply(t[0], t[1]), inputs);
        Assert.True(first.Passed, first.Message);
        var second = GradCheck.GradGradCheck(t => [op.Apply(t[0], t[1])], inputs);
        Assert.True(second.Passed, second.Message);

        // Only one input requires grad: the rule is told so.
        var b = N(7, 2, 3);
        inputs[0].Grad = null;
        var y = op.Apply(inputs[0], b);
        y.Sum().Backward();
        Assert.Null(b.Grad);
        Assert.Equal((b + 1.0).ToArray<double>(), inputs[0].Grad!.ToArray<double>());
    }

    [Fact]
    public void WithoutAForwardRuleForwardModeFailsNamingTheOperator()
    {
        var op = new MulAddSelf();
        var e = Assert.Throws<NotSupportedException>(() => Autodiff.Jvp(t => op.Apply(t, t), N(1, 3), N(2, 3)));
        Assert.Equal("MulAddSelf: this custom operator defines no forward rule (override Jvp), so forward mode (Autodiff.Jvp) cannot go through it.", e.Message);
    }

    public static TheoryData<string, string> BadRules => new()
    {
        { "count", "Broken: Backward returned 2 gradients for 1 inputs; it must return one entry (a tensor or null) per input." },
        { "shape", "Broken: Backward returned a gradient of shape [3, 1] float64 for input 0 of shape [3] float64; it must have the input's shape and dtype." },
        { "dtype", "Broken: Backward returned a gradient of shape [3] float32 for input 0 of shape [3] float64; it must have the input's shape and dtype." },
        { "null", "Broken: Backward returned null for 1 inputs; it must return one entry (a tensor or null) per input." },
    };

    [Theory]
    [MemberData(nameof(BadRules))]
    public void ABackwardThatReturnsTheWrongThingFailsNamingTheOperatorAndInput(string what, string message)
    {
        var op = new Broken(g => what switch
        {
            "count" => [g, g],
            "shape" => [g.Reshape(3, 1)],
            "dtype" => [g.To(DType.Float32)],
            _ => null!,
        });
        var x = N(1, 3).WithRequiresGrad();
        var e = Assert.Throws<InvalidOperationException>(() => op.Apply(x).Sum().Backward());
        Assert.Equal(message, e.Message);
    }
}
