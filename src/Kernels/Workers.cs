using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Autograd.Kernels;

/// <summary>A piece of work over an index range [start, end), given as a struct so that it is called without a delegate.</summary>
internal interface IRangeJob
{
    void Run(int start, int end);
}

/// <summary>
/// Splits a range into chunks run by the calling thread and by helper threads (one per extra processor, started on
/// first use, asleep when idle). The caller claims chunks too, so the work completes even when every helper is busy
/// with another caller's work; a call allocates one small object (no closure, no task, nothing queued on the thread
/// pool). Kernels use it for large tensors only: below some tens of thousands of elements one thread is faster.
/// </summary>
internal static class Workers
{
    /// <summary>The number of elements from which elementwise kernels use more than one thread.</summary>
    public const int ElementwiseThreshold = 1 << 16;

    private static readonly Lock s_startLock = new();
    private static Helper[]? s_helpers;

    /// <summary>True when more than one processor is available.</summary>
    public static bool CanSplit { get; } = Environment.ProcessorCount > 1;

    /// <summary>
    /// The number of chunks for <paramref name="work"/> units of work when a chunk should hold at least
    /// <paramref name="minPerChunk"/> units: 1 on one processor or for little work, at most four per processor.
    /// </summary>
    public static int Chunks(long work, long minPerChunk)
    {
        if (!CanSplit || work < 2 * minPerChunk)
        {
            return 1;
        }

        return (int)Math.Min(work / minPerChunk, 4L * Environment.ProcessorCount);
    }

    /// <summary>Runs <paramref name="job"/> over [0, <paramref name="length"/>) in <paramref name="chunks"/> contiguous chunks.</summary>
    public static void For<TJob>(int length, int chunks, TJob job)
        where TJob : struct, IRangeJob
    {
        chunks = Math.Min(chunks, length);
        if (chunks <= 1)
        {
            job.Run(0, length);
            return;
        }

        var work = new Work<TJob>(job, length, chunks);
        var helpers = s_helpers ?? StartHelpers();
        for (var i = 0; i < helpers.Length && i < chunks - 1; i++)
        {
            helpers[i].TryPost(work);
        }

        work.Execute();
        work.Wait();

        // A helper that has not woken yet would keep the work, and the arrays its job holds, alive until it does.
        for (var i = 0; i < helpers.Length && i < chunks - 1; i++)
        {
            helpers[i].Revoke(work);
        }
    }

    private static Helper[] StartHelpers()
    {
        lock (s_startLock)
        {
            if (s_helpers is null)
            {
                var helpers = new Helper[Environment.ProcessorCount - 1];
                for (var i = 0; i < helpers.Length; i++)
                {
                    helpers[i] = new Helper(i);
                }

                s_helpers = helpers;
            }

            return s_helpers;
        }
    }

    private interface IWork
    {
        void Execute();
    }

    /// <summary>A background thread that runs the work posted to its single slot (a busy helper refuses more).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Helpers and their semaphores live as long as the process.")]
    private sealed class Helper
    {
        private readonly SemaphoreSlim _signal = new(0);
        private IWork? _work;

        public Helper(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"Autograd worker {index + 1}" };
            thread.Start();
        }

        /// <summary>Hands <paramref name="work"/> to this helper unless it is busy.</summary>
        public void TryPost(IWork work)
        {
            if (Interlocked.CompareExchange(ref _work, work, null) is null)
            {
                _signal.Release();
            }
        }

        /// <summary>Takes back <paramref name="work"/> (finished by then) if this helper has not started it.</summary>
        public void Revoke(IWork work) => Interlocked.CompareExchange(ref _work, null, work);

        private void Loop()
        {
            while (true)
            {
                _signal.Wait();
                RunPosted();
            }
        }

        /// <summary>
        /// Runs the posted work, if it was not taken back, in a frame of its own: a reference held in
        /// <see cref="Loop"/>'s frame could stay visible to the GC while the thread sleeps, keeping the last job's arrays
        /// (whole tensors) alive until the next job.
        /// </summary>
        [MethodImpl(MethodImplOptions.NoInlining)]
        private void RunPosted()
        {
            var work = Volatile.Read(ref _work);
            if (work is null)
            {
                return;
            }

            work.Execute();
            Interlocked.CompareExchange(ref _work, null, work);
        }
    }

    private sealed class Work<TJob>(TJob job, int length, int chunks) : IWork
        where TJob : struct, IRangeJob
    {
        private readonly TJob _job = job;
        private int _next;
        private int _done;
        private Exception? _error;

        /// <summary>Claims and runs chunks until none is left (a late helper finds none and returns at once).</summary>
        public void Execute()
        {
            while (true)
            {
                var c = Interlocked.Increment(ref _next) - 1;
                if (c >= chunks)
                {
                    return;
                }

                try
                {
                    _job.Run(Start(c), Start(c + 1));
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _error, e, null);
                }

                Interlocked.Increment(ref _done);
            }
        }

        /// <summary>Waits for the chunks other threads claimed (they are running, so this is a short spin).</summary>
        public void Wait()
        {
            var spin = default(SpinWait);
            while (Volatile.Read(ref _done) < chunks)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }

            if (_error is not null)
            {
                ExceptionDispatchInfo.Throw(_error);
            }
        }

        private int Start(int c) => (int)((long)length * c / chunks);
    }
}
