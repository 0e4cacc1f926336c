using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Elementwise comparisons (<c>Eq</c>, <c>Ne</c>, <c>Lt</c>, <c>Le</c>, <c>Gt</c>, <c>Ge</c>), selection with
/// <c>Where</c>, the elementwise <c>Maximum</c> and <c>Minimum</c>, and <c>Clamp</c>, all broadcasting as NumPy does.
/// </summary>
/// <remarks>
/// Autograd has no boolean dtype, so a comparison returns its mask in the floating dtype of its operands: 1.0 where
/// the comparison holds and 0.0 elsewhere (NaN compares as IEEE: only <c>Ne</c> holds). A mask can be multiplied
/// into a tensor, summed to count, or passed to <c>Where</c>, which treats any nonzero condition as true.
/// Comparisons are not differentiable and are never recorded on the tape. Comparisons take float64 or float32
/// operands of one dtype (int64 tensors are converted first with <c>To</c>).
/// </remarks>
public static class Comparison
{
    extension(Tensor a)
    {
        /// <summary>The mask [a = b] (1.0 where equal, else 0.0, in a's dtype), broadcasting. Not recorded.</summary>
        public Tensor Eq(Tensor b) => Compare<EqPredicate<double>, EqPredicate<float>>("Eq", a, b);

        /// <summary>The mask [a = s] against a scalar. Not recorded.</summary>
        public Tensor Eq(double s) => Compare<EqPredicate<double>, EqPredicate<float>>("Eq", a, Scalar("Eq", a, s));

        /// <summary>The mask [a ≠ b] (1.0 where different or either is NaN, else 0.0), broadcasting. Not recorded.</summary>
        public Tensor Ne(Tensor b) => Compare<NePredicate<double>, NePredicate<float>>("Ne", a, b);

        /// <summary>The mask [a ≠ s] against a scalar. Not recorded.</summary>
        public Tensor Ne(double s) => Compare<NePredicate<double>, NePredicate<float>>("Ne", a, Scalar("Ne", a, s));

        /// <summary>The mask [a &lt; b] (1.0 or 0.0 in a's dtype), broadcasting. Not recorded.</summary>
        public Tensor Lt(Tensor b) => Compare<LtPredicate<double>, LtPredicate<float>>("Lt", a, b);

        /// <summary>The mask [a &lt; s] against a scalar. Not recorded.</summary>
        public Tensor Lt(double s) => Compare<LtPredicate<double>, LtPredicate<float>>("Lt", a, Scalar("Lt", a, s));

        /// <summary>The mask [a ≤ b] (1.0 or 0.0 in a's dtype), broadcasting. Not recorded.</summary>
        public Tensor Le(Tensor b) => Compare<LePredicate<double>, LePredicate<float>>("Le", a, b);

        /// <summary>The mask [a ≤ s] against a scalar. Not recorded.</summary>
        public Tensor Le(double s) => Compare<LePredicate<double>, LePredicate<float>>("Le", a, Scalar("Le", a, s));

        /// <summary>The mask [a &gt; b] (1.0 or 0.0 in a's dtype), broadcasting. Not recorded.</summary>
        public Tensor Gt(Tensor b) => Compare<GtPredicate<double>, GtPredicate<float>>("Gt", a, b);

        /// <summary>The mask [a &gt; s] against a scalar. Not recorded.</summary>
        public Tensor Gt(double s) => Compare<GtPredicate<double>, GtPredicate<float>>("Gt", a, Scalar("Gt", a, s));

        /// <summary>The mask [a ≥ b] (1.0 or 0.0 in a's dtype), broadcasting. Not recorded.</summary>
        public Tensor Ge(Tensor b) => Compare<GePredicate<double>, GePredicate<float>>("Ge", a, b);

        /// <summary>The mask [a ≥ s] against a scalar. Not recorded.</summary>
        public Tensor Ge(double s) => Compare<GePredicate<double>, GePredicate<float>>("Ge", a, Scalar("Ge", a, s));

        /// <summary>
        /// The elementwise maximum of a and b, broadcasting; NaN propagates, as in PyTorch's <c>maximum</c>. The gradient
        /// goes to the larger operand and is split half and half where they are equal.
        /// </summary>
        public Tensor Maximum(Tensor b) => Extremum("Maximum", a, b, max: true);

        /// <summary>The elementwise maximum of a and a scalar (half the gradient where a equals it).</summary>
        public Tensor Maximum(double s) => Extremum("Maximum", a, Scalar("Maximum", a, s), max: true);

        /// <summary>
        /// The elementwise minimum of a and b, broadcasting; NaN propagates, as in PyTorch's <c>minimum</c>. The gradient
        /// goes to the smaller operand and is split half and half where they are equal.
        /// </summary>
        public Tensor Minimum(Tensor b) => Extremum("Minimum", a, b, max: false);

        /// <summary>The elementwise minimum of a and a scalar (half the gradient where a equals it).</summary>
        public Tensor Minimum(double s) => Extremum("Minimum", a, Scalar("Minimum", a, s), max: false);

