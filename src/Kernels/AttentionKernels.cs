using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// Scaled dot-product attention kernels on row-major storage: the scale-and-mask pass of the scores, and a fused forward
/// and backward for q [batch, Lq, d], k [batch, Lk, d], v [batch, Lk, dv] with one batch shape.
/// </summary>
/// <remarks>
/// <para>
/// The fused kernels work on blocks of consecutive query rows of one batch matrix. Each row i has an extent eᵢ: the keys
/// after its last kept one are masked (j &gt; i with causal, and trailing zeros of the mask), so its weights are 0 there;
/// a block's products take only the keys below the largest extent of its rows. With causal and Lq = Lk this skips about
/// half of every product. The scores are formed in the weights' storage; each row is scaled, masked and turned into
/// its softmax over all Lk keys (the masked ones −∞), exactly as the composed form does, so the weights P [batch, Lq, Lk]
/// are complete and can be saved.
/// </para>
/// <para>
/// A row whose keys are all masked gets NaN weights and the full extent (so its NaN reaches dv as in the composed form),
/// and is marked in <see cref="AttentionLayout.Ends"/> so that the backward gives its scores no gradient. A row whose
/// weights are NaN for another reason (a NaN or infinite score) also gets the full extent.
/// </para>
/// <para>
/// The forward splits (batch matrix, row block) items between threads. The backward splits batch matrices, since dk and
/// dv sum over the row blocks of their matrix; with fewer matrices than threads it computes dq by (matrix, row block)
/// and then dk and dv by (matrix, block of keys), forming the tiles of dP a second time. Every product runs on one
/// thread (those of sizes up to 64 without the GEMM's packing), and the backward keeps one block of the scores' gradient
/// in a per-thread buffer: nothing of the scores' size is allocated but P itself.
/// </para>
/// </remarks>
internal static class AttentionKernels
{
    /// <summary>The extent recorded for a row whose keys are all masked.</summary>
    public const int FullyMasked = -1;

    /// <summary>The most elements of one row block of scores (so a block of the scores' gradient stays in the L2 cache).</summary>
    public const int BlockElements = 1 << 14;

    /// <summary>The multiply-adds from which the fused kernels use more than one thread.</summary>
    private const int ParallelWork = 1 << 15;

    /// <summary>The keys of one item of <see cref="KeyBlockJob{T}"/>.</summary>
    private const int KeyBlock = 32;

    /// <summary>The largest size of a product that <see cref="Product{T}"/> does without packing.</summary>
    private const int SmallSize = 64;

    /// <summary>
    /// s ← s·scale, then −∞ at every masked score: where a boolean mask, read at
    /// <c>batchOffsets[b] + i·strideI + j·strideJ</c>, is false (when <paramref name="masked"/>), and where j &gt; i
    /// (when <paramref name="causal"/>).
    /// </summary>
    /// <returns>Whether some row (of at least one score) has every score masked.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool ScaleAndMask<T>(Span<T> s, T scale, int batch, int lq, int lk, bool causal, bool masked, ReadOnlySpan<bool> keep, ReadOnlySpan<int> batchOffsets, int strideI, int strideJ)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(s, scale, s);
        if (!causal && !masked)
        {
            return false;
        }

        var fully = false;
        for (var b = 0; b < batch; b++)
        {
            for (var i = 0; i < lq; i++)
            {
                var row = s.Slice(((b * lq) + i) * lk, lk);
                var end = causal ? Math.Min(i + 1, lk) : lk;
                row[end..].Fill(T.NegativeInfinity);
                var kept = end;
                if (masked)
                {
                    var offset = batchOffsets[b] + (i * strideI);
                    for (var j = 0; j < end; j++)
                    {
                        if (!keep[offset + (j * strideJ)])
                        {
                            row[j] = T.NegativeInfinity;
                            kept--;
                        }
                    }
                }

                fully |= kept == 0 && lk > 0;
            }
        }

