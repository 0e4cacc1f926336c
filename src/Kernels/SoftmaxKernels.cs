using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// Softmax-family kernels over the middle axis of a row-major [outer, size, inner] block. Every one subtracts the
/// maximum before exponentiating (TensorPrimitives.SoftMax does not, so it is not used).
/// </summary>
/// <remarks>
/// Work is split into items, each done with its data in cache: a row when <c>inner</c> is 1, otherwise a tile of
/// columns of one [size, inner] block, narrow enough that its passes stay in the L2 cache. Large inputs split the
/// items between threads; every element is computed by the same code whatever the split, so results do not depend
/// on the number of threads. float32 exponentials are <see cref="FastExp"/>'s, on the widest vectors available. A row
/// of at least <see cref="LongRow"/> elements is split into parts of <see cref="PartElements"/> that the threads share
/// (<see cref="LongRows"/>).
/// </remarks>
internal static class SoftmaxKernels
{
    /// <summary>The fewest elements a thread takes, so that a chunk's work is well above what waking a helper costs.</summary>
    private const int ChunkElements = 1 << 15;

    /// <summary>
    /// The fewest elements a thread takes in a pass with one exponential per element (forward, log-softmax backward,
    /// logsumexp). A float64 exponential below 512 bits costs about 1.5 ns (three times the 512-bit one), so there
    /// 4096 elements already make about 6 µs of work: 32×1000 float64 softmax rows then use both cores (forward
    /// 51 → 35 µs on the 256-bit path of an AMD EPYC Zen 5), where on 512 bits, or in float32, splitting them cost more
    /// than it saved.
    /// </summary>
    private static int ExpChunkElements<T>()
        => typeof(T) == typeof(double) && !VectorMath.Wide ? 1 << 12 : ChunkElements;

    /// <summary>Rows (inner = 1) shorter than this are taken a block at a time: see <see cref="ForwardShortRows{T}"/>.</summary>
    internal const int ShortRow = 16;

    /// <summary>The most elements of the block of short rows that one vector pass of exponentials takes.</summary>
    private const int ShortBlockElements = 1024;

    /// <summary>The row length (inner = 1) from which one row is split into parts that the threads share.</summary>
    internal const int LongRow = 1 << 18;

    /// <summary>The elements of one part of a long row: its second pass finds the part in the L2 cache.</summary>
    internal const int PartElements = 1 << 15;

    /// <summary>The most bytes of one input a column tile spans, so that its later passes hit the L2 cache.</summary>
    private const int TileBytes = 256 * 1024;

    /// <summary>y = exp(x − max) / Σ exp(x − max) (or its log): one exp per element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward<T>(T[] x, int xOffset, T[] y, int outer, int size, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size == 0 || outer == 0 || inner == 0)
        {
            return;
        }

        if (inner == 1 && size >= LongRow)
        {
            for (var o = 0; o < outer; o++)
            {
                LongRows.Forward(x, xOffset + (o * size), y, o * size, size, log);
            }

            return;
        }

