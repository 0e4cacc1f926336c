namespace Autograd;

/// <summary>
/// Declares that the backward rules of every node type defined in the assembly keep no reference to the gradients they
/// return (write into <c>inputGrads</c>). A gradient such a rule made during a walk is then referenced by nothing else,
/// so the walk may give it to a leaf as its <see cref="Tensor.Grad"/> without copying it; a gradient from a rule of an
/// assembly without this declaration is always copied, since that rule may keep it.
/// </summary>
/// <remarks>
/// Internal, so only the library's own assemblies can make the promise: the engine (for <c>GradSum</c>) and the
/// operators (<c>[assembly: Autograd.RulesKeepNoGradients]</c> in Ops). The walk reads it once per assembly. The engine's
/// <see cref="CustomOperatorNode"/> is the exception: its rule is the application's <c>Backward</c>, so it is not trusted.
/// </remarks>
[AttributeUsage(AttributeTargets.Assembly, AllowMultiple = false, Inherited = false)]
internal sealed class RulesKeepNoGradientsAttribute : Attribute
{
}
