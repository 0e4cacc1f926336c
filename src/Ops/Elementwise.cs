using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Elementwise operators: add, sub, mul, div with NumPy broadcasting (and scalar overloads on either side), and the
/// unary neg, exp, log, pow, sqrt, abs, tanh, sigmoid, relu; plus the differentiable dtype conversion.
/// Each forward kernel is followed by its backward rule, the formula in the comment above it.
/// </summary>
public static class Elementwise
{
    extension(Tensor a)
    {
        /// <summary>a + b, broadcasting both to a common shape.</summary>
        public Tensor Add(Tensor b)
            => Binary<AddKernel<double>, AddKernel<float>>("Add", a, b, static (a, b) => new AddNode(a, b));

        /// <summary>a − b, broadcasting both to a common shape.</summary>
        public Tensor Sub(Tensor b)
            => Binary<SubKernel<double>, SubKernel<float>>("Sub", a, b, static (a, b) => new SubNode(a, b));

        /// <summary>a ⊙ b (elementwise product), broadcasting both to a common shape.</summary>
        public Tensor Mul(Tensor b)
            => Binary<MulKernel<double>, MulKernel<float>>("Mul", a, b, static (a, b) => new MulNode(a, b));

        /// <summary>a / b elementwise, broadcasting both to a common shape. Division by zero follows IEEE (±inf, NaN for 0/0).</summary>
        public Tensor Div(Tensor b)
            => Binary<DivKernel<double>, DivKernel<float>>("Div", a, b, static (a, b) => new DivNode(a, b));

        /// <summary>−a.</summary>
        public Tensor Neg()
            => Unary("Neg", a, TensorPrimitives.Negate, TensorPrimitives.Negate, static (x, _) => new NegNode(x));

        /// <summary>e to the power of each element.</summary>
        public Tensor Exp()
            => Unary("Exp", a, TensorPrimitives.Exp, TensorPrimitives.Exp, static (x, y) => new ExpNode(x, y));

        /// <summary>The natural logarithm of each element (NaN for negative, −inf for zero, as IEEE).</summary>
        public Tensor Log()
            => Unary("Log", a, TensorPrimitives.Log, TensorPrimitives.Log, static (x, _) => new LogNode(x));

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
            => Unary("Sqrt", a, TensorPrimitives.Sqrt, TensorPrimitives.Sqrt, static (x, y) => new SqrtNode(x, y));

        /// <summary>|a| elementwise. Its gradient at 0 is 0, as in PyTorch.</summary>
        public Tensor Abs()
            => Unary("Abs", a, TensorPrimitives.Abs, TensorPrimitives.Abs, static (x, _) => new AbsNode(x));

        /// <summary>The hyperbolic tangent of each element.</summary>
        public Tensor Tanh()
            => Unary("Tanh", a, TensorPrimitives.Tanh, TensorPrimitives.Tanh, static (x, y) => new TanhNode(x, y));

        /// <summary>The logistic function 1 / (1 + e^(−a)) of each element.</summary>
        public Tensor Sigmoid()
            => Unary("Sigmoid", a, TensorPrimitives.Sigmoid, TensorPrimitives.Sigmoid, static (x, y) => new SigmoidNode(x, y));

        /// <summary>max(a, 0) elementwise (NaN stays NaN). Its gradient at 0 is 0, as in PyTorch.</summary>
        public Tensor Relu()
            => Unary("Relu", a, static (x, d) => TensorPrimitives.Max(x, 0.0, d), static (x, d) => TensorPrimitives.Max(x, 0f, d), static (x, y) => new ReluNode(x, y));

        /// <summary>The error function erf(a) = 2/√π ∫₀ᵃ e^(−t²) dt of each element (MathNet.Numerics' implementation).</summary>
        public Tensor Erf()
            => Unary("Erf", a, static (x, d) => Map(x, d, MathNet.Numerics.SpecialFunctions.Erf), static (x, d) => Map(x, d, v => (float)MathNet.Numerics.SpecialFunctions.Erf(v)), static (x, _) => new ErfNode(x));

        /// <summary>A copy converted to <paramref name="dtype"/>; differentiable between float types (the gradient is converted back).</summary>
        public Tensor To(DType dtype)
        {
            if (a.DType == dtype)
            {
                return a;
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

    /// <summary>Runs a broadcasting kernel and, when recording, attaches the node made by <paramref name="node"/>.</summary>
    private static Tensor Binary<TD, TF>(string op, Tensor a, Tensor b, Func<Tensor, Tensor, Node> node)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        var y = Dispatch.Binary<TD, TF>(op, a, b);
        if (Tensor.ShouldRecord(a, b))
        {
            y.SetGradFn(node(a, b));
        }

        return y;
    }

    /// <summary>Runs a unary kernel and, when recording, attaches the node made from (input, output).</summary>
    private static Tensor Unary(string op, Tensor x, SpanMap<double> f64, SpanMap<float> f32, Func<Tensor, Tensor, Node> node)
    {
        var y = Dispatch.Unary(op, x, f64, f32);
        if (Tensor.ShouldRecord(x))
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
        Dispatch.RequireFloat(a, "Scalar arithmetic");
        var y = Dispatch.Scalar<TD, TF>(a, s, scalarFirst);
        if (Tensor.ShouldRecord(a))
        {
            y.SetGradFn(new ScalarNode(op, a, s, scalarFirst));
        }

        return y;
    }

    private static void Map<T>(ReadOnlySpan<T> x, Span<T> y, Func<T, T> f)
    {
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = f(x[i]);
        }
    }

