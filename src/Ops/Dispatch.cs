using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>Checks shared by operators and the glue that turns a kernel on spans into a tensor result.</summary>
internal static class Dispatch
{
    /// <summary>
    /// Runs <paramref name="work"/> with the element type of <paramref name="dtype"/> (float64 or float32): the one place where a
    /// computation written once as <see cref="IFloatWork.Run{T}"/> meets the dtype of its tensors.
    /// </summary>
    public static void ByFloatType<TWork>(DType dtype, TWork work)
        where TWork : struct, IFloatWork
    {
        if (dtype == DType.Float64)
        {
            work.Run<double>();
        }
        else
        {
            work.Run<float>();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> with the element type of <paramref name="dtype"/> (float64, float32 or int64), for
    /// kernels that move or add elements of any dtype (indexing, copies).
    /// </summary>
    public static void ByElementType<TWork>(DType dtype, TWork work)
        where TWork : IElementWork, allows ref struct
    {
        switch (dtype)
        {
            case DType.Float64: work.Run<double>(); break;
            case DType.Float32: work.Run<float>(); break;
            default: work.Run<long>(); break;
        }
    }

    // Every operation runs these checks, so each builds its message in a method of its own: the check itself then has no
    // string-building locals to set up on every call and is small enough to be inlined.
    public static void RequireFloat(Tensor t, string op)
    {
        if (!t.DType.IsFloatingPoint())
        {
            ThrowNotFloat(t, op);
        }
    }

    public static void RequireSameDType(Tensor a, Tensor b, string op)
    {
        RequireFloat(a, op);
        RequireFloat(b, op);
        if (a.DType != b.DType)
        {
            ThrowMixed(a, b, op);
        }
    }

    [DoesNotReturn]
    private static void ThrowNotFloat(Tensor t, string op)
        => throw new ArgumentException($"{op}: expected a float64 or float32 tensor, got {t.DType.Name()} (shape {t.Shape}). Convert it with To(DType.Float64).");

    [DoesNotReturn]
    private static void ThrowMixed(Tensor a, Tensor b, string op)
        => throw new ArgumentException(
            $"{op}: mixed dtypes {a.DType.Name()} (shape {a.Shape}) and {b.DType.Name()} (shape {b.Shape}); convert one explicitly, e.g. b.To(DType.{(a.DType == DType.Float32 ? "Float32" : "Float64")}).");

    /// <summary>Broadcasts a and b and applies the kernel into a new tensor.</summary>
    public static Tensor Binary<TD, TF>(string op, Tensor a, Tensor b)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        RequireSameDType(a, b, op);
        var shape = Shape.Broadcast(a.Shape, b.Shape, op);
        var y = Tensor.Uninitialized(shape, a.DType);
        if (y.ElementCount == 0)
        {
            return y;
        }

        if (a.DType == DType.Float64)
        {
            Run<double, TD>(a, b, y);
        }
        else
        {
            Run<float, TF>(a, b, y);
        }

        return y;
    }

    private static void Run<T, TOp>(Tensor a, Tensor b, Tensor y)
        where TOp : IBinaryKernel<T>
    {
        var n = y.ElementCount;
        var sa = (T[])a.Storage;
        var sb = (T[])b.Storage;
        var dst = (T[])y.Storage;
        if (a.Shape == b.Shape)
        {
            if (n == 1)
            {
                dst[0] = TOp.Apply(sa[a.Offset], sb[b.Offset]);
            }
            else if (n >= Workers.ElementwiseThreshold && Workers.CanSplit)
            {
                Workers.For(n, Workers.Chunks(n, Workers.ElementwiseThreshold / 4), new BinaryJob<T, TOp>(sa, a.Offset, sb, b.Offset, dst));
            }
            else
            {
                TOp.Run(a.Span<T>(), b.Span<T>(), y.Span<T>());
            }
        }
        else if (b.ElementCount == 1 && a.Shape == y.Shape)
        {
            RunScalar<T, TOp>(sa, a.Offset, sb[b.Offset], scalarFirst: false, dst, n);
        }
        else if (a.ElementCount == 1 && b.Shape == y.Shape)
        {
            RunScalar<T, TOp>(sb, b.Offset, sa[a.Offset], scalarFirst: true, dst, n);
        }
        else
        {
            var layout = Strided.Merge(y.Shape.Dims, a.Shape.BroadcastStrides(y.Shape), b.Shape.BroadcastStrides(y.Shape));
            var rows = layout.Rows(n);
            var chunks = n >= Workers.ElementwiseThreshold ? Math.Min(rows, Workers.Chunks(n, Workers.ElementwiseThreshold / 4)) : 1;
            if (chunks > 1)
            {
                // Whole rows per thread, as the same-shape case splits its elements: x − max over rows, e / Σe.
                Workers.For(rows, chunks, new BroadcastJob<T, TOp>(a, b, y, layout));
            }
            else
            {
                Strided.BinaryRows<T, TOp>(a.Span<T>(), b.Span<T>(), y.Span<T>(), layout, 0, rows);
            }
        }
    }

    /// <summary>
    /// x ⊕ s (or s ⊕ x when <paramref name="scalarFirst"/>) for a number s, into a new tensor of x's shape: the kernel of
    /// <c>x * 2.0</c>, with no tensor made for the number. The number is converted to x's dtype first.
    /// </summary>
    public static Tensor Scalar<TD, TF>(Tensor x, double s, bool scalarFirst)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        var y = Tensor.Uninitialized(x.Shape, x.DType);
        var n = y.ElementCount;
        if (n == 0)
        {
            return y;
        }

        if (x.DType == DType.Float64)
        {
            RunScalar<double, TD>((double[])x.Storage, x.Offset, s, scalarFirst, (double[])y.Storage, n);
        }
        else
        {
            RunScalar<float, TF>((float[])x.Storage, x.Offset, (float)s, scalarFirst, (float[])y.Storage, n);
        }

        return y;
    }

