using System.Numerics;
using System.Numerics.Tensors;

namespace Autograd.Kernels;

/// <summary>Reductions over the middle axis of a row-major [outer, size, inner] block.</summary>
internal static class Reduce
{
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
