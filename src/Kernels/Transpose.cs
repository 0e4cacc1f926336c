using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>In-register block transposes with AVX-512 shuffles, for packing operands whose panels run across rows.</summary>
internal static class Transpose512
{
    /// <summary>
    /// The square block of one 512-bit vector's width (16×16 float32 or 8×8 float64):
    /// dst[q·ldd + r] = src[r·lds + q] for r, q &lt; Vector512&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Square<T>(ref T src, nint lds, ref T dst, nint ldd)
    {
        if (typeof(T) == typeof(float))
        {
            Block16x16(ref Unsafe.As<T, float>(ref src), lds, ref Unsafe.As<T, float>(ref dst), ldd);
        }
        else
        {
            Block8x8(ref Unsafe.As<T, double>(ref src), lds, ref Unsafe.As<T, double>(ref dst), ldd);
        }
    }

    /// <summary>
    /// Eight rows by one 512-bit vector of columns into 8·Vector512&lt;T&gt;.Count contiguous elements:
    /// dst[q·8 + r] = src[r·lds + q] for r &lt; 8, q &lt; Vector512&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Panel8<T>(ref T src, nint lds, ref T dst)
    {
        if (typeof(T) == typeof(float))
        {
            Block8x16(ref Unsafe.As<T, float>(ref src), lds, ref Unsafe.As<T, float>(ref dst));
        }
        else
        {
            Block8x8(ref Unsafe.As<T, double>(ref src), lds, ref Unsafe.As<T, double>(ref dst), 8);
        }
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for r, q &lt; 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block16x16(ref float src, nint lds, ref float dst, nint ldd)
    {
        var r0 = Vector512.LoadUnsafe(ref src);
        var r1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var r4 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds));
        var r5 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));
        var r6 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 6 * lds));
        var r7 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 7 * lds));
        var r8 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 8 * lds));
        var r9 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 9 * lds));
        var r10 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 10 * lds));
        var r11 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 11 * lds));
        var r12 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 12 * lds));
        var r13 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 13 * lds));
        var r14 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 14 * lds));
        var r15 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 15 * lds));

        // Within each 128-bit lane: 4×4 blocks. u[4g + s] lane l = column 4l + s, rows 4g … 4g + 3.
        var (u0, u1, u2, u3) = Quad(r0, r1, r2, r3);
        var (u4, u5, u6, u7) = Quad(r4, r5, r6, r7);
        var (u8, u9, u10, u11) = Quad(r8, r9, r10, r11);
        var (u12, u13, u14, u15) = Quad(r12, r13, r14, r15);

        // Column q = 4l + s gathers lane l of u[s], u[4 + s], u[8 + s], u[12 + s].
        Lanes(u0, u4, u8, u12, ref dst, 0, ldd);
        Lanes(u1, u5, u9, u13, ref dst, 1, ldd);
        Lanes(u2, u6, u10, u14, ref dst, 2, ldd);
        Lanes(u3, u7, u11, u15, ref dst, 3, ldd);
    }

    /// <summary>dst[2q·8 + r] = src[r·lds + 2q] and dst[(2q + 1)·8 + r] = src[r·lds + 2q + 1] for r &lt; 8, q &lt; 8: an 8×16 block transposed into 128 contiguous elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block8x16(ref float src, nint lds, ref float dst)
    {
        var r0 = Vector512.LoadUnsafe(ref src);
        var r1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var r4 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds));
        var r5 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));
        var r6 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 6 * lds));
        var r7 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 7 * lds));
        var (u0, u1, u2, u3) = Quad(r0, r1, r2, r3);
        var (u4, u5, u6, u7) = Quad(r4, r5, r6, r7);

        // x[s] = lanes 0, 1 of u[s] then of u[4 + s]; y[s] = lanes 2, 3 likewise.
        var x0 = Avx512F.Shuffle4x128(u0, u4, 0x44);
        var x1 = Avx512F.Shuffle4x128(u1, u5, 0x44);
        var x2 = Avx512F.Shuffle4x128(u2, u6, 0x44);
        var x3 = Avx512F.Shuffle4x128(u3, u7, 0x44);
        var y0 = Avx512F.Shuffle4x128(u0, u4, 0xEE);
        var y1 = Avx512F.Shuffle4x128(u1, u5, 0xEE);
        var y2 = Avx512F.Shuffle4x128(u2, u6, 0xEE);
        var y3 = Avx512F.Shuffle4x128(u3, u7, 0xEE);

        // Columns (4l + s, 4l + s + 1), s even: lane l of u[s], u[4 + s], u[s + 1], u[5 + s].
        Avx512F.Shuffle4x128(x0, x1, 0x88).StoreUnsafe(ref dst);
        Avx512F.Shuffle4x128(x2, x3, 0x88).StoreUnsafe(ref dst, 16);
        Avx512F.Shuffle4x128(x0, x1, 0xDD).StoreUnsafe(ref dst, 32);
        Avx512F.Shuffle4x128(x2, x3, 0xDD).StoreUnsafe(ref dst, 48);
        Avx512F.Shuffle4x128(y0, y1, 0x88).StoreUnsafe(ref dst, 64);
        Avx512F.Shuffle4x128(y2, y3, 0x88).StoreUnsafe(ref dst, 80);
        Avx512F.Shuffle4x128(y0, y1, 0xDD).StoreUnsafe(ref dst, 96);
        Avx512F.Shuffle4x128(y2, y3, 0xDD).StoreUnsafe(ref dst, 112);
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for r, q &lt; 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block8x8(ref double src, nint lds, ref double dst, nint ldd)
    {
        var r0 = Vector512.LoadUnsafe(ref src);
        var r1 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var r4 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds));
        var r5 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));
        var r6 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 6 * lds));
        var r7 = Vector512.LoadUnsafe(ref Unsafe.Add(ref src, 7 * lds));

        // t[2g + s] lane l = column 2l + s, rows 2g, 2g + 1.
        var t0 = Avx512F.UnpackLow(r0, r1);
        var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3);
        var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5);
        var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7);
        var t7 = Avx512F.UnpackHigh(r6, r7);

        // Column q = 2l + s gathers lane l of t[s], t[2 + s], t[4 + s], t[6 + s].
        Lanes(t0, t2, t4, t6, ref dst, 0, ldd);
        Lanes(t1, t3, t5, t7, ref dst, 1, ldd);
    }

    /// <summary>Two unpack stages on four rows: result s, lane l = column 4l + s of the four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>, Vector512<float>, Vector512<float>) Quad(Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3)
    {
        var t0 = Avx512F.UnpackLow(r0, r1).AsDouble();
        var t1 = Avx512F.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx512F.UnpackLow(r2, r3).AsDouble();
        var t3 = Avx512F.UnpackHigh(r2, r3).AsDouble();
        return (Avx512F.UnpackLow(t0, t2).AsSingle(), Avx512F.UnpackHigh(t0, t2).AsSingle(), Avx512F.UnpackLow(t1, t3).AsSingle(), Avx512F.UnpackHigh(t1, t3).AsSingle());
    }

    /// <summary>
    /// Writes, for l &lt; 4, the vector (lane l of v0, v1, v2, v3) to row (step·l + <paramref name="first"/>) of dst, where
    /// step is the elements per 128-bit lane: 4 for float, 2 for double.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3, ref float dst, nint first, nint ldd)
    {
        var w0 = Avx512F.Shuffle4x128(v0, v1, 0x44);
        var w1 = Avx512F.Shuffle4x128(v0, v1, 0xEE);
        var w2 = Avx512F.Shuffle4x128(v2, v3, 0x44);
        var w3 = Avx512F.Shuffle4x128(v2, v3, 0xEE);
        Avx512F.Shuffle4x128(w0, w2, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, first * ldd));
        Avx512F.Shuffle4x128(w0, w2, 0xDD).StoreUnsafe(ref Unsafe.Add(ref dst, (4 + first) * ldd));
        Avx512F.Shuffle4x128(w1, w3, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, (8 + first) * ldd));
        Avx512F.Shuffle4x128(w1, w3, 0xDD).StoreUnsafe(ref Unsafe.Add(ref dst, (12 + first) * ldd));
    }

    /// <inheritdoc cref="Lanes(Vector512{float}, Vector512{float}, Vector512{float}, Vector512{float}, ref float, nint, nint)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<double> v0, Vector512<double> v1, Vector512<double> v2, Vector512<double> v3, ref double dst, nint first, nint ldd)
    {
        var w0 = Avx512F.Shuffle4x128(v0, v1, 0x44);
        var w1 = Avx512F.Shuffle4x128(v0, v1, 0xEE);
        var w2 = Avx512F.Shuffle4x128(v2, v3, 0x44);
        var w3 = Avx512F.Shuffle4x128(v2, v3, 0xEE);
        Avx512F.Shuffle4x128(w0, w2, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, first * ldd));
        Avx512F.Shuffle4x128(w0, w2, 0xDD).StoreUnsafe(ref Unsafe.Add(ref dst, (2 + first) * ldd));
        Avx512F.Shuffle4x128(w1, w3, 0x88).StoreUnsafe(ref Unsafe.Add(ref dst, (4 + first) * ldd));
        Avx512F.Shuffle4x128(w1, w3, 0xDD).StoreUnsafe(ref Unsafe.Add(ref dst, (6 + first) * ldd));
    }
}