        var (items, tile, tiles) = Plan<T>(outer, size, inner);
        var job = new ForwardJob<T>(x, xOffset, y, size, inner, tile, tiles, log);
        Workers.For(items, Chunks(outer, size, inner, ExpChunkElements<T>()), job);
    }

    /// <summary>Softmax: dx = y ⊙ (g − Σ g⊙y). LogSoftmax: dx = g − exp(y) ⊙ Σ g. One pass for the sums, one for dx.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int outer, int size, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size == 0 || outer == 0 || inner == 0)
        {
            return;
        }

        if (inner == 1 && size >= LongRow)
        {
            for (var o = 0; o < outer; o++)
            {
                LongRows.Backward(g, gOffset + (o * size), y, yOffset + (o * size), dx, o * size, size, log);
            }

            return;
        }

        var (items, tile, tiles) = Plan<T>(outer, size, inner);
        var job = new BackwardJob<T>(g, gOffset, y, yOffset, dx, size, inner, tile, tiles, log);
        Workers.For(items, Chunks(outer, size, inner, log ? ExpChunkElements<T>() : ChunkElements), job);
    }

    /// <summary>
    /// Softmax over rows (inner = 1, shorter than <see cref="LongRow"/>) with its tangent, for forward mode:
    /// y = softmax(x) and ẏ = y ⊙ (ẋ − Σ y⊙ẋ), a block of rows at a time, so each row of y is still in cache when its
    /// tangent reads it.
    /// Each row gets exactly the values of <see cref="Forward{T}"/> and of <see cref="Backward{T}"/> with g = ẋ.
    /// </summary>
    public static void ForwardWithTangent<T>(T[] x, int xOffset, T[] tx, int txOffset, T[] y, T[] ty, int outer, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size == 0 || outer == 0)
        {
            return;
        }

        Workers.For(outer, Chunks(outer, size, 1, ExpChunkElements<T>()), new TangentJob<T>(x, xOffset, tx, txOffset, y, ty, size));
    }

    /// <summary>
    /// r = log Σ exp(x − m) + m with m the maximum, replaced by 0 where it is ±inf (as PyTorch: an all −inf row gives −inf,
    /// a row holding +inf gives +inf). The exponentials are <see cref="ExpKernel"/>'s, the operator Exp's, so exp(0) is 1
    /// exactly and the fused form rounds as the composed one does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LogSumExp<T>(T[] x, int xOffset, T[] r, int rOffset, int outer, int size, int inner)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (inner == 1 && size >= LongRow)
        {
            for (var o = 0; o < outer; o++)
            {
                r[rOffset + o] = LongRows.LogSumExp(x, xOffset + (o * size), size);
            }

            return;
        }

        Workers.For(outer, Chunks(outer, size, inner, ExpChunkElements<T>()), new LogSumExpJob<T>(x, xOffset, r, rOffset, size, inner));
    }

    /// <summary>
    /// The gradient of logsumexp, dx = g ⊙ exp(x − r) with g and r broadcast along the reduced dim, in one pass: each
    /// block of at most <see cref="GradientBlock"/> elements is subtracted, exponentiated and scaled while it is in L1,
    /// and the threads share the elements. The operations are the composed rule's, element by element (a subtraction,
    /// <see cref="ExpKernel"/>'s exponential, a product), so the result has its bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LogSumExpBackward<T>(T[] g, int gOffset, T[] x, int xOffset, T[] r, int rOffset, T[] dx, int dxOffset, int outer, int size, int inner)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var total = (long)outer * size * inner;
        if (total == 0)
        {
            return;
        }

        Workers.For((int)total, Chunks(outer, size, inner, ExpChunkElements<T>()), new LogSumExpBackwardJob<T>(g, gOffset, x, xOffset, r, rOffset, dx, dxOffset, size, inner));
    }

    /// <summary>The elements of one block of <see cref="LogSumExpBackward{T}"/>: a few KB, so its three steps find it in L1.</summary>
    private const int GradientBlock = 2048;

    /// <summary>
    /// Elements [start, end) of <see cref="LogSumExpBackward{T}"/> (flat indices of x), in runs that share one g and r
    /// (inner = 1: a row) or that are contiguous in g and r (inner &gt; 1: along the inner dims), block by block.
    /// </summary>
    private readonly struct LogSumExpBackwardJob<T>(T[] g, int gOffset, T[] x, int xOffset, T[] r, int rOffset, T[] dx, int dxOffset, int size, int inner) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            var plane = (long)size * inner;
            for (var e = start; e < end;)
            {
                var o = (int)(e / plane);
                var j = (int)(e % inner);
                var run = inner == 1
                    ? (int)Math.Min(end, (o + 1) * plane) - e
                    : Math.Min(end - e, inner - j);
                for (var done = 0; done < run; done += GradientBlock)
                {
                    var n = Math.Min(GradientBlock, run - done);
                    var block = dx.AsSpan(dxOffset + e + done, n);
                    var at = (o * inner) + j + done;
                    if (inner == 1)
                    {
                        TensorPrimitives.Subtract(x.AsSpan(xOffset + e + done, n), r[rOffset + o], block);
                        ExpKernel.Exp<T>(block, block);
                        TensorPrimitives.Multiply(block, g[gOffset + o], block);
                    }
                    else
                    {
                        TensorPrimitives.Subtract(x.AsSpan(xOffset + e + done, n), r.AsSpan(rOffset + at, n), block);
                        ExpKernel.Exp<T>(block, block);
                        TensorPrimitives.Multiply(block, g.AsSpan(gOffset + at, n), block);
                    }
                }

                e += run;
            }
        }
    }

    /// <summary>
    /// <see cref="LogSumExp{T}(T[], int, T[], int, int, int, int)"/> on one thread, whatever the row length.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LogSumExp<T>(ReadOnlySpan<T> x, Span<T> r, int outer, int size, int inner)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var m = new T[inner];
        var s = new T[inner];
        var e = new T[inner];
        for (var o = 0; o < outer; o++)
        {
            var block = o * size * inner;
            if (size > 0 && inner == 1)
            {
                m[0] = RowMax(x.Slice(block, size));
            }
            else if (size > 0)
            {
                Reduce.Extreme(x.Slice(block, size * inner), 1, size, inner, m, max: true);
            }

            var finiteShift = inner == 1 && size > 0 && !T.IsInfinity(m[0]);
            for (var i = 0; i < inner; i++)
            {
                if (T.IsInfinity(m[i]) || size == 0)
                {
                    m[i] = T.Zero;
                }
            }

            if (inner == 1)
            {
                r[o] = T.Log(ExpShiftedSum(x.Slice(block, size), m[0], finiteShift)) + m[0];
                continue;
            }

            Array.Clear(s);
            for (var j = 0; j < size; j++)
            {
                TensorPrimitives.Subtract(x.Slice(block + (j * inner), inner), m, e);
                ExpKernel.Exp<T>(e, e);
                TensorPrimitives.Add(s, e, s);
            }

            TensorPrimitives.Log(s, s);
            TensorPrimitives.Add(s, m, r.Slice(o * inner, inner));
        }
    }

    /// <summary>
    /// The largest element of a non-empty row, for the shift of a logsumexp: where the row holds a NaN the result may be
    /// any element or NaN, and the sum of exponentials is NaN either way.
    /// </summary>
    internal static T RowMax<T>(ReadOnlySpan<T> x)
        where T : unmanaged, IFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? T.CreateTruncating(FastExp.MaxIgnoringNaN(MemoryMarshal.Cast<T, float>(x)))
            : typeof(T) == typeof(double)
                ? T.CreateTruncating(VectorMath.MaxIgnoringNaN(MemoryMarshal.Cast<T, double>(x)))
                : TensorPrimitives.Max(x);

    /// <summary>
    /// Σ exp(x − shift), the exponentials <see cref="ExpKernel"/>'s, summed as they are made without storing them: one
    /// pass over x. float32's one-pass exponential takes a finite (or NaN) shift only, since exp(+∞ − 0) would be NaN
    /// there; a shift that stands for an infinite maximum (0) takes three passes through a rented buffer instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static T ExpShiftedSum<T>(ReadOnlySpan<T> x, T shift, bool finiteShift)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(double))
        {
            return T.CreateTruncating(VectorMath.ExpShiftedSum(MemoryMarshal.Cast<T, double>(x), double.CreateTruncating(shift), [], store: false));
        }

        if (typeof(T) == typeof(float) && finiteShift)
        {
            return T.CreateTruncating(FastExp.ExpShifted(MemoryMarshal.Cast<T, float>(x), float.CreateTruncating(shift), [], store: false));
        }

        var buffer = ArrayPool<T>.Shared.Rent(x.Length);
        try
        {
            var e = buffer.AsSpan(0, x.Length);
            TensorPrimitives.Subtract(x, shift, e);
            ExpKernel.Exp<T>(e, e);
            return TensorPrimitives.Sum<T>(e);
        }
        finally
        {
            ArrayPool<T>.Shared.Return(buffer);
        }
    }

    /// <summary>The work items: rows when inner is 1, else column tiles of <c>tile</c> columns, <c>tiles</c> per block.</summary>
    private static (int Items, int Tile, int Tiles) Plan<T>(int outer, int size, int inner)
        where T : unmanaged
    {
        if (inner == 1)
        {
            return (outer, 1, 1);
        }

        var tile = inner;
        var bytes = (long)size * inner * Unsafe.SizeOf<T>();
        if (bytes > TileBytes)
        {
            tile = (int)Math.Max(64, TileBytes / ((long)size * Unsafe.SizeOf<T>()) / 16 * 16);
            tile = Math.Min(tile, inner);
        }

        var tiles = (inner + tile - 1) / tile;
        return (outer * tiles, tile, tiles);
    }

    private static int Chunks(int outer, int size, int inner, int minPerChunk)
        => Workers.Chunks((long)outer * size * inner, minPerChunk);

    /// <summary>Consecutive rows of <paramref name="size"/> elements (inner = 1): y = softmax(x) or log-softmax(x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardRows<T>(ReadOnlySpan<T> x, Span<T> y, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size < ShortRow)
        {
            ForwardShortRows(x, y, size, log);
        }
        else if (typeof(T) == typeof(float))
        {
            FastExp.SoftmaxRows(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y), size, log);
        }
        else
        {
            for (var at = 0; at < x.Length; at += size)
            {
                ForwardRow(x.Slice(at, size), y.Slice(at, size), log);
            }
        }
    }

    /// <summary>The backward of consecutive rows of <paramref name="size"/> elements; see <see cref="BackwardRow{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dx, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size < ShortRow)
        {
            BackwardShortRows(g, y, dx, size, log);
            return;
        }

        for (var at = 0; at < g.Length; at += size)
        {
            BackwardRow(g.Slice(at, size), y.Slice(at, size), dx.Slice(at, size), log);
        }
    }

    /// <summary>
    /// Rows shorter than <see cref="ShortRow"/> (a classifier's ten classes): alone, a row would be mostly the setup of
    /// its vector loops and a padded tail, so a block of rows is taken at once. Each row's maximum and shifted values in
    /// scalar code, the exponentials of the whole block in one vector pass (the same function, so the same bits, as the
    /// longer rows' kernels), then each row's sum (<c>TensorPrimitives.Sum</c>, as the fused attention's float64 rows) and
    /// scale. Forward of 64×10 on the AMD EPYC Zen 5, one row at a time → a block: float32 3.7 → 1.3 µs on 256 bits
    /// (4.1 → 1.4 on 512), float64 6.6 → 1.9 µs on 256 bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ForwardShortRows<T>(ReadOnlySpan<T> x, Span<T> y, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> exps = log ? stackalloc T[ShortBlockElements] : default;
        var block = ShortBlockElements / size * size;
        for (var b = 0; b < x.Length; b += block)
        {
            var count = Math.Min(block, x.Length - b);
            var xb = x.Slice(b, count);
            var yb = y.Slice(b, count);
            for (var at = 0; at < count; at += size)
            {
                // A NaN anywhere makes the sum, so the whole row, NaN: the maximum need not propagate it.
                var max = xb[at];
                for (var j = at + 1; j < at + size; j++)
                {
                    if (xb[j] > max)
                    {
                        max = xb[j];
                    }
                }

                for (var j = at; j < at + size; j++)
                {
                    yb[j] = xb[j] - max;
                }
            }

            var eb = log ? exps[..count] : yb;
            Exp<T>(yb, eb);
            for (var at = 0; at < count; at += size)
            {
                var sum = TensorPrimitives.Sum<T>(eb.Slice(at, size));
                if (log)
                {
                    var lse = T.Log(sum);
                    for (var j = at; j < at + size; j++)
                    {
                        yb[j] -= lse;
                    }
                }
                else
                {
                    var scale = T.One / sum;
                    for (var j = at; j < at + size; j++)
                    {
                        yb[j] *= scale;
                    }
                }
            }
        }
    }

    /// <summary>
    /// The backward of rows shorter than <see cref="ShortRow"/>, by <see cref="BackwardRow{T}"/>'s formulas in scalar
    /// code, the log-softmax's exponentials in one vector pass over all the rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void BackwardShortRows<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> y, Span<T> dx, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (log)
        {
            Exp<T>(y, dx);
        }

        for (var at = 0; at < g.Length; at += size)
        {
            var sum = T.Zero;
            if (log)
            {
                for (var j = at; j < at + size; j++)
                {
                    sum += g[j];
                }

                for (var j = at; j < at + size; j++)
                {
                    dx[j] = g[j] - (dx[j] * sum);
                }
            }
            else
            {
                for (var j = at; j < at + size; j++)
                {
                    sum += g[j] * y[j];
                }

                for (var j = at; j < at + size; j++)
                {
                    dx[j] = (g[j] - sum) * y[j];
                }
            }
        }
    }

    /// <summary>One row: y = softmax(x) or log-softmax(x).</summary>
    internal static void ForwardRow<T>(ReadOnlySpan<T> src, Span<T> dst, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            ForwardRowSingle(MemoryMarshal.Cast<T, float>(src), MemoryMarshal.Cast<T, float>(dst), log);
            return;
        }

        // float64: three passes (the maximum; exp(x − max) and its sum in one; the scale), on 512-bit vectors or Vector<T>.
        var x64 = MemoryMarshal.Cast<T, double>(src);
        var y64 = MemoryMarshal.Cast<T, double>(dst);
        // A NaN anywhere makes the sum, so the whole row, NaN: the maximum need not propagate it.
        var max = VectorMath.MaxIgnoringNaN(x64);
        if (log)
        {
            var lse = Math.Log(VectorMath.ExpShiftedSum(x64, max, y64, store: false));
            VectorMath.SubtractTwice(x64, max, lse, y64);
        }
        else
        {
            var sum = VectorMath.ExpShiftedSum(x64, max, y64, store: true);
            TensorPrimitives.Multiply(y64, 1.0 / sum, y64);
        }
    }

    private static void ForwardRowSingle(ReadOnlySpan<float> src, Span<float> dst, bool log)
    {
        // A NaN anywhere makes the sum, so the whole row, NaN: the maximum need not propagate it.
        var max = FastExp.MaxIgnoringNaN(src);
        if (log)
        {
            var lse = MathF.Log(FastExp.ExpShifted(src, max, dst, store: false));
            VectorMath.SubtractTwice(src, max, lse, dst);
        }
        else
        {
            var sum = FastExp.ExpShifted(src, max, dst, store: true);
            TensorPrimitives.Multiply(dst, 1f / sum, dst);
        }
    }

    /// <summary>
    /// One row of the backward. The softmax's two loops run on 256-bit vectors on the 512-bit path too
    /// (<see cref="Rows256"/>); on the 128-bit path the dot product is <see cref="FastExp.Dot"/> (float32) or
    /// TensorPrimitives.Dot (float64).
    /// </summary>
    internal static void BackwardRow<T>(ReadOnlySpan<T> gr, ReadOnlySpan<T> yr, Span<T> dr, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!log)
        {
            // (g + (−dot)) ⊙ y is exactly (g − dot) ⊙ y, in one pass.
            if (Rows256.Applies)
            {
                Rows256.AddMultiply(gr, -Rows256.Dot(gr, yr), yr, dr);
                return;
            }

            var dot = typeof(T) == typeof(float)
                ? Unsafe.BitCast<float, T>(FastExp.Dot(MemoryMarshal.Cast<T, float>(gr), MemoryMarshal.Cast<T, float>(yr)))
                : TensorPrimitives.Dot(gr, yr);
            TensorPrimitives.AddMultiply(gr, -dot, yr, dr);
            return;
        }

        var sum = TensorPrimitives.Sum(gr);
        if (typeof(T) == typeof(float))
        {
            FastExp.SubtractScaledExp(MemoryMarshal.Cast<T, float>(gr), MemoryMarshal.Cast<T, float>(yr), Unsafe.As<T, float>(ref sum), MemoryMarshal.Cast<T, float>(dr));
            return;
        }

        VectorMath.SubtractScaledExp(MemoryMarshal.Cast<T, double>(gr), MemoryMarshal.Cast<T, double>(yr), Unsafe.As<T, double>(ref sum), MemoryMarshal.Cast<T, double>(dr));
    }

    private static void Exp<T>(ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            FastExp.Exp(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y));
        }
        else
        {
            ExpKernel.Exp<T>(x, y);
        }
    }

    /// <summary>The outer blocks [start, end) of a logsumexp, each on one thread.</summary>
    private readonly struct LogSumExpJob<T>(T[] x, int xOffset, T[] r, int rOffset, int size, int inner) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
            => LogSumExp<T>(
                x.AsSpan(xOffset + (start * size * inner), (end - start) * size * inner),
                r.AsSpan(rOffset + (start * inner), (end - start) * inner),
                end - start,
                size,
                inner);
    }

    /// <summary>The forward over rows or column tiles [start, end).</summary>
    private readonly struct ForwardJob<T>(T[] x, int xOffset, T[] y, int size, int inner, int tile, int tiles, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            if (inner == 1)
            {
                ForwardRows<T>(x.AsSpan(xOffset + (start * size), (end - start) * size), y.AsSpan(start * size, (end - start) * size), size, log);
                return;
            }

            Span<T> m = tile <= 256 ? stackalloc T[tile] : new T[tile];
            Span<T> s = tile <= 256 ? stackalloc T[tile] : new T[tile];
            Span<T> e = tile <= 256 ? stackalloc T[tile] : new T[tile];
            for (var w = start; w < end; w++)
            {
                var o = w / tiles;
                var c0 = (w % tiles) * tile;
                var width = Math.Min(tile, inner - c0);
                var mw = m[..width];
                var sw = s[..width];
                var ew = e[..width];
                var at = (o * size * inner) + c0;

                // The column maxima (NaN propagating), then Σ exp(x − m) with exp(x − m) (or x − m) written to y.
                x.AsSpan(xOffset + at, width).CopyTo(mw);
                for (var j = 1; j < size; j++)
                {
                    TensorPrimitives.Max(mw, x.AsSpan(xOffset + at + (j * inner), width), mw);
                }

                sw.Clear();
                for (var j = 0; j < size; j++)
                {
                    var dst = y.AsSpan(at + (j * inner), width);
                    TensorPrimitives.Subtract(x.AsSpan(xOffset + at + (j * inner), width), mw, dst);
                    if (log)
                    {
                        Exp<T>(dst, ew);
                        TensorPrimitives.Add(sw, ew, sw);
                    }
                    else
                    {
                        Exp<T>(dst, dst);
                        TensorPrimitives.Add(sw, dst, sw);
                    }
                }

                if (log)
                {
                    TensorPrimitives.Log(sw, sw);
                }
                else
                {
                    TensorPrimitives.Reciprocal(sw, sw);
                }

                for (var j = 0; j < size; j++)
                {
                    var dst = y.AsSpan(at + (j * inner), width);
                    if (log)
                    {
                        TensorPrimitives.Subtract(dst, sw, dst);
                    }
                    else
                    {
                        TensorPrimitives.Multiply(dst, sw, dst);
                    }
                }
            }
        }
    }

    /// <summary>The elements of the rows <see cref="TangentJob{T}"/> takes at a time (8192: 32 KB of float32 y).</summary>
    private const int TangentBlockElements = 8192;

    /// <summary>Rows [start, end) of <see cref="ForwardWithTangent{T}"/>.</summary>
    private readonly struct TangentJob<T>(T[] x, int xOffset, T[] tx, int txOffset, T[] y, T[] ty, int size) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            // A few rows at a time: their softmax in one sweep (each row's maximum taken while the previous row is
            // exponentiated), then their tangents, while those rows of y are still in the nearest caches.
            var block = Math.Max(1, TangentBlockElements / Math.Max(1, size));
            for (var o0 = start; o0 < end; o0 += block)
            {
                var rows = Math.Min(block, end - o0);
                ForwardRows<T>(x.AsSpan(xOffset + (o0 * size), rows * size), y.AsSpan(o0 * size, rows * size), size, log: false);
                BackwardRows<T>(tx.AsSpan(txOffset + (o0 * size), rows * size), y.AsSpan(o0 * size, rows * size), ty.AsSpan(o0 * size, rows * size), size, log: false);
            }
        }
    }

    /// <summary>The backward over rows or column tiles [start, end).</summary>
    private readonly struct BackwardJob<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int size, int inner, int tile, int tiles, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            if (inner == 1)
            {
                var count = (end - start) * size;
                BackwardRows<T>(g.AsSpan(gOffset + (start * size), count), y.AsSpan(yOffset + (start * size), count), dx.AsSpan(start * size, count), size, log);

                return;
            }

            Span<T> s = tile <= 256 ? stackalloc T[tile] : new T[tile];
            for (var w = start; w < end; w++)
            {
                var o = w / tiles;
                var c0 = (w % tiles) * tile;
                var width = Math.Min(tile, inner - c0);
                var sw = s[..width];
                var block = o * size * inner;
                sw.Clear();
                for (var j = 0; j < size; j++)
                {
                    var at = block + (j * inner) + c0;
                    if (log)
                    {
                        TensorPrimitives.Add(sw, g.AsSpan(gOffset + at, width), sw);
                    }
                    else
                    {
                        TensorPrimitives.MultiplyAdd(g.AsSpan(gOffset + at, width), y.AsSpan(yOffset + at, width), sw, sw);
                    }
                }

                for (var j = 0; j < size; j++)
                {
                    var at = block + (j * inner) + c0;
                    var dr = dx.AsSpan(at, width);
                    if (log)
                    {
                        Exp<T>(y.AsSpan(yOffset + at, width), dr);
                        TensorPrimitives.Multiply(dr, sw, dr);
                        TensorPrimitives.Subtract(g.AsSpan(gOffset + at, width), dr, dr);
                    }
                    else
                    {
                        TensorPrimitives.Subtract(g.AsSpan(gOffset + at, width), sw, dr);
                        TensorPrimitives.Multiply(dr, y.AsSpan(yOffset + at, width), dr);
                    }
                }
            }
        }
    }
}

