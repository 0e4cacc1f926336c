using Autograd.Nn;
using Autograd.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Autograd.Tests;

/// <summary>Runs exported models in ONNX Runtime and compares them with the library's own results.</summary>
internal static class OnnxRuntimeCheck
{
    public const double Tolerance = 1e-5;

    /// <summary>Runs the model bytes on the inputs (names input, input_1, … in order) and returns the first output.</summary>
    public static (float[]? F, double[]? D, int[] Shape) Run(byte[] model, params Tensor[] inputs)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        var names = session.InputNames;
        Assert.Equal(inputs.Length, names.Count);
        var values = new List<NamedOnnxValue>();
        for (var i = 0; i < inputs.Length; i++)
        {
            var t = inputs[i];
            var dims = t.Shape.ToArray();
            values.Add(t.DType switch
            {
                DType.Float32 => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<float>(t.ToArray<float>(), dims)),
                DType.Float64 => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<double>(t.ToArray<double>(), dims)),
                _ => NamedOnnxValue.CreateFromTensor(names[i], new DenseTensor<long>(t.ToArray<long>(), dims)),
            });
        }

        using var results = session.Run(values);
        var first = results[0];
        if (first.Value is Tensor<float> f)
        {
            return (f.ToArray(), null, f.Dimensions.ToArray());
        }

        var d = first.AsTensor<double>();
        return (null, d.ToArray(), d.Dimensions.ToArray());
    }

    /// <summary>Asserts that ONNX Runtime's output equals <paramref name="expected"/> within |a − b| ≤ 1e-5 · max(1, |b|).</summary>
    public static void AssertClose(Tensor expected, (float[]? F, double[]? D, int[] Shape) actual, double tolerance = Tolerance)
    {
        Assert.Equal(expected.Shape.ToArray(), actual.Shape);
        var want = expected.ToArray();
        var got = actual.F is { } f ? f.Select(v => (double)v).ToArray() : actual.D!;
        Assert.Equal(expected.DType == DType.Float32, actual.F is not null);
        for (var i = 0; i < want.Length; i++)
        {
            var bound = tolerance * Math.Max(1, Math.Abs(want[i]));
            Assert.True(Math.Abs(got[i] - want[i]) <= bound, $"element {i}: ONNX Runtime {got[i]:R}, ours {want[i]:R} (bound {bound:G3})");
        }
    }

    /// <summary>Exports <paramref name="model"/> with the first input and checks it on every input (different batch sizes).</summary>
    public static byte[] CheckModule(Module model, params Tensor[] batches)
    {
        using var stream = new MemoryStream();
        model.ExportOnnx(stream, batches[0]);
        var bytes = stream.ToArray();
        foreach (var batch in batches)
        {
            Tensor expected;
            using (Tensor.NoGrad())
            {
                expected = model.Forward(batch);
            }

            AssertClose(expected, Run(bytes, batch));
        }

        return bytes;
    }
}

public class OnnxModuleTests
{
    private static Tensor Input(DType dtype, int seed, params int[] shape) => Tensor.RandN(new Shape(shape), seed, dtype);

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void MlpRunsInOnnxRuntimeAtTwoBatchSizes(DType dtype)
    {
        var model = new Sequential(new Linear(6, 16, seed: 1, dtype: dtype), new ReLU(), new Linear(16, 16, seed: 2, dtype: dtype), new ReLU(), new Linear(16, 3, seed: 3, dtype: dtype));
        OnnxRuntimeCheck.CheckModule(model, Input(dtype, 10, 5, 6), Input(dtype, 11, 2, 6), Input(dtype, 12, 1, 6));
    }

    [Fact]
    public void FashionCnnShapedModelRunsInOnnxRuntimeAtTwoBatchSizes()
    {
        const DType f = DType.Float32;
        var model = new Sequential(
            new Conv2d(1, 8, 3, seed: 1, padding: 1, dtype: f), new ReLU(), new MaxPool2d(2),
            new Conv2d(8, 16, 3, seed: 2, padding: 1, dtype: f), new ReLU(), new MaxPool2d(2),
            new Flatten(),
            new Linear(784, 32, seed: 3, dtype: f), new ReLU(),
            new Linear(32, 10, seed: 4, dtype: f));
        OnnxRuntimeCheck.CheckModule(model, Input(f, 1, 3, 1, 28, 28), Input(f, 2, 5, 1, 28, 28));
    }

