using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Softmax, log-softmax and logsumexp, each twice: a fused operator with its own forward and backward kernels, and a
/// composed form built from primitives (max, sub, exp, sum, div, log) and differentiated by the tape. The fused
/// forms subtract the maximum first, so logits of ±1e4 give no NaN or Inf, −∞ entries get probability 0, and a row
/// that is all −∞ gives NaN (softmax, log-softmax) or −∞ (logsumexp), as in PyTorch.
/// </summary>
public static class SoftmaxOps
{
    extension(Tensor x)
    {
        /// <summary>Fused softmax along <paramref name="dim"/>: y = exp(x − max) / Σ exp(x − max).</summary>
        /// <remarks>The backward rule (saving only y) is in docs/rules.md.</remarks>
        public Tensor Softmax(int dim) => Fused(x, dim, log: false);

        /// <summary>Fused log-softmax along <paramref name="dim"/>: y = x − max − log Σ exp(x − max).</summary>
        /// <remarks>The backward rule (saving only y) is in docs/rules.md.</remarks>
        public Tensor LogSoftmax(int dim) => Fused(x, dim, log: true);

        /// <summary>Fused logsumexp along <paramref name="dim"/>: log Σ exp(x), computed stably.</summary>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        public Tensor LogSumExp(int dim, bool keepDim = false)
        {
            Dispatch.RequireFloat(x, "LogSumExp");
            var d = x.Shape.NormalizeDim(dim, "LogSumExp");
            var (outer, size, inner) = Dispatch.Around(x.Shape, d);
            var reduce = new bool[x.Rank];
            if (x.Rank > 0)
            {
                reduce[d] = true;
            }

            var r = Tensor.Uninitialized(Dispatch.Reduced(x.Shape, reduce, keepDim), x.DType);
            Dispatch.ByFloatType(x.DType, new LogSumExpWork(x, r, outer, size, inner));

            if (Tensor.ShouldRecord(x))
            {
                r.SetGradFn(new LogSumExpNode(x, r, d, keepDim || x.Rank == 0));
            }

            return r;
        }

        /// <summary>Softmax composed from primitives: m = max(x, dim, keepDim); e = exp(x − m); y = e / Σ e.</summary>
        /// <exception cref="ArgumentException">x is not float32 or float64.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range.</exception>
        public Tensor SoftmaxComposed(int dim)
        {
            CheckComposed("SoftmaxComposed", x, dim);
            var m = x.Max(dim, keepDim: true);
            var e = (x - m).Exp();
            return e / e.Sum(dim, keepDim: true);
        }

        /// <summary>Log-softmax composed from primitives: s = x − max(x); y = s − log Σ exp(s).</summary>
        /// <exception cref="ArgumentException">x is not float32 or float64.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range.</exception>
        public Tensor LogSoftmaxComposed(int dim)
        {
            CheckComposed("LogSoftmaxComposed", x, dim);
            var s = x - x.Max(dim, keepDim: true);
            return s - s.Exp().Sum(dim, keepDim: true).Log();
        }

        /// <summary>
        /// Logsumexp composed from primitives: m + log Σ exp(x − m) with m = max(x), where an infinite maximum is replaced
        /// by 0 (as <c>torch.logsumexp</c> does), so that a row of +∞ gives +∞ and a row of −∞ gives −∞ instead of NaN.
        /// </summary>
        /// <exception cref="ArgumentException">x is not float32 or float64.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range.</exception>
        public Tensor LogSumExpComposed(int dim, bool keepDim = false)
        {
            CheckComposed("LogSumExpComposed", x, dim);
            var max = x.Max(dim, keepDim: true);
            Tensor infinite;
            using (GradMode.Override(false))
            {
                infinite = max.Abs().Eq(double.PositiveInfinity);
            }

            var m = Tensor.Where(infinite, 0.0, max);
            var r = m + (x - m).Exp().Sum(dim, keepDim: true).Log();
            return keepDim || x.Rank == 0 ? r : r.Squeeze(dim);
        }
    }

    extension(Tensor)
    {
        /// <summary>
        /// The fused softmax backward kernel as an operator: dx = y ⊙ (g − Σ_dim g⊙y), for the gradient <paramref name="g"/> of
        /// y = softmax(x). Differentiable in g and y, which gives softmax its second derivatives.
        /// </summary>
        public static Tensor SoftmaxBackward(Tensor g, Tensor y, int dim) => FusedBackward(g, y, dim, log: false);

        /// <summary>The fused log-softmax backward kernel as an operator: dx = g − exp(y) ⊙ Σ_dim g. Differentiable in g and y.</summary>
        public static Tensor LogSoftmaxBackward(Tensor g, Tensor y, int dim) => FusedBackward(g, y, dim, log: true);
    }

