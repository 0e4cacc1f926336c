using System.Numerics;
using System.Numerics.Tensors;

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
/// onto the image, its adjoint.
/// </summary>
internal static class Im2Col
{
    /// <summary>
    /// col[(c·KH + i)·KW + j, oh·OW + ow] = image[c, oh·SH − PH + i·DH, ow·SW − PW + j·DW], or 0 outside the image.
    /// </summary>
    public static void Expand<T>(ConvWindow g, ReadOnlySpan<T> image, Span<T> col)
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
                    var dst = col.Slice(row * cols, cols);
                    var offW = (j * g.DW) - g.PW;
                    var (owLo, owHi) = ConvWindow.ValidRange(g.OW, g.W, g.SW, offW);
                    if (ohLo > 0)
                    {
                        dst[..(ohLo * g.OW)].Clear();
                    }

                    if (ohHi < g.OH)
                    {
                        dst[(ohHi * g.OW)..].Clear();
                    }

                    for (var oh = ohLo; oh < ohHi; oh++)
                    {
                        var src = plane.Slice(((oh * g.SH) + offH) * g.W, g.W);
                        var line = dst.Slice(oh * g.OW, g.OW);
                        if (owLo > 0)
                        {
                            line[..owLo].Clear();
                        }

                        if (owHi < g.OW)
                        {
                            line[owHi..].Clear();
                        }

                        if (owHi <= owLo)
                        {
                            continue;
                        }

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

    /// <summary>The adjoint of <see cref="Expand{T}"/>: image[c, ih, iw] += every column entry that was read from it.</summary>
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
                    var src = col.Slice(row * cols, cols);
                    var offW = (j * g.DW) - g.PW;
                    var (owLo, owHi) = ConvWindow.ValidRange(g.OW, g.W, g.SW, offW);
                    if (owHi <= owLo)
                    {
                        continue;
                    }

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
        }
    }
}
