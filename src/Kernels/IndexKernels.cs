using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Autograd.Kernels;

/// <summary>
/// Index kernels on row-major spans: gather/scatter-add through precomputed offsets, index-select/index-add and
/// strided slices of [outer, size, inner] blocks, block copies for concatenation, one-hot and a broadcasting select.
/// </summary>
internal static class IndexKernels
{
    /// <summary>
    /// For each element p of <paramref name="index"/> (of shape <paramref name="indexShape"/>), the flat offset in a
    /// tensor with strides <paramref name="xStrides"/> of the element at p with its coordinate along
    /// <paramref name="dim"/> replaced by index[p]: the addressing of gather and scatter.
    /// </summary>
    /// <returns>The flat position in <paramref name="index"/> of the first value outside [0, <paramref name="dimSize"/>), or −1.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int GatherOffsets(ReadOnlySpan<long> index, ReadOnlySpan<int> indexShape, ReadOnlySpan<int> xStrides, int dim, int dimSize, Span<int> offsets)
    {
        var rank = indexShape.Length;
        Span<int> counter = stackalloc int[rank];
        var dimStride = xStrides[dim];
        var offset = 0;
        for (var p = 0; p < index.Length; p++)
        {
            var v = index[p];
            if ((ulong)v >= (ulong)dimSize)
            {
                return p;
            }

            offsets[p] = offset + ((int)v * dimStride);

            // Advance the coordinate; the dim being indexed contributes through the index value, not its position.
            for (var k = rank - 1; k >= 0; k--)
            {
                var s = k == dim ? 0 : xStrides[k];
                offset += s;
                if (++counter[k] < indexShape[k])
                {
                    break;
                }

                offset -= s * indexShape[k];
                counter[k] = 0;
            }
        }

        return -1;
    }

    /// <summary>The flat position of the first value of <paramref name="index"/> outside [0, <paramref name="size"/>), or −1.</summary>
    public static int FirstOutOfRange(ReadOnlySpan<long> index, int size)
    {
        for (var p = 0; p < index.Length; p++)
        {
            if ((ulong)index[p] >= (ulong)size)
            {
                return p;
            }
        }

        return -1;
    }

    /// <summary>dst[p] = src[offsets[p]].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Take<T>(ReadOnlySpan<T> src, ReadOnlySpan<int> offsets, Span<T> dst)
    {
        for (var p = 0; p < dst.Length; p++)
        {
            dst[p] = src[offsets[p]];
        }
    }

    /// <summary>dst[offsets[p]] += src[p] (repeated offsets accumulate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddAt<T>(Span<T> dst, ReadOnlySpan<int> offsets, ReadOnlySpan<T> src)
        where T : INumberBase<T>
    {
        for (var p = 0; p < src.Length; p++)
        {
            dst[offsets[p]] += src[p];
        }
    }

    /// <summary>dst[o, j, i] = src[o, index[j], i] for src of shape [outer, size, inner] and dst of [outer, index.Length, inner].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SelectBlocks<T>(ReadOnlySpan<T> src, int outer, int size, int inner, ReadOnlySpan<long> index, Span<T> dst)
    {
        var k = index.Length;
        for (var o = 0; o < outer; o++)
        {
            for (var j = 0; j < k; j++)
            {
                src.Slice(((o * size) + (int)index[j]) * inner, inner).CopyTo(dst.Slice(((o * k) + j) * inner, inner));
            }
        }
    }

    /// <summary>dst[o, index[j], i] += src[o, j, i] for dst of shape [outer, size, inner] (repeated indices accumulate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddBlocks<T>(Span<T> dst, int outer, int size, int inner, ReadOnlySpan<long> index, ReadOnlySpan<T> src)
        where T : IAdditionOperators<T, T, T>, IAdditiveIdentity<T, T>
    {
        var k = index.Length;
        for (var o = 0; o < outer; o++)
        {
            for (var j = 0; j < k; j++)
            {
                var d = dst.Slice(((o * size) + (int)index[j]) * inner, inner);
                TensorPrimitives.Add(d, src.Slice(((o * k) + j) * inner, inner), d);
            }
        }
    }

