using System.Numerics.Tensors;

namespace Autograd;

/// <summary>
/// The backward walk: reverse-mode differentiation over the tape, and the functional <c>Grad</c> API.
/// </summary>
/// <remarks>
/// The walk is iterative (no recursion), so graphs of any depth work. It visits the nodes reachable from the
/// outputs, keeps only those that lead to a leaf (or to a requested input), runs each backward rule once all
/// gradients for its output have arrived, sums gradients that meet at the same node, and finally releases what
/// the rules saved unless <c>retainGraph</c> is set.
/// </remarks>
public static class Autodiff
{
    // Global (not per thread): a graph built on one thread may be walked on another.
    private static int s_stamp;

    /// <summary>
    /// Accumulates the gradients of <paramref name="outputs"/> into the <see cref="Tensor.Grad"/> of every leaf that
    /// requires grad. <paramref name="gradOutputs"/> gives d(loss)/d(output) for each output; it may be omitted only for
    /// one-element outputs (then it is 1).
    /// </summary>
    /// <param name="outputs">The tensors to differentiate.</param>
    /// <param name="gradOutputs">One gradient per output, shaped like it, or null.</param>
    /// <param name="retainGraph">Keep the saved tensors so that the graph can be walked again. Defaults to <paramref name="createGraph"/>.</param>
    /// <param name="createGraph">Record the backward computation itself, so that the gradients can be differentiated again.</param>
    public static void Backward(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor?>? gradOutputs = null, bool? retainGraph = null, bool createGraph = false)
        => Run("Backward", outputs, gradOutputs, retainGraph ?? createGraph, createGraph, null, false);

    /// <summary>
    /// Computes and returns the gradients of <paramref name="outputs"/> with respect to <paramref name="inputs"/>,
    /// without touching any <see cref="Tensor.Grad"/>.
    /// </summary>
    /// <param name="outputs">The tensors to differentiate.</param>
    /// <param name="inputs">The tensors to differentiate with respect to (leaves or intermediate results).</param>
    /// <param name="gradOutputs">One gradient per output, shaped like it; may be omitted for one-element outputs.</param>
    /// <param name="createGraph">Record the gradient computation so that the returned gradients can be differentiated again (higher-order gradients).</param>
    /// <param name="retainGraph">Keep the graph for another walk. Defaults to <paramref name="createGraph"/>.</param>
    /// <param name="allowUnused">Return zeros for an input the outputs do not depend on, instead of throwing.</param>
    /// <returns>One gradient per input, shaped like it.</returns>
    /// <exception cref="InvalidOperationException">An input is not used by the outputs and <paramref name="allowUnused"/> is false.</exception>
    public static Tensor[] Grad(
        IReadOnlyList<Tensor> outputs,
        IReadOnlyList<Tensor> inputs,
        IReadOnlyList<Tensor?>? gradOutputs = null,
        bool createGraph = false,
        bool? retainGraph = null,
        bool allowUnused = false)
    {
        var captured = new Tensor?[inputs.Count];
        Run("Grad", outputs, gradOutputs, retainGraph ?? createGraph, createGraph, inputs, allowUnused, captured);
        var result = new Tensor[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            result[i] = captured[i] ?? Tensor.Zeros(inputs[i].Shape, inputs[i].DType);
        }

        return result;
    }

    /// <summary>The gradient of one output with respect to one input; see <see cref="Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor?}?, bool, bool?, bool)"/>.</summary>
    public static Tensor Grad(Tensor output, Tensor input, Tensor? gradOutput = null, bool createGraph = false, bool? retainGraph = null, bool allowUnused = false)
        => Grad([output], [input], [gradOutput], createGraph, retainGraph, allowUnused)[0];

