using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>A binary elementwise operation, given for one element and for contiguous runs (vectorised).</summary>
internal interface IBinaryKernel<T>
{
    static abstract T Apply(T a, T b);

    static abstract void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst);

    static abstract void Run(ReadOnlySpan<T> a, T b, Span<T> dst);

    static abstract void Run(T a, ReadOnlySpan<T> b, Span<T> dst);
}

/// <summary>
/// Loops over strided (broadcast, permuted) layouts. Dimensions that are contiguous for every operand are merged
/// first, so the innermost loop runs over the longest possible contiguous run and can be vectorised.
/// </summary>
internal static class Strided
{
    /// <summary>
    /// dst = op(a, b) over the rows [start, end) of a merged layout (<see cref="Merge"/>; a row is a run of its innermost
    /// dimension), so that threads can share the rows of one product.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BinaryRows<T, TOp>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst, MergedLayout layout, int start, int end)
        where TOp : IBinaryKernel<T>
    {
        if (dst.Length == 0)
        {
            return;
        }

        var (dims, stridesA, stridesB) = layout;
        var rank = dims.Length;
        var n = dims[rank - 1];
        var ia = stridesA[rank - 1];
        var ib = stridesB[rank - 1];
        var outer = Math.Min(layout.Rows(dst.Length), end);
        Span<int> counter = stackalloc int[Math.Max(rank, 1)];
        var offA = 0;
        var offB = 0;
        for (int k = rank - 2, rest = start; k >= 0; k--)
        {
            counter[k] = rest % dims[k];
            rest /= dims[k];
            offA += counter[k] * stridesA[k];
            offB += counter[k] * stridesB[k];
        }

        for (var o = start; o < outer; o++)
        {
            var d = dst.Slice(o * n, n);
            if (ia == 1 && ib == 1)
            {
                TOp.Run(a.Slice(offA, n), b.Slice(offB, n), d);
            }
            else if (ia == 1 && ib == 0)
            {
                TOp.Run(a.Slice(offA, n), b[offB], d);
            }
            else if (ia == 0 && ib == 1)
            {
                TOp.Run(a[offA], b.Slice(offB, n), d);
            }
            else
            {
                for (var i = 0; i < n; i++)
                {
                    d[i] = TOp.Apply(a[offA + (i * ia)], b[offB + (i * ib)]);
                }
            }

            // Advance the outer counter (all dims but the last).
            for (var k = rank - 2; k >= 0; k--)
            {
                offA += stridesA[k];
                offB += stridesB[k];
                if (++counter[k] < dims[k])
                {
                    break;
                }

                offA -= stridesA[k] * dims[k];
                offB -= stridesB[k] * dims[k];
                counter[k] = 0;
            }
        }
    }

    /// <summary>dst (contiguous, of the given shape) = src read with <paramref name="srcStrides"/> (broadcast or permuted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Copy<T>(ReadOnlySpan<T> src, int[] srcStrides, ReadOnlySpan<int> shape, Span<T> dst)
    {
        if (dst.Length == 0)
        {
            return;
        }

        var (dims, ss, _) = Merge(shape, srcStrides, srcStrides);
        var rank = dims.Length;
        var n = dims[rank - 1];
        var inner = ss[rank - 1];
        var outer = dst.Length / n;
        Span<int> counter = stackalloc int[Math.Max(rank, 1)];
        var off = 0;
        for (var o = 0; o < outer; o++)
        {
            var d = dst.Slice(o * n, n);
            if (inner == 1)
            {
                src.Slice(off, n).CopyTo(d);
            }
            else if (inner == 0)
            {
                d.Fill(src[off]);
            }
            else
            {
                for (var i = 0; i < n; i++)
                {
                    d[i] = src[off + (i * inner)];
                }
            }

            for (var k = rank - 2; k >= 0; k--)
            {
                off += ss[k];
                if (++counter[k] < dims[k])
                {
                    break;
                }

                off -= ss[k] * dims[k];
                counter[k] = 0;
            }
        }
    }

    /// <summary>
    /// The layout of dst's shape read with strides <paramref name="sa"/> and <paramref name="sb"/>, with size-1 dimensions
    /// dropped and neighbours that are contiguous in both stride sets merged.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static MergedLayout Merge(ReadOnlySpan<int> shape, int[] sa, int[] sb)
    {
        var dims = new List<int>(shape.Length);
        var la = new List<int>(shape.Length);
        var lb = new List<int>(shape.Length);
        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 1)
            {
                continue;
            }

            if (dims.Count > 0)
            {
                var last = dims.Count - 1;
                if (la[last] == sa[i] * shape[i] && lb[last] == sb[i] * shape[i])
                {
                    dims[last] *= shape[i];
                    la[last] = sa[i];
                    lb[last] = sb[i];
                    continue;
                }
            }

            dims.Add(shape[i]);
            la.Add(sa[i]);
            lb.Add(sb[i]);
        }

        if (dims.Count == 0)
        {
            return new([1], [1], [1]);
        }

        return new([.. dims], [.. la], [.. lb]);
    }
}

/// <summary>A strided layout after <see cref="Strided.Merge"/>: its dimensions and the strides of two operands.</summary>
internal readonly record struct MergedLayout(int[] Dims, int[] A, int[] B)
{
    /// <summary>The runs of the innermost dimension in <paramref name="elements"/> elements of this layout.</summary>
    public int Rows(int elements) => elements == 0 ? 0 : elements / Dims[^1];
}

internal readonly struct AddKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => a + b;

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => a + b;

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, AddKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, AddKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, AddKernel<T>>(b, a, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Add(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Add(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Add(b, a, dst);
}

internal readonly struct SubKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => a - b;

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => a - b;

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, SubKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, SubKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, SubKernel<T>>(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Subtract(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Subtract(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Subtract(a, b, dst);
}

internal readonly struct MulKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => a * b;

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => a * b;

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MulKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, MulKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MulKernel<T>>(b, a, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Multiply(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Multiply(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Multiply(b, a, dst);
}

internal readonly struct DivKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => a / b;

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => a / b;

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, DivKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, DivKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, DivKernel<T>>(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Divide(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Divide(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Divide(a, b, dst);
}

/// <summary>1 where a == b, else 0 (a mask in the floating type).</summary>
internal readonly struct EqKernel<T> : IBinaryKernel<T>
    where T : IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => a == b ? T.One : T.Zero;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
    {
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = a[i] == b[i] ? T.One : T.Zero;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst)
    {
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = a[i] == b ? T.One : T.Zero;
        }
    }

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Run(b, a, dst);
}
