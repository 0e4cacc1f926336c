using System.Globalization;
using System.Text;

namespace Autograd.Nn.Data;

/// <summary>How <see cref="CsvReader"/> reads a table.</summary>
public sealed record CsvOptions
{
    /// <summary>The field separator; a comma by default. Must not be a double quote, a line break or a digit.</summary>
    public char Delimiter { get; init; } = ',';

    /// <summary>
    /// True when the first non-blank line holds column names, false when it is data, null (the default) to decide
    /// from that line: it is a header when none of its fields is a number, data when all are; a line that mixes
    /// numbers and text is refused as ambiguous (a data row with one bad cell must not silently become the header).
    /// </summary>
    public bool? HasHeader { get; init; }

    /// <summary>Lines starting with this character (after leading white space) are skipped; none by default.</summary>
    public char? CommentChar { get; init; }
}

/// <summary>A numeric table read by <see cref="CsvReader"/>.</summary>
/// <param name="Data">The values, float64 [rows, columns].</param>
/// <param name="ColumnNames">The header's names, or <c>column1</c>, <c>column2</c>, … when there was no header.</param>
public sealed record CsvTable(Tensor Data, IReadOnlyList<string> ColumnNames)
{
    /// <summary>The number of data rows.</summary>
    public int RowCount => Data.Shape[0];

    /// <summary>The number of columns.</summary>
    public int ColumnCount => Data.Shape[1];

    /// <summary>The index of the column called <paramref name="name"/> (ordinal comparison).</summary>
    /// <exception cref="KeyNotFoundException">No column has that name.</exception>
    public int ColumnIndex(string name)
    {
        for (var i = 0; i < ColumnNames.Count; i++)
        {
            if (ColumnNames[i] == name)
            {
                return i;
            }
        }

        throw new KeyNotFoundException($"CsvTable: no column '{name}'; the columns are {string.Join(", ", ColumnNames.Select(c => $"'{c}'"))}.");
    }

    /// <summary>A copy of one column as a float64 tensor of shape [rows].</summary>
    /// <exception cref="KeyNotFoundException">No column has that name.</exception>
    public Tensor Column(string name)
    {
        var c = ColumnIndex(name);
        var all = Data.AsSpan<double>();
        var col = new double[RowCount];
        for (var r = 0; r < col.Length; r++)
        {
            col[r] = all[(r * ColumnCount) + c];
        }

        return Tensor.FromArray(col, col.Length);
    }
}