    public static TheoryData<string> ModuleKinds() => [.. Kinds.Keys];

    // One small network per exportable module kind, in a given dtype, with an input maker for a given batch size and seed.
    private static readonly Dictionary<string, (Func<DType, Module> Model, Func<DType, int, int, Tensor> Input)> Kinds = new()
    {
        ["Linear (rank 3, MatMul)"] = (d => new Linear(4, 5, seed: 1, dtype: d), (d, n, s) => Input(d, s, n, 3, 4)),
        ["Linear without bias"] = (d => new Linear(4, 5, seed: 1, bias: false, dtype: d), (d, n, s) => Input(d, s, n, 4)),
        ["ReLU"] = (d => new ReLU(), (d, n, s) => Input(d, s, n, 7)),
        ["Tanh"] = (d => new Tanh(), (d, n, s) => Input(d, s, n, 7)),
        ["Sigmoid"] = (d => new Sigmoid(), (d, n, s) => Input(d, s, n, 7)),
        ["GELU"] = (d => new GELU(), (d, n, s) => Input(d, s, n, 2, 7)),
        ["Dropout (eval)"] = (d => new Sequential(new Dropout(0.5, seed: 1), new Linear(4, 2, seed: 2, dtype: d)).Eval(), (d, n, s) => Input(d, s, n, 4)),
        ["Softmax"] = (d => new Softmax(-1), (d, n, s) => Input(d, s, n, 3, 7)),
        ["Softmax dim 1"] = (d => new Softmax(1), (d, n, s) => Input(d, s, n, 3, 7)),
        ["LogSoftmax"] = (d => new LogSoftmax(1), (d, n, s) => Input(d, s, n, 9)),
        ["AdaptiveAvgPool2d 1"] = (d => new Sequential(new AdaptiveAvgPool2d(), new Flatten()), (d, n, s) => Input(d, s, n, 3, 5, 6)),
        ["Flatten"] = (d => new Flatten(), (d, n, s) => Input(d, s, n, 2, 3, 4)),
        ["Flatten (1, 2)"] = (d => new Flatten(1, 2), (d, n, s) => Input(d, s, n, 2, 3, 4)),
        ["Flatten (2, -1)"] = (d => new Flatten(2), (d, n, s) => Input(d, s, n, 2, 3, 4)),
        ["Conv2d"] = (d => new Conv2d(3, 4, 3, seed: 1, dtype: d), (d, n, s) => Input(d, s, n, 3, 8, 8)),
        ["Conv2d stride 2 padding 1 dilation 2 groups 2"] = (d => new Conv2d(4, 6, 3, seed: 1, stride: 2, padding: 1, dilation: 2, groups: 2, dtype: d), (d, n, s) => Input(d, s, n, 4, 9, 9)),
        ["Conv2d without bias"] = (d => new Conv2d(2, 3, 2, seed: 1, bias: false, dtype: d), (d, n, s) => Input(d, s, n, 2, 5, 5)),
        ["MaxPool2d"] = (d => new MaxPool2d(2), (d, n, s) => Input(d, s, n, 2, 6, 6)),
        ["MaxPool2d 3 stride 2 padding 1"] = (d => new MaxPool2d(3, 2, 1), (d, n, s) => Input(d, s, n, 2, 7, 7)),
        ["AvgPool2d"] = (d => new AvgPool2d(2), (d, n, s) => Input(d, s, n, 2, 6, 6)),
        ["AvgPool2d padding, count_include_pad"] = (d => new AvgPool2d(3, 2, 1), (d, n, s) => Input(d, s, n, 2, 7, 7)),
        ["AvgPool2d padding, not count_include_pad"] = (d => new AvgPool2d(3, 2, 1, countIncludePad: false), (d, n, s) => Input(d, s, n, 2, 7, 7)),
        ["BatchNorm1d [N, C]"] = (d => Trained(new BatchNorm1d(5, dtype: d), Input(d, 99, 8, 5)), (d, n, s) => Input(d, s, n, 5)),
        ["BatchNorm1d [N, C, L]"] = (d => Trained(new BatchNorm1d(3, affine: false, dtype: d), Input(d, 99, 4, 3, 6)), (d, n, s) => Input(d, s, n, 3, 6)),
        ["BatchNorm2d"] = (d => Trained(new BatchNorm2d(3, eps: 1e-3, dtype: d), Input(d, 99, 4, 3, 5, 5)), (d, n, s) => Input(d, s, n, 3, 5, 5)),
        ["LayerNorm"] = (d => Affine(new LayerNorm(6, dtype: d)), (d, n, s) => Input(d, s, n, 3, 6)),
        ["LayerNorm [3, 4] without affine"] = (d => new LayerNorm([3, 4], eps: 1e-4, elementwiseAffine: false, dtype: d), (d, n, s) => Input(d, s, n, 3, 4)),
        ["MultiHeadAttention"] = (d => new MultiHeadAttention(8, 2, seed: 1, dtype: d), (d, n, s) => Input(d, s, n, 5, 8)),
        ["MultiHeadAttention causal"] = (d => new MultiHeadAttention(8, 4, seed: 1, causal: true, dtype: d), (d, n, s) => Input(d, s, n, 5, 8)),
        ["TransformerBlock"] = (d => new TransformerBlock(8, 2, seed: 1, dtype: d), (d, n, s) => Input(d, s, n, 4, 8)),
    };