    private static void Run(
        string api,
        IReadOnlyList<Tensor> outputs,
        IReadOnlyList<Tensor?>? gradOutputs,
        bool retainGraph,
        bool createGraph,
        IReadOnlyList<Tensor>? inputs,
        bool allowUnused,
        Tensor?[]? captured = null)
    {
        if (outputs.Count == 0)
        {
            throw new ArgumentException($"{api}: no outputs to differentiate.", nameof(outputs));
        }

        if (gradOutputs is not null && gradOutputs.Count != outputs.Count)
        {
            throw new ArgumentException($"{api}: {outputs.Count} outputs but {gradOutputs.Count} gradients.", nameof(gradOutputs));
        }

        // 1. Validate everything before touching any state.
        var seeds = new Tensor[outputs.Count];
        for (var i = 0; i < outputs.Count; i++)
        {
            var y = outputs[i];
            if (!y.RequiresGrad)
            {
                throw new InvalidOperationException(
                    $"{api}: output {i} (shape {y.Shape}) does not require grad and has no GradFn; nothing on the tape leads to it. Set RequiresGrad = true on the inputs before computing it (and not inside NoGrad).");
            }

            var g = gradOutputs?[i];
            if (g is null)
            {
                if (y.ElementCount != 1)
                {
                    throw new InvalidOperationException(
                        $"{api}: output {i} has shape {y.Shape} ({y.ElementCount} elements); a gradient can be implied only for a one-element output. Pass a gradient of shape {y.Shape}, or reduce the output first (e.g. Sum()).");
                }

                g = Tensor.Ones(y.Shape, y.DType);
            }
            else if (g.Shape != y.Shape || g.DType != y.DType)
            {
                throw new ArgumentException(
                    $"{api}: the gradient for output {i} has shape {g.Shape} {g.DType.Name()}, but the output has shape {y.Shape} {y.DType.Name()}; they must match.");
            }

            seeds[i] = g;
        }

        Node?[]? targetNodes = null;
        if (inputs is not null)
        {
            targetNodes = new Node?[inputs.Count];
            for (var i = 0; i < inputs.Count; i++)
            {
                var x = inputs[i];
                if (!x.RequiresGrad)
                {
                    throw new InvalidOperationException($"{api}: input {i} (shape {x.Shape}) does not require grad, so no gradient can be computed for it.");
                }

                targetNodes[i] = x.Edge;
            }
        }

        // 2. Collect the reachable nodes in post-order (inputs before the nodes that use them), iteratively.
        var stamp = Interlocked.Increment(ref s_stamp);
        var order = new List<Node>();
        var stack = new Stack<(Node Node, int NextIndex)>();
        foreach (var y in outputs)
        {
            var root = y.Edge!;
            if (root.WalkStamp == stamp)
            {
                continue;
            }

            root.WalkStamp = stamp;
            stack.Push((root, 0));
            while (stack.Count > 0)
            {
                var (node, idx) = stack.Pop();
                if (idx < node.InputCount)
                {
                    stack.Push((node, idx + 1));
                    var child = node.Next(idx);
                    if (child is not null && child.WalkStamp != stamp)
                    {
                        child.WalkStamp = stamp;
                        stack.Push((child, 0));
                    }
                }
                else
                {
                    order.Add(node);
                }
            }
        }

        try
        {
            // 3. Mark targets, then which nodes lead to a target; count, for each needed node, the needed users it waits for.
            if (targetNodes is not null)
            {
                for (var i = 0; i < targetNodes.Length; i++)
                {
                    var t = targetNodes[i]!;
                    if (t.WalkStamp != stamp)
                    {
                        if (!allowUnused)
                        {
                            throw new InvalidOperationException(
                                $"{api}: input {i} (shape {inputs![i].Shape}) was not used to compute the outputs; pass allowUnused: true to get zeros for it.");
                        }

                        continue;
                    }

                    t.WalkCapture = i;
                }
            }

            foreach (var node in order)
            {
                var needed = targetNodes is null ? node.IsAccumulator : node.WalkCapture >= 0;
                for (var i = 0; i < node.InputCount && !needed; i++)
                {
                    needed = node.Next(i) is { WalkNeeded: true };
                }

                node.WalkNeeded = needed;
            }

            foreach (var node in order)
            {
                if (!node.WalkNeeded)
                {
                    continue;
                }

                if (node.IsReleased)
                {
                    throw new InvalidOperationException(
                        $"{api}: trying to backward through the graph a second time: the saved tensors of '{node.Name}' (output {node.OutputShape}) were freed by an earlier backward. Pass retainGraph: true to the first backward if you need to walk the graph again.");
                }

                for (var i = 0; i < node.InputCount; i++)
                {
                    if (node.Next(i) is { WalkNeeded: true } child)
                    {
                        child.WalkDeps++;
                    }
                }
            }

            // 4. Seed the output gradients and run the rules in an order where every node waits for all its users.
            var ready = new PriorityQueue<Node, long>();
            for (var i = 0; i < outputs.Count; i++)
            {
                var root = outputs[i].Edge!;
                if (!root.WalkNeeded)
                {
                    continue;
                }

                root.WalkGrad = root.WalkGrad is null ? seeds[i] : AddGradients(root.WalkGrad, seeds[i], createGraph);
            }

            foreach (var node in order)
            {
                if (node.WalkNeeded && node.WalkDeps == 0 && node.WalkGrad is not null)
                {
                    ready.Enqueue(node, -node.Sequence);
                }
            }

            using var mode = createGraph ? GradMode.EnableGrad() : GradMode.NoGrad();
            var buffers = new Dictionary<int, Tensor?[]>();
            while (ready.TryDequeue(out var node, out _))
            {
                var g = node.WalkGrad;
                node.WalkGrad = null;
                if (g is not null && node.WalkCapture >= 0)
                {
                    captured![node.WalkCapture] = g;
                }

                if (node is AccumulateGrad acc)
                {
                    if (targetNodes is null && g is not null)
                    {
                        if (TapeObserver.Current is not null)
                        {
                            TapeObserver.RaiseBackwardStart(node, g);
                        }

                        AccumulateInto(acc.Leaf, g, createGraph);
                        if (TapeObserver.Current is not null)
                        {
                            TapeObserver.RaiseBackwardEnd(node, g, []);
                        }
                    }

                    continue;
                }

                if (targetNodes is not null && !AnyNeeded(node))
                {
                    continue;
                }

                if (!buffers.TryGetValue(node.InputCount, out var grads))
                {
                    grads = new Tensor?[node.InputCount];
                    buffers[node.InputCount] = grads;
                }

                if (g is not null)
                {
                    if (TapeObserver.Current is not null)
                    {
                        TapeObserver.RaiseBackwardStart(node, g);
                        node.Backward(g, grads);
                        TapeObserver.RaiseBackwardEnd(node, g, grads);
                    }
                    else
                    {
                        node.Backward(g, grads);
                    }
                }

                for (var i = 0; i < grads.Length; i++)
                {
                    var gi = grads[i];
                    grads[i] = null;
                    var child = node.Next(i);
                    if (child is null || !child.WalkNeeded)
                    {
                        continue;
                    }

                    if (gi is not null)
                    {
                        if (gi.Shape != child.OutputShape || gi.DType != child.OutputDType)
                        {
                            throw new InvalidOperationException(
                                $"{api}: the backward rule of '{node.Name}' produced a gradient of shape {gi.Shape} {gi.DType.Name()} for input {i}, which has shape {child.OutputShape} {child.OutputDType.Name()}.");
                        }

                        child.WalkGrad = child.WalkGrad is null ? gi : AddGradients(child.WalkGrad, gi, createGraph);
                    }

                    if (--child.WalkDeps == 0)
                    {
                        ready.Enqueue(child, -child.Sequence);
                    }
                }

                if (!retainGraph)
                {
                    node.Release();
                }
            }
        }
        finally
        {
            foreach (var node in order)
            {
                node.WalkDeps = 0;
                node.WalkNeeded = false;
                node.WalkCapture = -1;
                node.WalkGrad = null;
            }
        }
    }

