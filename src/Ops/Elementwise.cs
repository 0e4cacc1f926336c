using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Elementwise operators: add, sub, mul, div with NumPy broadcasting (and scalar overloads on either side), and the
/// unary neg, exp, log, pow, sqrt, abs, tanh, sigmoid, relu; plus the differentiable dtype conversion.
/// The forward kernels come first, then the nodes with the backward rules, each formula in the <see cref="RuleAttribute"/>
/// on its node (all listed in docs/rules.md).
/// </summary>
public static class Elementwise
{
    /// <summary>
    /// A binary operator's forward rule: ẏ from its inputs a, b, their tangents (null for none) and its output y. Its node
    /// passes the inputs it saves and null for the others, which its rule does not read.
    /// </summary>
    private delegate Tensor? BinaryTangent(Tensor? a, Tensor? b, Tensor? ta, Tensor? tb, Tensor y);

    /// <summary>
    /// A unary operator's forward rule: ẏ from its input x, its output y and the input's tangent ẋ. Its node passes null
    /// for x when it does not save it, and then its rule does not read it.
    /// </summary>
    private delegate Tensor? UnaryTangent(Tensor? x, Tensor y, Tensor tx);

    extension(Tensor a)
    {
        /// <summary>a + b, broadcasting both to a common shape.</summary>
        public Tensor Add(Tensor b)
            => Binary<AddKernel<double>, AddKernel<float>>("Add", a, b, static (a, b) => new AddNode(a, b), static (a, b, ta, tb, y) => AddNode.Tangent(a, b, ta, tb, y));

        /// <summary>a − b, broadcasting both to a common shape.</summary>
        public Tensor Sub(Tensor b)
            => Binary<SubKernel<double>, SubKernel<float>>("Sub", a, b, static (a, b) => new SubNode(a, b), static (a, b, ta, tb, y) => SubNode.Tangent(a, b, ta, tb, y));

        /// <summary>a ⊙ b (elementwise product), broadcasting both to a common shape.</summary>
        public Tensor Mul(Tensor b)
            => Binary<MulKernel<double>, MulKernel<float>>("Mul", a, b, static (a, b) => new MulNode(a, b), static (a, b, ta, tb, y) => MulNode.Tangent(a, b, ta, tb, y));

        /// <summary>a / b elementwise, broadcasting both to a common shape. Division by zero follows IEEE (±inf, NaN for 0/0).</summary>
        public Tensor Div(Tensor b)
            => Binary<DivKernel<double>, DivKernel<float>>("Div", a, b, static (a, b) => new DivNode(a, b), static (a, b, ta, tb, y) => DivNode.Tangent(a, b, ta, tb, y));

        /// <summary>−a.</summary>
        public Tensor Neg()
            => Unary("Neg", a, TensorPrimitives.Negate, TensorPrimitives.Negate, static (x, _) => new NegNode(x), static (x, y, tx) => NegNode.Tangent(x, y, tx));

        /// <summary>
        /// e to the power of each element, by <see cref="ExpKernel"/>: within 1 ulp in float64 and 2 ulp in float32, exp(0) = 1
        /// exactly, exp(−∞) = 0, exp(+∞) = +∞, NaN stays NaN.
        /// </summary>
        public Tensor Exp()
            => Unary("Exp", a, ExpKernel.Exp, ExpKernel.Exp, static (x, y) => new ExpNode(x, y), static (x, y, tx) => ExpNode.Tangent(x, y, tx));

        /// <summary>The natural logarithm of each element (NaN for negative, −inf for zero, as IEEE).</summary>
        public Tensor Log()
            => Unary("Log", a, TensorPrimitives.Log, TensorPrimitives.Log, static (x, _) => new LogNode(x), static (x, y, tx) => LogNode.Tangent(x, y, tx));

        /// <summary>Each element raised to the scalar power <paramref name="exponent"/>.</summary>
        public Tensor Pow(double exponent)
        {
            Dispatch.RequireFloat(a, "Pow");
            var y = Tensor.Uninitialized(a.Shape, a.DType);
            Dispatch.ByFloatType(a.DType, new PowWork(a, y, exponent));

            if (Tensor.ShouldRecord(a))
            {
                y.SetGradFn(new PowNode(a, exponent));
            }

            return y;
        }

        /// <summary>The square root of each element (NaN for negative elements).</summary>
        public Tensor Sqrt()
            => Unary("Sqrt", a, TensorPrimitives.Sqrt, TensorPrimitives.Sqrt, static (x, y) => new SqrtNode(x, y), static (x, y, tx) => SqrtNode.Tangent(x, y, tx));

