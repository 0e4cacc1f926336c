using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// Matrix multiply on row-major storage, <c>C[m×n] = op(A)·op(B)</c> or <c>C += op(A)·op(B)</c>, for float32 and
/// float64, where <c>op(X)</c> is X or its transpose, read in place (no transposed copy is made).
/// </summary>
/// <remarks>
/// <para>
/// The method is the one of GotoBLAS and BLIS: op(B) is packed in KC×NC blocks and op(A) in MC×KC blocks into
/// contiguous, zero-padded panels (thread-local, 64-byte aligned buffers reused from call to call), and a register-blocked
/// micro-kernel multiplies an MR-row panel of A by an NR-column panel of B with fused multiply-adds, keeping the
/// MR×NR tile of C in registers. The micro-kernel uses 512-bit vectors when the hardware accelerates them (8×32 floats or
/// 8×16 doubles), else 256-bit (6×16 / 6×8), else 128-bit (6×8 / 6×4), else scalars; the packs that transpose (rows of A
/// into MR-row panels, a transposed B into NR-column panels) move whole blocks with shuffles at the kernel's own width. A product
/// with one row or one column (matrix-vector) is done with dot products or scaled row sums instead, and one with a few
/// columns and A in place, on vectors of two or four lanes, with dot products along k (<see cref="NarrowProduct{T, TV, TL}"/>).
/// </para>
/// <para>
/// Operand X with <c>rows × cols</c> elements as stored (for A: m×k, or k×m when transposed) is read at
/// <c>x[r·ldx + c]</c>, so <c>ldx ≥ cols</c> and the span needs <c>(rows − 1)·ldx + cols</c> elements. C must not
/// overlap A or B. The overloads on spans run on the calling thread (arrays bind to them; pass <c>array.AsMemory()</c>
/// for threads); those on <see cref="Memory{T}"/>, which <c>MatMul</c> uses, split large products
/// (m·n·k ≥ <see cref="ParallelThreshold"/>) among up to <see cref="MaxThreads"/> threads, by blocks of columns of C (or of
/// rows when C is taller than wide).
/// </para>
/// </remarks>
public static class Gemm
{
    private static int _maxThreads = Environment.ProcessorCount;
    private static long _parallelThreshold = 1L << 21;

