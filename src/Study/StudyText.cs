using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Autograd.Study;

/// <summary>Text helpers shared by the study tools: numbers, shapes and dtypes as they print in listings and traces.</summary>
/// <remarks>
/// Nothing here creates a <see cref="Tensor"/>: the tools run inside <see cref="TapeObserver"/> callbacks, where a new
/// tensor would raise events to every attached observer.
/// </remarks>
internal static class StudyText
{
    /// <summary>How many leading and trailing elements a summarised tensor shows.</summary>
    private const int Edge = 3;

    /// <summary>The short dtype name used in listings: <c>f64</c>, <c>f32</c>, <c>i64</c>.</summary>
    public static string Short(DType dtype) => dtype switch
    {
        DType.Float64 => "f64",
        DType.Float32 => "f32",
        DType.Int64 => "i64",
        _ => dtype.ToString(),
    };

    /// <summary>The values of <paramref name="t"/> on one line, e.g. <c>[1.0000 2.0000]</c>; summarised above <paramref name="maxElements"/>.</summary>
    /// <param name="t">The tensor.</param>
    /// <param name="precision">Digits after the decimal point.</param>
    /// <param name="maxElements">Above this many elements only the first and last three are shown.</param>
    /// <param name="elementWidth">Every element is padded to at least this width (see <see cref="ElementWidth(Tensor, int, int)"/>), to line up rows.</param>
    public static string Values(Tensor t, int precision, int maxElements, int elementWidth = 0)
        => Values(t.ToArray(), t.Shape, t.DType, precision, maxElements, elementWidth);

    /// <summary>The width of the widest element <see cref="Values(Tensor, int, int, int)"/> prints for <paramref name="t"/>.</summary>
    public static int ElementWidth(Tensor t, int precision, int maxElements) => ElementWidth(t.ToArray(), t.DType, precision, maxElements);

    /// <summary>The width of the widest element printed for <paramref name="values"/>.</summary>
    public static int ElementWidth(double[] values, DType dtype, int precision, int maxElements)
    {
        var cells = Cells(values, dtype, precision, maxElements);
        return cells.Length == 0 ? 0 : cells.Max(c => c.Length);
    }

    /// <summary>
    /// The values on one line: nested brackets for rank ≥ 2, every element padded to one width so that rows of
    /// numbers line up; above <paramref name="maxElements"/> elements only the first and last few, then the count.
    /// A value that rounds to zero prints as an unsigned zero, so that rounding noise (±1e-17) reads as the 0 it is.
    /// </summary>
    public static string Values(double[] values, Shape shape, DType dtype, int precision, int maxElements, int elementWidth = 0)
    {
        var cells = Cells(values, dtype, precision, maxElements);
        var width = Math.Max(elementWidth, cells.Length == 0 ? 0 : cells.Max(p => p.Length));
        if (cells.Length < values.Length)
        {
            var head = string.Join(" ", cells.Take(Edge).Select(p => p.PadLeft(width)));
            var tail = string.Join(" ", cells.Skip(Edge).Select(p => p.PadLeft(width)));
            return string.Create(CultureInfo.InvariantCulture, $"[{head} ... {tail}] ({values.Length} elements)");
        }

        if (shape.Rank == 0)
        {
            return cells.Length == 1 ? cells[0].PadLeft(width) : "[]";
        }

        var sb = new StringBuilder();
        var index = 0;
        WriteLevel(sb, shape, 0, cells, width, ref index);
        return sb.ToString();
    }

    /// <summary>The shape and dtype, e.g. <c>[9] f64</c>.</summary>
    public static string ShapeAndType(Shape shape, DType dtype) => $"{shape} {Short(dtype)}";

