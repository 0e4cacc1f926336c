using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Autograd.Study;

/// <summary>What a <see cref="Profiler"/> measured for one operation type (one node <see cref="Node.Name"/>).</summary>
/// <param name="Name">The operation, e.g. <c>Exp</c> (<c>AccumulateGrad</c> for the leaves' accumulators, which run only in backward).</param>
/// <param name="ForwardCount">How many operations of this type were recorded on the tape in the scope.</param>
/// <param name="ForwardTime">Their summed forward time (see <see cref="Profiler"/> for what is measured).</param>
/// <param name="ForwardBytes">The bytes allocated on the thread during their forward windows.</param>
/// <param name="BackwardCount">How many times a backward walk ran the rule of a node of this type.</param>
/// <param name="BackwardTime">The summed time of those rules.</param>
/// <param name="BackwardBytes">The bytes allocated on the thread while those rules ran.</param>
public sealed record ProfileEntry(
    string Name,
    int ForwardCount,
    TimeSpan ForwardTime,
    long ForwardBytes,
    int BackwardCount,
    TimeSpan BackwardTime,
    long BackwardBytes)
{
    /// <summary><see cref="ForwardTime"/> + <see cref="BackwardTime"/>: the key the report is sorted by.</summary>
    public TimeSpan TotalTime => ForwardTime + BackwardTime;

    /// <summary><see cref="ForwardBytes"/> + <see cref="BackwardBytes"/>.</summary>
    public long TotalBytes => ForwardBytes + BackwardBytes;
}

/// <summary>
/// A per-operation profiler for the tape: <c>using var p = Profiler.Start();</c>, run a forward and backward pass, then
/// <c>Console.WriteLine(p.Report())</c>. For each operation type it counts the recorded operations and the backward
/// rules run, and sums their time and the bytes they allocated.
/// </summary>
/// <remarks>
/// <para>
/// The profiler is a <see cref="TapeObserver"/> on the calling thread; it sees only what that thread records and walks.
/// The engine raises no event when an operator begins, so times are approximations built from the events it does raise:
/// </para>
/// <list type="bullet">
/// <item><description><b>Forward</b>: from the first tensor allocated after the previous recorded operation
/// (<see cref="TapeObserver"/>'s OnOutputAllocated; an operator allocates its result just before its kernel runs) to
/// the moment the new node is recorded on its output. This covers the kernel, any temporaries and the node, but not
/// the argument checks and shape arithmetic an operator does before its first allocation. An operation that allocates
/// nothing (a view such as <c>Reshape</c>) is timed from the creation of its node, so it shows only its bookkeeping.
/// Conversely, a tensor allocated without being recorded — a factory such as <c>Tensor.Zeros</c>, or work under
/// <see cref="Tensor.NoGrad"/> — starts the clock early, and the next recorded operation is charged from there.</description></item>
/// <item><description><b>Backward</b>: from just before a node's rule runs to just after (OnBackwardStart to OnBackwardEnd),
/// including the rule's own kernels. The summing of gradients that meet at a node happens between rules and is not
/// charged to any operation.</description></item>
/// <item><description><b>Bytes</b>: <see cref="GC.GetAllocatedBytesForCurrentThread"/> deltas over the same windows;
/// the forward window also counts the storage array of the first tensor, allocated just before the window opens.</description></item>
/// </list>
/// <para>
/// In a create-graph walk the rules record operations: those are counted as forward operations too, and their time
/// is also part of the enclosing rule's backward time. The profiler's own bookkeeping is measured and subtracted.
/// </para>
/// </remarks>
public sealed class Profiler : IDisposable
{
    private readonly Dictionary<string, Accumulator> _stats = [];
    private readonly List<(Node Node, Window Window)> _backward = [];
    private readonly IDisposable _attachment;
    private readonly long _startTicks;
    private long _stopTicks;
    private long _overheadTicks;
    private long _overheadBytes;
    private Window? _forward;

    private Profiler()
    {
        _startTicks = Stopwatch.GetTimestamp();
        _attachment = TapeObserver.Attach(new Observer(this));
    }

    /// <summary>Starts profiling on this thread until the returned profiler is disposed; its results stay readable after that.</summary>
    public static Profiler Start() => new();

    /// <summary>True until the profiler is disposed.</summary>
    public bool IsRunning => _stopTicks == 0;

    /// <summary>The wall-clock time since <see cref="Start"/> (until disposal, once disposed).</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_startTicks, IsRunning ? Stopwatch.GetTimestamp() : _stopTicks);