    private static void RunScalar<T, TOp>(T[] x, int offset, T s, bool scalarFirst, T[] dst, int n)
        where TOp : IBinaryKernel<T>
    {
        if (n == 1)
        {
            dst[0] = scalarFirst ? TOp.Apply(s, x[offset]) : TOp.Apply(x[offset], s);
        }
        else if (n >= Workers.ElementwiseThreshold && Workers.CanSplit)
        {
            Workers.For(n, Workers.Chunks(n, Workers.ElementwiseThreshold / 4), new ScalarJob<T, TOp>(x, offset, s, scalarFirst, dst));
        }
        else if (scalarFirst)
        {
            TOp.Run(s, x.AsSpan(offset, n), dst.AsSpan(0, n));
        }
        else
        {
            TOp.Run(x.AsSpan(offset, n), s, dst.AsSpan(0, n));
        }
    }

    /// <summary>A new tensor of x's shape and dtype filled by the float64 or float32 kernel.</summary>
    public static Tensor Unary(string op, Tensor x, SpanMap<double> f64, SpanMap<float> f32)
    {
        RequireFloat(x, op);
        var y = Tensor.Uninitialized(x.Shape, x.DType);
        var n = y.ElementCount;
        if (n == 0)
        {
            // Some TensorPrimitives kernels (Sigmoid) reject empty spans.
            return y;
        }

        var parallel = n >= Workers.ElementwiseThreshold / 4 && Workers.CanSplit;
        if (x.DType == DType.Float64)
        {
            if (parallel)
            {
                Workers.For(n, Workers.Chunks(n, Workers.ElementwiseThreshold / 16), new UnaryJob<double>(f64, (double[])x.Storage, x.Offset, (double[])y.Storage));
            }
            else
            {
                f64(x.Span<double>(), y.Span<double>());
            }
        }
        else if (parallel)
        {
            Workers.For(n, Workers.Chunks(n, Workers.ElementwiseThreshold / 16), new UnaryJob<float>(f32, (float[])x.Storage, x.Offset, (float[])y.Storage));
        }
        else
        {
            f32(x.Span<float>(), y.Span<float>());
        }

        return y;
    }

    /// <summary>Copies x into a new contiguous tensor of <paramref name="shape"/>, reading x with the given strides.</summary>
    public static Tensor StridedCopy(Tensor x, int[] strides, Shape shape)
    {
        var y = Tensor.Uninitialized(shape, x.DType);
        ByElementType(x.DType, new CopyWork(x, strides, y));
        return y;
    }

