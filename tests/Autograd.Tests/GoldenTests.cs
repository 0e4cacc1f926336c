using System.Globalization;
using System.Text.Json;

using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>
/// PyTorch parity: every case in tests/golden/*.json (written by tests/golden/generate.py with PyTorch 1.13) is
/// evaluated with Autograd and compared: the output, the gradient of every input, and the gradient of ⟨grad, v⟩.
/// </summary>
public class GoldenTests
{
    private const double Rtol64 = 1e-10, Atol64 = 1e-12, Rtol32 = 1e-5, Atol32 = 1e-6;

    /// <summary>Golden ops that are not operators of the Ops assembly: a composite and the losses of Autograd.Nn.</summary>
    private static readonly HashSet<string> Composites =
        ["MlpNll", "CrossEntropy", "NllLoss", "MseLoss", "BinaryCrossEntropyWithLogits", "Gelu"];

    private static readonly Lazy<Dictionary<string, JsonElement>> Cases = new(Load);

    public static TheoryData<string> CaseNames()
    {
        var data = new TheoryData<string>();
        foreach (var name in Cases.Value.Keys.Order(StringComparer.Ordinal))
        {
            data.Add(name);
        }

        return data;
    }

    [Fact]
    public void ThereAreAtLeast300Cases() => Assert.True(Cases.Value.Count >= 300, $"only {Cases.Value.Count} golden cases");