        /// <summary>|a| elementwise. Its gradient at 0 is 0, as in PyTorch.</summary>
        public Tensor Abs()
            => Unary("Abs", a, TensorPrimitives.Abs, TensorPrimitives.Abs, static (x, _) => new AbsNode(x), static (x, y, tx) => AbsNode.Tangent(x, y, tx));

        /// <summary>
        /// The hyperbolic tangent of each element, by <see cref="TanhKernel"/>: relatively accurate for every input, tiny and
        /// subnormal ones included (within 1 ulp in float32, 3 ulp in float64); tanh(±0) = ±0, ±1 for large |a|, NaN stays NaN.
        /// </summary>
        public Tensor Tanh()
            => Unary("Tanh", a, TanhKernel.Tanh, TanhKernel.Tanh, static (x, y) => new TanhNode(x, y), static (x, y, tx) => TanhNode.Tangent(x, y, tx));

        /// <summary>
        /// The logistic function 1 / (1 + e^(−a)) of each element, by <see cref="SigmoidKernel"/>: relatively accurate in both
        /// tails (within 1 ulp in float32, 2 ulp in float64), so σ(−100) in float32 is 3.8e-44, not 0; σ(0) = 0.5.
        /// </summary>
        public Tensor Sigmoid()
            => Unary("Sigmoid", a, SigmoidKernel.Sigmoid, SigmoidKernel.Sigmoid, static (x, y) => new SigmoidNode(x, y), static (x, y, tx) => SigmoidNode.Tangent(x, y, tx));

        /// <summary>max(a, 0) elementwise (NaN stays NaN). Its gradient at 0 is 0, as in PyTorch.</summary>
        public Tensor Relu()
            => Unary("Relu", a, static (x, d) => MaxKernel<double>.Run(x, 0.0, d), static (x, d) => MaxKernel<float>.Run(x, 0f, d), static (x, y) => new ReluNode(x, y), static (x, y, tx) => ReluNode.Tangent(x, y, tx));

        /// <summary>
        /// The error function erf(a) = 2/√π ∫₀ᵃ e^(−t²) dt of each element: float64 by MathNet.Numerics' implementation,
        /// float32 by the vectorised rational approximation of <see cref="ErfKernel"/> (within 2 units in the last place).
        /// </summary>
        public Tensor Erf()
            => Unary("Erf", a, static (x, d) => Map(x, d, MathNet.Numerics.SpecialFunctions.Erf), ErfKernel.Erf, static (x, _) => new ErfNode(x), static (x, y, tx) => ErfNode.Tangent(x, y, tx));

        /// <summary>
        /// A copy converted to <paramref name="dtype"/>; differentiable between float types (the gradient is converted back).
        /// Floats become int64 by truncation toward zero, as <c>torch.Tensor.to(torch.int64)</c>; a NaN, an infinity or a value
        /// outside int64's range has no int64 value and is refused (PyTorch leaves the result undefined).
        /// </summary>
        /// <exception cref="ArgumentException">Converting to int64 a float element that is NaN, infinite or outside [−2⁶³, 2⁶³).</exception>
        public Tensor To(DType dtype)
        {
            if (a.DType == dtype)
            {
                return a;
            }

            if (dtype == DType.Int64)
            {
                for (var i = 0; i < a.ElementCount; i++)
                {
                    var v = a.GetFlat(i);
                    if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18))
                    {
                        throw new ArgumentException(
                            $"To: element {i} (flat index) of the {a.DType.Name()} tensor of shape {a.Shape} is {v.ToString(System.Globalization.CultureInfo.InvariantCulture)}, which has no int64 value (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused).",
                            nameof(dtype));
                    }
                }
            }

            var y = Tensor.Uninitialized(a.Shape, dtype);
            for (var i = 0; i < a.ElementCount; i++)
            {
                y.SetFlat(i, a.GetFlat(i));
            }

            if (dtype.IsFloatingPoint() && Tensor.ShouldRecord(a))
            {
                y.SetGradFn(new ToNode(a));
            }