    [Theory]
    [MemberData(nameof(ModuleKinds))]
    public void ModuleKindRunsInOnnxRuntimeAtTwoBatchSizes(string kind)
    {
        var (model, input) = Kinds[kind];
        OnnxRuntimeCheck.CheckModule(model(DType.Float32), input(DType.Float32, 3, 1), input(DType.Float32, 5, 2));
    }

    // ONNX Runtime 1.31 has no float64 kernels for Conv, AveragePool and Erf (GELU, TransformerBlock).
    private static readonly HashSet<string> NoDoubleKernels = ["Conv2d", "Conv2d stride 2 padding 1 dilation 2 groups 2", "Conv2d without bias", "AvgPool2d", "AvgPool2d padding, count_include_pad", "AvgPool2d padding, not count_include_pad", "GELU", "TransformerBlock", "AdaptiveAvgPool2d 1"];

    public static TheoryData<string> Float64Kinds() => [.. Kinds.Keys.Where(k => !NoDoubleKernels.Contains(k))];

    [Theory]
    [MemberData(nameof(Float64Kinds))]
    public void ModuleKindRunsInFloat64WhereOnnxRuntimeHasDoubleKernels(string kind)
    {
        var (model, input) = Kinds[kind];
        OnnxRuntimeCheck.CheckModule(model(DType.Float64), input(DType.Float64, 3, 1), input(DType.Float64, 5, 2));
    }

    [Fact]
    public void EmbeddingIsAGatherOnTheIndexInput()
    {
        var model = new Sequential(new Embedding(10, 4, seed: 1, dtype: DType.Float32), new Linear(4, 2, seed: 2, dtype: DType.Float32));
        OnnxRuntimeCheck.CheckModule(model, Tensor.FromArray([1L, 9, 0, 3, 3, 2], 2, 3), Tensor.FromArray([7L, 0, 5], 1, 3));
    }

    [Fact]
    public void GptRunsInOnnxRuntimeAtTwoBatchSizes()
    {
        var model = new Gpt(vocabulary: 11, dModel: 8, context: 6, layers: 2, heads: 2, seed: 3);
        OnnxRuntimeCheck.CheckModule(model, Tensor.FromArray([1L, 4, 10, 0, 3, 2, 2, 7, 9, 5], 2, 5), Tensor.FromArray([0L, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 1, 1, 1], 3, 5));
    }

