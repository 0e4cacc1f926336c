using System.Numerics;
using System.Runtime.CompilerServices;

namespace Autograd.Kernels;

/// <summary>
/// The window geometry of a 2-D pooling over <see cref="Planes"/> planes of <see cref="Height"/>×<see cref="Width"/>
/// (N·C planes of an NCHW tensor), giving <see cref="OutHeight"/>×<see cref="OutWidth"/> outputs per plane. Output
/// (i, j) covers rows i·strideH − padH … + kernelH − 1 and columns j·strideW − padW … + kernelW − 1 of the padded plane.
/// </summary>
public readonly record struct PoolGeometry(
    int Planes, int Height, int Width, int KernelH, int KernelW, int StrideH, int StrideW, int PadH, int PadW, int OutHeight, int OutWidth)
{
    /// <summary>Elements in one input plane.</summary>
    public int PlaneSize => Height * Width;

    /// <summary>Elements in one output plane.</summary>
    public int OutPlaneSize => OutHeight * OutWidth;
}

/// <summary>
/// Max and average pooling over the planes of an NCHW tensor, and the adjoint of the average; large inputs split the
/// planes between the cores.
/// </summary>
public static class PoolKernels
{
    private const int MinPerChunk = Workers.ElementwiseThreshold / 4;

    /// <summary>
    /// y = the maximum of each window, <paramref name="indices"/> = its position in the plane (row·W + column). Padding
    /// counts as −∞; the first maximum in row-major order wins ties, and a NaN counts as the maximum (the last NaN of a window), as in PyTorch.
    /// </summary>
    public static void MaxPool<T>(ReadOnlyMemory<T> x, Memory<T> y, Memory<long> indices, PoolGeometry p)
        where T : unmanaged, IFloatingPointIeee754<T>
        => Workers.For(p.Planes, Chunks(p), new Job<T>(Kind.Max, x, y, indices, p, false));

    /// <summary>
    /// y = the average of each window: the sum of the input values in it divided by kernelH·kernelW
    /// (<paramref name="countIncludePad"/>) or by the number of input elements in it.
    /// </summary>
    public static void AvgPool<T>(ReadOnlyMemory<T> x, Memory<T> y, PoolGeometry p, bool countIncludePad)
        where T : unmanaged, IFloatingPointIeee754<T>
        => Workers.For(p.Planes, Chunks(p), new Job<T>(Kind.Average, x, y, default, p, countIncludePad));

    /// <summary>The adjoint of <see cref="AvgPool{T}(ReadOnlyMemory{T}, Memory{T}, PoolGeometry, bool)"/>: dx = Σ over the windows containing each element of g / divisor.</summary>
    public static void AvgPoolAdjoint<T>(ReadOnlyMemory<T> g, Memory<T> dx, PoolGeometry p, bool countIncludePad)
        where T : unmanaged, IFloatingPointIeee754<T>
        => Workers.For(p.Planes, Chunks(p), new Job<T>(Kind.Adjoint, g, dx, default, p, countIncludePad));

    private static int Chunks(in PoolGeometry p) => Workers.Chunks((long)p.Planes * p.OutPlaneSize * p.KernelH * p.KernelW, MinPerChunk);

    private enum Kind
    {
        Max,
        Average,
        Adjoint,
    }

