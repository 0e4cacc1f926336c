using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

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
                dst[o] = max ? TensorPrimitives.Max(row) : TensorPrimitives.Min(row);
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
                    ReduceKind.Max => TensorPrimitives.Max(row),
                    _ => TensorPrimitives.Min(row),
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
