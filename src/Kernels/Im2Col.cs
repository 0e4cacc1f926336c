using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Autograd.Kernels;

/// <summary>
/// The geometry of a 2-D convolution of one image: <c>C</c> channels of <c>H × W</c>, a <c>KH × KW</c> kernel with the
/// given stride, zero padding and dilation, and the output size <c>OH × OW</c>.
/// </summary>
internal readonly record struct ConvWindow(int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW, int OH, int OW)
{
    /// <summary>The rows of the column matrix: C·KH·KW.</summary>
    public int Rows => C * KH * KW;

    /// <summary>The columns of the column matrix: OH·OW.</summary>
    public int Cols => OH * OW;

    /// <summary>True when the column matrix is the image itself (1×1 kernel, stride 1, no padding).</summary>
    public bool IsPointwise => KH == 1 && KW == 1 && SH == 1 && SW == 1 && PH == 0 && PW == 0;

    /// <summary>
    /// True when every row of the column matrix is the image plane shifted by a constant offset (stride 1 and an output
    /// as wide as the input, as for a "same" convolution): output position t = oh·OW + ow reads the plane at
    /// t + (i·DH − PH)·W + (j·DW − PW), apart from the positions whose window column falls into the padding.
    /// </summary>
    public bool IsShift => SH == 1 && SW == 1 && OW == W;

    /// <summary>The output positions [lo, hi) along one axis whose input index ow·s − p + k·d lies in [0, size).</summary>
    public static (int Lo, int Hi) ValidRange(int outSize, int size, int stride, int offset)
    {
        // offset = k·d − p; input index = o·s + offset.
        var lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
        var last = size - 1 - offset;
        var hi = last < 0 ? 0 : Math.Min(outSize, (last / stride) + 1);
        return (Math.Min(lo, hi), hi);
    }
}

/// <summary>
/// The two rearrangements that turn a convolution into a matrix product: im2col copies every receptive field of an
/// image into a column of a matrix (zeros where the window reaches into the padding), and col2im adds the columns back
/// onto the image, its adjoint. The column matrix may be a block of columns of a wider matrix (row stride
/// <c>ld ≥ Cols</c>), so that several images side by side make one product.
/// </summary>
internal static class Im2Col
{
    /// <summary>
    /// col[(c·KH + i)·KW + j, oh·OW + ow] = image[c, oh·SH − PH + i·DH, ow·SW − PW + j·DW], or 0 outside the image.
    /// </summary>
    public static void Expand<T>(ConvWindow g, ReadOnlySpan<T> image, Span<T> col)
        where T : unmanaged, INumber<T>
        => Expand(g, image, col, g.Cols);