    /// <summary>One entry per operation type seen, sorted by <see cref="ProfileEntry.TotalTime"/>, largest first (ties by name).</summary>
    public IReadOnlyList<ProfileEntry> Entries =>
    [
        .. _stats
            .Select(kv => kv.Value.ToEntry(kv.Key))
            .OrderByDescending(e => e.TotalTime)
            .ThenBy(e => e.Name, StringComparer.Ordinal),
    ];

    /// <summary>The entry for the operation type <paramref name="name"/>, or null if none was seen.</summary>
    public ProfileEntry? this[string name] => _stats.TryGetValue(name, out var a) ? a.ToEntry(name) : null;

    /// <summary>The total number of operations recorded in the scope (the sum of <see cref="ProfileEntry.ForwardCount"/>).</summary>
    public int ForwardCount => _stats.Values.Sum(a => a.ForwardCount);

    /// <summary>The total number of backward rules run in the scope (the sum of <see cref="ProfileEntry.BackwardCount"/>).</summary>
    public int BackwardCount => _stats.Values.Sum(a => a.BackwardCount);

    /// <summary>Stops profiling (detaches from the tape); the results remain available.</summary>
    public void Dispose()
    {
        if (IsRunning)
        {
            _stopTicks = Stopwatch.GetTimestamp();
            _attachment.Dispose();
        }
    }

    /// <summary>
    /// The results as a text table, one row per operation type sorted by total time, with counts, forward, backward
    /// and total time in milliseconds, and allocated bytes; then a row of totals.
    /// </summary>
    public string Report()
    {
        var entries = Entries;
        var width = Math.Max(9, entries.Count == 0 ? 0 : entries.Max(e => e.Name.Length));
        var text = new StringBuilder();
        string[] header = ["fwd n", "fwd ms", "bwd n", "bwd ms", "total ms", "fwd bytes", "bwd bytes"];
        int[] widths = [6, 10, 6, 10, 10, 13, 13];
        text.Append("operation".PadRight(width));
        for (var i = 0; i < header.Length; i++)
        {
            text.Append(' ').Append(header[i].PadLeft(widths[i]));
        }

        text.AppendLine();
        text.AppendLine(new string('-', width + widths.Sum() + widths.Length));
        foreach (var e in entries)
        {
            Row(text, width, widths, e);
        }

        text.AppendLine(new string('-', width + widths.Sum() + widths.Length));
        var total = new ProfileEntry(
            "total",
            entries.Sum(e => e.ForwardCount),
            TimeSpan.FromTicks(entries.Sum(e => e.ForwardTime.Ticks)),
            entries.Sum(e => e.ForwardBytes),
            entries.Sum(e => e.BackwardCount),
            TimeSpan.FromTicks(entries.Sum(e => e.BackwardTime.Ticks)),
            entries.Sum(e => e.BackwardBytes));
        Row(text, width, widths, total);
        text.Append(CultureInfo.InvariantCulture, $"(wall time in the scope: {Elapsed.TotalMilliseconds:F3} ms)");
        return text.ToString();
    }

    /// <summary>The same text as <see cref="Report"/>.</summary>
    public override string ToString() => Report();

    private static void Row(StringBuilder text, int width, int[] widths, ProfileEntry e)
    {
        string[] cells =
        [
            e.ForwardCount.ToString(CultureInfo.InvariantCulture),
            e.ForwardTime.TotalMilliseconds.ToString("F3", CultureInfo.InvariantCulture),
            e.BackwardCount.ToString(CultureInfo.InvariantCulture),
            e.BackwardTime.TotalMilliseconds.ToString("F3", CultureInfo.InvariantCulture),
            e.TotalTime.TotalMilliseconds.ToString("F3", CultureInfo.InvariantCulture),
            e.ForwardBytes.ToString("N0", CultureInfo.InvariantCulture),
            e.BackwardBytes.ToString("N0", CultureInfo.InvariantCulture),
        ];
        text.Append(e.Name.PadRight(width));
        for (var i = 0; i < cells.Length; i++)
        {
            text.Append(' ').Append(cells[i].PadLeft(widths[i]));
        }

        text.AppendLine();
    }

    private Accumulator Stats(string name)
    {
        if (!_stats.TryGetValue(name, out var a))
        {
            a = new Accumulator();
            _stats[name] = a;
        }

        return a;
    }

