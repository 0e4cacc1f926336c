using System.Globalization;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Autograd.Ops;

/// <summary>
/// In-place operators recorded on the tape, as PyTorch's <c>add_</c>, <c>sub_</c>, <c>mul_</c>, <c>div_</c>,
/// <c>zero_</c>, <c>fill_</c>, <c>copy_</c>, <c>addcmul_</c>, <c>addcdiv_</c> and <c>sqrt_</c>: each writes into the
/// tensor's own storage (no new storage), bumps its <see cref="Tensor.Version"/> once with the caller's member, file and
/// line, and returns the tensor. When grad mode is on and the tensor or an operand requires grad, the write is recorded:
/// the tensor's <see cref="Tensor.GradFn"/> becomes the new node, whose input edges are the tensor's previous history and
/// the operands; a rule that needs the old values saves a copy taken before the write. Fill, zero and copy cut the old
/// history (its gradient is zero).
/// </summary>
/// <remarks>
/// <para>
/// The optimisers (<c>Autograd.Nn.Optim</c>) update parameters and their state through these operators under
/// <see cref="Tensor.NoGrad"/>. On operands of the written tensor's shape the kernels are vectorised passes that allocate
/// nothing.
/// </para>
/// <para>
/// A tensor operand is broadcast to the written tensor's shape (the result keeps that shape). Refused while gradients are
/// recorded: a leaf that requires grad (write it under <see cref="Tensor.NoGrad"/>, as an optimiser does), and a tensor
/// whose storage is shared with another tensor on the tape (a view made by <c>Reshape</c>/<c>View</c> of a tensor that
/// requires grad): writes through views are not propagated to the other tensor's history, so clone it first.
/// </para>
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
            => AddScaled("AddInPlace", self, b, 1.0, new WriteSite("AddInPlace", callerMember, callerFile, callerLine));

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
            => AddScaled("AddInPlace", self, b, alpha, new WriteSite("AddInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self + value, in place.</summary>
        /// <param name="value">The number added to every element.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("AddInPlace", self, value, new WriteSite("AddInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self − b, in place (b broadcast to self's shape), as <c>torch.Tensor.sub_</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor SubInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddScaled("SubInPlace", self, b, -1.0, new WriteSite("SubInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self − value, in place.</summary>
        /// <param name="value">The number subtracted from every element.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor SubInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("SubInPlace", self, value, new WriteSite("SubInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self ⊙ b, in place (b broadcast to self's shape), as <c>torch.Tensor.mul_</c>.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor MulInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => MulOrDiv("MulInPlace", self, b, new WriteSite("MulInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self · value, in place.</summary>
        /// <param name="value">The factor.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor MulInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("MulInPlace", self, value, new WriteSite("MulInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self / b, in place (b broadcast to self's shape), as <c>torch.Tensor.div_</c>; IEEE division.</summary>
        /// <param name="b">The operand: same dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">b's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor DivInPlace(Tensor b, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => MulOrDiv("DivInPlace", self, b, new WriteSite("DivInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← self / value, in place (IEEE division).</summary>
        /// <param name="value">The divisor.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor DivInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("DivInPlace", self, value, new WriteSite("DivInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← 0, in place, as <c>torch.Tensor.zero_</c>; recorded (the gradient of the old values is zero).</summary>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor ZeroInPlace([CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => WithNumber("ZeroInPlace", self, 0.0, new WriteSite("ZeroInPlace", callerMember, callerFile, callerLine));

        /// <summary>self ← √self, in place, as <c>torch.Tensor.sqrt_</c> (NaN for negative elements).</summary>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is not a float tensor.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor SqrtInPlace([CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => Root(self, new WriteSite("SqrtInPlace", callerMember, callerFile, callerLine));

        /// <summary>
        /// self ← value in every element, in place (converted to self's dtype), as <c>torch.Tensor.fill_</c>; recorded like
        /// <see cref="ZeroInPlace"/> (the gradient of the old values is zero, the tangent becomes zero). An int64 tensor is
        /// filled too (value truncated toward zero); it never requires grad, so its write is never recorded.
        /// </summary>
        /// <param name="value">The value written into every element.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">Self is int64 and <paramref name="value"/> is NaN, infinite or outside int64's range.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor FillInPlace(double value, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => Fill(self, value, new WriteSite("FillInPlace", callerMember, callerFile, callerLine));

        /// <summary>
        /// self ← source, in place, as <c>torch.Tensor.copy_</c>: source is broadcast to self's shape and converted to
        /// self's dtype (float64, float32 or int64 either way; floats become int64 by truncation toward zero). Recorded when
        /// grad mode is on and self or the source requires grad: the gradient of self's old values is zero, the source gets
        /// the incoming gradient converted back to its dtype and summed over the broadcast dimensions (as PyTorch); the
        /// tangent becomes the source's (converted and broadcast).
        /// </summary>
        /// <param name="source">The values: any dtype, broadcastable to self's shape.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="source"/> is null.</exception>
        /// <exception cref="ArgumentException">
        /// The source's shape does not broadcast to self's; or self is int64 and the source requires grad while recording
        /// (an int64 tensor cannot carry a gradient) or has a float element with no int64 value (NaN, ±∞, outside
        /// [−2⁶³, 2⁶³)).
        /// </exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor CopyFrom(Tensor source, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => Copy(self, source, new WriteSite("CopyFrom", callerMember, callerFile, callerLine));

        /// <summary>
        /// self ← self + value·t1 ⊙ t2, in place (t1 and t2 broadcast to self's shape), as
        /// <c>torch.Tensor.addcmul_(t1, t2, value=value)</c>, with its rounding: self + ((value·t1)·t2).
        /// </summary>
        /// <param name="t1">The first factor: same dtype, broadcastable to self's shape.</param>
        /// <param name="t2">The second factor: same dtype, broadcastable to self's shape.</param>
        /// <param name="value">The factor of the product.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">An operand's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddcmulInPlace(Tensor t1, Tensor t2, double value = 1.0, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddProduct("AddcmulInPlace", self, t1, t2, value, new WriteSite("AddcmulInPlace", callerMember, callerFile, callerLine));

        /// <summary>
        /// self ← self + value·t1 / t2, in place (t1 and t2 broadcast to self's shape), as
        /// <c>torch.Tensor.addcdiv_(t1, t2, value=value)</c>, with its rounding: self + ((value·t1) / t2); IEEE division.
        /// </summary>
        /// <param name="t1">The numerator: same dtype, broadcastable to self's shape.</param>
        /// <param name="t2">The denominator: same dtype, broadcastable to self's shape.</param>
        /// <param name="value">The factor of the quotient.</param>
        /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
        /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
        /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
        /// <returns>This tensor.</returns>
        /// <exception cref="ArgumentException">An operand's dtype differs, its shape does not broadcast to self's, or self is not float.</exception>
        /// <exception cref="InvalidOperationException">Self is a leaf that requires grad, or a view on the tape, while recording.</exception>
        public Tensor AddcdivInPlace(Tensor t1, Tensor t2, double value = 1.0, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
            => AddProduct("AddcdivInPlace", self, t1, t2, value, new WriteSite("AddcdivInPlace", callerMember, callerFile, callerLine));
    }

    // ---------------------------------------------------------------- entry points with a named writer (the optimisers)

    /// <summary>self ← self + alpha·b as <c>AddInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Add(Tensor self, Tensor b, double alpha, WriteSite site) => AddScaled("AddInPlace", self, b, alpha, site);

    /// <summary>self ← self · c as <c>MulInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Scale(Tensor self, double c, WriteSite site) => WithNumber("MulInPlace", self, c, site);

    /// <summary>self ← self / c as <c>DivInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Divide(Tensor self, double c, WriteSite site) => WithNumber("DivInPlace", self, c, site);

    /// <summary>self ← self + c as <c>AddInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Shift(Tensor self, double c, WriteSite site) => WithNumber("AddInPlace", self, c, site);

    /// <summary>self ← self + value·t1 ⊙ t2 as <c>AddcmulInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Addcmul(Tensor self, Tensor t1, Tensor t2, double value, WriteSite site) => AddProduct("AddcmulInPlace", self, t1, t2, value, site);

    /// <summary>self ← self + value·t1 / t2 as <c>AddcdivInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Addcdiv(Tensor self, Tensor t1, Tensor t2, double value, WriteSite site) => AddProduct("AddcdivInPlace", self, t1, t2, value, site);

    /// <summary>self ← √self as <c>SqrtInPlace</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor Sqrt(Tensor self, WriteSite site) => Root(self, site);

    /// <summary>self ← source as <c>CopyFrom</c>, the write recorded as <paramref name="site"/>.</summary>
    internal static Tensor CopyInto(Tensor self, Tensor source, WriteSite site) => Copy(self, source, site);

    private enum Kind
    {
        Add,
        Mul,
        Div,
        Set,
    }

    /// <summary>Checks a tensor operand: same dtype, shape broadcastable to self's.</summary>
    private static void CheckOperand(string op, Tensor self, Tensor b, string name = "b")
    {
        ArgumentNullException.ThrowIfNull(b, name);
        if (!self.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: expected a float64 or float32 tensor to write into, got {self.DType.Name()} (shape {self.Shape}).");
        }

        if (b.DType != self.DType)
        {
            throw new ArgumentException(
                $"{op}: the operand is {b.DType.Name()} {b.Shape} but the tensor written is {self.DType.Name()} {self.Shape}; convert the operand with To(DType.{self.DType}).",
                name);
        }

        if (!b.Shape.CanBroadcastTo(self.Shape))
        {
            throw new ArgumentException(
                $"{op}: the operand of shape {b.Shape} cannot be broadcast to the shape {self.Shape} of the tensor written (an in-place result keeps that shape).",
                name);
        }
    }

    private static Tensor AddScaled(string op, Tensor self, Tensor b, double alpha, WriteSite site)
    {
        CheckOperand(op, self, b);
        self.CheckInPlace(op, b);
        b = Distinct(self, b);
        var node = Tensor.ShouldRecord(self, b) ? new AddInPlaceNode(op, self, b, alpha) : null;
        Write(self, b, Kind.Add, alpha);
        site.Mark(self);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor MulOrDiv(string op, Tensor self, Tensor b, WriteSite site)
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
        site.Mark(self);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor WithNumber(string op, Tensor self, double value, WriteSite site)
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
        site.Mark(self);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor Root(Tensor self, WriteSite site)
    {
        self.CheckInPlace("SqrtInPlace", null);

        // The old values are copied before the write by a recorded s · 1 (see MulOrDiv), so second derivatives reach them.
        var node = Tensor.ShouldRecord(self) ? new SqrtInPlaceNode(self, self * 1.0) : null;
        Dispatch.ByFloatType(self.DType, new SqrtWork(self));
        site.Mark(self);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor Fill(Tensor self, double value, WriteSite site)
    {
        if (self.DType == DType.Int64)
        {
            // An int64 tensor never requires grad: nothing to record or refuse.
            if (!(value >= -9.2233720368547758e18 && value < 9.2233720368547758e18))
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"FillInPlace: the value {value} has no int64 value for the int64 tensor of shape {self.Shape} (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused)."),
                    nameof(value));
            }

            self.Span<long>().Fill((long)value);
            site.Mark(self);
            return self;
        }

        return WithNumber("FillInPlace", self, value, site);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Tensor Copy(Tensor self, Tensor source, WriteSite site)
    {
        const string op = "CopyFrom";
        ArgumentNullException.ThrowIfNull(source);
        if (!source.Shape.CanBroadcastTo(self.Shape))
        {
            throw new ArgumentException(
                $"{op}: the source of shape {source.Shape} {source.DType.Name()} cannot be broadcast to the shape {self.Shape} {self.DType.Name()} of the tensor written (an in-place result keeps that shape).",
                nameof(source));
        }

        Node? node = null;
        if (self.DType == DType.Int64)
        {
            if (GradMode.IsEnabled && source.RequiresGrad)
            {
                throw new ArgumentException(
                    $"{op}: the source {source.Shape} {source.DType.Name()} requires grad but the tensor written is int64 {self.Shape}, which cannot carry a gradient; copy into a float tensor, or detach the source.",
                    nameof(source));
            }

            if (source.DType != DType.Int64)
            {
                for (var i = 0; i < source.ElementCount; i++)
                {
                    var v = source.GetFlat(i);
                    if (!(v >= -9.2233720368547758e18 && v < 9.2233720368547758e18))
                    {
                        throw new ArgumentException(
                            string.Create(CultureInfo.InvariantCulture, $"{op}: element {i} (flat index) of the {source.DType.Name()} source of shape {source.Shape} is {v}, which has no int64 value for the int64 tensor written {self.Shape} (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused)."),
                            nameof(source));
                    }
                }
            }
        }
        else
        {
            self.CheckInPlace(op, source);
            source = Distinct(self, source);
            if (Tensor.ShouldRecord(self, source))
            {
                node = new CopyInPlaceNode(self, source);
            }
        }

        WriteCopy(self, source);
        site.Mark(self);
        if (node is not null)
        {
            self.RebaseHistory(node);
        }

        return self;
    }

    private static Tensor AddProduct(string op, Tensor self, Tensor t1, Tensor t2, double value, WriteSite site)
    {
        CheckOperand(op, self, t1, nameof(t1));
        CheckOperand(op, self, t2, nameof(t2));
        self.CheckInPlace(op, t1.RequiresGrad ? t1 : t2);
        t1 = Distinct(self, t1);
        t2 = Distinct(self, t2);
        var div = op == "AddcdivInPlace";
        var node = Tensor.ShouldRecord([self, t1, t2]) ? new AddProductInPlaceNode(op, self, t1, t2, value) : null;
        if (t1.Shape != self.Shape)
        {
            t1 = Dispatch.StridedCopy(t1, t1.Shape.BroadcastStrides(self.Shape), self.Shape);
        }

        if (t2.Shape != self.Shape)
        {
            t2 = Dispatch.StridedCopy(t2, t2.Shape.BroadcastStrides(self.Shape), self.Shape);
        }

        Dispatch.ByFloatType(self.DType, new ProductWork(self, t1, t2, value, div));
        site.Mark(self);
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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    /// <summary>self ← source converted to self's dtype, source broadcast: same shape, one element, or a suffix of self's shape row by row; else expanded first.</summary>
    private static void WriteCopy(Tensor self, Tensor source)
    {
        if (source.Shape != self.Shape && source.ElementCount != 1 && !IsSuffix(source.Shape, self.Shape))
        {
            source = Dispatch.StridedCopy(source, source.Shape.BroadcastStrides(self.Shape), self.Shape);
        }

        switch (self.DType, source.DType)
        {
            case (DType.Float32, DType.Float32): CopyRows<float, float>(self, source); break;
            case (DType.Float32, DType.Float64): CopyRows<double, float>(self, source); break;
            case (DType.Float32, _): CopyRows<long, float>(self, source); break;
            case (DType.Float64, DType.Float32): CopyRows<float, double>(self, source); break;
            case (DType.Float64, DType.Float64): CopyRows<double, double>(self, source); break;
            case (DType.Float64, _): CopyRows<long, double>(self, source); break;
            case (_, DType.Float32): CopyRows<float, long>(self, source); break;
            case (_, DType.Float64): CopyRows<double, long>(self, source); break;
            default: CopyRows<long, long>(self, source); break;
        }
    }

    /// <summary>Copies source's elements (a row repeated over self, or one element everywhere) into self, converting each (floats to int64 by truncation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopyRows<TFrom, TTo>(Tensor self, Tensor source)
        where TFrom : unmanaged, INumberBase<TFrom>
        where TTo : unmanaged, INumberBase<TTo>
    {
        var s = self.Span<TTo>();
        ReadOnlySpan<TFrom> v = source.Span<TFrom>();
        if (v.Length == 1)
        {
            s.Fill(TTo.CreateTruncating(v[0]));
            return;
        }

        for (var start = 0; start < s.Length; start += v.Length)
        {
            var row = s.Slice(start, v.Length);
            if (typeof(TFrom) == typeof(TTo))
            {
                MemoryMarshal.Cast<TFrom, TTo>(v).CopyTo(row);
            }
            else
            {
                TensorPrimitives.ConvertTruncating(v, row);
            }
        }
    }

    /// <summary>self ← self + c·t1 ⊙ t2 (or c·t1 / t2), all of self's shape, with PyTorch's rounding: s + ((c·t1) op t2), a block at a time.</summary>
    private readonly struct ProductWork(Tensor self, Tensor t1, Tensor t2, double value, bool div) : IFloatWork
    {
        private const int Block = 1024;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            var s = self.Span<T>();
            ReadOnlySpan<T> u = t1.Span<T>();
            ReadOnlySpan<T> w = t2.Span<T>();
            var c = T.CreateTruncating(value);
            Span<T> tmp = stackalloc T[Block];
            for (var start = 0; start < s.Length; start += Block)
            {
                var n = Math.Min(Block, s.Length - start);
                var t = tmp[..n];
                var row = s.Slice(start, n);
                if (value == 1.0)
                {
                    u.Slice(start, n).CopyTo(t);
                }
                else
                {
                    TensorPrimitives.Multiply(u.Slice(start, n), c, t);
                }

                if (div)
                {
                    TensorPrimitives.Divide(t, w.Slice(start, n), t);
                }
                else
                {
                    TensorPrimitives.Multiply(t, w.Slice(start, n), t);
                }

                TensorPrimitives.Add(row, t, row);
            }
        }
    }

    private readonly struct SqrtWork(Tensor self) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            var s = self.Span<T>();
            TensorPrimitives.Sqrt(s, s);
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

    /// <summary>
    /// A node for s ← s ⊙ b or s ← s / b with a tensor b: it saves b and, when b's gradient or tangent needs it, a copy of s
    /// before the write (Saved(1)); without the copy its rule is the "b without gradient" variant.
    /// </summary>
    private abstract class ScaleInPlaceNode : Node
    {
        private readonly bool _old;

        protected ScaleInPlaceNode(string name, Tensor self, Tensor b, Tensor? old)
            : base(name, self, b)
        {
            Save(b);
            _old = old is not null;
            if (old is not null)
            {
                Save(old);
            }
        }

        protected override string? RuleVariant => _old ? null : "b without gradient";
    }

    [Rule("MulInPlace", Forward = "s ← s ⊙ b (b broadcast to s)", Backward = "ds = g ⊙ b, db = g ⊙ c summed to b's shape (c: s before the write)", Saves = "b, c", Tangent = "ṡ ← ṡ ⊙ b + c ⊙ ḃ")]
    [Rule("MulInPlace", Variant = "b without gradient", Forward = "s ← s ⊙ b (b broadcast to s)", Backward = "ds = g ⊙ b", Saves = "b", Tangent = "ṡ ← ṡ ⊙ b")]
    private sealed class MulInPlaceNode(Tensor self, Tensor b, Tensor? old) : ScaleInPlaceNode("MulInPlace", self, b, old)
    {
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
    private sealed class DivInPlaceNode(Tensor self, Tensor b, Tensor? old) : ScaleInPlaceNode("DivInPlace", self, b, old)
    {
        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var b = Saved(0);
            if (NeedsInputGrad(0))
            {
                grads[0] = g / b;
            }

            if (NeedsInputGrad(1))
            {
                // As the Div rule: summed, then negated, without a negated copy of g.
                grads[1] = (g * Saved(1) / (b * b)).SumTo(b.Shape).Neg();
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
    [Rule("FillInPlace", Forward = "s ← c", Backward = "ds = 0", Tangent = "ṡ ← 0")]
    private sealed class NumberInPlaceNode(string name, Tensor self, double c) : Node(name, self)
    {
        protected override string? RuleVariant => Name is "ZeroInPlace" or "FillInPlace" ? null : "number";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = Name switch
                {
                    "MulInPlace" => g * c,
                    "DivInPlace" => g / c,
                    "ZeroInPlace" or "FillInPlace" => null,
                    _ => g,
                };
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0] is not { } ts ? null : Name switch
        {
            "MulInPlace" => ts * c,
            "DivInPlace" => ts / c,
            "ZeroInPlace" or "FillInPlace" => null,
            _ => ts,
        };
    }

    [Rule("SqrtInPlace", Forward = "s ← √s", Backward = "ds = g / (2√c) (c: s before the write)", Saves = "c", Tangent = "ṡ ← ṡ / (2√c)")]
    private sealed class SqrtInPlaceNode : Node
    {
        /// <summary>A node for s ← √s; <paramref name="old"/> is a copy of s before the write.</summary>
        public SqrtInPlaceNode(Tensor self, Tensor old)
            : base("SqrtInPlace", self)
            => Save(old);

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g / (Saved(0).Sqrt() * 2.0);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => t[0] is { } ts ? ts / (Saved(0).Sqrt() * 2.0) : null;
    }

    [Rule("CopyFrom", Forward = "s ← b converted to s's dtype (b broadcast to s)", Backward = "ds = 0, db = g converted to b's dtype, summed to b's shape", Tangent = "ṡ ← ḃ converted to s's dtype, broadcast to s")]
    private sealed class CopyInPlaceNode(Tensor self, Tensor source) : Node("CopyFrom", self, source)
    {
        private readonly Shape _shape = source.Shape;
        private readonly DType _dtype = source.DType;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(1))
            {
                grads[1] = g.To(_dtype).SumTo(_shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => t[1] is { } tb ? Tangents.Sum(null, tb.To(y.DType), y) : null;
    }

    [Rule("AddcmulInPlace", Forward = "s ← s + c·u ⊙ v (u, v broadcast to s)", Backward = "ds = g, du = c·g ⊙ v summed to u's shape, dv = c·g ⊙ u summed to v's shape", Saves = "u, v", Tangent = "ṡ ← ṡ + c·(u̇ ⊙ v + u ⊙ v̇)")]
    [Rule("AddcdivInPlace", Forward = "s ← s + c·u / v (u, v broadcast to s)", Backward = "ds = g, du = c·g / v summed to u's shape, dv = −c·g ⊙ u / v² summed to v's shape", Saves = "u, v", Tangent = "ṡ ← ṡ + c·(u̇ / v − u ⊙ v̇ / v²)")]
    private sealed class AddProductInPlaceNode : Node
    {
        private readonly double _c;

        public AddProductInPlaceNode(string name, Tensor self, Tensor u, Tensor v, double c)
            : base(name, [self, u, v])
        {
            _c = c;
            Save(u);
            Save(v);
        }

        private bool Div => Name == "AddcdivInPlace";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g;
            }

            var gc = _c == 1.0 ? g : g * _c;
            if (NeedsInputGrad(1))
            {
                var u = Saved(0);
                grads[1] = (Div ? gc / Saved(1) : gc * Saved(1)).SumTo(u.Shape);
            }

            if (NeedsInputGrad(2))
            {
                var v = Saved(1);
                grads[2] = (Div ? -gc * Saved(0) / (v * v) : gc * Saved(0)).SumTo(v.Shape);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            Tensor? du = null, dv = null;
            if (t[1] is { } tu)
            {
                du = Div ? tu / Saved(1) : tu * Saved(1);
            }

            if (t[2] is { } tv)
            {
                var v = Saved(1);
                dv = Div ? Saved(0) * tv / (v * v) : Saved(0) * tv;
            }

            var d = Div ? Tangents.Difference(du, dv, y) : Tangents.Sum(du, dv, y);
            return Tangents.Sum(t[0], d is null ? null : _c == 1.0 ? d : d * _c, y);
        }
    }
}

/// <summary>Who writes in place, recorded in the version counter: the operation (e.g. <c>AddInPlace</c> or <c>Sgd.Step</c>) and the calling member, file and line.</summary>
/// <param name="Operation">What writes.</param>
/// <param name="Member">The calling member.</param>
/// <param name="File">The calling source file.</param>
/// <param name="Line">The calling line.</param>
internal readonly record struct WriteSite(string Operation, string Member, string File, int Line)
{
    /// <summary>Bumps <paramref name="t"/>'s version, recording this site as the last write.</summary>
    public void Mark(Tensor t) => t.MarkWritten(Operation, Member, File, Line);
}