        return fully;
    }

    /// <summary>
    /// P = softmax(mask(q·kᵀ·scale)) and y = P·v for every batch matrix, filling <see cref="AttentionLayout.Ends"/>.
    /// q, k and v start at their offsets; p [batch, Lq, Lk] and y [batch, Lq, dv] at 0, and every element of both is written.
    /// </summary>
    /// <returns>Whether some row has every key masked.</returns>
    public static bool Forward<T>(AttentionLayout layout, T scale, T[] q, int qOffset, T[] k, int kOffset, T[] v, int vOffset, T[] p, T[] y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var items = layout.Batch * layout.Blocks;
        var chunks = Workers.Chunks(layout.Work, ParallelWork);
        Workers.For(items, chunks, new ForwardJob<T>(layout, scale, q, qOffset, k, kOffset, v, vOffset, p, y));
        return Array.IndexOf(layout.Ends, FullyMasked) >= 0;
    }

    /// <summary>
    /// The gradients of the fused forward, from its saved P and the output gradient g [batch, Lq, dv]: dv = Pᵀ·g,
    /// dS = P ⊙ (dP − Σ dP⊙P)·scale with dP = g·vᵀ (0 on a fully masked row), dq = dS·k, dk = dSᵀ·q. Each gradient
    /// that is not null is written whole (from offset 0).
    /// </summary>
    public static void Backward<T>(AttentionLayout layout, T scale, T[] q, int qOffset, T[] k, int kOffset, T[] v, int vOffset, T[] p, int pOffset, T[] g, int gOffset, T[]? dq, T[]? dk, T[]? dv)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var chunks = Workers.Chunks(2 * layout.Work, ParallelWork);
        if (layout.Batch >= chunks)
        {
            Workers.For(layout.Batch, chunks, new BackwardJob<T>(layout, scale, q, qOffset, k, kOffset, v, vOffset, p, pOffset, g, gOffset, dq, dk, dv));
            return;
        }

        // Fewer matrices than threads: dq by blocks of query rows (keeping each row's Σ dP⊙P), then dk and dv by blocks
        // of keys, which form their tiles of dP again: one product more, but no two threads add into one gradient.
        var dots = dk is null ? null : new T[layout.Batch * layout.Lq];
        if (dq is not null || dk is not null)
        {
            Workers.For(layout.Batch * layout.Blocks, chunks, new QueryBlockJob<T>(layout, scale, k, kOffset, v, vOffset, p, pOffset, g, gOffset, dq, dots));
        }

        if (dk is not null || dv is not null)
        {
            var keyBlocks = (layout.Lk + KeyBlock - 1) / KeyBlock;
            Workers.For(layout.Batch * keyBlocks, chunks, new KeyBlockJob<T>(layout, scale, q, qOffset, v, vOffset, p, pOffset, g, gOffset, dk, dv, dots));
        }
    }

    /// <summary>
    /// The number of keys the products of a block take: the largest extent of its <paramref name="rows"/> rows from
    /// <paramref name="row0"/> (a batch-major row index), a fully masked row counting as all <paramref name="lk"/> keys.
    /// </summary>
    private static int BlockExtent(int[] ends, int row0, int rows, int lk)
    {
        var extent = 0;
        for (var i = row0; i < row0 + rows; i++)
        {
            var e = ends[i] == FullyMasked ? lk : ends[i];
            extent = Math.Max(extent, e);
        }

        return extent;
    }

    /// <summary>
    /// One row of P in place, from its scores for the keys below <paramref name="end"/> (the rest is not read):
    /// s·scale for those keys, −∞ after them and at the keys the mask drops (<see cref="ScaleAndMaskRow{T}"/>), then the
    /// softmax of the whole row as the softmax operator computes a row (so the values are those of the composed form).
    /// </summary>
    /// <returns>False when the weights are NaN (a NaN or infinite score): then the whole row is NaN.</returns>
    private static bool WeightsRow<T>(AttentionLayout layout, int b, int i, Span<T> row, T scale, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var masked = layout.HasMask;
        if (typeof(T) == typeof(float) && FastExp.IsSupported)
        {
            var r = MemoryMarshal.Cast<T, float>(row);
            var factor = float.CreateTruncating(scale);
            if (masked)
            {
                TensorPrimitives.Multiply(r[..end], factor, r[..end]);
                layout.MaskRow(b, i, r[..end]);
                factor = 1f;
            }

            return float.IsFinite(1f / SoftmaxRowSingle(r, factor, end));
        }

        ScaleAndMaskRow(layout, b, i, row, scale, end);
        var max = TensorPrimitives.Max<T>(row);
        TensorPrimitives.Subtract(row, max, row);
        ExpKernel.Exp<T>(row, row);
        var sum = TensorPrimitives.Sum<T>(row);
        TensorPrimitives.Multiply(row, T.One / sum, row);
        return T.IsFinite(T.One / sum);
    }

    /// <summary>
    /// The scores of row i of batch matrix b made ready for the softmax: s·scale for the keys below
    /// <paramref name="end"/>, −∞ at the keys the mask drops and from <paramref name="end"/> on.
    /// </summary>
    private static void ScaleAndMaskRow<T>(AttentionLayout layout, int b, int i, Span<T> row, T scale, int end)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        TensorPrimitives.Multiply(row[..end], scale, row[..end]);
        layout.MaskRow(b, i, row[..end]);
        row[end..].Fill(T.NegativeInfinity);
    }

    /// <summary>
    /// The float32 softmax of a row on AVX-512 whose elements are x·<paramref name="scale"/> below <paramref name="end"/>
    /// and −∞ from it (what is stored there is not read): the row's maximum as <see cref="FastExp.MaxIgnoringNaN"/>
    /// takes it, the exponentials and their sum in the order of
    /// <see cref="FastExp.ExpShifted(ReadOnlySpan{float}, float, Span{float}, bool)"/> (two accumulators over 32-element
    /// steps, the rest in the first; the zeros after <paramref name="end"/> are stored, not computed), then the product by
    /// the reciprocal of the sum (of the whole row when the sum is not finite, so that the row is NaN).
    /// </summary>
    /// <returns>The sum of the exponentials.</returns>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float SoftmaxRowSingle(Span<float> row, float scale, int end)
    {
        var n = row.Length;
        ref var r = ref MemoryMarshal.GetReference(row);
        var factor = Vector512.Create(scale);
        var minusInfinity = Vector512.Create(float.NegativeInfinity);
        var last = Vector512.Create(end);
        var max = minusInfinity;
        var i = 0;
        for (; i <= n - 16 && i < end; i += 16)
        {
            var kept = Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(i), last).AsSingle();
            var x = Vector512.ConditionalSelect(kept, Vector512.LoadUnsafe(ref r, (nuint)i) * factor, minusInfinity);
            x.StoreUnsafe(ref r, (nuint)i);
            max = Avx512F.Max(max, x);
        }

        Span<float> buffer = stackalloc float[16];
        if (i < n && i < end)
        {
            // The last, partial vector (i + 16 > n): through a buffer.
            var count = n - i;
            buffer.Clear();
            row[i..].CopyTo(buffer);
            var kept = Vector512.LessThan(Vector512<int>.Indices + Vector512.Create(i), last).AsSingle();
            var x = Vector512.ConditionalSelect(kept, Vector512.Create<float>(buffer) * factor, minusInfinity);
            x.CopyTo(buffer);
            buffer[..count].CopyTo(row[i..]);
            max = Avx512F.Max(max, x);
        }

        var shift = Vector512.Create(HorizontalMax(max));
        var acc0 = Vector512<float>.Zero;
        var acc1 = Vector512<float>.Zero;
        for (i = 0; i <= n - 32; i += 32)
        {
            if (i >= end)
            {
                Vector512<float>.Zero.StoreUnsafe(ref r, (nuint)i);
                Vector512<float>.Zero.StoreUnsafe(ref r, (nuint)(i + 16));
                continue;
            }

            var e0 = FastExp.ExpBelowInfinity(Vector512.LoadUnsafe(ref r, (nuint)i) - shift);
            var e1 = i + 16 >= end ? Vector512<float>.Zero : FastExp.ExpBelowInfinity(Vector512.LoadUnsafe(ref r, (nuint)(i + 16)) - shift);
            e0.StoreUnsafe(ref r, (nuint)i);
            e1.StoreUnsafe(ref r, (nuint)(i + 16));
            acc0 += e0;
            acc1 += e1;
        }

        for (; i <= n - 16; i += 16)
        {
            var e = i >= end ? Vector512<float>.Zero : FastExp.ExpBelowInfinity(Vector512.LoadUnsafe(ref r, (nuint)i) - shift);
            e.StoreUnsafe(ref r, (nuint)i);
            acc0 += e;
        }

        if (i < n)
        {
            var count = n - i;
            buffer.Clear();
            row[i..].CopyTo(buffer);
            var lanes = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle();
            var e = i >= end ? Vector512<float>.Zero : Vector512.ConditionalSelect(lanes, FastExp.ExpBelowInfinity(Vector512.Create<float>(buffer) - shift), Vector512<float>.Zero);
            e.CopyTo(buffer);
            buffer[..count].CopyTo(row[i..]);
            acc0 += e;
        }

        var sum = Vector512.Sum(acc0 + acc1);
        var reciprocal = 1f / sum;
        var scaled = float.IsFinite(reciprocal) ? Math.Min(n, end) : n;
        var vr = Vector512.Create(reciprocal);
        for (i = 0; i <= scaled - 16; i += 16)
        {
            (Vector512.LoadUnsafe(ref r, (nuint)i) * vr).StoreUnsafe(ref r, (nuint)i);
        }

        if (i < scaled)
        {
            TensorPrimitives.Multiply(row[i..scaled], reciprocal, row[i..scaled]);
        }

        return sum;
    }

    /// <summary>
    /// The float32 weights of a block of rows (of at least 16 keys) on vectors narrower than 512 bits: each row scaled,
    /// masked and −∞ past its end as <see cref="WeightsRow"/> makes it, then the softmax operator's own kernel over the
    /// whole block in one call (<see cref="FastExp.SoftmaxRows"/>), so the weights have the bits of the composed form's.
    /// The exponentials past a row's end are computed (they are 0). Fully masked rows are NaN; a row whose weights come
    /// out NaN (a NaN or infinite score; then the whole row is NaN) gets every key (its end becomes <paramref name="lk"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightsBlockNarrow(AttentionLayout layout, int b, int r0, Span<float> block, Span<int> ends, float scale, int lk)
    {
        for (var r = 0; r < ends.Length; r++)
        {
            var row = block.Slice(r * lk, lk);
            var e = ends[r];
            if (e == FullyMasked)
            {
                row.Fill(float.NaN);
                continue;
            }

            ScaleAndMaskRow(layout, b, r0 + r, row, scale, e);
        }

        FastExp.SoftmaxRows(block, block, lk, log: false);
        for (var r = 0; r < ends.Length; r++)
        {
            if (ends[r] != FullyMasked && float.IsNaN(block[r * lk]))
            {
                ends[r] = lk;
            }
        }
    }

    /// <summary>The largest lane, as <see cref="FastExp"/> reduces its maximum.</summary>
    private static float HorizontalMax(Vector512<float> m)
    {
        var h = Avx.Max(m.GetLower(), m.GetUpper());
        var q = Sse.Max(h.GetLower(), h.GetUpper());
        q = Sse.Max(q, Sse.Shuffle(q, q, 0b_01_00_11_10));
        q = Sse.Max(q, Sse.Shuffle(q, q, 0b_10_11_00_01));
        return q.ToScalar();
    }

    /// <summary>
    /// Σ dP⊙P over a row: in float32 the softmax backward's dot product (<see cref="FastExp.Dot"/>, four accumulators on
    /// every vector width), in float64 <see cref="TensorPrimitives.Dot{T}(ReadOnlySpan{T}, ReadOnlySpan{T})"/>.
    /// </summary>
    private static T RowDot<T>(ReadOnlySpan<T> dp, ReadOnlySpan<T> p)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var dot = FastExp.Dot(MemoryMarshal.Cast<T, float>(dp), MemoryMarshal.Cast<T, float>(p));
            return Unsafe.As<float, T>(ref dot);
        }

        return TensorPrimitives.Dot(dp, p);
    }

    /// <summary>
    /// For each row of a block of dP (rows of <paramref name="extent"/> keys; P's rows are <paramref name="lk"/> apart):
    /// Σ dP⊙P into <paramref name="dots"/> when it is not empty, and with <paramref name="apply"/> dS = P ⊙ (dP − Σ dP⊙P)·scale
    /// in place. A fully masked row (its end is <see cref="FullyMasked"/>) is cleared and gets no dot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresGradientRows<T>(Span<T> dsb, ReadOnlySpan<T> pb, ReadOnlySpan<int> ends, int extent, int lk, T scale, Span<T> dots, bool apply)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var r = 0; r < ends.Length; r++)
        {
            var row = dsb.Slice(r * extent, extent);
            if (ends[r] == FullyMasked)
            {
                row.Clear();
                continue;
            }

            var pr = pb.Slice(r * lk, extent);
            var dot = RowDot<T>(row, pr);
            if (!dots.IsEmpty)
            {
                dots[r] = dot;
            }

            if (apply)
            {
                ScoresGradientRow(row, pr, dot, scale);
            }
        }
    }

    /// <summary>A row (or part of a row) of the scores' gradient in place: dP ← (dP − dot) ⊙ P · scale, dot being the row's Σ dP⊙P.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresGradientRow<T>(Span<T> dp, ReadOnlySpan<T> p, T dot, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var n = dp.Length;
        _ = p[..n];
        ref var rd = ref MemoryMarshal.GetReference(dp);
        ref var rp = ref MemoryMarshal.GetReference(p);

        // Every operation rounds on its own (no fused multiply-add), so every width gives the same bits.
        var i = Gemm.VectorBits<T>() switch
        {
            512 => ScoresGradientVectors<T, Vector512<T>, Small512<T>>(ref rd, ref rp, n, dot, scale),
            256 => ScoresGradientVectors<T, Vector256<T>, Small256<T>>(ref rd, ref rp, n, dot, scale),
            128 => ScoresGradientVectors<T, Vector128<T>, Small128<T>>(ref rd, ref rp, n, dot, scale),
            _ => 0,
        };
        for (; i < n; i++)
        {
            dp[i] = (dp[i] - dot) * p[i] * scale;
        }
    }

    /// <summary>The whole vectors of <see cref="ScoresGradientRow{T}"/>; returns the elements done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int ScoresGradientVectors<T, TV, TO>(ref T rd, ref T rp, int n, T dot, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TV : struct
        where TO : ISmallVector<T, TV>
    {
        var w = TO.Count;
        var minusDot = TO.Broadcast(-dot);
        var factor = TO.Broadcast(scale);
        var i = 0;
        for (; i <= n - w; i += w)
        {
            ref var d = ref Unsafe.Add(ref rd, i);
            TO.Store(TO.Multiply(TO.Multiply(TO.Add(TO.Load(ref d), minusDot), TO.Load(ref Unsafe.Add(ref rp, i))), factor), ref d);
        }

        return i;
    }

    /// <summary>Forward items [start, end): item = batch matrix · blocks + row block.</summary>
    private readonly struct ForwardJob<T>(AttentionLayout layout, T scale, T[] q, int qOffset, T[] k, int kOffset, T[] v, int vOffset, T[] p, T[] y) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            var (lq, lk, d, dv) = (layout.Lq, layout.Lk, layout.D, layout.Dv);
            var ends = layout.Ends;
            for (var item = start; item < end; item++)
            {
                var b = item / layout.Blocks;
                var r0 = (item % layout.Blocks) * layout.BlockRows;
                var rows = Math.Min(layout.BlockRows, lq - r0);
                var first = (b * lq) + r0;
                layout.RowEnds(b, r0, rows, ends.AsSpan(first, rows));

                // The scores of the block's rows for the keys it reaches, straight into P.
                var extent = BlockExtent(ends, first, rows, lk);
                var block = p.AsSpan(first * lk, rows * lk);
                Product<T>(false, true, rows, extent, d, q.AsSpan(qOffset + (first * d), rows * d), d, k.AsSpan(kOffset + (b * lk * d), extent * d), d, block, lk, false);

                if (typeof(T) == typeof(float) && !FastExp.IsSupported && lk >= 16)
                {
                    WeightsBlockNarrow(layout, b, r0, MemoryMarshal.Cast<T, float>(block), ends.AsSpan(first, rows), float.CreateTruncating(scale), lk);
                }
                else
                {
                    for (var r = 0; r < rows; r++)
                    {
                        var row = block.Slice(r * lk, lk);
                        var e = ends[first + r];
                        if (e == FullyMasked)
                        {
                            row.Fill(T.NaN);
                            continue;
                        }

                        if (!WeightsRow(layout, b, r0 + r, row, scale, e))
                        {
                            // NaN weights over the whole row: every key takes part, as in the composed form.
                            ends[first + r] = lk;
                        }
                    }
                }

                extent = BlockExtent(ends, first, rows, lk);
                Product<T>(false, false, rows, dv, extent, block, lk, v.AsSpan(vOffset + (b * lk * dv), extent * dv), dv, y.AsSpan(first * dv, rows * dv), dv, false);
            }
        }
    }

    /// <summary>Backward over batch matrices [start, end), block by block of query rows.</summary>
    private readonly struct BackwardJob<T>(AttentionLayout layout, T scale, T[] q, int qOffset, T[] k, int kOffset, T[] v, int vOffset, T[] p, int pOffset, T[] g, int gOffset, T[]? dq, T[]? dk, T[]? dv) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            var (lq, lk, d, dvSize) = (layout.Lq, layout.Lk, layout.D, layout.Dv);
            var ends = layout.Ends;
            var scores = dq is not null || dk is not null;
            var ds = scores ? BlockBuffer<T>.Get(layout.BlockRows * lk) : default;
            for (var b = start; b < end; b++)
            {
                var keys = k.AsSpan(kOffset + (b * lk * d), lk * d);
                var values = v.AsSpan(vOffset + (b * lk * dvSize), lk * dvSize);
                var dkb = dk is null ? default : dk.AsSpan(b * lk * d, lk * d);
                var dvb = dv is null ? default : dv.AsSpan(b * lk * dvSize, lk * dvSize);
                dkb.Clear();
                dvb.Clear();
                for (var r0 = 0; r0 < lq; r0 += layout.BlockRows)
                {
                    var rows = Math.Min(layout.BlockRows, lq - r0);
                    var first = (b * lq) + r0;
                    var extent = BlockExtent(ends, first, rows, lk);
                    var pb = p.AsSpan(pOffset + (first * lk), rows * lk);
                    var gb = g.AsSpan(gOffset + (first * dvSize), rows * dvSize);
                    if (dv is not null)
                    {
                        Product<T>(true, false, extent, dvSize, rows, pb, lk, gb, dvSize, dvb, dvSize, true);
                    }

                    if (!scores)
                    {
                        continue;
                    }

                    // dP = g·vᵀ for the keys the block reaches, then dS in place: P ⊙ (dP − Σ dP⊙P) · scale.
                    var dsb = ds[..(rows * extent)];
                    Product<T>(false, true, rows, extent, dvSize, gb, dvSize, values[..(extent * dvSize)], dvSize, dsb, extent, false);
                    ScoresGradientRows(dsb, pb, ends.AsSpan(first, rows), extent, lk, scale, default, apply: true);

                    if (dq is not null)
                    {
                        Product<T>(false, false, rows, d, extent, dsb, extent, keys[..(extent * d)], d, dq.AsSpan(first * d, rows * d), d, false);
                    }

                    if (dk is not null)
                    {
                        Product<T>(true, false, extent, d, rows, dsb, extent, q.AsSpan(qOffset + (first * d), rows * d), d, dkb, d, true);
                    }
                }
            }
        }
    }

    /// <summary>
    /// C = op(A)·op(B), or C += op(A)·op(B) when <paramref name="accumulate"/>, on the calling thread, with the arguments of
    /// <see cref="Gemm.Serial{T}"/>. Small products (every size at most <see cref="SmallSize"/>) skip the packing of the
    /// blocked GEMM, which costs more than their arithmetic: see <see cref="SmallProduct{T, TV, TO}"/>.
    /// </summary>
    private static void Product<T>(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var bits = Gemm.VectorBits<T>();
        if (m > SmallSize || n > SmallSize || k > SmallSize || bits == 0 || Gemm.ForcedVectorBits >= 0)
        {
            Gemm.Serial(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }

        if (transB)
        {
            // op(B) = the stored n×k B transposed: copy it to k×n rows first.
            var bt = TransposeBuffer<T>.Get(k * n);
            Transpose(b, ldb, n, k, bt);
            b = bt;
            ldb = n;
        }

        // The width of the GEMM's own micro-kernel, so that the products have its bits.
        switch (bits)
        {
            case 512:
                SmallProduct<T, Vector512<T>, Small512<T>>(transA, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
                break;
            case 256:
                SmallProduct<T, Vector256<T>, Small256<T>>(transA, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
                break;
            default:
                SmallProduct<T, Vector128<T>, Small128<T>>(transA, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
                break;
        }
    }

    /// <summary>
    /// dst[p·n + j] = src[j·lds + p] for j &lt; n, p &lt; k: whole square blocks of one vector each way in registers, at the
    /// widest width with shuffles (AVX-512, AVX, SSE2 or AdvSIMD), then the edges element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose<T>(ReadOnlySpan<T> src, int lds, int n, int k, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        ref var rs = ref MemoryMarshal.GetReference(src);
        ref var rd = ref MemoryMarshal.GetReference(dst);
        var tile = Avx512F.IsSupported ? Vector512<T>.Count : Avx.IsSupported ? Vector256<T>.Count : Transpose128.IsSupported ? Vector128<T>.Count : 0;
        var nb = tile == 0 ? 0 : n / tile * tile;
        var kb = tile == 0 ? 0 : k / tile * tile;
        for (var j = 0; j < nb; j += tile)
        {
            for (var p = 0; p < kb; p += tile)
            {
                ref var s = ref Unsafe.Add(ref rs, ((nint)j * lds) + p);
                ref var d = ref Unsafe.Add(ref rd, ((nint)p * n) + j);
                if (Avx512F.IsSupported)
                {
                    Transpose512.Square(ref s, lds, ref d, n);
                }
                else if (Avx.IsSupported)
                {
                    Transpose256.Square(ref s, lds, ref d, n);
                }
                else
                {
                    Transpose128.Square(ref s, lds, ref d, n);
                }
            }
        }

        // What the blocks leave: the columns p ≥ kb of the first nb rows, then the rows j ≥ nb.
        for (var j = 0; j < n; j++)
        {
            ref var row = ref Unsafe.Add(ref rs, (nint)j * lds);
            for (var p = j < nb ? kb : 0; p < k; p++)
            {
                Unsafe.Add(ref rd, ((nint)p * n) + j) = Unsafe.Add(ref row, p);
            }
        }
    }

    /// <summary>
    /// C (+)= op(A)·B with B stored k×n: each element is an FMA chain over p from zero, added to C when accumulating,
    /// as in the GEMM's micro-kernel of the same width. Four rows of C by two vectors of columns at a time, then one row or one vector,
    /// then single columns.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SmallProduct<T, TV, TO>(bool transA, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TV : struct
        where TO : ISmallVector<T, TV>
    {
        var w = TO.Count;
        nint rowStep = transA ? 1 : lda;
        nint pStep = transA ? lda : 1;
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        ref var rc = ref MemoryMarshal.GetReference(c);
        var i = 0;
        for (; i + 4 <= m; i += 4)
        {
            ref var a0 = ref Unsafe.Add(ref ra, i * rowStep);
            ref var a1 = ref Unsafe.Add(ref a0, rowStep);
            ref var a2 = ref Unsafe.Add(ref a1, rowStep);
            ref var a3 = ref Unsafe.Add(ref a2, rowStep);
            ref var c0 = ref Unsafe.Add(ref rc, (nint)i * ldc);
            ref var c1 = ref Unsafe.Add(ref c0, ldc);
            ref var c2 = ref Unsafe.Add(ref c1, ldc);
            ref var c3 = ref Unsafe.Add(ref c2, ldc);
            var j = 0;
            for (; j + (2 * w) <= n; j += 2 * w)
            {
                TV s00 = default, s01 = default, s10 = default, s11 = default, s20 = default, s21 = default, s30 = default, s31 = default;
                for (nint p = 0; p < k; p++)
                {
                    ref var bp = ref Unsafe.Add(ref rb, (p * ldb) + j);
                    var b0 = TO.Load(ref bp);
                    var b1 = TO.Load(ref Unsafe.Add(ref bp, w));
                    var x = TO.Broadcast(Unsafe.Add(ref a0, p * pStep));
                    s00 = TO.Fma(x, b0, s00);
                    s01 = TO.Fma(x, b1, s01);
                    x = TO.Broadcast(Unsafe.Add(ref a1, p * pStep));
                    s10 = TO.Fma(x, b0, s10);
                    s11 = TO.Fma(x, b1, s11);
                    x = TO.Broadcast(Unsafe.Add(ref a2, p * pStep));
                    s20 = TO.Fma(x, b0, s20);
                    s21 = TO.Fma(x, b1, s21);
                    x = TO.Broadcast(Unsafe.Add(ref a3, p * pStep));
                    s30 = TO.Fma(x, b0, s30);
                    s31 = TO.Fma(x, b1, s31);
                }

                TO.Put(ref Unsafe.Add(ref c0, j), s00, accumulate);
                TO.Put(ref Unsafe.Add(ref c0, j + w), s01, accumulate);
                TO.Put(ref Unsafe.Add(ref c1, j), s10, accumulate);
                TO.Put(ref Unsafe.Add(ref c1, j + w), s11, accumulate);
                TO.Put(ref Unsafe.Add(ref c2, j), s20, accumulate);
                TO.Put(ref Unsafe.Add(ref c2, j + w), s21, accumulate);
                TO.Put(ref Unsafe.Add(ref c3, j), s30, accumulate);
                TO.Put(ref Unsafe.Add(ref c3, j + w), s31, accumulate);
            }

            for (; j + w <= n; j += w)
            {
                TV s0 = default, s1 = default, s2 = default, s3 = default;
                for (nint p = 0; p < k; p++)
                {
                    var b0 = TO.Load(ref Unsafe.Add(ref rb, (p * ldb) + j));
                    s0 = TO.Fma(TO.Broadcast(Unsafe.Add(ref a0, p * pStep)), b0, s0);
                    s1 = TO.Fma(TO.Broadcast(Unsafe.Add(ref a1, p * pStep)), b0, s1);
                    s2 = TO.Fma(TO.Broadcast(Unsafe.Add(ref a2, p * pStep)), b0, s2);
                    s3 = TO.Fma(TO.Broadcast(Unsafe.Add(ref a3, p * pStep)), b0, s3);
                }

                TO.Put(ref Unsafe.Add(ref c0, j), s0, accumulate);
                TO.Put(ref Unsafe.Add(ref c1, j), s1, accumulate);
                TO.Put(ref Unsafe.Add(ref c2, j), s2, accumulate);
                TO.Put(ref Unsafe.Add(ref c3, j), s3, accumulate);
            }

            for (; j < n; j++)
            {
                ColumnTail(ref a0, pStep, ref Unsafe.Add(ref rb, j), ldb, k, ref Unsafe.Add(ref c0, j), accumulate);
                ColumnTail(ref a1, pStep, ref Unsafe.Add(ref rb, j), ldb, k, ref Unsafe.Add(ref c1, j), accumulate);
                ColumnTail(ref a2, pStep, ref Unsafe.Add(ref rb, j), ldb, k, ref Unsafe.Add(ref c2, j), accumulate);
                ColumnTail(ref a3, pStep, ref Unsafe.Add(ref rb, j), ldb, k, ref Unsafe.Add(ref c3, j), accumulate);
            }
        }

        for (; i < m; i++)
        {
            ref var a0 = ref Unsafe.Add(ref ra, i * rowStep);
            ref var c0 = ref Unsafe.Add(ref rc, (nint)i * ldc);
            var j = 0;
            for (; j + w <= n; j += w)
            {
                TV s0 = default;
                for (nint p = 0; p < k; p++)
                {
                    s0 = TO.Fma(TO.Broadcast(Unsafe.Add(ref a0, p * pStep)), TO.Load(ref Unsafe.Add(ref rb, (p * ldb) + j)), s0);
                }

                TO.Put(ref Unsafe.Add(ref c0, j), s0, accumulate);
            }

            for (; j < n; j++)
            {
                ColumnTail(ref a0, pStep, ref Unsafe.Add(ref rb, j), ldb, k, ref Unsafe.Add(ref c0, j), accumulate);
            }
        }
    }

    /// <summary>
    /// One element: c (+)= Σ_p a[p·pStep]·b[p·ldb], a chain of multiply-adds from zero, fused wherever the CPU has FMA
    /// (as the GEMM's vector kernels take them, so an edge column gets the bits of a GEMM edge tile).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ColumnTail<T>(ref T a, nint pStep, ref T b, int ldb, int k, ref T c, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var sum = T.Zero;
        for (nint p = 0; p < k; p++)
        {
            sum = VectorMath.MultiplyAdd(Unsafe.Add(ref a, p * pStep), Unsafe.Add(ref b, p * ldb), sum);
        }

        c = accumulate ? c + sum : sum;
    }

    /// <summary>The vector operations of <see cref="SmallProduct{T, TV, TO}"/>, one implementation per width.</summary>
    private interface ISmallVector<T, TV>
        where T : unmanaged
        where TV : struct
    {
        /// <summary>The lanes of a vector.</summary>
        static abstract int Count { get; }

        /// <summary>The vector at <paramref name="source"/>.</summary>
        static abstract TV Load(ref T source);

        /// <summary>Every lane <paramref name="value"/>.</summary>
        static abstract TV Broadcast(T value);

        /// <summary>x·y + z with the GEMM micro-kernel's multiply-add of this width (<see cref="GemmMath"/>).</summary>
        static abstract TV Fma(TV x, TV y, TV z);

        /// <summary>Stores <paramref name="sum"/> at <paramref name="c"/>, or adds it to what is there.</summary>
        static abstract void Put(ref T c, TV sum, bool accumulate);

        /// <summary>Stores <paramref name="value"/> at <paramref name="destination"/>.</summary>
        static abstract void Store(TV value, ref T destination);

        /// <summary>x + y, lane by lane.</summary>
        static abstract TV Add(TV x, TV y);

        /// <summary>x · y, lane by lane, rounded (not fused with anything).</summary>
        static abstract TV Multiply(TV x, TV y);
    }

    private readonly struct Small512<T> : ISmallVector<T, Vector512<T>>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static int Count => Vector512<T>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<T> Load(ref T source) => Vector512.LoadUnsafe(ref source);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<T> Broadcast(T value) => Vector512.Create(value);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> z) => GemmMath.Fma(x, y, z);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Put(ref T c, Vector512<T> sum, bool accumulate)
            => (accumulate ? sum + Vector512.LoadUnsafe(ref c) : sum).StoreUnsafe(ref c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector512<T> value, ref T destination) => value.StoreUnsafe(ref destination);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<T> Add(Vector512<T> x, Vector512<T> y) => x + y;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<T> Multiply(Vector512<T> x, Vector512<T> y) => x * y;
    }

    private readonly struct Small256<T> : ISmallVector<T, Vector256<T>>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static int Count => Vector256<T>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<T> Load(ref T source) => Vector256.LoadUnsafe(ref source);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<T> Broadcast(T value) => Vector256.Create(value);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> z) => GemmMath.Fma(x, y, z);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Put(ref T c, Vector256<T> sum, bool accumulate)
            => (accumulate ? sum + Vector256.LoadUnsafe(ref c) : sum).StoreUnsafe(ref c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector256<T> value, ref T destination) => value.StoreUnsafe(ref destination);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<T> Add(Vector256<T> x, Vector256<T> y) => x + y;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<T> Multiply(Vector256<T> x, Vector256<T> y) => x * y;
    }

    private readonly struct Small128<T> : ISmallVector<T, Vector128<T>>
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public static int Count => Vector128<T>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<T> Load(ref T source) => Vector128.LoadUnsafe(ref source);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<T> Broadcast(T value) => Vector128.Create(value);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<T> Fma(Vector128<T> x, Vector128<T> y, Vector128<T> z) => GemmMath.Fma(x, y, z);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Put(ref T c, Vector128<T> sum, bool accumulate)
            => (accumulate ? sum + Vector128.LoadUnsafe(ref c) : sum).StoreUnsafe(ref c);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector128<T> value, ref T destination) => value.StoreUnsafe(ref destination);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<T> Add(Vector128<T> x, Vector128<T> y) => x + y;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector128<T> Multiply(Vector128<T> x, Vector128<T> y) => x * y;
    }

    /// <summary>dq by (batch matrix, block of query rows) items, and Σ dP⊙P of every row into <c>dots</c> when it is not null.</summary>
    private readonly struct QueryBlockJob<T>(AttentionLayout layout, T scale, T[] k, int kOffset, T[] v, int vOffset, T[] p, int pOffset, T[] g, int gOffset, T[]? dq, T[]? dots) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            var (lq, lk, d, dvSize) = (layout.Lq, layout.Lk, layout.D, layout.Dv);
            var ends = layout.Ends;
            var ds = BlockBuffer<T>.Get(layout.BlockRows * lk);
            for (var item = start; item < end; item++)
            {
                var b = item / layout.Blocks;
                var r0 = (item % layout.Blocks) * layout.BlockRows;
                var rows = Math.Min(layout.BlockRows, lq - r0);
                var first = (b * lq) + r0;
                var extent = BlockExtent(ends, first, rows, lk);
                var pb = p.AsSpan(pOffset + (first * lk), rows * lk);
                var dsb = ds[..(rows * extent)];
                Product<T>(false, true, rows, extent, dvSize, g.AsSpan(gOffset + (first * dvSize), rows * dvSize), dvSize, v.AsSpan(vOffset + (b * lk * dvSize), extent * dvSize), dvSize, dsb, extent, false);
                ScoresGradientRows(dsb, pb, ends.AsSpan(first, rows), extent, lk, scale, dots is null ? default : dots.AsSpan(first, rows), apply: dq is not null);

                if (dq is not null)
                {
                    Product<T>(false, false, rows, d, extent, dsb, extent, k.AsSpan(kOffset + (b * lk * d), extent * d), d, dq.AsSpan(first * d, rows * d), d, false);
                }
            }
        }
    }

    /// <summary>
    /// dk and dv by (batch matrix, block of <see cref="KeyBlock"/> keys) items: over the blocks of query rows that reach the
    /// keys, dv += Pᵀ·g and dk += dSᵀ·q, with the tile of dS formed from g·vᵀ and the rows' Σ dP⊙P.
    /// </summary>
    private readonly struct KeyBlockJob<T>(AttentionLayout layout, T scale, T[] q, int qOffset, T[] v, int vOffset, T[] p, int pOffset, T[] g, int gOffset, T[]? dk, T[]? dv, T[]? dots) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            var (lq, lk, d, dvSize) = (layout.Lq, layout.Lk, layout.D, layout.Dv);
            var ends = layout.Ends;
            var keyBlocks = (lk + KeyBlock - 1) / KeyBlock;
            var ds = BlockBuffer<T>.Get(layout.BlockRows * KeyBlock);
            for (var item = start; item < end; item++)
            {
                var b = item / keyBlocks;
                var c0 = (item % keyBlocks) * KeyBlock;
                var width = Math.Min(KeyBlock, lk - c0);
                var dkb = dk is null ? default : dk.AsSpan(((b * lk) + c0) * d, width * d);
                var dvb = dv is null ? default : dv.AsSpan(((b * lk) + c0) * dvSize, width * dvSize);
                dkb.Clear();
                dvb.Clear();
                for (var r0 = 0; r0 < lq; r0 += layout.BlockRows)
                {
                    var rows = Math.Min(layout.BlockRows, lq - r0);
                    var first = (b * lq) + r0;
                    var w = Math.Min(width, BlockExtent(ends, first, rows, lk) - c0);
                    if (w <= 0)
                    {
                        continue;
                    }

                    var pt = p.AsSpan(pOffset + (first * lk) + c0, ((rows - 1) * lk) + w);
                    var gb = g.AsSpan(gOffset + (first * dvSize), rows * dvSize);
                    if (dv is not null)
                    {
                        Product<T>(true, false, w, dvSize, rows, pt, lk, gb, dvSize, dvb, dvSize, true);
                    }

                    if (dk is null || dots is null)
                    {
                        continue;
                    }

                    var dst = ds[..(rows * w)];
                    Product<T>(false, true, rows, w, dvSize, gb, dvSize, v.AsSpan(vOffset + (((b * lk) + c0) * dvSize), w * dvSize), dvSize, dst, w, false);
                    for (var r = 0; r < rows; r++)
                    {
                        var row = dst.Slice(r * w, w);
                        if (ends[first + r] == FullyMasked)
                        {
                            row.Clear();
                            continue;
                        }

                        ScoresGradientRow(row, pt.Slice(r * lk, w), dots[first + r], scale);
                    }

                    Product<T>(true, false, w, d, rows, dst, w, q.AsSpan(qOffset + (first * d), rows * d), d, dkb, d, true);
                }
            }
        }
    }

    /// <summary>A per-thread buffer for one block of the scores' gradient, grown on demand and kept for the next call.</summary>
    private static class BlockBuffer<T>
        where T : unmanaged
    {
        [ThreadStatic]
        private static T[]? t_buffer;

        public static Span<T> Get(int length)
        {
            var buffer = t_buffer;
            if (buffer is null || buffer.Length < length)
            {
                buffer = new T[length];
                t_buffer = buffer;
            }

            return buffer.AsSpan(0, length);
        }
    }

    /// <summary>A per-thread buffer for the transposed operand of a small product.</summary>
    private static class TransposeBuffer<T>
        where T : unmanaged
    {
        [ThreadStatic]
        private static T[]? t_buffer;

        public static Span<T> Get(int length)
        {
            var buffer = t_buffer ??= new T[SmallSize * SmallSize];
            return buffer.AsSpan(0, length);
        }
    }
}

