using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Autograd.Kernels;

/// <summary>Reductions over the middle axis of a row-major [outer, size, inner] block.</summary>
internal static class Reduce
{
    /// <summary>The number of input elements from which a reduction uses more than one thread.</summary>
    private const int ParallelElements = 1 << 16;

    /// <summary>
    /// <see cref="Sum{T}"/> or <see cref="Extreme{T}"/> over arrays, split between threads when the input is large. Work is
    /// split by output element (rows of the outer dimension, or tiles of inner columns); with fewer rows than chunks, a
    /// row is cut at whole sum blocks (<see cref="LongRows{T}"/>). Every result is the same whatever the number of threads.
    /// </summary>
    public static void Run<T>(T[] src, int srcOffset, int outer, int size, int inner, T[] dst, ReduceKind kind)
        where T : IFloatingPointIeee754<T>
    {
        var chunks = ChunksFor((long)outer * size * inner);
        if (chunks == 1 || size == 0)
        {
            RunSpan(src.AsSpan(srcOffset, outer * size * inner), outer, size, inner, dst.AsSpan(0, outer * inner), kind);
            return;
        }

        if (SplitsLongRows<T>(outer, size, inner, chunks))
        {
            LongRows(src, srcOffset, outer, size, dst, kind, chunks);
            return;
        }

        // Split the rows; with too few rows, split each block's columns into tiles of at least 64.
        var tile = inner;
        if (outer < chunks && inner >= 128)
        {
            tile = Math.Max(64, (inner / Math.Max(1, chunks / outer)) / 16 * 16);
        }

        var tiles = (inner + tile - 1) / tile;
        Workers.For(outer * tiles, chunks, new ReduceJob<T>(src, srcOffset, dst, size, inner, tile, tiles, kind));
    }

