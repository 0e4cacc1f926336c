using System.Numerics;
using System.Runtime.CompilerServices;

namespace Autograd.Kernels;

/// <summary>
/// A product whose C has a few columns (a classifier's ten classes) and whose op(A) has its rows in place (A not
/// transposed), computed as dot products along k: each element of C is a vector of partial sums over the row of A and
/// the column of op(B), then the sum of its lanes, then the last k mod L products one by one.
/// </summary>
/// <remarks>
/// The blocked kernel must transpose A to pack it (its rows run along k) and pads C's few columns (or, computed
/// transposed, its few rows) to a whole register tile; here A is read where it lies and no lane multiplies padding. Only
/// op(B) is packed when it is not already stored column by column (a transposed B is), into n rows of k. Each element is
/// summed in the same order whichever tile computes it, so the result does not depend on how a product is split among
/// threads. Tiles of 4 rows × 2 columns keep eight chains of multiply-adds (and 14 vector registers) in flight.
/// </remarks>
internal static class NarrowProduct<T, TV, TL>
    where T : unmanaged, IFloatingPointIeee754<T>
    where TV : struct
    where TL : struct, IGemmLanes<T, TV>
{
    /// <summary>C (+)= A·op(B) for A m×k stored row by row (stride lda); sizes positive, operands validated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int m, int n, int k, ref T a, int lda, ref T b, int ldb, bool transB, ref T c, int ldc, bool accumulate)
    {
        ref var bt = ref b;
        nint ldbt = ldb;
        if (!transB)
        {
            // Column j of op(B) = B(·, j), k elements ldb apart: packed into row j of n rows of k.
            bt = ref Scratch<T>.Get(n * k);
            ldbt = k;
            for (var p = 0; p < k; p++)
            {
                ref var row = ref Unsafe.Add(ref b, (nint)p * ldb);
                for (var j = 0; j < n; j++)
                {
                    Unsafe.Add(ref bt, ((nint)j * k) + p) = Unsafe.Add(ref row, j);
                }
            }
        }

        nint kv = k - (k % (int)TL.Count);
        var i = 0;
        for (; i + 4 <= m; i += 4)
        {
            ref var aRows = ref Unsafe.Add(ref a, (nint)i * lda);
            ref var cRows = ref Unsafe.Add(ref c, (nint)i * ldc);
            var j = 0;
            for (; j + 2 <= n; j += 2)
            {
                Tile4x2(kv, k, ref aRows, lda, ref Unsafe.Add(ref bt, j * ldbt), ldbt, ref Unsafe.Add(ref cRows, j), ldc, accumulate);
            }

            if (j < n)
            {
                Tile4x1(kv, k, ref aRows, lda, ref Unsafe.Add(ref bt, j * ldbt), ref Unsafe.Add(ref cRows, j), ldc, accumulate);
            }
        }

        for (; i < m; i++)
        {
            ref var aRow = ref Unsafe.Add(ref a, (nint)i * lda);
            for (var j = 0; j < n; j++)
            {
                Tile1x1(kv, k, ref aRow, ref Unsafe.Add(ref bt, j * ldbt), ref Unsafe.Add(ref c, ((nint)i * ldc) + j), accumulate);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x2(nint kv, nint k, ref T a0, nint lda, ref T b0, nint ldb, ref T c, nint ldc, bool accumulate)
    {
        ref var a1 = ref Unsafe.Add(ref a0, lda);
        ref var a2 = ref Unsafe.Add(ref a0, 2 * lda);
        ref var a3 = ref Unsafe.Add(ref a0, 3 * lda);
        ref var b1 = ref Unsafe.Add(ref b0, ldb);
        TV c00 = TL.Zero, c01 = TL.Zero, c10 = TL.Zero, c11 = TL.Zero;
        TV c20 = TL.Zero, c21 = TL.Zero, c30 = TL.Zero, c31 = TL.Zero;
        for (nuint p = 0; p < (nuint)kv; p += TL.Count)
        {
            var y0 = TL.Load(ref b0, p);
            var y1 = TL.Load(ref b1, p);
            var x = TL.Load(ref a0, p);
            c00 = TL.Fma(x, y0, c00);
            c01 = TL.Fma(x, y1, c01);
            x = TL.Load(ref a1, p);
            c10 = TL.Fma(x, y0, c10);
            c11 = TL.Fma(x, y1, c11);
            x = TL.Load(ref a2, p);
            c20 = TL.Fma(x, y0, c20);
            c21 = TL.Fma(x, y1, c21);
            x = TL.Load(ref a3, p);
            c30 = TL.Fma(x, y0, c30);
            c31 = TL.Fma(x, y1, c31);
        }

        Put(ref c, accumulate, Finish(c00, ref a0, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, 1), accumulate, Finish(c01, ref a0, ref b1, kv, k));
        Put(ref Unsafe.Add(ref c, ldc), accumulate, Finish(c10, ref a1, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, ldc + 1), accumulate, Finish(c11, ref a1, ref b1, kv, k));
        Put(ref Unsafe.Add(ref c, 2 * ldc), accumulate, Finish(c20, ref a2, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, (2 * ldc) + 1), accumulate, Finish(c21, ref a2, ref b1, kv, k));
        Put(ref Unsafe.Add(ref c, 3 * ldc), accumulate, Finish(c30, ref a3, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, (3 * ldc) + 1), accumulate, Finish(c31, ref a3, ref b1, kv, k));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x1(nint kv, nint k, ref T a0, nint lda, ref T b0, ref T c, nint ldc, bool accumulate)
    {
        ref var a1 = ref Unsafe.Add(ref a0, lda);
        ref var a2 = ref Unsafe.Add(ref a0, 2 * lda);
        ref var a3 = ref Unsafe.Add(ref a0, 3 * lda);
        TV c0 = TL.Zero, c1 = TL.Zero, c2 = TL.Zero, c3 = TL.Zero;
        for (nuint p = 0; p < (nuint)kv; p += TL.Count)
        {
            var y = TL.Load(ref b0, p);
            c0 = TL.Fma(TL.Load(ref a0, p), y, c0);
            c1 = TL.Fma(TL.Load(ref a1, p), y, c1);
            c2 = TL.Fma(TL.Load(ref a2, p), y, c2);
            c3 = TL.Fma(TL.Load(ref a3, p), y, c3);
        }

        Put(ref c, accumulate, Finish(c0, ref a0, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, ldc), accumulate, Finish(c1, ref a1, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, 2 * ldc), accumulate, Finish(c2, ref a2, ref b0, kv, k));
        Put(ref Unsafe.Add(ref c, 3 * ldc), accumulate, Finish(c3, ref a3, ref b0, kv, k));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1x1(nint kv, nint k, ref T a0, ref T b0, ref T c, bool accumulate)
    {
        var acc = TL.Zero;
        for (nuint p = 0; p < (nuint)kv; p += TL.Count)
        {
            acc = TL.Fma(TL.Load(ref a0, p), TL.Load(ref b0, p), acc);
        }

        Put(ref c, accumulate, Finish(acc, ref a0, ref b0, kv, k));
    }

    /// <summary>The lanes' sum, then the products past the last whole vector, one by one in the order of p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Finish(TV acc, ref T a, ref T b, nint kv, nint k)
    {
        var s = TL.Sum(acc);
        for (var p = kv; p < k; p++)
        {
            s += Unsafe.Add(ref a, p) * Unsafe.Add(ref b, p);
        }

        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(ref T c, bool accumulate, T value) => c = accumulate ? c + value : value;
}
