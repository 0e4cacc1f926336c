using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>
/// The softmax backward's two row loops, Σ g⊙y and dx = (g − Σ g⊙y) ⊙ y, on 256-bit vectors, which the 512-bit path
/// runs as well. Both loops do one or two operations per element loaded, so memory sets their speed, and a .NET array's
/// elements are only 8-byte aligned: a 512-bit load from such an array spans two cache lines every time, a 256-bit load
/// every other time. On the AMD EPYC (Zen 5) VM, a backward of a kept graph (1024×1024, a new result per call) took a
/// median of 156–170 → 113–121 µs in float32 and 440–540 → 264–344 µs in float64 with these loops instead of the
/// 512-bit ones (docs/design.md, "Softmax, three ways"). The stores are aligned to 32 bytes (the new result is rarely
/// in any cache, and a store that spans two lines costs two); each element is computed the same way wherever it lies,
/// so where the array lies changes no result.
/// </summary>
internal static unsafe class Rows256
{
    /// <summary>Whether the backward rows run here: on the 512- and 256-bit paths (<see cref="FastExp.Bits"/>).</summary>
    public static bool Applies => FastExp.Bits >= 256;

    /// <summary>
    /// Σ a ⊙ b in four independent 256-bit accumulators of multiply-adds (fused where the CPU has FMA) whose lanes are
    /// summed at the end; for float32 exactly <see cref="FastExp.Dot"/> on 256-bit vectors.
    /// </summary>
    public static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var dot = FastExp.Dot256(MemoryMarshal.Cast<T, float>(a), MemoryMarshal.Cast<T, float>(b));
            return Unsafe.As<float, T>(ref dot);
        }

        var d = Dot(MemoryMarshal.Cast<T, double>(a), MemoryMarshal.Cast<T, double>(b));
        return Unsafe.As<double, T>(ref d);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        const int w = 4;
        var n = a.Length;
        _ = b[..n];
        ref var ar = ref MemoryMarshal.GetReference(a);
        ref var br = ref MemoryMarshal.GetReference(b);
        var s0 = Vector256<double>.Zero;
        var s1 = s0;
        var s2 = s0;
        var s3 = s0;
        var i = 0;
        for (; i <= n - (4 * w); i += 4 * w)
        {
            s0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref ar, (nuint)i), Vector256.LoadUnsafe(ref br, (nuint)i), s0);
            s1 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref ar, (nuint)(i + w)), Vector256.LoadUnsafe(ref br, (nuint)(i + w)), s1);
            s2 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref ar, (nuint)(i + (2 * w))), Vector256.LoadUnsafe(ref br, (nuint)(i + (2 * w))), s2);
            s3 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref ar, (nuint)(i + (3 * w))), Vector256.LoadUnsafe(ref br, (nuint)(i + (3 * w))), s3);
        }

        for (; i <= n - w; i += w)
        {
            s0 = Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref ar, (nuint)i), Vector256.LoadUnsafe(ref br, (nuint)i), s0);
        }

        var sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        for (; i < n; i++)
        {
            sum = VectorMath.MultiplyAdd(Unsafe.Add(ref ar, i), Unsafe.Add(ref br, i), sum);
        }

        return sum;
    }

    /// <summary>
    /// dst = (g + a) ⊙ y, each element rounded as <c>TensorPrimitives.AddMultiply</c> rounds it (an add, then a
    /// multiply): the softmax backward of a row whose Σ g⊙y is −<paramref name="a"/> (adding −dot rather than
    /// subtracting dot keeps even the sign of a NaN the same).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddMultiply<T>(ReadOnlySpan<T> g, T a, ReadOnlySpan<T> y, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var n = dst.Length;
        _ = g[..n];
        _ = y[..n];
        var w = Vector256<T>.Count;
        var va = Vector256.Create(a);
        ref var gr = ref MemoryMarshal.GetReference(g);
        ref var yr = ref MemoryMarshal.GetReference(y);
        fixed (T* d = dst)
        {
            var i = 0;
            for (var head = Math.Min(n, (int)((32 - ((nint)d & 31)) & 31) / sizeof(T)); i < head; i++)
            {
                d[i] = (Unsafe.Add(ref gr, i) + a) * Unsafe.Add(ref yr, i);
            }

            for (; i <= n - (2 * w); i += 2 * w)
            {
                Vector256.StoreAligned((Vector256.LoadUnsafe(ref gr, (nuint)i) + va) * Vector256.LoadUnsafe(ref yr, (nuint)i), d + i);
                Vector256.StoreAligned((Vector256.LoadUnsafe(ref gr, (nuint)(i + w)) + va) * Vector256.LoadUnsafe(ref yr, (nuint)(i + w)), d + i + w);
            }

            for (; i <= n - w; i += w)
            {
                Vector256.StoreAligned((Vector256.LoadUnsafe(ref gr, (nuint)i) + va) * Vector256.LoadUnsafe(ref yr, (nuint)i), d + i);
            }

            for (; i < n; i++)
            {
                d[i] = (Unsafe.Add(ref gr, i) + a) * Unsafe.Add(ref yr, i);
            }
        }
    }
}
