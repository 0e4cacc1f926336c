namespace Autograd.Study;

/// <summary>
/// Whole derivatives of a function of one tensor, built from the engine's two modes — reverse
/// (<see cref="Autodiff.Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor?}?, bool, bool?, bool)"/>)
/// and forward (<see cref="Autodiff.Jvp(Func{Tensor, Tensor}, Tensor, Tensor)"/>): the full Jacobian by either mode, the
/// Hessian and the Hessian-vector product by forward-over-reverse, and the vector-Jacobian and Jacobian-vector products —
/// the counterparts of PyTorch's <c>torch.autograd.functional</c>.
/// </summary>
/// <remarks>
/// <para>
/// Every method evaluates <c>f</c> once on a fresh leaf that shares <c>x</c>'s data and requires grad (so <c>x</c>
/// itself, and its <see cref="Tensor.Grad"/>, are never touched), with grad mode on even when called inside
/// <see cref="Tensor.NoGrad"/>. Tensors that <c>f</c> closes over (parameters, say) may require grad; they are held
/// constant and their <see cref="Tensor.Grad"/> is not changed. When <c>f(x)</c> does not depend on <c>x</c> the
/// derivatives are zeros.
/// </para>
/// <para>
/// The results are plain values: they are not recorded on the tape and cannot be differentiated again.
/// </para>
/// </remarks>
public static class Derivatives
{
    /// <summary>
    /// The full Jacobian of <paramref name="f"/> at <paramref name="x"/>: J[i, j] = ∂f(x)ᵢ/∂xⱼ, by the mode asked for.
    /// Reverse mode builds it a row at a time: one backward walk per output element, with the one-hot eᵢ as the output
    /// gradient (f evaluated once, the graph retained between walks). Forward mode builds it a column at a time: one
    /// forward pass of f per input element, with the one-hot eⱼ as the tangent. So reverse mode wins for few outputs
    /// (a loss: one walk gives the whole gradient) and forward mode for few inputs.
    /// </summary>
    /// <param name="f">The function; it may return any shape.</param>
    /// <param name="x">The point (a floating-point tensor).</param>
    /// <param name="mode">Rows by reverse mode (the default) or columns by forward mode; both give the same matrix.</param>
    /// <returns>
    /// A tensor of shape <c>f(x).shape ++ x.shape</c> (the layout of <c>torch.autograd.functional.jacobian</c>); flattened,
    /// it is the [f(x).numel, x.numel] matrix. Its dtype is <paramref name="x"/>'s. For softmax it is diag(s) − s sᵀ.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="mode"/> is not a defined mode.</exception>
    public static Tensor Jacobian(Func<Tensor, Tensor> f, Tensor x, JacobianMode mode = JacobianMode.Reverse)
    {
        ArgumentNullException.ThrowIfNull(f);
        if (mode == JacobianMode.Forward)
        {
            return JacobianColumns(f, x);
        }

        if (mode != JacobianMode.Reverse)
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, $"Jacobian: mode must be {nameof(JacobianMode.Reverse)} or {nameof(JacobianMode.Forward)}.");
        }

        using var grad = GradMode.EnableGrad();
        var xi = Input(x, nameof(Jacobian));
        var y = Call(f, xi, nameof(Jacobian));
        return JacobianRows(y, y.Shape, xi);
    }

    /// <summary>
    /// The Hessian of a scalar <paramref name="f"/> at <paramref name="x"/>: H[i, j] = ∂²f/∂xᵢ∂xⱼ, by forward-over-reverse:
    /// column j is the Hessian-vector product H eⱼ (see <see cref="Hvp"/>), one forward pass carrying the tangent eⱼ
    /// through f and through its gradient's backward walk per element of x.
    /// </summary>
    /// <param name="f">A function returning one element (any shape with one element, e.g. a rank-0 sum).</param>
    /// <param name="x">The point (a floating-point tensor).</param>
    /// <returns>A tensor of shape <c>x.shape ++ x.shape</c>, in <paramref name="x"/>'s dtype. For a linear f it is zero.</returns>
    /// <exception cref="ArgumentException"><paramref name="f"/> returned more than one element.</exception>
    public static Tensor Hessian(Func<Tensor, Tensor> f, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(f);
        var xi = Input(x, nameof(Hessian));
        var n = xi.ElementCount;
        var hessian = Tensor.Zeros(new Shape([.. xi.Shape.Dims, .. xi.Shape.Dims]), xi.DType);
        for (var j = 0; j < n; j++)
        {
            var column = ForwardOverReverse(f, xi, OneHot(xi.Shape, xi.DType, j), nameof(Hessian)).Hvp;
            CopyColumn(column, hessian, j, n);
        }

        return hessian;
    }

    /// <summary>
    /// The vector-Jacobian product vᵀJ of <paramref name="f"/> at <paramref name="x"/>: one backward walk with
    /// <paramref name="v"/> as the output gradient (what <see cref="Tensor.Backward(Tensor?, bool?, bool)"/> computes).
    /// </summary>
    /// <param name="f">The function.</param>
    /// <param name="x">The point.</param>
    /// <param name="v">A cotangent, shaped like <c>f(x)</c>.</param>
    /// <returns><c>f(x)</c> (detached from the tape) and vᵀJ, shaped like <paramref name="x"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="v"/> is not shaped like f(x) or has another dtype.</exception>
    public static (Tensor Output, Tensor Vjp) Vjp(Func<Tensor, Tensor> f, Tensor x, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(v);
        using var mode = GradMode.EnableGrad();
        var xi = Input(x, nameof(Vjp));
        var y = Call(f, xi, nameof(Vjp));
        RequireLike(v, y, "v", "f(x)", nameof(Vjp));
        var vjp = y.RequiresGrad
            ? Autodiff.Grad([y], [xi], [v], allowUnused: true)[0]
            : Tensor.Zeros(xi.Shape, xi.DType);
        return (y.Detach(), vjp);
    }

    /// <summary>
    /// The Jacobian-vector product J v of <paramref name="f"/> at <paramref name="x"/> (the directional derivative along
    /// <paramref name="v"/>) by forward mode: one forward pass with <paramref name="v"/> as the tangent of x, each operation
    /// computing its result's tangent by its forward rule (see <see cref="Autodiff.Jvp(Func{Tensor, Tensor}, Tensor, Tensor)"/>).
    /// </summary>
    /// <param name="f">The function.</param>
    /// <param name="x">The point.</param>
    /// <param name="v">A tangent, shaped like <paramref name="x"/>.</param>
    /// <returns><c>f(x)</c> (detached from the tape) and J v, shaped like <c>f(x)</c>.</returns>
    /// <exception cref="ArgumentException"><paramref name="v"/> is not shaped like x or has another dtype.</exception>
    public static (Tensor Output, Tensor Jvp) Jvp(Func<Tensor, Tensor> f, Tensor x, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(v);
        var xi = Constant(x, nameof(Jvp));
        RequireLike(v, xi, "v", "x", nameof(Jvp));
        var (y, jv) = Autodiff.Jvp(t => Call(f, t, nameof(Jvp)), xi, v);
        return (y.Detach(), jv.Detach());
    }

    /// <summary>
    /// The Hessian-vector product H v of a scalar <paramref name="f"/> at <paramref name="x"/>, without forming H, by
    /// forward-over-reverse: x carries the tangent <paramref name="v"/> through f, then through the backward walk of
    /// ∇f (recorded with <c>createGraph</c>, so its rules are ordinary operators that carry tangents too); the tangent of
    /// the gradient is H v. One forward pass and one backward walk, whatever the size of x.
    /// </summary>
    /// <param name="f">A function returning one element.</param>
    /// <param name="x">The point.</param>
    /// <param name="v">A direction, shaped like <paramref name="x"/>.</param>
    /// <returns><c>f(x)</c> (detached from the tape) and H v, shaped like <paramref name="x"/>.</returns>
    /// <exception cref="ArgumentException"><paramref name="f"/> returned more than one element, or <paramref name="v"/> is not shaped like x.</exception>
    public static (Tensor Output, Tensor Hvp) Hvp(Func<Tensor, Tensor> f, Tensor x, Tensor v)
    {
        ArgumentNullException.ThrowIfNull(f);
        ArgumentNullException.ThrowIfNull(v);
        var xi = Input(x, nameof(Hvp));
        RequireLike(v, xi, "v", "x", nameof(Hvp));
        return ForwardOverReverse(f, xi, v, nameof(Hvp));
    }

    /// <summary>f(x) and H v by forward-over-reverse, on the leaf <paramref name="xi"/> (which requires grad).</summary>
    private static (Tensor Output, Tensor Hvp) ForwardOverReverse(Func<Tensor, Tensor> f, Tensor xi, Tensor v, string api)
    {
        using var grad = GradMode.EnableGrad();
        using var level = Autodiff.DualLevel();
        xi.WithTangent(v);
        var y = Scalar(Call(f, xi, api), api);
        var g = FirstGradient(y, xi);
        var hvp = g?.Tangent?.Detach() ?? Tensor.Zeros(xi.Shape, xi.DType);
        return (y.Detach(), hvp);
    }

    /// <summary>
    /// The Jacobian a column at a time by forward mode: column j is J eⱼ, one forward pass per element of x.
    /// </summary>
    private static Tensor JacobianColumns(Func<Tensor, Tensor> f, Tensor x)
    {
        var xi = Constant(x, nameof(Jacobian));
        var n = xi.ElementCount;
        Tensor? jac = null;
        for (var j = 0; j < n; j++)
        {
            var (y, column) = Autodiff.Jvp(t => Call(f, t, nameof(Jacobian)), xi, OneHot(xi.Shape, xi.DType, j));
            jac ??= Tensor.Zeros(new Shape([.. y.Shape.Dims, .. xi.Shape.Dims]), xi.DType);
            CopyColumn(column, jac, j, n);
        }

        return jac ?? Tensor.Zeros(new Shape([.. Call(f, xi, nameof(Jacobian)).Shape.Dims, .. xi.Shape.Dims]), xi.DType);
    }

    /// <summary>Writes <paramref name="column"/> (m elements) as column <paramref name="j"/> of the [m, n] matrix in <paramref name="target"/>.</summary>
    private static void CopyColumn(Tensor column, Tensor target, int j, int n)
    {
        for (var i = 0; i < column.ElementCount; i++)
        {
            target.SetFlat((i * n) + j, column.GetFlat(i));
        }
    }

    /// <summary>A new leaf over <paramref name="x"/>'s data that does not require grad: the point of a forward-mode derivative.</summary>
    private static Tensor Constant(Tensor x, string api)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!x.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{api}: x must be a floating-point tensor to be differentiated; it is {x.DType.Name()}.", nameof(x));
        }

        return x.Detach();
    }

    /// <summary>A new leaf over <paramref name="x"/>'s data that requires grad: the variable to differentiate with respect to.</summary>
    private static Tensor Input(Tensor x, string api)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!x.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{api}: x must be a floating-point tensor to be differentiated; it is {x.DType.Name()}.", nameof(x));
        }

        return x.Detach().WithRequiresGrad();
    }

    private static Tensor Call(Func<Tensor, Tensor> f, Tensor x, string api)
        => f(x) ?? throw new InvalidOperationException($"{api}: the function returned null.");

    private static Tensor Scalar(Tensor y, string api)
    {
        if (y.ElementCount != 1)
        {
            throw new ArgumentException(
                $"{api}: the function must return one element (a scalar such as a sum or a loss), but it returned shape {y.Shape} ({y.ElementCount} elements). Use Jacobian for vector-valued functions.");
        }

        return y;
    }

    /// <summary>∇f, recorded (createGraph) so that it can be differentiated again; null when f does not depend on x.</summary>
    private static Tensor? FirstGradient(Tensor y, Tensor xi)
        => y.RequiresGrad ? Autodiff.Grad([y], [xi], null, createGraph: true, allowUnused: true)[0] : null;

    private static void RequireLike(Tensor v, Tensor like, string vName, string likeName, string api)
    {
        if (v.Shape != like.Shape || v.DType != like.DType)
        {
            throw new ArgumentException(
                $"{api}: {vName} has shape {v.Shape} {v.DType.Name()}, but {likeName} has shape {like.Shape} {like.DType.Name()}; they must match.",
                nameof(v));
        }
    }

    /// <summary>
    /// The Jacobian of <paramref name="z"/> (of shape <paramref name="zShape"/>) with respect to <paramref name="xi"/>, of
    /// shape zShape ++ xi.shape, one row per element of z by a vector-Jacobian product with the one-hot eᵢ (graph
    /// retained between walks); zeros when z is null or not on the tape.
    /// </summary>
    private static Tensor JacobianRows(Tensor? z, Shape zShape, Tensor xi)
    {
        var n = xi.ElementCount;
        var jac = Tensor.Zeros(new Shape([.. zShape.Dims, .. xi.Shape.Dims]), xi.DType);
        if (z is null || !z.RequiresGrad)
        {
            return jac;
        }

        for (var i = 0; i < z.ElementCount; i++)
        {
            var row = Autodiff.Grad([z], [xi], [OneHot(z.Shape, z.DType, i)], retainGraph: true, allowUnused: true)[0];
            CopyInto(row, jac, i * n);
        }

        return jac;
    }

    private static Tensor OneHot(Shape shape, DType dtype, int index)
    {
        var e = Tensor.Zeros(shape, dtype);
        e.SetFlat(index, 1.0);
        return e;
    }

    private static void CopyInto(Tensor row, Tensor target, int offset)
        => Array.Copy(row.Storage, row.Offset, target.Storage, target.Offset + offset, row.ElementCount);
}

/// <summary>How <see cref="Derivatives.Jacobian"/> builds the Jacobian.</summary>
public enum JacobianMode
{
    /// <summary>A row per output element, each by one backward walk (vector-Jacobian product): cheap for few outputs.</summary>
    Reverse,

    /// <summary>A column per input element, each by one forward pass (Jacobian-vector product): cheap for few inputs.</summary>
    Forward,
}