/// <summary>
/// The sizes of one fused attention call, its mask (booleans broadcast to the scores: score (b, i, j) at
/// <c>BatchOffsets[b] + i·StrideI + j·StrideJ</c>) and the causal rule, the row blocks the kernels use, and, once the
/// forward has run, the extent of every query row (see <see cref="AttentionKernels"/>).
/// </summary>
internal sealed class AttentionLayout
{
    private readonly bool[]? _keep;
    private readonly int[] _batchOffsets;
    private readonly int _strideI;
    private readonly int _strideJ;

    /// <summary>Describes a call; every size is at least 1.</summary>
    public AttentionLayout(int batch, int lq, int lk, int d, int dv, bool causal, bool[]? keep, int[] batchOffsets, int strideI, int strideJ)
    {
        (Batch, Lq, Lk, D, Dv, Causal) = (batch, lq, lk, d, dv, causal);
        (_keep, _batchOffsets, _strideI, _strideJ) = (keep, batchOffsets, strideI, strideJ);

        // Causal blocks of 32 rows skip most of the masked triangle; without it a block is as tall as the scores'
        // gradient buffer allows, so a matrix is one block when it fits.
        var rows = Math.Max(8, AttentionKernels.BlockElements / lk / 8 * 8);
        BlockRows = Math.Min(lq, causal ? Math.Min(32, rows) : rows);
        Blocks = (lq + BlockRows - 1) / BlockRows;
        Ends = new int[batch * lq];
    }