    /// <summary>1 where x &gt; 0, −1 where x &lt; 0, 0 at 0 (NaN stays NaN); a constant, not recorded.</summary>
    internal static Tensor SignMask(Tensor x) => Constant(x, static v => v > 0 ? 1 : v < 0 ? -1 : v);

    /// <summary>1 where x &gt; 0, else 0; a constant, not recorded.</summary>
    internal static Tensor PositiveMask(Tensor x) => Constant(x, static v => v > 0 ? 1 : 0);

    /// <summary>1 where a == b (after broadcasting), else 0; a constant, not recorded.</summary>
    internal static Tensor EqualMask(Tensor a, Tensor b) => Dispatch.Binary<EqKernel<double>, EqKernel<float>>("Equal", a, b);

    private static Tensor Constant(Tensor x, Func<double, double> f)
    {
        var y = Tensor.Uninitialized(x.Shape, x.DType);
        for (var i = 0; i < x.ElementCount; i++)
        {
            y.SetFlat(i, f(x.GetFlat(i)));
        }

        return y;
    }

    // y = a + b            da = g, db = g   (each summed back to its input's shape)
    private sealed class AddNode(Tensor a, Tensor b) : Node("Add", a, b)
    {
        private readonly Shape _sa = a.Shape, _sb = b.Shape;

        public override string Formula => "da = g, db = g";

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
    }

    // y = a − b            da = g, db = −g
    private sealed class SubNode(Tensor a, Tensor b) : Node("Sub", a, b)
    {
        private readonly Shape _sa = a.Shape, _sb = b.Shape;