/// <summary>
/// The softmax family over one long row (inner = 1, at least <see cref="SoftmaxKernels.LongRow"/> elements), split
/// into parts of <see cref="SoftmaxKernels.PartElements"/> that the threads share. The forward takes, for each part,
/// its maximum mᵢ and sᵢ = Σ exp(x − mᵢ) in one sweep of the part (the exponentials written to y for softmax), then
/// m = max mᵢ and s = Σ sᵢ·exp(mᵢ − m), and a second split pass scales each part by exp(mᵢ − m)/s (or writes
/// x − m − log s). The backward splits its sum (Σ g⊙y, or Σ g) and its update the same way. The parts depend on the
/// row length only and partial results are combined in part order, so results do not depend on the number of threads.
/// Special values keep the one-row kernels' results: a NaN, a +∞ or an all −∞ row makes the row NaN.
/// </summary>
internal static class LongRows
{
    /// <summary>y[yOffset..] = softmax or log-softmax of x[xOffset..], <paramref name="size"/> elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward<T>(T[] x, int xOffset, T[] y, int yOffset, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var parts = Parts(size);
        var m = new T[parts];
        var s = new T[parts];
        Workers.For(parts, Chunks(size), new PartialSumsJob<T>(x, xOffset, y, yOffset, size, m, s, !log));
        var (max, sum) = Combine(m, s);
        if (T.IsNaN(max) || T.IsNegativeInfinity(max))
        {
            // A NaN part maximum, or a row of only −∞: NaN throughout, as x − max is in the one-row kernels. (A NaN that
            // a part maximum skipped, or a +∞, makes the sum NaN, and so every factor below.)
            y.AsSpan(yOffset, size).Fill(T.NaN);
            return;
        }

