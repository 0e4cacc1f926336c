namespace Autograd;

/// <summary>
/// A hook into the tape for study and diagnostic tools (graph pictures, profilers, anomaly detection, step-by-step
/// explanations). Observers are attached per thread with <see cref="Attach"/>; with none attached the engine pays one
/// null check per event.
/// </summary>
/// <remarks>
/// Events, in the order an operator and a backward walk raise them: <see cref="OnOutputAllocated"/> (an operator
/// allocated its result, just before its kernel runs), <see cref="OnNodeCreated"/> (the operator's node was built from
/// its inputs), in a dual level <see cref="OnTangent"/> (its forward rule gave the result's tangent), <see cref="OnRecorded"/> (the node was attached to its output), then in backward
/// <see cref="OnBackwardStart"/> and <see cref="OnBackwardEnd"/> around each rule, including the leaves' accumulators.
/// </remarks>
public abstract class TapeObserver
{
    [ThreadStatic]
    private static TapeObserver[]? t_observers;

    // Attached and not yet detached on any thread: while 0, Current needs no thread-local read (one per operation saved).
    private static int s_attached;

    /// <summary>The observers attached on this thread, innermost last; null when there are none.</summary>
    internal static TapeObserver[]? Current => Volatile.Read(ref s_attached) == 0 ? null : t_observers;

    /// <summary>Attaches <paramref name="observer"/> on this thread until the returned scope is disposed.</summary>
    public static IDisposable Attach(TapeObserver observer)
    {
        ArgumentNullException.ThrowIfNull(observer);
        var previous = t_observers;
        Interlocked.Increment(ref s_attached);
        t_observers = previous is null ? [observer] : [.. previous, observer];
        return new Detach(previous);
    }

    /// <summary>An operator allocated its result; its kernel runs next.</summary>
    protected virtual void OnOutputAllocated(Tensor output)
    {
    }

    /// <summary>A node was created for an operation on <paramref name="inputs"/>.</summary>
    protected virtual void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
    {
    }

    /// <summary>The node was attached to the tensor it produced: the operation is on the tape.</summary>
    protected virtual void OnRecorded(Node node, Tensor output)
    {
    }

    /// <summary>
    /// Forward mode: the forward rule of <paramref name="node"/> computed <paramref name="tangent"/> (null for zero), the
    /// tangent of <paramref name="output"/>. Raised inside a dual level for every operation with an input that carries a
    /// tangent, just after <see cref="OnRecorded"/> when the operation is also recorded on the tape.
    /// </summary>
    protected virtual void OnTangent(Node node, Tensor output, Tensor? tangent)
    {
    }

    /// <summary>A backward walk is about to run the rule of <paramref name="node"/> with the upstream gradient <paramref name="grad"/>.</summary>
    protected virtual void OnBackwardStart(Node node, Tensor grad)
    {
    }

    /// <summary>The rule of <paramref name="node"/> ran and produced <paramref name="inputGrads"/> (null for inputs that need none).</summary>
    protected virtual void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
    {
    }

    internal static void RaiseAllocated(Tensor output)
    {
        foreach (var o in t_observers!)
        {
            o.OnOutputAllocated(output);
        }
    }

    internal static void RaiseNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
    {
        foreach (var o in t_observers!)
        {
            o.OnNodeCreated(node, inputs);
        }
    }

    internal static void RaiseTangent(Node node, Tensor output, Tensor? tangent)
    {
        foreach (var o in t_observers!)
        {
            o.OnTangent(node, output, tangent);
        }
    }

    internal static void RaiseRecorded(Node node, Tensor output)
    {
        foreach (var o in t_observers!)
        {
            o.OnRecorded(node, output);
        }
    }

    internal static void RaiseBackwardStart(Node node, Tensor grad)
    {
        foreach (var o in t_observers!)
        {
            o.OnBackwardStart(node, grad);
        }
    }

    internal static void RaiseBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
    {
        foreach (var o in t_observers!)
        {
            o.OnBackwardEnd(node, grad, inputGrads);
        }
    }

    private sealed class Detach(TapeObserver[]? previous) : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (!_done)
            {
                t_observers = previous;
                _done = true;
                Interlocked.Decrement(ref s_attached);
            }
        }
    }
}
