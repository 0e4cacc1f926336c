using System.Numerics;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>
/// The hyperbolic tangent, vectorised and evaluated in float64 for both float types, relatively accurate everywhere:
/// with u = e^(−2|x|) − 1 from <see cref="ExpKernel"/>'s expm1 (a series where |x| ≤ ln2/4, so tiny and subnormal x keep
/// their digits), tanh|x| = −u / (u + 2) — no cancellation for any x — and the sign of x put back. Within 3 ulp of
/// System.Math.Tanh in float64 and 1 ulp of the correctly rounded result in float32 (the sweeps of AccuracyTests);
/// tanh(±0) = ±0, tanh(±∞) = ±1 (reached from |x| ≥ 19.1 in float64, 9.01 in float32), NaN stays NaN. The tail of a
/// span is padded to a vector, so every element gets the same bits wherever it sits.
/// </summary>
public static class TanhKernel
{
    /// <summary>y[i] = tanh(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Tanh(ReadOnlySpan<float> x, Span<float> y) => VectorMath.Map<TanhFunction>(x, y, "TanhKernel.Tanh");

    /// <summary>y[i] = tanh(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Tanh(ReadOnlySpan<double> x, Span<double> y) => VectorMath.Map<TanhFunction>(x, y, "TanhKernel.Tanh");

    /// <summary>tanh(x) for one float32 value, by the same operations as the vector path.</summary>
    public static float Tanh(float x) => VectorMath.One<TanhFunction>(x);

    /// <summary>tanh(x) for one float64 value, by the same operations as the vector path.</summary>
    public static double Tanh(double x) => VectorMath.One<TanhFunction>(x);

    private static Vector<double> Tanh(Vector<double> x)
    {
        // tanh(30) rounds to 1 in float64, so −2|x| is clamped at −60, where 2ᵏ stays normal.
        var a = Vector.Max(Vector.Abs(x) * new Vector<double>(-2.0), new Vector<double>(-60.0));
        var u = ExpKernel.ExpM1NonPositive(a);
        var t = -u / (u + new Vector<double>(2.0));
        var r = VectorMath.CopySign(t, x);
        return Vector.ConditionalSelect(Vector.Equals(x, x), r, x);
    }

    private static Vector512<double> Tanh(Vector512<double> x)
    {
        // tanh(30) rounds to 1 in float64, so −2|x| is clamped at −60, where 2ᵏ stays normal.
        var a = Vector512.MaxNative(Vector512.Abs(x) * Vector512.Create(-2.0), Vector512.Create(-60.0));
        var u = ExpKernel.ExpM1NonPositive(a);
        var t = -u / (u + Vector512.Create(2.0));
        var r = VectorMath.CopySign(t, x);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), r, x);
    }

    private readonly struct TanhFunction : IVectorFunction
    {
        public static Vector<double> Apply(Vector<double> x) => Tanh(x);

        public static Vector512<double> Apply(Vector512<double> x) => Tanh(x);
    }
}
