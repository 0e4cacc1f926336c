using System.Runtime.ExceptionServices;

namespace Autograd.Kernels;

/// <summary>A piece of work over an index range [start, end), given as a struct so that it is called without a delegate.</summary>
internal interface IRangeJob
{
    void Run(int start, int end);
}

/// <summary>
/// Splits a range into chunks and runs them on the calling thread and on thread-pool threads. The caller claims chunks
/// too, so the work completes even when no pool thread is free; one small object is allocated per call (no closure,
/// no task). Used by kernels on large tensors only: below a few tens of thousands of elements a single thread is faster.
/// </summary>
internal static class Workers
{
    /// <summary>The number of elements from which elementwise kernels use more than one thread.</summary>
    public const int ElementwiseThreshold = 1 << 16;

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
        var helpers = Math.Min(Environment.ProcessorCount, chunks) - 1;
        for (var i = 0; i < helpers; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(work, preferLocal: false);
        }

        work.Execute();
        work.Wait();
    }

    private sealed class Work<TJob>(TJob job, int length, int chunks) : IThreadPoolWorkItem
        where TJob : struct, IRangeJob
    {
        private readonly TJob _job = job;
        private int _next;
        private int _done;
        private Exception? _error;

        /// <summary>Claims and runs chunks until none is left (a late pool thread finds none and returns at once).</summary>
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
