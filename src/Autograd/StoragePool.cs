namespace Autograd;

/// <summary>
/// The arrays that ended <see cref="TensorScope"/>s gave back, lent again to the next tensor of the same element type
/// and length made inside a scope. A lent array is the memory of the tensor that ended before, still mapped and often
/// still in the cache; a new array from the collector is neither (see docs/design.md, "Memory for large tensors").
/// </summary>
/// <remarks>
/// Only arrays of <see cref="MinimumLength"/> elements or more are kept; smaller ones cost the collector little. The pool
/// holds at most <see cref="Limit"/> bytes, and after each full collection it lets go of the arrays that no scope has
/// asked for since the full collection before, so that memory a program no longer uses goes back to the collector.
/// </remarks>
internal static class StoragePool
{
    /// <summary>The smallest array the pool keeps, in elements (16 KB of float32).</summary>
    internal const int MinimumLength = 4096;

    private static readonly Lock s_lock = new();

    // Free arrays by element type and length; each list is a stack (the newest at the end, with the full-collection count
    // at the time it came back, so that the oldest, at the front, are the first to go).
    private static readonly Dictionary<(DType DType, int Length), List<(Array Array, int Stamp)>> s_free = [];

    private static long s_bytes;

    static StoragePool()
    {
        _ = new Trimmer();
    }

    /// <summary>The most bytes the pool holds: an eighth of the memory the collector may use (of a container's limit, if any).</summary>
    internal static long Limit { get; } = Math.Max(64L << 20, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>The bytes held now (for tests).</summary>
    internal static long Bytes
    {
        get
        {
            lock (s_lock)
            {
                return s_bytes;
            }
        }
    }

    /// <summary>An array of <paramref name="length"/> elements of <paramref name="dtype"/>: one given back earlier, or a new one.</summary>
    /// <param name="dtype">The element type.</param>
    /// <param name="length">The number of elements (at least <see cref="MinimumLength"/>).</param>
    /// <param name="clear">True to fill a lent array with zeros (a new array is zero when asked for that).</param>
    internal static Array Rent(DType dtype, int length, bool clear)
    {
        lock (s_lock)
        {
            if (s_free.TryGetValue((dtype, length), out var stack) && stack.Count > 0)
            {
                var array = stack[^1].Array;
                stack.RemoveAt(stack.Count - 1);
                s_bytes -= BytesOf(dtype, length);
                if (clear)
                {
                    Array.Clear(array);
                }

                return array;
            }
        }

        return clear ? Tensor.Allocate(dtype, length) : Tensor.AllocateUninitialized(dtype, length);
    }

    /// <summary>Takes <paramref name="array"/> back, unless the pool is full.</summary>
    internal static void Return(DType dtype, Array array)
    {
        var bytes = BytesOf(dtype, array.Length);
        var stamp = GC.CollectionCount(2);
        lock (s_lock)
        {
            if (s_bytes + bytes > Limit)
            {
                return;
            }

            if (!s_free.TryGetValue((dtype, array.Length), out var stack))
            {
                s_free[(dtype, array.Length)] = stack = [];
            }

            stack.Add((array, stamp));
            s_bytes += bytes;
        }
    }

    /// <summary>Lets go of every array held (for tests, and for a program that wants its memory back now).</summary>
    internal static void Clear()
    {
        lock (s_lock)
        {
            s_free.Clear();
            s_bytes = 0;
        }
    }

    /// <summary>Lets go of the arrays that came back before the last full collection but one and were not lent since.</summary>
    private static void Trim()
    {
        var oldest = GC.CollectionCount(2) - 1;
        lock (s_lock)
        {
            foreach (var ((dtype, length), stack) in s_free)
            {
                var stale = 0;
                while (stale < stack.Count && stack[stale].Stamp < oldest)
                {
                    stale++;
                }

                stack.RemoveRange(0, stale);
                s_bytes -= stale * BytesOf(dtype, length);
            }
        }
    }

    private static long BytesOf(DType dtype, int length) => (long)length * (dtype == DType.Float32 ? 4 : 8);

    /// <summary>An object whose finalizer runs after each full collection and trims the pool (it registers itself again).</summary>
    private sealed class Trimmer
    {
        ~Trimmer()
        {
            if (Environment.HasShutdownStarted)
            {
                return;
            }

            Trim();
            GC.ReRegisterForFinalize(this);
        }
    }
}