        public override string Formula => "da = g, db = −g";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g.SumTo(_sa);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = g.Neg().SumTo(_sb);
            }
        }
    }

    // y = a ⊙ b            da = g ⊙ b, db = g ⊙ a
    private sealed class MulNode(Tensor a, Tensor b) : Node("Mul", a, b)
    {
        private Tensor? _a = a, _b = b;

        public override string Formula => "da = g ⊙ b, db = g ⊙ a";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(_a);
            var b = Saved(_b);
            if (NeedsInputGrad(0))
            {
                grads[0] = (g * b).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (g * a).SumTo(b.Shape);
            }
        }

        protected internal override void Release()
        {
            _a = _b = null;
            base.Release();
        }
    }

    // y = a / b            da = g / b, db = −g ⊙ a / b²
    private sealed class DivNode(Tensor a, Tensor b) : Node("Div", a, b)
    {
        private Tensor? _a = a, _b = b;

        public override string Formula => "da = g / b, db = −g ⊙ a / b²";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(_a);
            var b = Saved(_b);
            if (NeedsInputGrad(0))
            {
                grads[0] = (g / b).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (-g * a / (b * b)).SumTo(b.Shape);
            }
        }

        protected internal override void Release()
        {
            _a = _b = null;
            base.Release();
        }
    }

    private enum ScalarOp
    {
        Add,
        Sub,
        Mul,
        Div,
    }

    // a ⊕ c or c ⊕ a for a number c (the input at the number's place has no edge):
    //   a + c, c + a:  da = g        a − c: da = g     c − a: da = −g
    //   a · c, c · a:  da = g · c    a / c: da = g / c   c / a: da = −g · c / a²
    private sealed class ScalarNode : Node
    {
        private readonly ScalarOp _op;
        private readonly double _c;
        private readonly bool _scalarFirst;

        // Only c / b reads its tensor input back.
        private Tensor? _b;

        public ScalarNode(ScalarOp op, Tensor a, double c, bool scalarFirst)
            : base(NameOf(op), a, scalarFirst ? 0 : 1, c)
        {
            _op = op;
            _c = c;
            _scalarFirst = scalarFirst;
            _b = op == ScalarOp.Div && scalarFirst ? a : null;
        }

        public override string Formula => _op switch
        {
            ScalarOp.Add => "da = g, db = g",
            ScalarOp.Sub => "da = g, db = −g",
            ScalarOp.Mul => "da = g ⊙ b, db = g ⊙ a",
            _ => "da = g / b, db = −g ⊙ a / b²",
        };

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var i = _scalarFirst ? 1 : 0;
            if (!NeedsInputGrad(i))
            {
                return;
            }

            grads[i] = _op switch
            {
                ScalarOp.Add => g,
                ScalarOp.Sub => _scalarFirst ? g.Neg() : g,
                ScalarOp.Mul => g * _c,
                _ when !_scalarFirst => g / _c,
                _ => DivRule(g, _c, Saved(_b)),
            };
        }

        private static string NameOf(ScalarOp op) => op switch
        {
            ScalarOp.Add => "Add",
            ScalarOp.Sub => "Sub",
            ScalarOp.Mul => "Mul",
            _ => "Div",
        };

        // d(c / b)/db = −g ⊙ c / b², in the order of operations of the tensor rule −g ⊙ a / (b ⊙ b).
        private static Tensor DivRule(Tensor g, double c, Tensor b) => -g * c / (b * b);

        protected internal override void Release()
        {
            _b = null;
            base.Release();
        }
    }

    // y = −x               dx = −g
    private sealed class NegNode(Tensor x) : Node("Neg", x)
    {
        public override string Formula => "dx = −g";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.Neg();
    }

    // y = exp(x)           dx = g ⊙ y
    private sealed class ExpNode(Tensor x, Tensor y) : Node("Exp", x)
    {
        private Tensor? _y = y;

        public override string Formula => "dx = g ⊙ y";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g * Saved(_y);

        protected internal override void Release()
        {
            _y = null;
            base.Release();
        }
    }

    // y = log(x)           dx = g / x
    private sealed class LogNode(Tensor x) : Node("Log", x)
    {
        private Tensor? _x = x;

        public override string Formula => "dx = g / x";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g / Saved(_x);

        protected internal override void Release()
        {
            _x = null;
            base.Release();
        }
    }

    // y = x^p              dx = g ⊙ p·x^(p−1)   (0 when p = 0)
    private sealed class PowNode(Tensor x, double p) : Node("Pow", x)
    {
        private Tensor? _x = x;

        public override string Formula => $"dx = g ⊙ {p}·x^({p} − 1)";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(_x);
            grads[0] = p == 0 ? Tensor.ZerosLike(x) : g * (x.Pow(p - 1) * p);
        }

        protected internal override void Release()
        {
            _x = null;
            base.Release();
        }
    }

    // y = √x               dx = g / (2y)
    private sealed class SqrtNode(Tensor x, Tensor y) : Node("Sqrt", x)
    {
        private Tensor? _y = y;

        public override string Formula => "dx = g / (2y)";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g / (2.0 * Saved(_y));

        protected internal override void Release()
        {
            _y = null;
            base.Release();
        }
    }

    // y = |x|              dx = g ⊙ sign(x)
    private sealed class AbsNode(Tensor x) : Node("Abs", x)
    {
        private Tensor? _x = x;

        public override string Formula => "dx = g ⊙ sign(x)";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g * SignMask(Saved(_x));

        protected internal override void Release()
        {
            _x = null;
            base.Release();
        }
    }

    // y = tanh(x)          dx = g ⊙ (1 − y²)
    private sealed class TanhNode(Tensor x, Tensor y) : Node("Tanh", x)
    {
        private Tensor? _y = y;

        public override string Formula => "dx = g ⊙ (1 − y²)";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var y = Saved(_y);
            grads[0] = g * (1.0 - (y * y));
        }

        protected internal override void Release()
        {
            _y = null;
            base.Release();
        }
    }

    // y = σ(x)             dx = g ⊙ (1 − y) ⊙ y
    private sealed class SigmoidNode(Tensor x, Tensor y) : Node("Sigmoid", x)
    {
        private Tensor? _y = y;

        public override string Formula => "dx = g ⊙ (1 − y) ⊙ y";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var y = Saved(_y);
            grads[0] = g * (1.0 - y) * y;
        }

        protected internal override void Release()
        {
            _y = null;
            base.Release();
        }
    }

    // y = max(x, 0)        dx = g ⊙ [y > 0]
    private sealed class ReluNode(Tensor x, Tensor y) : Node("Relu", x)
    {
        private Tensor? _y = y;

        public override string Formula => "dx = g ⊙ [y > 0]";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g * PositiveMask(Saved(_y));

        protected internal override void Release()
        {
            _y = null;
            base.Release();
        }
    }

    // y = erf(x)           dx = g ⊙ 2/√π · exp(−x²)
    private sealed class ErfNode(Tensor x) : Node("Erf", x)
    {
        private Tensor? _x = x;

        public override string Formula => "dx = g ⊙ 2/√π · exp(−x²)";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(_x);
            grads[0] = g * ((x * x).Neg().Exp() * (2.0 / Math.Sqrt(Math.PI)));
        }

        protected internal override void Release()
        {
            _x = null;
            base.Release();
        }
    }

    private readonly struct PowWork(Tensor x, Tensor y, double exponent) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => TensorPrimitives.Pow(x.Span<T>(), T.CreateTruncating(exponent), y.Span<T>());
    }

    // y = convert(x)       dx = convert_back(g)
    private sealed class ToNode(Tensor x) : Node("To", x)
    {
        private readonly DType _from = x.DType;

        public override string Formula => "dx = g converted back to x's dtype";

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.To(_from);
    }
}
