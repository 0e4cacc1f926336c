using System.Reflection;
using static Autograd.Onnx.OnnxGraph;

namespace Autograd.Onnx;

/// <summary>Exports functions of tensors, traced on the tape, to ONNX.</summary>
public static class OnnxExport
{
    /// <summary>
    /// Runs <paramref name="f"/> on <paramref name="sampleInputs"/> while observing the tape and writes the recorded
    /// operations as an ONNX model (opset 17) to the file <paramref name="path"/>: graph inputs <c>input0</c>,
    /// <c>input1</c>, … with the samples' shapes and dtypes, one output <c>output</c>, every operator mapped to its ONNX
    /// counterpart (Add, MatMul, ReduceSum, Softmax, Conv, …) and every other tensor the function reads (weights,
    /// numbers) written as an initializer. Shapes are those of the samples (no dynamic dims).
    /// </summary>
    /// <remarks>
    /// Only recorded operations follow the inputs. To catch a tensor computed from the inputs off the tape (a comparison
    /// mask, anything under NoGrad or after Detach), which the model would hold with its traced values, the function is
    /// traced a second time on random normal float inputs (index inputs unchanged): every tensor a recorded operator reads
    /// that no recorded operator produced must be the same in both traces, and so must the sequence of operators. A
    /// function that throws on those random inputs skips this check.
    /// </remarks>
    /// <param name="path">The file to write (replaced if it exists).</param>
    /// <param name="f">The function; it is called twice (see remarks), with grad mode on and with float inputs that require grad.</param>
    /// <param name="sampleInputs">The inputs to trace with (float64, float32 or int64 index tensors).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">No sample input is given.</exception>
    /// <exception cref="NotSupportedException">
    /// An operator on the tape has no ONNX counterpart (the message names it), e.g. a backward operator recorded with
    /// create-graph, or attention with an explicit mask; or an input reaches the output through no recorded operator; or a
    /// tensor computed from the inputs off the tape, or control flow on the inputs' values, is found.
    /// </exception>
    public static void ExportFunction(string path, Func<Tensor[], Tensor> f, params Tensor[] sampleInputs)
    {
        ArgumentNullException.ThrowIfNull(path);
        var graph = Trace(f, sampleInputs);
        using var file = File.Create(path);
        graph.Write(file, "function");
    }