    /// <summary>As <see cref="Expand{T}(ConvWindow, ReadOnlySpan{T}, Span{T})"/>, with row r of the column matrix at col[r·ld ..].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Expand<T>(ConvWindow g, ReadOnlySpan<T> image, Span<T> col, int ld)
        where T : unmanaged, INumber<T>
    {
        var cols = g.Cols;
        var row = 0;
        for (var c = 0; c < g.C; c++)
        {
            var plane = image.Slice(c * g.H * g.W, g.H * g.W);
            for (var i = 0; i < g.KH; i++)
            {
                var offH = (i * g.DH) - g.PH;
                var (ohLo, ohHi) = ConvWindow.ValidRange(g.OH, g.H, g.SH, offH);
                for (var j = 0; j < g.KW; j++, row++)
                {
                    var dst = col.Slice(row * ld, cols);
                    var offW = (j * g.DW) - g.PW;
                    var (owLo, owHi) = ConvWindow.ValidRange(g.OW, g.W, g.SW, offW);
                    if (owHi <= owLo || ohHi <= ohLo)
                    {
                        dst.Clear();
                        continue;
                    }

                    dst[..(ohLo * g.OW)].Clear();
                    dst[(ohHi * g.OW)..].Clear();
                    if (g.IsShift)
                    {
                        ShiftRow(g, plane, dst, (offH * g.W) + offW, ohLo, ohHi, owLo, owHi);
                        continue;
                    }

                    for (var oh = ohLo; oh < ohHi; oh++)
                    {
                        var src = plane.Slice(((oh * g.SH) + offH) * g.W, g.W);
                        var line = dst.Slice(oh * g.OW, g.OW);
                        line[..owLo].Clear();
                        line[owHi..].Clear();
                        if (g.SW == 1)
                        {
                            src.Slice(owLo + offW, owHi - owLo).CopyTo(line[owLo..owHi]);
                        }
                        else
                        {
                            for (var ow = owLo; ow < owHi; ow++)
                            {
                                line[ow] = src[(ow * g.SW) + offW];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>
    /// The valid output lines [ohLo, ohHi) of one row of the column matrix when it is the plane shifted by
    /// <paramref name="shift"/>: one contiguous copy, then zeros at the window columns outside [owLo, owHi).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ShiftRow<T>(ConvWindow g, ReadOnlySpan<T> plane, Span<T> dst, int shift, int ohLo, int ohHi, int owLo, int owHi)
        where T : unmanaged, INumber<T>
    {
        var (s0, s1) = ShiftRange(g, shift, ohLo, ohHi);
        var lo = ohLo * g.W;
        var hi = ohHi * g.W;
        plane[(s0 + shift)..(s1 + shift)].CopyTo(dst[s0..s1]);

        // Positions before s0 or from s1 would read outside the plane; their columns are all in the padding.
        dst[lo..s0].Clear();
        dst[s1..hi].Clear();
        ClearPadding(g, dst, ohLo, ohHi, owLo, owHi);
    }

    /// <summary>The positions [s0, s1) of the lines [ohLo, ohHi) whose shifted index lies inside the plane.</summary>
    private static (int S0, int S1) ShiftRange(ConvWindow g, int shift, int ohLo, int ohHi)
    {
        var lo = ohLo * g.W;
        var hi = ohHi * g.W;
        var s0 = Math.Clamp(-shift, lo, hi);
        var s1 = Math.Clamp((g.H * g.W) - shift, s0, hi);
        return (s0, s1);
    }

    /// <summary>Zeros, on the lines [ohLo, ohHi) of a row, the window columns outside [owLo, owHi).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ClearPadding<T>(in ConvWindow g, Span<T> row, int ohLo, int ohHi, int owLo, int owHi)
        where T : unmanaged, INumber<T>
    {
        var width = g.OW;
        if ((owLo == 0 && owHi == width) || ohHi <= ohLo)
        {
            return;
        }

        // One bounds check for all lines, then plain stores: a line has only a few padding columns.
        _ = row[(ohHi * width) - 1];
        ref var line = ref Unsafe.Add(ref MemoryMarshal.GetReference(row), (nint)ohLo * width);
        for (var oh = ohLo; oh < ohHi; oh++, line = ref Unsafe.Add(ref line, width))
        {
            for (var ow = 0; ow < owLo; ow++)
            {
                Unsafe.Add(ref line, ow) = T.Zero;
            }

            for (var ow = owHi; ow < width; ow++)
            {
                Unsafe.Add(ref line, ow) = T.Zero;
            }
        }
    }

    /// <summary>The adjoint of <see cref="Expand{T}(ConvWindow, ReadOnlySpan{T}, Span{T})"/>: image[c, ih, iw] += every column entry that was read from it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Fold<T>(ConvWindow g, ReadOnlySpan<T> col, Span<T> image)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var cols = g.Cols;
        var row = 0;
        for (var c = 0; c < g.C; c++)
        {
            var plane = image.Slice(c * g.H * g.W, g.H * g.W);
            for (var i = 0; i < g.KH; i++)
            {
                var offH = (i * g.DH) - g.PH;
                var (ohLo, ohHi) = ConvWindow.ValidRange(g.OH, g.H, g.SH, offH);
                for (var j = 0; j < g.KW; j++, row++)
                {
                    var offW = (j * g.DW) - g.PW;
                    var (owLo, owHi) = ConvWindow.ValidRange(g.OW, g.W, g.SW, offW);
                    if (owHi > owLo)
                    {
                        FoldLines(g, col.Slice(row * cols, cols), plane, offH, offW, ohLo, ohHi, owLo, owHi);
                    }
                }
            }
        }
    }

    /// <summary>
    /// As <see cref="Fold{T}(ConvWindow, ReadOnlySpan{T}, Span{T})"/>, with row r of the column matrix at col[r·ld ..]. The
    /// entries of <paramref name="col"/> that were not read from the image (window columns in the padding) may be
    /// overwritten with zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Fold<T>(ConvWindow g, Span<T> col, Span<T> image, int ld)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var cols = g.Cols;
        var row = 0;
        for (var c = 0; c < g.C; c++)
        {
            var plane = image.Slice(c * g.H * g.W, g.H * g.W);
            for (var i = 0; i < g.KH; i++)
            {
                var offH = (i * g.DH) - g.PH;
                var (ohLo, ohHi) = ConvWindow.ValidRange(g.OH, g.H, g.SH, offH);
                for (var j = 0; j < g.KW; j++, row++)
                {
                    var offW = (j * g.DW) - g.PW;
                    var (owLo, owHi) = ConvWindow.ValidRange(g.OW, g.W, g.SW, offW);
                    if (owHi <= owLo || ohHi <= ohLo)
                    {
                        continue;
                    }

                    var src = col.Slice(row * ld, cols);
                    if (g.IsShift)
                    {
                        // Zero the entries of the padding columns, then add the lines as one shifted run.
                        var shift = (offH * g.W) + offW;
                        ClearPadding(g, src, ohLo, ohHi, owLo, owHi);
                        var (s0, s1) = ShiftRange(g, shift, ohLo, ohHi);
                        var target = plane[(s0 + shift)..(s1 + shift)];
                        TensorPrimitives.Add(target, src[s0..s1], target);
                        continue;
                    }

                    FoldLines(g, src, plane, offH, offW, ohLo, ohHi, owLo, owHi);
                }
            }
        }
    }

    /// <summary>Adds the valid part of one row of the column matrix onto the plane, line by line.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FoldLines<T>(ConvWindow g, ReadOnlySpan<T> src, Span<T> plane, int offH, int offW, int ohLo, int ohHi, int owLo, int owHi)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (var oh = ohLo; oh < ohHi; oh++)
        {
            var dst = plane.Slice(((oh * g.SH) + offH) * g.W, g.W);
            var line = src.Slice(oh * g.OW, g.OW);
            if (g.SW == 1)
            {
                var target = dst.Slice(owLo + offW, owHi - owLo);
                TensorPrimitives.Add(target, line[owLo..owHi], target);
            }
            else
            {
                for (var ow = owLo; ow < owHi; ow++)
                {
                    dst[(ow * g.SW) + offW] += line[ow];
                }
            }
        }
    }
}
