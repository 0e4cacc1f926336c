using System.Numerics;
using System.Numerics.Tensors;

namespace Autograd.Kernels;

/// <summary>
/// Softmax-family kernels over the middle axis of a row-major [outer, size, inner] block. Every one subtracts the
/// maximum before exponentiating (TensorPrimitives.SoftMax does not, so it is not used).
/// </summary>
internal static class SoftmaxKernels
{
    /// <summary>y = exp(x − max) / Σ exp(x − max): one exp per element.</summary>
    public static void Forward<T>(ReadOnlySpan<T> x, Span<T> y, int outer, int size, int inner, bool log)
        where T : IFloatingPointIeee754<T>
    {
        if (size == 0)
        {
            return;
        }

        if (inner == 1)
        {
            var tmp = log ? new T[size] : null;
            for (var o = 0; o < outer; o++)
            {
                var src = x.Slice(o * size, size);
                var dst = y.Slice(o * size, size);
                var max = TensorPrimitives.Max(src);
                TensorPrimitives.Subtract(src, max, dst);
                if (log)
                {
                    TensorPrimitives.Exp(dst, tmp);
                    var lse = T.Log(TensorPrimitives.Sum<T>(tmp));
                    TensorPrimitives.Subtract(dst, lse, dst);
                }
                else
                {
                    TensorPrimitives.Exp(dst, dst);
                    var sum = TensorPrimitives.Sum<T>(dst);
                    TensorPrimitives.Multiply(dst, T.One / sum, dst);
                }
            }

            return;
        }

        var m = new T[inner];
        var s = new T[inner];
        var e = new T[inner];
        for (var o = 0; o < outer; o++)
        {
            var block = o * size * inner;
            Reduce.Extreme(x.Slice(block, size * inner), 1, size, inner, m, max: true);
            Array.Clear(s);
            for (var j = 0; j < size; j++)
            {
                var dst = y.Slice(block + (j * inner), inner);
                TensorPrimitives.Subtract(x.Slice(block + (j * inner), inner), m, dst);
                if (log)
                {
                    TensorPrimitives.Exp(dst, e);
                    TensorPrimitives.Add(s, e, s);
                }
                else
                {
                    TensorPrimitives.Exp(dst, dst);
                    TensorPrimitives.Add(s, dst, s);
                }
            }

            if (log)
            {
                TensorPrimitives.Log(s, s);
            }
            else
            {
                TensorPrimitives.Reciprocal(s, s);
            }

            for (var j = 0; j < size; j++)
            {
                var dst = y.Slice(block + (j * inner), inner);
                if (log)
                {
                    TensorPrimitives.Subtract(dst, s, dst);
                }
                else
                {
                    TensorPrimitives.Multiply(dst, s, dst);
                }
            }
        }
    }

    /// <summary>Softmax: dx = y ⊙ (g − Σ g⊙y). LogSoftmax: dx = g − exp(y) ⊙ Σ g. One pass for the sums, one for dx.</summary>
    public static void Backward<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dx, int outer, int size, int inner, bool log)
        where T : IFloatingPointIeee754<T>
    {
        if (size == 0)
        {
            return;
        }

        if (inner == 1)
        {
            for (var o = 0; o < outer; o++)
            {
                var gr = g.Slice(o * size, size);
                var yr = y.Slice(o * size, size);
                var dr = dx.Slice(o * size, size);
                if (log)
                {
                    var sum = TensorPrimitives.Sum(gr);
                    TensorPrimitives.Exp(yr, dr);
                    TensorPrimitives.Multiply(dr, sum, dr);
                    TensorPrimitives.Subtract(gr, dr, dr);
                }
                else
                {
                    var dot = TensorPrimitives.Dot(gr, yr);
                    TensorPrimitives.Subtract(gr, dot, dr);
                    TensorPrimitives.Multiply(dr, yr, dr);
                }
            }

            return;
        }

        var s = new T[inner];
        for (var o = 0; o < outer; o++)
        {
            var block = o * size * inner;
            Array.Clear(s);
            for (var j = 0; j < size; j++)
            {
                var at = block + (j * inner);
                if (log)
                {
                    TensorPrimitives.Add(s, g.Slice(at, inner), s);
                }
                else
                {
                    TensorPrimitives.MultiplyAdd(g.Slice(at, inner), y.Slice(at, inner), s, s);
                }
            }

            for (var j = 0; j < size; j++)
            {
                var at = block + (j * inner);
                var dr = dx.Slice(at, inner);
                if (log)
                {
                    TensorPrimitives.Exp(y.Slice(at, inner), dr);
                    TensorPrimitives.Multiply(dr, s, dr);
                    TensorPrimitives.Subtract(g.Slice(at, inner), dr, dr);
                }
                else
                {
                    TensorPrimitives.Subtract(g.Slice(at, inner), s, dr);
                    TensorPrimitives.Multiply(dr, y.Slice(at, inner), dr);
                }
            }
        }
    }

    /// <summary>
    /// r = log Σ exp(x − m) + m with m the maximum, replaced by 0 where it is ±inf (as PyTorch: an all −inf row gives −inf,
    /// a row holding +inf gives +inf).
    /// </summary>
    public static void LogSumExp<T>(ReadOnlySpan<T> x, Span<T> r, int outer, int size, int inner)
        where T : IFloatingPointIeee754<T>
    {
        var m = new T[inner];
        var s = new T[inner];
        var e = new T[inner];
        for (var o = 0; o < outer; o++)
        {
            var block = o * size * inner;
            if (size > 0)
            {
                Reduce.Extreme(x.Slice(block, size * inner), 1, size, inner, m, max: true);
            }

            for (var i = 0; i < inner; i++)
            {
                if (T.IsInfinity(m[i]) || size == 0)
                {
                    m[i] = T.Zero;
                }
            }

            if (inner == 1)
            {
                var row = x.Slice(block, size);
                var tmp = new T[size];
                TensorPrimitives.Subtract(row, m[0], tmp);
                TensorPrimitives.Exp(tmp, tmp);
                r[o] = T.Log(TensorPrimitives.Sum<T>(tmp)) + m[0];
                continue;
            }

            Array.Clear(s);
            for (var j = 0; j < size; j++)
            {
                TensorPrimitives.Subtract(x.Slice(block + (j * inner), inner), m, e);
                TensorPrimitives.Exp(e, e);
                TensorPrimitives.Add(s, e, s);
            }

            TensorPrimitives.Log(s, s);
            TensorPrimitives.Add(s, m, r.Slice(o * inner, inner));
        }
    }
}