        var f = new T[parts];
        for (var p = 0; p < parts; p++)
        {
            f[p] = (T.IsNegativeInfinity(m[p]) ? T.Zero : T.Exp(m[p] - max)) / sum;
        }

        Workers.For(parts, Chunks(size), new FinishJob<T>(x, xOffset, y, yOffset, size, f, max, T.Log(sum), log));
    }

    /// <summary>The backward of <see cref="Forward{T}"/> over one row: dx from g and the forward's result y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Backward<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int dxOffset, int size, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var parts = Parts(size);
        var partial = new T[parts];
        Workers.For(parts, Chunks(size), new BackwardSumJob<T>(g, gOffset, y, yOffset, size, partial, log));
        var total = T.Zero;
        for (var p = 0; p < parts; p++)
        {
            total += partial[p];
        }

        Workers.For(parts, Chunks(size), new BackwardUpdateJob<T>(g, gOffset, y, yOffset, dx, dxOffset, size, total, log));
    }

    /// <summary>
    /// log Σ exp(x − m) + m over one row, m its maximum replaced by 0 where it is ±∞ (a NaN in the row makes the sum NaN
    /// whatever m is): the elements' exponentials are those of the one-thread kernel, only the sum is taken by parts.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static T LogSumExp<T>(T[] x, int xOffset, int size)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var parts = Parts(size);
        var partial = new T[parts];
        Workers.For(parts, Chunks(size), new MaxJob<T>(x, xOffset, size, partial));
        var max = T.NegativeInfinity;
        for (var p = 0; p < parts; p++)
        {
            max = T.IsNaN(partial[p]) || T.IsNaN(max) ? T.NaN : T.Max(max, partial[p]);
        }

        var finiteShift = !T.IsInfinity(max);
        if (!finiteShift)
        {
            max = T.Zero;
        }

        Workers.For(parts, Chunks(size), new ExpSumJob<T>(x, xOffset, size, max, finiteShift, partial));
        var sum = T.Zero;
        for (var p = 0; p < parts; p++)
        {
            sum += partial[p];
        }

        return T.Log(sum) + max;
    }

    private static int Parts(int size) => (size + SoftmaxKernels.PartElements - 1) / SoftmaxKernels.PartElements;

    private static int Chunks(int size) => Workers.Chunks(size, SoftmaxKernels.PartElements);

    private static (int Start, int Length) Part(int p, int size)
    {
        var start = p * SoftmaxKernels.PartElements;
        return (start, Math.Min(SoftmaxKernels.PartElements, size - start));
    }

    /// <summary>m = max mᵢ (NaN if any is NaN) and s = Σ sᵢ·exp(mᵢ − m), a part of only −∞ (mᵢ = −∞) adding its sᵢ as it is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (T Max, T Sum) Combine<T>(T[] m, T[] s)
        where T : IFloatingPointIeee754<T>
    {
        var max = T.NegativeInfinity;
        for (var p = 0; p < m.Length; p++)
        {
            if (T.IsNaN(m[p]))
            {
                return (T.NaN, T.NaN);
            }

            max = T.Max(max, m[p]);
        }

        var sum = T.Zero;
        for (var p = 0; p < m.Length; p++)
        {
            sum += T.IsNegativeInfinity(m[p]) ? s[p] : s[p] * T.Exp(m[p] - max);
        }

        return (max, sum);
    }

    /// <summary>
    /// Each part's maximum mᵢ and Σ exp(x − mᵢ) (with the shift 0 where mᵢ is −∞, so a part of −∞ sums to 0, or NaN if
    /// it holds a NaN), the exponentials written to y when <c>store</c> (float64 always writes them).
    /// </summary>
    private readonly struct PartialSumsJob<T>(T[] x, int xOffset, T[] y, int yOffset, int size, T[] m, T[] s, bool store) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                var src = x.AsSpan(xOffset + at, n);
                var dst = y.AsSpan(yOffset + at, n);
                if (typeof(T) == typeof(float))
                {
                    var fs = MemoryMarshal.Cast<T, float>(src);
                    var mi = FastExp.MaxIgnoringNaN(fs);
                    var si = FastExp.ExpShifted(fs, float.IsNegativeInfinity(mi) ? 0f : mi, MemoryMarshal.Cast<T, float>(dst), store);
                    m[p] = Unsafe.As<float, T>(ref mi);
                    s[p] = Unsafe.As<float, T>(ref si);
                }
                else
                {
                    var ds = MemoryMarshal.Cast<T, double>(src);
                    var mi = VectorMath.MaxIgnoringNaN(ds);
                    var si = VectorMath.ExpShiftedSum(ds, double.IsNegativeInfinity(mi) ? 0.0 : mi, MemoryMarshal.Cast<T, double>(dst), store: true);
                    m[p] = Unsafe.As<double, T>(ref mi);
                    s[p] = Unsafe.As<double, T>(ref si);
                }
            }
        }
    }

    /// <summary>Softmax: y ⊙= f[part]. Log-softmax: y = (x − max) − lse.</summary>
    private readonly struct FinishJob<T>(T[] x, int xOffset, T[] y, int yOffset, int size, T[] f, T max, T lse, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                var dst = y.AsSpan(yOffset + at, n);
                if (log)
                {
                    VectorMath.SubtractTwice<T>(x.AsSpan(xOffset + at, n), max, lse, dst);
                }
                else
                {
                    TensorPrimitives.Multiply(dst, f[p], dst);
                }
            }
        }
    }

    /// <summary>Each part's Σ g⊙y (softmax) or Σ g (log-softmax).</summary>
    private readonly struct BackwardSumJob<T>(T[] g, int gOffset, T[] y, int yOffset, int size, T[] partial, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                var gp = g.AsSpan(gOffset + at, n);
                var yp = y.AsSpan(yOffset + at, n);
                partial[p] = log ? TensorPrimitives.Sum<T>(gp) : Rows256.Applies ? Rows256.Dot<T>(gp, yp) : TensorPrimitives.Dot<T>(gp, yp);
            }
        }
    }

    /// <summary>Softmax: dx = (g − total) ⊙ y. Log-softmax: dx = g − exp(y) · total.</summary>
    private readonly struct BackwardUpdateJob<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int dxOffset, int size, T total, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                var gp = g.AsSpan(gOffset + at, n);
                var yp = y.AsSpan(yOffset + at, n);
                var dp = dx.AsSpan(dxOffset + at, n);
                if (!log)
                {
                    if (Rows256.Applies)
                    {
                        Rows256.AddMultiply(gp, -total, yp, dp);
                    }
                    else
                    {
                        TensorPrimitives.AddMultiply(gp, -total, yp, dp);
                    }
                }
                else if (typeof(T) == typeof(float))
                {
                    var t = total;
                    FastExp.SubtractScaledExp(MemoryMarshal.Cast<T, float>(gp), MemoryMarshal.Cast<T, float>(yp), Unsafe.As<T, float>(ref t), MemoryMarshal.Cast<T, float>(dp));
                }
                else
                {
                    // One pass, the bits of BackwardRow's.
                    var t = total;
                    VectorMath.SubtractScaledExp(MemoryMarshal.Cast<T, double>(gp), MemoryMarshal.Cast<T, double>(yp), Unsafe.As<T, double>(ref t), MemoryMarshal.Cast<T, double>(dp));
                }
            }
        }
    }

    /// <summary>Each part's maximum (<see cref="SoftmaxKernels.RowMax{T}"/>: with a NaN in the part, any element or NaN).</summary>
    private readonly struct MaxJob<T>(T[] x, int xOffset, int size, T[] partial) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                partial[p] = SoftmaxKernels.RowMax<T>(x.AsSpan(xOffset + at, n));
            }
        }
    }

    /// <summary>Each part's Σ exp(x − shift), the exponentials <see cref="ExpKernel"/>'s (<see cref="SoftmaxKernels.ExpShiftedSum{T}"/>).</summary>
    private readonly struct ExpSumJob<T>(T[] x, int xOffset, int size, T shift, bool finiteShift, T[] partial) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var p = start; p < end; p++)
            {
                var (at, n) = Part(p, size);
                partial[p] = SoftmaxKernels.ExpShiftedSum<T>(x.AsSpan(xOffset + at, n), shift, finiteShift);
            }
        }
    }
}

