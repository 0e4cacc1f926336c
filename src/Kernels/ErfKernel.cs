using System.Numerics;
using System.Runtime.CompilerServices;

namespace Autograd.Kernels;

/// <summary>
/// The error function of float32 values, vectorised: erf(x) ≈ x·P(x²)/Q(x²) for x clamped to [−4, 4], a rational
/// approximation with a degree-6 numerator and a degree-4 denominator in x² (the form of Eigen's fast float erf),
/// evaluated in float64 (relative error below 6.5e-8 before the final rounding) and rounded to float32, which keeps it
/// within 2 units in the last place of the correctly rounded erf; ±1 beyond ±4 and NaN for NaN. Every element —
/// whether in a vector or in the scalar tail — takes the same multiply-adds (fused where the CPU has the instruction, see
/// <see cref="VectorMath.MultiplyAdd(double, double, double)"/>), so the result does not depend on the vector width or on the element's position.
/// </summary>
public static class ErfKernel
{
    // Numerator (times x) and denominator coefficients, highest power of x² first.
    private const double P0 = -2.72614225801306e-10;
    private const double P1 = 2.77068142495902e-08;
    private const double P2 = -2.10102402082508e-06;
    private const double P3 = -5.69250639462346e-05;
    private const double P4 = -7.34990630326855e-04;
    private const double P5 = -2.95459980854025e-03;
    private const double P6 = -1.60960333262415e-02;
    private const double Q0 = -1.45660718464996e-05;
    private const double Q1 = -2.13374055278905e-04;
    private const double Q2 = -1.68282697438203e-03;
    private const double Q3 = -7.37332916720468e-03;
    private const double Q4 = -1.42647390514189e-02;

    /// <summary>y[i] = erf(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Erf(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length)
        {
            throw new ArgumentException($"ErfKernel.Erf: the destination holds {y.Length} elements but the source has {x.Length}.", nameof(y));
        }

        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var n = Vector<float>.Count;
            for (; i <= x.Length - n; i += n)
            {
                Erf(new Vector<float>(x.Slice(i, n))).CopyTo(y.Slice(i, n));
            }
        }

        for (; i < x.Length; i++)
        {
            y[i] = Erf(x[i]);
        }
    }

    /// <summary>erf(x) for one float32 value, by the same operations as the vector path.</summary>
    public static float Erf(float x)
    {
        if (float.IsNaN(x))
        {
            return x;
        }

        var c = Math.Clamp((double)x, -4.0, 4.0);
        var x2 = c * c;
        var p = VectorMath.MultiplyAdd(P0, x2, P1);
        p = VectorMath.MultiplyAdd(p, x2, P2);
        p = VectorMath.MultiplyAdd(p, x2, P3);
        p = VectorMath.MultiplyAdd(p, x2, P4);
        p = VectorMath.MultiplyAdd(p, x2, P5);
        p = VectorMath.MultiplyAdd(p, x2, P6);
        var q = VectorMath.MultiplyAdd(Q0, x2, Q1);
        q = VectorMath.MultiplyAdd(q, x2, Q2);
        q = VectorMath.MultiplyAdd(q, x2, Q3);
        q = VectorMath.MultiplyAdd(q, x2, Q4);
        return Math.Clamp((float)(c * (p / q)), -1f, 1f);
    }

    private static Vector<float> Erf(Vector<float> x)
    {
        Vector.Widen(x, out var low, out var high);
        var r = Vector.Narrow(Erf(low), Erf(high));
        r = Vector.Min(Vector.Max(r, new Vector<float>(-1f)), new Vector<float>(1f));

        // NaN lanes (x ≠ x) keep x.
        return Vector.ConditionalSelect(Vector.Equals(x, x), r, x);
    }

    private static Vector<double> Erf(Vector<double> x)
    {
        var c = Vector.Min(Vector.Max(x, new Vector<double>(-4.0)), new Vector<double>(4.0));
        var x2 = c * c;
        var p = Vector.MultiplyAddEstimate(new Vector<double>(P0), x2, new Vector<double>(P1));
        p = Vector.MultiplyAddEstimate(p, x2, new Vector<double>(P2));
        p = Vector.MultiplyAddEstimate(p, x2, new Vector<double>(P3));
        p = Vector.MultiplyAddEstimate(p, x2, new Vector<double>(P4));
        p = Vector.MultiplyAddEstimate(p, x2, new Vector<double>(P5));
        p = Vector.MultiplyAddEstimate(p, x2, new Vector<double>(P6));
        var q = Vector.MultiplyAddEstimate(new Vector<double>(Q0), x2, new Vector<double>(Q1));
        q = Vector.MultiplyAddEstimate(q, x2, new Vector<double>(Q2));
        q = Vector.MultiplyAddEstimate(q, x2, new Vector<double>(Q3));
        q = Vector.MultiplyAddEstimate(q, x2, new Vector<double>(Q4));
        return c * (p / q);
    }
}
