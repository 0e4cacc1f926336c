using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// The backward rule of a <see cref="Node"/> class for one operator: what the operator computes, the formula of its
/// backward rule, and the names of the tensors the node saves for it. The one place a rule's formula is written; the
/// study tools show it (<see cref="Node.Formula"/>) and docs/rules.md is generated from it.
/// </summary>
/// <remarks>
/// A node class serving several operators carries one attribute per operator; the node's <see cref="Node.Name"/>
/// selects the row, and <see cref="Variant"/> (matched against the node's <c>RuleVariant</c>) separates rows of one
/// operator whose rules differ. <see cref="Saves"/> names the tensors the node passes to <c>Save</c>, in that order.
/// </remarks>
/// <example>
/// <code>
/// [Rule("Exp", Forward = "y = exp(x)", Backward = "dx = g ⊙ y", Saves = "y")]
/// private sealed class ExpNode : Node { … }
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class RuleAttribute : Attribute
{
    private IReadOnlyList<string>? _savedNames;

    /// <summary>Declares the rule of the node class for the operator <paramref name="op"/>.</summary>
    /// <param name="op">The operator's name, as the node's <see cref="Node.Name"/>.</param>
    /// <param name="file">Filled in by the compiler: the source file declaring the rule.</param>
    /// <param name="line">Filled in by the compiler: the line of the declaration.</param>
    public RuleAttribute(string op, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        Op = op;
        File = RepositoryPath(file);
        Line = line;
    }

    /// <summary>The operator's name, e.g. <c>Exp</c>.</summary>
    public string Op { get; }

    /// <summary>Distinguishes rows of one operator served by one node class (e.g. a transposed matrix product); null for the common case.</summary>
    public string? Variant { get; init; }

    /// <summary>What the operator computes, e.g. <c>y = exp(x)</c>.</summary>
    public string Forward { get; init; } = string.Empty;

    /// <summary>The backward formula, e.g. <c>dx = g ⊙ y</c>.</summary>
    public string Backward { get; init; } = string.Empty;

    /// <summary>
    /// The forward rule (forward mode, <see cref="Node.Jvp"/>): the tangent of the output from the tangents of the inputs,
    /// e.g. <c>ẏ = ẋ ⊙ y</c>.
    /// </summary>
    public string Tangent { get; init; } = string.Empty;

    /// <summary>The names of the tensors the node saves, comma-separated in the order it saves them (empty when it saves none).</summary>
    public string Saves { get; init; } = string.Empty;

    /// <summary><see cref="Saves"/> as a list, e.g. <c>["a", "b"]</c>.</summary>
    public IReadOnlyList<string> SavedNames
        => _savedNames ??= Saves.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The source file declaring the rule, relative to the repository (from its last <c>src/</c> folder), e.g. <c>src/Ops/Elementwise.cs</c>.</summary>
    public string File { get; }

    /// <summary>The line of the declaration in <see cref="File"/>.</summary>
    public int Line { get; }

    /// <summary>The operator with its variant, e.g. <c>MatMul</c> or <c>MatMul (aᵀ · b)</c>.</summary>
    public string DisplayName => Variant is null ? Op : $"{Op} ({Variant})";

    /// <summary>The rule as one line: <c>Exp: y = exp(x); dx = g ⊙ y; saves y</c>.</summary>
    public override string ToString()
        => $"{DisplayName}: {Forward}; {Backward}{(Saves.Length > 0 ? "; saves " + Saves : string.Empty)}";

    private static string RepositoryPath(string file)
    {
        var path = file.Replace('\\', '/');
        var src = path.LastIndexOf("/src/", StringComparison.Ordinal);
        return src >= 0 ? path[(src + 1)..] : path;
    }
}