/// <summary>
/// A float32 exponential and the softmax row loops built on it, written once over <see cref="ISimdFloat{TV}"/> and run
/// on 512-bit vectors (AVX-512), 256-bit (AVX2 + FMA) or 128-bit (SSE, NEON), the widest the processor accelerates:
/// range reduction by ln 2 (in two parts), a degree-6 polynomial on [−ln2/2, ln2/2] and a scale by 2ⁿ rounded once
/// (<c>vscalefps</c>, or two normal powers of two), so over- and underflow (to subnormals and 0) are exact. Its error
/// is within 2 ulp (measured 1.2e-7 relative over [−20, 0]); exp(0) = 1 exactly, exp(−∞) = 0, exp(+∞) = +∞, NaN stays
/// NaN. Every width computes each element by the same operations, so gives the same bits.
/// </summary>
internal static class FastExp
{
    private static readonly int HardwareBits = Avx512F.IsSupported && Vector512.IsHardwareAccelerated ? 512
        : Vector256.IsHardwareAccelerated ? 256 : 128;

    /// <summary>Set on a thread to run narrower vectors than the processor offers (256 or 128; 0 for the widest), for tests.</summary>
    [ThreadStatic]
    internal static int WidthLimit;

    /// <summary>True when the 512-bit code can run (AVX-512F).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>The vector width in bits the kernels use on this thread: 512, 256 or 128.</summary>
    internal static int Bits
    {
        get
        {
            var bits = HardwareBits;
            var limit = VectorMath.PortableOnly ? 256 : WidthLimit;
            return limit != 0 && limit < bits ? limit : bits;
        }
    }

