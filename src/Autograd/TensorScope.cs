namespace Autograd;

/// <summary>
/// A part of a program whose tensors end with it and give their memory back for the tensors of the next such part:
/// <c>using (Tensor.NewScope()) { … }</c> around a training step or a benchmark call.
/// </summary>
/// <remarks>
/// <para>
/// Every tensor made while the scope is the innermost one open belongs to it. When the scope is disposed,
/// those tensors are disposed (reading or writing one throws an <see cref="ObjectDisposedException"/>), and the arrays
/// that held their elements go to a pool from which the next tensors of the same dtype and size take them. A loop whose
/// body is a scope then works in the same memory at every pass, as PyTorch's allocator reuses freed memory, instead of
/// asking the garbage collector for new arrays each time (docs/design.md, "Memory for large tensors").
/// </para>
/// <para>
/// A tensor that must outlive the scope is kept with <see cref="Keep"/> (it then belongs to the enclosing scope, or to
/// none) or taken out of every scope with <see cref="Tensor.LeaveScope"/>. The library keeps what it stores for later by
/// itself: a gradient accumulated into a tensor's <see cref="Tensor.Grad"/> belongs to that tensor's scope, a module's
/// parameters and buffers and an optimizer's state belong to no scope. The graph that made a kept tensor is not kept:
/// walking it back after the scope ended throws, so call <see cref="Tensor.Backward(Tensor?, bool?, bool)"/> inside.
/// </para>
/// <para>
/// Scopes nest, and end in the reverse order of their beginning. Like <see cref="GradMode"/>, a scope belongs to the
/// logical flow of execution: it holds across an <c>await</c> on whichever thread the code resumes, and tasks and threads
/// started inside it make their tensors in it (they must finish before it ends); other threads are not affected. Without
/// an open scope nothing changes: tensors are ordinary garbage-collected objects.
/// </para>
/// <para>
/// A scope holds every tensor made in it until it ends, so open one per step of a loop, not one around the whole loop.
/// </para>
/// </remarks>
public sealed class TensorScope : IDisposable
{
    // Scopes open on any thread: while 0, making a tensor needs no thread-local read.
    private static int s_open;

    // The last number given to a scope; a tensor names its scope by number (an int fits in its padding, a reference
    // would make every tensor 8 bytes larger).
    private static int s_lastId;

    // The open scopes by number, for the rare lookups of a scope that is not on this thread's chain.
    private static readonly Dictionary<int, TensorScope> s_byId = [];

    // The innermost scope of the flow of execution, mirrored into ThreadState.Scope whenever it changes on a thread.
    private static readonly AsyncLocal<TensorScope?> Flow = new(static change => ThreadState.Current.Scope = change.CurrentValue);

    private readonly int _id;
    private readonly TensorScope? _outer;
    private readonly List<Tensor> _tensors = [];

    // Guards _tensors, _rented and _ended: tasks of the flow may make tensors in the scope at the same time.
    private readonly Lock _gate = new();

    // The pooled arrays this scope gives back when it ends (those of its tensors, and of tensors kept into it).
    private readonly HashSet<Array> _rented = new(ReferenceEqualityComparer.Instance);
    private bool _ended;

    private TensorScope(TensorScope? outer)
    {
        _outer = outer;
        _id = Interlocked.Increment(ref s_lastId);
    }

    /// <summary>The number of tensors that belong to this scope now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                var n = 0;
                foreach (var t in _tensors)
                {
                    if (t.ScopeId == _id)
                    {
                        n++;
                    }
                }

