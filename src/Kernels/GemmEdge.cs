using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>The vector operations of <see cref="EdgeTile{T, TV, TL}"/> and <see cref="NarrowProduct{T, TV, TL}"/>, once per vector width.</summary>
/// <typeparam name="T">The element type, float or double.</typeparam>
/// <typeparam name="TV">The vector type over <typeparamref name="T"/>.</typeparam>
internal interface IGemmLanes<T, TV>
    where T : unmanaged
    where TV : struct
{
    /// <summary>The number of lanes.</summary>
    static abstract nuint Count { get; }

    /// <summary>The vector of zeros.</summary>
    static abstract TV Zero { get; }

    /// <summary>Every lane <paramref name="value"/>.</summary>
    static abstract TV Broadcast(T value);

    /// <summary>The lanes at <paramref name="source"/> + <paramref name="index"/>.</summary>
    static abstract TV Load(ref T source, nuint index);

    /// <summary>Writes the lanes at <paramref name="destination"/> + <paramref name="index"/>.</summary>
    static abstract void Store(TV value, ref T destination, nuint index);

    /// <summary>a + b.</summary>
    static abstract TV Add(TV a, TV b);

    /// <summary>x · y + z, as the full micro-kernel of the width computes it (<see cref="GemmMath"/>).</summary>
    static abstract TV Fma(TV x, TV y, TV z);

    /// <summary>The sum of the lanes, in the fixed order of the vector type's <c>Sum</c>.</summary>
    static abstract T Sum(TV v);
}

/// <summary>The 512-bit lanes of the GEMM edge kernels.</summary>
internal readonly struct Lanes512<T> : IGemmLanes<T, Vector512<T>>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static nuint Count => (nuint)Vector512<T>.Count;

    public static Vector512<T> Zero => Vector512<T>.Zero;

    public static Vector512<T> Broadcast(T value) => Vector512.Create(value);

    public static Vector512<T> Load(ref T source, nuint index) => Vector512.LoadUnsafe(ref source, index);

    public static void Store(Vector512<T> value, ref T destination, nuint index) => value.StoreUnsafe(ref destination, index);

    public static Vector512<T> Add(Vector512<T> a, Vector512<T> b) => a + b;

    public static Vector512<T> Fma(Vector512<T> x, Vector512<T> y, Vector512<T> z) => GemmMath.Fma(x, y, z);

    public static T Sum(Vector512<T> v) => Vector512.Sum(v);
}

/// <summary>The 256-bit lanes of the GEMM edge kernels.</summary>
internal readonly struct Lanes256<T> : IGemmLanes<T, Vector256<T>>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static nuint Count => (nuint)Vector256<T>.Count;

    public static Vector256<T> Zero => Vector256<T>.Zero;

    public static Vector256<T> Broadcast(T value) => Vector256.Create(value);

    public static Vector256<T> Load(ref T source, nuint index) => Vector256.LoadUnsafe(ref source, index);

    public static void Store(Vector256<T> value, ref T destination, nuint index) => value.StoreUnsafe(ref destination, index);

    public static Vector256<T> Add(Vector256<T> a, Vector256<T> b) => a + b;

    public static Vector256<T> Fma(Vector256<T> x, Vector256<T> y, Vector256<T> z) => GemmMath.Fma(x, y, z);

    public static T Sum(Vector256<T> v) => Vector256.Sum(v);
}

/// <summary>The 128-bit lanes of the GEMM edge kernels.</summary>
internal readonly struct Lanes128<T> : IGemmLanes<T, Vector128<T>>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static nuint Count => (nuint)Vector128<T>.Count;

    public static Vector128<T> Zero => Vector128<T>.Zero;

    public static Vector128<T> Broadcast(T value) => Vector128.Create(value);

    public static Vector128<T> Load(ref T source, nuint index) => Vector128.LoadUnsafe(ref source, index);

    public static void Store(Vector128<T> value, ref T destination, nuint index) => value.StoreUnsafe(ref destination, index);

    public static Vector128<T> Add(Vector128<T> a, Vector128<T> b) => a + b;

    public static Vector128<T> Fma(Vector128<T> x, Vector128<T> y, Vector128<T> z) => GemmMath.Fma(x, y, z);

    public static T Sum(Vector128<T> v) => Vector128.Sum(v);
}