    private readonly struct CopyWork(Tensor x, int[] strides, Tensor y) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, INumber<T>
            => Strided.Copy(x.Span<T>(), strides, y.Shape.Dims, y.Span<T>());
    }

    /// <summary>Splits a shape around one dimension into (outer, size, inner) for row-major loops.</summary>
    public static (int Outer, int Size, int Inner) Around(Shape shape, int dim)
    {
        var outer = 1;
        for (var i = 0; i < dim; i++)
        {
            outer *= shape[i];
        }

        var inner = 1;
        for (var i = dim + 1; i < shape.Rank; i++)
        {
            inner *= shape[i];
        }

        return (outer, shape.Rank == 0 ? 1 : shape[dim], inner);
    }

    /// <summary>The shape with the given (normalised) dims set to 1 (keepDim) or removed.</summary>
    public static Shape Reduced(Shape shape, ReadOnlySpan<bool> reduce, bool keepDim)
    {
        var dims = new List<int>(shape.Rank);
        for (var i = 0; i < shape.Rank; i++)
        {
            if (!reduce[i])
            {
                dims.Add(shape[i]);
            }
            else if (keepDim)
            {
                dims.Add(1);
            }
        }

        return new Shape([.. dims]);
    }
}

/// <summary>dst = a ⊕ b on a range of elements of two operands of one shape.</summary>
internal readonly struct BinaryJob<T, TOp>(T[] a, int aOffset, T[] b, int bOffset, T[] dst) : IRangeJob
    where TOp : IBinaryKernel<T>
{
    public void Run(int start, int end)
        => TOp.Run(a.AsSpan(aOffset + start, end - start), b.AsSpan(bOffset + start, end - start), dst.AsSpan(start, end - start));
}

/// <summary>y = a ⊕ b with broadcast strides on a range of the rows of <see cref="Strided.BinaryRows{T, TOp}"/>.</summary>
internal readonly struct BroadcastJob<T, TOp>(Tensor a, Tensor b, Tensor y, MergedLayout layout) : IRangeJob
    where TOp : IBinaryKernel<T>
{
    public void Run(int start, int end) => Strided.BinaryRows<T, TOp>(a.Span<T>(), b.Span<T>(), y.Span<T>(), layout, start, end);
}

/// <summary>dst = x ⊕ s (or s ⊕ x) on a range of elements.</summary>
internal readonly struct ScalarJob<T, TOp>(T[] x, int offset, T s, bool scalarFirst, T[] dst) : IRangeJob
    where TOp : IBinaryKernel<T>
{
    public void Run(int start, int end)
    {
        if (scalarFirst)
        {
            TOp.Run(s, x.AsSpan(offset + start, end - start), dst.AsSpan(start, end - start));
        }
        else
        {
            TOp.Run(x.AsSpan(offset + start, end - start), s, dst.AsSpan(start, end - start));
        }
    }
}

/// <summary>dst = f(x) on a range of elements.</summary>
internal readonly struct UnaryJob<T>(SpanMap<T> f, T[] x, int offset, T[] dst) : IRangeJob
{
    public void Run(int start, int end) => f(x.AsSpan(offset + start, end - start), dst.AsSpan(start, end - start));
}

/// <summary>A kernel mapping one span to another of the same length.</summary>
internal delegate void SpanMap<T>(ReadOnlySpan<T> x, Span<T> y);

/// <summary>Generic numeric helpers for the float kernels.</summary>
/// <summary>A computation written once for both float dtypes; <see cref="Dispatch.ByFloatType{TWork}"/> picks the element type.</summary>
internal interface IFloatWork
{
    /// <summary>Runs the computation with element type <typeparamref name="T"/> (double or float).</summary>
    void Run<T>()
        where T : unmanaged, IFloatingPointIeee754<T>;
}

/// <summary>A computation written once for every element type; <see cref="Dispatch.ByElementType{TWork}"/> picks it.</summary>
internal interface IElementWork
{
    /// <summary>Runs the computation with element type <typeparamref name="T"/> (double, float or long).</summary>
    void Run<T>()
        where T : unmanaged, INumber<T>;
}

internal static class Num
{
    public static T Cast<T>(double v)
        where T : IFloatingPointIeee754<T> => T.CreateTruncating(v);
}