    /// <summary>dst[o, j, i] = src[o, start + j·step, i] for j &lt; count; src has shape [outer, size, inner].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SliceCopy<T>(ReadOnlySpan<T> src, int outer, int size, int inner, int start, int step, int count, Span<T> dst)
    {
        for (var o = 0; o < outer; o++)
        {
            if (step == 1)
            {
                src.Slice(((o * size) + start) * inner, count * inner).CopyTo(dst.Slice(o * count * inner, count * inner));
                continue;
            }

            for (var j = 0; j < count; j++)
            {
                src.Slice(((o * size) + start + (j * step)) * inner, inner).CopyTo(dst.Slice(((o * count) + j) * inner, inner));
            }
        }
    }

    /// <summary>dst[o, start + j·step, i] = src[o, j, i] for j &lt; count (the adjoint of <see cref="SliceCopy"/>; other elements untouched).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SliceScatter<T>(ReadOnlySpan<T> src, int outer, int size, int inner, int start, int step, int count, Span<T> dst)
    {
        for (var o = 0; o < outer; o++)
        {
            if (step == 1)
            {
                src.Slice(o * count * inner, count * inner).CopyTo(dst.Slice(((o * size) + start) * inner, count * inner));
                continue;
            }

            for (var j = 0; j < count; j++)
            {
                src.Slice(((o * count) + j) * inner, inner).CopyTo(dst.Slice(((o * size) + start + (j * step)) * inner, inner));
            }
        }
    }

    /// <summary>Copies rows of <paramref name="chunk"/> elements of src into dst rows of <paramref name="dstRow"/> elements, at <paramref name="dstOffset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void CopyRows<T>(ReadOnlySpan<T> src, int outer, int chunk, Span<T> dst, int dstRow, int dstOffset)
    {
        for (var o = 0; o < outer; o++)
        {
            src.Slice(o * chunk, chunk).CopyTo(dst.Slice((o * dstRow) + dstOffset, chunk));
        }
    }

    /// <summary>dst[p, index[p]] = 1 in a zeroed dst of shape [index.Length, classes]; indices must be in range.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void OneHot<T>(ReadOnlySpan<long> index, int classes, Span<T> dst)
        where T : INumberBase<T>
    {
        for (var p = 0; p < index.Length; p++)
        {
            dst[(p * classes) + (int)index[p]] = T.One;
        }
    }

    /// <summary>
    /// dst = c ? a : b elementwise, with c, a and b read through broadcast strides over dst's <paramref name="shape"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Where<T>(ReadOnlySpan<bool> c, int[] sc, ReadOnlySpan<T> a, int[] sa, ReadOnlySpan<T> b, int[] sb, ReadOnlySpan<int> shape, Span<T> dst)
    {
        if (dst.Length == 0)
        {
            return;
        }

        var rank = shape.Length;
        if (rank == 0)
        {
            dst[0] = c[0] ? a[0] : b[0];
            return;
        }

        var n = shape[rank - 1];
        int ic = sc[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
        var outer = dst.Length / n;
        Span<int> counter = stackalloc int[rank];
        int offC = 0, offA = 0, offB = 0;
        for (var o = 0; o < outer; o++)
        {
            var d = dst.Slice(o * n, n);
            for (var i = 0; i < n; i++)
            {
                d[i] = c[offC + (i * ic)] ? a[offA + (i * ia)] : b[offB + (i * ib)];
            }

            for (var k = rank - 2; k >= 0; k--)
            {
                offC += sc[k];
                offA += sa[k];
                offB += sb[k];
                if (++counter[k] < shape[k])
                {
                    break;
                }

                offC -= sc[k] * shape[k];
                offA -= sa[k] * shape[k];
                offB -= sb[k] * shape[k];
                counter[k] = 0;
            }
        }
    }
}