    /// <summary>The checks of a composed form, in its own name, before any primitive runs.</summary>
    private static void CheckComposed(string op, Tensor x, int dim)
    {
        Dispatch.RequireFloat(x, op);
        x.Shape.NormalizeDim(dim, op);
    }

    private static Tensor Fused(Tensor x, int dim, bool log)
    {
        var op = log ? "LogSoftmax" : "Softmax";
        Dispatch.RequireFloat(x, op);
        var d = x.Shape.NormalizeDim(dim, op);
        var (outer, size, inner) = Dispatch.Around(x.Shape, d);
        var y = Tensor.Uninitialized(x.Shape, x.DType);
        if (!log && inner == 1 && size < SoftmaxKernels.LongRow && x.Tangent is { } tx && !(GradMode.IsEnabled && (x.RequiresGrad || tx.RequiresGrad)))
        {
            // Forward mode with nothing to record (the rule's own operations would record nothing either): the rows of y
            // and of its tangent in one sweep; the node's forward rule hands the tangent on.
            var ty = Tensor.Uninitialized(x.Shape, x.DType);
            Dispatch.ByFloatType(x.DType, new TangentWork(x, tx, y, ty, outer, size));
            y.SetGradFn(new SoftmaxNode(op, x, y, d, log) { Computed = (tx, ty) });
            return y;
        }

        Dispatch.ByFloatType(x.DType, new ForwardWork(x, y, outer, size, inner, log));

        if (Tensor.ShouldRecord(x))
        {
            y.SetGradFn(new SoftmaxNode(op, x, y, d, log));
        }

        return y;
    }