    /// <summary>
    /// Fewer rows than chunks: each row is cut into segments of whole sum blocks that the threads share. A sum's blocks are
    /// added as <see cref="SumRow{T}"/> adds them (each block's total kept, then the totals in order), an extreme's segments
    /// are combined by the maximum (minimum) that <see cref="RowExtreme{T}"/> computes, so the result has the bits of one
    /// thread's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LongRows<T>(T[] src, int srcOffset, int outer, int size, T[] dst, ReduceKind kind, int chunks)
        where T : IFloatingPointIeee754<T>
    {
        var block = SumBlock<T>();
        var blocks = (size + block - 1) / block;
        var segments = Math.Min(blocks, (chunks + outer - 1) / outer);
        var segment = (blocks + segments - 1) / segments * block;
        segments = (size + segment - 1) / segment;
        var totals = ArrayPool<double>.Shared.Rent(kind == ReduceKind.Sum ? outer * blocks : 0);
        var partials = ArrayPool<T>.Shared.Rent(kind == ReduceKind.Sum ? 0 : outer * segments);
        try
        {
            Workers.For(outer * segments, chunks, new LongRowJob<T>(src, srcOffset, size, segment, segments, kind, totals, partials));
            for (var o = 0; o < outer; o++)
            {
                if (kind == ReduceKind.Sum)
                {
                    dst[o] = AddInOrder<T>(totals.AsSpan(o * blocks, blocks));
                    continue;
                }

                var acc = partials[o * segments];
                for (var s = 1; s < segments; s++)
                {
                    acc = kind == ReduceKind.Max ? T.Max(acc, partials[(o * segments) + s]) : T.Min(acc, partials[(o * segments) + s]);
                }

                dst[o] = acc;
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(totals);
            ArrayPool<T>.Shared.Return(partials);
        }
    }

    /// <summary>Whether <see cref="Run{T}"/> cuts rows into segments for <paramref name="chunks"/> chunks (fewer rows than chunks, each longer than a sum block).</summary>
    internal static bool SplitsLongRows<T>(int outer, int size, int inner, int chunks)
        => inner == 1 && outer < chunks && size > SumBlock<T>();

    /// <summary>The number of chunks <see cref="Run{T}"/> makes of a reduction of <paramref name="elements"/> input elements.</summary>
    internal static int ChunksFor(long elements) => Workers.Chunks(elements, ParallelElements / 2);

    private static void RunSpan<T>(ReadOnlySpan<T> src, int outer, int size, int inner, Span<T> dst, ReduceKind kind)
        where T : IFloatingPointIeee754<T>
    {
        if (kind == ReduceKind.Sum)
        {
            Sum(src, outer, size, inner, dst);
        }
        else
        {
            Extreme(src, outer, size, inner, dst, kind == ReduceKind.Max);
        }
    }

    /// <summary>Terms of a float32 row sum added in float32 (in vector lanes) before their block's total goes to a float64 accumulator.</summary>
    private const int Float32Block = 256;

    /// <summary>Terms of a float64 row sum added (in vector lanes) before their block's total goes to the row's accumulator.</summary>
    private const int Float64Block = 4096;

    /// <summary>Rows of a float32 column sum added in float32 (one running sum per column) before going to float64.</summary>
    private const int Float32ColumnBlock = 64;

    /// <summary>
    /// dst[o, i] = Σ_j src[o, j, i]. An empty axis sums to 0. A row is summed in blocks (<see cref="Float32Block"/>
    /// float32 terms, <see cref="Float64Block"/> float64 terms, each block as <c>TensorPrimitives.Sum</c> adds it) whose
    /// totals are added in order in float64: for float32 the error does not grow with the length of the axis as a plain
    /// float32 running sum's does, and a long row's blocks can be summed on several threads with the same result. float32
    /// columns are added in blocks of <see cref="Float32ColumnBlock"/> rows whose totals go to float64.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sum<T>(ReadOnlySpan<T> src, int outer, int size, int inner, Span<T> dst)
        where T : IFloatingPointIeee754<T>
    {
        for (var o = 0; o < outer; o++)
        {
            var block = src.Slice(o * size * inner, size * inner);
            if (inner == 1)
            {
                dst[o] = SumRow(block);
            }
            else
            {
                SumColumns(block, size, inner, dst.Slice(o * inner, inner));
            }
        }
    }

    /// <summary>The number of terms in one block of a row sum (see <see cref="Sum{T}"/>).</summary>
    internal static int SumBlock<T>() => typeof(T) == typeof(float) ? Float32Block : Float64Block;

    /// <summary>Σ row, by blocks (see <see cref="Sum{T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T SumRow<T>(ReadOnlySpan<T> row)
        where T : IFloatingPointIeee754<T>
    {
        var block = SumBlock<T>();
        if (row.Length <= block)
        {
            return TensorPrimitives.Sum(row);
        }

        var total = 0.0;
        for (var start = 0; start < row.Length; start += block)
        {
            total += BlockTotal(row.Slice(start, Math.Min(block, row.Length - start)));
        }

        return T.CreateTruncating(total);
    }

    /// <summary>One block's total for <see cref="SumRow{T}"/>.</summary>
    internal static double BlockTotal<T>(ReadOnlySpan<T> block)
        where T : IFloatingPointIeee754<T>
        => double.CreateTruncating(TensorPrimitives.Sum(block));

    /// <summary>The blocks' totals added in order, as <see cref="SumRow{T}"/> adds them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static T AddInOrder<T>(ReadOnlySpan<double> totals)
        where T : IFloatingPointIeee754<T>
    {
        var total = 0.0;
        foreach (var t in totals)
        {
            total += t;
        }

        return T.CreateTruncating(total);
    }

    /// <summary>
    /// acc[i] = Σ_j src[j·stride + i] for i &lt; acc.Length and j &lt; size (overwriting acc); float32 by blocks of rows
    /// (see <see cref="Sum{T}"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SumColumns<T>(ReadOnlySpan<T> src, int size, int stride, Span<T> acc)
        where T : IFloatingPointIeee754<T>
    {
        var width = acc.Length;
        acc.Clear();
        if (typeof(T) != typeof(float) || size <= Float32ColumnBlock)
        {
            for (var j = 0; j < size; j++)
            {
                TensorPrimitives.Add(acc, src.Slice(j * stride, width), acc);
            }

            return;
        }

        var totals = ArrayPool<double>.Shared.Rent(width);
        try
        {
            var t = totals.AsSpan(0, width);
            t.Clear();
            for (var start = 0; start < size; start += Float32ColumnBlock)
            {
                acc.Clear();
                var end = Math.Min(size, start + Float32ColumnBlock);
                for (var j = start; j < end; j++)
                {
                    TensorPrimitives.Add(acc, src.Slice(j * stride, width), acc);
                }

                for (var i = 0; i < width; i++)
                {
                    t[i] += double.CreateTruncating(acc[i]);
                }
            }

            for (var i = 0; i < width; i++)
            {
                acc[i] = T.CreateTruncating(t[i]);
            }
        }
        finally
        {
            ArrayPool<double>.Shared.Return(totals);
        }
    }

    /// <summary>dst[o, i] = max_j (or min_j) src[o, j, i], NaN propagating. The axis must not be empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Extreme<T>(ReadOnlySpan<T> src, int outer, int size, int inner, Span<T> dst, bool max)
        where T : IFloatingPointIeee754<T>
    {
        if (inner == 1)
        {
            for (var o = 0; o < outer; o++)
            {
                var row = src.Slice(o * size, size);
                dst[o] = RowExtreme(row, max);
            }

            return;
        }

        for (var o = 0; o < outer; o++)
        {
            var acc = dst.Slice(o * inner, inner);
            src.Slice(o * size * inner, inner).CopyTo(acc);
            for (var j = 1; j < size; j++)
            {
                var row = src.Slice(((o * size) + j) * inner, inner);
                if (max)
                {
                    TensorPrimitives.Max(acc, row, acc);
                }
                else
                {
                    TensorPrimitives.Min(acc, row, acc);
                }
            }
        }
    }

    /// <summary>
    /// The maximum (or minimum) of a non-empty row, the value <c>TensorPrimitives.Max</c> (<c>Min</c>) gives: IEEE 754's,
    /// NaN propagating and +0 above −0. Those keep their order with several instructions per vector (on 256-bit vectors
    /// 10⁶ float32 in rows of 1024 took five times as long as the processor's own max); here the processor's max runs in two
    /// accumulators with a NaN check beside it, and a row holding a NaN, or whose result is a zero (whose sign the order
    /// decides), is handed to <c>TensorPrimitives</c>. Any other result is one value with one representation, so the
    /// same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T RowExtreme<T>(ReadOnlySpan<T> row, bool max)
        where T : IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)
            && TryRowExtreme(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(row)), row.Length), max, out var f))
        {
            return Unsafe.As<float, T>(ref f);
        }

        if (typeof(T) == typeof(double)
            && TryRowExtreme(MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<T, double>(ref MemoryMarshal.GetReference(row)), row.Length), max, out var d))
        {
            return Unsafe.As<double, T>(ref d);
        }

        return max ? TensorPrimitives.Max(row) : TensorPrimitives.Min(row);
    }

    /// <summary><see cref="RowExtreme{T}"/>'s vector loop: false for rows shorter than two vectors, holding a NaN, or with a zero result.</summary>
    private static bool TryRowExtreme<T>(ReadOnlySpan<T> row, bool max, out T result)
        where T : unmanaged, IFloatingPointIeee754<T>
        => max ? TryRowExtreme<T, MaxOf>(row, out result) : TryRowExtreme<T, MinOf>(row, out result);

    /// <summary>
    /// The loop of <see cref="TryRowExtreme{T}"/> for one of max and min (<typeparamref name="TOp"/>, so that the choice is
    /// made once, not per vector): <see cref="Vector{T}"/>, four accumulators, the NaN test beside them. 512-bit vectors
    /// were slower on rows of about a thousand (1024×1024 float32 57 against 40 µs) and no faster on long ones.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool TryRowExtreme<T, TOp>(ReadOnlySpan<T> row, out T result)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : struct, IExtremeOf
    {
        result = T.Zero;
        ref var r = ref MemoryMarshal.GetReference(row);
        var n = (nuint)row.Length;
        if (!Vector.IsHardwareAccelerated || n < 2 * (nuint)Vector<T>.Count)
        {
            return false;
        }

        var w = (nuint)Vector<T>.Count;
        var a0 = Vector.LoadUnsafe(ref r);
        var (a1, a2, a3) = (a0, a0, a0);
        var nan = Vector<T>.Zero;
        nuint i = 0;
        for (; i + (4 * w) <= n; i += 4 * w)
        {
            var v0 = Vector.LoadUnsafe(ref r, i);
            var v1 = Vector.LoadUnsafe(ref r, i + w);
            var v2 = Vector.LoadUnsafe(ref r, i + (2 * w));
            var v3 = Vector.LoadUnsafe(ref r, i + (3 * w));
            nan |= (Vector.IsNaN(v0) | Vector.IsNaN(v1)) | (Vector.IsNaN(v2) | Vector.IsNaN(v3));
            (a0, a1, a2, a3) = (TOp.Of(a0, v0), TOp.Of(a1, v1), TOp.Of(a2, v2), TOp.Of(a3, v3));
        }

        for (; i + w <= n; i += w)
        {
            var v = Vector.LoadUnsafe(ref r, i);
            nan |= Vector.IsNaN(v);
            a0 = TOp.Of(a0, v);
        }

        if (i < n)
        {
            // The last vector covers what is left: an extreme does not mind seeing elements twice.
            var v = Vector.LoadUnsafe(ref r, n - w);
            nan |= Vector.IsNaN(v);
            a1 = TOp.Of(a1, v);
        }

        var a = TOp.Of(TOp.Of(a0, a1), TOp.Of(a2, a3));
        result = a[0];
        for (var lane = 1; lane < Vector<T>.Count; lane++)
        {
            result = TOp.Of(result, a[lane]);
        }

        // A NaN lane is all ones, which compares unequal to zero.
        return Vector.EqualsAll(nan, Vector<T>.Zero) && !T.IsZero(result);
    }

    /// <summary>The maximum or the minimum, on vectors (the processor's own instruction) and on elements.</summary>
    private interface IExtremeOf
    {
        static abstract Vector<T> Of<T>(Vector<T> a, Vector<T> b);

        static abstract T Of<T>(T a, T b)
            where T : IFloatingPointIeee754<T>;
    }

    private readonly struct MaxOf : IExtremeOf
    {
        public static Vector<T> Of<T>(Vector<T> a, Vector<T> b) => Vector.MaxNative(a, b);

        public static T Of<T>(T a, T b)
            where T : IFloatingPointIeee754<T>
            => T.Max(a, b);
    }

    private readonly struct MinOf : IExtremeOf
    {
        public static Vector<T> Of<T>(Vector<T> a, Vector<T> b) => Vector.MinNative(a, b);

        public static T Of<T>(T a, T b)
            where T : IFloatingPointIeee754<T>
            => T.Min(a, b);
    }

    /// <summary>The index of the first maximum (or minimum) along the axis; NaN counts as the extreme, as in PyTorch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ArgExtreme<T>(ReadOnlySpan<T> src, int outer, int size, int inner, Span<long> dst, bool max)
        where T : IFloatingPointIeee754<T>
    {
        for (var o = 0; o < outer; o++)
        {
            for (var i = 0; i < inner; i++)
            {
                var baseIdx = (o * size * inner) + i;
                var best = src[baseIdx];
                long bestJ = 0;
                for (var j = 1; j < size && !T.IsNaN(best); j++)
                {
                    var v = src[baseIdx + (j * inner)];
                    if (T.IsNaN(v) || (max ? v > best : v < best))
                    {
                        best = v;
                        bestJ = j;
                    }
                }

                dst[(o * inner) + i] = bestJ;
            }
        }
    }
}