        /// <summary>
        /// Limits every element to [<paramref name="min"/>, <paramref name="max"/>] (either bound may be omitted), as
        /// <c>torch.clamp</c>; NaN stays NaN. The gradient passes where min ≤ a ≤ max, bounds included, and is 0 elsewhere.
        /// </summary>
        /// <exception cref="ArgumentException">a is not a float tensor, both bounds are missing, a bound is NaN, or min &gt; max.</exception>
        public Tensor Clamp(double? min = null, double? max = null)
        {
            const string op = "Clamp";
            Dispatch.RequireFloat(a, op);
            if (min is null && max is null)
            {
                throw new ArgumentException($"{op}: at least one of min and max must be given (shape {a.Shape}).", nameof(min));
            }

            if (min is double lo && double.IsNaN(lo))
            {
                throw new ArgumentException($"{op}: min is NaN.", nameof(min));
            }

            if (max is double hi && double.IsNaN(hi))
            {
                throw new ArgumentException($"{op}: max is NaN.", nameof(max));
            }

            if (min > max)
            {
                throw new ArgumentException($"{op}: min {min} is greater than max {max}; the range is empty.", nameof(min));
            }

            var y = Tensor.Empty(a.Shape, a.DType);
            Dispatch.ByFloatType(a.DType, new ClampWork(a, y, min, max));

            if (Tensor.ShouldRecord(a))
            {
                y.SetGradFn(new ClampNode(a, min, max));
            }

            return y;
        }
    }

    extension(Tensor)
    {
        /// <summary>
        /// Elementwise selection, as <c>torch.where</c>: <paramref name="a"/> where <paramref name="condition"/> is nonzero
        /// (NaN counts as nonzero), else <paramref name="b"/>, with the three broadcast to a common shape. The condition may
        /// be of any dtype (typically a comparison mask) and is not differentiated; a and b must share a float dtype.
        /// </summary>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">a and b have different or non-float dtypes, or the three shapes cannot be broadcast together.</exception>
        public static Tensor Where(Tensor condition, Tensor a, Tensor b)
        {
            const string op = "Where";
            Dispatch.RequireSameDType(a, b, op);
            Shape shape;
            try
            {
                shape = Shape.Broadcast(Shape.Broadcast(condition.Shape, a.Shape, op), b.Shape, op);
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException(
                    $"{op}: the condition (shape {condition.Shape}), a (shape {a.Shape}) and b (shape {b.Shape}) cannot be broadcast together. {e.Message}", e);
            }

            var mask = new bool[condition.ElementCount];
            for (var i = 0; i < mask.Length; i++)
            {
                mask[i] = condition.GetFlat(i) != 0;
            }

            var y = Tensor.Empty(shape, a.DType);
            var sc = condition.Shape.BroadcastStrides(shape);
            var sa = a.Shape.BroadcastStrides(shape);
            var sb = b.Shape.BroadcastStrides(shape);
            Dispatch.ByFloatType(a.DType, new WhereWork(mask, sc, a, sa, b, sb, y));

            if (Tensor.ShouldRecord(a, b))
            {
                y.SetGradFn(new WhereNode(condition, a, b));
            }

            return y;
        }

        /// <summary><paramref name="a"/> where <paramref name="condition"/> is nonzero, else the scalar <paramref name="b"/> (e.g. a masked fill).</summary>
        public static Tensor Where(Tensor condition, Tensor a, double b) => Tensor.Where(condition, a, Scalar("Where", a, b));

        /// <summary>The scalar <paramref name="a"/> where <paramref name="condition"/> is nonzero, else <paramref name="b"/>.</summary>
        public static Tensor Where(Tensor condition, double a, Tensor b) => Tensor.Where(condition, Scalar("Where", b, a), b);
    }

    private static Tensor Compare<TD, TF>(string op, Tensor a, Tensor b)
        where TD : IComparePredicate<double>
        where TF : IComparePredicate<float>
        => Dispatch.Binary<CompareKernel<double, TD>, CompareKernel<float, TF>>(op, a, b);

    /// <summary>A rank-0 constant with the dtype of <paramref name="like"/>, which must be a float tensor.</summary>
    private static Tensor Scalar(string op, Tensor like, double value)
    {
        Dispatch.RequireFloat(like, op);
        return Tensor.Scalar(value, like.DType);
    }

    private static Tensor Extremum(string op, Tensor a, Tensor b, bool max)
    {
        var y = max
            ? Dispatch.Binary<MaxKernel<double>, MaxKernel<float>>(op, a, b)
            : Dispatch.Binary<MinKernel<double>, MinKernel<float>>(op, a, b);
        if (Tensor.ShouldRecord(a, b))
        {
            y.SetGradFn(new ExtremumNode(op, a, b, max));
        }

        return y;
    }

