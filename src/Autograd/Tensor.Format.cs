using System.Globalization;
using System.Text;

namespace Autograd;

/// <content>Printing in NumPy's layout.</content>
public sealed partial class Tensor
{
    /// <summary>Digits after the decimal point used by <see cref="ToString()"/> (default 4). Per thread.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value outside [0, 17].</exception>
    public static int PrintPrecision
    {
        get => t_printPrecision ?? 4;
        set
        {
            CheckPrecision(nameof(PrintPrecision), value);
            t_printPrecision = value;
        }
    }

    [ThreadStatic]
    private static int? t_printPrecision;

    private static void CheckPrecision(string api, int precision)
    {
        if (precision is < 0 or > 17)
        {
            throw new ArgumentOutOfRangeException(nameof(precision), precision, $"{api}: the precision must be in [0, 17] digits, got {precision}.");
        }
    }

    /// <summary>Tensors with more elements than this are summarised with <c>...</c> (default 1000).</summary>
    public static int PrintThreshold { get; set; } = 1000;

    /// <summary>The values in NumPy's layout with <see cref="PrintPrecision"/> digits, then dtype and tape information.</summary>
    public override string ToString() => ToString(PrintPrecision);

    /// <summary>The values in NumPy's layout (nested brackets, aligned columns) with <paramref name="precision"/> digits after the point.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="precision"/> is outside [0, 17].</exception>
    public string ToString(int precision)
    {
        CheckPrecision(nameof(ToString), precision);
        if (IsDisposed)
        {
            return $"tensor(disposed, shape={Shape}, dtype={DType.Name()})";
        }

        var sb = new StringBuilder();
        sb.Append(FormatValues(precision));
        var meta = new List<string>();
        if (DType != DType.Float64)
        {
            meta.Add($"dtype={DType.Name()}");
        }

        if (Rank > 0 && ElementCount == 0)
        {
            meta.Add($"shape={Shape}");
        }

        if (GradFn is not null)
        {
            meta.Add($"gradFn={GradFn.Name}");
        }
        else if (RequiresGrad)
        {
            meta.Add("requiresGrad=true");
        }

        if (meta.Count > 0)
        {
            sb.Append(' ').Append(string.Join(", ", meta));
        }

        return sb.ToString();
    }

    /// <summary>Only the values in NumPy's layout, with no dtype or tape information.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="precision"/> is outside [0, 17].</exception>
    public string FormatValues(int precision)
    {
        CheckPrecision(nameof(FormatValues), precision);
        var summarise = ElementCount > PrintThreshold;
        var values = new List<double>();
        CollectShown(0, 0, summarise, values);
        var fmt = ChooseFormat(values, DType, precision);
        var width = 0;
        foreach (var v in values)
        {
            width = Math.Max(width, FormatOne(v, fmt).Length);
        }

        var sb = new StringBuilder();
        WriteLevel(sb, 0, 0, summarise, fmt, width);
        return sb.ToString();
    }

    private void CollectShown(int dim, int offset, bool summarise, List<double> values)
    {
        if (dim == Rank)
        {
            values.Add(GetFlat(offset));
            return;
        }

        foreach (var i in ShownIndices(Shape[dim], summarise))
        {
            if (i >= 0)
            {
                CollectShown(dim + 1, offset + (i * Shape.Strides[dim]), summarise, values);
            }
        }
    }

    private static IEnumerable<int> ShownIndices(int n, bool summarise)
    {
        const int edge = 3;
        if (!summarise || n <= 2 * edge)
        {
            for (var i = 0; i < n; i++)
            {
                yield return i;
            }

            yield break;
        }

        for (var i = 0; i < edge; i++)
        {
            yield return i;
        }

        yield return -1; // the ellipsis
        for (var i = n - edge; i < n; i++)
        {
            yield return i;
        }
    }

    /// <summary>The .NET format NumPy would choose for these values: fixed-point, or scientific when they span too many orders.</summary>
    internal static string ChooseFormat(IEnumerable<double> values, DType dtype, int precision)
    {
        if (dtype == DType.Int64)
        {
            return "D";
        }

        double maxAbs = 0, minAbs = double.PositiveInfinity;
        foreach (var v in values)
        {
            if (double.IsFinite(v) && v != 0)
            {
                maxAbs = Math.Max(maxAbs, Math.Abs(v));
                minAbs = Math.Min(minAbs, Math.Abs(v));
            }
        }

        var scientific = maxAbs >= 1e8 || (minAbs < Math.Pow(10, -precision) && minAbs > 0 && maxAbs / minAbs > 1e3);
        return (scientific ? "E" : "F") + precision.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>One value in the chosen format, with NumPy's spelling of nan, inf and exponents.</summary>
    internal static string FormatOne(double v, string fmt)
    {
        if (double.IsNaN(v))
        {
            return "nan";
        }

        if (double.IsInfinity(v))
        {
            return v > 0 ? "inf" : "-inf";
        }

        if (fmt == "D")
        {
            return ((long)v).ToString(CultureInfo.InvariantCulture);
        }

        var s = v.ToString(fmt, CultureInfo.InvariantCulture);
        if (fmt[0] == 'E')
        {
            // 1.2345E+003 -> 1.2345e+03, as NumPy prints.
            var e = s.IndexOf('E', StringComparison.Ordinal);
            var exp = int.Parse(s.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            s = s[..e] + "e" + (exp < 0 ? "-" : "+") + Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture);
        }

        return s;
    }

    private void WriteLevel(StringBuilder sb, int dim, int offset, bool summarise, string fmt, int width)
    {
        if (Rank == 0)
        {
            sb.Append(FormatOne(GetFlat(offset), fmt));
            return;
        }

        sb.Append('[');
        var first = true;
        foreach (var i in ShownIndices(Shape[dim], summarise))
        {
            if (!first)
            {
                if (dim == Rank - 1)
                {
                    sb.Append(' ');
                }
                else
                {
                    sb.Append('\n', Rank - 1 - dim).Append(' ', dim + 1);
                }
            }

            first = false;
            if (i < 0)
            {
                sb.Append(dim == Rank - 1 ? "..." : "...");
                continue;
            }

            if (dim == Rank - 1)
            {
                sb.Append(FormatOne(GetFlat(offset + i), fmt).PadLeft(width));
            }
            else
            {
                WriteLevel(sb, dim + 1, offset + (i * Shape.Strides[dim]), summarise, fmt, width);
            }
        }

        sb.Append(']');
    }
}
