namespace Autograd.Ops;

/// <summary>
/// Small pieces the forward rules (<see cref="Node.Jvp"/>) share: a tangent may be null (zero), and a tangent of an input
/// that was broadcast must be broadcast to the output's shape.
/// </summary>
internal static class Tangents
{
    /// <summary><paramref name="t"/> broadcast to <paramref name="shape"/> (itself when it has that shape); null stays null.</summary>
    public static Tensor? To(Tensor? t, Shape shape) => t is null || t.Shape == shape ? t : t.Expand(shape.ToArray());

    /// <summary>a + b with null as zero, shaped like <paramref name="output"/>; null when both are.</summary>
    public static Tensor? Sum(Tensor? a, Tensor? b, Tensor output)
        => a is null ? To(b, output.Shape) : b is null ? To(a, output.Shape) : To(a + b, output.Shape);

    /// <summary>a − b with null as zero, shaped like <paramref name="output"/>; null when both are.</summary>
    public static Tensor? Difference(Tensor? a, Tensor? b, Tensor output)
        => a is null ? To(b?.Neg(), output.Shape) : b is null ? To(a, output.Shape) : To(a - b, output.Shape);
}