    /// <summary>
    /// The most threads one product may use (default: <see cref="Environment.ProcessorCount"/>); 1 keeps every product on
    /// the calling thread.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to less than 1.</exception>
    public static int MaxThreads
    {
        get => Volatile.Read(ref _maxThreads);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            Volatile.Write(ref _maxThreads, value);
        }
    }

    /// <summary>The number of multiply-adds (m·n·k) from which a product is split among threads (default 2²¹).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to less than 1.</exception>
    public static long ParallelThreshold
    {
        get => Volatile.Read(ref _parallelThreshold);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            Volatile.Write(ref _parallelThreshold, value);
        }
    }

    /// <summary>The micro-kernel in use for <typeparamref name="T"/>: 512, 256 or 128 (vector bits), or 0 for scalars.</summary>
    internal static int VectorBits<T>()
        where T : unmanaged, IFloatingPointIeee754<T>
        => ForcedVectorBits >= 0 ? ForcedVectorBits : BestVectorBits<T>();

    /// <summary>
    /// The most columns a C may have to be computed as dot products along k (<see cref="NarrowProduct{T, TV, TL}"/>) when A is
    /// not transposed; 0 turns that off (for tests and measurements).
    /// </summary>
    internal static int NarrowColumns { get; set; } = 12;

    /// <summary>
    /// Whether an n-column product over k, A not transposed, is computed as dot products along k (see
    /// <see cref="NarrowColumns"/>): on vectors of two or four lanes (float64 on 256 bits, both types on 128), over at
    /// least two vectors of k. With more lanes the sums of the lanes cost more than the blocked kernel's padding: on the
    /// AMD EPYC Zen 4, 64×128×10 float32 went 3.20 → 3.80 µs on 512 bits and 1000×100×10 float32 36.7 → 44.8 µs on 256,
    /// where float64 on 256 bits went 5.70 → 4.50 µs and 68.5 → 48.6 µs, and float32 on 128 bits 6.70 → 4.80 µs.
    /// </summary>
    internal static bool ComputesNarrow<T>(bool transA, int n, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var lanes = VectorBits<T>() / 8 / Unsafe.SizeOf<T>();
        return !transA && n <= NarrowColumns && lanes is 2 or 4 && k >= 2 * lanes;
    }

    /// <summary>For tests: forces the micro-kernel width (512, 256, 128 or 0); −1 (the default) picks the widest accelerated one.</summary>
    internal static int ForcedVectorBits { get; set; } = -1;

    /// <summary>Whether an m×n product over k, on one thread with the micro-kernel in use, is computed as its transpose (for tests).</summary>
    internal static bool ComputesTransposed<T>(int m, int n, int k)
        where T : unmanaged, IFloatingPointIeee754<T>
        => VectorBits<T>() switch
        {
            512 => Driver<T, Kernel512<T>>.Transposes(m, n, k),
            256 => Driver<T, Kernel256<T>>.Transposes(m, n, k),
            128 => Driver<T, Kernel128<T>>.Transposes(m, n, k),
            _ => Driver<T, KernelScalar<T>>.Transposes(m, n, k),
        };

    private static int BestVectorBits<T>()
        where T : unmanaged, IFloatingPointIeee754<T>
        => Kernel512<T>.IsSupported ? 512 : Kernel256<T>.IsSupported ? 256 : Kernel128<T>.IsSupported ? 128 : 0;

    /// <summary>C = op(A)·op(B), or C += op(A)·op(B) when <paramref name="accumulate"/>, on the calling thread.</summary>
    /// <param name="transA">Whether A is stored transposed (k×m) rather than m×k.</param>
    /// <param name="transB">Whether B is stored transposed (n×k) rather than k×n.</param>
    /// <param name="m">The rows of C and of op(A).</param>
    /// <param name="n">The columns of C and of op(B).</param>
    /// <param name="k">The inner size: the columns of op(A) and the rows of op(B).</param>
    /// <param name="a">A, row-major with row stride <paramref name="lda"/>.</param>
    /// <param name="lda">The distance between consecutive stored rows of A.</param>
    /// <param name="b">B, row-major with row stride <paramref name="ldb"/>.</param>
    /// <param name="ldb">The distance between consecutive stored rows of B.</param>
    /// <param name="c">C (m×n), row-major with row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">The distance between consecutive rows of C.</param>
    /// <param name="accumulate">Add the product to C instead of overwriting it.</param>
    /// <exception cref="ArgumentException">A negative size, a stride smaller than its row, or a span too short.</exception>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Serial(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <inheritdoc cref="Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool)"/>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, Span<double> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Serial(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <summary>
    /// C = op(A)·op(B), or C += op(A)·op(B) when <paramref name="accumulate"/>, split among up to
    /// <see cref="MaxThreads"/> threads when m·n·k ≥ <see cref="ParallelThreshold"/>.
    /// </summary>
    /// <inheritdoc cref="Multiply(bool, bool, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool)"/>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<float> a, int lda, ReadOnlyMemory<float> b, int ldb, Memory<float> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Run(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <inheritdoc cref="Multiply(bool, bool, int, int, int, ReadOnlyMemory{float}, int, ReadOnlyMemory{float}, int, Memory{float}, int, bool)"/>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<double> a, int lda, ReadOnlyMemory<double> b, int ldb, Memory<double> c, int ldc, bool accumulate = false)
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Run(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
    }

    /// <summary>
    /// The generic form of the <see cref="Memory{T}"/> overloads, for float32 or float64, using at most
    /// <paramref name="threads"/> threads (0: <see cref="MaxThreads"/>).
    /// </summary>
    internal static void Product<T>(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<T> a, int lda, ReadOnlyMemory<T> b, int ldb, Memory<T> c, int ldc, bool accumulate = false, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        Run(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads);
    }

    /// <summary>The validated product, threaded when it is large enough (see <see cref="ParallelThreshold"/>).</summary>
    internal static void Run<T>(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<T> a, int lda, ReadOnlyMemory<T> b, int ldb, Memory<T> c, int ldc, bool accumulate, int threads = 0)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        threads = threads > 0 ? Math.Min(threads, MaxThreads) : MaxThreads;
        if (threads > 1 && m > 1 && n > 1 && (long)m * n * k >= ParallelThreshold)
        {
            switch (VectorBits<T>())
            {
                case 512: Driver<T, Kernel512<T>>.Parallel(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return;
                case 256: Driver<T, Kernel256<T>>.Parallel(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return;
                case 128: Driver<T, Kernel128<T>>.Parallel(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return;
                default: Driver<T, KernelScalar<T>>.Parallel(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return;
            }
        }

        Serial(transA, transB, m, n, k, a.Span, lda, b.Span, ldb, c.Span, ldc, accumulate);
    }

    /// <summary>The validated product on the calling thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Serial<T>(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (m == 0 || n == 0)
        {
            return;
        }

        if (k == 0)
        {
            if (!accumulate)
            {
                for (var i = 0; i < m; i++)
                {
                    c.Slice(i * ldc, n).Clear();
                }
            }

            return;
        }

        if ((n == 1 || m == 1) && Vector(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate))
        {
            return;
        }

        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        ref var rc = ref MemoryMarshal.GetReference(c);
        if (ComputesNarrow<T>(transA, n, k))
        {
            // Two or four lanes: 256 bits (float64) or 128.
            switch (VectorBits<T>())
            {
                case 256: NarrowProduct<T, Vector256<T>, Lanes256<T>>.Run(m, n, k, ref ra, lda, ref rb, ldb, transB, ref rc, ldc, accumulate); break;
                default: NarrowProduct<T, Vector128<T>, Lanes128<T>>.Run(m, n, k, ref ra, lda, ref rb, ldb, transB, ref rc, ldc, accumulate); break;
            }

            return;
        }

        switch (VectorBits<T>())
        {
            case 512: Driver<T, Kernel512<T>>.Run(transA, transB, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate); break;
            case 256: Driver<T, Kernel256<T>>.Run(transA, transB, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate); break;
            case 128: Driver<T, Kernel128<T>>.Run(transA, transB, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate); break;
            default: Driver<T, KernelScalar<T>>.Run(transA, transB, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate); break;
        }
    }

    /// <summary>
    /// C = A·B (or C += A·B) on the calling thread with C's columns stored in segments of <paramref name="segment"/>
    /// columns, <paramref name="segmentStride"/> elements apart (see <see cref="Segments"/>); A is m×k and B k×n as
    /// stored, row-major.
    /// </summary>
    /// <exception cref="ArgumentException">A size or stride out of range, or a span too short for the segments.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void SerialSegments<T>(int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, int segment, int segmentStride, bool accumulate = false)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Validate(false, false, m, n, k, a.Length, lda, b.Length, ldb, int.MaxValue, n);
        var segments = n == 0 ? 0 : ((n - 1) / Math.Max(segment, 1)) + 1;
        if (segment <= 0 || ldc < Math.Min(segment, n) || (segments > 1 && segmentStride < m * (long)ldc))
        {
            throw new ArgumentException($"Gemm: segments of {segment} columns, {segmentStride} apart, do not fit C [{m}, {n}] with row stride {ldc}.");
        }

        var cLength = m == 0 || n == 0 ? 0 : ((segments - 1) * (long)segmentStride) + ((m - 1) * (long)ldc) + (n - ((segments - 1) * (long)segment));
        if (c.Length < cLength)
        {
            throw new ArgumentException($"Gemm: C needs {cLength} elements for [{m}, {n}] in segments of {segment} columns, {segmentStride} apart, but has {c.Length}.");
        }

        if (m == 0 || n == 0)
        {
            return;
        }

        if (k == 0)
        {
            if (!accumulate)
            {
                for (var s = 0; s < segments; s++)
                {
                    for (var i = 0; i < m; i++)
                    {
                        c.Slice((s * segmentStride) + (i * ldc), Math.Min(segment, n - (s * segment))).Clear();
                    }
                }
            }

            return;
        }

        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        ref var rc = ref MemoryMarshal.GetReference(c);
        var layout = new Segments(segment, segmentStride);
        switch (VectorBits<T>())
        {
            case 512: Driver<T, Kernel512<T>>.Run(false, false, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate, layout); break;
            case 256: Driver<T, Kernel256<T>>.Run(false, false, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate, layout); break;
            case 128: Driver<T, Kernel128<T>>.Run(false, false, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate, layout); break;
            default: Driver<T, KernelScalar<T>>.Run(false, false, m, n, k, ref ra, lda, ref rb, ldb, ref rc, ldc, accumulate, layout); break;
        }
    }

    /// <summary>
    /// A product with one row or one column (matrix-vector) as dot products or scaled row sums over contiguous
    /// runs, where packing for the register tile would waste most of it; false when the layout does not allow it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Vector<T>(bool transA, bool transB, int m, int n, int k, ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (n == 1 && (transB || ldb == 1 || k == 1))
        {
            // C is a column: c_i = Σ_p A(i, p)·b_p, with b contiguous.
            var column = b[..k];
            if (!transA)
            {
                for (var i = 0; i < m; i++)
                {
                    var dot = TensorPrimitives.Dot(a.Slice(i * lda, k), column);
                    c[i * ldc] = accumulate ? c[i * ldc] + dot : dot;
                }

                return true;
            }

            if (ldc == 1 || m == 1)
            {
                // Aᵀ·b = Σ_p b_p · (row p of the stored A).
                Axpy(a, lda, column, c[..m], m, accumulate);
                return true;
            }
        }

        if (m == 1 && (!transA || lda == 1 || k == 1))
        {
            // C is a row: c_j = Σ_p a_p·B(p, j), with a contiguous.
            var row = a[..k];
            if (transB)
            {
                for (var j = 0; j < n; j++)
                {
                    var dot = TensorPrimitives.Dot(row, b.Slice(j * ldb, k));
                    c[j] = accumulate ? c[j] + dot : dot;
                }
            }
            else
            {
                Axpy(b, ldb, row, c[..n], n, accumulate);
            }

            return true;
        }

        return false;
    }

    /// <summary>dst (+)= Σ_p w_p · x[p·ldx … p·ldx + len).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Axpy<T>(ReadOnlySpan<T> x, int ldx, ReadOnlySpan<T> w, Span<T> dst, int len, bool accumulate)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (!accumulate)
        {
            dst.Clear();
        }

        for (var p = 0; p < w.Length; p++)
        {
            TensorPrimitives.MultiplyAdd(x.Slice(p * ldx, len), w[p], dst, dst);
        }
    }

    private static void Validate(bool transA, bool transB, int m, int n, int k, int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
        {
            throw new ArgumentException($"Gemm: sizes must be non-negative, got m = {m}, n = {n}, k = {k}.");
        }

        CheckOperand("A", transA ? k : m, transA ? m : k, aLength, lda, "a", nameof(lda));
        CheckOperand("B", transB ? n : k, transB ? k : n, bLength, ldb, "b", nameof(ldb));
        CheckOperand("C", m, n, cLength, ldc, "c", nameof(ldc));
    }

    private static void CheckOperand(string name, int rows, int cols, int length, int ld, string spanName, string ldName)
    {
        if (ld < cols)
        {
            throw new ArgumentException($"Gemm: the row stride of {name} ({ld}) is smaller than its stored row ({cols} elements).", ldName);
        }

        var needed = rows == 0 || cols == 0 ? 0 : ((long)(rows - 1) * ld) + cols;
        if (length < needed)
        {
            throw new ArgumentException($"Gemm: {name} holds {length} elements but {rows}×{cols} with row stride {ld} needs {needed}.", spanName);
        }
    }
}

