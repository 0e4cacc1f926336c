using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// The per-thread fields that every operation reads — grad mode, the open dual level and the tensor scope — in one object, so that an
/// operation looks up the thread's storage once: on Linux each thread-local read is a call (<c>__tls_get_addr</c>).
/// </summary>
internal sealed class ThreadState
{
    [ThreadStatic]
    private static ThreadState? t_current;

    /// <summary>True when grad mode is off on this thread (see <see cref="GradMode"/>).</summary>
    internal bool GradDisabled;

    /// <summary>The dual level open on this thread, 0 when none or while a forward rule runs (see <see cref="ForwardMode"/>).</summary>
    internal int Level;

    /// <summary>The innermost <see cref="TensorScope"/> of the flow running on this thread, or null.</summary>
    internal TensorScope? Scope;

    /// <summary>This thread's state, made on first use.</summary>
    internal static ThreadState Current
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => t_current ?? Create();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ThreadState Create() => t_current = new ThreadState();
}
