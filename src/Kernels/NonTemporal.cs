using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// float32 row writers whose 512-bit stores bypass the caches (non-temporal), for results larger than the L2 cache
/// that are written once and not read again by the next kernel (a gradient; not a forward output, which its backward
/// reads: streaming the softmax forward measured slower end to end). A new large tensor lives in memory no cache holds; an ordinary store first reads each line
/// from memory, a non-temporal store does not, which halves the traffic of the write. Each element is computed exactly
/// as the ordinary kernels compute it (one rounding per operation, no fused multiply-add), so results do not depend on
/// the choice. Callers call <see cref="Fence"/> before other threads may read what was written.
/// </summary>
internal static unsafe class NonTemporal
{
    /// <summary>The result size in bytes from which kernels stream their stores: about one core's L2 cache.</summary>
    public const long ThresholdBytes = 2L << 20;

    /// <summary>True when the 512-bit stores are available (AVX-512F).</summary>
    public static bool IsSupported => Avx512F.IsSupported;

    /// <summary>
    /// dst = (g + a) ⊙ y, as <c>TensorPrimitives.AddMultiply</c> computes it (the softmax backward of a row whose
    /// Σ g⊙y is −<paramref name="a"/>; adding −dot rather than subtracting dot keeps even the sign of a NaN the same).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddMultiply(ReadOnlySpan<float> g, float a, ReadOnlySpan<float> y, Span<float> dst)
    {
        var n = dst.Length;
        var va = Vector512.Create(a);
        fixed (float* d = dst)
        {
            ref var gr = ref MemoryMarshal.GetReference(g);
            ref var yr = ref MemoryMarshal.GetReference(y);
            var i = 0;
            for (var head = Head(d, n); i < head; i++)
            {
                d[i] = (Unsafe.Add(ref gr, i) + a) * Unsafe.Add(ref yr, i);
            }

            for (; i <= n - 16; i += 16)
            {
                Vector512.StoreAlignedNonTemporal((Vector512.LoadUnsafe(ref gr, (nuint)i) + va) * Vector512.LoadUnsafe(ref yr, (nuint)i), d + i);
            }

            for (; i < n; i++)
            {
                d[i] = (Unsafe.Add(ref gr, i) + a) * Unsafe.Add(ref yr, i);
            }
        }
    }

    /// <summary>Orders the non-temporal stores before every later store (and so before the signal that work is done).</summary>
    public static void Fence() => Sse.StoreFence();

    /// <summary>The number of elements before the first 64-byte aligned one (at most <paramref name="n"/>).</summary>
    private static int Head(float* d, int n) => Math.Min(n, (int)((64 - ((nint)d & 63)) & 63) / sizeof(float));
}