    /// <summary>
    /// Σ exp(x − shift); the exponentials are written to <paramref name="dst"/> when <paramref name="store"/>. The shift is
    /// an element of x, so no x − shift is +∞ (it is NaN where x or the shift is infinite or NaN, and the row is NaN anyway).
    /// </summary>
    public static float ExpShifted(ReadOnlySpan<float> x, float shift, Span<float> dst, bool store)
        => Bits switch
        {
            512 => ExpShifted<Vector512<float>, Simd512>(x, shift, dst, store, default, out _),
            256 => ExpShifted<Vector256<float>, Simd256>(x, shift, dst, store, default, out _),
            _ => ExpShifted<Vector128<float>, Simd128>(x, shift, dst, store, default, out _),
        };

    /// <summary>
    /// Softmax (or log-softmax) of consecutive rows of <paramref name="n"/> ≥ 16 elements. Each row needs its maximum
    /// before its exponentials; the maximum of the next row is taken in the same loop that exponentiates the current
    /// one, so the next row's loads from memory overlap this row's arithmetic instead of waiting in a pass of their own.
    /// Every row is computed the same way wherever a split between threads starts (a maximum is a maximum). The
    /// results are written with ordinary stores: the backward reads them next, and they should still be in a cache.
    /// </summary>
    public static void SoftmaxRows(ReadOnlySpan<float> x, Span<float> y, int n, bool log)
    {
        switch (Bits)
        {
            case 512:
                SoftmaxRows<Vector512<float>, Simd512>(x, y, n, log);
                break;
            case 256:
                SoftmaxRows<Vector256<float>, Simd256>(x, y, n, log);
                break;
            default:
                SoftmaxRows<Vector128<float>, Simd128>(x, y, n, log);
                break;
        }
    }

    /// <summary>
    /// Σ a ⊙ b over two spans of the same length, in four independent accumulators of fused multiply-adds whose lanes are
    /// summed at the end: the dot product of a softmax backward row, which a single accumulator makes a chain of dependent
    /// additions as long as the row.
    /// </summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        => Bits switch
        {
            512 => Dot<Vector512<float>, Simd512>(a, b),
            256 => Dot<Vector256<float>, Simd256>(a, b),
            _ => Dot<Vector128<float>, Simd128>(a, b),
        };