    private static bool AnyNeeded(Node node)
    {
        for (var i = 0; i < node.InputCount; i++)
        {
            if (node.Next(i) is { WalkNeeded: true })
            {
                return true;
            }
        }

        return false;
    }

    private static void AccumulateInto(Tensor leaf, Tensor g, bool createGraph)
    {
        // A gradient that is not on the tape is copied, so that the leaf owns its Grad: accumulating into it in
        // place (and ZeroGrad) must never write into the caller's gradOutput or a tensor shared with the graph.
        var current = leaf.Grad;
        if (current is null)
        {
            leaf.Grad = createGraph && g.RequiresGrad ? g : g.Clone();
        }
        else if (!createGraph && !current.RequiresGrad && !g.RequiresGrad)
        {
            AddInPlace(current, g);
        }
        else
        {
            leaf.Grad = AddGradients(current, g, createGraph);
        }
    }

    /// <summary>a + b for two gradients of one shape; recorded (differentiable) when <paramref name="createGraph"/> is set.</summary>
    private static Tensor AddGradients(Tensor a, Tensor b, bool createGraph)
    {
        var sum = Tensor.Empty(a.Shape, a.DType);
        if (a.DType == DType.Float64)
        {
            TensorPrimitives.Add(a.Span<double>(), b.Span<double>(), sum.Span<double>());
        }
        else
        {
            TensorPrimitives.Add(a.Span<float>(), b.Span<float>(), sum.Span<float>());
        }

        if (createGraph && Tensor.ShouldRecord(a, b))
        {
            sum.SetGradFn(new GradSumNode(a, b));
        }

        return sum;
    }

    private static void AddInPlace(Tensor acc, Tensor g)
    {
        if (acc.DType == DType.Float64)
        {
            TensorPrimitives.Add(acc.Span<double>(), g.Span<double>(), acc.Span<double>());
        }
        else
        {
            TensorPrimitives.Add(acc.Span<float>(), g.Span<float>(), acc.Span<float>());
        }
    }

    // s = a + b (two gradients meeting at one node)      da = g, db = g
    private sealed class GradSumNode(Tensor a, Tensor b) : Node("GradSum", a, b)
    {
        public override string Formula => "da = g, db = g";

        protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
        {
            inputGrads[0] = grad;
            inputGrads[1] = grad;
        }
    }
}

/// <content>Backward entry points on the tensor itself.</content>
public sealed partial class Tensor
{
    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires grad and adds it into their
    /// <see cref="Grad"/>. Without <paramref name="gradient"/> this tensor must have one element.
    /// </summary>
    /// <param name="gradient">d(loss)/d(this), shaped like this tensor (as in the article: <c>s.Backward(dL)</c>).</param>
    /// <param name="retainGraph">Keep the saved tensors so the graph can be walked again (defaults to <paramref name="createGraph"/>).</param>
    /// <param name="createGraph">Record the backward pass so the gradients can be differentiated again.</param>
    public void Backward(Tensor? gradient = null, bool? retainGraph = null, bool createGraph = false)
        => Autodiff.Backward([this], [gradient], retainGraph, createGraph);
}
