namespace Autograd;

/// <summary>
/// Whether operations are recorded on the tape. Grad mode is on by default; inside a <see cref="NoGrad"/> scope nothing
/// is recorded.
/// </summary>
/// <remarks>
/// The mode belongs to the logical flow of execution, as an <see cref="AsyncLocal{T}"/> does: a scope that spans an
/// <c>await</c> stays in force for the code after the <c>await</c> on whichever thread it resumes, and the thread that
/// started the scope is not left with it; tasks and threads started inside a scope inherit its mode with the execution
/// context, and work queued without it (<see cref="ThreadPool.UnsafeQueueUserWorkItem(WaitCallback, object?)"/>,
/// <see cref="Thread.UnsafeStart()"/>) starts with grad mode on. Reading the mode costs one thread-static read: the flow's
/// mode is mirrored into a field of the thread whenever the flow's value changes on it.
/// </remarks>
public static class GradMode
{
    /// <summary>The flow's mode: null when enabled, <see cref="DisabledMark"/> when disabled (references compare cheaply).</summary>
    private static readonly AsyncLocal<object?> Flow = new(OnFlowChanged);

    private static readonly object DisabledMark = new();

    /// <summary>True when operations on this thread are being recorded.</summary>
    /// <remarks>Setting it changes the mode of the current flow until it is set again (prefer the scopes).</remarks>
    public static bool IsEnabled
    {
        get => !ThreadState.Current.GradDisabled;
        set => SetFlow(value);
    }

    /// <summary>The mode of the logical flow, without the library's own overrides.</summary>
    internal static bool FlowEnabled => Flow.Value is null;

    /// <summary>Disables recording until the returned scope is disposed (scopes nest; the mode follows awaits).</summary>
    public static GradModeScope NoGrad() => new(false);

    /// <summary>Enables recording until the returned scope is disposed, even inside <see cref="NoGrad"/>.</summary>
    public static GradModeScope EnableGrad() => new(true);

    /// <summary>
    /// Sets the mode on this thread only, until the returned scope is disposed: for the library's synchronous stretches
    /// (a backward walk, a kernel's helper) that never await, where a change of the flow's mode would cost an execution
    /// context. A public scope opened inside it (for example in a hook) works as usual and gives the override back when
    /// disposed.
    /// </summary>
    internal static ThreadModeScope Override(bool enabled) => new(enabled);

    /// <summary>Sets the flow's mode and this thread's mirror of it.</summary>
    internal static void SetFlow(bool enabled)
    {
        Flow.Value = enabled ? null : DisabledMark;
        ThreadState.Current.GradDisabled = !enabled;
    }

    /// <summary>Sets this thread's mode without changing the flow's.</summary>
    internal static void SetThread(bool enabled) => ThreadState.Current.GradDisabled = !enabled;

    private static void OnFlowChanged(AsyncLocalValueChangedArgs<object?> change) => ThreadState.Current.GradDisabled = change.CurrentValue is not null;
}

/// <summary>A scope that sets grad mode and restores the previous mode when disposed.</summary>
/// <remarks>
/// It may be disposed after an <c>await</c>, on another thread: the mode is restored for the flow that opened it. Opening
/// a scope allocates only when it changes the mode (the runtime then makes a new execution context).
/// </remarks>
public readonly struct GradModeScope : IDisposable
{
    private readonly bool _previousFlow;
    private readonly bool _previousThread;

    internal GradModeScope(bool enabled)
    {
        _previousFlow = GradMode.FlowEnabled;
        _previousThread = GradMode.IsEnabled;
        GradMode.SetFlow(enabled);
    }

    /// <summary>Restores the grad mode that was in force when the scope was created.</summary>
    public void Dispose()
    {
        GradMode.SetFlow(_previousFlow);
        if (_previousThread != _previousFlow)
        {
            // Opened inside one of the library's synchronous overrides, on this thread: give it back.
            GradMode.SetThread(_previousThread);
        }
    }
}

/// <summary>The library's synchronous override of grad mode on one thread (see <see cref="GradMode.Override"/>).</summary>
internal readonly struct ThreadModeScope : IDisposable
{
    private readonly bool _previous;

    internal ThreadModeScope(bool enabled)
    {
        _previous = GradMode.IsEnabled;
        GradMode.SetThread(enabled);
    }

    /// <summary>Restores this thread's mode from before the override.</summary>
    public void Dispose() => GradMode.SetThread(_previous);
}