    /// <summary>
    /// Pads every row's cells to the widest cell of their column (the last cell is not padded); <paramref name="separators"/>[i]
    /// goes between columns i and i + 1 (the last one repeats).
    /// </summary>
    public static List<string> Columns(IEnumerable<string[]> rows, string[] separators)
    {
        var list = rows.ToList();
        var widths = new List<int>();
        foreach (var row in list)
        {
            for (var i = 0; i < row.Length; i++)
            {
                if (widths.Count <= i)
                {
                    widths.Add(0);
                }

                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }

        var lines = new List<string>(list.Count);
        foreach (var row in list)
        {
            var sb = new StringBuilder();
            for (var i = 0; i < row.Length; i++)
            {
                if (i > 0)
                {
                    sb.Append(separators[Math.Min(i - 1, separators.Length - 1)]);
                }

                sb.Append(i == row.Length - 1 ? row[i] : row[i].PadRight(widths[i]));
            }

            lines.Add(sb.ToString().TrimEnd());
        }

        return lines;
    }

    /// <summary>The formatted elements, or only the first and last three when there are more than <paramref name="maxElements"/>.</summary>
    private static string[] Cells(double[] values, DType dtype, int precision, int maxElements)
    {
        var shown = values.Length > Math.Max(maxElements, 2 * Edge) ? [.. values.Take(Edge), .. values.Skip(values.Length - Edge)] : values;
        var fmt = ChooseFormat(shown, dtype, precision);
        return [.. shown.Select(v => FormatOne(v, fmt))];
    }

    private static void WriteLevel(StringBuilder sb, Shape shape, int dim, string[] parts, int width, ref int index)
    {
        sb.Append('[');
        for (var i = 0; i < shape[dim]; i++)
        {
            if (i > 0)
            {
                sb.Append(' ');
            }

            if (dim == shape.Rank - 1)
            {
                sb.Append(parts[index++].PadLeft(width));
            }
            else
            {
                WriteLevel(sb, shape, dim + 1, parts, width, ref index);
            }
        }

        sb.Append(']');
    }

    private static string ChooseFormat(double[] values, DType dtype, int precision) => Tensor.ChooseFormat(values, dtype, precision);

    private static string FormatOne(double v, string fmt)
    {
        // -0.0000 (negative zero, or a tiny negative value) prints as 0.0000.
        var s = Tensor.FormatOne(v == 0 ? 0 : v, fmt);
        return s.StartsWith('-') && s.AsSpan(1).IndexOfAnyExcept("0.") < 0 ? s[1..] : s;
    }
}

/// <summary>Helpers for what a node's backward rule saved (see <see cref="Node.SavedTensor"/>).</summary>
internal static class SavedTensors
{
    /// <summary>True when two tensors view the same elements (one may be a reshaped alias of the other).</summary>
    public static bool SameData(Tensor a, Tensor b)
    {
        if (ReferenceEquals(a, b))
        {
            return true;
        }

        if (a.DType != b.DType || a.ElementCount != b.ElementCount || a.ElementCount == 0)
        {
            return false;
        }

        return a.DType switch
        {
            DType.Float64 => Unsafe(a.AsSpan<double>(), b.AsSpan<double>()),
            DType.Float32 => Unsafe(a.AsSpan<float>(), b.AsSpan<float>()),
            _ => Unsafe(a.AsSpan<long>(), b.AsSpan<long>()),
        };

        static bool Unsafe<T>(ReadOnlySpan<T> x, ReadOnlySpan<T> y)
            => System.Runtime.CompilerServices.Unsafe.AreSame(ref MemoryMarshal.GetReference(x), ref MemoryMarshal.GetReference(y));
    }
}

/// <summary>A reference that is strong or weak, as a recorder was asked.</summary>
internal readonly struct Held<T>
    where T : class
{
    private readonly object? _target;

    public Held(T? value, bool weak) => _target = value is null ? null : weak ? new WeakReference<T>(value) : value;

    public T? Get() => _target switch
    {
        WeakReference<T> w => w.TryGetTarget(out var t) ? t : null,
        _ => (T?)_target,
    };
}
