namespace Autograd.Study;

/// <summary>
/// Whole derivatives of a function of one tensor, built only from the engine's reverse mode
/// (<see cref="Autodiff.Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor?}?, bool, bool?, bool)"/>):
/// the full Jacobian and Hessian, and the vector-Jacobian, Jacobian-vector and Hessian-vector products — the
/// counterparts of PyTorch's <c>torch.autograd.functional</c>.
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
    /// The full Jacobian of <paramref name="f"/> at <paramref name="x"/>: J[i, j] = ∂f(x)ᵢ/∂xⱼ, computed one row at a
    /// time by vector-Jacobian products (one backward walk per output element, with the one-hot eᵢ as the output
    /// gradient and the graph retained between walks).
    /// </summary>
    /// <param name="f">The function; it may return any shape.</param>
    /// <param name="x">The point (a floating-point tensor).</param>
    /// <returns>
    /// A tensor of shape <c>f(x).shape ++ x.shape</c> (the layout of <c>torch.autograd.functional.jacobian</c>); flattened,
    /// it is the [f(x).numel, x.numel] matrix. Its dtype is <paramref name="x"/>'s. For softmax it is diag(s) − s sᵀ.
    /// </returns>
    public static Tensor Jacobian(Func<Tensor, Tensor> f, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(f);
        using var mode = GradMode.EnableGrad();
        var xi = Input(x, nameof(Jacobian));
        var y = Call(f, xi, nameof(Jacobian));
        return JacobianRows(y, y.Shape, xi);
    }

    /// <summary>
    /// The Hessian of a scalar <paramref name="f"/> at <paramref name="x"/>: H[i, j] = ∂²f/∂xᵢ∂xⱼ, computed as the
    /// Jacobian of the gradient: the gradient g = ∇f is computed once with <c>createGraph</c> (so that the gradient
    /// computation is itself on the tape), then row i of H is the gradient of gᵢ, one backward walk per element of x.
    /// </summary>
    /// <param name="f">A function returning one element (any shape with one element, e.g. a rank-0 sum).</param>
    /// <param name="x">The point (a floating-point tensor).</param>
    /// <returns>A tensor of shape <c>x.shape ++ x.shape</c>, in <paramref name="x"/>'s dtype. For a linear f it is zero.</returns>
    /// <exception cref="ArgumentException"><paramref name="f"/> returned more than one element.</exception>
    public static Tensor Hessian(Func<Tensor, Tensor> f, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(f);
        using var mode = GradMode.EnableGrad();
        var xi = Input(x, nameof(Hessian));
        var y = Scalar(Call(f, xi, nameof(Hessian)), nameof(Hessian));
        return JacobianRows(FirstGradient(y, xi), xi.Shape, xi);
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
    /// The Jacobian-vector product J v of <paramref name="f"/> at <paramref name="x"/> (a forward-mode derivative, the
    /// directional derivative along <paramref name="v"/>) computed with reverse mode only, by the double-vjp trick:
    /// with a dummy cotangent u that requires grad, the vjp h(u) = Jᵀu is computed with <c>createGraph</c>; it is linear
    /// in u, so the gradient of ⟨h(u), v⟩ with respect to u is J v (whatever the value of u). Two backward walks.
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
        using var mode = GradMode.EnableGrad();
        var xi = Input(x, nameof(Jvp));
        RequireLike(v, xi, "v", "x", nameof(Jvp));
        var y = Call(f, xi, nameof(Jvp));
        if (!y.RequiresGrad)
        {
            return (y.Detach(), Tensor.Zeros(y.Shape, y.DType));
        }

        var u = Tensor.Zeros(y.Shape, y.DType).WithRequiresGrad();
        var jtu = Autodiff.Grad([y], [xi], [u], createGraph: true, allowUnused: true)[0];
        var jvp = jtu.RequiresGrad
            ? Autodiff.Grad([jtu], [u], [v], allowUnused: true)[0]
            : Tensor.Zeros(y.Shape, y.DType);
        return (y.Detach(), jvp);
    }

    /// <summary>
    /// The Hessian-vector product H v of a scalar <paramref name="f"/> at <paramref name="x"/>, without forming H: the
    /// gradient g = ∇f is computed with <c>createGraph</c>, then the gradient of ⟨g, v⟩ is H v (H is symmetric). Two
    /// backward walks, whatever the size of x.
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
        using var mode = GradMode.EnableGrad();
        var xi = Input(x, nameof(Hvp));
        RequireLike(v, xi, "v", "x", nameof(Hvp));
        var y = Scalar(Call(f, xi, nameof(Hvp)), nameof(Hvp));
        var g = FirstGradient(y, xi);
        var hvp = g is not null && g.RequiresGrad
            ? Autodiff.Grad([g], [xi], [v], allowUnused: true)[0]
            : Tensor.Zeros(xi.Shape, xi.DType);
        return (y.Detach(), hvp);
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