/// <summary>The reduction a <see cref="Reduce.Run{T}"/> performs.</summary>
internal enum ReduceKind
{
    Sum,
    Max,
    Min,
}

/// <summary>
/// Segments of long rows (see <c>Reduce.LongRows</c>): work item w is segment w % segments of row w / segments; a sum
/// writes each of its blocks' totals to <paramref name="totals"/> (row o's from o · blocks per row), an extreme writes the
/// segment's to <paramref name="partials"/>[w].
/// </summary>
internal readonly struct LongRowJob<T>(T[] src, int srcOffset, int size, int segment, int segments, ReduceKind kind, double[] totals, T[] partials) : IRangeJob
    where T : IFloatingPointIeee754<T>
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(int start, int end)
    {
        var block = Reduce.SumBlock<T>();
        var blocksPerRow = (size + block - 1) / block;
        for (var w = start; w < end; w++)
        {
            var o = w / segments;
            var from = (w % segments) * segment;
            var part = src.AsSpan(srcOffset + (o * size) + from, Math.Min(segment, size - from));
            if (kind != ReduceKind.Sum)
            {
                partials[w] = Reduce.RowExtreme<T>(part, kind == ReduceKind.Max);
                continue;
            }

            var at = (o * blocksPerRow) + (from / block);
            for (var b = 0; b < part.Length; b += block)
            {
                totals[at++] = Reduce.BlockTotal<T>(part.Slice(b, Math.Min(block, part.Length - b)));
            }
        }
    }
}

