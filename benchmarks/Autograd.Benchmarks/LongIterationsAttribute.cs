namespace Autograd.Benchmarks;

/// <summary>
/// Gives a benchmark class iterations of <see cref="Milliseconds"/> in the report instead of its 100 ms, for calls that
/// take milliseconds and allocate megabytes of new tensors each: the garbage collector's cycle then spans more than one
/// short iteration (a collection every dozen calls or so), and 100 ms iterations, a few calls each, measure whether a
/// collection or a burst of first-touch page faults fell inside them rather than what a call costs in a steady loop.
/// Measured for the Conv2d fwd+bwd on [64, 32, 14, 14] in a process of its own (AMD EPYC Zen 5, 2 cores): per-iteration
/// means of 5.4–19.3 ms with 100 ms iterations, 5.28–5.74 ms with 500 ms ones (mean 5.51 ms).
/// </summary>
/// <param name="milliseconds">The length of an iteration, warm-up and measured.</param>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class LongIterationsAttribute(int milliseconds) : Attribute
{
    /// <summary>The length of an iteration in milliseconds.</summary>
    public int Milliseconds { get; } = milliseconds;
}
