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
    /// split by output element (rows of the outer dimension, or tiles of inner columns), never within one output's
    /// sum, so every result is the same whatever the number of threads.
    /// </summary>
    public static void Run<T>(T[] src, int srcOffset, int outer, int size, int inner, T[] dst, ReduceKind kind)
        where T : IFloatingPointIeee754<T>
    {
        var total = (long)outer * size * inner;
        var chunks = Workers.Chunks(total, ParallelElements / 2);
        if (chunks == 1 || size == 0)
        {
            RunSpan(src.AsSpan(srcOffset, outer * size * inner), outer, size, inner, dst.AsSpan(0, outer * inner), kind);
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

    /// <summary>Rows of a float32 column sum added in float32 (one running sum per column) before going to float64.</summary>
    private const int Float32ColumnBlock = 64;

    /// <summary>
    /// dst[o, i] = Σ_j src[o, j, i]. An empty axis sums to 0. float32 sums add blocks of terms in float32 (a row in
    /// blocks of <see cref="Float32Block"/> over vector lanes, columns in blocks of <see cref="Float32ColumnBlock"/> rows)
    /// and the blocks' totals in float64, so the error does not grow with the length of the axis as a plain float32
    /// running sum's does.
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

    /// <summary>Σ row, float32 by blocks (see <see cref="Sum{T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T SumRow<T>(ReadOnlySpan<T> row)
        where T : IFloatingPointIeee754<T>
    {
        if (typeof(T) != typeof(float) || row.Length <= Float32Block)
        {
            return TensorPrimitives.Sum(row);
        }

        var total = 0.0;
        for (var start = 0; start < row.Length; start += Float32Block)
        {
            total += double.CreateTruncating(TensorPrimitives.Sum(row.Slice(start, Math.Min(Float32Block, row.Length - start))));
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool TryRowExtreme<T>(ReadOnlySpan<T> row, bool max, out T result)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        result = T.Zero;
        var w = Vector<T>.Count;
        var n = row.Length;
        if (!Vector.IsHardwareAccelerated || n < 2 * w)
        {
            return false;
        }

        ref var r = ref MemoryMarshal.GetReference(row);
        var a0 = Vector.LoadUnsafe(ref r);
        var a1 = a0;
        var nan = Vector<T>.Zero;
        var i = 0;
        for (; i <= n - (2 * w); i += 2 * w)
        {
            var v0 = Vector.LoadUnsafe(ref r, (nuint)i);
            var v1 = Vector.LoadUnsafe(ref r, (nuint)(i + w));
            nan |= Vector.IsNaN(v0) | Vector.IsNaN(v1);
            a0 = max ? Vector.MaxNative(a0, v0) : Vector.MinNative(a0, v0);
            a1 = max ? Vector.MaxNative(a1, v1) : Vector.MinNative(a1, v1);
        }

        if (n - i > w)
        {
            var v = Vector.LoadUnsafe(ref r, (nuint)i);
            nan |= Vector.IsNaN(v);
            a1 = max ? Vector.MaxNative(a1, v) : Vector.MinNative(a1, v);
        }

        if (i < n)
        {
            // The last vector covers what is left: an extreme does not mind seeing elements twice.
            var v = Vector.LoadUnsafe(ref r, (nuint)(n - w));
            nan |= Vector.IsNaN(v);
            a0 = max ? Vector.MaxNative(a0, v) : Vector.MinNative(a0, v);
        }

        // A NaN lane is all ones, which compares unequal to zero.
        if (!Vector.EqualsAll(nan, Vector<T>.Zero))
        {
            return false;
        }

        var a = max ? Vector.MaxNative(a0, a1) : Vector.MinNative(a0, a1);
        result = a[0];
        for (var lane = 1; lane < w; lane++)
        {
            result = max ? T.Max(result, a[lane]) : T.Min(result, a[lane]);
        }

        return !T.IsZero(result);
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
