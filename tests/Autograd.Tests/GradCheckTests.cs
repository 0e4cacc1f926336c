using System.Globalization;

namespace Autograd.Tests;

/// <summary>
/// The gradient checker itself (it catches wrong first and second derivatives and names the input element at fault,
/// and chooses the full Jacobian or a projection by size), and the gradients it cannot check by finite differences:
/// the tie rule of Max/Min, the kinks of Abs and Relu, zero-size shapes, and dtype conversion. Every operator's
/// gradient checks are the rows of <see cref="OpTable"/>.
/// </summary>
public class GradCheckTests
{
    /// <summary>6·512 + 7: longer than any vector, and not a multiple of any vector width.</summary>
    private const int Long = OpTable.Long;

    private static Shape S(params int[] dims) => new(dims);

    [Fact]
    public void LongInputsAreCheckedByProjectionAndShortOnesByFullJacobian()
    {
        var big = Tensor.RandN(S(Long), 1).WithRequiresGrad();
        var r = GradCheck.Check(t => t[0].Tanh(), [big]);
        Assert.True(r.Passed, r.Message);
        Assert.Contains("projection", r.Message, StringComparison.Ordinal);

        var small = Tensor.RandN(S(9), 1).WithRequiresGrad();
        r = GradCheck.Check(t => t[0].Tanh(), [small]);
        Assert.True(r.Passed, r.Message);
        Assert.Contains("full Jacobian 9×9", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MultiOutputFunctionsAreCheckedToFirstAndSecondOrder()
    {
        // Several outputs of different shapes sharing one input, plus an output that needs no gradient at all.
        Tensor[] F(Tensor[] t) =>
        [
            t[0].Softmax(-1),
            t[0].LogSumExp(0, keepDim: true),
            (t[0] * t[1]).Sum(1),
            Tensor.Ones(2),
        ];

        Tensor[] Inputs() => [Tensor.RandN(S(3, 4), 11).WithRequiresGrad(), Tensor.RandN(S(4), 12).WithRequiresGrad()];

        var first = GradCheck.Check(F, Inputs());
        Assert.True(first.Passed, first.Message);
        var second = GradCheck.GradGradCheck(F, Inputs());
        Assert.True(second.Passed, second.Message);
    }

    [Fact]
    public void AbsAndReluHaveAZeroGradientAtTheKink()
    {
        // Not checkable by finite differences (not differentiable there); the convention is PyTorch's.
        var x = Tensor.From(-2.0, 0.0, 3.0).WithRequiresGrad();
        (x.Abs() + x.Relu()).Sum().Backward();
        AssertGrad([-1, 0, 2], x);
    }

    // ---------------------------------------------------------------- dtype conversion

    [Fact]
    public void ToSameDTypeIsTheIdentity()
    {
        var x = Tensor.RandN(S(3), 2).WithRequiresGrad();
        Assert.Same(x, x.To(DType.Float64));
        var x32 = Tensor.RandN(S(3), 2, DType.Float32).WithRequiresGrad();
        Assert.Same(x32, x32.To(DType.Float32));
    }

    [Fact]
    public void GradientOfAConversionHasTheDTypeOfTheInput()
    {
        var x = Tensor.RandN(S(7), 3).WithRequiresGrad();
        var y = x.To(DType.Float32);
        Assert.Equal(DType.Float32, y.DType);
        Assert.Equal("To", y.OpName);
        (y * 3.0).Sum().Backward();
        Assert.Equal(DType.Float64, x.Grad!.DType);
        Assert.Equal(Enumerable.Repeat(3.0, 7), x.Grad.ToArray());

        var x32 = Tensor.RandN(S(2, 3), 4, DType.Float32).WithRequiresGrad();
        x32.To(DType.Float64).Exp().Sum().Backward();
        Assert.Equal(DType.Float32, x32.Grad!.DType);
        Assert.Equal(S(2, 3), x32.Grad.Shape);
        var expected = x32.ToArray().Select(v => Math.Exp(v)).ToArray();
        var actual = x32.Grad.ToArray();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-6 * expected[i]);
        }
    }

