using System.Numerics;
using System.Numerics.Tensors;

namespace Autograd.Kernels;

/// <summary>
/// Layer normalisation over rows of length <c>size</c>: the forward pass and the backward pass, one row at a time
/// (each row's loops are <see cref="TensorPrimitives"/> calls); large inputs split the rows between the cores.
/// </summary>
public static class NormKernels
{
    /// <summary>Rows per chunk are chosen so that a chunk holds at least this many elements.</summary>
    private const int MinPerChunk = Workers.ElementwiseThreshold / 4;

    /// <summary>
    /// For each row: mean μ, rstd = 1/√(mean((x − μ)²) + eps), y = (x − μ)·rstd, then y ⊙ weight + bias when given
    /// (each of length <paramref name="size"/>, or empty). The number of rows is the length of <paramref name="mean"/>.
    /// </summary>
    public static void LayerNormForward<T>(ReadOnlyMemory<T> x, Memory<T> y, Memory<T> mean, Memory<T> rstd, int size, ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        Workers.For(rows, Workers.Chunks((long)rows * size, MinPerChunk), new ForwardJob<T>(x, y, mean, rstd, size, weight, bias, eps));
    }

    /// <summary>
    /// The gradient of y = (x − μ)·rstd for the output gradient g, row by row: with x̂ = (x − μ)·rstd,
    /// dx = rstd ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)). <paramref name="mean"/> and <paramref name="rstd"/> are the
    /// forward's statistics of each row.
    /// </summary>
    public static void LayerNormBackward<T>(ReadOnlyMemory<T> g, ReadOnlyMemory<T> x, ReadOnlyMemory<T> mean, ReadOnlyMemory<T> rstd, Memory<T> dx, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        Workers.For(rows, Workers.Chunks((long)rows * size, MinPerChunk), new BackwardJob<T>(g, x, mean, rstd, dx, size));
    }

    private readonly struct ForwardJob<T>(ReadOnlyMemory<T> x, Memory<T> y, Memory<T> mean, Memory<T> rstd, int size, ReadOnlyMemory<T> weight, ReadOnlyMemory<T> bias, double eps) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            var n = (end - start) * size;
            ForwardRows(x.Span.Slice(start * size, n), y.Span.Slice(start * size, n), mean.Span[start..end], rstd.Span[start..end], size, weight.Span, bias.Span, eps);
        }
    }

    private readonly struct BackwardJob<T>(ReadOnlyMemory<T> g, ReadOnlyMemory<T> x, ReadOnlyMemory<T> mean, ReadOnlyMemory<T> rstd, Memory<T> dx, int size) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            var n = (end - start) * size;
            BackwardRows(g.Span.Slice(start * size, n), x.Span.Slice(start * size, n), mean.Span[start..end], rstd.Span[start..end], dx.Span.Slice(start * size, n), size);
        }
    }

    private static void ForwardRows<T>(ReadOnlySpan<T> x, Span<T> y, Span<T> mean, Span<T> rstd, int size, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, double eps)
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

    private static void BackwardRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, Span<T> dx, int size)
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

            // dx = s·g − (s·c)·x̂ − s·gMean
            TensorPrimitives.Multiply(dr, -(s * c), dr);
            TensorPrimitives.MultiplyAdd(gr, s, dr, dr);
            TensorPrimitives.Subtract(dr, s * gMean, dr);
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
