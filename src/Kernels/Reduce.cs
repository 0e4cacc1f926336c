using System.Numerics;
using System.Numerics.Tensors;

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

    /// <summary>dst[o, i] = Σ_j src[o, j, i]. An empty axis sums to 0.</summary>
    public static void Sum<T>(ReadOnlySpan<T> src, int outer, int size, int inner, Span<T> dst)
        where T : IFloatingPointIeee754<T>
    {
        dst.Clear();
        if (size == 0)
        {
            return;
        }

        if (inner == 1)
        {
            for (var o = 0; o < outer; o++)
            {
                dst[o] = TensorPrimitives.Sum(src.Slice(o * size, size));
            }

            return;
        }

        for (var o = 0; o < outer; o++)
        {
            var acc = dst.Slice(o * inner, inner);
            for (var j = 0; j < size; j++)
            {
                TensorPrimitives.Add(acc, src.Slice(((o * size) + j) * inner, inner), acc);
            }
        }
    }

    /// <summary>dst[o, i] = max_j (or min_j) src[o, j, i], NaN propagating. The axis must not be empty.</summary>
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
                    ReduceKind.Sum => TensorPrimitives.Sum(row),
                    ReduceKind.Max => TensorPrimitives.Max(row),
                    _ => TensorPrimitives.Min(row),
                };
                continue;
            }

            if (kind == ReduceKind.Sum)
            {
                acc.Clear();
            }
            else
            {
                src.AsSpan(at, width).CopyTo(acc);
            }

            for (var j = kind == ReduceKind.Sum ? 0 : 1; j < size; j++)
            {
                var row = src.AsSpan(at + (j * inner), width);
                switch (kind)
                {
                    case ReduceKind.Sum: TensorPrimitives.Add(acc, row, acc); break;
                    case ReduceKind.Max: TensorPrimitives.Max(acc, row, acc); break;
                    default: TensorPrimitives.Min(acc, row, acc); break;
                }
            }
        }
    }
}
