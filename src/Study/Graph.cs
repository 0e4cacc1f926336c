using System.Diagnostics;
using System.Text;

namespace Autograd.Study;

/// <summary>
/// Pictures of the tape: the graph behind a tensor as Graphviz DOT (<see cref="ToDot"/>, rendered to SVG/PNG/PDF by
/// <see cref="Render"/> when Graphviz is installed) or as a Mermaid flowchart for Markdown (<see cref="ToMermaid"/>).
/// </summary>
/// <remarks>
/// <para>
/// Every operation is a box with its name (<c>t2 = Exp(t1)</c>), output shape and dtype, its backward rule and, for
/// tensors of at most <see cref="GraphOptions.MaxValueElements"/> elements, its values. Leaves that require grad are green
/// ellipses showing their <see cref="Tensor.Grad"/> after a backward; parameters (<see cref="GraphOptions.Parameters"/>)
/// are yellow; constants (seen only through a recorder) are dashed grey; the root is outlined in red. Edges go from an
/// input to the operation that used it, labelled with the input's position when the operation has several.
/// </para>
/// <para>
/// The tape does not keep results, only what each rule saved. Pass the <see cref="GraphRecorder"/> (or
/// <see cref="TapeListing"/>) that watched the forward pass to show the value of every result, its name, and, if it
/// also watched the backward walk, the gradient that reached every node.
/// </para>
/// </remarks>
public static class Graph
{
    private const string OpFill = "#e8f0fe", OpLine = "#1a73e8";
    private const string LeafFill = "#d4f4dd", LeafLine = "#2e7d32";
    private const string ParamFill = "#fff2b3", ParamLine = "#b28704";
    private const string ConstFill = "#f1f3f4", ConstLine = "#9aa0a6";
    private const string RootFill = "#fde2c8", RootLine = "#c62828";

    /// <summary>The graph behind <paramref name="root"/> in Graphviz DOT.</summary>
    /// <param name="root">The tensor whose graph to draw (typically the loss or the output).</param>
    /// <param name="options">What to show; <see cref="GraphOptions.Default"/> when null.</param>
    /// <param name="recorder">The recorder that watched the forward (and backward) pass, for names, values and gradients; or null.</param>
    /// <returns>A <c>digraph</c> to render with <c>dot -Tsvg file.dot -o file.svg</c>.</returns>
    public static string ToDot(Tensor root, GraphOptions? options = null, GraphRecorder? recorder = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        options ??= GraphOptions.Default;
        var model = Build(root, options, recorder);
        var sb = new StringBuilder();
        sb.Append("digraph autograd {\n");
        sb.Append("  graph [rankdir=").Append(Direction(options)).Append(", fontname=\"Helvetica\"");
        if (options.Title is not null)
        {
            sb.Append(", label=\"").Append(DotEscape(options.Title)).Append("\", labelloc=t");
        }

        sb.Append("];\n");
        sb.Append("  node [fontname=\"Helvetica\", fontsize=10];\n");
        sb.Append("  edge [fontname=\"Helvetica\", fontsize=9, color=\"#5f6368\"];\n");
        foreach (var n in model.Nodes)
        {
            var label = string.Join("\\n", n.Lines.Select(DotEscape));
            var (fill, line) = Colours(n);
            var shape = n.Kind == Kind.Op ? "box" : "ellipse";
            var style = n.Kind switch
            {
                Kind.Op => "rounded,filled",
                Kind.Constant => "dashed,filled",
                _ => "filled",
            };
            sb.Append("  ").Append(n.Id).Append(" [label=\"").Append(label).Append("\", shape=").Append(shape)
              .Append(", style=\"").Append(style).Append("\", fillcolor=\"").Append(fill).Append("\", color=\"").Append(line).Append('"');
            if (n.IsRoot)
            {
                sb.Append(", penwidth=2");
            }

            sb.Append("];\n");
        }

        foreach (var e in model.Edges)
        {
            sb.Append("  ").Append(e.From).Append(" -> ").Append(e.To);
            if (e.Label is not null)
            {
                sb.Append(" [label=\"").Append(DotEscape(e.Label)).Append("\"]");
            }

            sb.Append(";\n");
        }

        sb.Append("}\n");
        return sb.ToString();
    }

