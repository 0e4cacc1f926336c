using System.Numerics;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>
/// The logistic function σ(x) = 1 / (1 + e^(−x)), vectorised and evaluated in float64 for both float types, relatively
/// accurate in both tails: with e = e^(−|x|) from <see cref="ExpKernel"/>, σ(x) = 1 / (1 + e) for x ≥ 0 and e / (1 + e)
/// for x &lt; 0, so a very negative x gives its tiny (down to subnormal) value instead of 0 from an overflowed e^(−x).
/// Within 2 ulp in float64 and 1 ulp of the correctly rounded result in float32; σ(±0) = 0.5, σ(+∞) = 1, σ(−∞) = 0,
/// NaN stays NaN. The tail of a span is padded to a vector, so every element gets the same bits wherever it sits.
/// </summary>
public static class SigmoidKernel
{
    /// <summary>y[i] = σ(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Sigmoid(ReadOnlySpan<float> x, Span<float> y) => VectorMath.Map<SigmoidFunction>(x, y, "SigmoidKernel.Sigmoid");

    /// <summary>y[i] = σ(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Sigmoid(ReadOnlySpan<double> x, Span<double> y) => VectorMath.Map<SigmoidFunction>(x, y, "SigmoidKernel.Sigmoid");

    /// <summary>σ(x) for one float32 value, by the same operations as the vector path.</summary>
    public static float Sigmoid(float x) => VectorMath.One<SigmoidFunction>(x);

    /// <summary>σ(x) for one float64 value, by the same operations as the vector path.</summary>
    public static double Sigmoid(double x) => VectorMath.One<SigmoidFunction>(x);

    private static Vector<double> Sigmoid(Vector<double> x)
    {
        var e = ExpKernel.Exp(-Vector.Abs(x));
        var d = Vector<double>.One + e;
        var r = Vector.ConditionalSelect(Vector.LessThan(x, Vector<double>.Zero), e, Vector<double>.One) / d;
        return Vector.ConditionalSelect(Vector.Equals(x, x), r, x);
    }

    private static Vector512<double> Sigmoid(Vector512<double> x)
    {
        var e = ExpKernel.Exp(-Vector512.Abs(x));
        var d = Vector512<double>.One + e;
        var r = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<double>.Zero), e, Vector512<double>.One) / d;
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), r, x);
    }

    private readonly struct SigmoidFunction : IVectorFunction
    {
        public static Vector<double> Apply(Vector<double> x) => Sigmoid(x);

        public static Vector512<double> Apply(Vector512<double> x) => Sigmoid(x);
    }
}