/// <summary>
/// Reads small numeric CSV tables into a float64 tensor. Numbers are parsed with the invariant culture (a dot for
/// the decimal point, whatever the machine's locale); <c>NaN</c>, <c>Infinity</c> and exponents are accepted, but a
/// finite number too large for float64 (such as <c>1e999</c>) is refused rather than read as infinity. Column names
/// must be distinct. Fields
/// may be enclosed in double quotes (a doubled quote inside stands for one), but a field cannot span lines. Blank
/// lines are skipped; line numbers in messages are those of the file, starting at 1.
/// </summary>
public static class CsvReader
{
    /// <summary>Reads the CSV file at <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is empty, a row has a different number of fields than the first, a field is not a number or is out of float64's range, a quote is unterminated, two columns have the same name, or (without <see cref="CsvOptions.HasHeader"/>) the first line mixes numbers and text; the message names the file, line and column.</exception>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static CsvTable Read(string path, CsvOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"CSV file '{path}' does not exist.", path);
        }

        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Read(reader, path, options);
    }

    /// <summary>Parses CSV text held in a string; messages call the source <paramref name="sourceName"/>.</summary>
    /// <exception cref="InvalidDataException">As for <see cref="Read(string, CsvOptions?)"/>.</exception>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static CsvTable Parse(string text, CsvOptions? options = null, string sourceName = "<text>")
    {
        ArgumentNullException.ThrowIfNull(text);
        using var reader = new StringReader(text);
        return Read(reader, sourceName, options);
    }

    /// <summary>Reads CSV from a text reader; messages call the source <paramref name="sourceName"/>.</summary>
    /// <exception cref="InvalidDataException">As for <see cref="Read(string, CsvOptions?)"/>.</exception>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    public static CsvTable Read(TextReader reader, string sourceName, CsvOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        options ??= new CsvOptions();
        var delim = options.Delimiter;
        if (delim is '"' or '\r' or '\n' || char.IsDigit(delim) || delim == options.CommentChar)
        {
            throw new ArgumentException($"CsvOptions: the delimiter '{delim}' cannot be a quote, a line break, a digit or the comment character.", nameof(options));
        }

        string[]? names = null;
        var headerLine = 0;
        var values = new List<double>();
        var rows = 0;
        var lineNo = 0;
        var firstDataLine = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (lineNo == 1 && line.Length > 0 && line[0] == '\uFEFF')
            {
                line = line[1..];
            }

            var trimmed = line.AsSpan().TrimStart();
            if (trimmed.IsEmpty || trimmed.IsWhiteSpace() || (options.CommentChar is { } cc && trimmed[0] == cc))
            {
                continue;
            }

            var fields = Split(line, delim, sourceName, lineNo);
            if (names is null)
            {
                var isHeader = options.HasHeader ?? IsHeader(fields, sourceName, lineNo);
                if (isHeader)
                {
                    names = [.. fields.Select(f => f.Trim())];
                    RequireDistinct(names, sourceName, lineNo);
                    headerLine = lineNo;
                    continue;
                }

                names = [.. Enumerable.Range(1, fields.Count).Select(i => $"column{i}")];
                firstDataLine = lineNo;
            }

            if (fields.Count != names.Length)
            {
                var reference = headerLine > 0 ? $"the header (line {headerLine})" : $"the first row (line {firstDataLine})";
                throw new InvalidDataException(
                    $"CSV '{sourceName}' line {lineNo}: ragged row: {fields.Count} field{(fields.Count == 1 ? "" : "s")} but {reference} has {names.Length}.");
            }

            for (var c = 0; c < fields.Count; c++)
            {
                if (!TryNumber(fields[c], out var v))
                {
                    var what = fields[c].Trim().Length == 0 ? "an empty field" : $"'{fields[c]}'";
                    throw new InvalidDataException(
                        $"CSV '{sourceName}' line {lineNo}, column {c + 1} ('{names[c]}'): {what} is not a number.");
                }

                if (double.IsInfinity(v) && !IsInfinityLiteral(fields[c]))
                {
                    throw new InvalidDataException(
                        $"CSV '{sourceName}' line {lineNo}, column {c + 1} ('{names[c]}'): '{fields[c].Trim()}' is beyond float64's range (±1.8e308); write Infinity or -Infinity for an infinite value.");
                }

                values.Add(v);
            }

            if (firstDataLine == 0)
            {
                firstDataLine = lineNo;
            }

            rows++;
        }

        if (names is null)
        {
            throw new InvalidDataException($"CSV '{sourceName}': no header and no rows (the input is empty or blank).");
        }

        return new CsvTable(Tensor.FromArray([.. values], rows, names.Length), Array.AsReadOnly(names));
    }

    /// <summary>Whether an automatically detected first line is a header: no field a number; all numbers: data; else refused.</summary>
    private static bool IsHeader(List<string> fields, string sourceName, int lineNo)
    {
        var numbers = fields.Count(f => TryNumber(f, out _));
        if (numbers == 0)
        {
            return true;
        }

        if (numbers == fields.Count)
        {
            return false;
        }

        var text = fields.FindIndex(f => !TryNumber(f, out _));
        var number = fields.FindIndex(f => TryNumber(f, out _));
        throw new InvalidDataException(
            $"CSV '{sourceName}' line {lineNo}: the first line mixes numbers (column {number + 1}: '{fields[number].Trim()}') and text (column {text + 1}: '{fields[text].Trim()}'), so it is neither clearly a header nor clearly data; set CsvOptions.HasHeader to say which.");
    }

    private static void RequireDistinct(string[] names, string sourceName, int lineNo)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < names.Length; i++)
        {
            if (!seen.TryAdd(names[i], i))
            {
                throw new InvalidDataException(
                    $"CSV '{sourceName}' line {lineNo}: columns {seen[names[i]] + 1} and {i + 1} are both named '{names[i]}'; column names must be distinct.");
            }
        }
    }

    private static bool IsInfinityLiteral(string field)
    {
        var f = field.AsSpan().Trim().TrimStart("+-");
        return f.Equals("Infinity", StringComparison.OrdinalIgnoreCase) || f.Equals("∞", StringComparison.Ordinal);
    }

    private static bool TryNumber(string field, out double value) =>
        double.TryParse(field.AsSpan().Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    private static List<string> Split(string line, char delim, string source, int lineNo)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        var i = 0;
        while (true)
        {
            sb.Clear();

            // Leading blanks before an opening quote are allowed.
            var j = i;
            while (j < line.Length && line[j] is ' ' or '\t' && line[j] != delim)
            {
                j++;
            }

            if (j < line.Length && line[j] == '"')
            {
                i = j + 1;
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new InvalidDataException(
                            $"CSV '{source}' line {lineNo}, column {fields.Count + 1}: unterminated quoted field (a field cannot span lines).");
                    }

                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"')
                        {
                            sb.Append('"');
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    sb.Append(line[i++]);
                }

                while (i < line.Length && line[i] != delim)
                {
                    if (!char.IsWhiteSpace(line[i]))
                    {
                        throw new InvalidDataException(
                            $"CSV '{source}' line {lineNo}, column {fields.Count + 1}: unexpected '{line[i]}' after the closing quote of \"{sb}\".");
                    }

                    i++;
                }
            }
            else
            {
                while (i < line.Length && line[i] != delim)
                {
                    sb.Append(line[i++]);
                }
            }

            fields.Add(sb.ToString());
            if (i >= line.Length)
            {
                return fields;
            }

            i++; // the delimiter
        }
    }
}
