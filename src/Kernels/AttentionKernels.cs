using System.Numerics;
using System.Numerics.Tensors;

namespace Autograd.Kernels;

/// <summary>The scale-and-mask pass of scaled dot-product attention, on the row-major scores [batch, Lq, Lk].</summary>
internal static class AttentionKernels
{
    /// <summary>
    /// s ← s·scale, then −∞ at every masked score: where a boolean mask, read at
    /// <c>batchOffsets[b] + i·strideI + j·strideJ</c>, is false (when <paramref name="masked"/>), and where j &gt; i
    /// (when <paramref name="causal"/>).
    /// </summary>
    /// <returns>Whether some row (of at least one score) has every score masked.</returns>
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
}