    /// <summary>The number of batch matrices.</summary>
    public int Batch { get; }

    /// <summary>The queries of a batch matrix.</summary>
    public int Lq { get; }

    /// <summary>The keys (and values) of a batch matrix.</summary>
    public int Lk { get; }

    /// <summary>The feature size of q and k.</summary>
    public int D { get; }

    /// <summary>The feature size of v and of the result.</summary>
    public int Dv { get; }

    /// <summary>Whether key j is masked for query i when j &gt; i.</summary>
    public bool Causal { get; }

    /// <summary>Whether a mask (besides the causal rule) drops scores.</summary>
    public bool HasMask => _keep is not null;

    /// <summary>The query rows of a block (the last block of a matrix may have fewer).</summary>
    public int BlockRows { get; }

    /// <summary>The row blocks of one batch matrix.</summary>
    public int Blocks { get; }

    /// <summary>
    /// Per query row (batch-major), the number of leading keys its weights may be nonzero for, or
    /// <see cref="AttentionKernels.FullyMasked"/>; written by the forward, read by the backward.
    /// </summary>
    public int[] Ends { get; }

    /// <summary>An upper bound of the multiply-adds of the forward.</summary>
    public long Work => (long)Batch * Lq * Lk * (D + Dv);

    /// <summary>The extents of <paramref name="rows"/> rows from r0 of batch matrix b.</summary>
    public void RowEnds(int b, int r0, int rows, Span<int> ends)
    {
        for (var r = 0; r < rows; r++)
        {
            var i = r0 + r;
            var e = Causal ? Math.Min(i + 1, Lk) : Lk;
            if (_keep is not null)
            {
                var offset = _batchOffsets[b] + (i * _strideI);
                while (e > 0 && !_keep[offset + ((e - 1) * _strideJ)])
                {
                    e--;
                }
            }

            ends[r] = e == 0 ? AttentionKernels.FullyMasked : e;
        }
    }

    /// <summary>−∞ at the masked scores of the leading part of row i of batch matrix b.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void MaskRow<T>(int b, int i, Span<T> row)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (_keep is null)
        {
            return;
        }

        var offset = _batchOffsets[b] + (i * _strideI);
        for (var j = 0; j < row.Length; j++)
        {
            if (!_keep[offset + (j * _strideJ)])
            {
                row[j] = T.NegativeInfinity;
            }
        }
    }
}
