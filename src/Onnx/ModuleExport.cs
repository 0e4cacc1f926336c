using Autograd.Nn;
using static Autograd.Onnx.OnnxGraph;

namespace Autograd.Onnx;

/// <summary>Exports networks of the library's modules to ONNX.</summary>
public static class ModuleExport
{
    extension(Module model)
    {
        /// <summary>
        /// Writes <paramref name="model"/> as an ONNX model (opset 17) to the file <paramref name="path"/>. Each module maps to
        /// its ONNX operator (Linear to Gemm or MatMul, Conv2d to Conv, LayerNorm to LayerNormalization, …; GELU and the
        /// attention layers to a few primitive nodes); parameters and buffers are initializers named as in
        /// <see cref="Module.NamedState"/>. Dim 0 of the input and the output is the symbolic dim <c>batch</c>, so the file
        /// runs any batch size; the other dims are those of <paramref name="sampleInput"/>.
        /// </summary>
        /// <param name="path">The file to write (replaced if it exists).</param>
        /// <param name="sampleInput">An input the model accepts; it is run through the model once to learn the shapes.</param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="NotSupportedException">A module has no ONNX mapping (the message names it and its place).</exception>
        /// <exception cref="InvalidOperationException">A Dropout with p &gt; 0 or a BatchNorm is in training mode: call <see cref="Module.Eval"/> first.</exception>
        public void ExportOnnx(string path, Tensor sampleInput)
        {
            ArgumentNullException.ThrowIfNull(path);
            var graph = Build(model, sampleInput);
            using var file = File.Create(path);
            graph.Write(file, model.GetType().Name);
        }

        /// <summary>Writes <paramref name="model"/> as an ONNX model to <paramref name="stream"/> (see <see cref="ExportOnnx(Module, string, Tensor)"/>).</summary>
        /// <param name="stream">The stream to write to; it is left open.</param>
        /// <param name="sampleInput">An input the model accepts; it is run through the model once to learn the shapes.</param>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="NotSupportedException">A module has no ONNX mapping (the message names it and its place).</exception>
        /// <exception cref="InvalidOperationException">A Dropout with p &gt; 0 or a BatchNorm is in training mode: call <see cref="Module.Eval"/> first.</exception>
        public void ExportOnnx(Stream stream, Tensor sampleInput)
        {
            ArgumentNullException.ThrowIfNull(stream);
            Build(model, sampleInput).Write(stream, model.GetType().Name);
        }
    }