/// <summary>The register-blocked inner product of an MR-row panel of packed A and an NR-column panel of packed B.</summary>
internal interface IMicroKernel<T>
{
    /// <summary>The rows of the register tile.</summary>
    static abstract int MR { get; }

    /// <summary>The columns of the register tile.</summary>
    static abstract int NR { get; }

    /// <summary>True when the hardware accelerates the vectors the kernel uses.</summary>
    static abstract bool IsSupported { get; }

    /// <summary>
    /// tile(c, ldc) (+)= Σ_p a[p·MR + i]·b[p·NR + j] over p &lt; kc, for i &lt; MR, j &lt; NR: a and b are packed panels,
    /// c the top-left element of a full MR×NR tile with row stride ldc.
    /// </summary>
    static abstract void Compute(nint kc, ref T a, ref T b, ref T c, nint ldc, bool add);

    /// <summary>
    /// The rows <see cref="ComputeRows"/> computes for <paramref name="rows"/> rows of a tile (0 ≤ rows ≤ MR): the fewest a
    /// kernel of this width computes at once that cover them (2 or 4 where a short kernel exists, else MR), 0 for none.
    /// </summary>
    static abstract int EdgeRows(int rows);

    /// <summary>
    /// As <see cref="Compute"/> for the first <see cref="EdgeRows"/>(<paramref name="rows"/>) rows of the tile only, where
    /// 0 &lt; rows ≤ MR (all MR by <see cref="Compute"/> itself): a is still a panel of MR rows, and each element is
    /// summed in the same order as by <see cref="Compute"/>, so both give the same bits.
    /// </summary>
    static abstract void ComputeRows(nint kc, int rows, ref T a, ref T b, ref T c, nint ldc, bool add);
}