/// <summary>One reduction over rows, or over column tiles [c0, c0 + tile) of one [size, inner] block.</summary>
internal readonly struct ReduceJob<T>(T[] src, int srcOffset, T[] dst, int size, int inner, int tile, int tiles, ReduceKind kind) : IRangeJob
    where T : IFloatingPointIeee754<T>
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void Run(int start, int end)
    {
        for (var w = start; w < end; w++)
        {
            var o = w / tiles;
            var c0 = (w % tiles) * tile;
            var width = Math.Min(tile, inner - c0);
            var acc = dst.AsSpan((o * inner) + c0, width);
            var at = srcOffset + (o * size * inner) + c0;
            if (inner == 1)
            {
                var row = src.AsSpan(at, size);
                acc[0] = kind switch
                {
                    ReduceKind.Sum => Reduce.SumRow<T>(row),
                    ReduceKind.Max => Reduce.RowExtreme<T>(row, max: true),
                    _ => Reduce.RowExtreme<T>(row, max: false),
                };
                continue;
            }

            if (kind == ReduceKind.Sum)
            {
                Reduce.SumColumns<T>(src.AsSpan(at, ((size - 1) * inner) + width), size, inner, acc);
                continue;
            }

            src.AsSpan(at, width).CopyTo(acc);
            for (var j = 1; j < size; j++)
            {
                var row = src.AsSpan(at + (j * inner), width);
                if (kind == ReduceKind.Max)
                {
                    TensorPrimitives.Max(acc, row, acc);
                }
                else
                {
                    TensorPrimitives.Min(acc, row, acc);
                }
            }
        }
    }
}