            return y;
        }
    }

    extension(Tensor)
    {
        /// <summary>a + b with broadcasting.</summary>
        public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);

        /// <summary>a + s.</summary>
        public static Tensor operator +(Tensor a, double s) => WithScalar<AddKernel<double>, AddKernel<float>>(ScalarOp.Add, a, s, scalarFirst: false);

        /// <summary>s + a.</summary>
        public static Tensor operator +(double s, Tensor a) => WithScalar<AddKernel<double>, AddKernel<float>>(ScalarOp.Add, a, s, scalarFirst: true);

        /// <summary>a − b with broadcasting.</summary>
        public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);

        /// <summary>a − s.</summary>
        public static Tensor operator -(Tensor a, double s) => WithScalar<SubKernel<double>, SubKernel<float>>(ScalarOp.Sub, a, s, scalarFirst: false);

        /// <summary>s − a.</summary>
        public static Tensor operator -(double s, Tensor a) => WithScalar<SubKernel<double>, SubKernel<float>>(ScalarOp.Sub, a, s, scalarFirst: true);

        /// <summary>a ⊙ b with broadcasting.</summary>
        public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);

        /// <summary>a · s.</summary>
        public static Tensor operator *(Tensor a, double s) => WithScalar<MulKernel<double>, MulKernel<float>>(ScalarOp.Mul, a, s, scalarFirst: false);

        /// <summary>s · a.</summary>
        public static Tensor operator *(double s, Tensor a) => WithScalar<MulKernel<double>, MulKernel<float>>(ScalarOp.Mul, a, s, scalarFirst: true);

        /// <summary>a / b with broadcasting.</summary>
        public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);

        /// <summary>a / s.</summary>
        public static Tensor operator /(Tensor a, double s) => WithScalar<DivKernel<double>, DivKernel<float>>(ScalarOp.Div, a, s, scalarFirst: false);

        /// <summary>s / a.</summary>
        public static Tensor operator /(double s, Tensor a) => WithScalar<DivKernel<double>, DivKernel<float>>(ScalarOp.Div, a, s, scalarFirst: true);

        /// <summary>−a.</summary>
        public static Tensor operator -(Tensor a) => a.Neg();
    }

    /// <summary>
    /// Runs a broadcasting kernel and, when recording, attaches the node made by <paramref name="node"/>. In forward mode
    /// with nothing to record, the forward rule <paramref name="tangent"/> (the one the node's <see cref="Node.Jvp"/> runs)
    /// gives the output's tangent without a node.
    /// </summary>
    private static Tensor Binary<TD, TF>(string op, Tensor a, Tensor b, Func<Tensor, Tensor, Node> node, BinaryTangent tangent)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        var y = Dispatch.Binary<TD, TF>(op, a, b);
        ThreadState? state = null;
        var level = ForwardMode.s_openLevels != 0 ? ForwardMode.LevelWithoutNode(a, b, out state) : 0;
        if (level != 0)
        {
            ForwardMode.AttachWithoutNode(y, op, state!, level, new BinaryRule(a, b, y, tangent));
        }
        else if (Tensor.ShouldRecord(a, b))
        {
            y.SetGradFn(node(a, b));
        }

        return y;
    }

    /// <summary>
    /// Runs a unary kernel and, when recording, attaches the node made from (input, output); in forward mode with nothing
    /// to record, <paramref name="tangent"/> gives the output's tangent without a node (see <see cref="Binary"/>).
    /// </summary>
    private static Tensor Unary(string op, Tensor x, SpanMap<double> f64, SpanMap<float> f32, Func<Tensor, Tensor, Node> node, UnaryTangent tangent)
    {
        var y = Dispatch.Unary(op, x, f64, f32);
        ThreadState? state = null;
        var level = ForwardMode.s_openLevels != 0 ? ForwardMode.LevelWithoutNode(x, null, out state) : 0;
        if (level != 0)
        {
            ForwardMode.AttachWithoutNode(y, op, state!, level, new UnaryRule(x, y, tangent));
        }
        else if (Tensor.ShouldRecord(x))
        {
            y.SetGradFn(node(x, y));
        }

        return y;
    }

    /// <summary>
    /// a ⊕ s (or s ⊕ a when <paramref name="scalarFirst"/>) for a number s. It gives the values, the node name and the two
    /// inputs of <c>a ⊕ Tensor.Scalar(s)</c> (the number is an input with no edge, as PyTorch wraps a Python number), but
    /// makes no tensor for the number, and its node saves only what its rule needs.
    /// </summary>
    private static Tensor WithScalar<TD, TF>(ScalarOp op, Tensor a, double s, bool scalarFirst)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        Dispatch.RequireFloat(a, ScalarOpName(op));
        var y = Dispatch.Scalar<TD, TF>(a, s, scalarFirst);
        ThreadState? state = null;
        var level = ForwardMode.s_openLevels != 0 ? ForwardMode.LevelWithoutNode(a, null, out state) : 0;
        if (level != 0)
        {
            // Forward mode with nothing to record: the node's forward rule as a function, no node (see ForwardMode.AttachWithoutNode).
            ForwardMode.AttachWithoutNode(y, ScalarOpName(op), state!, level, new NumberRule(op, a, s, scalarFirst, y));
        }
        else if (Tensor.ShouldRecord(a))
        {
            y.SetGradFn(op switch
            {
                ScalarOp.Add => new AddNumberNode(a, s, scalarFirst),
                ScalarOp.Sub => new SubNumberNode(a, s, scalarFirst),
                ScalarOp.Mul => new MulNumberNode(a, s, scalarFirst),
                _ => new DivNumberNode(a, s, scalarFirst),
            });
        }

        return y;
    }

    /// <summary>A binary operator's rule bound to one operation, for <see cref="ForwardMode.AttachWithoutNode"/>.</summary>
    private readonly struct BinaryRule(Tensor a, Tensor b, Tensor y, BinaryTangent rule) : IForwardRule
    {
        public Tensor? Tangent(int level) => rule(a, b, a.TangentAt(level), b.TangentAt(level), y);
    }

    /// <summary>A unary operator's rule bound to one operation (its input carries a tangent of the level).</summary>
    private readonly struct UnaryRule(Tensor x, Tensor y, UnaryTangent rule) : IForwardRule
    {
        public Tensor? Tangent(int level) => rule(x, y, x.TangentAt(level)!);
    }

    /// <summary>The rule of a ⊕ s (or s ⊕ a) for a number s, bound to one operation (a carries a tangent of the level).</summary>
    private readonly struct NumberRule(ScalarOp op, Tensor a, double s, bool scalarFirst, Tensor y) : IForwardRule
    {
        public Tensor? Tangent(int level)
        {
            var ta = a.TangentAt(level)!;
            return op switch
            {
                ScalarOp.Add => AddNumberNode.Tangent(ta),
                ScalarOp.Sub => SubNumberNode.Tangent(ta, scalarFirst),
                ScalarOp.Mul => MulNumberNode.Tangent(ta, s),
                _ => DivNumberNode.Tangent(a, s, scalarFirst, ta, y),
            };
        }
    }

    private static string ScalarOpName(ScalarOp op) => op switch { ScalarOp.Add => "Add", ScalarOp.Sub => "Sub", ScalarOp.Mul => "Mul", _ => "Div" };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Map<T>(ReadOnlySpan<T> x, Span<T> y, Func<T, T> f)
    {
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = f(x[i]);
        }
    }

    /// <summary>1 where x &gt; 0, −1 where x &lt; 0, +0 at +0 and at −0 (as PyTorch's sgn), NaN stays NaN; a constant, not recorded.</summary>
    internal static Tensor SignMask(Tensor x) => Dispatch.Unary("Abs", x, SignOf, SignOf);

    /// <summary>1 where x &gt; 0, else 0; a constant, not recorded.</summary>
    internal static Tensor PositiveMask(Tensor x) => Dispatch.Unary("Relu", x, PositiveOf, PositiveOf);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SignOf<T>(ReadOnlySpan<T> x, Span<T> y)
        where T : IFloatingPointIeee754<T>
    {
        for (var i = 0; i < x.Length; i++)
        {
            var v = x[i];
            y[i] = v > T.Zero ? T.One : v < T.Zero ? T.NegativeOne : T.IsNaN(v) ? v : T.Zero;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PositiveOf<T>(ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (var w = Vector<T>.Count; i <= x.Length - w; i += w)
            {
                ReluRuleKernel<T>.Mask(new Vector<T>(x[i..])).CopyTo(y[i..]);
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] = ReluRuleKernel<T>.Mask(x[i]);
        }
    }

    /// <summary>1 where a == b (after broadcasting), else 0; a constant, not recorded.</summary>
    internal static Tensor EqualMask(Tensor a, Tensor b) => Dispatch.Binary<EqKernel<double>, EqKernel<float>>("Equal", a, b);

    [Rule("Add", Forward = "y = a + b", Backward = "da = g, db = g", Tangent = "ẏ = ȧ + ḃ")]
    private sealed class AddNode(Tensor a, Tensor b) : Node("Add", a, b)
    {
        private readonly Shape _sa = a.Shape, _sb = b.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g.SumTo(_sa);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = g.SumTo(_sb);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, null, t[0], t[1], y);

        /// <summary>The forward rule ẏ = ȧ + ḃ.</summary>
        internal static Tensor? Tangent(Tensor? a, Tensor? b, Tensor? ta, Tensor? tb, Tensor y) => Tangents.Sum(ta, tb, y);
    }

    [Rule("Sub", Forward = "y = a − b", Backward = "da = g, db = −g", Tangent = "ẏ = ȧ − ḃ")]
    private sealed class SubNode(Tensor a, Tensor b) : Node("Sub", a, b)
    {
        private readonly Shape _sa = a.Shape, _sb = b.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g.SumTo(_sa);
            }

            if (NeedsInputGrad(1))
            {
                // Summed before it is negated: a broadcast b gets its gradient without a negated copy of g (the same
                // values, as negation is exact).
                grads[1] = g.SumTo(_sb).Neg();
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, null, t[0], t[1], y);

        /// <summary>The forward rule ẏ = ȧ − ḃ.</summary>
        internal static Tensor? Tangent(Tensor? a, Tensor? b, Tensor? ta, Tensor? tb, Tensor y) => Tangents.Difference(ta, tb, y);
    }

    [Rule("Mul", Forward = "y = a ⊙ b", Backward = "da = g ⊙ b, db = g ⊙ a", Saves = "a, b", Tangent = "ẏ = ȧ ⊙ b + a ⊙ ḃ")]
    private sealed class MulNode : Node
    {
        public MulNode(Tensor a, Tensor b)
            : base("Mul", a, b) => Save(a, b);

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(0);
            var b = Saved(1);
            if (NeedsInputGrad(0))
            {
                grads[0] = (g * b).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (g * a).SumTo(b.Shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(Saved(0), Saved(1), t[0], t[1], y);

        /// <summary>The forward rule ẏ = ȧ ⊙ b + a ⊙ ḃ.</summary>
        internal static Tensor? Tangent(Tensor? a, Tensor? b, Tensor? ta, Tensor? tb, Tensor y)
            => Tangents.Sum(ta is not null ? ta * b! : null, tb is not null ? a! * tb : null, y);
    }

    [Rule("Div", Forward = "y = a / b", Backward = "da = g / b, db = −g ⊙ a / b²", Saves = "a, b", Tangent = "ẏ = (ȧ − y ⊙ ḃ) / b")]
    private sealed class DivNode : Node
    {
        public DivNode(Tensor a, Tensor b)
            : base("Div", a, b) => Save(a, b);

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(0);
            var b = Saved(1);
            if (NeedsInputGrad(0))
            {
                grads[0] = (g / b).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                // −(Σ g ⊙ a / b²): the same values as summing −g ⊙ a / b² (negation is exact), without a negated copy of g.
                grads[1] = (g * a / (b * b)).SumTo(b.Shape).Neg();
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(1), t[0], t[1], y);

        /// <summary>The forward rule ẏ = (ȧ − y ⊙ ḃ) / b.</summary>
        internal static Tensor? Tangent(Tensor? a, Tensor? b, Tensor? ta, Tensor? tb, Tensor y)
            => Tangents.Difference(ta, tb is not null ? y * tb : null, y) is { } d ? d / b! : null;
    }

    private enum ScalarOp
    {
        Add,
        Sub,
        Mul,
        Div,
    }

    // A number operand c is the input with no edge (a or b): only the tensor's gradient is computed, and c is kept as a
    // number. The rules need not know on which side the number is: its input has no edge, so its gradient is never needed.
    [Rule("Add", Variant = "number", Forward = "y = a + b, a or b a number", Backward = "da = g, db = g", Tangent = "ẏ = ȧ + ḃ (the number's is 0)")]
    private sealed class AddNumberNode(Tensor a, double c, bool numberFirst) : Node("Add", a, numberFirst ? 0 : 1, c)
    {
        protected override string RuleVariant => "number";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = g;
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent((t[0] ?? t[1])!);

        /// <summary>The forward rule ẏ = ȧ (the number's tangent is 0).</summary>
        internal static Tensor Tangent(Tensor ta) => ta;
    }

    [Rule("Sub", Variant = "number", Forward = "y = a − b, a or b a number", Backward = "da = g, db = −g", Tangent = "ẏ = ȧ − ḃ (the number's is 0)")]
    private sealed class SubNumberNode(Tensor a, double c, bool numberFirst) : Node("Sub", a, numberFirst ? 0 : 1, c)
    {
        protected override string RuleVariant => "number";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = g.Neg();
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent((t[0] ?? t[1])!, numberFirst);

        /// <summary>The forward rule: ẏ = ȧ for a − c, −ȧ for c − a.</summary>
        internal static Tensor Tangent(Tensor ta, bool numberFirst) => numberFirst ? ta.Neg() : ta;
    }

    [Rule("Mul", Variant = "number", Forward = "y = a ⊙ b, a or b a number", Backward = "da = g ⊙ b, db = g ⊙ a", Tangent = "ẏ = c ⊙ ẋ, c the number")]
    private sealed class MulNumberNode(Tensor a, double c, bool numberFirst) : Node("Mul", a, numberFirst ? 0 : 1, c)
    {
        private readonly double _c = c;

        protected override string RuleVariant => "number";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g * _c;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = g * _c;
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent((t[0] ?? t[1])!, _c);

        /// <summary>The forward rule ẏ = c ⊙ ȧ.</summary>
        internal static Tensor Tangent(Tensor ta, double c) => ta * c;
    }

    // Only c / b reads its tensor input back.
    [Rule("Div", Variant = "number divisor", Forward = "y = a / b, b a number", Backward = "da = g / b, db = −g ⊙ a / b²", Tangent = "ẏ = ȧ / b")]
    [Rule("Div", Variant = "number dividend", Forward = "y = a / b, a a number", Backward = "da = g / b, db = −g ⊙ a / b²", Saves = "b", Tangent = "ẏ = −y ⊙ ḃ / b")]
    private sealed class DivNumberNode : Node
    {
        private readonly double _c;
        private readonly bool _numberFirst;

        public DivNumberNode(Tensor a, double c, bool numberFirst)
            : base("Div", a, numberFirst ? 0 : 1, c)
        {
            _c = c;
            _numberFirst = numberFirst;
            if (numberFirst)
            {
                Save(a);
            }
        }

        protected override string RuleVariant => _numberFirst ? "number dividend" : "number divisor";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g / _c;
            }

            if (NeedsInputGrad(1))
            {
                // g ⊙ (−c) / b²: the values of the tensor rule −(g ⊙ a / (b ⊙ b)), negation being exact, without a
                // negated copy of g.
                var b = Saved(0);
                grads[1] = g * -_c / (b * b);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => _numberFirst ? Tangent(Saved(0), _c, true, t[1]!, y) : Tangent(null, _c, false, t[0]!, y);

        /// <summary>The forward rule: ẏ = ȧ / c for a / c, −y ⊙ ȧ / a for c / a.</summary>
        internal static Tensor Tangent(Tensor? a, double c, bool numberFirst, Tensor ta, Tensor y)
            => numberFirst ? -(y * ta) / a! : ta / c;
    }

    [Rule("Neg", Forward = "y = −x", Backward = "dx = −g", Tangent = "ẏ = −ẋ")]
    private sealed class NegNode(Tensor x) : Node("Neg", x)
    {
        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.Neg();

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, y, t[0]!);

        /// <summary>The forward rule ẏ = −ẋ.</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx.Neg();
    }

    [Rule("Exp", Forward = "y = exp(x)", Backward = "dx = g ⊙ y", Saves = "y", Tangent = "ẏ = ẋ ⊙ y")]
    private sealed class ExpNode : Node
    {
        public ExpNode(Tensor x, Tensor y)
            : base("Exp", x) => Save(y);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g * Saved(0);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(0), t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ y.</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx * y;
    }

    [Rule("Log", Forward = "y = log(x)", Backward = "dx = g / x", Saves = "x", Tangent = "ẏ = ẋ / x")]
    private sealed class LogNode : Node
    {
        public LogNode(Tensor x)
            : base("Log", x) => Save(x);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g / Saved(0);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(Saved(0), y, t[0]!);

        /// <summary>The forward rule ẏ = ẋ / x.</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx / x!;
    }

    [Rule("Pow", Forward = "y = x^p, p a number", Backward = "dx = g ⊙ p·x^(p − 1), 0 when p = 0", Saves = "x", Tangent = "ẏ = ẋ ⊙ p·x^(p − 1), 0 when p = 0")]
    private sealed class PowNode : Node
    {
        private readonly double _p;

        public PowNode(Tensor x, double p)
            : base("Pow", x)
        {
            _p = p;
            Save(x);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            grads[0] = _p == 0 ? Tensor.ZerosLike(x) : g * (x.Pow(_p - 1) * _p);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => _p == 0 ? null : t[0]! * (Saved(0).Pow(_p - 1) * _p);
    }

    [Rule("Sqrt", Forward = "y = √x", Backward = "dx = g / (2y)", Saves = "y", Tangent = "ẏ = ẋ / (2y)")]
    private sealed class SqrtNode : Node
    {
        public SqrtNode(Tensor x, Tensor y)
            : base("Sqrt", x) => Save(y);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g / (2.0 * Saved(0));

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(0), t[0]!);

        /// <summary>The forward rule ẏ = ẋ / (2y).</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx / (2.0 * y);
    }

    [Rule("Abs", Forward = "y = |x|", Backward = "dx = g ⊙ sign(x)", Saves = "x", Tangent = "ẏ = ẋ ⊙ sign(x)")]
    private sealed class AbsNode : Node
    {
        public AbsNode(Tensor x)
            : base("Abs", x) => Save(x);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g * SignMask(Saved(0));

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(Saved(0), y, t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ sign(x).</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx * SignMask(x!);
    }

    [Rule("Tanh", Forward = "y = tanh(x)", Backward = "dx = g ⊙ (1 − y²)", Saves = "y", Tangent = "ẏ = ẋ ⊙ (1 − y²)")]
    private sealed class TanhNode : Node
    {
        public TanhNode(Tensor x, Tensor y)
            : base("Tanh", x) => Save(y);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = Derivative(g, Saved(0));

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(0), t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ (1 − y²).</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => Derivative(tx, y);

        /// <summary>g ⊙ (1 − y²) for a gradient or a tangent g: on the tape when it must be, else in one kernel (same values).</summary>
        private static Tensor Derivative(Tensor g, Tensor y)
            => Tensor.ShouldRecord(g, y) ? g * (1.0 - (y * y)) : Dispatch.Binary<TanhRuleKernel<double>, TanhRuleKernel<float>>("Tanh", g, y);
    }

    /// <summary>g ⊙ (1 − y²), rounded as the composed form: y·y, then 1 − that, then g times that.</summary>
    private readonly struct TanhRuleKernel<T> : IRuleKernel<T>
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        public static T Apply(T g, T y) => g * (T.One - (y * y));

        public static Vector256<T> Apply(Vector256<T> g, Vector256<T> y) => g * (Vector256<T>.One - (y * y));

        public static Vector<T> Apply(Vector<T> g, Vector<T> y) => g * (Vector<T>.One - (y * y));

        public static void Run(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, TanhRuleKernel<T>>(g, y, dst);

        public static void Run(ReadOnlySpan<T> g, T y, Span<T> dst) => MulKernel<T>.Run(g, T.One - (y * y), dst);

        public static void Run(T g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, TanhRuleKernel<T>>(g, y, dst);
    }

    [Rule("Sigmoid", Forward = "y = σ(x) = 1 / (1 + exp(−x))", Backward = "dx = g ⊙ (1 − y) ⊙ y", Saves = "y", Tangent = "ẏ = ẋ ⊙ (1 − y) ⊙ y")]
    private sealed class SigmoidNode : Node
    {
        public SigmoidNode(Tensor x, Tensor y)
            : base("Sigmoid", x) => Save(y);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = Derivative(g, Saved(0));

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(0), t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ (1 − y) ⊙ y.</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => Derivative(tx, y);

        /// <summary>g ⊙ (1 − y) ⊙ y for a gradient or a tangent g: on the tape when it must be, else in one kernel (same values).</summary>
        private static Tensor Derivative(Tensor g, Tensor y)
            => Tensor.ShouldRecord(g, y) ? g * (1.0 - y) * y : Dispatch.Binary<SigmoidRuleKernel<double>, SigmoidRuleKernel<float>>("Sigmoid", g, y);
    }

    /// <summary>g ⊙ (1 − y) ⊙ y, rounded as the composed form: 1 − y, then g times that, then times y.</summary>
    private readonly struct SigmoidRuleKernel<T> : IRuleKernel<T>
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        public static T Apply(T g, T y) => g * (T.One - y) * y;

        public static Vector256<T> Apply(Vector256<T> g, Vector256<T> y) => g * (Vector256<T>.One - y) * y;

        public static Vector<T> Apply(Vector<T> g, Vector<T> y) => g * (Vector<T>.One - y) * y;

        public static void Run(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, SigmoidRuleKernel<T>>(g, y, dst);

        public static void Run(ReadOnlySpan<T> g, T y, Span<T> dst)
        {
            // y is one number here: g ⊙ (1 − y), then that ⊙ y in place, rounded as the composed form.
            MulKernel<T>.Run(g, T.One - y, dst);
            MulKernel<T>.Run(dst, y, dst);
        }

        public static void Run(T g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, SigmoidRuleKernel<T>>(g, y, dst);
    }

    [Rule("Relu", Forward = "y = max(x, 0)", Backward = "dx = g ⊙ [y > 0]", Saves = "y", Tangent = "ẏ = ẋ ⊙ [y > 0]")]
    private sealed class ReluNode : Node
    {
        public ReluNode(Tensor x, Tensor y)
            : base("Relu", x) => Save(y);

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = Derivative(g, Saved(0));

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(null, Saved(0), t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ [y > 0].</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => Derivative(tx, y);

        /// <summary>g ⊙ [y > 0] for a gradient or a tangent g: on the tape when it must be, else in one kernel (same values).</summary>
        private static Tensor Derivative(Tensor g, Tensor y)
            => Tensor.ShouldRecord(g, y) ? g * PositiveMask(y) : Dispatch.Binary<ReluRuleKernel<double>, ReluRuleKernel<float>>("Relu", g, y);
    }

    /// <summary>g ⊙ [y > 0], rounded as the composed form: g times a mask of ones and zeros (so 0 · NaN is still NaN).</summary>
    private readonly struct ReluRuleKernel<T> : IRuleKernel<T>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        /// <summary>[y > 0]: 1 or 0 (0 for NaN), the mask ReLU's rule multiplies by.</summary>
        public static T Mask(T y) => y > T.Zero ? T.One : T.Zero;

        /// <summary>[y > 0] lane by lane.</summary>
        public static Vector<T> Mask(Vector<T> y) => Vector.ConditionalSelect(Vector.GreaterThan(y, Vector<T>.Zero), Vector<T>.One, Vector<T>.Zero);

        public static T Apply(T g, T y) => g * Mask(y);

        public static Vector256<T> Apply(Vector256<T> g, Vector256<T> y)
            => g * Vector256.ConditionalSelect(Vector256.GreaterThan(y, Vector256<T>.Zero), Vector256<T>.One, Vector256<T>.Zero);

        public static Vector<T> Apply(Vector<T> g, Vector<T> y) => g * Mask(y);

        public static void Run(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, ReluRuleKernel<T>>(g, y, dst);

        public static void Run(ReadOnlySpan<T> g, T y, Span<T> dst) => MulKernel<T>.Run(g, Mask(y), dst);

        public static void Run(T g, ReadOnlySpan<T> y, Span<T> dst) => Stream256.Rule<T, ReluRuleKernel<T>>(g, y, dst);
    }

    [Rule("Erf", Forward = "y = erf(x)", Backward = "dx = g ⊙ 2/√π · exp(−x²)", Saves = "x", Tangent = "ẏ = ẋ ⊙ 2/√π · exp(−x²)")]
    private sealed class ErfNode : Node
    {
        public ErfNode(Tensor x)
            : base("Erf", x) => Save(x);

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            grads[0] = g * ((x * x).Neg().Exp() * (2.0 / Math.Sqrt(Math.PI)));
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => Tangent(Saved(0), y, t[0]!);

        /// <summary>The forward rule ẏ = ẋ ⊙ 2/√π · exp(−x²).</summary>
        internal static Tensor? Tangent(Tensor? x, Tensor y, Tensor tx) => tx * ((x! * x!).Neg().Exp() * (2.0 / Math.Sqrt(Math.PI)));
    }

    private readonly struct PowWork(Tensor x, Tensor y, double exponent) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => TensorPrimitives.Pow(x.Span<T>(), T.CreateTruncating(exponent), y.Span<T>());
    }

    [Rule("To", Forward = "y = x converted to another float dtype", Backward = "dx = g converted back to x's dtype", Tangent = "ẏ = ẋ converted to y's dtype")]
    private sealed class ToNode(Tensor x) : Node("To", x)
    {
        private readonly DType _from = x.DType;

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.To(_from);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0]!.To(y.DType);
    }
}
