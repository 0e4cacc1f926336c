using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Autograd.Ops;

/// <summary>
/// In-place operators recorded on the tape, as PyTorch's <c>add_</c>, <c>sub_</c>, <c>mul_</c>, <c>div_</c> and
/// <c>zero_</c>: each writes into the tensor's own storage (no new storage), bumps its <see cref="Tensor.Version"/> with
/// the caller's member, file and line, and returns the tensor. When grad mode is on and the tensor or the operand requires
/// grad, the write is recorded: the tensor's <see cref="Tensor.GradFn"/> becomes the new node, whose input edges are the
/// tensor's previous history and the operand; a rule that needs the old values saves a copy taken before the write.
/// </summary>
/// <remarks>
/// A tensor operand is broadcast to the written tensor's shape (the result keeps that shape). Refused while gradients are
/// recorded: a leaf that requires grad (write it under <see cref="Tensor.NoGrad"/>, as an optimiser does), and a tensor
/// whose storage is shared with another tensor on the tape (a view made by <c>Reshape</c>/<c>View</c> of a tensor that
/// requires grad): writes through views are not propagated to the other tensor's history, so clone it first.
/// </remarks>
public static class InPlace
{
    extension(Tensor self)
    {
        /// <summary>self ← self + b, in place (b broadcast to self's shape), as <c>torch.Tensor.add_</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddScaled("AddInPlace", self, b, 1.0, callerMember, callerFile, callerLine);

        /// <summary>self ← self + alpha·b, in place (b broadcast to self's shape), as <c>torch.Tensor.add_(b, alpha=alpha)</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="alpha">The factor of b.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddInPlace(Tensor b, double alpha, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddScaled("AddInPlace", self, b, alpha, callerMember, callerFile, callerLine);

        /// <summary>self ← self + value, in place.</summary>
        /// <param name="value">The number added to every element.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("AddInPlace", self, value, callerMember, callerFile, callerLine);

        /// <summary>self ← self − b, in place (b broadcast to self's shape), as <c>torch.Tensor.sub_</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor SubInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddScaled("SubInPlace", self, b, -1.0, callerMember, callerFile, callerLine);

        /// <summary>self ← self − value, in place.</summary>
        /// <param name="value">The number subtracted from every element.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor SubInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("SubInPlace", self, value, callerMember, callerFile, callerLine);

        /// <summary>self ← self ⊙ b, in place (b broadcast to self's shape), as <c>torch.Tensor.mul_</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor MulInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => MulOrDiv("MulInPlace", self, b, callerMember, callerFile, callerLine);

        /// <summary>self ← self · value, in place.</summary>
        /// <param name="value">The factor.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor MulInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("MulInPlace", self, value, callerMember, callerFile, callerLine);

        /// <summary>self ← self / b, in place (b broadcast to self's shape), as <c>torch.Tensor.div_</c>; IEEE division.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor DivInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => MulOrDiv("DivInPlace", self, b, callerMember, callerFile, callerLine);

        /// <summary>self ← self / value, in place (IEEE division).</summary>
        /// <param name="value">The divisor.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor DivInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("DivInPlace", self, value, callerMember, callerFile, callerLine);

        /// <summary>self ← 0, in place, as <c>torch.Tensor.zero_</c>; recorded (the gradient of the old values is zero).</summary>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor ZeroInPlace([CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("ZeroInPlace", self, 0.0, callerMember, callerFile, callerLine);
    }

    private enum Kind
    {
        Add,
        Mul,
        Div,
        Set,
    }

    /// <summary>Checks a tensor operand: same dtype, shape broadcastable to self's.</summary>
    private static void CheckOperand(string op, Tensor self, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(b);
        if (!self.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: expected a float64 or float32 tensor to write into, got {self.DType.Name()} (shape {self.Shape}).");
        }

        if (b.DType != self.DType)
        {
            throw new ArgumentException(
                $"{op}: the operand is {b.DType.Name()} {b.Shape} but the tensor written is {self.DType.Name()} {self.Shape}; convert the operand with To(DType.{self.DType}).",
                nameof(b));
        }

        if (!b.Shape.CanBroadcastTo(self.Shape))
        {
            throw new ArgumentException(
                $"{op}: the operand of shape {b.Shape} cannot be broadcast to the shape {self.Shape} of the tensor written (an in-place result keeps that shape).",
                nameof(b));
        }
    }