    /// <summary>Writes <paramref name="f"/> traced on <paramref name="sampleInputs"/> as an ONNX model to <paramref name="stream"/> (see <see cref="ExportFunction(string, Func{Tensor[], Tensor}, Tensor[])"/>).</summary>
    /// <param name="stream">The stream to write to; it is left open.</param>
    /// <param name="f">The function; it is called twice (see remarks), with grad mode on and with float inputs that require grad.</param>
    /// <param name="sampleInputs">The inputs to trace with (float64, float32 or int64 index tensors).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">No sample input is given.</exception>
    /// <exception cref="NotSupportedException">
    /// An operator on the tape has no ONNX counterpart (the message names it), an input reaches the output through no
    /// recorded operator, or a tensor computed from the inputs off the tape, or control flow on the inputs' values, is found.
    /// </exception>
    public static void ExportFunction(Stream stream, Func<Tensor[], Tensor> f, params Tensor[] sampleInputs)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Trace(f, sampleInputs).Write(stream, "function");
    }

    private static OnnxGraph Trace(Func<Tensor[], Tensor> f, Tensor[] sampleInputs)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(sampleInputs);
        if (sampleInputs.Length == 0)
        {
            throw new ArgumentException("ExportFunction: at least one sample input is needed.", nameof(sampleInputs));
        }

        for (var i = 0; i < sampleInputs.Length; i++)
        {
            if (sampleInputs[i] is null)
            {
                throw new ArgumentNullException(nameof(sampleInputs), $"ExportFunction: sample input {i} is null.");
            }
        }

        var (inputs, recorder, output) = Record(f, sampleInputs);
        CheckNothingFrozen(f, sampleInputs, recorder, inputs);

        var graph = new OnnxGraph();
        var names = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < inputs.Length; i++)
        {
            names[inputs[i]] = graph.Input($"input{i}", inputs[i].DType, inputs[i].Shape, dynamicBatch: false);
        }

        var emitter = new OpEmitter(graph, names);
        foreach (var op in recorder.Needed(output))
        {
            names[op.Output!] = emitter.Emit(op.Node, op.Inputs, op.Output!);
        }

        graph.Output(emitter.Value(output), "output", output.DType, output.Shape, dynamicBatch: false);

        // An input that no recorded operation read was used outside the tape (an index tensor reshaped, a float input
        // under NoGrad): its values were frozen into constants, and the model would silently ignore new inputs.
        for (var i = 0; i < inputs.Length; i++)
        {
            if (!graph.IsRead(names[inputs[i]]))
            {
                throw new NotSupportedException(
                    $"ExportFunction: input {i} ({inputs[i].Shape} {inputs[i].DType.Name()}) reaches the output through no recorded operator; " +
                    "an int64 input can only be the index of Embedding, Gather or IndexSelect, and a float input must not pass through NoGrad or Detach.");
            }
        }

        return graph;
    }

    // Runs f on fresh leaves over the samples' data, so that every operation on a float input is recorded.
    private static (Tensor[] Inputs, Recorder Recorder, Tensor Output) Record(Func<Tensor[], Tensor> f, Tensor[] samples)
    {
        var inputs = samples.Select(t => t.DType.IsFloatingPoint() ? t.Detach().WithRequiresGrad() : t).ToArray();
        var recorder = new Recorder();
        using (Tensor.EnableGrad())
        using (TapeObserver.Attach(recorder))
        {
            var output = f(inputs) ?? throw new ArgumentException("ExportFunction: the function returned null.", nameof(f));
            return (inputs, recorder, output);
        }
    }

    // Traces f again on other float inputs (random normal values, the same index inputs): a tensor that a recorded
    // operator reads and that no recorded operator produced must come out the same, else it was computed from the
    // inputs off the tape (a comparison mask, a value under NoGrad) and the model would hold it frozen. A function
    // that fails on the other inputs is not checked.
    private static void CheckNothingFrozen(Func<Tensor[], Tensor> f, Tensor[] samples, Recorder first, Tensor[] firstInputs)
    {
        var others = samples.Select((t, i) => t.DType.IsFloatingPoint() ? Tensor.RandN(t.Shape, 7919 + i, t.DType) : t).ToArray();
        Recorder second;
        Tensor[] secondInputs;
        try
        {
            (secondInputs, second, _) = Record(f, others);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or ArithmeticException or NotSupportedException)
        {
            return;
        }

        if (first.Ops.Count != second.Ops.Count || first.Ops.Zip(second.Ops).Any(p => p.First.Node.Name != p.Second.Node.Name))
        {
            throw new NotSupportedException(
                "ExportFunction: the function records other operators for other input values (control flow on the inputs' values); an ONNX graph is one fixed sequence of operators.");
        }

        var onTape1 = first.Produced(firstInputs);
        var onTape2 = second.Produced(secondInputs);
        foreach (var (a, b) in first.Ops.Zip(second.Ops))
        {
            var readA = a.Inputs.Concat(Recorder.Reads(a.Node)).ToArray();
            var readB = b.Inputs.Concat(Recorder.Reads(b.Node)).ToArray();
            for (var j = 0; j < readA.Length && j < readB.Length; j++)
            {
                if (!onTape1.Contains(readA[j]) && !onTape2.Contains(readB[j]) && !SameValues(readA[j], readB[j]))
                {
                    throw new NotSupportedException(
                        $"ExportFunction: operator '{a.Node.Name}' reads a tensor ({readA[j].Shape} {readA[j].DType.Name()}) computed from the inputs off the tape " +
                        "(a comparison mask, or a value under NoGrad or Detach); the model would hold its traced values. Compute it with recorded operators or outside the function.");
                }
            }
        }
    }

    private static bool SameValues(Tensor a, Tensor b)
        => ReferenceEquals(a, b) || (a.Shape == b.Shape && a.DType == b.DType && a.DType switch
        {
            DType.Float32 => a.AsSpan<float>().SequenceEqual(b.AsSpan<float>()),
            DType.Float64 => a.AsSpan<double>().SequenceEqual(b.AsSpan<double>()),
            _ => a.AsSpan<long>().SequenceEqual(b.AsSpan<long>()),
        });

    private sealed record Op(Node Node, Tensor[] Inputs)
    {
        public Tensor? Output { get; set; }
    }

    /// <summary>Notes every operation recorded while it is attached.</summary>
    private sealed class Recorder : TapeObserver
    {
        private readonly List<Op> _ops = [];
        private readonly Dictionary<Node, Op> _byNode = new(ReferenceEqualityComparer.Instance);

        /// <summary>Every operation recorded, in order.</summary>
        public List<Op> Ops => _ops;

        /// <summary>The tensors that recorded operations produced, and the graph inputs.</summary>
        public HashSet<Tensor> Produced(Tensor[] inputs)
        {
            var set = new HashSet<Tensor>(inputs, ReferenceEqualityComparer.Instance);
            foreach (var op in _ops)
            {
                if (op.Output is { } t)
                {
                    set.Add(t);
                }
            }

            return set;
        }

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
        {
            var op = new Op(node, inputs.ToArray());
            _ops.Add(op);
            _byNode[node] = op;
        }

        protected override void OnRecorded(Node node, Tensor output)
        {
            if (_byNode.TryGetValue(node, out var op))
            {
                op.Output = output;
            }
        }

        /// <summary>The recorded operations that <paramref name="output"/> depends on, in recording order.</summary>
        public List<Op> Needed(Tensor output)
        {
            var producers = new Dictionary<Tensor, Op>(ReferenceEqualityComparer.Instance);
            foreach (var op in _ops)
            {
                if (op.Output is { } t)
                {
                    producers[t] = op;
                }
            }

            var needed = new HashSet<Op>(ReferenceEqualityComparer.Instance);
            var stack = new Stack<Tensor>([output]);
            while (stack.Count > 0)
            {
                if (producers.TryGetValue(stack.Pop(), out var op) && needed.Add(op))
                {
                    foreach (var input in op.Inputs.Concat(Reads(op.Node)))
                    {
                        stack.Push(input);
                    }
                }
            }

            return [.. _ops.Where(needed.Contains)];
        }

        // Tensors an operator reads that are not its differentiable inputs: the index of a gather, a where's condition.
        public static IEnumerable<Tensor> Reads(Node node)
            => node.Name is "Embedding" or "Gather" or "IndexSelect" or "Where" && node.SavedTensor(0) is { } t ? [t] : [];
    }

    /// <summary>Maps one recorded operation to ONNX nodes.</summary>
    private sealed class OpEmitter(OnnxGraph g, Dictionary<Tensor, string> names)
    {
        /// <summary>The value name of <paramref name="t"/>: a graph input or an earlier result, else a new initializer.</summary>
        public string Value(Tensor t)
        {
            if (!names.TryGetValue(t, out var name))
            {
                name = t.Rank == 0 && t.DType.IsFloatingPoint() ? g.Scalar(t.ToArray()[0], t.DType) : g.Initializer("const", t.Detach());
                names[t] = name;
            }

            return name;
        }

        public string Emit(Node node, Tensor[] inputs, Tensor output)
        {
            var x = inputs.Select(Value).ToArray();
            var rank = output.Rank;
            return node.Name switch
            {
                "Add" or "Sub" or "Mul" or "Div" => g.Node(node.Name, x),
                "Neg" or "Exp" or "Log" or "Sqrt" or "Abs" or "Tanh" or "Sigmoid" or "Relu" or "Erf" => g.Node(node.Name, x),
                "Maximum" => g.Node("Max", x),
                "Minimum" => g.Node("Min", x),
                "Pow" => g.Node("Pow", [x[0], g.Scalar(Field<double>(node, "_p"), output.DType)]),
                "To" => g.Node("Cast", x, Int("to", ElementType(output.DType))),
                "MatMul" => MatMul(node, inputs, x),
                "Sum" => Reduce("ReduceSum", inputs[0], x[0], Field<Shape>(node, "keepShape"), output, axesAsInput: true),
                "Max" or "Min" => Reduce(node.Name == "Max" ? "ReduceMax" : "ReduceMin", inputs[0], x[0], Saved(node, 1).Shape, output, axesAsInput: false),
                "Softmax" or "LogSoftmax" => g.Node(node.Name, x, Int("axis", Field<int>(node, "_dim"))),
                "LogSumExp" => g.Node("ReduceLogSumExp", x, Ints("axes", [Field<int>(node, "_dim")]), Int("keepdims", Field<bool>(node, "_keptDim") ? 1 : 0)),
                "Permute" or "Transpose" when node.GetType().Name == "PermuteNode" => g.Node("Transpose", x, Ints("perm", Field<int[]>(node, "perm").Select(p => (long)p))),
                "Reshape" or "View" or "Flatten" or "Squeeze" or "Unsqueeze" or "Transpose" => g.Node("Reshape", [x[0], Shape(output)]),
                "Expand" => g.Node("Expand", [x[0], Shape(output)]),
                "Narrow" or "Slice" => Slice(node, x[0], output),
                "Concat" or "Stack" => Concat(node, x, rank),
                "IndexSelect" => g.Node("Gather", [x[0], Value(Saved(node, 0))], Int("axis", Field<int>(node, "_dim"))),
                "Gather" => g.Node("GatherElements", [x[0], Value(Saved(node, 0))], Int("axis", Field<int>(node, "_dim"))),
                "Embedding" => g.Node("Gather", [x[0], Value(Saved(node, 0))], Int("axis", 0)),
                "Where" => g.Node("Where", [Bool(Value(Saved(node, 0))), x[0], x[1]]),
                "Clamp" => Clamp(node, x[0], output.DType),
                "LayerNorm" => LayerNorm(node, inputs, x),
                "Conv2d" => Conv(node, x),
                "MaxPool2d" => Pool("MaxPool", node, x[0]),
                "AvgPool2d" => Pool("AveragePool", node, x[0], Int("count_include_pad", Field<bool>(node, "_countIncludePad") ? 1 : 0)),
                "ScaledDotProductAttention" => Attention(node, inputs, x, output.DType),
                _ => throw new NotSupportedException($"ExportFunction: operator '{node.Name}' has no ONNX counterpart."),
            };
        }

        private string Shape(Tensor t) => g.Ints("shape", [.. t.Shape.ToArray().Select(d => (long)d)]);

        private string Bool(string value) => g.Node("Cast", [value], Int("to", (int)global::Onnx.TensorProto.Types.DataType.Bool));

        private string SwapLast(string value, int rank)
        {
            var perm = Enumerable.Range(0, rank).Select(d => (long)d).ToArray();
            (perm[rank - 2], perm[rank - 1]) = (perm[rank - 1], perm[rank - 2]);
            return g.Node("Transpose", [value], Ints("perm", perm));
        }

        private string MatMul(Node node, Tensor[] inputs, string[] x)
        {
            var a = Field<bool>(node, "_transA") ? SwapLast(x[0], inputs[0].Rank) : x[0];
            var b = Field<bool>(node, "_transB") ? SwapLast(x[1], inputs[1].Rank) : x[1];
            return g.Node("MatMul", [a, b]);
        }

        // Reduces with the dims kept (the axes are the dims that keepShape shrank to 1), then reshapes to the result.
        private string Reduce(string op, Tensor input, string x, Shape keepShape, Tensor output, bool axesAsInput)
        {
            var axes = Enumerable.Range(0, input.Rank).Where(d => keepShape[d] == 1 && input.Shape[d] != 1).Select(d => (long)d).ToArray();
            var y = axes.Length == 0 ? x
                : axesAsInput ? g.Node(op, [x, g.Ints("axes", axes)], Int("keepdims", 1))
                : g.Node(op, [x], Ints("axes", axes), Int("keepdims", 1));
            return keepShape == output.Shape && axes.Length > 0 ? y : g.Node("Reshape", [y, Shape(output)]);
        }

        private string Slice(Node node, string x, Tensor output)
        {
            int dim = Field<int>(node, "dim"), start = Field<int>(node, "start"), step = Field<int>(node, "step");
            var length = output.Shape[dim];
            long end = length == 0 ? start : start + ((long)(length - 1) * step) + 1;
            return g.Node("Slice", [x, g.Ints("starts", start), g.Ints("ends", end), g.Ints("axes", dim), g.Ints("steps", step)]);
        }

        private string Concat(Node node, string[] x, int rank)
        {
            var dim = Field<int>(node, "dim");
            dim = dim < 0 ? dim + rank : dim;
            if (Field<bool>(node, "stacked"))
            {
                var axes = g.Ints("axes", dim);
                x = [.. x.Select(v => g.Node("Unsqueeze", [v, axes]))];
            }

            return g.Node("Concat", x, Int("axis", dim));
        }

        private string Clamp(Node node, string x, DType dtype)
        {
            double? min = Field<double?>(node, "_min"), max = Field<double?>(node, "_max");
            var inputs = new List<string> { x, min is { } lo ? g.Scalar(lo, dtype) : string.Empty };
            if (max is { } hi)
            {
                inputs.Add(g.Scalar(hi, dtype));
            }

            return g.Node("Clip", [.. inputs]);
        }

        private string LayerNorm(Node node, Tensor[] inputs, string[] x)
        {
            var shape = Field<int[]>(node, "_normalizedShape");
            int wi = Field<int>(node, "_weightInput"), bi = Field<int>(node, "_biasInput");
            var scale = wi >= 0 ? x[wi] : Value(Tensor.Ones(new Shape(shape), inputs[0].DType));
            string[] args = bi >= 0 ? [x[0], scale, x[bi]] : [x[0], scale];
            return g.Node("LayerNormalization", args, Int("axis", -shape.Length), Float("epsilon", Field<double>(node, "_eps")));
        }

        private string Conv(Node node, string[] x)
        {
            var a = Field<object>(node, "_args");
            int P(string name) => Property<int>(a, name);
            return g.Node(
                "Conv", x,
                Ints("strides", [P("SH"), P("SW")]),
                Ints("pads", [P("PH"), P("PW"), P("PH"), P("PW")]),
                Ints("dilations", [P("DH"), P("DW")]),
                Int("group", P("Groups")));
        }

        private string Pool(string op, Node node, string x, params global::Onnx.AttributeProto[] more)
        {
            var p = Field<object>(node, "_p");
            int P(string name) => Property<int>(p, name);
            return g.Node(
                op, [x],
                [Ints("kernel_shape", [P("KernelH"), P("KernelW")]), Ints("strides", [P("StrideH"), P("StrideW")]), Ints("pads", [P("PadH"), P("PadW"), P("PadH"), P("PadW")]), .. more]);
        }

        // softmax(q · kᵀ · scale, causal when the call was) · v; a call with an explicit mask is refused.
        private string Attention(Node node, Tensor[] inputs, string[] x, DType dtype)
        {
            var layout = Field<object?>(node, "_layout");
            if (layout is null || Field<object?>(layout, "_keep") is not null || Field<object?>(node, "_keep") is not null)
            {
                throw new NotSupportedException(
                    "ExportFunction: operator 'ScaledDotProductAttention' has no ONNX counterpart here when called with an explicit mask or with broadcast q, k, v; compose it from MatMul, Where and Softmax instead.");
            }

            var q = inputs[0];
            var scores = g.Node("Mul", [g.Node("MatMul", [x[0], SwapLast(x[1], inputs[1].Rank)]), g.Scalar(Field<double>(node, "_scale"), dtype)]);
            if (Property<bool>(layout, "Causal"))
            {
                int lq = q.Shape[-2], lk = inputs[1].Shape[-2];
                var mask = new double[lq * lk];
                for (var i = 0; i < lq; i++)
                {
                    for (var j = i + 1; j < lk; j++)
                    {
                        mask[(i * lk) + j] = double.NegativeInfinity;
                    }
                }

                scores = g.Node("Add", [scores, g.Initializer("causal_mask", Tensor.FromArray(mask, lq, lk).To(dtype))]);
            }

            return g.Node("MatMul", [g.Node("Softmax", [scores], Int("axis", -1)), x[2]]);
        }

        private static Tensor Saved(Node node, int slot)
            => node.SavedTensor(slot) ?? throw new NotSupportedException($"ExportFunction: operator '{node.Name}' released its saved tensor {slot}; export before running backward.");
    }

    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

    // The parameters of an operator (its dim, permutation, stride, …) are fields of its node, which the operators keep
    // private; they are read by name (a primary-constructor parameter captured by the node is the field <name>P).
    private static T Field<T>(object owner, string name)
    {
        for (var type = owner.GetType(); type is not null; type = type.BaseType)
        {
            if ((type.GetField(name, Instance) ?? type.GetField($"<{name}>P", Instance)) is { } field)
            {
                return (T)field.GetValue(owner)!;
            }
        }

        throw new NotSupportedException($"ExportFunction: {Describe(owner)} has no field '{name}' that the exporter reads; the operator changed and its ONNX mapping must follow.");
    }

    private static T Property<T>(object owner, string name)
        => owner.GetType().GetProperty(name, Instance) is { } property
            ? (T)property.GetValue(owner)!
            : throw new NotSupportedException($"ExportFunction: {Describe(owner)} has no property '{name}' that the exporter reads; the operator changed and its ONNX mapping must follow.");

    private static string Describe(object owner) => owner is Node node ? $"operator '{node.Name}' ({node.GetType().Name})" : owner.GetType().Name;
}
