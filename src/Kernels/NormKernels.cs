using System.Buffers;
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
    /// The gradients of y = x̂ ⊙ w + b with x̂ = (x − μ)·rstd, for the output gradient g, in one pass over the rows:
    /// with a = g ⊙ w (a = g without a weight), dx = rstd ⊙ (a − mean(a) − x̂ ⊙ mean(a ⊙ x̂)), dw = Σ_rows g ⊙ x̂ and
    /// db = Σ_rows g. <paramref name="mean"/> and <paramref name="rstd"/> are the forward's statistics of each row.
    /// An empty <paramref name="weight"/> means no weight; an empty <paramref name="dx"/>, <paramref name="dw"/> or
    /// <paramref name="db"/> is not computed. The rows are split between the cores in a fixed number of chunks, each
    /// summing dw and db over its rows; the chunks' sums are added in order, so results do not depend on timing.
    /// </summary>
    public static void LayerNormBackward<T>(ReadOnlyMemory<T> g, ReadOnlyMemory<T> x, ReadOnlyMemory<T> mean, ReadOnlyMemory<T> rstd, ReadOnlyMemory<T> weight, Memory<T> dx, Memory<T> dw, Memory<T> db, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        var chunks = Math.Min(Math.Max(rows, 1), Workers.Chunks((long)rows * size, MinPerChunk));
        var sums = dw.IsEmpty && db.IsEmpty ? 0 : 2 * size;
        var partials = chunks > 1 && sums > 0 ? new T[chunks - 1][] : null;
        Workers.For(chunks, chunks, new BackwardJob<T>(g, x, mean, rstd, weight, dx, dw, db, size, chunks, partials));
        if (partials is null)
        {
            return;
        }

        foreach (var partial in partials)
        {
            if (!dw.IsEmpty)
            {
                TensorPrimitives.Add(dw.Span, partial.AsSpan(0, size), dw.Span);
            }

            if (!db.IsEmpty)
            {
                TensorPrimitives.Add(db.Span, partial.AsSpan(size, size), db.Span);
            }
        }
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

    /// <summary>Chunk c of the rows; chunk 0 sums dw and db into the results, chunk c &gt; 0 into partials[c − 1].</summary>
    private readonly struct BackwardJob<T>(ReadOnlyMemory<T> g, ReadOnlyMemory<T> x, ReadOnlyMemory<T> mean, ReadOnlyMemory<T> rstd, ReadOnlyMemory<T> weight, Memory<T> dx, Memory<T> dw, Memory<T> db, int size, int chunks, T[][]? partials) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            var rows = mean.Length;
            for (var c = start; c < end; c++)
            {
                var first = (int)((long)rows * c / chunks);
                var last = (int)((long)rows * (c + 1) / chunks);
                var n = (last - first) * size;
                Span<T> dwSum = default, dbSum = default;
                if (c == 0 || partials is null)
                {
                    dwSum = dw.Span;
                    dbSum = db.Span;
                }
                else
                {
                    var partial = partials[c - 1] = new T[2 * size];
                    dwSum = dw.IsEmpty ? default : partial.AsSpan(0, size);
                    dbSum = db.IsEmpty ? default : partial.AsSpan(size, size);
                }

                BackwardRows(
                    g.Span.Slice(first * size, n), x.Span.Slice(first * size, n), mean.Span[first..last], rstd.Span[first..last], weight.Span,
                    dx.IsEmpty ? default : dx.Span.Slice(first * size, n), dwSum, dbSum, size);
            }
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
            if (!weight.IsEmpty && !bias.IsEmpty)
            {
                TensorPrimitives.FusedMultiplyAdd(yr, weight, bias, yr);
            }
            else if (!weight.IsEmpty)
            {
                TensorPrimitives.Multiply(yr, weight, yr);
            }
            else if (!bias.IsEmpty)
            {
                TensorPrimitives.Add(yr, bias, yr);
            }

            mean[r] = mu;
            rstd[r] = s;
        }
    }

    private static void BackwardRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> weight, Span<T> dx, Span<T> dw, Span<T> db, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        var n = T.CreateTruncating(size);
        dw.Clear();
        db.Clear();
        if (size == 0)
        {
            return;
        }

        // x̂ goes where dx will be (or into the scratch when dx is not wanted), g ⊙ w into the scratch.
        var rent = ArrayPool<T>.Shared.Rent(2 * size);
        try
        {
            var scratch = rent.AsSpan(0, size);
            var xhatScratch = rent.AsSpan(size, size);
            for (var r = 0; r < rows; r++)
            {
                var gr = g.Slice(r * size, size);
                var xhat = dx.IsEmpty ? xhatScratch : dx.Slice(r * size, size);
                var s = rstd[r];
                TensorPrimitives.Subtract(x.Slice(r * size, size), mean[r], xhat);
                TensorPrimitives.Multiply(xhat, s, xhat);
                if (!dw.IsEmpty)
                {
                    TensorPrimitives.MultiplyAdd(gr, xhat, dw, dw);
                }

                if (!db.IsEmpty)
                {
                    TensorPrimitives.Add(db, gr, db);
                }

                if (dx.IsEmpty)
                {
                    continue;
                }

                ReadOnlySpan<T> a = gr;
                if (!weight.IsEmpty)
                {
                    TensorPrimitives.Multiply(gr, weight, scratch);
                    a = scratch;
                }

                var c = TensorPrimitives.Dot(a, xhat) / n;
                var aMean = TensorPrimitives.Sum(a) / n;

                // dx = s·a − (s·c)·x̂ − s·mean(a), overwriting x̂ element by element.
                TensorPrimitives.Multiply(xhat, -(s * c), xhat);
                TensorPrimitives.MultiplyAdd(a, s, xhat, xhat);
                TensorPrimitives.Subtract(xhat, s * aMean, xhat);
            }
        }
        finally
        {
            ArrayPool<T>.Shared.Return(rent);
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