    private static Tensor AddScaled(string op, Tensor self, Tensor b, double alpha, string member, string file, int line)
    {
        CheckOperand(op, self, b);
        self.CheckInPlace(op, b);
        b = Distinct(self, b);
        var node = Tensor.ShouldRecord(self, b) ? new AddInPlaceNode(op, self, b, alpha) : null;
        Write(self, b, Kind.Add, alpha);
        self.MarkWritten(op, member, file, line);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor MulOrDiv(string op, Tensor self, Tensor b, string member, string file, int line)
    {
        CheckOperand(op, self, b);
        self.CheckInPlace(op, b);
        b = Distinct(self, b);
        var mul = op == "MulInPlace";
        Node? node = null;
        if (Tensor.ShouldRecord(self, b))
        {
            // The old values of s are needed only for b's gradient or tangent. They are copied before the write by a
            // recorded s · 1 (before the node, which must be the last one made when the write is attached), so that the
            // copy keeps s's history and second derivatives reach it.
            var old = (GradMode.IsEnabled && b.RequiresGrad) || b.Tangent is not null ? self * 1.0 : null;
            node = mul ? new MulInPlaceNode(self, b, old) : new DivInPlaceNode(self, b, old);
        }

        Write(self, b, mul ? Kind.Mul : Kind.Div, 1.0);
        self.MarkWritten(op, member, file, line);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor WithNumber(string op, Tensor self, double value, string member, string file, int line)
    {
        self.CheckInPlace(op, null);
        var node = Tensor.ShouldRecord(self) ? new NumberInPlaceNode(op, self, value) : null;
        var (kind, c) = op switch
        {
            "AddInPlace" => (Kind.Add, value),
            "SubInPlace" => (Kind.Add, -value),
            "MulInPlace" => (Kind.Mul, value),
            "DivInPlace" => (Kind.Div, value),
            _ => (Kind.Set, value),
        };
        Dispatch.ByFloatType(self.DType, new NumberWork(self, kind, c));
        self.MarkWritten(op, member, file, line);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    /// <summary>
    /// The operand, or a copy of it when it shares self's storage (x.MulInPlace(x)), so the write cannot change it: a recorded
    /// b · 1 when it is on the tape (or carries a tangent), so its gradient still flows.
    /// </summary>
    private static Tensor Distinct(Tensor self, Tensor b)
        => !ReferenceEquals(self.Storage, b.Storage) ? b : Tensor.ShouldRecord(b) ? b * 1.0 : b.Clone();

    /// <summary>self ← self op b with b broadcast: same shape, one element, or a suffix of self's shape row by row; else b expanded first.</summary>
    private static void Write(Tensor self, Tensor b, Kind kind, double alpha)
    {
        if (b.ElementCount == 1 && self.Shape != b.Shape)
        {
            var v = b.GetFlat(0);
            Dispatch.ByFloatType(self.DType, new NumberWork(self, kind, kind == Kind.Add ? alpha * v : v));
            return;
        }

        if (b.Shape != self.Shape && !IsSuffix(b.Shape, self.Shape))
        {
            b = Dispatch.StridedCopy(b, b.Shape.BroadcastStrides(self.Shape), self.Shape);
        }

        Dispatch.ByFloatType(self.DType, new TensorWork(self, b, kind, alpha));
    }

    /// <summary>True when <paramref name="b"/> without its leading 1s is the trailing part of <paramref name="s"/>.</summary>
    private static bool IsSuffix(Shape b, Shape s)
    {
        var lead = 0;
        while (lead < b.Rank && b[lead] == 1)
        {
            lead++;
        }

        var n = b.Rank - lead;
        if (n > s.Rank)
        {
            return false;
        }

        for (var i = 0; i < n; i++)
        {
            if (b[lead + i] != s[s.Rank - n + i])
            {
                return false;
            }
        }

        return true;
    }

    private readonly struct TensorWork(Tensor self, Tensor b, Kind kind, double alpha) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            var s = self.Span<T>();
            ReadOnlySpan<T> v = b.Span<T>();
            var a = T.CreateTruncating(alpha);
            for (var start = 0; start < s.Length; start += v.Length)
            {
                var row = s.Slice(start, v.Length);
                switch (kind)
                {
                    case Kind.Add when alpha == 1.0: TensorPrimitives.Add(row, v, row); break;
                    case Kind.Add when alpha == -1.0: TensorPrimitives.Subtract(row, v, row); break;
                    case Kind.Add: TensorPrimitives.MultiplyAdd(v, a, row, row); break;
                    case Kind.Mul: TensorPrimitives.Multiply(row, v, row); break;
                    default: TensorPrimitives.Divide(row, v, row); break;
                }
            }
        }
    }

    private readonly struct NumberWork(Tensor self, Kind kind, double value) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            var s = self.Span<T>();
            var c = T.CreateTruncating(value);
            switch (kind)
            {
                case Kind.Add: TensorPrimitives.Add(s, c, s); break;
                case Kind.Mul: TensorPrimitives.Multiply(s, c, s); break;
                case Kind.Div: TensorPrimitives.Divide(s, c, s); break;
                default: s.Fill(c); break;
            }
        }
    }

    [Rule("AddInPlace", Forward = "s ← s + α·b (b broadcast to s)", Backward = "ds = g, db = α·g summed to b's shape", Tangent = "ṡ ← ṡ + α·ḃ")]
    [Rule("SubInPlace", Forward = "s ← s − b (b broadcast to s)", Backward = "ds = g, db = −g summed to b's shape", Tangent = "ṡ ← ṡ − ḃ")]
    private sealed class AddInPlaceNode(string name, Tensor self, Tensor b, double alpha) : Node(name, self, b)
    {
        private readonly Shape _sb = b.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (alpha == 1.0 ? g : alpha == -1.0 ? g.Neg() : g * alpha).SumTo(_sb);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var tb = t[1] is { } b ? (alpha == 1.0 ? b : b * alpha) : null;
            return Tangents.Sum(t[0], tb, y);
        }
    }

    [Rule("MulInPlace", Forward = "s ← s ⊙ b (b broadcast to s)", Backward = "ds = g ⊙ b, db = g ⊙ c summed to b's shape (c: s before the write)", Saves = "b, c", Tangent = "ṡ ← ṡ ⊙ b + c ⊙ ḃ")]
    [Rule("MulInPlace", Variant = "b without gradient", Forward = "s ← s ⊙ b (b broadcast to s)", Backward = "ds = g ⊙ b", Saves = "b", Tangent = "ṡ ← ṡ ⊙ b")]
    private sealed class MulInPlaceNode : Node
    {
        private readonly bool _old;

        /// <summary>A node for s ← s ⊙ b; <paramref name="old"/> is a copy of s before the write, when b's gradient or tangent needs it.</summary>
        public MulInPlaceNode(Tensor self, Tensor b, Tensor? old)
            : base("MulInPlace", self, b)
        {
            Save(b);
            _old = old is not null;
            if (old is not null)
            {
                Save(old);
            }
        }

        protected override string? RuleVariant => _old ? null : "b without gradient";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var b = Saved(0);
            if (NeedsInputGrad(0))
            {
                grads[0] = g * b;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (g * Saved(1)).SumTo(b.Shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => Tangents.Sum(t[0] is { } ts ? ts * Saved(0) : null, t[1] is { } tb ? Saved(1) * tb : null, y);
    }

    [Rule("DivInPlace", Forward = "s ← s / b (b broadcast to s)", Backward = "ds = g / b, db = −g ⊙ c / b² summed to b's shape (c: s before the write)", Saves = "b, c", Tangent = "ṡ ← (ṡ − c ⊙ ḃ / b) / b")]
    [Rule("DivInPlace", Variant = "b without gradient", Forward = "s ← s / b (b broadcast to s)", Backward = "ds = g / b", Saves = "b", Tangent = "ṡ ← ṡ / b")]
    private sealed class DivInPlaceNode : Node
    {
        private readonly bool _old;

        /// <summary>A node for s ← s / b; <paramref name="old"/> is a copy of s before the write, when b's gradient or tangent needs it.</summary>
        public DivInPlaceNode(Tensor self, Tensor b, Tensor? old)
            : base("DivInPlace", self, b)
        {
            Save(b);
            _old = old is not null;
            if (old is not null)
            {
                Save(old);
            }
        }

        protected override string? RuleVariant => _old ? null : "b without gradient";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var b = Saved(0);
            if (NeedsInputGrad(0))
            {
                grads[0] = g / b;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = (-g * Saved(1) / (b * b)).SumTo(b.Shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var b = Saved(0);
            var num = Tangents.Difference(t[0], t[1] is { } tb ? Saved(1) * tb / b : null, y);
            return num is null ? null : num / b;
        }
    }

    [Rule("AddInPlace", Variant = "number", Forward = "s ← s + c", Backward = "ds = g", Tangent = "ṡ ← ṡ")]
    [Rule("SubInPlace", Variant = "number", Forward = "s ← s − c", Backward = "ds = g", Tangent = "ṡ ← ṡ")]
    [Rule("MulInPlace", Variant = "number", Forward = "s ← s · c", Backward = "ds = c·g", Tangent = "ṡ ← c·ṡ")]
    [Rule("DivInPlace", Variant = "number", Forward = "s ← s / c", Backward = "ds = g / c", Tangent = "ṡ ← ṡ / c")]
    [Rule("ZeroInPlace", Forward = "s ← 0", Backward = "ds = 0", Tangent = "ṡ ← 0")]
    private sealed class NumberInPlaceNode(string name, Tensor self, double c) : Node(name, self)
    {
        protected override string? RuleVariant => Name == "ZeroInPlace" ? null : "number";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = Name switch
                {
                    "MulInPlace" => g * c,
                    "DivInPlace" => g / c,
                    "ZeroInPlace" => null,
                    _ => g,
                };
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0] is not { } ts ? null : Name switch
        {
            "MulInPlace" => ts * c,
            "DivInPlace" => ts / c,
            "ZeroInPlace" => null,
            _ => ts,
        };
    }
}