                return n;
            }
        }
    }

    /// <summary>True once <see cref="Dispose"/> has run.</summary>
    public bool IsDisposed => _ended;

    /// <summary>The innermost scope of the flow running on this thread, or null.</summary>
    internal static TensorScope? Innermost => Volatile.Read(ref s_open) == 0 ? null : ThreadState.Current.Scope;

    /// <summary>Begins a scope in this flow of execution, inside the innermost one already open.</summary>
    internal static TensorScope Begin()
    {
        var scope = new TensorScope(Flow.Value);
        lock (s_byId)
        {
            s_byId.Add(scope._id, scope);
        }

        Interlocked.Increment(ref s_open);
        Flow.Value = scope;
        return scope;
    }

    /// <summary>
    /// Makes <paramref name="tensor"/> outlive this scope: it belongs to the enclosing scope, or to none when this is the
    /// outermost, with its elements (also those of its views) and its <see cref="Tensor.Grad"/>.
    /// </summary>
    /// <returns><paramref name="tensor"/>, for one-line use: <c>var loss = scope.Keep(model.Forward(x));</c>.</returns>
    /// <remarks>A tensor that already outlives this scope (made outside it, or kept before) is returned as it is.</remarks>
    /// <exception cref="ObjectDisposedException">This scope has ended, or the tensor was disposed with another scope.</exception>
    /// <exception cref="InvalidOperationException">The tensor belongs to a scope nested in this one that is still open, or to a scope of another flow of execution.</exception>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_ended)
        {
            throw new ObjectDisposedException(nameof(TensorScope), $"TensorScope.Keep: this scope has ended; the {tensor.Shape} {tensor.DType.Name()} tensor can no longer be kept.");
        }

        tensor.ThrowIfDisposed("TensorScope.Keep");
        var owner = Find(tensor.ScopeId);
        if (owner is null || owner.Encloses(this))
        {
            return tensor;
        }

        if (owner != this)
        {
            throw new InvalidOperationException(
                $"TensorScope.Keep: the {tensor.Shape} {tensor.DType.Name()} tensor belongs to "
                + (Encloses(owner) ? "a scope nested in this one that is still open; keep it there first" : "a scope of another flow of execution (thread or task)")
                + ".");
        }

        MoveTo(tensor, this, _outer);
        if (tensor.Grad is { } grad && grad.ScopeId == _id)
        {
            MoveTo(grad, this, _outer);
        }

        return tensor;
    }

    /// <summary>
    /// Ends the scope: its tensors are disposed and their arrays go to the pool. Calling it again does nothing.
    /// </summary>
    /// <exception cref="InvalidOperationException">A scope begun inside this one is still open, or the scope is disposed by code that is not in the flow of execution that began it.</exception>
    public void Dispose()
    {
        if (_ended)
        {
            return;
        }

        var innermost = Flow.Value;
        if (innermost != this)
        {
            throw new InvalidOperationException(innermost is not null && Encloses(innermost)
                ? "TensorScope.Dispose: a scope begun inside this one is still open; scopes end in the reverse order of their beginning (dispose the inner one first)."
                : "TensorScope.Dispose: this scope belongs to another flow of execution; it ends in the code that began it (or after an await in that code), not on another thread or task.");
        }

        Array[] rented;
        lock (_gate)
        {
            _ended = true;
            foreach (var t in _tensors)
            {
                if (t.ScopeId == _id)
                {
                    t.EndWithScope();
                }
            }

            _tensors.Clear();
            rented = [.. _rented];
            _rented.Clear();
        }

        foreach (var array in rented)
        {
            StoragePool.Return(DTypeOf(array), array);
        }

        lock (s_byId)
        {
            s_byId.Remove(_id);
        }

        Flow.Value = _outer;
        Interlocked.Decrement(ref s_open);
    }

    /// <summary>Registers a tensor made now: it belongs to the innermost scope of this flow, if one is open.</summary>
    /// <param name="tensor">The new tensor.</param>
    /// <param name="source">The tensor whose elements it shares (a view), or null when it has storage of its own.</param>
    internal static void Register(Tensor tensor, Tensor? source)
    {
        var innermost = Innermost;
        var sourceId = source?.ScopeId ?? 0;
        if (innermost is null && sourceId == 0)
        {
            return;
        }

        // A view made outside the scope of its elements (on a thread of another flow) belongs to that scope, so that it
        // ends with the memory it reads.
        var owner = innermost;
        if (sourceId != 0 && (innermost is null || !innermost.IsOrIsInside(sourceId)))
        {
            owner = Find(sourceId);
            if (owner is null)
            {
                return;
            }
        }

        lock (owner!._gate)
        {
            // A tensor made by a task still running after its scope ended belongs to no scope (the collector frees it).
            if (owner._ended)
            {
                return;
            }

            tensor.ScopeId = owner._id;
            owner._tensors.Add(tensor);
        }
    }

    /// <summary>
    /// Storage for a tensor of <paramref name="length"/> elements made now: from the pool when a scope is open on this
    /// flow and the array is large enough to be worth keeping, else a new array.
    /// </summary>
    internal static Array Allocate(DType dtype, int length, bool clear)
    {
        var scope = Innermost;
        if (scope is null || length < StoragePool.MinimumLength || dtype == DType.Int64)
        {
            return clear ? Tensor.Allocate(dtype, length) : Tensor.AllocateUninitialized(dtype, length);
        }

        var array = StoragePool.Rent(dtype, length, clear);
        lock (scope._gate)
        {
            // A task still running after its scope ended keeps what it made to itself (the collector frees it).
            if (!scope._ended)
            {
                scope._rented.Add(array);
            }
        }

        return array;
    }

    /// <summary>
    /// Moves <paramref name="tensor"/> to the scope of <paramref name="owner"/> (for state the library keeps: a Grad, an
    /// optimizer's buffers), or out of every scope when that scope is not one the tensor's scope is nested in.
    /// </summary>
    internal static void Adopt(Tensor tensor, Tensor? owner)
    {
        var from = Find(tensor.ScopeId);
        if (from is null)
        {
            return;
        }

        var to = owner is null ? null : Find(owner.ScopeId);
        if (to == from)
        {
            return;
        }

        MoveTo(tensor, from, to is not null && to.Encloses(from) ? to : null);
    }

    /// <summary>Takes <paramref name="tensor"/> out of every scope (see <see cref="Tensor.LeaveScope"/>).</summary>
    internal static void Release(Tensor tensor)
    {
        if (Find(tensor.ScopeId) is { } from)
        {
            MoveTo(tensor, from, null);
        }
    }

    /// <summary>Moves <paramref name="tensor"/> from its scope <paramref name="from"/> to <paramref name="to"/> (an enclosing scope, or none).</summary>
    private static void MoveTo(Tensor tensor, TensorScope from, TensorScope? to)
    {
        var storage = tensor.Storage;
        tensor.ScopeId = to?._id ?? 0;
        if (to is not null)
        {
            lock (to._gate)
            {
                to._tensors.Add(tensor);
            }
        }

        // The elements go with the tensor: the scope it leaves no longer gives them back (its views there still end with
        // it, as tensors, but the array is now returned by the new owner, or by nobody).
        for (var s = from; s is not null && s != to; s = s._outer)
        {
            bool removed;
            lock (s._gate)
            {
                removed = s._rented.Remove(storage);
            }

            if (removed)
            {
                if (to is not null)
                {
                    lock (to._gate)
                    {
                        to._rented.Add(storage);
                    }
                }

                break;
            }
        }
    }

    private bool Encloses(TensorScope inner)
    {
        for (var s = inner._outer; s is not null; s = s._outer)
        {
            if (s == this)
            {
                return true;
            }
        }

        return false;
    }

    private bool IsOrIsInside(int id)
    {
        for (var s = this; s is not null; s = s._outer)
        {
            if (s._id == id)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The open scope numbered <paramref name="id"/> (0: none): on this flow's chain first, then any.</summary>
    private static TensorScope? Find(int id)
    {
        if (id == 0)
        {
            return null;
        }

        for (var s = Innermost; s is not null; s = s._outer)
        {
            if (s._id == id)
            {
                return s;
            }
        }

        lock (s_byId)
        {
            return s_byId.GetValueOrDefault(id);
        }
    }

    private static DType DTypeOf(Array array) => array.GetType() == typeof(float[]) ? DType.Float32 : DType.Float64;
}
