using System.Numerics;

namespace Autograd.Kernels;

/// <summary>Checks shared by operators and the glue that turns a kernel on spans into a tensor result.</summary>
internal static class Dispatch
{
    public static void RequireFloat(Tensor t, string op)
    {
        if (!t.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: expected a float64 or float32 tensor, got {t.DType.Name()} (shape {t.Shape}). Convert it with To(DType.Float64).");
        }
    }

    public static void RequireSameDType(Tensor a, Tensor b, string op)
    {
        RequireFloat(a, op);
        RequireFloat(b, op);
        if (a.DType != b.DType)
        {
            throw new ArgumentException(
                $"{op}: mixed dtypes {a.DType.Name()} (shape {a.Shape}) and {b.DType.Name()} (shape {b.Shape}); convert one explicitly, e.g. b.To(DType.{(a.DType == DType.Float32 ? "Float32" : "Float64")}).");
        }
    }

    /// <summary>Broadcasts a and b and applies the kernel into a new tensor.</summary>
    public static Tensor Binary<TD, TF>(string op, Tensor a, Tensor b)
        where TD : IBinaryKernel<double>
        where TF : IBinaryKernel<float>
    {
        RequireSameDType(a, b, op);
        var shape = Shape.Broadcast(a.Shape, b.Shape, op);
        var y = Tensor.Empty(shape, a.DType);
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
        var ya = a.Span<T>();
        var yb = b.Span<T>();
        var dst = y.Span<T>();
        if (a.Shape == b.Shape)
        {
            TOp.Run(ya, yb, dst);
        }
        else if (b.ElementCount == 1 && a.Shape == y.Shape)
        {
            TOp.Run(ya, yb[0], dst);
        }
        else if (a.ElementCount == 1 && b.Shape == y.Shape)
        {
            TOp.Run(ya[0], yb, dst);
        }
        else
        {
            Strided.Binary<T, TOp>(ya, a.Shape.BroadcastStrides(y.Shape), yb, b.Shape.BroadcastStrides(y.Shape), y.Shape.Dims, dst);
        }
    }

    /// <summary>A new tensor of x's shape and dtype filled by the float64 or float32 kernel.</summary>
    public static Tensor Unary(string op, Tensor x, SpanMap<double> f64, SpanMap<float> f32)
    {
        RequireFloat(x, op);
        var y = Tensor.Empty(x.Shape, x.DType);
        if (y.ElementCount == 0)
        {
            // Some TensorPrimitives kernels (Sigmoid) reject empty spans.
            return y;
        }

        if (x.DType == DType.Float64)
        {
            f64(x.Span<double>(), y.Span<double>());
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
        var y = Tensor.Empty(shape, x.DType);
        switch (x.DType)
        {
            case DType.Float64: Strided.Copy<double>(x.Span<double>(), strides, shape.Dims, y.Span<double>()); break;
            case DType.Float32: Strided.Copy<float>(x.Span<float>(), strides, shape.Dims, y.Span<float>()); break;
            default: Strided.Copy<long>(x.Span<long>(), strides, shape.Dims, y.Span<long>()); break;
        }

        return y;
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

/// <summary>A kernel mapping one span to another of the same length.</summary>
internal delegate void SpanMap<T>(ReadOnlySpan<T> x, Span<T> y);

/// <summary>Generic numeric helpers for the float kernels.</summary>
internal static class Num
{
    public static T Cast<T>(double v)
        where T : IFloatingPointIeee754<T> => T.CreateTruncating(v);
}
