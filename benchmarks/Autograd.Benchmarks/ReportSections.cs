using System.Text;

namespace Autograd.Benchmarks;

/// <summary>
/// docs/benchmarks.md keeps one section per kind of CPU measured (vendor, model name and vector path): a run replaces
/// its own section and keeps the others. Each section sits between an HTML comment naming its key and an end comment,
/// which Markdown viewers do not show; the top of the file (title, intro, "How it is measured") is written fresh by
/// every run.
/// </summary>
public static class ReportSections
{
    private const string BeginPrefix = "<!-- report section: ";
    private const string BeginSuffix = " -->";
    private const string End = "<!-- end of report section -->";

    /// <summary>One section of the file: its key and its Markdown (without the markers).</summary>
    public sealed record Section(string Key, string Text)
    {
        /// <summary>The section's first heading without its hashes, or its key when it has none.</summary>
        public string Title => Text.Split('\n').FirstOrDefault(l => l.StartsWith('#'))?.TrimStart('#').Trim() ?? Key;
    }

    /// <summary>The sections of a file in order; none for a file without markers (such as one written before sections).</summary>
    public static List<Section> Parse(string? file)
    {
        var sections = new List<Section>();
        if (string.IsNullOrEmpty(file))
        {
            return sections;
        }

        var lines = file.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        string? key = null;
        var body = new StringBuilder();
        foreach (var line in lines)
        {
            if (line.StartsWith(BeginPrefix, StringComparison.Ordinal) && line.EndsWith(BeginSuffix, StringComparison.Ordinal))
            {
                key = line[BeginPrefix.Length..^BeginSuffix.Length];
                body.Clear();
            }
            else if (line == End && key is not null)
            {
                sections.Add(new Section(key, body.ToString().Trim('\n') + "\n"));
                key = null;
            }
            else if (key is not null)
            {
                body.Append(line).Append('\n');
            }
        }

        return sections;
    }

    /// <summary>
    /// The file after a run: <paramref name="top"/>, then a list of the sections, then the sections of
    /// <paramref name="existing"/> in their order with the one of key <paramref name="key"/> replaced by
    /// <paramref name="section"/> (or <paramref name="section"/> added at the end when there was none).
    /// </summary>
    public static string Merge(string? existing, string top, string key, string section)
    {
        if (key.Contains("-->", StringComparison.Ordinal) || key.Contains('\n', StringComparison.Ordinal))
        {
            throw new ArgumentException($"ReportSections.Merge: the key '{key}' cannot stand in an HTML comment.", nameof(key));
        }

        var sections = Parse(existing);
        var fresh = new Section(key, section.Trim('\n') + "\n");
        var at = sections.FindIndex(s => s.Key == key);
        if (at >= 0)
        {
            sections[at] = fresh;
        }
        else
        {
            sections.Add(fresh);
        }

        var sb = new StringBuilder(top.TrimEnd('\n')).Append("\n\n");
        sb.Append("Machines measured (one section each, newest run of each kind of CPU and vector path):\n\n");
        foreach (var s in sections)
        {
            sb.Append("- ").Append(s.Title).Append('\n');
        }

        foreach (var s in sections)
        {
            sb.Append('\n').Append(BeginPrefix).Append(s.Key).Append(BeginSuffix).Append("\n\n");
            sb.Append(s.Text);
            sb.Append('\n').Append(End).Append('\n');
        }

        return sb.ToString();
    }
}
