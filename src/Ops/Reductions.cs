using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Reductions over all elements or over chosen dims (negative dims count from the end), with <c>keepDim</c>:
/// sum, mean, max, min; the index reductions ArgMax/ArgMin; and SumTo, which sums a broadcast gradient back to a shape.
/// </summary>
public static class Reductions
{
    extension(Tensor x)
    {
        /// <summary>The sum of all elements (0 for an empty tensor), as a rank-0 tensor.</summary>
        public Tensor Sum() => x.Sum([], false);

        /// <summary>The sum along <paramref name="dim"/>.</summary>
        public Tensor Sum(int dim, bool keepDim = false) => x.Sum([dim], keepDim);

        /// <summary>The sum along <paramref name="dims"/> (all dims when empty); reduced dims are kept with size 1 when <paramref name="keepDim"/>.</summary>
        public Tensor Sum(int[] dims, bool keepDim = false)
        {
            var reduce = ReduceMask("Sum", x, dims);
            var y = SumKernel(x, reduce, keepDim);
            if (Tensor.ShouldRecord(x))
            {
                y.SetGradFn(new SumNode(x, Dispatch.Reduced(x.Shape, reduce, true)));
            }

            return y;
        }

        /// <summary>The mean of all elements (NaN for an empty tensor, as in PyTorch).</summary>
        public Tensor Mean() => x.Mean([], false);

        /// <summary>The mean along <paramref name="dim"/>.</summary>
        public Tensor Mean(int dim, bool keepDim = false) => x.Mean([dim], keepDim);

        /// <summary>The mean along <paramref name="dims"/> (all dims when empty): the sum divided by the number of elements reduced.</summary>
        public Tensor Mean(int[] dims, bool keepDim = false)
        {
            var reduce = ReduceMask("Mean", x, dims);
            var count = 1;
            for (var i = 0; i < x.Rank; i++)
            {
                count *= reduce[i] ? x.Shape[i] : 1;
            }

            return x.Sum(dims, keepDim) / count;
        }

        /// <summary>The largest element; see <see cref="Max(Tensor, int[], bool)"/> for the gradient rule.</summary>
        public Tensor Max() => x.Max([], false);

        /// <summary>The largest values along <paramref name="dim"/>.</summary>
        public Tensor Max(int dim, bool keepDim = false) => x.Max([dim], keepDim);

        /// <summary>
        /// The largest values along <paramref name="dims"/> (all when empty), NaN propagating. As PyTorch's <c>amax</c>,
        /// the gradient is split evenly among tied maxima.
        /// </summary>
        /// <exception cref="ArgumentException">A reduced dim has size 0 (a maximum of nothing is undefined).</exception>
        public Tensor Max(int[] dims, bool keepDim = false) => Extreme(x, dims, keepDim, true);

        /// <summary>The smallest element; the gradient is split evenly among ties.</summary>
        public Tensor Min() => x.Min([], false);

        /// <summary>The smallest values along <paramref name="dim"/>.</summary>
        public Tensor Min(int dim, bool keepDim = false) => x.Min([dim], keepDim);

        /// <summary>The smallest values along <paramref name="dims"/> (all when empty), as PyTorch's <c>amin</c>.</summary>
        /// <exception cref="ArgumentException">A reduced dim has size 0.</exception>
        public Tensor Min(int[] dims, bool keepDim = false) => Extreme(x, dims, keepDim, false);

        /// <summary>The index (int64) of the first maximum along <paramref name="dim"/>; NaN counts as the maximum. Not differentiable.</summary>
        public Tensor ArgMax(int dim, bool keepDim = false) => ArgExtreme(x, dim, keepDim, true);

        /// <summary>The flat index (int64, rank 0) of the first maximum of all elements.</summary>
        public Tensor ArgMax() => ArgExtreme(x.Reshape(-1), 0, false, true);

        /// <summary>The index (int64) of the first minimum along <paramref name="dim"/>; NaN counts as the minimum. Not differentiable.</summary>
        public Tensor ArgMin(int dim, bool keepDim = false) => ArgExtreme(x, dim, keepDim, false);

        /// <summary>The flat index (int64, rank 0) of the first minimum of all elements.</summary>
        public Tensor ArgMin() => ArgExtreme(x.Reshape(-1), 0, false, false);