    private readonly struct Job<T>(Kind kind, ReadOnlyMemory<T> src, Memory<T> dst, Memory<long> indices, PoolGeometry p, bool countIncludePad) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            var sub = p with { Planes = end - start };
            var (inSize, outSize) = (p.PlaneSize, p.OutPlaneSize);
            switch (kind)
            {
                case Kind.Max:
                    MaxPool(src.Span.Slice(start * inSize, sub.Planes * inSize), dst.Span.Slice(start * outSize, sub.Planes * outSize), indices.Span.Slice(start * outSize, sub.Planes * outSize), sub);
                    break;
                case Kind.Average:
                    AvgPool(src.Span.Slice(start * inSize, sub.Planes * inSize), dst.Span.Slice(start * outSize, sub.Planes * outSize), sub, countIncludePad);
                    break;
                default:
                    AvgPoolAdjoint(src.Span.Slice(start * outSize, sub.Planes * outSize), dst.Span.Slice(start * inSize, sub.Planes * inSize), sub, countIncludePad);
                    break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaxPool<T>(ReadOnlySpan<T> x, Span<T> y, Span<long> indices, in PoolGeometry p)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (h, w, oh, ow) = (p.Height, p.Width, p.OutHeight, p.OutWidth);
        for (var plane = 0; plane < p.Planes; plane++)
        {
            var src = x.Slice(plane * p.PlaneSize, p.PlaneSize);
            var o = plane * p.OutPlaneSize;
            for (var i = 0; i < oh; i++)
            {
                var r0 = (i * p.StrideH) - p.PadH;
                var r1 = Math.Min(r0 + p.KernelH, h);
                r0 = Math.Max(r0, 0);
                for (var j = 0; j < ow; j++, o++)
                {
                    var c0 = (j * p.StrideW) - p.PadW;
                    var c1 = Math.Min(c0 + p.KernelW, w);
                    c0 = Math.Max(c0, 0);
                    var best = T.NegativeInfinity;
                    var at = (long)((r0 * w) + c0);
                    for (var r = r0; r < r1; r++)
                    {
                        var row = src.Slice(r * w);
                        for (var c = c0; c < c1; c++)
                        {
                            var v = row[c];
                            if (v > best || T.IsNaN(v))
                            {
                                best = v;
                                at = (r * w) + c;
                            }
                        }
                    }

                    y[o] = best;
                    indices[o] = at;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPool<T>(ReadOnlySpan<T> x, Span<T> y, in PoolGeometry p, bool countIncludePad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (h, w, oh, ow) = (p.Height, p.Width, p.OutHeight, p.OutWidth);
        for (var plane = 0; plane < p.Planes; plane++)
        {
            var src = x.Slice(plane * p.PlaneSize, p.PlaneSize);
            var o = plane * p.OutPlaneSize;
            for (var i = 0; i < oh; i++)
            {
                var (r0, r1) = Window(i, p.StrideH, p.PadH, p.KernelH, h);
                for (var j = 0; j < ow; j++, o++)
                {
                    var (c0, c1) = Window(j, p.StrideW, p.PadW, p.KernelW, w);
                    var sum = T.Zero;
                    for (var r = r0; r < r1; r++)
                    {
                        foreach (var v in src.Slice((r * w) + c0, c1 - c0))
                        {
                            sum += v;
                        }
                    }

                    y[o] = sum / Divisor<T>(p, r1 - r0, c1 - c0, countIncludePad);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AvgPoolAdjoint<T>(ReadOnlySpan<T> g, Span<T> dx, in PoolGeometry p, bool countIncludePad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var (h, w, oh, ow) = (p.Height, p.Width, p.OutHeight, p.OutWidth);
        dx.Clear();
        for (var plane = 0; plane < p.Planes; plane++)
        {
            var dst = dx.Slice(plane * p.PlaneSize, p.PlaneSize);
            var o = plane * p.OutPlaneSize;
            for (var i = 0; i < oh; i++)
            {
                var (r0, r1) = Window(i, p.StrideH, p.PadH, p.KernelH, h);
                for (var j = 0; j < ow; j++, o++)
                {
                    var (c0, c1) = Window(j, p.StrideW, p.PadW, p.KernelW, w);
                    var share = g[o] / Divisor<T>(p, r1 - r0, c1 - c0, countIncludePad);
                    for (var r = r0; r < r1; r++)
                    {
                        foreach (ref var v in dst.Slice((r * w) + c0, c1 - c0))
                        {
                            v += share;
                        }
                    }
                }
            }
        }
    }

    private static (int Start, int End) Window(int i, int stride, int pad, int kernel, int size)
    {
        var s = (i * stride) - pad;
        return (Math.Max(s, 0), Math.Min(s + kernel, size));
    }

    // With padding at most half the kernel and no ceil mode, a window never reaches past the padded plane, so
    // PyTorch's count_include_pad divisor is the kernel area.
    private static T Divisor<T>(in PoolGeometry p, int rows, int cols, bool countIncludePad)
        where T : unmanaged, IFloatingPointIeee754<T>
        => T.CreateTruncating(countIncludePad ? p.KernelH * p.KernelW : rows * cols);
}
