using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// An n-dimensional array of <see cref="double"/>, <see cref="float"/> or <see cref="long"/> elements, stored
/// row-major and contiguously, that records the operations applied to it so that gradients can be computed
/// by <see cref="Backward(Tensor?, bool?, bool)"/>.
/// </summary>
/// <remarks>
/// A tensor is a leaf when it was created by the user (a factory, <see cref="Detach"/>) and a non-leaf when an
/// operation recorded on the tape produced it; then <see cref="GradFn"/> is the node that will send gradients to
/// its inputs. Operators live in the <c>Autograd.Ops</c> assembly as extension members of this type.
/// </remarks>
public sealed partial class Tensor
{
    private bool _requiresGrad;

    // One field for two things created on demand, so that a tensor is no larger for having a version: null; the version
    // counter of the storage (StorageVersion); or, for a leaf that requires grad, its accumulator (AccumulateGrad),
    // which then holds the counter (see VersionCounter and Accumulator).
    private object? _aux;

    // The tangent this tensor carries in forward mode and the dual level it belongs to (see ForwardMode), null and 0 when
    // none: fields of their own, so that an operation in forward mode allocates its result's tangent and nothing else.
    private Tensor? _tangent;
    private int _tangentLevel;

    /// <summary>
    /// The backward walk during which this tensor's storage was allocated on this thread (0 outside any walk). A gradient
    /// made by a rule of the current walk is owned by the walk, so a leaf may take it as its Grad without a copy.
    /// </summary>
    internal int WalkBirth;

    // The elements, null once the TensorScope this tensor belongs to has ended (see Storage).
    private Array? _storage;

    /// <summary>A tensor over <paramref name="storage"/>, which is its own (new) or, with <paramref name="source"/>, that tensor's.</summary>
    internal Tensor(Shape shape, DType dtype, Array storage, int offset = 0, Tensor? source = null)
    {
        Shape = shape;
        DType = dtype;
        _storage = storage;
        Offset = offset;
        TensorScope.Register(this, source);
    }

    /// <summary>A tensor that belongs to no scope whatever scope is open (for the library's own constants).</summary>
    private Tensor(Shape shape, DType dtype, Array storage, bool unscoped)
    {
        _ = unscoped;
        Shape = shape;
        DType = dtype;
        _storage = storage;
    }

    /// <summary>The underlying array (<c>double[]</c>, <c>float[]</c> or <c>long[]</c>); elements start at <see cref="Offset"/>.</summary>
    /// <exception cref="ObjectDisposedException">The tensor ended with its <see cref="TensorScope"/>.</exception>
    internal Array Storage => _storage ?? throw DisposedError(null);

    /// <summary>The number of the scope this tensor belongs to (see <see cref="TensorScope"/>), or 0.</summary>
    internal int ScopeId;

    /// <summary>True once the <see cref="TensorScope"/> this tensor belonged to has ended: its elements are gone.</summary>
    public bool IsDisposed => _storage is null;

    /// <summary>Begins a <see cref="TensorScope"/> in this flow of execution: <c>using (Tensor.NewScope()) { … }</c>.</summary>
    /// <returns>The scope; disposing it disposes the tensors made inside and lends their memory to later ones.</returns>
    public static TensorScope NewScope() => TensorScope.Begin();

    /// <summary>
    /// Takes this tensor out of every <see cref="TensorScope"/>, with its elements: it lives until the garbage collector
    /// frees it, as outside any scope. Views of it made in a scope still end with that scope.
    /// </summary>
    /// <returns>This tensor.</returns>
    /// <exception cref="ObjectDisposedException">The tensor already ended with its scope.</exception>
    public Tensor LeaveScope()
    {
        ThrowIfDisposed("LeaveScope");
        TensorScope.Release(this);
        return this;
    }

    /// <summary>Ends this tensor with its scope: its elements are no longer reachable through it.</summary>
    internal void EndWithScope()
    {
        _storage = null;
        ScopeId = 0;
    }

    /// <summary>Throws when this tensor ended with its scope, naming <paramref name="api"/>.</summary>
    internal void ThrowIfDisposed(string api)
    {
        if (_storage is null)
        {
            throw DisposedError(api);
        }
    }

    private ObjectDisposedException DisposedError(string? api) => new(
        nameof(Tensor),
        $"{(api is null ? string.Empty : api + ": ")}this {Shape} {DType.Name()} tensor was made inside a TensorScope that has ended and gave its memory back; "
        + "keep a tensor that must outlive its scope with scope.Keep(t) or t.LeaveScope(), and walk a graph back inside the scope that recorded it.");