    // ---------------------------------------------------------------- ties of Max and Min

    private static void AssertGrad(double[] expected, Tensor x)
    {
        Assert.NotNull(x.Grad);
        Assert.Equal(x.Shape, x.Grad.Shape);
        var actual = x.Grad.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (!(Math.Abs(expected[i] - actual[i]) < 1e-12))
            {
                Assert.Fail($"element {i}: expected {expected[i]}, got {actual[i]} (all: {string.Join(", ", actual)})");
            }
        }
    }

    [Fact]
    public void MaxOverAllSplitsTheGradientAmongTies()
    {
        var x = Tensor.From(1.0, 3.0, 3.0).WithRequiresGrad();
        var y = x.Max();
        Assert.Equal(3.0, y.Item());
        y.Backward();
        AssertGrad([0, 0.5, 0.5], x);
    }

    [Fact]
    public void MinOverAllSplitsTheGradientAmongTies()
    {
        var x = Tensor.From(2.0, 1.0, 1.0, 1.0).WithRequiresGrad();
        var y = x.Min();
        Assert.Equal(1.0, y.Item());
        (y * 3.0).Backward();
        AssertGrad([0, 1, 1, 1], x);
    }

    [Fact]
    public void MaxOverAllOfEqualElementsSplitsEvenlyOverEveryElement()
    {
        var x = Tensor.Full(S(Long), 2.5).WithRequiresGrad();
        x.Max().Backward();
        AssertGrad(Enumerable.Repeat(1.0 / Long, Long).ToArray(), x);

        var m = Tensor.Full(S(2, 2), -1.0).WithRequiresGrad();
        m.Min([0, 1]).Backward();
        AssertGrad([0.25, 0.25, 0.25, 0.25], m);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverADimSplitsTheGradientAmongTiesPerRow(bool keepDim)
    {
        var x = Tensor.From(new double[,] { { 1, 3, 3 }, { 2, 2, 0 }, { 5, 4, 4 } }).WithRequiresGrad();
        var y = x.Max(1, keepDim);
        Assert.Equal(keepDim ? S(3, 1) : S(3), y.Shape);
        Assert.Equal([3.0, 2.0, 5.0], y.ToArray());
        var g = Tensor.FromArray([1.0, 2.0, 4.0], y.Shape.ToArray());
        y.Backward(g);
        AssertGrad([0, 0.5, 0.5, 1, 1, 0, 4, 0, 0], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverTheLeadingDimSplitsTheGradientAmongTiesPerColumn(bool keepDim)
    {
        // Reducing dim 0 runs the strided (inner > 1) path.
        var x = Tensor.From(new double[,] { { 1, 5, 7 }, { 1, 2, 7 }, { 0, 5, 7 } }).WithRequiresGrad();
        var y = x.Max(-2, keepDim);
        Assert.Equal(keepDim ? S(1, 3) : S(3), y.Shape);
        Assert.Equal([1.0, 5.0, 7.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0.5, 0.5, third, 0.5, 0, third, 0, 0.5, third], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MinOverADimSplitsTheGradientAmongTies(bool keepDim)
    {
        var x = Tensor.From(new double[,] { { 4, -1, -1, 0 }, { 2, 2, 2, 3 } }).WithRequiresGrad();
        var y = x.Min(-1, keepDim);
        Assert.Equal([-1.0, 2.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0, 0.5, 0.5, 0, third, third, third, 0], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverSeveralDimsSplitsTheGradientAmongTies(bool keepDim)
    {
        // [2, 2, 2]: reduce dims 0 and 2; for each j the maximum over the four elements x[:, j, :].
        var x = Tensor.FromArray([9.0, 1, 3, 3, 9, 0, 3, 2], 2, 2, 2).WithRequiresGrad();
        var y = x.Max([0, -1], keepDim);
        Assert.Equal(keepDim ? S(1, 2, 1) : S(2), y.Shape);
        Assert.Equal([9.0, 3.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0.5, 0, third, third, 0.5, 0, third, 0], x);
    }

    [Fact]
    public void TieRuleHoldsForSecondOrderToo()
    {
        // The gradient of Max is g / count ⊙ mask, linear in g: differentiating ⟨∇x, v⟩ w.r.t. g gives v at the ties, split.
        var x = Tensor.From(1.0, 3.0, 3.0).WithRequiresGrad();
        var g = Tensor.Scalar(2.0).WithRequiresGrad();
        var y = x.Max();
        var dx = Autodiff.Grad(y, x, g, createGraph: true);
        AssertTensor([0, 1, 1], dx);
        var dg = Autodiff.Grad(dx, g, Tensor.From(1.0, 10.0, 100.0));
        Assert.Equal(55.0, dg.Item(), 12);
    }

    private static void AssertTensor(double[] expected, Tensor t)
    {
        var actual = t.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-12, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    // ---------------------------------------------------------------- zero-size dims

    /// <summary>An operator on inputs with a zero-size dim: nothing to perturb, so the shapes are checked instead.</summary>
    /// <param name="Name">The test-case name.</param>
    /// <param name="F">The function.</param>
    /// <param name="Shapes">The input shapes.</param>
    /// <param name="Expected">The expected output shape.</param>
    public sealed record EmptySpec(string Name, Func<Tensor[], Tensor> F, Shape[] Shapes, Shape Expected);

    private static readonly Dictionary<string, EmptySpec> EmptyTable = BuildEmptyTable().ToDictionary(s => s.Name);

    private static IEnumerable<EmptySpec> BuildEmptyTable()
    {
        EmptySpec E(string name, Func<Tensor[], Tensor> f, Shape[] shapes, Shape expected) => new(name, f, shapes, expected);

        yield return E("Exp [0,3]", t => t[0].Exp(), [S(0, 3)], S(0, 3));
        yield return E("Tanh [0]", t => t[0].Tanh(), [S(0)], S(0));
        yield return E("Pow(2) [3,0]", t => t[0].Pow(2), [S(3, 0)], S(3, 0));
        yield return E("Add [0,3]+[3]", t => t[0] + t[1], [S(0, 3), S(3)], S(0, 3));
        yield return E("Mul [0,1]*[1,4]", t => t[0] * t[1], [S(0, 1), S(1, 4)], S(0, 4));
        yield return E("Div [2,0]/[]", t => t[0] / t[1], [S(2, 0), S()], S(2, 0));
        yield return E("x * 2.0 [0]", t => t[0] * 2.0, [S(0)], S(0));
        yield return E("Sum() [0,3]", t => t[0].Sum(), [S(0, 3)], S());
        yield return E("Sum(0) [0,3]", t => t[0].Sum(0), [S(0, 3)], S(3));
        yield return E("Sum(-2, keepDim) [0,3]", t => t[0].Sum(-2, keepDim: true), [S(0, 3)], S(1, 3));
        yield return E("Sum(1) [0,3]", t => t[0].Sum(1), [S(0, 3)], S(0));
        yield return E("Mean(1) [0,3]", t => t[0].Mean(1), [S(0, 3)], S(0));
        yield return E("Max(1) [0,3]", t => t[0].Max(1), [S(0, 3)], S(0));
        yield return E("Min(-1, keepDim) [0,3]", t => t[0].Min(-1, keepDim: true), [S(0, 3)], S(0, 1));
        yield return E("SumTo [0,3]->[3]", t => t[0].SumTo(S(3)), [S(0, 3)], S(3));
        yield return E("SumTo [0,3]->[1,3]", t => t[0].SumTo(S(1, 3)), [S(0, 3)], S(1, 3));
        yield return E("Reshape(3,0) [0,3]", t => t[0].Reshape(3, 0), [S(0, 3)], S(3, 0));
        yield return E("Flatten [2,0,3]", t => t[0].Flatten(), [S(2, 0, 3)], S(0));
        yield return E("Unsqueeze(1) [0,3]", t => t[0].Unsqueeze(1), [S(0, 3)], S(0, 1, 3));
        yield return E("Squeeze() [0,1]", t => t[0].Squeeze(), [S(0, 1)], S(0));
        yield return E("Transpose(0,1) [0,3]", t => t[0].Transpose(0, 1), [S(0, 3)], S(3, 0));
        yield return E("Permute(2,0,1) [2,0,3]", t => t[0].Permute(2, 0, 1), [S(2, 0, 3)], S(3, 2, 0));
        yield return E("Expand(0,4) [1,4]", t => t[0].Expand(0, 4), [S(1, 4)], S(0, 4));
        yield return E("Expand(2,0) [2,1]", t => t[0].Expand(2, 0), [S(2, 1)], S(2, 0));
        yield return E("MatMul [0,3]x[3,4]", t => t[0].MatMul(t[1]), [S(0, 3), S(3, 4)], S(0, 4));
        yield return E("MatMul [2,0]x[0,3]", t => t[0].MatMul(t[1]), [S(2, 0), S(0, 3)], S(2, 3));
        yield return E("MatMul [0,2,3]x[3,4]", t => t[0].MatMul(t[1]), [S(0, 2, 3), S(3, 4)], S(0, 2, 4));
        yield return E("MatMul [0]x[0]", t => t[0].MatMul(t[1]), [S(0), S(0)], S());
        yield return E("Softmax(1) [0,3]", t => t[0].Softmax(1), [S(0, 3)], S(0, 3));
        yield return E("Softmax(0) [0,3]", t => t[0].Softmax(0), [S(0, 3)], S(0, 3));
        yield return E("LogSoftmax(-1) [3,0]", t => t[0].LogSoftmax(-1), [S(3, 0)], S(3, 0));
        yield return E("SoftmaxComposed(1) [0,3]", t => t[0].SoftmaxComposed(1), [S(0, 3)], S(0, 3));
        yield return E("LogSumExp(1) [0,3]", t => t[0].LogSumExp(1), [S(0, 3)], S(0));
        yield return E("LogSumExp(0) [0,3]", t => t[0].LogSumExp(0), [S(0, 3)], S(3));
        yield return E("LogSumExp(0, keepDim) [0,3]", t => t[0].LogSumExp(0, keepDim: true), [S(0, 3)], S(1, 3));
        yield return E("SoftmaxBackward [0,3]", t => Tensor.SoftmaxBackward(t[0], t[1], 1), [S(0, 3), S(0, 3)], S(0, 3));
        yield return E("LogSoftmaxBackward [2,0]", t => Tensor.LogSoftmaxBackward(t[0], t[1], 0), [S(2, 0), S(2, 0)], S(2, 0));
    }

    /// <summary>Every row of the zero-size table, by name.</summary>
    public static TheoryData<string> EmptyCases => [.. EmptyTable.Keys];

    [Theory]
    [MemberData(nameof(EmptyCases))]
    public void ZeroSizeShapesGiveCorrectlyShapedGradients(string name)
    {
        var spec = EmptyTable[name];
        var inputs = spec.Shapes.Select((s, i) => Tensor.RandN(s, 50 + i).WithRequiresGrad()).ToArray();
        var y = spec.F(inputs);
        Assert.Equal(spec.Expected, y.Shape);
        Assert.Equal(DType.Float64, y.DType);
        Assert.True(y.RequiresGrad);

        // Backward with an explicit output gradient, then check every input got a gradient of its shape and that
        // inputs broadcast over an empty dim receive zeros (a sum of nothing).
        y.Backward(Tensor.Ones(y.Shape));
        foreach (var x in inputs)
        {
            Assert.NotNull(x.Grad);
            Assert.Equal(x.Shape, x.Grad.Shape);
            Assert.Equal(DType.Float64, x.Grad.DType);
            if (y.ElementCount == 0)
            {
                Assert.All(x.Grad.ToArray(), v => Assert.Equal(0.0, v));
            }
        }

        // The checker has nothing (or only the non-empty broadcast partners) to perturb, and must not fail.
        var fresh = spec.Shapes.Select((s, i) => Tensor.RandN(s, 50 + i).WithRequiresGrad()).ToArray();
        var result = GradCheck.Check(spec.F, fresh);
        Assert.True(result.Passed, result.Message);
    }

    [Fact]
    public void SumOverAnEmptyDimIsZeroWithAGradientOfTheInputShape()
    {
        var x = Tensor.Zeros(0, 3).WithRequiresGrad();
        var y = x.Sum(0);
        Assert.Equal(S(3), y.Shape);
        Assert.Equal([0.0, 0.0, 0.0], y.ToArray());
        y.Backward(Tensor.From(1.0, 2.0, 3.0));
        Assert.Equal(S(0, 3), x.Grad!.Shape);

        var all = Tensor.Zeros(2, 0).WithRequiresGrad();
        var s = all.Sum();
        Assert.Equal(S(), s.Shape);
        Assert.Equal(0.0, s.Item());
        s.Backward();
        Assert.Equal(S(2, 0), all.Grad!.Shape);

        var m = Tensor.Zeros(0, 3).WithRequiresGrad().Mean(0);
        Assert.All(m.ToArray(), v => Assert.True(double.IsNaN(v)));
    }

    [Fact]
    public void MaxAndMinOverAnEmptyDimThrow()
    {
        var x = Tensor.Zeros(0, 3).WithRequiresGrad();
        Assert.Throws<ArgumentException>(() => x.Max(0));
        Assert.Throws<ArgumentException>(() => x.Min(-2, keepDim: true));
        Assert.Throws<ArgumentException>(() => x.Max());
        Assert.Throws<ArgumentException>(() => x.Min([0, 1]));
    }

    // ---------------------------------------------------------------- the checker catches errors

    [Fact]
    public void GradCheckFailsAndNamesTheInputElementAndValuesWhenAPathIsCut()
    {
        // f(a, b) = Σa + Σ b ⊙ detach(b ⊙ mask): the tape sees b ⊙ mask as a constant, so the analytic derivative
        // w.r.t. b is b ⊙ mask while the true one is 2·b ⊙ mask. Elements 0 and 1 of b are masked out (both 0), so
        // the first mismatch is input 1, element 2 (index [1, 0]).
        var a = Tensor.RandN(S(3), 7).WithRequiresGrad();
        var b = Tensor.FromArray([0.5, -1.5, 1.25, -0.75], 2, 2).WithRequiresGrad();
        var mask = Tensor.FromArray([0.0, 0.0, 1.0, 1.0], 2, 2);
        var result = GradCheck.Check(t => t[0].Sum() + (t[1] * (t[1] * mask).Detach()).Sum(), [a, b]);

        Assert.False(result.Passed);
        Assert.Equal(1, result.InputIndex);
        Assert.Equal(2, result.ElementIndex);
        Assert.Equal(1.25, result.Analytic, 12);
        Assert.Equal(2.5, result.Numeric, 6);
        Assert.Contains("input 1", result.Message, StringComparison.Ordinal);
        Assert.Contains("element 2", result.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 0]", result.Message, StringComparison.Ordinal);
        Assert.Contains("analytic " + result.Analytic.ToString("R", CultureInfo.InvariantCulture), result.Message, StringComparison.Ordinal);
        Assert.Contains("numeric " + result.Numeric.ToString("R", CultureInfo.InvariantCulture), result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradCheckCatchesXTimesDetachedX()
    {
        // f(x) = x ⊙ detach(x): the detached tensor shares x's storage, so the finite differences see 2x, the tape x.
        var x = Tensor.From(0.75, -2.0, 1.5).WithRequiresGrad();
        var result = GradCheck.Check(t => t[0] * t[0].Detach(), [x]);
        Assert.False(result.Passed);
        Assert.Equal(0, result.InputIndex);
        Assert.Equal(0, result.ElementIndex);
        Assert.Equal(0.75, result.Analytic, 12);
        Assert.Equal(1.5, result.Numeric, 6);
        Assert.Contains("input 0", result.Message, StringComparison.Ordinal);
        Assert.Contains("element 0", result.Message, StringComparison.Ordinal);
        Assert.Contains("analytic 0.75", result.Message, StringComparison.Ordinal);
        Assert.Contains("numeric 1.5", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradCheckInProjectionModeCatchesTheErrorToo()
    {
        var x = Tensor.Rand(S(Long), 8, low: 0.5, high: 2.0).WithRequiresGrad();
        var result = GradCheck.Check(t => t[0] * t[0].Detach(), [x]);
        Assert.False(result.Passed);
        Assert.Contains("projection", result.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.InputIndex);
        Assert.InRange(result.ElementIndex, 0, Long - 1);
        Assert.Contains($"element {result.ElementIndex}", result.Message, StringComparison.Ordinal);
        Assert.Equal(2 * result.Analytic, result.Numeric, 5);
    }

    [Fact]
    public void GradGradCheckCatchesAWrongSecondDerivativeThatGradCheckMisses()
    {
        // f(x) = x ⊙ detach(x) − ½ detach(x)² = ½x² in value; the tape's gradient detach(x) has the right value, but it
        // is recorded as a constant in x, so its derivative (0) is wrong (the true one is 1).
        Tensor F(Tensor[] t) => (t[0] * t[0].Detach()) - (0.5 * t[0].Detach() * t[0].Detach());
        var x = Tensor.RandN(S(4), 9).WithRequiresGrad();

        var first = GradCheck.Check(F, [x]);
        Assert.True(first.Passed, first.Message);

        var second = GradCheck.GradGradCheck(t => [F(t)], [x]);
        Assert.False(second.Passed);
        Assert.Equal(0, second.InputIndex);
        Assert.StartsWith("GradGradCheck (second derivatives), w.r.t. input 0:", second.Message, StringComparison.Ordinal);
        Assert.Equal(0.0, second.Analytic);
    }

    [Fact]
    public void GradCheckRejectsInputsItCannotCheck()
    {
        var x32 = Tensor.RandN(S(3), 1, DType.Float32).WithRequiresGrad();
        var e = Assert.Throws<ArgumentException>(() => GradCheck.Check(t => t[0].Exp(), [x32]));
        Assert.Contains("float64", e.Message, StringComparison.Ordinal);

        var constant = Tensor.RandN(S(3), 1);
        Assert.Throws<ArgumentException>(() => GradCheck.Check(t => t[0].Exp(), [constant]));
    }

    [Fact]
    public void GradCheckHoldsInputsThatDoNotRequireGradConstantAndRestoresValues()
    {
        var x = Tensor.RandN(S(5), 3).WithRequiresGrad();
        var w = Tensor.RandN(S(5), 4);
        var before = x.ToArray();
        var result = GradCheck.Check(t => (t[0] * t[1]).Exp(), [x, w]);
        Assert.True(result.Passed, result.Message);
        Assert.Equal(before, x.ToArray());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void GradGradCheckHandlesAFloat32OutputWithAConstantOutputGradient()
    {
        var x = Tensor.RandN(S(4), 5).WithRequiresGrad();
        var result = GradCheck.GradGradCheck(t => [(t[0] * t[0]).To(DType.Float32)], [x]);
        Assert.True(result.Passed, result.Message);

        var broken = GradCheck.GradGradCheck(t => [(t[0] * t[0].Detach()).To(DType.Float32)], [x]);
        Assert.False(broken.Passed);
    }
}