/// <summary>
/// In-register block transposes with AVX shuffles (256-bit vectors), for the packing of the 256-bit micro-kernel
/// (MR = 6 rows, NR = 2 vectors): the square blocks of a transposed B, and the 6-row panels of A.
/// </summary>
internal static class Transpose256
{
    /// <summary>
    /// The square block of one 256-bit vector's width (8×8 float32 or 4×4 float64):
    /// dst[q·ldd + r] = src[r·lds + q] for r, q &lt; Vector256&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Square<T>(ref T src, nint lds, ref T dst, nint ldd)
    {
        if (typeof(T) == typeof(float))
        {
            Block8x8(ref Unsafe.As<T, float>(ref src), lds, ref Unsafe.As<T, float>(ref dst), ldd);
        }
        else
        {
            Block4x4(ref Unsafe.As<T, double>(ref src), lds, ref Unsafe.As<T, double>(ref dst), ldd);
        }
    }

    /// <summary>
    /// Six rows by one 256-bit vector of columns into 6·Vector256&lt;T&gt;.Count contiguous elements:
    /// dst[q·6 + r] = src[r·lds + q] for r &lt; 6, q &lt; Vector256&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Panel6<T>(ref T src, nint lds, ref T dst)
    {
        if (typeof(T) == typeof(float))
        {
            Panel6x8(ref Unsafe.As<T, float>(ref src), lds, ref Unsafe.As<T, float>(ref dst));
        }
        else
        {
            Panel6x4(ref Unsafe.As<T, double>(ref src), lds, ref Unsafe.As<T, double>(ref dst));
        }
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for r, q &lt; 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block8x8(ref float src, nint lds, ref float dst, nint ldd)
    {
        var (u0, u1, u2, u3) = Quad(ref src, lds);
        var (u4, u5, u6, u7) = Quad(ref Unsafe.Add(ref src, 4 * lds), lds);

        // Lane h of u[s] is column 4h + s of rows 0-3, of u[4 + s] the same column of rows 4-7.
        Avx.Permute2x128(u0, u4, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(u1, u5, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, ldd));
        Avx.Permute2x128(u2, u6, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ldd));
        Avx.Permute2x128(u3, u7, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ldd));
        Avx.Permute2x128(u0, u4, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 4 * ldd));
        Avx.Permute2x128(u1, u5, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 5 * ldd));
        Avx.Permute2x128(u2, u6, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 6 * ldd));
        Avx.Permute2x128(u3, u7, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 7 * ldd));
    }

    /// <summary>dst[q·6 + r] = src[r·lds + q] for r &lt; 6, q &lt; 8: 48 contiguous elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Panel6x8(ref float src, nint lds, ref float dst)
    {
        var (u0, u1, u2, u3) = Quad(ref src, lds);
        var r4 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds));
        var r5 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));

        // Lane h of v[s] starts with column 4h + s of rows 4 and 5.
        var v0 = Avx.UnpackLow(r4, r5);
        var v2 = Avx.UnpackHigh(r4, r5);
        var v1 = Avx.Shuffle(v0, v0, 0xEE);
        var v3 = Avx.Shuffle(v2, v2, 0xEE);

        // Column q takes 6 elements at 6q; each store of 8 writes 2 past it, which the next column's store overwrites.
        Avx.Permute2x128(u0, v0, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(u1, v1, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 6));
        Avx.Permute2x128(u2, v2, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 12));
        Avx.Permute2x128(u3, v3, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 18));
        Avx.Permute2x128(u0, v0, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 24));
        Avx.Permute2x128(u1, v1, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 30));
        Avx.Permute2x128(u2, v2, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 36));
        u3.GetUpper().StoreUnsafe(ref Unsafe.Add(ref dst, 42));
        Unsafe.WriteUnaligned(ref Unsafe.As<float, byte>(ref Unsafe.Add(ref dst, 46)), v3.GetUpper().AsDouble().ToScalar());
    }

    /// <summary>dst[q·ldd + r] = src[r·lds + q] for r, q &lt; 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block4x4(ref double src, nint lds, ref double dst, nint ldd)
    {
        var (t0, t1, t2, t3) = Pairs(ref src, lds);
        Avx.Permute2x128(t0, t2, 0x20).StoreUnsafe(ref dst);
        Avx.Permute2x128(t1, t3, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, ldd));
        Avx.Permute2x128(t0, t2, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 2 * ldd));
        Avx.Permute2x128(t1, t3, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 3 * ldd));
    }

    /// <summary>dst[q·6 + r] = src[r·lds + q] for r &lt; 6, q &lt; 4: 24 contiguous elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Panel6x4(ref double src, nint lds, ref double dst)
    {
        var (t0, t1, t2, t3) = Pairs(ref src, lds);
        var r4 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 4 * lds));
        var r5 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 5 * lds));

        // Lane h of t4 is column 2h of rows 4 and 5, of t5 column 2h + 1.
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        Avx.Permute2x128(t0, t2, 0x20).StoreUnsafe(ref dst);
        t4.GetLower().StoreUnsafe(ref Unsafe.Add(ref dst, 4));
        Avx.Permute2x128(t1, t3, 0x20).StoreUnsafe(ref Unsafe.Add(ref dst, 6));
        t5.GetLower().StoreUnsafe(ref Unsafe.Add(ref dst, 10));
        Avx.Permute2x128(t0, t2, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 12));
        t4.GetUpper().StoreUnsafe(ref Unsafe.Add(ref dst, 16));
        Avx.Permute2x128(t1, t3, 0x31).StoreUnsafe(ref Unsafe.Add(ref dst, 18));
        t5.GetUpper().StoreUnsafe(ref Unsafe.Add(ref dst, 22));
    }

    /// <summary>Four rows of 8 float32, two unpack stages: lane h of result s is column 4h + s of the four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>, Vector256<float>, Vector256<float>) Quad(ref float src, nint lds)
    {
        var r0 = Vector256.LoadUnsafe(ref src);
        var r1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var t0 = Avx.UnpackLow(r0, r1).AsDouble();
        var t1 = Avx.UnpackHigh(r0, r1).AsDouble();
        var t2 = Avx.UnpackLow(r2, r3).AsDouble();
        var t3 = Avx.UnpackHigh(r2, r3).AsDouble();
        return (Avx.UnpackLow(t0, t2).AsSingle(), Avx.UnpackHigh(t0, t2).AsSingle(), Avx.UnpackLow(t1, t3).AsSingle(), Avx.UnpackHigh(t1, t3).AsSingle());
    }

    /// <summary>
    /// Four rows of 4 float64, one unpack stage: lane h of t0 is column 2h of rows 0 and 1, of t1 column 2h + 1; t2, t3
    /// the same for rows 2 and 3.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<double>, Vector256<double>, Vector256<double>, Vector256<double>) Pairs(ref double src, nint lds)
    {
        var r0 = Vector256.LoadUnsafe(ref src);
        var r1 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector256.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        return (Avx.UnpackLow(r0, r1), Avx.UnpackHigh(r0, r1), Avx.UnpackLow(r2, r3), Avx.UnpackHigh(r2, r3));
    }
}

