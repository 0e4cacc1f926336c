using System.Numerics;
using System.Numerics.Tensors;

namespace Autograd.Kernels;

/// <summary>Layer normalisation over rows of length <c>size</c>: the forward pass and the backward pass, one row at a time.</summary>
public static class NormKernels
{
    /// <summary>
    /// For each row: mean μ, rstd = 1/√(mean((x − μ)²) + eps), y = (x − μ)·rstd, then y ⊙ weight + bias when given
    /// (each of length <paramref name="size"/>, or empty).
    /// </summary>
    public static void LayerNormForward<T>(ReadOnlySpan<T> x, Span<T> y, Span<T> mean, Span<T> rstd, int size, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        var n = T.CreateTruncating(size);
        for (var r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * size, size);
            var yr = y.Slice(r * size, size);
            var mu = size == 0 ? T.Zero : TensorPrimitives.Sum(xr) / n;
            TensorPrimitives.Subtract(xr, mu, yr);
            var variance = size == 0 ? T.Zero : TensorPrimitives.SumOfSquares<T>(yr) / n;
            var s = T.One / T.Sqrt(variance + T.CreateTruncating(eps));
            TensorPrimitives.Multiply(yr, s, yr);
            if (!weight.IsEmpty)
            {
                TensorPrimitives.Multiply(yr, weight, yr);
            }

            if (!bias.IsEmpty)
            {
                TensorPrimitives.Add(yr, bias, yr);
            }

            mean[r] = mu;
            rstd[r] = s;
        }
    }

    /// <summary>
    /// The gradient of y = (x − μ)·rstd for the output gradient g, row by row: with x̂ = (x − μ)·rstd,
    /// dx = rstd ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)). <paramref name="mean"/> and <paramref name="rstd"/> are the
    /// forward's statistics of each row.
    /// </summary>
    public static void LayerNormBackward<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, Span<T> dx, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        var n = T.CreateTruncating(size);
        for (var r = 0; r < rows; r++)
        {
            var gr = g.Slice(r * size, size);
            var dr = dx.Slice(r * size, size);
            var s = rstd[r];

            // dr holds x̂ until it is overwritten below, element by element.
            TensorPrimitives.Subtract(x.Slice(r * size, size), mean[r], dr);
            TensorPrimitives.Multiply(dr, s, dr);
            var c = size == 0 ? T.Zero : TensorPrimitives.Dot(gr, dr) / n;
            var gMean = size == 0 ? T.Zero : TensorPrimitives.Sum(gr) / n;

            // dx = s·(g − gMean) − (s·c)·x̂
            TensorPrimitives.Multiply(dr, -(s * c), dr);
            for (var i = 0; i < size; i++)
            {
                dr[i] += s * (gr[i] - gMean);
            }
        }
    }

    /// <summary>Mean and rstd of each row, as <see cref="LayerNormForward{T}"/> computes them.</summary>
    public static void RowStats<T>(ReadOnlySpan<T> x, Span<T> mean, Span<T> rstd, int size, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        var n = T.CreateTruncating(size);
        var scratch = new T[size];
        for (var r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * size, size);
            var mu = size == 0 ? T.Zero : TensorPrimitives.Sum(xr) / n;
            TensorPrimitives.Subtract(xr, mu, scratch);
            var variance = size == 0 ? T.Zero : TensorPrimitives.SumOfSquares<T>(scratch) / n;
            mean[r] = mu;
            rstd[r] = T.One / T.Sqrt(variance + T.CreateTruncating(eps));
        }
    }
}