    private static OnnxGraph Build(Module model, Tensor sampleInput)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sampleInput);
        if (sampleInput.Rank == 0)
        {
            throw new ArgumentException("ExportOnnx: the sample input must have a batch dim 0, got a rank-0 tensor.", nameof(sampleInput));
        }

        CheckMode(model, string.Empty);
        var graph = new OnnxGraph();
        var input = graph.Input("input", sampleInput.DType, sampleInput.Shape, dynamicBatch: true);
        using (Tensor.NoGrad())
        {
            var (output, value) = new ModuleEmitter(graph).Emit(model, string.Empty, input, sampleInput);
            graph.Output(output, "output", value.DType, value.Shape, dynamicBatch: value.Rank > 0);
        }

        return graph;
    }

    private static void CheckMode(Module module, string path)
    {
        if (module.IsTraining && (module is BatchNorm || module is Dropout { P: > 0 }))
        {
            throw new InvalidOperationException(
                $"ExportOnnx: {Describe(module, path)} is in training mode; ONNX export writes evaluation semantics only. Call model.Eval() before exporting.");
        }

        foreach (var (name, child) in module.NamedChildren())
        {
            CheckMode(child, Join(path, name));
        }
    }

    internal static string Describe(Module module, string path)
        => path.Length == 0 ? $"the model ({module.GetType().Name})" : $"module '{path}' ({module.GetType().Name})";

    internal static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Emits the nodes of one module at a time, running it on the sample to follow the shapes.</summary>
    private sealed class ModuleEmitter(OnnxGraph g)
    {
        public (string Output, Tensor Value) Emit(Module module, string path, string x, Tensor value)
        {
            return module switch
            {
                Sequential s => EmitSequential(s, path, x, value),
                Linear l => EmitLinear(l, path, x, value),
                ReLU => (g.Node("Relu", [x]), module.Forward(value)),
                Tanh => (g.Node("Tanh", [x]), module.Forward(value)),
                Sigmoid => (g.Node("Sigmoid", [x]), module.Forward(value)),
                GELU => (Gelu(x, value.DType), module.Forward(value)),
                Dropout => (x, module.Forward(value)),
                Softmax sm => (g.Node("Softmax", [x], Int("axis", sm.Dim)), module.Forward(value)),
                LogSoftmax ls => (g.Node("LogSoftmax", [x], Int("axis", ls.Dim)), module.Forward(value)),
                AdaptiveAvgPool2d ap when ap.OutputSize == 1 => (g.Node("GlobalAveragePool", [x]), module.Forward(value)),
                Flatten f => (EmitFlatten(f, x, value), module.Forward(value)),
                Conv2d c => (EmitConv(c, path, x), module.Forward(value)),
                MaxPool2d p => (g.Node("MaxPool", [x], Ints("kernel_shape", [p.KernelSize, p.KernelSize]), Ints("strides", [p.Stride, p.Stride]), Ints("pads", [p.Padding, p.Padding, p.Padding, p.Padding])), module.Forward(value)),
                AvgPool2d p => (g.Node("AveragePool", [x], Ints("kernel_shape", [p.KernelSize, p.KernelSize]), Ints("strides", [p.Stride, p.Stride]), Ints("pads", [p.Padding, p.Padding, p.Padding, p.Padding]), Int("count_include_pad", p.CountIncludePad ? 1 : 0)), module.Forward(value)),
                BatchNorm b => (EmitBatchNorm(b, path, x, value.DType), module.Forward(value)),
                LayerNorm n => (EmitLayerNorm(n, path, x, value.DType), module.Forward(value)),
                Embedding e => (g.Node("Gather", [g.Initializer(Join(path, "weight"), e.Weight), x], Int("axis", 0)), module.Forward(value)),
                MultiHeadAttention a => (EmitAttention(a, path, x, value), module.Forward(value)),
                TransformerBlock t => (EmitBlock(t, path, x, value), module.Forward(value)),
                Gpt gpt => (EmitGpt(gpt, path, x, value), module.Forward(value)),
                _ => throw new NotSupportedException(
                    $"ExportOnnx: {Describe(module, path)} has no ONNX mapping; exportable modules are Sequential, Linear, ReLU, Tanh, Sigmoid, GELU, Dropout, Softmax, LogSoftmax, Flatten, Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (to 1×1), BatchNorm1d, BatchNorm2d, LayerNorm, Embedding, MultiHeadAttention, TransformerBlock and Gpt."),
            };
        }

        private (string, Tensor) EmitSequential(Sequential s, string path, string x, Tensor value)
        {
            foreach (var (name, child) in s.NamedChildren())
            {
                (x, value) = Emit(child, Join(path, name), x, value);
            }

            return (x, value);
        }

        private (string, Tensor) EmitLinear(Linear l, string path, string x, Tensor value)
        {
            var w = g.Initializer(Join(path, "weight"), l.Weight);
            var b = l.Bias is null ? null : g.Initializer(Join(path, "bias"), l.Bias);
            var y = value.Rank == 2
                ? g.Node("Gemm", b is null ? [x, w] : [x, w, b], Int("transB", 1))
                : LinearNd(x, w, b);
            return (y, l.Forward(value));
        }

        private string LinearNd(string x, string w, string? b)
        {
            var y = g.Node("MatMul", [x, g.Node("Transpose", [w], Ints("perm", [1, 0]))]);
            return b is null ? y : g.Node("Add", [y, b]);
        }

        private string Linear(Linear l, string path, string x)
            => LinearNd(x, g.Initializer(Join(path, "weight"), l.Weight), l.Bias is null ? null : g.Initializer(Join(path, "bias"), l.Bias));

        // GELU as the library computes it: x · 0.5 · (1 + erf(x · 1/√2)).
        private string Gelu(string x, DType dtype)
        {
            var erf = g.Node("Erf", [g.Node("Mul", [x, g.Scalar(1 / Math.Sqrt(2), dtype)])]);
            return g.Node("Mul", [g.Node("Mul", [x, g.Scalar(0.5, dtype)]), g.Node("Add", [g.Scalar(1, dtype), erf])]);
        }

        private string EmitFlatten(Flatten f, string x, Tensor value)
        {
            var rank = value.Rank;
            int start = f.StartDim < 0 ? f.StartDim + rank : f.StartDim, end = f.EndDim < 0 ? f.EndDim + rank : f.EndDim;
            if (start == 1 && end == rank - 1)
            {
                return g.Node("Flatten", [x], Int("axis", 1));
            }

            // Dims before start are copied (0), the merged run is inferred (-1), the dims after end are static.
            var shape = new List<long>();
            for (var d = 0; d < start; d++)
            {
                shape.Add(0);
            }

            shape.Add(-1);
            for (var d = end + 1; d < rank; d++)
            {
                shape.Add(value.Shape[d]);
            }

            return g.Node("Reshape", [x, g.Ints("shape", [.. shape])]);
        }

        private string EmitConv(Conv2d c, string path, string x)
        {
            var inputs = new List<string> { x, g.Initializer(Join(path, "weight"), c.Weight) };
            if (c.Bias is not null)
            {
                inputs.Add(g.Initializer(Join(path, "bias"), c.Bias));
            }

            return g.Node(
                "Conv", [.. inputs],
                Ints("kernel_shape", [c.KernelSize, c.KernelSize]),
                Ints("strides", [c.Stride, c.Stride]),
                Ints("pads", [c.Padding, c.Padding, c.Padding, c.Padding]),
                Ints("dilations", [c.Dilation, c.Dilation]),
                Int("group", c.Groups));
        }

        private string EmitBatchNorm(BatchNorm b, string path, string x, DType dtype)
        {
            var scale = b.Weight is null ? g.Initializer(Join(path, "weight"), Tensor.Ones(new Shape(b.NumFeatures), dtype)) : g.Initializer(Join(path, "weight"), b.Weight);
            var bias = b.Bias is null ? g.Initializer(Join(path, "bias"), Tensor.Zeros(new Shape(b.NumFeatures), dtype)) : g.Initializer(Join(path, "bias"), b.Bias);
            var mean = g.Initializer(Join(path, "running_mean"), b.RunningMean);
            var variance = g.Initializer(Join(path, "running_var"), b.RunningVar);
            return g.Node("BatchNormalization", [x, scale, bias, mean, variance], Float("epsilon", b.Eps), Int("training_mode", 0));
        }

        private string EmitLayerNorm(LayerNorm n, string path, string x, DType dtype)
        {
            var shape = new Shape([.. n.NormalizedShape]);
            var scale = g.Initializer(Join(path, "weight"), n.Weight ?? Tensor.Ones(shape, dtype));
            var inputs = n.Bias is null ? new[] { x, scale } : [x, scale, g.Initializer(Join(path, "bias"), n.Bias)];
            return g.Node("LayerNormalization", inputs, Int("axis", -n.NormalizedShape.Count), Float("epsilon", n.Eps));
        }

        private string EmitAttention(MultiHeadAttention a, string path, string x, Tensor value)
        {
            var batched = value.Rank == 3;
            var t = value.Shape[-2];
            int d = a.DModel, heads = a.Heads, dh = d / heads;
            var x3 = batched ? x : g.Node("Unsqueeze", [x, g.Ints("axes", 0)]);
            var qkv = Linear(a.Qkv, Join(path, "qkv"), x3);
            var parts = g.Node("Split", [qkv, g.Ints("split", d, d, d)], 3, Int("axis", 2));
            var headShape = g.Ints("shape", 0, t, heads, dh);
            string Head(string part) => g.Node("Transpose", [g.Node("Reshape", [part, headShape])], Ints("perm", [0, 2, 1, 3]));
            var y = Attention(Head(parts[0]), Head(parts[1]), Head(parts[2]), t, dh, a.Causal, value.DType);
            var joined = g.Node("Reshape", [g.Node("Transpose", [y], Ints("perm", [0, 2, 1, 3])), g.Ints("shape", 0, t, d)]);
            var output = Linear(a.Proj, Join(path, "proj"), joined);
            return batched ? output : g.Node("Squeeze", [output, g.Ints("axes", 0)]);
        }

        // softmax(q · kᵀ / √dh (+ the causal mask)) · v over [B, H, T, dh].
        private string Attention(string q, string k, string v, int t, int dh, bool causal, DType dtype)
        {
            var scores = g.Node("Mul", [g.Node("MatMul", [q, g.Node("Transpose", [k], Ints("perm", [0, 1, 3, 2]))]), g.Scalar(1 / Math.Sqrt(dh), dtype)]);
            if (causal)
            {
                var mask = new double[t * t];
                for (var i = 0; i < t; i++)
                {
                    for (var j = i + 1; j < t; j++)
                    {
                        mask[(i * t) + j] = double.NegativeInfinity;
                    }
                }

                scores = g.Node("Add", [scores, g.Initializer("causal_mask", Tensor.FromArray(mask, t, t).To(dtype))]);
            }

            return g.Node("MatMul", [g.Node("Softmax", [scores], Int("axis", -1)), v]);
        }

        // The token embedding plus the first T rows of the position table, the blocks, the final norm and the head.
        private string EmitGpt(Gpt m, string path, string x, Tensor tokens)
        {
            var t = tokens.Shape[1];
            var tok = g.Node("Gather", [g.Initializer(Join(path, "tok.weight"), m.Tok.Weight), x], Int("axis", 0));
            var pos = g.Node("Slice", [g.Initializer(Join(path, "pos.weight"), m.Pos.Weight), g.Ints("starts", 0), g.Ints("ends", t), g.Ints("axes", 0)]);
            var h = g.Node("Add", [tok, pos]);
            Tensor value;
            using (Tensor.NoGrad())
            {
                value = m.Tok.Forward(tokens);
            }

            var (blocks, _) = EmitSequential(m.Blocks, Join(path, "blocks"), h, value);
            var ln = EmitLayerNorm(m.Ln, Join(path, "ln"), blocks, value.DType);
            return Linear(m.Head, Join(path, "head"), ln);
        }

        private string EmitBlock(TransformerBlock b, string path, string x, Tensor value)
        {
            var ln1 = EmitLayerNorm(b.Ln1, Join(path, "ln1"), x, value.DType);
            var h = g.Node("Add", [x, EmitAttention(b.Attention, Join(path, "attn"), ln1, value)]);
            var ln2 = EmitLayerNorm(b.Ln2, Join(path, "ln2"), h, value.DType);
            var (mlp, _) = EmitSequential(b.Mlp, Join(path, "mlp"), ln2, value);
            return g.Node("Add", [h, mlp]);
        }
    }
}