    private readonly struct TangentWork(Tensor x, Tensor tx, Tensor y, Tensor ty, int outer, int size) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => SoftmaxKernels.ForwardWithTangent((T[])x.Storage, x.Offset, (T[])tx.Storage, tx.Offset, (T[])y.Storage, (T[])ty.Storage, outer, size);
    }

    private readonly struct ForwardWork(Tensor x, Tensor y, int outer, int size, int inner, bool log) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => SoftmaxKernels.Forward((T[])x.Storage, x.Offset, (T[])y.Storage, outer, size, inner, log);
    }

    private readonly struct BackwardWork(Tensor g, Tensor y, Tensor dx, int outer, int size, int inner, bool log) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => SoftmaxKernels.Backward((T[])g.Storage, g.Offset, (T[])y.Storage, y.Offset, (T[])dx.Storage, outer, size, inner, log);
    }

    private readonly struct LogSumExpWork(Tensor x, Tensor r, int outer, int size, int inner) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => SoftmaxKernels.LogSumExp((T[])x.Storage, x.Offset, (T[])r.Storage, r.Offset, outer, size, inner);
    }

    private readonly struct LogSumExpBackwardWork(Tensor g, Tensor x, Tensor r, Tensor dx, int outer, int size, int inner) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => SoftmaxKernels.LogSumExpBackward((T[])g.Storage, g.Offset, (T[])x.Storage, x.Offset, (T[])r.Storage, r.Offset, (T[])dx.Storage, dx.Offset, outer, size, inner);
    }

    private static Tensor FusedBackward(Tensor g, Tensor y, int dim, bool log)
    {
        var op = log ? "LogSoftmaxBackward" : "SoftmaxBackward";
        Dispatch.RequireSameDType(g, y, op);
        if (g.Shape != y.Shape)
        {
            throw new ArgumentException($"{op}: the gradient has shape {g.Shape} but the output has shape {y.Shape}; they must match.", nameof(g));
        }

        var d = y.Shape.NormalizeDim(dim, op);
        var (outer, size, inner) = Dispatch.Around(y.Shape, d);
        var dx = Tensor.Uninitialized(y.Shape, y.DType);
        Dispatch.ByFloatType(y.DType, new BackwardWork(g, y, dx, outer, size, inner, log));

        if (Tensor.ShouldRecord(g, y))
        {
            dx.SetGradFn(new SoftmaxBackwardNode(op, g, y, d, log));
        }

        return dx;
    }

    [Rule("Softmax", Forward = "y = exp(x − max) / Σ exp(x − max)", Backward = "dx = y ⊙ (g − Σ g⊙y)", Saves = "y", Tangent = "ẏ = y ⊙ (ẋ − Σ y⊙ẋ) (the fused softmax backward kernel with g = ẋ)")]
    [Rule("LogSoftmax", Forward = "y = x − max − log Σ exp(x − max)", Backward = "dx = g − exp(y) ⊙ Σ g", Saves = "y", Tangent = "ẏ = ẋ − Σ exp(y)⊙ẋ")]
    private sealed class SoftmaxNode : Node
    {
        private readonly int _dim;
        private readonly bool _log;

        public SoftmaxNode(string name, Tensor x, Tensor y, int dim, bool log)
            : base(name, x)
        {
            _dim = dim;
            _log = log;
            Save(y);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = FusedBackward(g, Saved(0), _dim, _log);

        /// <summary>A tangent computed with the output (from the input tangent it was computed from), handed on once by the forward rule.</summary>
        public (Tensor From, Tensor Tangent)? Computed { get; set; }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var dx = t[0]!;
            if (Computed is { } computed && ReferenceEquals(computed.From, dx))
            {
                Computed = null;
                return computed.Tangent;
            }

            return _log ? dx - (dx * Saved(0).Exp()).Sum(_dim, keepDim: true) : FusedBackward(dx, Saved(0), _dim, log: false);
        }
    }

    // For softmax, the gradient in g is the same kernel again.
    [Rule("SoftmaxBackward", Forward = "dx = y ⊙ (g − Σ g⊙y)", Backward = "dg = y ⊙ (gg − Σ gg⊙y), dy = gg ⊙ (g − Σ g⊙y) − g ⊙ Σ gg⊙y", Saves = "g, y", Tangent = "ḋx = y ⊙ (ġ − Σ ġ⊙y) + ẏ ⊙ (g − Σ g⊙y) − y ⊙ Σ g⊙ẏ")]
    [Rule("LogSoftmaxBackward", Forward = "dx = g − exp(y) ⊙ Σ g", Backward = "dg = gg − Σ gg⊙exp(y), dy = −gg ⊙ exp(y) ⊙ Σ g", Saves = "g, y", Tangent = "ḋx = ġ − exp(y) ⊙ Σ ġ − ẏ ⊙ exp(y) ⊙ Σ g")]
    private sealed class SoftmaxBackwardNode : Node
    {
        private readonly int _dim;
        private readonly bool _log;

        public SoftmaxBackwardNode(string name, Tensor g, Tensor y, int dim, bool log)
            : base(name, g, y)
        {
            _dim = dim;
            _log = log;
            Save(g, y);
        }

        protected internal override void Backward(Tensor gg, Tensor?[] grads)
        {
            var g = Saved(0);
            var y = Saved(1);
            var dim = _dim;
            if (_log)
            {
                var ey = y.Exp();
                if (NeedsInputGrad(0))
                {
                    grads[0] = gg - (gg * ey).Sum(dim, keepDim: true);
                }

                if (NeedsInputGrad(1))
                {
                    grads[1] = -gg * ey * g.Sum(dim, keepDim: true);
                }

                return;
            }

            if (NeedsInputGrad(0))
            {
                grads[0] = FusedBackward(gg, y, dim, log: false);
            }

            if (NeedsInputGrad(1))
            {
                var s = (g * y).Sum(dim, keepDim: true);
                grads[1] = (gg * (g - s)) - (g * (gg * y).Sum(dim, keepDim: true));
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor dx)
        {
            var g = Saved(0);
            var y = Saved(1);
            var result = t[0] is { } tg ? FusedBackward(tg, y, _dim, _log) : null;
            if (t[1] is { } ty)
            {
                var fromY = _log
                    ? (ty * y.Exp() * g.Sum(_dim, keepDim: true)).Neg()
                    : (ty * (g - (g * y).Sum(_dim, keepDim: true))) - (y * (g * ty).Sum(_dim, keepDim: true));
                result = result is null ? fromY : result + fromY;
            }

            return result;
        }
    }

    [Rule("LogSumExp", Forward = "r = log Σ exp(x)", Backward = "dx = g ⊙ exp(x − r)", Saves = "x, r", Tangent = "ṙ = Σ ẋ ⊙ exp(x − r)")]
    private sealed class LogSumExpNode : Node
    {
        private readonly int _dim;
        private readonly bool _keptDim;

        public LogSumExpNode(Tensor x, Tensor r, int dim, bool keptDim)
            : base("LogSumExp", x)
        {
            _dim = dim;
            _keptDim = keptDim;
            Save(x, r);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            var r = Saved(1);
            if (!GradMode.IsEnabled && ForwardMode.Level == 0 && g.DType == x.DType && g.ElementCount == r.ElementCount)
            {
                // Nothing is recorded: one fused pass with the rule's operations, instead of three tensors.
                var (outer, size, inner) = Dispatch.Around(x.Shape, _dim);
                var dx = Tensor.Uninitialized(x.Shape, x.DType);
                Dispatch.ByFloatType(x.DType, new LogSumExpBackwardWork(g, x, r, dx, outer, size, inner));
                grads[0] = dx;
                return;
            }

            var gk = _keptDim ? g : g.Unsqueeze(_dim);
            var rk = _keptDim ? r : r.Unsqueeze(_dim);
            grads[0] = gk * (x - rk).Exp();
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor r)
        {
            var rk = _keptDim ? Saved(1) : Saved(1).Unsqueeze(_dim);
            return (t[0]! * (Saved(0) - rk).Exp()).Sum(_dim, keepDim: _keptDim);
        }
    }
}