    /// <summary><see cref="Dot"/> on 256-bit vectors whatever the path (for <see cref="Rows256"/>).</summary>
    internal static float Dot256(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => Dot<Vector256<float>, Simd256>(a, b);

    /// <summary>
    /// The largest element of a non-empty span, for a shift that only has to be an element: where there are NaNs the
    /// result may be any element or NaN, and the sign of a zero maximum is unspecified.
    /// </summary>
    public static float MaxIgnoringNaN(ReadOnlySpan<float> x)
        => Bits switch
        {
            512 => MaxIgnoringNaN<Vector512<float>, Simd512>(x),
            256 => MaxIgnoringNaN<Vector256<float>, Simd256>(x),
            _ => MaxIgnoringNaN<Vector128<float>, Simd128>(x),
        };

    /// <summary>y = exp(x).</summary>
    public static void Exp(ReadOnlySpan<float> x, Span<float> y)
    {
        switch (Bits)
        {
            case 512:
                Exp<Vector512<float>, Simd512>(x, y);
                break;
            case 256:
                Exp<Vector256<float>, Simd256>(x, y);
                break;
            default:
                Exp<Vector128<float>, Simd128>(x, y);
                break;
        }
    }

    /// <summary>exp(x) for one value, by the vector code.</summary>
    public static float Exp(float x)
        => Bits switch
        {
            512 => Exp<Vector512<float>, Simd512>(Vector512.Create(x)).ToScalar(),
            256 => Exp<Vector256<float>, Simd256>(Vector256.Create(x)).ToScalar(),
            _ => Exp<Vector128<float>, Simd128>(Vector128.Create(x)).ToScalar(),
        };

    /// <summary>dst = g − exp(y) · s (the log-softmax backward of one row).</summary>
    public static void SubtractScaledExp(ReadOnlySpan<float> g, ReadOnlySpan<float> y, float s, Span<float> dst)
    {
        switch (Bits)
        {
            case 512:
                SubtractScaledExp<Vector512<float>, Simd512>(g, y, s, dst);
                break;
            case 256:
                SubtractScaledExp<Vector256<float>, Simd256>(g, y, s, dst);
                break;
            default:
                SubtractScaledExp<Vector128<float>, Simd128>(g, y, s, dst);
                break;
        }
    }

    /// <summary>exp of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) => Exp<Vector512<float>, Simd512>(x);

    /// <summary>
    /// exp of each lane, for lanes that are not +∞ (a shifted logit x − max). Large finite lanes still overflow to +∞
    /// through the scale; +∞ itself would give NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpBelowInfinity(Vector512<float> x) => ExpBelowInfinity<Vector512<float>, Simd512>(x);

    /// <summary>exp of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV Exp<TV, TS>(TV x)
        where TV : struct
        where TS : ISimdFloat<TV>
        => ExpBelowInfinity<TV, TS>(TS.MinNative(TS.Broadcast(89f), x));

    /// <summary>exp of each lane, for lanes that are not +∞; see <see cref="ExpBelowInfinity(Vector512{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static TV ExpBelowInfinity<TV, TS>(TV x)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        // The native max and min return their second operand when either is NaN on x86 (and NaN on ARM64), so NaN passes
        // the clamps. Below −104 the result rounds to 0 (so exp(−∞) = 0), above 89 to +∞; the narrow scales clamp n at 128.
        x = TS.MaxNative(TS.Broadcast(-104f), x);
        var n = TS.RoundToEven(TS.Multiply(x, TS.Broadcast(1.44269504f)));
        var r = TS.FusedMultiplyAdd(n, TS.Broadcast(-0.693145752f), x);
        r = TS.FusedMultiplyAdd(n, TS.Broadcast(-1.42860677e-6f), r);
        var p = TS.Broadcast(1.9875691500e-4f);
        p = TS.FusedMultiplyAdd(p, r, TS.Broadcast(1.3981999507e-3f));
        p = TS.FusedMultiplyAdd(p, r, TS.Broadcast(8.3334519073e-3f));
        p = TS.FusedMultiplyAdd(p, r, TS.Broadcast(4.1665795894e-2f));
        p = TS.FusedMultiplyAdd(p, r, TS.Broadcast(1.6666665459e-1f));
        p = TS.FusedMultiplyAdd(p, r, TS.Broadcast(5.0000001201e-1f));
        p = TS.FusedMultiplyAdd(p, TS.Multiply(r, r), TS.Add(r, TS.Broadcast(1f)));
        return TS.ScaleByPowerOfTwo(p, n);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SoftmaxRows<TV, TS>(ReadOnlySpan<float> x, Span<float> y, int n, bool log)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var rows = x.Length / n;
        var max = MaxIgnoringNaN<TV, TS>(x[..n]);
        for (var r = 0; r < rows; r++)
        {
            var src = x.Slice(r * n, n);
            var dst = y.Slice(r * n, n);
            var next = r + 1 < rows ? x.Slice((r + 1) * n, n) : default;
            var sum = ExpShifted<TV, TS>(src, max, dst, store: !log, next, out var nextMax);
            if (log)
            {
                VectorMath.SubtractTwice(src, max, MathF.Log(sum), dst);
            }
            else
            {
                TensorPrimitives.Multiply(dst, 1f / sum, dst);
            }

            max = nextMax;
        }
    }

    /// <summary>
    /// <see cref="ExpShifted(ReadOnlySpan{float}, float, Span{float}, bool)"/> of a row that also returns the maximum of
    /// the next row (<paramref name="next"/>, of the same length, or empty for the last row, then 0), taken as
    /// <see cref="MaxIgnoringNaN"/> takes it. Without a next row the loop takes maxima over x itself (loads that hit
    /// L1) and drops them, so one loop serves both. A next row must hold at least one vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float ExpShifted<TV, TS>(ReadOnlySpan<float> x, float shift, Span<float> dst, bool store, ReadOnlySpan<float> next, out float nextMax)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var w = TS.Count;
        var n = x.Length;
        var scan = next.IsEmpty ? x : next;
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var dr = ref MemoryMarshal.GetReference(dst);
        ref var nr = ref MemoryMarshal.GetReference(scan);
        var vs = TS.Broadcast(shift);
        var acc0 = TS.Zero;
        var acc1 = TS.Zero;
        var m0 = n >= w ? TS.Load(ref nr, 0) : TS.Zero;
        var m1 = m0;
        var i = 0;
        if (w < 16)
        {
            // Below 512 bits (16 vector registers on x86 without AVX-512) one exponential at a time spills less.
            for (; i <= n - w; i += w)
            {
                var e = ExpBelowInfinity<TV, TS>(TS.Subtract(TS.Load(ref xr, (nuint)i), vs));
                m0 = TS.MaxNative(m0, TS.Load(ref nr, (nuint)i));
                if (store)
                {
                    TS.Store(e, ref dr, (nuint)i);
                }

                acc0 = TS.Add(acc0, e);
            }
        }

        for (; i <= n - (2 * w); i += 2 * w)
        {
            var e0 = ExpBelowInfinity<TV, TS>(TS.Subtract(TS.Load(ref xr, (nuint)i), vs));
            var e1 = ExpBelowInfinity<TV, TS>(TS.Subtract(TS.Load(ref xr, (nuint)(i + w)), vs));
            m0 = TS.MaxNative(m0, TS.Load(ref nr, (nuint)i));
            m1 = TS.MaxNative(m1, TS.Load(ref nr, (nuint)(i + w)));
            if (store)
            {
                TS.Store(e0, ref dr, (nuint)i);
                TS.Store(e1, ref dr, (nuint)(i + w));
            }

            acc0 = TS.Add(acc0, e0);
            acc1 = TS.Add(acc1, e1);
        }