/// <summary>The blocked product for one element type and micro-kernel: packing, the loops around the micro-kernel, threads.</summary>
internal static class Driver<T, TKernel>
    where T : unmanaged, IFloatingPointIeee754<T>
    where TKernel : struct, IMicroKernel<T>
{
    private const int KC = 256;

    private static int MR => TKernel.MR;

    private static int NR => TKernel.NR;

    /// <summary>True when the 512-bit kernel (MR = 8, NR = 2 vectors) runs, so packing can transpose whole vector blocks.</summary>
    private static bool Fast512 => typeof(TKernel) == typeof(Kernel512<T>) && Avx512F.IsSupported && MR == 8 && NR == 2 * Vector512<T>.Count;

    /// <summary>True when the 256-bit kernel (MR = 6, NR = 2 vectors) runs on AVX, so packing can transpose whole vector blocks.</summary>
    private static bool Fast256 => typeof(TKernel) == typeof(Kernel256<T>) && Avx.IsSupported && MR == 6 && NR == 2 * Vector256<T>.Count;

    /// <summary>True when the 128-bit kernel (MR = 6, NR = 2 vectors) runs on SSE2 or AdvSIMD, so packing can transpose whole vector blocks.</summary>
    private static bool Fast128 => typeof(TKernel) == typeof(Kernel128<T>) && Transpose128.IsSupported && MR == 6 && NR == 2 * Vector128<T>.Count;

    /// <summary>The columns of one in-register transpose for this kernel (one vector of its width), or 0 where packing copies element by element.</summary>
    private static int TransposeStep => Fast512 ? Vector512<T>.Count : Fast256 ? Vector256<T>.Count : Fast128 ? Vector128<T>.Count : 0;

    /// <summary>dst[q·NR + r] = src[r·lds + q] for r, q &lt; <see cref="TransposeStep"/>: a square block of a transposed B.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SquareBlock(ref T src, nint lds, ref T dst)
    {
        if (Fast512)
        {
            Transpose512.Square(ref src, lds, ref dst, NR);
        }
        else if (Fast256)
        {
            Transpose256.Square(ref src, lds, ref dst, NR);
        }
        else
        {
            Transpose128.Square(ref src, lds, ref dst, NR);
        }
    }

    /// <summary>dst[q·MR + r] = src[r·lds + q] for r &lt; MR, q &lt; <see cref="TransposeStep"/>: one vector of columns of an A panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PanelBlock(ref T src, nint lds, ref T dst)
    {
        if (Fast512)
        {
            Transpose512.Panel8(ref src, lds, ref dst);
        }
        else if (Fast256)
        {
            Transpose256.Panel6(ref src, lds, ref dst);
        }
        else
        {
            Transpose128.Panel6(ref src, lds, ref dst);
        }
    }

    // A block of MC×KC packed A stays in L2 while every NR-column panel of the packed KC×NC block of B passes through L1.
    private static int MC => (240 / MR) * MR;

    private static int NC => (1024 / NR) * NR;

    /// <summary>Splits the product into column blocks (or row blocks when op(A) is taller than op(B) is wide), one per thread.</summary>
    public static void Parallel(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<T> a, int lda, ReadOnlyMemory<T> b, int ldb, Memory<T> c, int ldc, bool accumulate, int threads)
    {
        var byColumns = n >= m;
        var unit = byColumns ? NR : MR;
        var units = ((byColumns ? n : m) + unit - 1) / unit;
        var parts = Math.Min(threads, units);
        if (parts <= 1)
        {
            Gemm.Serial(transA, transB, m, n, k, a.Span, lda, b.Span, ldb, c.Span, ldc, accumulate);
            return;
        }

        Workers.For(parts, parts, new PartJob(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate, byColumns, unit, units, parts));
    }

    /// <summary>Parts [start, end) of a product split into <c>parts</c> column (or row) blocks of whole tiles.</summary>
    private readonly struct PartJob(bool transA, bool transB, int m, int n, int k, ReadOnlyMemory<T> a, int lda, ReadOnlyMemory<T> b, int ldb, Memory<T> c, int ldc, bool accumulate, bool byColumns, int unit, int units, int parts) : IRangeJob
    {
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var part = start; part < end; part++)
            {
                var lo = (int)((long)units * part / parts) * unit;
                var hi = (int)Math.Min((long)units * (part + 1) / parts * unit, byColumns ? n : m);
                if (hi <= lo)
                {
                    continue;
                }

                if (byColumns)
                {
                    var bOff = transB ? lo * ldb : lo;
                    Gemm.Serial(transA, transB, m, hi - lo, k, a.Span, lda, b.Span[bOff..], ldb, c.Span[lo..], ldc, accumulate);
                }
                else
                {
                    var aOff = transA ? lo : lo * lda;
                    Gemm.Serial(transA, transB, hi - lo, n, k, a.Span[aOff..], lda, b.Span, ldb, c.Span[(lo * ldc)..], ldc, accumulate);
                }
            }
        }
    }

    /// <summary>
    /// The blocked product on the calling thread; sizes are positive and the operands validated. A product whose C is
    /// narrow (a classifier's ten columns) fills fewer padded tiles as Cᵀ = op(B)ᵀ·op(A)ᵀ, see <see cref="Transposes"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(bool transA, bool transB, int m, int n, int k, ref T a, int lda, ref T b, int ldb, ref T c, int ldc, bool accumulate)
    {
        if (Transposes(m, n, k))
        {
            // op(B)ᵀ is op(B) read the other way round, and likewise op(A)ᵀ: swap the operands and flip both flags.
            Run(!transB, !transA, n, m, k, ref b, ldb, ref a, lda, ref c, ldc, accumulate, Segments.Whole, transposeC: true);
            return;
        }

        Run(transA, transB, m, n, k, ref a, lda, ref b, ldb, ref c, ldc, accumulate, Segments.Whole);
    }

    /// <summary>
    /// Whether C (m×n) is better computed as Cᵀ. Each element of a tile, padded to MR rows and NR columns, costs k
    /// multiply-adds on vectors of L = NR/2 lanes (two a cycle, so k/2L cycles) and about a cycle more when the tile is
    /// written transposed, element by element. A C of 64×10 fills 66×16 elements of 256-bit float32 tiles but its
    /// transpose 12×64, and 64×32 elements of 512-bit ones but its transpose 16×64; a C of 256×20 with k = 64 on 512 bits
    /// (256×32 against 24×256) measured slower transposed, so the cost of the write counts as 3L/2 (steps of k) beside the
    /// L/4 of copying an edge tile.
    /// </summary>
    internal static bool Transposes(int m, int n, int k)
    {
        var lanes = NR / 2.0;
        var padded = (double)Rows(m) * RoundUp(n, NR);
        var transposed = (double)Rows(n) * RoundUp(m, NR);
        return transposed * (k + (3 * lanes)) < padded * (k + (lanes / 2));
    }

    /// <summary>
    /// The blocked product on the calling thread with the columns of C stored in segments (see <see cref="Segments"/>);
    /// sizes are positive and the operands validated. With <c>transposeC</c>, C is stored transposed: element (i, j) of
    /// the product goes to <c>c[j·ldc + i]</c> (and the segments are ignored).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(bool transA, bool transB, int m, int n, int k, ref T a, int lda, ref T b, int ldb, ref T c, int ldc, bool accumulate, Segments segments, bool transposeC = false)
    {
        var kcMax = Split(k, KC, 1);
        var mcMax = Split(m, MC, MR);
        var ncMax = Split(n, NC, NR);
        var aSize = Align(RoundUp(mcMax, MR) * kcMax);
        var bSize = Align(RoundUp(ncMax, NR) * kcMax);
        ref var ap = ref Scratch<T>.Get(aSize + bSize + (MR * NR));
        ref var bp = ref Unsafe.Add(ref ap, aSize);
        ref var tile = ref Unsafe.Add(ref bp, bSize);
        for (var jc = 0; jc < n; jc += ncMax)
        {
            var nc = Math.Min(ncMax, n - jc);
            for (var pc = 0; pc < k; pc += kcMax)
            {
                var kc = Math.Min(kcMax, k - pc);
                var add = accumulate || pc > 0;
                ref var bBlock = ref Unsafe.Add(ref b, transB ? ((nint)jc * ldb) + pc : ((nint)pc * ldb) + jc);
                PackB(ref bBlock, ldb, transB, kc, nc, ref bp);
                for (var ic = 0; ic < m; ic += mcMax)
                {
                    var mc = Math.Min(mcMax, m - ic);
                    ref var aBlock = ref Unsafe.Add(ref a, transA ? ((nint)pc * lda) + ic : ((nint)ic * lda) + pc);
                    PackA(ref aBlock, lda, transA, mc, kc, ref ap);
                    if (transposeC)
                    {
                        MacroTransposed(mc, nc, kc, ref ap, ref bp, ref Unsafe.Add(ref c, ic), jc, ldc, add, ref tile);
                    }
                    else
                    {
                        Macro(mc, nc, kc, ref ap, ref bp, ref Unsafe.Add(ref c, (nint)ic * ldc), jc, ldc, segments, add, ref tile);
                    }
                }
            }
        }
    }

    /// <summary>
    /// C block (+)= packed A block · packed B block, tile by tile, for rows starting at <paramref name="rows"/> and
    /// columns [jc, jc + nc) of C; edge tiles and tiles that cross from one segment of columns to the next go through a
    /// scratch tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Macro(int mc, int nc, int kc, ref T ap, ref T bp, ref T rows, int jc, int ldc, Segments segments, bool add, ref T tile)
    {
        for (var jr = 0; jr < nc; jr += NR)
        {
            var nr = Math.Min(NR, nc - jr);
            ref var bPanel = ref Unsafe.Add(ref bp, (nint)jr * kc);
            var (segment, column) = Math.DivRem(jc + jr, segments.Length);
            ref var cColumn = ref Unsafe.Add(ref rows, (segment * segments.Stride) + column);
            var whole = nr == NR && column + NR <= segments.Length;
            for (var ir = 0; ir < mc; ir += MR)
            {
                var mr = Math.Min(MR, mc - ir);
                ref var aPanel = ref Unsafe.Add(ref ap, (nint)ir * kc);
                if (mr == MR && whole)
                {
                    TKernel.Compute(kc, ref aPanel, ref bPanel, ref Unsafe.Add(ref cColumn, (nint)ir * ldc), ldc, add);
                    continue;
                }

                TKernel.ComputeRows(kc, mr, ref aPanel, ref bPanel, ref tile, NR, false);

                // The tile's columns, a run at a time: each run ends at the tile's edge or at the end of a segment.
                for (int done = 0, s = segment, col = column; done < nr; s++, col = 0)
                {
                    var run = Math.Min(nr - done, segments.Length - col);
                    ref var cRun = ref Unsafe.Add(ref rows, (s * segments.Stride) + col + ((nint)ir * ldc));
                    for (var i = 0; i < mr; i++)
                    {
                        ref var cRow = ref Unsafe.Add(ref cRun, (nint)i * ldc);
                        ref var tRow = ref Unsafe.Add(ref tile, (i * NR) + done);
                        if (add)
                        {
                            for (var j = 0; j < run; j++)
                            {
                                Unsafe.Add(ref cRow, j) += Unsafe.Add(ref tRow, j);
                            }
                        }
                        else
                        {
                            Unsafe.CopyBlockUnaligned(ref Unsafe.As<T, byte>(ref cRow), ref Unsafe.As<T, byte>(ref tRow), (uint)(run * Unsafe.SizeOf<T>()));
                        }
                    }

                    done += run;
                }
            }
        }
    }

    /// <summary>
    /// As <see cref="Macro"/> for a C stored transposed: each tile goes through the scratch tile, and its element (i, j),
    /// of row ic + ir + i and column jc + jr + j of the product, to <c>columns[(jc + jr + j)·ldc + ir + i]</c>, where
    /// <paramref name="columns"/> is C's column ic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MacroTransposed(int mc, int nc, int kc, ref T ap, ref T bp, ref T columns, int jc, int ldc, bool add, ref T tile)
    {
        for (var jr = 0; jr < nc; jr += NR)
        {
            var nr = Math.Min(NR, nc - jr);
            ref var bPanel = ref Unsafe.Add(ref bp, (nint)jr * kc);
            for (var ir = 0; ir < mc; ir += MR)
            {
                var mr = Math.Min(MR, mc - ir);
                TKernel.ComputeRows(kc, mr, ref Unsafe.Add(ref ap, (nint)ir * kc), ref bPanel, ref tile, NR, false);
                for (var j = 0; j < nr; j++)
                {
                    ref var cRow = ref Unsafe.Add(ref columns, ((nint)(jc + jr + j) * ldc) + ir);
                    ref var tColumn = ref Unsafe.Add(ref tile, j);
                    if (add)
                    {
                        for (var i = 0; i < mr; i++)
                        {
                            Unsafe.Add(ref cRow, i) += Unsafe.Add(ref tColumn, i * NR);
                        }
                    }
                    else
                    {
                        for (var i = 0; i < mr; i++)
                        {
                            Unsafe.Add(ref cRow, i) = Unsafe.Add(ref tColumn, i * NR);
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs the kc×nc block of op(B) starting at <paramref name="b"/> into NR-column panels, each kc rows of NR
    /// consecutive elements, zero-padded past column nc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(ref T b, int ldb, bool transB, int kc, int nc, ref T dst)
    {
        for (var j0 = 0; j0 < nc; j0 += NR)
        {
            var nr = Math.Min(NR, nc - j0);
            ref var panel = ref Unsafe.Add(ref dst, (nint)j0 * kc);
            if (!transB)
            {
                // op(B)(p, j) = b[p·ldb + j]: rows of the panel are contiguous in b.
                ref var src = ref Unsafe.Add(ref b, j0);
                if (nr == NR)
                {
                    for (var p = 0; p < kc; p++)
                    {
                        Unsafe.CopyBlockUnaligned(
                            ref Unsafe.As<T, byte>(ref Unsafe.Add(ref panel, p * NR)),
                            ref Unsafe.As<T, byte>(ref Unsafe.Add(ref src, (nint)p * ldb)),
                            (uint)(NR * Unsafe.SizeOf<T>()));
                    }
                }
                else
                {
                    for (var p = 0; p < kc; p++)
                    {
                        ref var row = ref Unsafe.Add(ref panel, p * NR);
                        ref var s = ref Unsafe.Add(ref src, (nint)p * ldb);
                        Unsafe.InitBlockUnaligned(ref Unsafe.As<T, byte>(ref row), 0, (uint)(NR * Unsafe.SizeOf<T>()));
                        for (var j = 0; j < nr; j++)
                        {
                            Unsafe.Add(ref row, j) = Unsafe.Add(ref s, j);
                        }
                    }
                }
            }
            else
            {
                // op(B)(p, j) = b[j·ldb + p]: columns of the panel are contiguous in b.
                ref var src = ref Unsafe.Add(ref b, (nint)j0 * ldb);
                var p0 = 0;
                var step = TransposeStep;
                if (step > 0 && nr == NR)
                {
                    // Square blocks of one vector each way, transposed in registers.
                    for (; p0 + step <= kc; p0 += step)
                    {
                        for (var jb = 0; jb < NR; jb += step)
                        {
                            SquareBlock(ref Unsafe.Add(ref src, ((nint)jb * ldb) + p0), ldb, ref Unsafe.Add(ref panel, (p0 * NR) + jb));
                        }
                    }
                }

                for (var j = 0; j < nr; j++)
                {
                    ref var s = ref Unsafe.Add(ref src, (nint)j * ldb);
                    for (var p = p0; p < kc; p++)
                    {
                        Unsafe.Add(ref panel, (p * NR) + j) = Unsafe.Add(ref s, p);
                    }
                }

                for (var j = nr; j < NR; j++)
                {
                    for (var p = 0; p < kc; p++)
                    {
                        Unsafe.Add(ref panel, (p * NR) + j) = T.Zero;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Packs the mc×kc block of op(A) starting at <paramref name="a"/> into MR-row panels, each kc columns of MR
    /// consecutive elements, zero-padded past row mc.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(ref T a, int lda, bool transA, int mc, int kc, ref T dst)
    {
        for (var i0 = 0; i0 < mc; i0 += MR)
        {
            var mr = Math.Min(MR, mc - i0);
            ref var panel = ref Unsafe.Add(ref dst, (nint)i0 * kc);
            if (transA)
            {
                // op(A)(i, p) = a[p·lda + i]: columns of the panel are contiguous in a.
                ref var src = ref Unsafe.Add(ref a, i0);
                for (var p = 0; p < kc; p++)
                {
                    ref var col = ref Unsafe.Add(ref panel, p * MR);
                    ref var s = ref Unsafe.Add(ref src, (nint)p * lda);
                    if (mr == MR)
                    {
                        Unsafe.CopyBlockUnaligned(ref Unsafe.As<T, byte>(ref col), ref Unsafe.As<T, byte>(ref s), (uint)(MR * Unsafe.SizeOf<T>()));
                    }
                    else
                    {
                        var i = 0;
                        for (; i < mr; i++)
                        {
                            Unsafe.Add(ref col, i) = Unsafe.Add(ref s, i);
                        }

                        for (; i < MR; i++)
                        {
                            Unsafe.Add(ref col, i) = T.Zero;
                        }
                    }
                }
            }
            else
            {
                // op(A)(i, p) = a[i·lda + p]: rows of the panel are contiguous in a.
                ref var src = ref Unsafe.Add(ref a, (nint)i0 * lda);
                var p0 = 0;
                var step = TransposeStep;
                if (step > 0 && mr == MR)
                {
                    // MR rows by one vector of columns, transposed in registers.
                    for (; p0 + step <= kc; p0 += step)
                    {
                        PanelBlock(ref Unsafe.Add(ref src, p0), lda, ref Unsafe.Add(ref panel, p0 * MR));
                    }
                }

                for (var i = 0; i < mr; i++)
                {
                    ref var s = ref Unsafe.Add(ref src, (nint)i * lda);
                    for (var p = p0; p < kc; p++)
                    {
                        Unsafe.Add(ref panel, (p * MR) + i) = Unsafe.Add(ref s, p);
                    }
                }

                for (var i = mr; i < MR; i++)
                {
                    for (var p = 0; p < kc; p++)
                    {
                        Unsafe.Add(ref panel, (p * MR) + i) = T.Zero;
                    }
                }
            }
        }
    }

    /// <summary>The block size for a dimension of <paramref name="total"/>: at most about <paramref name="max"/>, balanced so the last block is not tiny, a multiple of <paramref name="unit"/>.</summary>
    private static int Split(int total, int max, int unit)
    {
        if (total <= max)
        {
            return total;
        }

        var blocks = (total + max - 1) / max;
        return RoundUp((total + blocks - 1) / blocks, unit);
    }

    private static int RoundUp(int x, int unit) => (x + unit - 1) / unit * unit;

    /// <summary>
    /// The rows of tile work that <paramref name="m"/> rows of C cost: whole MR-row tiles, then the edge. An edge of up to
    /// four rows costs four (the two-row kernel's four chains of multiply-adds keep one FMA pipe busy, not two) where a
    /// vector has four lanes or more; with two (float64 on 128 bits) it costs a whole tile, since the transposed product it
    /// would favour packs op(A)ᵀ in 2×2 blocks, which cost more than the rows saved (64×128×10 float64 on 128 bits measured
    /// 10.8 µs as it is and 12.3 µs transposed).
    /// </summary>
    private static int Rows(int m)
    {
        var edge = m % MR;
        return m - edge + (edge == 0 ? 0 : NR >= 8 ? Math.Max(TKernel.EdgeRows(edge), 4) : MR);
    }

    /// <summary>Rounds a count of elements up to a whole number of 64-byte lines.</summary>
    private static int Align(int elements) => RoundUp(elements, 64 / Unsafe.SizeOf<T>());
}

/// <summary>
/// How the columns of C are stored: in segments of <see cref="Length"/> consecutive columns, segment s starting
/// <see cref="Stride"/>·s elements after the first (so column j of row i is at
/// <c>c[(j / Length)·Stride + i·ldc + j % Length]</c>). A convolution's product over several images writes each
/// image's output plane straight into its place in the output tensor this way.
/// </summary>
/// <param name="Length">The columns of a segment (positive).</param>
/// <param name="Stride">The distance in elements from the start of one segment to the next.</param>
internal readonly record struct Segments(int Length, nint Stride)
{
    /// <summary>One segment: C's columns are consecutive.</summary>
    public static Segments Whole => new(int.MaxValue, 0);
}

/// <summary>Per-thread packing buffers, 64-byte aligned, grown on demand and kept for the next product.</summary>
internal static class Scratch<T>
    where T : unmanaged
{
    [ThreadStatic]
    private static T[]? t_buffer;

    [ThreadStatic]
    private static int t_start;

    /// <summary>The first of at least <paramref name="length"/> elements of this thread's buffer, at a 64-byte boundary.</summary>
    public static ref T Get(int length)
    {
        var buffer = t_buffer;
        if (buffer is null || buffer.Length - t_start < length)
        {
            var extra = 64 / Unsafe.SizeOf<T>();
            buffer = GC.AllocateUninitializedArray<T>(Math.Max(length, 4096) + extra, pinned: true);
            var address = Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0);
            t_start = (int)((64 - (address & 63)) & 63) / Unsafe.SizeOf<T>();
            t_buffer = buffer;
        }

        return ref buffer[t_start];
    }
}

/// <summary>Fused multiply-add on vectors of a generic float type (the branches fold away per instantiation).</summary>
internal static class GemmMath
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Fma<T>(Vector512<T> x, Vector512<T> y, Vector512<T> z)
        => typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Fma<T>(Vector256<T> x, Vector256<T> y, Vector256<T> z)
        => typeof(T) == typeof(float)
            ? Vector256.MultiplyAddEstimate(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>()
            : Vector256.MultiplyAddEstimate(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Fma<T>(Vector128<T> x, Vector128<T> y, Vector128<T> z)
        => typeof(T) == typeof(float)
            ? Vector128.MultiplyAddEstimate(x.AsSingle(), y.AsSingle(), z.AsSingle()).As<float, T>()
            : Vector128.MultiplyAddEstimate(x.AsDouble(), y.AsDouble(), z.AsDouble()).As<double, T>();
}

/// <summary>The 4×4 scalar tile, for hardware without vector acceleration.</summary>
internal readonly struct KernelScalar<T> : IMicroKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 4;

    public static int NR => 4;

    public static bool IsSupported => true;

    public static int EdgeRows(int rows) => rows == 0 ? 0 : MR;

    public static void ComputeRows(nint kc, int rows, ref T a, ref T b, ref T c, nint ldc, bool add) => Compute(kc, ref a, ref b, ref c, ldc, add);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(nint kc, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        T c00 = T.Zero, c01 = T.Zero, c02 = T.Zero, c03 = T.Zero;
        T c10 = T.Zero, c11 = T.Zero, c12 = T.Zero, c13 = T.Zero;
        T c20 = T.Zero, c21 = T.Zero, c22 = T.Zero, c23 = T.Zero;
        T c30 = T.Zero, c31 = T.Zero, c32 = T.Zero, c33 = T.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = b;
            var b1 = Unsafe.Add(ref b, 1);
            var b2 = Unsafe.Add(ref b, 2);
            var b3 = Unsafe.Add(ref b, 3);
            var a0 = a;
            c00 += a0 * b0;
            c01 += a0 * b1;
            c02 += a0 * b2;
            c03 += a0 * b3;
            var a1 = Unsafe.Add(ref a, 1);
            c10 += a1 * b0;
            c11 += a1 * b1;
            c12 += a1 * b2;
            c13 += a1 * b3;
            var a2 = Unsafe.Add(ref a, 2);
            c20 += a2 * b0;
            c21 += a2 * b1;
            c22 += a2 * b2;
            c23 += a2 * b3;
            var a3 = Unsafe.Add(ref a, 3);
            c30 += a3 * b0;
            c31 += a3 * b1;
            c32 += a3 * b2;
            c33 += a3 * b3;
            a = ref Unsafe.Add(ref a, 4);
            b = ref Unsafe.Add(ref b, 4);
        }

        Store(ref c, add, c00, c01, c02, c03);
        Store(ref Unsafe.Add(ref c, ldc), add, c10, c11, c12, c13);
        Store(ref Unsafe.Add(ref c, 2 * ldc), add, c20, c21, c22, c23);
        Store(ref Unsafe.Add(ref c, 3 * ldc), add, c30, c31, c32, c33);
    }

    private static void Store(ref T row, bool add, T v0, T v1, T v2, T v3)
    {
        if (add)
        {
            v0 += row;
            v1 += Unsafe.Add(ref row, 1);
            v2 += Unsafe.Add(ref row, 2);
            v3 += Unsafe.Add(ref row, 3);
        }

        row = v0;
        Unsafe.Add(ref row, 1) = v1;
        Unsafe.Add(ref row, 2) = v2;
        Unsafe.Add(ref row, 3) = v3;
    }
}
/// <summary>The 8×2-vector register tile on Vector512: 16 accumulators, a broadcast of A times 2 vectors of B per step.</summary>
internal readonly struct Kernel512<T> : IMicroKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 8;

    public static int NR => 2 * Vector512<T>.Count;

    public static bool IsSupported => Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported;

    public static int EdgeRows(int rows) => EdgeTile<T, Vector512<T>, Lanes512<T>>.Rows(rows, MR);

    public static void ComputeRows(nint kc, int rows, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        if (!EdgeTile<T, Vector512<T>, Lanes512<T>>.Compute(kc, rows, MR, ref a, ref b, ref c, ldc, add))
        {
            Compute(kc, ref a, ref b, ref c, ldc, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(nint kc, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var n = (nuint)Vector512<T>.Count;
        var c00 = Vector512<T>.Zero;
        var c01 = Vector512<T>.Zero;
        var c10 = Vector512<T>.Zero;
        var c11 = Vector512<T>.Zero;
        var c20 = Vector512<T>.Zero;
        var c21 = Vector512<T>.Zero;
        var c30 = Vector512<T>.Zero;
        var c31 = Vector512<T>.Zero;
        var c40 = Vector512<T>.Zero;
        var c41 = Vector512<T>.Zero;
        var c50 = Vector512<T>.Zero;
        var c51 = Vector512<T>.Zero;
        var c60 = Vector512<T>.Zero;
        var c61 = Vector512<T>.Zero;
        var c70 = Vector512<T>.Zero;
        var c71 = Vector512<T>.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadUnsafe(ref b);
            var b1 = Vector512.LoadUnsafe(ref b, n);
            var a0 = Vector512.Create(a);
            c00 = GemmMath.Fma(a0, b0, c00);
            c01 = GemmMath.Fma(a0, b1, c01);
            var a1 = Vector512.Create(Unsafe.Add(ref a, 1));
            c10 = GemmMath.Fma(a1, b0, c10);
            c11 = GemmMath.Fma(a1, b1, c11);
            var a2 = Vector512.Create(Unsafe.Add(ref a, 2));
            c20 = GemmMath.Fma(a2, b0, c20);
            c21 = GemmMath.Fma(a2, b1, c21);
            var a3 = Vector512.Create(Unsafe.Add(ref a, 3));
            c30 = GemmMath.Fma(a3, b0, c30);
            c31 = GemmMath.Fma(a3, b1, c31);
            var a4 = Vector512.Create(Unsafe.Add(ref a, 4));
            c40 = GemmMath.Fma(a4, b0, c40);
            c41 = GemmMath.Fma(a4, b1, c41);
            var a5 = Vector512.Create(Unsafe.Add(ref a, 5));
            c50 = GemmMath.Fma(a5, b0, c50);
            c51 = GemmMath.Fma(a5, b1, c51);
            var a6 = Vector512.Create(Unsafe.Add(ref a, 6));
            c60 = GemmMath.Fma(a6, b0, c60);
            c61 = GemmMath.Fma(a6, b1, c61);
            var a7 = Vector512.Create(Unsafe.Add(ref a, 7));
            c70 = GemmMath.Fma(a7, b0, c70);
            c71 = GemmMath.Fma(a7, b1, c71);
            a = ref Unsafe.Add(ref a, 8);
            b = ref Unsafe.Add(ref b, 2 * (nint)n);
        }

        Store(ref c, add, n, c00, c01);
        Store(ref Unsafe.Add(ref c, ldc), add, n, c10, c11);
        Store(ref Unsafe.Add(ref c, 2 * ldc), add, n, c20, c21);
        Store(ref Unsafe.Add(ref c, 3 * ldc), add, n, c30, c31);
        Store(ref Unsafe.Add(ref c, 4 * ldc), add, n, c40, c41);
        Store(ref Unsafe.Add(ref c, 5 * ldc), add, n, c50, c51);
        Store(ref Unsafe.Add(ref c, 6 * ldc), add, n, c60, c61);
        Store(ref Unsafe.Add(ref c, 7 * ldc), add, n, c70, c71);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T row, bool add, nuint n, Vector512<T> v0, Vector512<T> v1)
    {
        if (add)
        {
            v0 += Vector512.LoadUnsafe(ref row);
            v1 += Vector512.LoadUnsafe(ref row, n);
        }

        v0.StoreUnsafe(ref row);
        v1.StoreUnsafe(ref row, n);
    }
}

/// <summary>The 6×2-vector register tile on Vector256: 12 accumulators, a broadcast of A times 2 vectors of B per step.</summary>
internal readonly struct Kernel256<T> : IMicroKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 6;

    public static int NR => 2 * Vector256<T>.Count;

    public static bool IsSupported => Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported;

    public static int EdgeRows(int rows) => EdgeTile<T, Vector256<T>, Lanes256<T>>.Rows(rows, MR);

    public static void ComputeRows(nint kc, int rows, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        if (!EdgeTile<T, Vector256<T>, Lanes256<T>>.Compute(kc, rows, MR, ref a, ref b, ref c, ldc, add))
        {
            Compute(kc, ref a, ref b, ref c, ldc, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(nint kc, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var n = (nuint)Vector256<T>.Count;
        var c00 = Vector256<T>.Zero;
        var c01 = Vector256<T>.Zero;
        var c10 = Vector256<T>.Zero;
        var c11 = Vector256<T>.Zero;
        var c20 = Vector256<T>.Zero;
        var c21 = Vector256<T>.Zero;
        var c30 = Vector256<T>.Zero;
        var c31 = Vector256<T>.Zero;
        var c40 = Vector256<T>.Zero;
        var c41 = Vector256<T>.Zero;
        var c50 = Vector256<T>.Zero;
        var c51 = Vector256<T>.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = Vector256.LoadUnsafe(ref b);
            var b1 = Vector256.LoadUnsafe(ref b, n);
            var a0 = Vector256.Create(a);
            c00 = GemmMath.Fma(a0, b0, c00);
            c01 = GemmMath.Fma(a0, b1, c01);
            var a1 = Vector256.Create(Unsafe.Add(ref a, 1));
            c10 = GemmMath.Fma(a1, b0, c10);
            c11 = GemmMath.Fma(a1, b1, c11);
            var a2 = Vector256.Create(Unsafe.Add(ref a, 2));
            c20 = GemmMath.Fma(a2, b0, c20);
            c21 = GemmMath.Fma(a2, b1, c21);
            var a3 = Vector256.Create(Unsafe.Add(ref a, 3));
            c30 = GemmMath.Fma(a3, b0, c30);
            c31 = GemmMath.Fma(a3, b1, c31);
            var a4 = Vector256.Create(Unsafe.Add(ref a, 4));
            c40 = GemmMath.Fma(a4, b0, c40);
            c41 = GemmMath.Fma(a4, b1, c41);
            var a5 = Vector256.Create(Unsafe.Add(ref a, 5));
            c50 = GemmMath.Fma(a5, b0, c50);
            c51 = GemmMath.Fma(a5, b1, c51);
            a = ref Unsafe.Add(ref a, 6);
            b = ref Unsafe.Add(ref b, 2 * (nint)n);
        }

        Store(ref c, add, n, c00, c01);
        Store(ref Unsafe.Add(ref c, ldc), add, n, c10, c11);
        Store(ref Unsafe.Add(ref c, 2 * ldc), add, n, c20, c21);
        Store(ref Unsafe.Add(ref c, 3 * ldc), add, n, c30, c31);
        Store(ref Unsafe.Add(ref c, 4 * ldc), add, n, c40, c41);
        Store(ref Unsafe.Add(ref c, 5 * ldc), add, n, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T row, bool add, nuint n, Vector256<T> v0, Vector256<T> v1)
    {
        if (add)
        {
            v0 += Vector256.LoadUnsafe(ref row);
            v1 += Vector256.LoadUnsafe(ref row, n);
        }

        v0.StoreUnsafe(ref row);
        v1.StoreUnsafe(ref row, n);
    }
}

/// <summary>The 6×2-vector register tile on Vector128: 12 accumulators, a broadcast of A times 2 vectors of B per step.</summary>
internal readonly struct Kernel128<T> : IMicroKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static int MR => 6;

    public static int NR => 2 * Vector128<T>.Count;

    public static bool IsSupported => Vector128.IsHardwareAccelerated && Vector128<T>.IsSupported;

    public static int EdgeRows(int rows) => EdgeTile<T, Vector128<T>, Lanes128<T>>.Rows(rows, MR);

    public static void ComputeRows(nint kc, int rows, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        if (!EdgeTile<T, Vector128<T>, Lanes128<T>>.Compute(kc, rows, MR, ref a, ref b, ref c, ldc, add))
        {
            Compute(kc, ref a, ref b, ref c, ldc, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Compute(nint kc, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var n = (nuint)Vector128<T>.Count;
        var c00 = Vector128<T>.Zero;
        var c01 = Vector128<T>.Zero;
        var c10 = Vector128<T>.Zero;
        var c11 = Vector128<T>.Zero;
        var c20 = Vector128<T>.Zero;
        var c21 = Vector128<T>.Zero;
        var c30 = Vector128<T>.Zero;
        var c31 = Vector128<T>.Zero;
        var c40 = Vector128<T>.Zero;
        var c41 = Vector128<T>.Zero;
        var c50 = Vector128<T>.Zero;
        var c51 = Vector128<T>.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = Vector128.LoadUnsafe(ref b);
            var b1 = Vector128.LoadUnsafe(ref b, n);
            var a0 = Vector128.Create(a);
            c00 = GemmMath.Fma(a0, b0, c00);
            c01 = GemmMath.Fma(a0, b1, c01);
            var a1 = Vector128.Create(Unsafe.Add(ref a, 1));
            c10 = GemmMath.Fma(a1, b0, c10);
            c11 = GemmMath.Fma(a1, b1, c11);
            var a2 = Vector128.Create(Unsafe.Add(ref a, 2));
            c20 = GemmMath.Fma(a2, b0, c20);
            c21 = GemmMath.Fma(a2, b1, c21);
            var a3 = Vector128.Create(Unsafe.Add(ref a, 3));
            c30 = GemmMath.Fma(a3, b0, c30);
            c31 = GemmMath.Fma(a3, b1, c31);
            var a4 = Vector128.Create(Unsafe.Add(ref a, 4));
            c40 = GemmMath.Fma(a4, b0, c40);
            c41 = GemmMath.Fma(a4, b1, c41);
            var a5 = Vector128.Create(Unsafe.Add(ref a, 5));
            c50 = GemmMath.Fma(a5, b0, c50);
            c51 = GemmMath.Fma(a5, b1, c51);
            a = ref Unsafe.Add(ref a, 6);
            b = ref Unsafe.Add(ref b, 2 * (nint)n);
        }

        Store(ref c, add, n, c00, c01);
        Store(ref Unsafe.Add(ref c, ldc), add, n, c10, c11);
        Store(ref Unsafe.Add(ref c, 2 * ldc), add, n, c20, c21);
        Store(ref Unsafe.Add(ref c, 3 * ldc), add, n, c30, c31);
        Store(ref Unsafe.Add(ref c, 4 * ldc), add, n, c40, c41);
        Store(ref Unsafe.Add(ref c, 5 * ldc), add, n, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T row, bool add, nuint n, Vector128<T> v0, Vector128<T> v1)
    {
        if (add)
        {
            v0 += Vector128.LoadUnsafe(ref row);
            v1 += Vector128.LoadUnsafe(ref row, n);
        }

        v0.StoreUnsafe(ref row);
        v1.StoreUnsafe(ref row, n);
    }
}