    /// <summary>
    /// The graph behind <paramref name="root"/> as a Mermaid flowchart, to paste into Markdown in a <c>```mermaid</c> block:
    /// operations are rectangles, tensors rounded boxes, coloured by class (<c>op</c>, <c>leaf</c>, <c>param</c>, <c>constant</c>, <c>output</c>).
    /// </summary>
    /// <param name="root">The tensor whose graph to draw.</param>
    /// <param name="options">What to show; <see cref="GraphOptions.Default"/> when null.</param>
    /// <param name="recorder">The recorder that watched the forward (and backward) pass, or null.</param>
    public static string ToMermaid(Tensor root, GraphOptions? options = null, GraphRecorder? recorder = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        options ??= GraphOptions.Default;
        var model = Build(root, options, recorder);
        var sb = new StringBuilder();
        if (options.Title is not null)
        {
            // Front matter; the title is a YAML double-quoted string.
            var title = options.Title.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace('\n', ' ');
            sb.Append("---\ntitle: \"").Append(title).Append("\"\n---\n");
        }

        // Mermaid spells top-to-bottom TD (TB is a synonym some tools do not know).
        var direction = Direction(options);
        sb.Append("flowchart ").Append(direction == "TB" ? "TD" : direction).Append('\n');
        foreach (var n in model.Nodes)
        {
            // Operations are rectangles, tensors rounded boxes.
            var label = string.Join("<br/>", n.Lines.Select(MermaidEscape));
            sb.Append("  ").Append(n.Id).Append(n.Kind == Kind.Op ? "[\"" : "(\"").Append(label).Append(n.Kind == Kind.Op ? "\"]" : "\")").Append('\n');
        }

        foreach (var e in model.Edges)
        {
            sb.Append("  ").Append(e.From).Append(" -->");
            if (e.Label is not null)
            {
                sb.Append('|').Append(MermaidEscape(e.Label)).Append('|');
            }

            sb.Append(' ').Append(e.To).Append('\n');
        }

        sb.Append("  classDef op fill:").Append(OpFill).Append(",stroke:").Append(OpLine).Append('\n');
        sb.Append("  classDef leaf fill:").Append(LeafFill).Append(",stroke:").Append(LeafLine).Append('\n');
        sb.Append("  classDef param fill:").Append(ParamFill).Append(",stroke:").Append(ParamLine).Append('\n');
        sb.Append("  classDef constant fill:").Append(ConstFill).Append(",stroke:").Append(ConstLine).Append(",stroke-dasharray:3 3\n");
        sb.Append("  classDef output fill:").Append(RootFill).Append(",stroke:").Append(RootLine).Append(",stroke-width:2px\n");
        foreach (var group in model.Nodes.GroupBy(ClassOf))
        {
            sb.Append("  class ").Append(string.Join(",", group.Select(n => n.Id))).Append(' ').Append(group.Key).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// Writes the graph behind <paramref name="root"/> next to <paramref name="path"/> as DOT and, when Graphviz's
    /// <c>dot</c> is found, renders it to <paramref name="path"/>; otherwise the result's message says how to render it.
    /// </summary>
    /// <param name="root">The tensor whose graph to draw.</param>
    /// <param name="path">The image to write: <c>.svg</c>, <c>.png</c> or <c>.pdf</c> (or <c>.dot</c>/<c>.gv</c> to write only the DOT file).</param>
    /// <param name="options">What to show, and <see cref="GraphOptions.DotCommand"/>; <see cref="GraphOptions.Default"/> when null.</param>
    /// <param name="recorder">The recorder that watched the forward (and backward) pass, or null.</param>
    /// <returns>The files written and a message; <see cref="RenderResult.Rendered"/> is false when only the DOT file was written.</returns>
    /// <exception cref="ArgumentException">The extension of <paramref name="path"/> is not one of those above.</exception>
    public static RenderResult Render(Tensor root, string path, GraphOptions? options = null, GraphRecorder? recorder = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        options ??= GraphOptions.Default;
        var ext = Path.GetExtension(path).TrimStart('.').ToLowerInvariant();
        var dotOnly = ext is "dot" or "gv";
        if (!dotOnly && ext is not ("svg" or "png" or "pdf"))
        {
            throw new ArgumentException($"Render: cannot tell the format from '{path}'; use a .svg, .png, .pdf, .dot or .gv file name.", nameof(path));
        }

        var dotPath = dotOnly ? path : Path.ChangeExtension(path, ".dot");
        var directory = Path.GetDirectoryName(Path.GetFullPath(dotPath));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        File.WriteAllText(dotPath, ToDot(root, options, recorder));
        if (dotOnly)
        {
            return new RenderResult(dotPath, null, $"wrote {dotPath}; render it with: dot -Tsvg {Quote(dotPath)} -o {Quote(Path.ChangeExtension(dotPath, ".svg"))}");
        }

        var howTo = $"dot -T{ext} {Quote(dotPath)} -o {Quote(path)}";
        var dot = FindDot(options.DotCommand);
        if (dot is null)
        {
            return new RenderResult(
                dotPath,
                null,
                $"Graphviz '{options.DotCommand}' was not found on PATH, so only {dotPath} was written. Render it with: {howTo} (install Graphviz first, e.g. apt-get install -y graphviz).");
        }

        var psi = new ProcessStartInfo(dot)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-T" + ext);
        psi.ArgumentList.Add(dotPath);
        psi.ArgumentList.Add("-o");
        psi.ArgumentList.Add(path);
        try
        {
            using var process = Process.Start(psi)!;
            var stderr = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(60_000))
            {
                process.Kill(entireProcessTree: true);
                return new RenderResult(dotPath, null, $"Graphviz '{dot}' did not finish within 60 s; wrote {dotPath}. Render it with: {howTo}");
            }

            if (process.ExitCode != 0 || !File.Exists(path))
            {
                return new RenderResult(dotPath, null, $"Graphviz '{dot}' failed (exit code {process.ExitCode}): {stderr.Result.Trim()}; wrote {dotPath}. Render it with: {howTo}");
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            return new RenderResult(dotPath, null, $"Graphviz '{dot}' could not be started ({ex.Message}); wrote {dotPath}. Render it with: {howTo}");
        }

        return new RenderResult(dotPath, path, $"wrote {dotPath} and rendered it to {path} with {dot}");
    }

    /// <summary>
    /// The graph behind <paramref name="root"/> as an SVG document, rendered by Graphviz's <c>dot</c> (see
    /// <see cref="Render"/>): for a notebook, a web page or a report.
    /// </summary>
    /// <param name="root">The tensor whose graph to draw.</param>
    /// <param name="options">What to show, and <see cref="GraphOptions.DotCommand"/>; <see cref="GraphOptions.Default"/> when null.</param>
    /// <param name="recorder">The recorder that watched the forward (and backward) pass, or null.</param>
    /// <returns>The SVG text.</returns>
    /// <exception cref="InvalidOperationException">Graphviz was not found or failed; the message says why and how to install it.</exception>
    public static string ToSvg(Tensor root, GraphOptions? options = null, GraphRecorder? recorder = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        var directory = Directory.CreateTempSubdirectory("autograd-graph-");
        try
        {
            var result = Render(root, Path.Combine(directory.FullName, "graph.svg"), options, recorder);
            if (result.ImagePath is null)
            {
                throw new InvalidOperationException("Graph.ToSvg: " + result.Message);
            }

            return File.ReadAllText(result.ImagePath);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>The full path of Graphviz's <c>dot</c> (or of <paramref name="command"/>): looked up on <c>PATH</c>, or checked when it is a path; null when not found.</summary>
    public static string? FindDot(string command = "dot")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(command);
        var names = OperatingSystem.IsWindows() && !command.EndsWith(".exe", StringComparison.OrdinalIgnoreCase) ? new[] { command + ".exe", command } : [command];
        if (command.Contains(Path.DirectorySeparatorChar) || command.Contains(Path.AltDirectorySeparatorChar))
        {
            return names.Select(Path.GetFullPath).FirstOrDefault(File.Exists);
        }

        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var name in names)
            {
                var candidate = Path.Combine(dir.Trim('"'), name);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        return null;
    }

    private static Model Build(Tensor root, GraphOptions options, GraphRecorder? recorder)
    {
        var rec = recorder ?? GraphRecorder.Detached(weakReferences: true);
        var parameters = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in options.Parameters ?? [])
        {
            parameters.TryAdd(p, name);
        }

        var model = new Model();
        var tensorIds = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        int leaves = 0, constants = 0;
        if (root.GradFn is not { } rootNode)
        {
            model.Nodes.Add(TensorNode(root, "leaf0", isRoot: true));
            return model;
        }

        // Name the unseen part of the graph first, so that names follow recording order.
        rec.EntryFor(rootNode);
        var ops = new List<Node>();
        var visited = new HashSet<Node>(ReferenceEqualityComparer.Instance) { rootNode };
        var stack = new Stack<Node>();
        stack.Push(rootNode);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            ops.Add(n);
            foreach (var next in n.NextNodes)
            {
                if (next is not null and not AccumulateGrad && visited.Add(next))
                {
                    stack.Push(next);
                }
            }
        }

        ops.Sort((a, b) => a.Sequence.CompareTo(b.Sequence));
        var opIds = new Dictionary<Node, string>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < ops.Count; i++)
        {
            opIds[ops[i]] = $"op{i}";
        }

        var opNodes = new List<GNode>();
        foreach (var op in ops)
        {
            var entry = rec.EntryFor(op);
            var next = op.NextNodes;
            for (var i = 0; i < next.Length; i++)
            {
                string? from = null;
                if (next[i] is AccumulateGrad acc)
                {
                    from = TensorId(acc.Leaf);
                }
                else if (next[i] is { } producer)
                {
                    from = opIds[producer];
                }
                else if (i < entry.Inputs.Length && entry.Inputs[i].Tensor.Get() is { } constant)
                {
                    from = TensorId(constant);
                }

                if (from is not null)
                {
                    model.Edges.Add(new GEdge(from, opIds[op], next.Length > 1 ? i.ToString(System.Globalization.CultureInfo.InvariantCulture) : null));
                }
            }

            opNodes.Add(OpNode(op, entry, ReferenceEquals(op, rootNode)));
        }

        model.Nodes.AddRange(opNodes);
        return model;

        string TensorId(Tensor t)
        {
            if (!tensorIds.TryGetValue(t, out var id))
            {
                id = t.RequiresGrad ? $"leaf{leaves++}" : $"const{constants++}";
                tensorIds[t] = id;
                model.Nodes.Add(TensorNode(t, id, isRoot: false));
            }

            return id;
        }

        GNode TensorNode(Tensor t, string id, bool isRoot)
        {
            var isParam = parameters.TryGetValue(t, out var paramName);
            var kind = !t.RequiresGrad ? Kind.Constant : isParam ? Kind.Parameter : Kind.Leaf;
            var name = isParam && !rec.HasUserName(t) ? paramName! : rec.NameOf(t);
            var lines = new List<string>
            {
                name,
                kind switch
                {
                    Kind.Parameter => "parameter · requires grad",
                    Kind.Leaf => "leaf · requires grad",
                    _ => "constant",
                },
                $"{t.Shape} {t.DType.Name()}",
            };
            AddValues(lines, "value", t, options);
            if (rec.TangentOf(t) is { } tangent)
            {
                AddValues(lines, "tangent", tangent, options);
            }

            if (t.Grad is { } g)
            {
                AddValues(lines, "grad", g, options);
            }

            return new GNode(id, kind, lines, isRoot);
        }

        GNode OpNode(Node op, GraphRecorder.Entry entry, bool isRoot)
        {
            var lines = new List<string> { $"{entry.DisplayName} = {rec.RightHandSide(entry, parameters)}", $"{op.OutputShape} {op.OutputDType.Name()}" };
            var output = isRoot ? root : rec.OutputOf(op);
            if (output is not null)
            {
                AddValues(lines, "value", output, options);
            }

            if (rec.TangentOf(op) is { } tangent)
            {
                AddValues(lines, "tangent", tangent, options);
            }

            if (rec.GradientOf(op) is { } g)
            {
                AddValues(lines, "grad", g, options);
            }

            if (options.ShowFormulas && op.Formula.Length > 0)
            {
                lines.Add(op.Formula);
            }

            if (options.ShowSaved && entry.Saved.Length > 0)
            {
                var freed = op.IsReleased ? " (freed)" : string.Empty;
                lines.Add("saves: " + string.Join(", ", entry.Saved.Select(s => $"{s.Field}={rec.SavedName(s)}")) + freed);
            }

            return new GNode(opIds[op], Kind.Op, lines, isRoot);
        }
    }