        /// <summary>
        /// Sums x over the dims along which <paramref name="shape"/> was broadcast to x's shape, giving a tensor of
        /// <paramref name="shape"/>: the adjoint of <c>Expand</c>, used to return broadcast gradients to their inputs.
        /// </summary>
        /// <exception cref="ArgumentException"><paramref name="shape"/> does not broadcast to x's shape.</exception>
        public Tensor SumTo(Shape shape)
        {
            if (x.Shape == shape)
            {
                return x;
            }

            if (!shape.CanBroadcastTo(x.Shape))
            {
                throw new ArgumentException($"SumTo: shape {shape} does not broadcast to {x.Shape}, so {x.Shape} cannot be summed back to it.", nameof(shape));
            }

            var lead = x.Rank - shape.Rank;
            var dims = new List<int>();
            for (var i = 0; i < x.Rank; i++)
            {
                if (i < lead || (shape[i - lead] == 1 && x.Shape[i] != 1))
                {
                    dims.Add(i);
                }
            }

            var summed = dims.Count == 0 ? x : x.Sum([.. dims], keepDim: true);
            return summed.Reshape(shape.ToArray());
        }
    }

    private static bool[] ReduceMask(string op, Tensor x, int[] dims)
    {
        Dispatch.RequireFloat(x, op);
        var reduce = new bool[x.Rank];
        if (dims.Length == 0)
        {
            Array.Fill(reduce, true);
            return reduce;
        }

        foreach (var d in dims)
        {
            var n = x.Shape.NormalizeDim(d, op);
            if (x.Rank == 0)
            {
                continue;
            }

            if (reduce[n])
            {
                throw new ArgumentException($"{op}: dim {n} appears more than once in [{string.Join(", ", dims)}] (shape {x.Shape}).", nameof(dims));
            }

            reduce[n] = true;
        }

        return reduce;
    }

    /// <summary>Applies a [outer, size, inner] kernel to each run of consecutive reduced dims, then drops them unless keepDim.</summary>
    private static Tensor ReduceRuns(Tensor x, bool[] reduce, bool keepDim, Action<Tensor, Tensor, int, int, int> kernel)
    {
        var current = x;
        var dims = x.Shape.ToArray();
        for (var end = x.Rank; end > 0;)
        {
            if (!reduce[end - 1])
            {
                end--;
                continue;
            }

            var start = end - 1;
            while (start > 0 && reduce[start - 1])
            {
                start--;
            }

            int outer = 1, size = 1, inner = 1;
            for (var i = 0; i < x.Rank; i++)
            {
                if (i < start)
                {
                    outer *= dims[i];
                }
                else if (i < end)
                {
                    size *= dims[i];
                }
                else
                {
                    inner *= dims[i];
                }
            }

            for (var i = start; i < end; i++)
            {
                dims[i] = 1;
            }

            var next = Tensor.Uninitialized(new Shape(dims), x.DType);
            kernel(current, next, outer, size, inner);
            current = next;
            end = start;
        }

        if (ReferenceEquals(current, x))
        {
            current = x.Clone();
        }

        var final = Dispatch.Reduced(x.Shape, reduce, keepDim);
        return current.Shape == final ? current : new Tensor(final, current.DType, current.Storage, current.Offset, current);
    }

    private static Tensor SumKernel(Tensor x, bool[] reduce, bool keepDim)
        => ReduceRuns(x, reduce, keepDim, static (src, dst, o, s, i) => RunKernel(src, dst, o, s, i, ReduceKind.Sum));

    private static Tensor Extreme(Tensor x, int[] dims, bool keepDim, bool max)
    {
        var op = max ? "Max" : "Min";
        var reduce = ReduceMask(op, x, dims);
        for (var i = 0; i < x.Rank; i++)
        {
            if (reduce[i] && x.Shape[i] == 0)
            {
                throw new ArgumentException($"{op}: cannot reduce over dim {i} of size 0 (shape {x.Shape}); the {(max ? "maximum" : "minimum")} of no elements is undefined.", nameof(dims));
            }
        }

        if (x.ElementCount == 0 && x.Rank == 0)
        {
            throw new ArgumentException($"{op}: the tensor is empty.", nameof(x));
        }

        Action<Tensor, Tensor, int, int, int> kernel = max
            ? static (src, dst, o, s, i) => RunKernel(src, dst, o, s, i, ReduceKind.Max)
            : static (src, dst, o, s, i) => RunKernel(src, dst, o, s, i, ReduceKind.Min);
        var y = ReduceRuns(x, reduce, keepDim, kernel);
        if (Tensor.ShouldRecord(x))
        {
            var keepShape = Dispatch.Reduced(x.Shape, reduce, true);
            var yKeep = new Tensor(keepShape, y);
            var keptDims = Enumerable.Range(0, x.Rank).Where(i => reduce[i]).ToArray();
            y.SetGradFn(new ExtremeNode(op, x, yKeep, keptDims));
        }

        return y;
    }