    /// <summary>The index of the first element in <see cref="Storage"/>.</summary>
    internal int Offset { get; }

    /// <summary>The shape (dimension sizes).</summary>
    public Shape Shape { get; }

    /// <summary>The number of dimensions.</summary>
    public int Rank => Shape.Rank;

    /// <summary>The number of elements.</summary>
    public int ElementCount => Shape.ElementCount;

    /// <summary>The element type.</summary>
    public DType DType { get; }

    /// <summary>The node that produced this tensor on the tape, or null for a leaf.</summary>
    public Node? GradFn { get; private set; }

    /// <summary>True when this tensor was not produced by a recorded operation.</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>The name of the operation that produced this tensor (e.g. <c>Exp</c>), or null for a leaf.</summary>
    public string? OpName => GradFn?.Name;

    /// <summary>
    /// Whether gradients flow to this tensor. Settable on leaves of a floating-point type; a non-leaf requires grad
    /// exactly when it was recorded on the tape.
    /// </summary>
    /// <exception cref="InvalidOperationException">Set on a non-leaf, or set to true on an integer tensor.</exception>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set => SetRequiresGrad(value, nameof(RequiresGrad));
    }

    /// <summary>
    /// The gradient accumulated into this leaf (or into a non-leaf given <see cref="RetainGrad"/>) by
    /// <see cref="Backward(Tensor?, bool?, bool)"/>, or null before the first backward (or after <see cref="ZeroGrad"/>
    /// with <c>setToNull</c>).
    /// </summary>
    /// <exception cref="ArgumentException">Set to a tensor whose shape or dtype differs from this one.</exception>
    public Tensor? Grad
    {
        get;
        set
        {
            if (value is not null && (value.Shape != Shape || value.DType != DType))
            {
                throw new ArgumentException(
                    $"Grad: a gradient of shape {value.Shape} {value.DType.Name()} cannot be assigned to a tensor of shape {Shape} {DType.Name()}.");
            }

            field = value;
        }
    }

    /// <summary>Disables recording on this thread until the returned scope is disposed: <c>using (Tensor.NoGrad()) { … }</c>.</summary>
    public static GradModeScope NoGrad() => GradMode.NoGrad();

    /// <summary>Enables recording on this thread until the returned scope is disposed, even inside a <see cref="NoGrad"/> scope.</summary>
    public static GradModeScope EnableGrad() => GradMode.EnableGrad();

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor, for one-line construction.</summary>
    /// <exception cref="InvalidOperationException">This tensor is not a leaf, or <paramref name="requiresGrad"/> is true and it is an integer tensor.</exception>
    public Tensor WithRequiresGrad(bool requiresGrad = true)
    {
        SetRequiresGrad(requiresGrad, nameof(WithRequiresGrad));
        return this;
    }

    private void SetRequiresGrad(bool value, string api)
    {
        if (!IsLeaf)
        {
            throw new InvalidOperationException(
                $"{api}: only a leaf tensor's RequiresGrad can be set; this {Shape} tensor was produced by '{OpName}'. Use Detach() to get a leaf.");
        }

        if (value && !DType.IsFloatingPoint())
        {
            throw new InvalidOperationException($"{api}: only floating-point tensors can require gradients; this tensor is {DType.Name()} of shape {Shape}.");
        }

        _requiresGrad = value;
    }

    /// <summary>
    /// Clears the accumulated gradient: fills it with zeros in place (bumping its <see cref="Version"/>), or sets it to
    /// null when <paramref name="setToNull"/> is true.
    /// </summary>
    /// <param name="setToNull">True (the default): set <see cref="Grad"/> to null. False: fill it with zeros.</param>
    /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
    /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
    /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
    public void ZeroGrad(bool setToNull = true, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
        => ClearGrad(setToNull, "Tensor.ZeroGrad", callerMember, callerFile, callerLine);

    /// <summary>Clears the accumulated gradient (see <see cref="ZeroGrad"/>), naming <paramref name="operation"/> as the writer.</summary>
    internal void ClearGrad(bool setToNull, string operation, string callerMember, string callerFile, int callerLine)
    {
        if (setToNull || Grad is null)
        {
            Grad = null;
            return;
        }

        // A gradient on the tape (or a caller's tensor requiring grad) is replaced, never cleared in place.
        if (Grad.RequiresGrad)
        {
            Grad = Zeros(Shape, DType);
            TensorScope.Adopt(Grad, this);
            return;
        }

        Grad.MarkWritten(operation, callerMember, callerFile, callerLine);
        Array.Clear(Grad.Storage, Grad.Offset, Grad.ElementCount);
    }

    /// <summary>
    /// A new leaf that shares this tensor's data and its <see cref="Version"/> counter but is cut off from the tape (no
    /// gradient flows through it).
    /// </summary>
    public Tensor Detach() => new(Shape, DType, Storage, Offset, this) { _aux = VersionCounter };

    /// <summary>The elements as a span of <typeparamref name="T"/>, which must match the storage type.</summary>
    internal Span<T> Span<T>() => new((T[])Storage, Offset, ElementCount);

    /// <summary>The elements as a read-only span of <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="T"/> is not the element type of this tensor's dtype.</exception>
    public ReadOnlySpan<T> AsSpan<T>() => ElementsAs<T>("AsSpan");

    /// <summary>The elements as a read-only span, or an exception naming <paramref name="api"/> when <typeparamref name="T"/> is not the element type.</summary>
    internal ReadOnlySpan<T> ElementsAs<T>(string api)
    {
        if (Storage is not T[] arr)
        {
            throw new InvalidOperationException(
                $"{api}<{typeof(T).Name}>: this tensor of shape {Shape} holds {DType.Name()} elements ({ElementTypeName(DType)}), not {typeof(T).Name}.");
        }

        return new ReadOnlySpan<T>(arr, Offset, ElementCount);
    }

    private static string ElementTypeName(DType dtype) => dtype switch
    {
        DType.Float64 => nameof(Double),
        DType.Float32 => nameof(Single),
        _ => nameof(Int64),
    };

    /// <summary>Attaches the node that produced this tensor. Called by operators right after creating the result.</summary>
    /// <remarks>
    /// Inside a dual level, when an input carries a tangent, the node's forward rule then computes this tensor's tangent.
    /// A node that goes on the tape is attached first, so that a rule reading this tensor (softmax's y, exp's result)
    /// records its operations against it and the tangent can itself be differentiated (reverse over forward).
    /// </remarks>
    internal void SetGradFn(Node node)
    {
        var tangents = ForwardMode.s_openLevels != 0 ? ForwardMode.Take(node) : null;

        // Created for the forward rule only when no input needs a gradient (or grad mode is off): nothing is recorded then.
        if (tangents is null || (GradMode.IsEnabled && node.HasEdges))
        {
            GradFn = node;
            _requiresGrad = true;
            node.AttachOutput(this);
            if (TapeObserver.Current is not null)
            {
                TapeObserver.RaiseRecorded(node, this);
            }
        }

        if (tangents is not null)
        {
            var tangent = ForwardMode.RunRule(node, tangents, this);
            SetTangent(tangent, ForwardMode.Level);
            if (TapeObserver.Current is not null)
            {
                TapeObserver.RaiseTangent(node, this, tangent);
            }
        }
    }

    /// <summary>The node that accumulates gradients into this leaf, created on first use (once, also when two threads ask at once).</summary>
    internal AccumulateGrad Accumulator => _aux as AccumulateGrad ?? CreateAccumulator();

    /// <summary>The tape edge for this tensor when used as an input: its producing node, its accumulator, or null.</summary>
    internal Node? Edge => GradFn ?? (_requiresGrad ? Accumulator : null);

    /// <summary>True when grad mode is on and this tensor requires grad, so an operation on it must be recorded.</summary>
    /// <remarks>Also true inside a dual level when the tensor carries a tangent: the node is then made for its forward rule.</remarks>
    public static bool ShouldRecord(Tensor a)
        => (a._requiresGrad && GradMode.IsEnabled) || (ForwardMode.s_openLevels != 0 && ForwardMode.HasTangent(a));

    /// <summary>True when grad mode is on and either tensor requires grad (or, in a dual level, either carries a tangent).</summary>
    public static bool ShouldRecord(Tensor a, Tensor b)
        => ((a._requiresGrad || b._requiresGrad) && GradMode.IsEnabled)
            || (ForwardMode.s_openLevels != 0 && (ForwardMode.HasTangent(a) || ForwardMode.HasTangent(b)));

    /// <summary>True when grad mode is on and any tensor requires grad (or, in a dual level, any carries a tangent).</summary>
    public static bool ShouldRecord(ReadOnlySpan<Tensor> inputs)
    {
        var enabled = GradMode.IsEnabled;
        var forward = ForwardMode.s_openLevels != 0;
        if (!enabled && !forward)
        {
            return false;
        }

        foreach (var t in inputs)
        {
            if ((enabled && t._requiresGrad) || (forward && ForwardMode.HasTangent(t)))
            {
                return true;
            }
        }

        return false;
    }
}
