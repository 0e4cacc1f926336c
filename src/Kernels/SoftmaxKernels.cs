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
/// on the number of threads. float32 exponentials use <see cref="FastExp"/> where AVX-512 is available.
/// </remarks>
internal static class SoftmaxKernels
{
    /// <summary>The number of elements from which the kernels use more than one thread.</summary>
    private const int ParallelElements = 1 << 16;

    /// <summary>The most bytes of one input a column tile spans, so that its later passes hit the L2 cache.</summary>
    private const int TileBytes = 256 * 1024;

    /// <summary>y = exp(x − max) / Σ exp(x − max) (or its log): one exp per element.</summary>
    public static void Forward<T>(T[] x, int xOffset, T[] y, int outer, int size, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size == 0 || outer == 0 || inner == 0)
        {
            return;
        }

        var (items, tile, tiles) = Plan<T>(outer, size, inner);
        var job = new ForwardJob<T>(x, xOffset, y, size, inner, tile, tiles, log);
        Workers.For(items, Chunks(outer, size, inner), job);
    }

    /// <summary>Softmax: dx = y ⊙ (g − Σ g⊙y). LogSoftmax: dx = g − exp(y) ⊙ Σ g. One pass for the sums, one for dx.</summary>
    public static void Backward<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int outer, int size, int inner, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (size == 0 || outer == 0 || inner == 0)
        {
            return;
        }

        var (items, tile, tiles) = Plan<T>(outer, size, inner);
        var job = new BackwardJob<T>(g, gOffset, y, yOffset, dx, size, inner, tile, tiles, log, Streams<T>(outer, size, inner));
        Workers.For(items, Chunks(outer, size, inner), job);
    }

    /// <summary>
    /// r = log Σ exp(x − m) + m with m the maximum, replaced by 0 where it is ±inf (as PyTorch: an all −inf row gives −inf,
    /// a row holding +inf gives +inf). The exponentials are <see cref="ExpKernel"/>'s, the operator Exp's, so exp(0) is 1
    /// exactly and the fused form rounds as the composed one does.
    /// </summary>
    public static void LogSumExp<T>(ReadOnlySpan<T> x, Span<T> r, int outer, int size, int inner)
        where T : IFloatingPointIeee754<T>
    {
        var m = new T[inner];
        var s = new T[inner];
        var e = new T[inner];
        var tmp = inner == 1 ? new T[size] : null;
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
                TensorPrimitives.Subtract(row, m[0], tmp);
                ExpKernel.Exp<T>(tmp, tmp);
                r[o] = T.Log(TensorPrimitives.Sum<T>(tmp)) + m[0];
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

    /// <summary>Whether a float32 result of rows (inner = 1) is large enough to be written with non-temporal stores.</summary>
    private static bool Streams<T>(int outer, int size, int inner)
        where T : unmanaged
        => typeof(T) == typeof(float) && inner == 1 && size >= 16 && NonTemporal.IsSupported
            && (long)outer * size * sizeof(float) >= NonTemporal.ThresholdBytes;

    private static int Chunks(int outer, int size, int inner)
        => Workers.Chunks((long)outer * size * inner, ParallelElements / 2);

    /// <summary>One row: y = softmax(x) or log-softmax(x).</summary>
    private static void ForwardRow<T>(ReadOnlySpan<T> src, Span<T> dst, bool log)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && FastExp.IsSupported)
        {
            ForwardRowSingle(MemoryMarshal.Cast<T, float>(src), MemoryMarshal.Cast<T, float>(dst), log);
            return;
        }

        var max = TensorPrimitives.Max(src);
        TensorPrimitives.Subtract(src, max, dst);
        if (log)
        {
            // Σ exp(x − max) without a buffer: exp into dst, sum, then rewrite dst as x − max.
            ExpKernel.Exp<T>(dst, dst);
            var lse = T.Log(TensorPrimitives.Sum<T>(dst));
            TensorPrimitives.Subtract(src, max, dst);
            TensorPrimitives.Subtract(dst, lse, dst);
        }
        else
        {
            ExpKernel.Exp<T>(dst, dst);
            var sum = TensorPrimitives.Sum<T>(dst);
            TensorPrimitives.Multiply(dst, T.One / sum, dst);
        }
    }

    private static void ForwardRowSingle(ReadOnlySpan<float> src, Span<float> dst, bool log)
    {
        // A NaN anywhere makes the sum, so the whole row, NaN: the maximum need not propagate it.
        var max = FastExp.MaxIgnoringNaN(src);
        if (log)
        {
            var lse = MathF.Log(FastExp.ExpShifted(src, max, dst, store: false));
            TensorPrimitives.Subtract(src, max, dst);
            TensorPrimitives.Subtract(dst, lse, dst);
        }
        else
        {
            var sum = FastExp.ExpShifted(src, max, dst, store: true);
            TensorPrimitives.Multiply(dst, 1f / sum, dst);
        }
    }

    /// <summary>
    /// One row of the backward. With <paramref name="streaming"/> (float32 only, see <see cref="Streams{T}"/>) the softmax
    /// row is written with <see cref="NonTemporal"/> stores, the same values; the caller fences.
    /// </summary>
    private static void BackwardRow<T>(ReadOnlySpan<T> gr, ReadOnlySpan<T> yr, Span<T> dr, bool log, bool streaming)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!log)
        {
            // (g + (−dot)) ⊙ y is exactly (g − dot) ⊙ y, in one pass.
            var dot = TensorPrimitives.Dot(gr, yr);
            if (streaming)
            {
                NonTemporal.AddMultiply(MemoryMarshal.Cast<T, float>(gr), -Unsafe.As<T, float>(ref dot), MemoryMarshal.Cast<T, float>(yr), MemoryMarshal.Cast<T, float>(dr));
            }
            else
            {
                TensorPrimitives.AddMultiply(gr, -dot, yr, dr);
            }

            return;
        }

        var sum = TensorPrimitives.Sum(gr);
        if (typeof(T) == typeof(float) && FastExp.IsSupported)
        {
            FastExp.SubtractScaledExp(MemoryMarshal.Cast<T, float>(gr), MemoryMarshal.Cast<T, float>(yr), Unsafe.As<T, float>(ref sum), MemoryMarshal.Cast<T, float>(dr));
            return;
        }

        ExpKernel.Exp<T>(yr, dr);
        TensorPrimitives.Multiply(dr, sum, dr);
        TensorPrimitives.Subtract(gr, dr, dr);
    }

    private static void Exp<T>(ReadOnlySpan<T> x, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float) && FastExp.IsSupported)
        {
            FastExp.Exp(MemoryMarshal.Cast<T, float>(x), MemoryMarshal.Cast<T, float>(y));
        }
        else
        {
            ExpKernel.Exp<T>(x, y);
        }
    }

    /// <summary>The forward over rows or column tiles [start, end).</summary>
    private readonly struct ForwardJob<T>(T[] x, int xOffset, T[] y, int size, int inner, int tile, int tiles, bool log) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            if (inner == 1)
            {
                if (typeof(T) == typeof(float) && FastExp.IsSupported && size >= 16)
                {
                    var src = MemoryMarshal.Cast<T, float>(x.AsSpan(xOffset + (start * size), (end - start) * size));
                    FastExp.SoftmaxRows(src, MemoryMarshal.Cast<T, float>(y.AsSpan(start * size, (end - start) * size)), size, log);
                    return;
                }

                for (var o = start; o < end; o++)
                {
                    ForwardRow<T>(x.AsSpan(xOffset + (o * size), size), y.AsSpan(o * size, size), log);
                }

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

    /// <summary>The backward over rows or column tiles [start, end).</summary>
    private readonly struct BackwardJob<T>(T[] g, int gOffset, T[] y, int yOffset, T[] dx, int size, int inner, int tile, int tiles, bool log, bool streaming) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            if (inner == 1)
            {
                for (var o = start; o < end; o++)
                {
                    BackwardRow<T>(g.AsSpan(gOffset + (o * size), size), y.AsSpan(yOffset + (o * size), size), dx.AsSpan(o * size, size), log, streaming);
                }

                if (streaming)
                {
                    NonTemporal.Fence();
                }

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
/// A float32 exponential on 512-bit vectors: range reduction by ln 2 (in two parts), a degree-6 polynomial on
/// [−ln2/2, ln2/2] and a scale by 2ⁿ with <c>vscalefps</c>, so over- and underflow (to subnormals and 0) are exact.
/// Its error is within 2 ulp (measured 1.2e-7 relative over [−20, 0]); exp(−∞) = 0, exp(+∞) = +∞, NaN stays NaN.
/// About twice as fast as <see cref="TensorPrimitives.Exp{T}(ReadOnlySpan{T}, Span{T})"/>, which works in float64.
/// </summary>
internal static class FastExp
{
    /// <summary>True when the vector code can run (AVX-512F).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// Σ exp(x − shift); the exponentials are written to <paramref name="dst"/> when <paramref name="store"/>. The shift is
    /// an element of x, so no x − shift is +∞ (it is NaN where x or the shift is infinite or NaN, and the row is NaN anyway).
    /// </summary>
    public static float ExpShifted(ReadOnlySpan<float> x, float shift, Span<float> dst, bool store)
        => ExpShifted(x, shift, dst, store, default, out _);

    /// <summary>
    /// Softmax (or log-softmax) of consecutive rows of <paramref name="n"/> ≥ 16 elements. Each row needs its maximum
    /// before its exponentials; the maximum of the next row is taken in the same loop that exponentiates the current
    /// one, so the next row's loads from memory overlap this row's arithmetic instead of waiting in a pass of their own.
    /// Every row is computed the same way wherever a split between threads starts (a maximum is a maximum). The
    /// results are written with ordinary stores: the backward reads them next, and they should still be in a cache.
    /// </summary>
    public static void SoftmaxRows(ReadOnlySpan<float> x, Span<float> y, int n, bool log)
    {
        var rows = x.Length / n;
        var max = MaxIgnoringNaN(x[..n]);
        for (var r = 0; r < rows; r++)
        {
            var src = x.Slice(r * n, n);
            var dst = y.Slice(r * n, n);
            var next = r + 1 < rows ? x.Slice((r + 1) * n, n) : default;
            var sum = ExpShifted(src, max, dst, store: !log, next, out var nextMax);
            if (log)
            {
                var lse = MathF.Log(sum);
                TensorPrimitives.Subtract(src, max, dst);
                TensorPrimitives.Subtract(dst, lse, dst);
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
    /// L1) and drops them, so one loop serves both.
    /// </summary>
    private static float ExpShifted(ReadOnlySpan<float> x, float shift, Span<float> dst, bool store, ReadOnlySpan<float> next, out float nextMax)
    {
        var n = x.Length;
        var scan = next.IsEmpty ? x : next;
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var dr = ref MemoryMarshal.GetReference(dst);
        ref var nr = ref MemoryMarshal.GetReference(scan);
        var vs = Vector512.Create(shift);
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        var m0 = n >= 16 ? Vector512.LoadUnsafe(ref nr) : Vector512<float>.Zero;
        var m1 = m0;
        var i = 0;
        for (; i <= n - 32; i += 32)
        {
            var e0 = ExpBelowInfinity(Vector512.LoadUnsafe(ref xr, (nuint)i) - vs);
            var e1 = ExpBelowInfinity(Vector512.LoadUnsafe(ref xr, (nuint)(i + 16)) - vs);
            m0 = Avx512F.Max(m0, Vector512.LoadUnsafe(ref nr, (nuint)i));
            m1 = Avx512F.Max(m1, Vector512.LoadUnsafe(ref nr, (nuint)(i + 16)));
            if (store)
            {
                e0.StoreUnsafe(ref dr, (nuint)i);
                e1.StoreUnsafe(ref dr, (nuint)(i + 16));
            }

            acc0 += e0;
            acc1 += e1;
        }

        nextMax = 0f;
        if (!next.IsEmpty)
        {
            for (var j = i; j <= n - 16; j += 16)
            {
                m0 = Avx512F.Max(m0, Vector512.LoadUnsafe(ref nr, (nuint)j));
            }

            // The last 16 elements again covers any remainder: the maximum does not mind seeing some twice.
            m1 = Avx512F.Max(m1, Vector512.LoadUnsafe(ref nr, (nuint)(n - 16)));
            nextMax = HorizontalMax(Avx512F.Max(m0, m1));
        }

        for (; i < n; i += 16)
        {
            var rem = Math.Min(16, n - i);
            var e = ExpBelowInfinity(Load(x, i, rem) - vs);
            if (rem < 16)
            {
                e = Vector512.ConditionalSelect(Mask(rem), e, Vector512<float>.Zero);
            }

            if (store)
            {
                Store(e, dst, i, rem);
            }

            acc0 += e;
        }

        return Vector512.Sum(acc0 + acc1);
    }

    /// <summary>
    /// The largest element of a non-empty span, for a shift that only has to be an element: where there are NaNs the
    /// result may be any element or NaN, and the sign of a zero maximum is unspecified.
    /// </summary>
    public static float MaxIgnoringNaN(ReadOnlySpan<float> x)
    {
        var n = x.Length;
        if (n < 16)
        {
            return TensorPrimitives.Max(x);
        }

        ref var xr = ref MemoryMarshal.GetReference(x);
        var m0 = Vector512.LoadUnsafe(ref xr);
        var m1 = m0;
        var m2 = m0;
        var m3 = m0;
        var i = 16;
        for (; i <= n - 64; i += 64)
        {
            m0 = Avx512F.Max(m0, Vector512.LoadUnsafe(ref xr, (nuint)i));
            m1 = Avx512F.Max(m1, Vector512.LoadUnsafe(ref xr, (nuint)(i + 16)));
            m2 = Avx512F.Max(m2, Vector512.LoadUnsafe(ref xr, (nuint)(i + 32)));
            m3 = Avx512F.Max(m3, Vector512.LoadUnsafe(ref xr, (nuint)(i + 48)));
        }

        for (; i <= n - 16; i += 16)
        {
            m0 = Avx512F.Max(m0, Vector512.LoadUnsafe(ref xr, (nuint)i));
        }

        if (i < n)
        {
            // The last 16 elements again: the maximum does not mind seeing some twice.
            m1 = Avx512F.Max(m1, Vector512.LoadUnsafe(ref xr, (nuint)(n - 16)));
        }

        return HorizontalMax(Avx512F.Max(Avx512F.Max(m0, m1), Avx512F.Max(m2, m3)));
    }

    private static float HorizontalMax(Vector512<float> m)
    {
        var h = Avx.Max(m.GetLower(), m.GetUpper());
        var q = Sse.Max(h.GetLower(), h.GetUpper());
        q = Sse.Max(q, Sse.Shuffle(q, q, 0b_01_00_11_10));
        q = Sse.Max(q, Sse.Shuffle(q, q, 0b_10_11_00_01));
        return q.ToScalar();
    }

    /// <summary>y = exp(x).</summary>
    public static void Exp(ReadOnlySpan<float> x, Span<float> y)
    {
        var n = x.Length;
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i <= n - 16; i += 16)
        {
            Exp(Vector512.LoadUnsafe(ref xr, (nuint)i)).StoreUnsafe(ref yr, (nuint)i);
        }

        if (i < n)
        {
            Store(Exp(Load(x, i, n - i)), y, i, n - i);
        }
    }

    /// <summary>dst = g − exp(y) · s (the log-softmax backward of one row).</summary>
    public static void SubtractScaledExp(ReadOnlySpan<float> g, ReadOnlySpan<float> y, float s, Span<float> dst)
    {
        var n = g.Length;
        ref var gr = ref MemoryMarshal.GetReference(g);
        ref var yr = ref MemoryMarshal.GetReference(y);
        ref var dr = ref MemoryMarshal.GetReference(dst);
        var vs = Vector512.Create(s);
        var i = 0;
        for (; i <= n - 16; i += 16)
        {
            (Vector512.LoadUnsafe(ref gr, (nuint)i) - (Exp(Vector512.LoadUnsafe(ref yr, (nuint)i)) * vs)).StoreUnsafe(ref dr, (nuint)i);
        }

        if (i < n)
        {
            Store(Load(g, i, n - i) - (Exp(Load(y, i, n - i)) * vs), dst, i, n - i);
        }
    }

    /// <summary>exp of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
        => ExpBelowInfinity(Avx512F.Min(Vector512.Create(89f), x));

    /// <summary>
    /// exp of each lane, for lanes that are not +∞ (a shifted logit x − max). Large finite lanes still overflow to +∞
    /// through the scale; +∞ itself would give NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ExpBelowInfinity(Vector512<float> x)
    {
        // vmaxps/vminps return their second operand when either is NaN, so NaN passes the clamps. Below −104 the result
        // rounds to 0 (so exp(−∞) = 0), above 89 to +∞.
        x = Avx512F.Max(Vector512.Create(-104f), x);
        var n = Avx512F.RoundScale(x * Vector512.Create(1.44269504f), 0);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-0.693145752f), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-1.42860677e-6f), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }

    private static Vector512<float> Mask(int count)
        => Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();

    /// <summary>The <paramref name="count"/> (&lt; 16) elements at <paramref name="start"/>, the other lanes 0.</summary>
    private static Vector512<float> Load(ReadOnlySpan<float> x, int start, int count)
    {
        Span<float> buffer = stackalloc float[16];
        buffer.Clear();
        x.Slice(start, count).CopyTo(buffer);
        return Vector512.Create<float>(buffer);
    }

    private static void Store(Vector512<float> v, Span<float> dst, int start, int count)
    {
        Span<float> buffer = stackalloc float[16];
        v.CopyTo(buffer);
        buffer[..count].CopyTo(dst.Slice(start, count));
    }
}
