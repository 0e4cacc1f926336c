using System.Reflection;

using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>
/// The operators of the Ops assembly, found by reflection, for the checks that every operator is covered by the
/// golden cases (<see cref="GoldenTests"/>) and by the gradient-check table (OpTable).
/// </summary>
/// <remarks>
/// An operator is a static method of a top-level static class of the Ops assembly that returns a <see cref="Tensor"/>
/// and takes one (or a list of them). C# 14 extension members compile to such methods: <c>x.Exp()</c> is
/// <c>Exp(Tensor)</c>, <c>a + b</c> is <c>op_Addition</c>, the property <c>x.T</c> is <c>get_T</c>. Overloads share
/// one name.
/// </remarks>
public static class Operators
{
    /// <summary>Public operators that are deliberately not differentiable (integer or 0/1 results).</summary>
    public static readonly IReadOnlySet<string> NotDifferentiable =
        new HashSet<string> { "ArgMax", "ArgMin", "OneHot", "Eq", "Ne", "Lt", "Le", "Gt", "Ge" };

    private static readonly Lazy<HashSet<string>> PublicNames = new(() => Find(BindingFlags.Public));

    private static readonly Lazy<HashSet<string>> InternalNames = new(() => Find(BindingFlags.NonPublic));

    private static readonly Lazy<HashSet<string>> FunctionalNames = new(() => typeof(Functional)
        .GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly)
        .Where(m => m.ReturnType == typeof(Tensor))
        .Select(m => m.Name)
        .ToHashSet());

    /// <summary>The names of the public operators of the Ops assembly.</summary>
    public static IReadOnlySet<string> Public => PublicNames.Value;

    /// <summary>The public operators that have a gradient: <see cref="Public"/> without <see cref="NotDifferentiable"/>.</summary>
    public static IEnumerable<string> PublicDifferentiable => Public.Where(op => !NotDifferentiable.Contains(op)).Order(StringComparer.Ordinal);

    /// <summary>The names of the internal operators of the Ops assembly (the backward-only operators, such as <c>SliceBackward</c>).</summary>
    public static IReadOnlySet<string> Internal => InternalNames.Value;

    /// <summary>The names of the public functions of <see cref="Functional"/> that return a tensor (losses, GELU).</summary>
    public static IReadOnlySet<string> Functions => FunctionalNames.Value;

    /// <summary>Public methods, or internal ones (declared <c>internal</c>, not private helpers), of the public static classes.</summary>
    private static HashSet<string> Find(BindingFlags visibility) => typeof(SoftmaxOps).Assembly.GetExportedTypes()
        .Where(t => !t.IsNested && t.IsAbstract && t.IsSealed)
        .SelectMany(t => t.GetMethods(visibility | BindingFlags.Static | BindingFlags.DeclaredOnly))
        .Where(m => visibility == BindingFlags.Public || m.IsAssembly)
        .Where(m => m.ReturnType == typeof(Tensor) && m.GetParameters().Any(p => typeof(IEnumerable<Tensor>).IsAssignableFrom(p.ParameterType) || p.ParameterType == typeof(Tensor)))
        .Select(m => m.Name)
        .ToHashSet();
}