    private static void RunKernel(Tensor src, Tensor dst, int o, int s, int i, ReduceKind kind)
    {
        Dispatch.ByFloatType(src.DType, new ReduceWork(src, dst, o, s, i, kind));
    }

    private readonly struct ReduceWork(Tensor src, Tensor dst, int outer, int size, int inner, ReduceKind kind) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => Reduce.Run((T[])src.Storage, src.Offset, outer, size, inner, (T[])dst.Storage, kind);
    }

    private readonly struct ArgExtremeWork(Tensor x, Tensor y, int outer, int size, int inner, bool max) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => Reduce.ArgExtreme(x.Span<T>(), outer, size, inner, y.Span<long>(), max);
    }

    private static Tensor ArgExtreme(Tensor x, int dim, bool keepDim, bool max)
    {
        var op = max ? "ArgMax" : "ArgMin";
        Dispatch.RequireFloat(x, op);
        var d = x.Shape.NormalizeDim(dim, op);
        if (x.Rank > 0 && x.Shape[d] == 0)
        {
            throw new ArgumentException($"{op}: cannot take the index of an extreme over dim {d} of size 0 (shape {x.Shape}).", nameof(dim));
        }

        var reduce = new bool[x.Rank];
        if (x.Rank > 0)
        {
            reduce[d] = true;
        }

        var y = Tensor.Uninitialized(Dispatch.Reduced(x.Shape, reduce, keepDim), DType.Int64);
        var (outer, size, inner) = x.Rank == 0 ? (1, 1, 1) : Dispatch.Around(x.Shape, d);
        Dispatch.ByFloatType(x.DType, new ArgExtremeWork(x, y, outer, size, inner, max));

        return y;
    }

    [Rule("Sum", Forward = "y = Σ x over dims", Backward = "dx = expand(g, x.shape)", Tangent = "ẏ = Σ ẋ over the same dims")]
    private sealed class SumNode(Tensor x, Shape keepShape) : Node("Sum", x)
    {
        private readonly Shape _xShape = x.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
            => grads[0] = g.Reshape(keepShape.ToArray()).Expand(_xShape.ToArray());

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0]!.SumTo(keepShape).Reshape(y.Shape.ToArray());
    }

    // The gradient is split evenly among tied extremes, as PyTorch's amax and amin.
    [Rule("Max", Forward = "y = max of x over dims (amax)", Backward = "dx = g / count ⊙ [x = y], count = Σ [x = y]", Saves = "x, y", Tangent = "ẏ = Σ ẋ ⊙ [x = y] / count (the mean of ẋ over tied extremes)")]
    [Rule("Min", Forward = "y = min of x over dims (amin)", Backward = "dx = g / count ⊙ [x = y], count = Σ [x = y]", Saves = "x, y", Tangent = "ẏ = Σ ẋ ⊙ [x = y] / count (the mean of ẋ over tied extremes)")]
    private sealed class ExtremeNode : Node
    {
        private readonly int[] _dims;

        // yKeep: the result with the reduced dims kept (size 1).
        public ExtremeNode(string name, Tensor x, Tensor yKeep, int[] dims)
            : base(name, x)
        {
            _dims = dims;
            Save(x, yKeep);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            var y = Saved(1);
            var mask = Elementwise.EqualMask(x, y);
            var count = mask.Sum(_dims, keepDim: true);
            grads[0] = g.Reshape(y.Shape.ToArray()) / count * mask;
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor output)
        {
            var mask = Elementwise.EqualMask(Saved(0), Saved(1));
            var count = mask.Sum(_dims, keepDim: true);
            return ((t[0]! * mask).Sum(_dims, keepDim: true) / count).Reshape(output.Shape.ToArray());
        }
    }
}