        nextMax = 0f;
        if (!next.IsEmpty)
        {
            for (var j = i; j <= n - w; j += w)
            {
                m0 = TS.MaxNative(m0, TS.Load(ref nr, (nuint)j));
            }

            // The last vector again covers any remainder: the maximum does not mind seeing some elements twice.
            m1 = TS.MaxNative(m1, TS.Load(ref nr, (nuint)(n - w)));
            nextMax = TS.MaxAcross(TS.MaxNative(m0, m1));
        }

        for (; i < n; i += w)
        {
            var rem = Math.Min(w, n - i);
            TV e;
            if (rem == w)
            {
                e = ExpBelowInfinity<TV, TS>(TS.Subtract(TS.Load(ref xr, (nuint)i), vs));
                if (store)
                {
                    TS.Store(e, ref dr, (nuint)i);
                }
            }
            else
            {
                e = TS.FirstLanes(ExpBelowInfinity<TV, TS>(TS.Subtract(Load<TV, TS>(x, i, rem), vs)), rem);
                if (store)
                {
                    Store<TV, TS>(e, dst, i, rem);
                }
            }

            acc0 = TS.Add(acc0, e);
        }

        return TS.Sum(TS.Add(acc0, acc1));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<TV, TS>(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var w = TS.Count;
        var n = a.Length;
        _ = b[..n];
        ref var ar = ref MemoryMarshal.GetReference(a);
        ref var br = ref MemoryMarshal.GetReference(b);
        var s0 = TS.Zero;
        var s1 = TS.Zero;
        var s2 = TS.Zero;
        var s3 = TS.Zero;
        var i = 0;
        for (; i <= n - (4 * w); i += 4 * w)
        {
            s0 = TS.FusedMultiplyAdd(TS.Load(ref ar, (nuint)i), TS.Load(ref br, (nuint)i), s0);
            s1 = TS.FusedMultiplyAdd(TS.Load(ref ar, (nuint)(i + w)), TS.Load(ref br, (nuint)(i + w)), s1);
            s2 = TS.FusedMultiplyAdd(TS.Load(ref ar, (nuint)(i + (2 * w))), TS.Load(ref br, (nuint)(i + (2 * w))), s2);
            s3 = TS.FusedMultiplyAdd(TS.Load(ref ar, (nuint)(i + (3 * w))), TS.Load(ref br, (nuint)(i + (3 * w))), s3);
        }

        for (; i <= n - w; i += w)
        {
            s0 = TS.FusedMultiplyAdd(TS.Load(ref ar, (nuint)i), TS.Load(ref br, (nuint)i), s0);
        }

        var sum = TS.Sum(TS.Add(TS.Add(s0, s1), TS.Add(s2, s3)));
        for (; i < n; i++)
        {
            sum = VectorMath.MultiplyAdd(Unsafe.Add(ref ar, i), Unsafe.Add(ref br, i), sum);
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float MaxIgnoringNaN<TV, TS>(ReadOnlySpan<float> x)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var w = TS.Count;
        var n = x.Length;
        if (n < w)
        {
            return TensorPrimitives.Max(x);
        }

        ref var xr = ref MemoryMarshal.GetReference(x);
        var m0 = TS.Load(ref xr, 0);
        var m1 = m0;
        var m2 = m0;
        var m3 = m0;
        var i = w;
        for (; i <= n - (4 * w); i += 4 * w)
        {
            m0 = TS.MaxNative(m0, TS.Load(ref xr, (nuint)i));
            m1 = TS.MaxNative(m1, TS.Load(ref xr, (nuint)(i + w)));
            m2 = TS.MaxNative(m2, TS.Load(ref xr, (nuint)(i + (2 * w))));
            m3 = TS.MaxNative(m3, TS.Load(ref xr, (nuint)(i + (3 * w))));
        }

        for (; i <= n - w; i += w)
        {
            m0 = TS.MaxNative(m0, TS.Load(ref xr, (nuint)i));
        }

        if (i < n)
        {
            // The last vector again: the maximum does not mind seeing some elements twice.
            m1 = TS.MaxNative(m1, TS.Load(ref xr, (nuint)(n - w)));
        }

        return TS.MaxAcross(TS.MaxNative(TS.MaxNative(m0, m1), TS.MaxNative(m2, m3)));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Exp<TV, TS>(ReadOnlySpan<float> x, Span<float> y)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var w = TS.Count;
        var n = x.Length;
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i <= n - w; i += w)
        {
            TS.Store(Exp<TV, TS>(TS.Load(ref xr, (nuint)i)), ref yr, (nuint)i);
        }

        if (i < n)
        {
            Store<TV, TS>(Exp<TV, TS>(Load<TV, TS>(x, i, n - i)), y, i, n - i);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SubtractScaledExp<TV, TS>(ReadOnlySpan<float> g, ReadOnlySpan<float> y, float s, Span<float> dst)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        var w = TS.Count;
        var n = g.Length;
        ref var gr = ref MemoryMarshal.GetReference(g);
        ref var yr = ref MemoryMarshal.GetReference(y);
        ref var dr = ref MemoryMarshal.GetReference(dst);
        var vs = TS.Broadcast(s);
        var i = 0;
        for (; i <= n - w; i += w)
        {
            TS.Store(TS.Subtract(TS.Load(ref gr, (nuint)i), TS.Multiply(Exp<TV, TS>(TS.Load(ref yr, (nuint)i)), vs)), ref dr, (nuint)i);
        }

        if (i < n)
        {
            Store<TV, TS>(TS.Subtract(Load<TV, TS>(g, i, n - i), TS.Multiply(Exp<TV, TS>(Load<TV, TS>(y, i, n - i)), vs)), dst, i, n - i);
        }
    }

    /// <summary>The <paramref name="count"/> (&lt; one vector) elements at <paramref name="start"/>, the other lanes 0.</summary>
    private static TV Load<TV, TS>(ReadOnlySpan<float> x, int start, int count)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        Span<float> buffer = stackalloc float[16];
        buffer.Clear();
        x.Slice(start, count).CopyTo(buffer);
        return TS.Load(ref MemoryMarshal.GetReference(buffer), 0);
    }

    private static void Store<TV, TS>(TV v, Span<float> dst, int start, int count)
        where TV : struct
        where TS : ISimdFloat<TV>
    {
        Span<float> buffer = stackalloc float[16];
        TS.Store(v, ref MemoryMarshal.GetReference(buffer), 0);
        buffer[..count].CopyTo(dst.Slice(start, count));
    }
}
