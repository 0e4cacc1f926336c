namespace Autograd.Study;

/// <summary>What <see cref="Graph.ToDot"/>, <see cref="Graph.ToMermaid"/> and <see cref="Graph.Render"/> show.</summary>
public sealed class GraphOptions
{
    /// <summary>The defaults: values of tensors up to 16 elements, 4 digits, rules shown, saved tensors not shown.</summary>
    public static GraphOptions Default { get; } = new();

    /// <summary>Values (and gradients) are shown for tensors with at most this many elements; 0 shows none (default 16).</summary>
    public int MaxValueElements { get; init; } = 16;

    /// <summary>Digits after the decimal point of the values shown (default 4).</summary>
    public int Precision { get; init; } = 4;

    /// <summary>Whether each operation shows its backward rule, <see cref="Node.Formula"/> (default true).</summary>
    public bool ShowFormulas { get; init; } = true;

    /// <summary>Whether each operation shows what its backward rule saved, e.g. <c>saves: y=t2</c> (default false).</summary>
    public bool ShowSaved { get; init; }

    /// <summary>
    /// Named parameters (e.g. a module's <c>NamedParameters()</c>): leaves among them are drawn as parameters, with
    /// these names unless the recorder names them otherwise.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>>? Parameters { get; init; }

    /// <summary>The layout direction: <c>TB</c> (inputs at the top, the default), <c>BT</c>, <c>LR</c> or <c>RL</c>.</summary>
    public string Direction { get; init; } = "TB";

    /// <summary>A title drawn above the graph, or null.</summary>
    public string? Title { get; init; }

    /// <summary>The Graphviz program <see cref="Graph.Render"/> runs: a name looked up on <c>PATH</c> or a path (default <c>dot</c>).</summary>
    public string DotCommand { get; init; } = "dot";
}

/// <summary>What <see cref="Graph.Render"/> did.</summary>
public sealed class RenderResult
{
    internal RenderResult(string dotPath, string? imagePath, string message)
    {
        DotPath = dotPath;
        ImagePath = imagePath;
        Message = message;
    }

    /// <summary>The DOT file written (always written).</summary>
    public string DotPath { get; }

    /// <summary>The rendered image (SVG, PNG or PDF), or null when Graphviz was not found or failed.</summary>
    public string? ImagePath { get; }

    /// <summary>True when the image was rendered.</summary>
    public bool Rendered => ImagePath is not null;

    /// <summary>What happened, and, when nothing was rendered, the command that renders the DOT file.</summary>
    public string Message { get; }

    /// <summary>The <see cref="Message"/>.</summary>
    public override string ToString() => Message;
}