    /// <summary>Opens a measurement window now, remembering the overhead so far so that later overhead can be subtracted.</summary>
    private Window Open(long ticks, long bytes) => new(ticks, bytes, _overheadTicks, _overheadBytes);

    /// <summary>The time and bytes since <paramref name="w"/> opened, less the profiler's own overhead in between.</summary>
    private (long Ticks, long Bytes) Close(Window w, long ticks, long bytes)
        => (Math.Max(0, ticks - w.Ticks - (_overheadTicks - w.OverheadTicks)), Math.Max(0, bytes - w.Bytes - (_overheadBytes - w.OverheadBytes)));

    /// <summary>Charges the handler that began at (<paramref name="ticks"/>, <paramref name="bytes"/>) to the overhead.</summary>
    private void EndHandler(long ticks, long bytes)
    {
        _overheadBytes += GC.GetAllocatedBytesForCurrentThread() - bytes;
        _overheadTicks += Stopwatch.GetTimestamp() - ticks;
    }

    /// <summary>The size of a tensor's storage array on the heap (array header plus elements), for the first allocation of a window.</summary>
    private static long StorageBytes(Tensor t)
        => t.ElementCount == 0 ? 0 : (3 * IntPtr.Size) + ((((long)t.ElementCount * t.DType.ElementSize()) + 7) / 8 * 8);

    private sealed class Accumulator
    {
        public int ForwardCount;
        public long ForwardTicks;
        public long ForwardBytes;
        public int BackwardCount;
        public long BackwardTicks;
        public long BackwardBytes;

        public ProfileEntry ToEntry(string name) => new(
            name,
            ForwardCount,
            Stopwatch.GetElapsedTime(0, ForwardTicks),
            ForwardBytes,
            BackwardCount,
            Stopwatch.GetElapsedTime(0, BackwardTicks),
            BackwardBytes);
    }

    private readonly record struct Window(long Ticks, long Bytes, long OverheadTicks, long OverheadBytes);

    private sealed class Observer(Profiler p) : TapeObserver
    {
        protected override void OnOutputAllocated(Tensor output)
        {
            var ticks = Stopwatch.GetTimestamp();
            var bytes = GC.GetAllocatedBytesForCurrentThread();
            if (p._forward is null)
            {
                p._forward = p.Open(ticks, bytes - StorageBytes(output));
            }

            p.EndHandler(ticks, bytes);
        }

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
        {
            var ticks = Stopwatch.GetTimestamp();
            var bytes = GC.GetAllocatedBytesForCurrentThread();
            if (p._forward is null)
            {
                p._forward = p.Open(ticks, bytes);
            }

            p.EndHandler(ticks, bytes);
        }

        protected override void OnRecorded(Node node, Tensor output)
        {
            var ticks = Stopwatch.GetTimestamp();
            var bytes = GC.GetAllocatedBytesForCurrentThread();
            var (dt, db) = p._forward is { } w ? p.Close(w, ticks, bytes) : (0, 0);
            p._forward = null;
            var a = p.Stats(node.Name);
            a.ForwardCount++;
            a.ForwardTicks += dt;
            a.ForwardBytes += db;
            p.EndHandler(ticks, bytes);
        }

        protected override void OnBackwardStart(Node node, Tensor grad)
        {
            var ticks = Stopwatch.GetTimestamp();
            var bytes = GC.GetAllocatedBytesForCurrentThread();
            p._forward = null;
            p._backward.Add((node, default));
            p.EndHandler(ticks, bytes);

            // The window opens after the bookkeeping above (a struct: opening it allocates nothing).
            p._backward[^1] = (node, p.Open(Stopwatch.GetTimestamp(), GC.GetAllocatedBytesForCurrentThread()));
        }

        protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
        {
            var ticks = Stopwatch.GetTimestamp();
            var bytes = GC.GetAllocatedBytesForCurrentThread();
            p._forward = null;
            var index = p._backward.Count - 1;
            while (index >= 0 && !ReferenceEquals(p._backward[index].Node, node))
            {
                index--;
            }

            if (index >= 0)
            {
                var (dt, db) = p.Close(p._backward[index].Window, ticks, bytes);
                p._backward.RemoveRange(index, p._backward.Count - index);
                var a = p.Stats(node.Name);
                a.BackwardCount++;
                a.BackwardTicks += dt;
                a.BackwardBytes += db;
            }

            p.EndHandler(ticks, bytes);
        }
    }
}
