using Autograd.Onnx;

namespace Autograd.Tests;

public class OnnxFunctionTests
{
    private static Tensor R(int seed, params int[] shape) => Tensor.RandN(new Shape(shape), seed, DType.Float32);

    private static Tensor Positive(int seed, params int[] shape) => Tensor.Rand(new Shape(shape), seed, DType.Float32, 0.5, 2.0);

    private static Tensor Index(params long[] values) => Tensor.FromArray(values, values.Length);

    // Comparisons are not recorded: a condition computed from an input inside the function would be frozen as a constant.
    private static readonly Tensor WhereMask = R(9, 3, 4).Gt(0);

    // One traced function per operator family, with its float32 sample inputs.
    private static readonly Dictionary<string, (Func<Tensor[], Tensor> F, Func<Tensor[]> Inputs)> Cases = new()
    {
        ["Add, Sub, Mul, Div with broadcasting and numbers"] = (t => ((t[0] + t[1]) * t[2] - (t[0] / (t[2] + 3.0))) * 2.0 - 1.0 + (1.0 / (t[1] + 4.0)), () => [R(1, 3, 4), R(2, 4), Positive(3, 3, 1)]),
        ["Neg, Exp, Log, Sqrt, Abs"] = (t => -t[0].Exp() + t[1].Log() + t[1].Sqrt() + t[0].Abs(), () => [R(1, 2, 5), Positive(2, 2, 5)]),
        ["Tanh, Sigmoid, Relu, Erf"] = (t => t[0].Tanh() + t[0].Sigmoid() + t[0].Relu() + t[0].Erf(), () => [R(1, 3, 5)]),
        ["Pow"] = (t => t[0].Pow(2.5) + t[0].Pow(-1), () => [Positive(1, 3, 4)]),
        ["MatMul and its transposed forms"] = (t => t[0].MatMul(t[1]) + LinearAlgebra.MatMulT(t[2], t[1], true, false) + LinearAlgebra.MatMulT(t[0], t[3], false, true) + LinearAlgebra.MatMulT(t[2], t[3], true, true), () => [R(1, 2, 3, 4), R(2, 2, 4, 5), R(3, 2, 4, 3), R(4, 2, 5, 4)]),
        ["Sum, Mean"] = (t => t[0].Sum(1).Sum() + t[0].Mean([0, 2], keepDim: true).Sum(1) + t[0].Sum(), () => [R(1, 2, 3, 4)]),
        ["Max, Min"] = (t => t[0].Max(1) + t[0].Min([0, 1], keepDim: true).Squeeze(0) + t[0].Max(), () => [R(1, 2, 3, 4)]),
        ["Softmax, LogSoftmax, LogSumExp"] = (t => t[0].Softmax(1) + t[0].LogSoftmax(-1) + t[0].LogSumExp(2, keepDim: true) + t[0].LogSumExp(0), () => [R(1, 3, 4, 4)]),
        ["Reshape, View, Flatten, Squeeze, Unsqueeze"] = (t => t[0].Reshape(6, 4).View(2, 12).Flatten().Unsqueeze(0).Squeeze(0).Reshape(24, 1).Squeeze(), () => [R(1, 2, 3, 4)]),
        ["Permute, Transpose, Expand"] = (t => t[0].Permute(2, 0, 1).Transpose(0, 2) + t[1].Expand(3, 2, 4), () => [R(1, 2, 3, 4), R(2, 2, 1)]),
        ["Narrow, Slice, Concat, Stack"] = (t => Tensor.Concat([t[0].Narrow(1, 1, 2), t[0].Slice(1, 0, 4, 3)], 0) + Tensor.Stack([t[1], t[1] * 2.0], -1).Sum(-1), () => [R(1, 3, 4), R(2, 6, 2)]),
        ["IndexSelect, Gather"] = (t => t[0].IndexSelect(1, Index(2, 0, 2)) + t[0].Gather(1, Tensor.FromArray([0L, 1, 1, 3, 2, 0, 0, 0, 3], 3, 3)), () => [R(1, 3, 4)]),
        ["Where, Clamp, Maximum, Minimum"] = (t => Tensor.Where(WhereMask, t[0], t[1]) + t[0].Clamp(-0.5, 0.5) + t[1].Clamp(min: 0) + t[0].Maximum(t[1]) + t[0].Minimum(0.25), () => [R(1, 3, 4), R(2, 3, 4)]),
        ["LayerNorm"] = (t => t[0].LayerNorm([4], t[1], t[2], 1e-4) + t[0].LayerNorm([3, 4]), () => [R(1, 2, 3, 4), R(2, 4), R(3, 4)]),
        ["Conv2d"] = (t => t[0].Conv2d(t[1], t[2], stride: 2, padding: 1, dilation: 1, groups: 2), () => [R(1, 2, 4, 7, 7), R(2, 6, 2, 3, 3), R(3, 6)]),
        ["Conv1d"] = (t => t[0].Conv1d(t[1], padding: 1, dilation: 2), () => [R(1, 2, 3, 9), R(2, 4, 3, 3)]),
        ["MaxPool2d, AvgPool2d, AdaptiveAvgPool2d"] = (t => t[0].MaxPool2d(3, 2, 1) + t[0].AvgPool2d(3, 2, 1, countIncludePad: false) + t[0].AdaptiveAvgPool2d(1), () => [R(1, 2, 3, 7, 7)]),
        ["ScaledDotProductAttention"] = (t => Tensor.ScaledDotProductAttention(t[0], t[1], t[2]) + Tensor.ScaledDotProductAttention(t[0], t[1], t[2], causal: true), () => [R(1, 2, 2, 5, 4), R(2, 2, 2, 5, 4), R(3, 2, 2, 5, 4)]),
        ["To"] = (t => t[0].To(DType.Float64).Exp().To(DType.Float32), () => [R(1, 3, 4)]),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    // Exports f traced on inputs, then runs the file on those inputs and on others (float inputs scaled by 1.5, or
    // otherInputs), so that a value frozen into a constant would show.
    private static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, Tensor[]? otherInputs = null)
    {
        using var stream = new MemoryStream();
        OnnxExport.ExportFunction(stream, f, inputs);
        var other = otherInputs ?? [.. inputs.Select(t => t.DType.IsFloatingPoint() ? (t * 1.5).Detach() : t)];
        foreach (var x in new[] { inputs, other })
        {
            Tensor expected;
            using (Tensor.NoGrad())
            {
                expected = f(x);
            }

            OnnxRuntimeCheck.AssertClose(expected, OnnxRuntimeCheck.Run(stream.ToArray(), x));
        }
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void TracedFunctionRunsInOnnxRuntime(string name)
    {
        var (f, inputs) = Cases[name];
        Check(f, inputs());
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void SoftmaxFromPrimitivesRunsInOnnxRuntime(DType dtype)
    {
        static Tensor Softmax(Tensor[] t)
        {
            var shifted = t[0] - t[0].Max(1, keepDim: true);
            var e = shifted.Exp();
            return e / e.Sum(1, keepDim: true);
        }

        Check(Softmax, [Tensor.RandN(new Shape(4, 6), 3, dtype)]);
    }

    [Fact]
    public void EmbeddingTakesAnIndexInput()
    {
        var weight = R(1, 6, 3).WithRequiresGrad();
        Check(t => Tensor.Embedding(t[0], weight).Tanh(), [Tensor.FromArray([5L, 0, 2, 2], 2, 2)], [Tensor.FromArray([1L, 4, 3, 0], 2, 2)]);
    }

    [Fact]
    public void AnInputThatRequiresNoGradIsStillTraced()
    {
        var w = R(2, 4, 3).WithRequiresGrad();
        Check(t => t[0].Reshape(2, 4).MatMul(w).Relu(), [R(1, 8)]);
    }

    [Fact]
    public void AnOperatorWithoutCounterpartIsNamed()
    {
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(
            Stream.Null, t => t[0].ScatterAdd(1, Tensor.FromArray([0L, 1, 1, 0], 2, 2), t[1]), R(1, 2, 3), R(2, 2, 2)));
        Assert.Equal("ExportFunction: operator 'ScatterAdd' has no ONNX counterpart.", e.Message);
    }

    [Fact]
    public void AttentionWithAnExplicitMaskIsRefused()
    {
        var mask = Tensor.Ones(new Shape(5, 5), DType.Float32);
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(
            Stream.Null, t => Tensor.ScaledDotProductAttention(t[0], t[0], t[0], mask), R(1, 2, 5, 4)));
        Assert.StartsWith("ExportFunction: operator 'ScaledDotProductAttention' has no ONNX counterpart here when called with an explicit mask", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnInputUsedOffTheTapeIsRefused()
    {
        var weight = R(1, 6, 3).WithRequiresGrad();
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(
            Stream.Null, t => Tensor.Embedding(t[0].Reshape(4), weight), Tensor.FromArray([5L, 0, 2, 2], 2, 2)));
        Assert.StartsWith("ExportFunction: input 0 ([2, 2] int64) reaches the output through no recorded operator;", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(Stream.Null, t => t[0].Detach().Exp(), R(1, 2)));
        Assert.StartsWith("ExportFunction: input 0 ([2] float32)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AMaskComputedFromAnInputOffTheTapeIsRefused()
    {
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(Stream.Null, t => Tensor.Where(t[0].Gt(0), t[0], t[1]), R(1, 3, 4), R(2, 3, 4)));
        Assert.Equal(
            "ExportFunction: operator 'Where' reads a tensor ([3, 4] float32) computed from the inputs off the tape (a comparison mask, or a value under NoGrad or Detach); " +
            "the model would hold its traced values. Compute it with recorded operators or outside the function.",
            e.Message);
        var scale = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(Stream.Null, t => t[0] * t[0].Detach().Sum().ToArray()[0], R(1, 3)));
        Assert.StartsWith("ExportFunction: operator 'Mul' reads a tensor ([] float32) computed from the inputs off the tape", scale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ControlFlowOnTheInputsValuesIsRefused()
    {
        var e = Assert.Throws<NotSupportedException>(() => OnnxExport.ExportFunction(Stream.Null, t => t[0].ToArray()[0] == 1 ? t[0].Exp() : t[0].Tanh(), Tensor.Ones(new Shape(3), DType.Float32)));
        Assert.StartsWith("ExportFunction: the function records other operators for other input values", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentNullException>(() => OnnxExport.ExportFunction(Stream.Null, null!, R(1, 2)));
        Assert.Throws<ArgumentNullException>(() => OnnxExport.ExportFunction((Stream)null!, t => t[0], R(1, 2)));
        var e = Assert.Throws<ArgumentException>(() => OnnxExport.ExportFunction(Stream.Null, t => t[0]));
        Assert.Equal("ExportFunction: at least one sample input is needed. (Parameter 'sampleInputs')", e.Message);
    }

    [Fact]
    public void ExportToAFileWritesTheSameModel()
    {
        var path = Path.Combine(Path.GetTempPath(), $"onnx-{Guid.NewGuid():N}.onnx");
        try
        {
            var x = R(1, 3, 4);
            OnnxExport.ExportFunction(path, t => t[0].Softmax(-1), x);
            Tensor expected;
            using (Tensor.NoGrad())
            {
                expected = x.Softmax(-1);
            }

            OnnxRuntimeCheck.AssertClose(expected, OnnxRuntimeCheck.Run(File.ReadAllBytes(path), x));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
