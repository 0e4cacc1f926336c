using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRows<T>(ReadOnlySpan<T> x, Span<T> y, Span<T> mean, Span<T> rstd, int size, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        for (var r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * size, size);
            var yr = y.Slice(r * size, size);
            var (mu, s) = Stats(xr, eps);
            Normalize(xr, yr, mu, s, weight, bias);
            mean[r] = mu;
            rstd[r] = s;
        }
    }

    /// <summary>The mean μ of a row and rstd = 1/√(mean((x − μ)²) + eps), in two passes over the row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (T Mean, T Rstd) Stats<T>(ReadOnlySpan<T> xr, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var size = xr.Length;
        if (size == 0)
        {
            return (T.Zero, T.One / T.Sqrt(T.CreateTruncating(eps)));
        }

        var n = T.CreateTruncating(size);
        ref var x0 = ref MemoryMarshal.GetReference(xr);
        var w = Vector<T>.Count;
        var acc = Vector<T>.Zero;
        var j = 0;
        for (; j <= size - w; j += w)
        {
            acc += Vector.LoadUnsafe(ref x0, (nuint)j);
        }

        var sum = Vector.Sum(acc);
        for (; j < size; j++)
        {
            sum += xr[j];
        }

        var mu = sum / n;
        var vmu = new Vector<T>(mu);
        acc = Vector<T>.Zero;
        j = 0;
        for (; j <= size - w; j += w)
        {
            var d = Vector.LoadUnsafe(ref x0, (nuint)j) - vmu;
            acc += d * d;
        }

        var squares = Vector.Sum(acc);
        for (; j < size; j++)
        {
            var d = xr[j] - mu;
            squares += d * d;
        }

        return (mu, T.One / T.Sqrt((squares / n) + T.CreateTruncating(eps)));
    }

    /// <summary>y = (x − μ)·s, then ⊙ weight and + bias when given (empty spans: none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Normalize<T>(ReadOnlySpan<T> xr, Span<T> yr, T mu, T s, ReadOnlySpan<T> weight, ReadOnlySpan<T> bias)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var size = xr.Length;
        ref var x0 = ref MemoryMarshal.GetReference(xr);
        ref var y0 = ref MemoryMarshal.GetReference(yr);
        ref var w0 = ref MemoryMarshal.GetReference(weight);
        ref var b0 = ref MemoryMarshal.GetReference(bias);
        bool hasWeight = !weight.IsEmpty, hasBias = !bias.IsEmpty;
        var w = Vector<T>.Count;
        var vmu = new Vector<T>(mu);
        var vs = new Vector<T>(s);
        var j = 0;
        for (; j <= size - w; j += w)
        {
            var v = (Vector.LoadUnsafe(ref x0, (nuint)j) - vmu) * vs;
            if (hasWeight)
            {
                v *= Vector.LoadUnsafe(ref w0, (nuint)j);
            }

            if (hasBias)
            {
                v += Vector.LoadUnsafe(ref b0, (nuint)j);
            }

            v.StoreUnsafe(ref y0, (nuint)j);
        }

        for (; j < size; j++)
        {
            var v = (xr[j] - mu) * s;
            if (hasWeight)
            {
                v *= weight[j];
            }

            if (hasBias)
            {
                v += bias[j];
            }

            yr[j] = v;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> rstd, ReadOnlySpan<T> weight, Span<T> dx, Span<T> dw, Span<T> db, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rows = mean.Length;
        dw.Clear();
        db.Clear();
        if (size == 0)
        {
            return;
        }

        for (var r = 0; r < rows; r++)
        {
            var gr = g.Slice(r * size, size);
            var xr = x.Slice(r * size, size);
            var (sumA, sumAX) = AccumulateRow(gr, xr, mean[r], rstd[r], weight, dw, db);
            if (!dx.IsEmpty)
            {
                InputGradientRow(gr, xr, mean[r], rstd[r], weight, sumA, sumAX, dx.Slice(r * size, size));
            }
        }
    }

    /// <summary>
    /// One pass over a row: with x̂ = (x − μ)·s and a = g ⊙ w (g without a weight), returns Σ a and Σ a ⊙ x̂, and adds
    /// g ⊙ x̂ to dw and g to db (when not empty).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (T SumA, T SumAX) AccumulateRow<T>(ReadOnlySpan<T> gr, ReadOnlySpan<T> xr, T mu, T s, ReadOnlySpan<T> weight, Span<T> dw, Span<T> db)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var size = xr.Length;
        ref var g0 = ref MemoryMarshal.GetReference(gr);
        ref var x0 = ref MemoryMarshal.GetReference(xr);
        ref var w0 = ref MemoryMarshal.GetReference(weight);
        ref var dw0 = ref MemoryMarshal.GetReference(dw);
        ref var db0 = ref MemoryMarshal.GetReference(db);
        bool hasWeight = !weight.IsEmpty, wantW = !dw.IsEmpty, wantB = !db.IsEmpty;
        var w = Vector<T>.Count;
        var vmu = new Vector<T>(mu);
        var vs = new Vector<T>(s);
        Vector<T> accA = Vector<T>.Zero, accAX = Vector<T>.Zero;
        var j = 0;
        for (; j <= size - w; j += w)
        {
            var gv = Vector.LoadUnsafe(ref g0, (nuint)j);
            var xh = (Vector.LoadUnsafe(ref x0, (nuint)j) - vmu) * vs;
            var av = hasWeight ? gv * Vector.LoadUnsafe(ref w0, (nuint)j) : gv;
            accA += av;
            accAX += av * xh;
            if (wantW)
            {
                (Vector.LoadUnsafe(ref dw0, (nuint)j) + (gv * xh)).StoreUnsafe(ref dw0, (nuint)j);
            }

            if (wantB)
            {
                (Vector.LoadUnsafe(ref db0, (nuint)j) + gv).StoreUnsafe(ref db0, (nuint)j);
            }
        }

        T sumA = Vector.Sum(accA), sumAX = Vector.Sum(accAX);
        for (; j < size; j++)
        {
            var gj = gr[j];
            var xh = (xr[j] - mu) * s;
            var aj = hasWeight ? gj * weight[j] : gj;
            sumA += aj;
            sumAX += aj * xh;
            if (wantW)
            {
                dw[j] += gj * xh;
            }

            if (wantB)
            {
                db[j] += gj;
            }
        }

        return (sumA, sumAX);
    }

    /// <summary>dx = s·a − (s·c)·x̂ − s·mean(a) with c = mean(a ⊙ x̂), x̂ = (x − μ)·s and a = g ⊙ w (g without a weight).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void InputGradientRow<T>(ReadOnlySpan<T> gr, ReadOnlySpan<T> xr, T mu, T s, ReadOnlySpan<T> weight, T sumA, T sumAX, Span<T> dr)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var size = xr.Length;
        var n = T.CreateTruncating(size);
        var sc = s * (sumAX / n);
        var sm = s * (sumA / n);
        ref var g0 = ref MemoryMarshal.GetReference(gr);
        ref var x0 = ref MemoryMarshal.GetReference(xr);
        ref var w0 = ref MemoryMarshal.GetReference(weight);
        ref var d0 = ref MemoryMarshal.GetReference(dr);
        var hasWeight = !weight.IsEmpty;
        var w = Vector<T>.Count;
        Vector<T> vmu = new(mu), vs = new(s), vsc = new(sc), vsm = new(sm);
        var j = 0;
        for (; j <= size - w; j += w)
        {
            var gv = Vector.LoadUnsafe(ref g0, (nuint)j);
            var av = hasWeight ? gv * Vector.LoadUnsafe(ref w0, (nuint)j) : gv;
            var xh = (Vector.LoadUnsafe(ref x0, (nuint)j) - vmu) * vs;
            ((av * vs) - (vsc * xh) - vsm).StoreUnsafe(ref d0, (nuint)j);
        }

        for (; j < size; j++)
        {
            var aj = hasWeight ? gr[j] * weight[j] : gr[j];
            var xh = (xr[j] - mu) * s;
            dr[j] = (aj * s) - (sc * xh) - sm;
        }
    }

    /// <summary>Mean and rstd of each row, as <see cref="LayerNormForward{T}"/> computes them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowStats<T>(ReadOnlySpan<T> x, Span<T> mean, Span<T> rstd, int size, double eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var r = 0; r < mean.Length; r++)
        {
            (mean[r], rstd[r]) = Stats(x.Slice(r * size, size), eps);
        }
    }
}