    [Fact]
    public void ParametersAreInitializersUnderTheirModuleNames()
    {
        var mlp = new Sequential(new Linear(3, 4, seed: 1, dtype: DType.Float32), new ReLU(), new BatchNorm1d(4, dtype: DType.Float32)).Eval();
        var block = new Sequential(new TransformerBlock(4, 2, seed: 2, dtype: DType.Float32));
        foreach (var (model, sample, count) in new[] { (mlp, Input(DType.Float32, 1, 2, 3), 6), (block, Input(DType.Float32, 1, 2, 5, 4), 12) })
        {
            using var stream = new MemoryStream();
            model.ExportOnnx(stream, sample);
            var proto = global::Onnx.ModelProto.Parser.ParseFrom(stream.ToArray());
            var names = proto.Graph.Initializer.Select(i => i.Name).ToHashSet();
            var state = model.NamedState().Select(p => p.Key).Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToArray();
            Assert.Equal(count, state.Length);
            foreach (var name in state)
            {
                Assert.Contains(name, names);
            }

            Assert.Equal(17, proto.OpsetImport.Single().Version);
            Assert.Equal("batch", proto.Graph.Input.Single().Type.TensorType.Shape.Dim[0].DimParam);
            Assert.Equal("batch", proto.Graph.Output.Single().Type.TensorType.Shape.Dim[0].DimParam);
        }
    }

    [Fact]
    public void ExportToAFileWritesTheSameModel()
    {
        var model = new Sequential(new Linear(3, 2, seed: 1, dtype: DType.Float32), new Tanh());
        var sample = Input(DType.Float32, 1, 4, 3);
        var path = Path.Combine(Path.GetTempPath(), $"onnx-{Guid.NewGuid():N}.onnx");
        try
        {
            model.ExportOnnx(path, sample);
            Tensor expected;
            using (Tensor.NoGrad())
            {
                expected = model.Forward(sample);
            }

            OnnxRuntimeCheck.AssertClose(expected, OnnxRuntimeCheck.Run(File.ReadAllBytes(path), sample));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ModulesInTrainingModeAreRefused()
    {
        var model = new Sequential(new Linear(3, 4, seed: 1), new BatchNorm1d(4));
        var e = Assert.Throws<InvalidOperationException>(() => model.ExportOnnx(Stream.Null, Tensor.Ones(2, 3)));
        Assert.Equal("ExportOnnx: module '1' (BatchNorm1d) is in training mode; ONNX export writes evaluation semantics only. Call model.Eval() before exporting.", e.Message);
        var dropout = new Sequential(new Dropout(0.1, seed: 1));
        Assert.Contains("module '0' (Dropout) is in training mode", Assert.Throws<InvalidOperationException>(() => dropout.ExportOnnx(Stream.Null, Tensor.Ones(2, 3))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AModuleWithoutMappingIsNamed()
    {
        var model = new Sequential(new Linear(3, 4, seed: 1), new Sequential(new ReLU(), new Custom()));
        var e = Assert.Throws<NotSupportedException>(() => model.ExportOnnx(Stream.Null, Tensor.Ones(2, 3)));
        Assert.StartsWith("ExportOnnx: module '1.1' (Custom) has no ONNX mapping; exportable modules are Sequential, Linear,", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        var model = new Linear(3, 4, seed: 1);
        Assert.Throws<ArgumentNullException>(() => model.ExportOnnx((Stream)null!, Tensor.Ones(2, 3)));
        Assert.Throws<ArgumentNullException>(() => model.ExportOnnx(Stream.Null, null!));
        var e = Assert.Throws<ArgumentException>(() => model.ExportOnnx(Stream.Null, Tensor.Scalar(1.0)));
        Assert.Equal("ExportOnnx: the sample input must have a batch dim 0, got a rank-0 tensor. (Parameter 'sampleInput')", e.Message);
    }

    private sealed class Custom : Module
    {
        public override Tensor Forward(Tensor input) => input;
    }

    private static Module Trained(Module norm, Tensor batch)
    {
        norm.Train();
        norm.Forward(batch);
        norm.Forward(batch * 2.0 + 1.0);
        foreach (var (_, p) in norm.NamedParameters())
        {
            using (Tensor.NoGrad())
            {
                p.CopyFrom(Tensor.RandN(p.Shape, 5, p.DType));
            }
        }

        return norm.Eval();
    }

    private static LayerNorm Affine(LayerNorm norm)
    {
        foreach (var (_, p) in norm.NamedParameters())
        {
            using (Tensor.NoGrad())
            {
                p.CopyFrom(Tensor.RandN(p.Shape, 7, p.DType));
            }
        }

        return norm;
    }
}