    private readonly struct ClampWork(Tensor x, Tensor y, double? min, double? max) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => ClampKernel(x.Span<T>(), min is { } lo ? T.CreateTruncating(lo) : null, max is { } hi ? T.CreateTruncating(hi) : null, y.Span<T>());
    }

    private readonly struct WhereWork(bool[] mask, int[] sc, Tensor a, int[] sa, Tensor b, int[] sb, Tensor y) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => IndexKernels.Where(mask, sc, a.Span<T>(), sa, b.Span<T>(), sb, y.Shape.Dims, y.Span<T>());
    }

    private static void ClampKernel<T>(ReadOnlySpan<T> x, T? min, T? max, Span<T> y)
        where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        if (min is T lo)
        {
            TensorPrimitives.Max(x, lo, y);
        }
        else
        {
            x.CopyTo(y);
        }

        if (max is T hi)
        {
            TensorPrimitives.Min(y, hi, y);
        }
    }

    [Rule("Where", Forward = "y = where(c, a, b)", Backward = "da = where(c, g, 0), db = where(c, 0, g)", Saves = "c", Tangent = "ẏ = where(c, ȧ, ḃ)")]
    private sealed class WhereNode : Node
    {
        private readonly Shape _sa, _sb;

        public WhereNode(Tensor condition, Tensor a, Tensor b)
            : base("Where", a, b)
        {
            _sa = a.Shape;
            _sb = b.Shape;
            Save(condition);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var c = Saved(0);
            if (NeedsInputGrad(0))
            {
                grads[0] = Tensor.Where(c, g, 0.0).SumTo(_sa);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = Tensor.Where(c, 0.0, g).SumTo(_sb);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var c = Saved(0);
            var tangent = (t[0], t[1]) switch
            {
                ({ } ta, { } tb) => Tensor.Where(c, ta, tb),
                ({ } ta, null) => Tensor.Where(c, ta, 0.0),
                (null, { } tb) => Tensor.Where(c, 0.0, tb),
                _ => null,
            };
            return Tangents.To(tangent, y.Shape);
        }
    }

    // Ties are split half and half; where either is NaN, both get g, as in PyTorch.
    [Rule("Maximum", Forward = "y = maximum(a, b)", Backward = "da = g ⊙ (1 − [a < b] − ½[a = b]), db = g ⊙ (1 − [a > b] − ½[a = b])", Saves = "a, b", Tangent = "ẏ = ȧ ⊙ (1 − [a > b] − ½[a = b]) + ḃ ⊙ (1 − [a < b] − ½[a = b])")]
    [Rule("Minimum", Forward = "y = minimum(a, b)", Backward = "da = g ⊙ (1 − [a > b] − ½[a = b]), db = g ⊙ (1 − [a < b] − ½[a = b])", Saves = "a, b", Tangent = "ẏ = ȧ ⊙ (1 − [a < b] − ½[a = b]) + ḃ ⊙ (1 − [a > b] − ½[a = b])")]
    private sealed class ExtremumNode : Node
    {
        private readonly bool _max;

        public ExtremumNode(string name, Tensor a, Tensor b, bool max)
            : base(name, a, b)
        {
            _max = max;
            Save(a, b);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(0);
            var b = Saved(1);
            var half = 0.5 * a.Eq(b);
            if (NeedsInputGrad(0))
            {
                var loses = _max ? a.Lt(b) : a.Gt(b);
                grads[0] = (g * (1.0 - loses - half)).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                var loses = _max ? a.Gt(b) : a.Lt(b);
                grads[1] = (g * (1.0 - loses - half)).SumTo(b.Shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var a = Saved(0);
            var b = Saved(1);
            var half = 0.5 * a.Eq(b);
            var fromA = t[0] is { } ta ? ta * (1.0 - (_max ? a.Lt(b) : a.Gt(b)) - half) : null;
            var fromB = t[1] is { } tb ? tb * (1.0 - (_max ? a.Gt(b) : a.Lt(b)) - half) : null;
            return Tangents.Sum(fromA, fromB, y);
        }
    }

    [Rule("Clamp", Forward = "y = clamp(x, min, max)", Backward = "dx = g ⊙ [min ≤ x ≤ max]", Saves = "x", Tangent = "ẏ = ẋ ⊙ [min ≤ x ≤ max]")]
    private sealed class ClampNode : Node
    {
        private readonly double? _min, _max;

        public ClampNode(Tensor x, double? min, double? max)
            : base("Clamp", x)
        {
            _min = min;
            _max = max;
            Save(x);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            var inside = _min is double lo ? x.Ge(lo) : null;
            if (_max is double hi)
            {
                inside = inside is null ? x.Le(hi) : inside * x.Le(hi);
            }

            grads[0] = g * inside!;
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var x = Saved(0);
            var inside = _min is double lo ? x.Ge(lo) : null;
            if (_max is double hi)
            {
                inside = inside is null ? x.Le(hi) : inside * x.Le(hi);
            }

            return t[0]! * inside!;
        }
    }
}