    private static void AddValues(List<string> lines, string label, Tensor t, GraphOptions options)
    {
        if (t.ElementCount <= options.MaxValueElements)
        {
            lines.Add($"{label} {StudyText.Values(t, options.Precision, options.MaxValueElements)}");
        }
    }

    private static string Direction(GraphOptions options)
        => options.Direction.ToUpperInvariant() is var d && d is "TB" or "BT" or "LR" or "RL"
            ? d
            : throw new ArgumentException($"GraphOptions.Direction must be TB, BT, LR or RL, not '{options.Direction}'.", nameof(options));

    private static (string Fill, string Line) Colours(GNode n) => n.IsRoot
        ? (RootFill, RootLine)
        : n.Kind switch
        {
            Kind.Op => (OpFill, OpLine),
            Kind.Leaf => (LeafFill, LeafLine),
            Kind.Parameter => (ParamFill, ParamLine),
            _ => (ConstFill, ConstLine),
        };

    private static string ClassOf(GNode n) => n.IsRoot
        ? "output"
        : n.Kind switch
        {
            Kind.Op => "op",
            Kind.Leaf => "leaf",
            Kind.Parameter => "param",
            _ => "constant",
        };

    private static string DotEscape(string s) => s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string MermaidEscape(string s) => s
        .Replace("#", "#35;", StringComparison.Ordinal)
        .Replace("\"", "#quot;", StringComparison.Ordinal)
        .Replace("<", "#lt;", StringComparison.Ordinal)
        .Replace(">", "#gt;", StringComparison.Ordinal)
        .Replace("\n", "<br/>", StringComparison.Ordinal);

    private static string Quote(string path) => path.Contains(' ', StringComparison.Ordinal) ? $"\"{path}\"" : path;

    private enum Kind
    {
        Op,
        Leaf,
        Parameter,
        Constant,
    }

    private sealed record GNode(string Id, Kind Kind, List<string> Lines, bool IsRoot);

    private sealed record GEdge(string From, string To, string? Label);

    private sealed class Model
    {
        public List<GNode> Nodes { get; } = [];

        public List<GEdge> Edges { get; } = [];
    }
}