/// <summary>
/// Short micro-kernels for the last rows of a block when they do not fill the MR-row tile: 2 or 4 rows by the same two
/// vectors of B, so a C of ten rows (a classifier's ten classes, computed transposed) costs ten or twelve rows of
/// multiply-adds on the 512-bit tile of eight rows instead of sixteen.
/// </summary>
/// <remarks>
/// Each element is one accumulator that starts at zero and takes the products in the order of p, as in the full
/// micro-kernels, so an element gets the same bits whichever kernel computes it (a product split among threads cuts its
/// tiles differently from one on one thread). Two rows give four independent chains of multiply-adds: enough to keep one
/// 512-bit FMA pipe busy (AMD Zen 4) but half the rate of two pipes, where they cost what four rows do.
/// </remarks>
internal static class EdgeTile<T, TV, TL>
    where T : unmanaged, IFloatingPointIeee754<T>
    where TV : struct
    where TL : struct, IGemmLanes<T, TV>
{
    /// <summary>
    /// The rows computed for <paramref name="rows"/> rows of a tile of <paramref name="mr"/>: 0 for none, 2 or 4 where
    /// that is fewer than <paramref name="mr"/>, else <paramref name="mr"/>.
    /// </summary>
    public static int Rows(int rows, int mr) => rows == 0 ? 0 : rows <= 2 && mr > 2 ? 2 : rows <= 4 && mr > 4 ? 4 : mr;

    /// <summary>
    /// Computes <see cref="Rows"/>(<paramref name="rows"/>, <paramref name="mr"/>) rows of the tile when that is fewer than
    /// <paramref name="mr"/> (the packed panel's row count) and returns true; false leaves the tile to the full kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Compute(nint kc, int rows, int mr, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var computed = Rows(rows, mr);
        if (computed == mr)
        {
            return false;
        }

        if (computed == 2)
        {
            Two(kc, mr, ref a, ref b, ref c, ldc, add);
        }
        else
        {
            Four(kc, mr, ref a, ref b, ref c, ldc, add);
        }

        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Two(nint kc, nint mr, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var n = TL.Count;
        TV c00 = TL.Zero, c01 = TL.Zero, c10 = TL.Zero, c11 = TL.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = TL.Load(ref b, 0);
            var b1 = TL.Load(ref b, n);
            var a0 = TL.Broadcast(a);
            c00 = TL.Fma(a0, b0, c00);
            c01 = TL.Fma(a0, b1, c01);
            var a1 = TL.Broadcast(Unsafe.Add(ref a, 1));
            c10 = TL.Fma(a1, b0, c10);
            c11 = TL.Fma(a1, b1, c11);
            a = ref Unsafe.Add(ref a, mr);
            b = ref Unsafe.Add(ref b, 2 * (nint)n);
        }

        Store(ref c, add, c00, c01);
        Store(ref Unsafe.Add(ref c, ldc), add, c10, c11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Four(nint kc, nint mr, ref T a, ref T b, ref T c, nint ldc, bool add)
    {
        var n = TL.Count;
        TV c00 = TL.Zero, c01 = TL.Zero, c10 = TL.Zero, c11 = TL.Zero;
        TV c20 = TL.Zero, c21 = TL.Zero, c30 = TL.Zero, c31 = TL.Zero;
        for (nint p = 0; p < kc; p++)
        {
            var b0 = TL.Load(ref b, 0);
            var b1 = TL.Load(ref b, n);
            var a0 = TL.Broadcast(a);
            c00 = TL.Fma(a0, b0, c00);
            c01 = TL.Fma(a0, b1, c01);
            var a1 = TL.Broadcast(Unsafe.Add(ref a, 1));
            c10 = TL.Fma(a1, b0, c10);
            c11 = TL.Fma(a1, b1, c11);
            var a2 = TL.Broadcast(Unsafe.Add(ref a, 2));
            c20 = TL.Fma(a2, b0, c20);
            c21 = TL.Fma(a2, b1, c21);
            var a3 = TL.Broadcast(Unsafe.Add(ref a, 3));
            c30 = TL.Fma(a3, b0, c30);
            c31 = TL.Fma(a3, b1, c31);
            a = ref Unsafe.Add(ref a, mr);
            b = ref Unsafe.Add(ref b, 2 * (nint)n);
        }

        Store(ref c, add, c00, c01);
        Store(ref Unsafe.Add(ref c, ldc), add, c10, c11);
        Store(ref Unsafe.Add(ref c, 2 * ldc), add, c20, c21);
        Store(ref Unsafe.Add(ref c, 3 * ldc), add, c30, c31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(ref T row, bool add, TV v0, TV v1)
    {
        if (add)
        {
            v0 = TL.Add(v0, TL.Load(ref row, 0));
            v1 = TL.Add(v1, TL.Load(ref row, TL.Count));
        }

        TL.Store(v0, ref row, 0);
        TL.Store(v1, ref row, TL.Count);
    }
}