/// <summary>
/// In-register block transposes on 128-bit vectors (SSE on x86, AdvSIMD on ARM64), for the packing of the 128-bit
/// micro-kernel (MR = 6 rows, NR = 2 vectors): the square blocks of a transposed B, and the 6-row panels of A.
/// </summary>
internal static class Transpose128
{
    /// <summary>True when the interleaving instructions these transposes use are there (SSE2 or AdvSIMD on ARM64).</summary>
    public static bool IsSupported => Sse2.IsSupported || AdvSimd.Arm64.IsSupported;

    /// <summary>
    /// The square block of one 128-bit vector's width (4×4 float32 or 2×2 float64):
    /// dst[q·ldd + r] = src[r·lds + q] for r, q &lt; Vector128&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Square<T>(ref T src, nint lds, ref T dst, nint ldd)
    {
        if (typeof(T) == typeof(float))
        {
            ref var s = ref Unsafe.As<T, float>(ref src);
            ref var d = ref Unsafe.As<T, float>(ref dst);
            var (c0, c1, c2, c3) = Quad(ref s, lds);
            c0.StoreUnsafe(ref d);
            c1.StoreUnsafe(ref Unsafe.Add(ref d, ldd));
            c2.StoreUnsafe(ref Unsafe.Add(ref d, 2 * ldd));
            c3.StoreUnsafe(ref Unsafe.Add(ref d, 3 * ldd));
        }
        else
        {
            ref var s = ref Unsafe.As<T, double>(ref src);
            ref var d = ref Unsafe.As<T, double>(ref dst);
            var r0 = Vector128.LoadUnsafe(ref s);
            var r1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, lds));
            Low(r0, r1).StoreUnsafe(ref d);
            High(r0, r1).StoreUnsafe(ref Unsafe.Add(ref d, ldd));
        }
    }

    /// <summary>
    /// Six rows by one 128-bit vector of columns into 6·Vector128&lt;T&gt;.Count contiguous elements:
    /// dst[q·6 + r] = src[r·lds + q] for r &lt; 6, q &lt; Vector128&lt;T&gt;.Count.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Panel6<T>(ref T src, nint lds, ref T dst)
    {
        if (typeof(T) == typeof(float))
        {
            ref var s = ref Unsafe.As<T, float>(ref src);
            ref var d = ref Unsafe.As<T, float>(ref dst);
            var (c0, c1, c2, c3) = Quad(ref s, lds);

            // Rows 4 and 5: column q's pair is 64-bit element q % 2 of the low (q < 2) or high interleave.
            var r4 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 4 * lds));
            var r5 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 5 * lds));
            var p01 = Low(r4, r5).AsDouble();
            var p23 = High(r4, r5).AsDouble();
            c0.StoreUnsafe(ref d);
            Pair(ref Unsafe.Add(ref d, 4), p01.ToScalar());
            c1.StoreUnsafe(ref Unsafe.Add(ref d, 6));
            Pair(ref Unsafe.Add(ref d, 10), p01.GetElement(1));
            c2.StoreUnsafe(ref Unsafe.Add(ref d, 12));
            Pair(ref Unsafe.Add(ref d, 16), p23.ToScalar());
            c3.StoreUnsafe(ref Unsafe.Add(ref d, 18));
            Pair(ref Unsafe.Add(ref d, 22), p23.GetElement(1));
        }
        else
        {
            ref var s = ref Unsafe.As<T, double>(ref src);
            ref var d = ref Unsafe.As<T, double>(ref dst);
            var r0 = Vector128.LoadUnsafe(ref s);
            var r1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, lds));
            var r2 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 2 * lds));
            var r3 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 3 * lds));
            var r4 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 4 * lds));
            var r5 = Vector128.LoadUnsafe(ref Unsafe.Add(ref s, 5 * lds));
            Low(r0, r1).StoreUnsafe(ref d);
            Low(r2, r3).StoreUnsafe(ref Unsafe.Add(ref d, 2));
            Low(r4, r5).StoreUnsafe(ref Unsafe.Add(ref d, 4));
            High(r0, r1).StoreUnsafe(ref Unsafe.Add(ref d, 6));
            High(r2, r3).StoreUnsafe(ref Unsafe.Add(ref d, 8));
            High(r4, r5).StoreUnsafe(ref Unsafe.Add(ref d, 10));
        }
    }

    /// <summary>Four rows of 4 float32 transposed: result q is column q of the four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector128<float>, Vector128<float>, Vector128<float>, Vector128<float>) Quad(ref float src, nint lds)
    {
        var r0 = Vector128.LoadUnsafe(ref src);
        var r1 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, lds));
        var r2 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, 2 * lds));
        var r3 = Vector128.LoadUnsafe(ref Unsafe.Add(ref src, 3 * lds));
        var t0 = Low(r0, r1).AsDouble();
        var t1 = High(r0, r1).AsDouble();
        var t2 = Low(r2, r3).AsDouble();
        var t3 = High(r2, r3).AsDouble();
        return (Low(t0, t2).AsSingle(), High(t0, t2).AsSingle(), Low(t1, t3).AsSingle(), High(t1, t3).AsSingle());
    }

    /// <summary>Two float32 held as one 64-bit value, written at <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(ref float dst, double bits) => Unsafe.WriteUnaligned(ref Unsafe.As<float, byte>(ref dst), bits);

    /// <summary>The interleave of the low halves: (x0, y0, x1, y1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Low(Vector128<float> x, Vector128<float> y)
        => Sse.IsSupported ? Sse.UnpackLow(x, y) : AdvSimd.Arm64.ZipLow(x, y);

    /// <summary>The interleave of the high halves: (x2, y2, x3, y3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> High(Vector128<float> x, Vector128<float> y)
        => Sse.IsSupported ? Sse.UnpackHigh(x, y) : AdvSimd.Arm64.ZipHigh(x, y);

    /// <summary>(x0, y0).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> Low(Vector128<double> x, Vector128<double> y)
        => Sse2.IsSupported ? Sse2.UnpackLow(x, y) : AdvSimd.Arm64.ZipLow(x, y);

    /// <summary>(x1, y1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> High(Vector128<double> x, Vector128<double> y)
        => Sse2.IsSupported ? Sse2.UnpackHigh(x, y) : AdvSimd.Arm64.ZipHigh(x, y);
}