    [Fact]
    public void EveryPublicDifferentiableOpHasAGoldenCase()
    {
        var covered = Cases.Value.Values.Select(c => c.GetProperty("op").GetString()!).ToHashSet();
        var missing = Operators.PublicDifferentiable.Where(op => !covered.Contains(op)).ToList();
        Assert.True(missing.Count == 0, "public differentiable ops without a golden case (add them to tests/golden/generate.py): " + string.Join(", ", missing));
        var unknown = covered.Where(op => !Operators.Public.Contains(op) && !Composites.Contains(op)).ToList();
        Assert.True(unknown.Count == 0, "golden ops that name no public operator: " + string.Join(", ", unknown));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void MatchesPyTorch(string name)
    {
        var c = Cases.Value[name];
        var op = c.GetProperty("op").GetString()!;
        var args = c.GetProperty("args");
        var inputs = c.GetProperty("inputs").EnumerateArray().Select(ReadTensor).ToArray();
        foreach (var x in inputs)
        {
            x.RequiresGrad = x.DType.IsFloatingPoint();
        }

        var second = c.TryGetProperty("second", out var sec);
        var y = Evaluate(op, args, inputs);
        Compare(name, "output", c.GetProperty("output"), y);
        if (!c.TryGetProperty("gradOutput", out var gOut))
        {
            return;
        }

        var diff = inputs.Where(x => x.RequiresGrad).ToArray();
        var grads = Autodiff.Grad([y], diff, [ReadTensor(gOut)], createGraph: second, allowUnused: true);
        var expectedGrads = c.GetProperty("grads").EnumerateArray().Where(e => e.ValueKind != JsonValueKind.Null).ToArray();
        for (var i = 0; i < diff.Length; i++)
        {
            Compare(name, $"gradient of input {i}", expectedGrads[i], grads[i]);
        }

        if (!second)
        {
            return;
        }

        var vs = sec.GetProperty("v").EnumerateArray().Where(e => e.ValueKind != JsonValueKind.Null).Select(ReadTensor).ToArray();
        var expectedSecond = sec.GetProperty("grads").EnumerateArray().Where(e => e.ValueKind != JsonValueKind.Null).ToArray();
        Tensor? s = null;
        for (var i = 0; i < diff.Length; i++)
        {
            if (grads[i].RequiresGrad)
            {
                var term = (grads[i] * vs[i]).Sum();
                s = s is null ? term : s + term;
            }
        }

        var hs = s is null ? diff.Select(Tensor.ZerosLike).ToArray() : Autodiff.Grad([s], diff, allowUnused: true);
        for (var i = 0; i < diff.Length; i++)
        {
            Compare(name, $"second-order gradient of input {i}", expectedSecond[i], hs[i]);
        }
    }

    /// <summary>The expression language shared with generate.py: the Autograd method name plus its arguments.</summary>
    /// <summary>
    /// An in-place operator on x · 1.5 (a non-leaf): with a tensor operand (and alpha) or with the number "scalar"; fill,
    /// copy, addcmul, addcdiv and sqrt as generate.py's inplace family writes them, in the middle of a graph.
    /// </summary>
    private static Tensor InPlaceCase(string op, JsonElement args, Tensor[] x)
    {
        var s = x[0] * 1.5;
        switch (op)
        {
            case "FillInPlace": return s.FillInPlace(args.GetProperty("value").GetDouble()).AddInPlace(x[0].Exp()).Tanh();
            case "CopyFrom": return s.CopyFrom(x[1]).MulInPlace(x[0]).Exp();
            case "AddcmulInPlace": return s.AddcmulInPlace(x[1], x[2], args.GetProperty("value").GetDouble());
            case "AddcdivInPlace": return s.AddcdivInPlace(x[1], x[2], args.GetProperty("value").GetDouble());
            case "SqrtInPlace": return s.SqrtInPlace() * x[0];
        }

        if (x.Length == 1)
        {
            var c = args.GetProperty("scalar").GetDouble();
            return op switch
            {
                "AddInPlace" => s.AddInPlace(c),
                "SubInPlace" => s.SubInPlace(c),
                "MulInPlace" => s.MulInPlace(c),
                "DivInPlace" => s.DivInPlace(c),
                _ => s.ZeroInPlace().AddInPlace(x[0].Exp()),
            };
        }

        return op switch
        {
            "AddInPlace" => args.GetProperty("alpha").ValueKind == JsonValueKind.Null || args.GetProperty("alpha").GetDouble() == 1.0
                ? s.AddInPlace(x[1])
                : s.AddInPlace(x[1], args.GetProperty("alpha").GetDouble()),
            "SubInPlace" => s.SubInPlace(x[1]),
            "MulInPlace" => s.MulInPlace(x[1]),
            _ => s.DivInPlace(x[1]),
        };
    }

    private static Tensor Evaluate(string op, JsonElement args, Tensor[] x)
    {
        int Int(string key) => args.GetProperty(key).GetInt32();
        bool Bool(string key) => args.GetProperty(key).GetBoolean();
        int[] Ints(string key) => args.GetProperty(key).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[]? Dims() => args.GetProperty("dims").ValueKind == JsonValueKind.Null ? null : Ints("dims");
        double Scalar() => args.GetProperty("scalar").GetDouble();
        bool Left() => args.TryGetProperty("side", out var side) && side.GetString() == "left";
        bool HasScalar() => args.TryGetProperty("scalar", out _);
        double? OptionalDouble(string key) => args.GetProperty(key).ValueKind == JsonValueKind.Null ? null : args.GetProperty(key).GetDouble();
        Reduction Reduction() => Enum.Parse<Reduction>(args.GetProperty("reduction").GetString()!);
        (int, int) Pair(string key) => Ints(key) is [var a, var b] ? (a, b) : throw new InvalidDataException($"golden: '{key}' is not a pair");

        return op switch
        {
            "Add" => x[0].Add(x[1]),
            "AddInPlace" or "SubInPlace" or "MulInPlace" or "DivInPlace" or "ZeroInPlace" or "FillInPlace" or "CopyFrom"
                or "AddcmulInPlace" or "AddcdivInPlace" or "SqrtInPlace" => InPlaceCase(op, args, x),
            "Sub" => x[0].Sub(x[1]),
            "Mul" => x[0].Mul(x[1]),
            "Div" => x[0].Div(x[1]),
            "op_Addition" => !HasScalar() ? x[0] + x[1] : Left() ? Scalar() + x[0] : x[0] + Scalar(),
            "op_Subtraction" => !HasScalar() ? x[0] - x[1] : Left() ? Scalar() - x[0] : x[0] - Scalar(),
            "op_Multiply" => !HasScalar() ? x[0] * x[1] : Left() ? Scalar() * x[0] : x[0] * Scalar(),
            "op_Division" => !HasScalar() ? x[0] / x[1] : Left() ? Scalar() / x[0] : x[0] / Scalar(),
            "op_UnaryNegation" => -x[0],
            "Neg" => x[0].Neg(),
            "Exp" => x[0].Exp(),
            "Log" => x[0].Log(),
            "Pow" => x[0].Pow(args.GetProperty("exponent").GetDouble()),
            "Sqrt" => x[0].Sqrt(),
            "Abs" => x[0].Abs(),
            "Tanh" => x[0].Tanh(),
            "Sigmoid" => x[0].Sigmoid(),
            "Relu" => x[0].Relu(),
            "Erf" => x[0].Erf(),
            "To" => x[0].To(args.GetProperty("dtype").GetString() == "float32" ? DType.Float32 : DType.Float64),
            "Sum" => Dims() is { } d ? x[0].Sum(d, Bool("keepDim")) : x[0].Sum(),
            "Mean" => Dims() is { } d ? x[0].Mean(d, Bool("keepDim")) : x[0].Mean(),
            "Max" => Dims() is { } d ? x[0].Max(d, Bool("keepDim")) : x[0].Max(),
            "Min" => Dims() is { } d ? x[0].Min(d, Bool("keepDim")) : x[0].Min(),
            "SumTo" => x[0].SumTo(new Shape(Ints("shape"))),
            "Reshape" => x[0].Reshape(Ints("shape")),
            "View" => x[0].View(Ints("shape")),
            "Flatten" => x[0].Flatten(Int("startDim"), Int("endDim")),
            "Squeeze" => args.GetProperty("dim").ValueKind == JsonValueKind.Null ? x[0].Squeeze() : x[0].Squeeze(Int("dim")),
            "Unsqueeze" => x[0].Unsqueeze(Int("dim")),
            "Transpose" => x[0].Transpose(Int("dim0"), Int("dim1")),
            "Permute" => x[0].Permute(Ints("dims")),
            "Expand" => x[0].Expand(Ints("shape")),
            "BroadcastTo" => x[0].BroadcastTo(Ints("shape")),
            "get_T" => x[0].T,
            "MatMul" => x[0].MatMul(x[1]),
            "Softmax" => x[0].Softmax(Int("dim")),
            "LogSoftmax" => x[0].LogSoftmax(Int("dim")),
            "LogSumExp" => x[0].LogSumExp(Int("dim"), Bool("keepDim")),
            "SoftmaxComposed" => x[0].SoftmaxComposed(Int("dim")),
            "LogSoftmaxComposed" => x[0].LogSoftmaxComposed(Int("dim")),
            "LogSumExpComposed" => x[0].LogSumExpComposed(Int("dim"), Bool("keepDim")),
            "SoftmaxBackward" => Tensor.SoftmaxBackward(x[0], x[1], Int("dim")),
            "LogSoftmaxBackward" => Tensor.LogSoftmaxBackward(x[0], x[1], Int("dim")),
            "Gather" => x[0].Gather(Int("dim"), x[1]),
            "ScatterAdd" => x[0].ScatterAdd(Int("dim"), x[1], x[2]),
            "IndexSelect" => x[0].IndexSelect(Int("dim"), x[1]),
            "IndexAdd" => x[0].IndexAdd(Int("dim"), x[1], x[2]),
            "Narrow" => x[0].Narrow(Int("dim"), Int("start"), Int("length")),
            "Slice" => x[0].Slice(Int("dim"), Int("start"), Int("end"), Int("step")),
            "Concat" => Tensor.Concat(x, Int("dim")),
            "Stack" => Tensor.Stack(x, Int("dim")),
            "Where" => args.TryGetProperty("scalarB", out var sb) ? Tensor.Where(x[0], x[1], sb.GetDouble()) : Tensor.Where(x[0], x[1], x[2]),
            "Maximum" => x[0].Maximum(x[1]),
            "Minimum" => x[0].Minimum(x[1]),
            "Clamp" => x[0].Clamp(OptionalDouble("min"), OptionalDouble("max")),
            "Conv2d" => Conv2d(args, x),
            "Conv1d" => x[0].Conv1d(x[1], x.Length > 2 ? x[2] : null, Int("stride"), Int("padding"), Int("dilation"), Int("groups")),
            "Embedding" => Tensor.Embedding(x[0], x[1], args.GetProperty("paddingIndex").ValueKind == JsonValueKind.Null ? null : Int("paddingIndex")),
            "ScaledDotProductAttention" => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], x.Length > 3 ? x[3] : null, Bool("causal"), OptionalDouble("scale")),
            "ScaledDotProductAttentionComposed" => Tensor.ScaledDotProductAttentionComposed(x[0], x[1], x[2], x.Length > 3 ? x[3] : null, Bool("causal"), OptionalDouble("scale")),
            "MlpNll" => MlpNll(x, Ints("targets")),
            "CrossEntropy" => Functional.CrossEntropy(x[0], x[1], Reduction(), args.GetProperty("labelSmoothing").GetDouble()),
            "NllLoss" => Functional.NllLoss(x[0], x[1], Reduction()),
            "MseLoss" => Functional.MseLoss(x[0], x[1], Reduction()),
            "BinaryCrossEntropyWithLogits" => Functional.BinaryCrossEntropyWithLogits(x[0], x[1], Reduction()),
            "Gelu" => Functional.Gelu(x[0]),
            "MaxPool2d" => x[0].MaxPool2d(Pair("kernel"), Pair("stride"), Pair("padding")),
            "AvgPool2d" => x[0].AvgPool2d(Pair("kernel"), Pair("stride"), Pair("padding"), Bool("countIncludePad")),
            "AdaptiveAvgPool2d" => x[0].AdaptiveAvgPool2d(Pair("outputSize")),
            "LayerNorm" => x[0].LayerNorm(Ints("normalizedShape"), x.ElementAtOrDefault(1), x.ElementAtOrDefault(2), args.GetProperty("eps").GetDouble()),
            "LayerNormComposed" => x[0].LayerNormComposed(Ints("normalizedShape"), x.ElementAtOrDefault(1), x.ElementAtOrDefault(2), args.GetProperty("eps").GetDouble()),
            "LayerNormBackward" => Tensor.LayerNormBackward(x[0], x[1], Ints("normalizedShape"), args.GetProperty("eps").GetDouble()),
            "BatchNorm" => BatchNorm(args, x),
            _ => throw new InvalidOperationException($"golden op '{op}' is not known to the test; add it to GoldenTests.Evaluate"),
        };
    }

    /// <summary>Conv2d with one number per argument (the int overload) or (H, W) pairs (the tuple overload).</summary>
    private static Tensor Conv2d(JsonElement args, Tensor[] x)
    {
        var bias = x.Length > 2 ? x[2] : null;
        var groups = args.GetProperty("groups").GetInt32();
        var keys = new[] { "stride", "padding", "dilation" };
        if (keys.All(k => args.GetProperty(k).ValueKind == JsonValueKind.Number))
        {
            return x[0].Conv2d(x[1], bias, args.GetProperty("stride").GetInt32(), args.GetProperty("padding").GetInt32(), args.GetProperty("dilation").GetInt32(), groups);
        }

        (int H, int W) Pair(string key)
        {
            var e = args.GetProperty(key);
            return e.ValueKind == JsonValueKind.Number ? (e.GetInt32(), e.GetInt32()) : (e[0].GetInt32(), e[1].GetInt32());
        }

        return x[0].Conv2d(x[1], bias, Pair("stride"), Pair("padding"), Pair("dilation"), groups);
    }

    /// <summary>
    /// <c>BatchNorm</c> with the running statistics given in the arguments; the statistics after the call are compared
    /// with PyTorch's here, the output by the caller.
    /// </summary>
    private static Tensor BatchNorm(JsonElement args, Tensor[] x)
    {
        Tensor? Stat(string key) => args.GetProperty(key).ValueKind == JsonValueKind.Null ? null : ReadTensor(args.GetProperty(key));
        var runningMean = Stat("runningMean");
        var runningVar = Stat("runningVar");
        var y = x[0].BatchNorm(
            runningMean, runningVar, x.ElementAtOrDefault(1), x.ElementAtOrDefault(2),
            args.GetProperty("training").GetBoolean(), args.GetProperty("momentum").GetDouble(), args.GetProperty("eps").GetDouble());
        if (runningMean is not null && runningVar is not null)
        {
            Compare("BatchNorm", "running mean after the call", args.GetProperty("runningMeanAfter"), runningMean);
            Compare("BatchNorm", "running variance after the call", args.GetProperty("runningVarAfter"), runningVar);
        }

        return y;
    }

    /// <summary>tanh(x·W1 + b1)·W2 + b2 → log-softmax → mean negative log-likelihood of the targets.</summary>
    private static Tensor MlpNll(Tensor[] p, int[] targets)
    {
        var logp = ((p[0].MatMul(p[1]) + p[2]).Tanh().MatMul(p[3]) + p[4]).LogSoftmax(1);
        var classes = logp.Shape[1];
        var oneHot = new double[targets.Length * classes];
        for (var i = 0; i < targets.Length; i++)
        {
            oneHot[(i * classes) + targets[i]] = 1;
        }

        var mask = Tensor.FromArray(oneHot, targets.Length, classes).To(logp.DType);
        return -(logp * mask).Sum() / targets.Length;
    }

    private static void Compare(string name, string what, JsonElement expected, Tensor actual)
    {
        var e = ReadTensor(expected);
        Assert.True(e.Shape == actual.Shape, $"{name}: {what} has shape {actual.Shape}, PyTorch gives {e.Shape}");
        Assert.True(e.DType == actual.DType, $"{name}: {what} has dtype {actual.DType.Name()}, PyTorch gives {e.DType.Name()}");
        // Relative to each element, with an absolute floor relative to the tensor's largest magnitude: where an element
        // is the small difference of large terms (g − exp(y)·Σg in a long float32 row), its rounding error is set by
        // the terms, not by the result.
        var ev = e.ToArray();
        var scale = Math.Max(1.0, ev.Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max());
        var (rtol, atol) = ForDType.Pick(e.DType, float64: (Rtol64, Atol64 * scale), float32: (Rtol32, Atol32 * scale));
        var av = actual.ToArray();
        var worst = -1;
        var worstExcess = 0.0;
        for (var i = 0; i < ev.Length; i++)
        {
            if (double.IsNaN(ev[i]) && double.IsNaN(av[i]))
            {
                continue;
            }

            if (ev[i] == av[i])
            {
                continue;
            }

            var err = Math.Abs(ev[i] - av[i]);
            var excess = double.IsNaN(err) ? double.PositiveInfinity : err / (atol + (rtol * Math.Abs(ev[i])));
            if (excess > 1 && excess > worstExcess)
            {
                worst = i;
                worstExcess = excess;
            }
        }

        Assert.True(
            worst < 0,
            worst < 0 ? string.Empty : string.Create(
                CultureInfo.InvariantCulture,
                $"{name}: {what} differs from PyTorch at element {worst}: Autograd {av[worst]:R}, PyTorch {ev[worst]:R} ({worstExcess:G3}× the tolerance |Δ| ≤ {atol:G2} + {rtol:G2}·|PyTorch|, the floor scaled by the largest |value| {scale:G3})"));
    }

    private static Tensor ReadTensor(JsonElement t)
    {
        var shape = t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var values = t.GetProperty("data").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? e.GetString() switch
            {
                "nan" => double.NaN,
                "inf" => double.PositiveInfinity,
                "-inf" => double.NegativeInfinity,
                var s => throw new InvalidDataException($"golden: unknown number '{s}'"),
            }
            : e.GetDouble()).ToArray();
        return t.GetProperty("dtype").GetString() switch
        {
            "float64" => Tensor.FromArray(values, shape),
            "float32" => Tensor.FromArray(values.Select(v => (float)v).ToArray(), shape),
            "int64" => Tensor.FromArray(values.Select(v => (long)v).ToArray(), shape),
            var d => throw new InvalidDataException($"golden: unknown dtype '{d}'"),
        };
    }

    private static Dictionary<string, JsonElement> Load()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "golden");
        var cases = new Dictionary<string, JsonElement>();
        foreach (var file in Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                var clone = c.Clone();
                cases.Add(clone.GetProperty("name").GetString()!, clone);
            }
        }

        return cases;
    }
}
