using Autograd.Kernels;
using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>
/// Accuracy of the elementwise unary operators: dense sweeps of each one's domain (subnormals, signed zeros,
/// infinities, NaN, the overflow and underflow thresholds) in float32 and float64 against System.Math (float64
/// results, rounded once for float32), each with a stated bound in units in the last place; the same sweep through
/// a long tensor (vector path) and one element at a time (the padded tail); exact identities; and the cases where
/// the earlier kernels were wrong (exp(0) ≠ 1 in float32, tanh of tiny values with the wrong sign, σ of the tails).
/// </summary>
public class AccuracyTests(ITestOutputHelper output)
{
    /// <summary>A unary operator with its float64 reference and its bounds in ulp (float32, float64).</summary>
    /// <param name="Name">The operator's name.</param>
    /// <param name="Op">The operator on a tensor.</param>
    /// <param name="Reference">The reference in float64.</param>
    /// <param name="Float32Ulps">The bound for float32 results, against the reference rounded to float32.</param>
    /// <param name="Float64Ulps">The bound for float64 results, or null where no independent float64 reference exists.</param>
    /// <param name="SameBitsEverywhere">Whether the kernel promises the same bits on its vector path and its tail.</param>
    public sealed record UnaryCase(string Name, Func<Tensor, Tensor> Op, Func<double, double> Reference, long Float32Ulps, long? Float64Ulps, bool SameBitsEverywhere)
    {
        public override string ToString() => Name;
    }

    private static readonly UnaryCase[] Cases =
    [
        new("Exp", x => x.Exp(), Math.Exp, 2, 1, true),
        new("Log", x => x.Log(), Math.Log, 2, 2, false),
        new("Tanh", x => x.Tanh(), Math.Tanh, 1, 3, true),
        new("Sigmoid", x => x.Sigmoid(), SigmoidReference, 1, 2, true),
        new("Erf", x => x.Erf(), MathNet.Numerics.SpecialFunctions.Erf, 2, null, true),
        new("Sqrt", x => x.Sqrt(), Math.Sqrt, 0, 0, false),
        new("Reciprocal", x => 1.0 / x, v => 1.0 / v, 0, 0, false),
        new("Pow(2)", x => x.Pow(2), v => Math.Pow(v, 2), 1, 1, false),
        new("Pow(0.5)", x => x.Pow(0.5), v => Math.Pow(v, 0.5), 1, 1, false),
        new("Pow(-1.5)", x => x.Pow(-1.5), v => Math.Pow(v, -1.5), 2, 2, false),
        new("Abs", x => x.Abs(), Math.Abs, 0, 0, false),
        new("Neg", x => -x, v => -v, 0, 0, false),
        new("Relu", x => x.Relu(), v => double.IsNaN(v) ? v : Math.Max(v, 0.0), 0, 0, false),
    ];

    public static TheoryData<string> Names() => [.. Cases.Select(c => c.Name)];

    /// <summary>
    /// σ(x) in float64 to about half an ulp: the sum 1 + e^(−|x|) is kept in two parts and the quotient corrected once,
    /// so only Math.Exp's own rounding and the final one remain.
    /// </summary>
    private static double SigmoidReference(double x)
    {
        if (double.IsNaN(x))
        {
            return x;
        }

        var e = Math.Exp(-Math.Abs(x));
        var s = 1.0 + e;
        var err = e - (s - 1.0);
        var numerator = x < 0 ? e : 1.0;
        var q = numerator / s;
        var residual = Math.FusedMultiplyAdd(-q, s, numerator) - (q * err);
        return q + (residual / s);
    }

    /// <summary>The distance in float32 ulps; 0 for two NaNs and for ±0, and long.MaxValue when only one is NaN.</summary>
    internal static long Ulps(float a, float b)
    {
        if (float.IsNaN(a) || float.IsNaN(b))
        {
            return float.IsNaN(a) && float.IsNaN(b) ? 0 : long.MaxValue;
        }

        static long Key(float f)
        {
            var bits = BitConverter.SingleToInt32Bits(f);
            return bits < 0 ? int.MinValue - (long)bits : bits;
        }

        return Math.Abs(Key(a) - Key(b));
    }

    /// <summary>The distance in float64 ulps; 0 for two NaNs and for ±0, and long.MaxValue when only one is NaN.</summary>
    internal static long Ulps(double a, double b)
    {
        if (double.IsNaN(a) || double.IsNaN(b))
        {
            return double.IsNaN(a) && double.IsNaN(b) ? 0 : long.MaxValue;
        }

        static Int128 Key(double f)
        {
            var bits = BitConverter.DoubleToInt64Bits(f);
            return bits < 0 ? long.MinValue - (Int128)bits : bits;
        }

        var d = Int128.Abs(Key(a) - Key(b));
        return d > long.MaxValue ? long.MaxValue : (long)d;
    }

    /// <summary>
    /// float32 inputs: ±0, ±min subnormal, ±min normal, ±max, ±∞, NaN; 48 random values in every binade of both signs;
    /// a grid of step 1/512 over [−110, 110]; 1 ± k ulp; and ±64 ulp around the thresholds of exp (overflow 88.72,
    /// smallest normal −87.34, zero −103.97), of tanh's saturation (9.01) and of the float32 range.
    /// </summary>
    private static float[] Float32Inputs()
    {
        var rng = new Random(20261130);
        var values = new List<float>
        {
            0f, -0f, float.Epsilon, -float.Epsilon, 1.17549435e-38f, -1.17549435e-38f, float.MaxValue, float.MinValue,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1f, -1f, 0.5f, 2f,
        };
        for (var e = -149; e <= 127; e++)
        {
            for (var j = 0; j < 48; j++)
            {
                var v = (float)((1.0 + rng.NextDouble()) * Math.Pow(2, e));
                values.Add(v);
                values.Add(-v);
            }
        }

        for (var i = -110 * 512; i <= 110 * 512; i++)
        {
            values.Add(i / 512f);
        }

        foreach (var center in new[] { 1f, 88.7228394f, -87.3365479f, -103.972076f, 9.01f, -9.01f, 19.1f, 0.17328f, 0.5493f })
        {
            var v = center;
            var w = center;
            for (var k = 0; k < 64; k++)
            {
                values.Add(v);
                values.Add(w);
                v = MathF.BitIncrement(v);
                w = MathF.BitDecrement(w);
            }
        }

        return [.. values];
    }

    /// <summary>The float64 counterpart: 24 random values per binade (−1074 to 1023), a grid of step 1/256 over [−760, 760], 1 ± k ulp, and ±64 ulp around exp's thresholds (709.78, −708.40, −745.13) and tanh's (19.06).</summary>
    private static double[] Float64Inputs()
    {
        var rng = new Random(20261201);
        var values = new List<double>
        {
            0.0, -0.0, double.Epsilon, -double.Epsilon, 2.2250738585072014e-308, -2.2250738585072014e-308, double.MaxValue,
            double.MinValue, double.PositiveInfinity, double.NegativeInfinity, double.NaN, 1.0, -1.0, 0.5, 2.0,
        };
        for (var e = -1074; e <= 1023; e++)
        {
            for (var j = 0; j < 24; j++)
            {
                var v = Math.ScaleB(1.0 + rng.NextDouble(), e);
                values.Add(v);
                values.Add(-v);
            }
        }

        for (var i = -760 * 256; i <= 760 * 256; i++)
        {
            values.Add(i / 256.0);
        }

        foreach (var center in new[] { 1.0, 709.782712893384, -708.3964185322641, -745.1332191019411, 19.06154746539849, -19.06154746539849, 0.34657359027997264, 0.17328679513998632 })
        {
            var v = center;
            var w = center;
            for (var k = 0; k < 64; k++)
            {
                values.Add(v);
                values.Add(w);
                v = Math.BitIncrement(v);
                w = Math.BitDecrement(w);
            }
        }

        return [.. values];
    }

    private static readonly Lazy<float[]> Float32Sweep = new(Float32Inputs);
    private static readonly Lazy<double[]> Float64Sweep = new(Float64Inputs);

    [Theory]
    [MemberData(nameof(Names))]
    public void Float32StaysWithinItsBoundOnTheVectorPathAndElementByElement(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var x = Float32Sweep.Value;
        var vector = c.Op(Tensor.FromArray(x, x.Length)).AsSpan<float>().ToArray();
        long worst = 0;
        var at = 0f;
        for (var i = 0; i < x.Length; i++)
        {
            var u = Ulps(vector[i], (float)c.Reference(x[i]));
            if (u > worst)
            {
                (worst, at) = (u, x[i]);
            }
        }

        // One element at a time (the padded tail of the kernels): every 7th input, and every input near 0 or 1.
        long worstSingle = 0;
        var mismatches = 0;
        for (var i = 0; i < x.Length; i++)
        {
            if (i % 7 != 0 && !(Math.Abs(x[i]) < 1e-3 || Math.Abs(x[i] - 1) < 1e-3))
            {
                continue;
            }

            var single = c.Op(Tensor.From(x[i])).AsSpan<float>()[0];
            worstSingle = Math.Max(worstSingle, Ulps(single, (float)c.Reference(x[i])));
            if (BitConverter.SingleToInt32Bits(single) != BitConverter.SingleToInt32Bits(vector[i]))
            {
                mismatches++;
            }
        }

        output.WriteLine($"{name} float32: max {worst} ulp (at {at:R}) on {x.Length} inputs, {worstSingle} ulp one by one; bound {c.Float32Ulps}");
        Assert.True(worst <= c.Float32Ulps, $"{name} float32: {worst} ulp at x = {at:R}, bound {c.Float32Ulps}");
        Assert.True(worstSingle <= c.Float32Ulps, $"{name} float32 one by one: {worstSingle} ulp, bound {c.Float32Ulps}");
        if (c.SameBitsEverywhere)
        {
            Assert.Equal(0, mismatches);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Float64StaysWithinItsBoundOnTheVectorPathAndElementByElement(string name)
    {
        var c = Cases.Single(k => k.Name == name);
        var x = Float64Sweep.Value;
        var vector = c.Op(Tensor.FromArray(x, x.Length)).AsSpan<double>().ToArray();
        long worst = 0;
        var at = 0.0;
        for (var i = 0; i < x.Length; i++)
        {
            var u = Ulps(vector[i], c.Reference(x[i]));
            if (u > worst)
            {
                (worst, at) = (u, x[i]);
            }
        }

        long worstSingle = 0;
        var mismatches = 0;
        for (var i = 0; i < x.Length; i += 11)
        {
            var single = c.Op(Tensor.From(x[i])).AsSpan<double>()[0];
            worstSingle = Math.Max(worstSingle, Ulps(single, c.Reference(x[i])));
            if (BitConverter.DoubleToInt64Bits(single) != BitConverter.DoubleToInt64Bits(vector[i]))
            {
                mismatches++;
            }
        }

        var bound = c.Float64Ulps;
        output.WriteLine($"{name} float64: max {worst} ulp (at {at:R}) on {x.Length} inputs, {worstSingle} ulp one by one; bound {(bound is null ? "none (the reference is the kernel)" : bound)}");
        if (bound is { } b)
        {
            Assert.True(worst <= b, $"{name} float64: {worst} ulp at x = {at:R}, bound {b}");
            Assert.True(worstSingle <= b, $"{name} float64 one by one: {worstSingle} ulp, bound {b}");
        }

        if (c.SameBitsEverywhere)
        {
            Assert.Equal(0, mismatches);
        }
    }

    public static TheoryData<DType> DTypes() => [DType.Float32, DType.Float64];

    /// <summary>Bits of each element of a float tensor, as float64 bits (float32 widened exactly).</summary>
    private static double[] Values(Tensor t)
        => t.DType == DType.Float32 ? [.. t.AsSpan<float>().ToArray().Select(v => (double)v)] : t.AsSpan<double>().ToArray();

    /// <summary>n copies of v: 64 go through the vector loop, 1 through the padded tail.</summary>
    private static Tensor Filled(double v, int n, DType dtype) => Tensor.Full(new Shape(n), v, dtype);

    [Theory]
    [MemberData(nameof(DTypes))]
    public void ExactIdentitiesHoldOnBothPaths(DType dtype)
    {
        foreach (var n in new[] { 1, 3, 64, 67 })
        {
            Assert.All(Values(Filled(0, n, dtype).Exp()), v => Assert.Equal(1.0, v));
            Assert.All(Values(Filled(-0.0, n, dtype).Exp()), v => Assert.Equal(1.0, v));
            Assert.All(Values(Filled(double.NegativeInfinity, n, dtype).Exp()), v => Assert.True(v == 0 && !double.IsNegative(v)));
            Assert.All(Values(Filled(double.PositiveInfinity, n, dtype).Exp()), v => Assert.Equal(double.PositiveInfinity, v));
            Assert.All(Values(Filled(1, n, dtype).Log()), v => Assert.True(v == 0 && !double.IsNegative(v), $"log(1) = {v:R}"));
            Assert.All(Values(Filled(0, n, dtype).Log()), v => Assert.Equal(double.NegativeInfinity, v));
            Assert.All(Values(Filled(0, n, dtype).Tanh()), v => Assert.True(v == 0 && !double.IsNegative(v)));
            Assert.All(Values(Filled(-0.0, n, dtype).Tanh()), v => Assert.True(v == 0 && double.IsNegative(v), $"tanh(−0) = {v:R}"));
            Assert.All(Values(Filled(double.PositiveInfinity, n, dtype).Tanh()), v => Assert.Equal(1.0, v));
            Assert.All(Values(Filled(double.NegativeInfinity, n, dtype).Tanh()), v => Assert.Equal(-1.0, v));
            Assert.All(Values(Filled(40, n, dtype).Tanh()), v => Assert.Equal(1.0, v));
            Assert.All(Values(Filled(0, n, dtype).Sigmoid()), v => Assert.Equal(0.5, v));
            Assert.All(Values(Filled(-0.0, n, dtype).Sigmoid()), v => Assert.Equal(0.5, v));
            Assert.All(Values(Filled(double.PositiveInfinity, n, dtype).Sigmoid()), v => Assert.Equal(1.0, v));
            Assert.All(Values(Filled(double.NegativeInfinity, n, dtype).Sigmoid()), v => Assert.True(v == 0 && !double.IsNegative(v)));
            Assert.All(Values(Filled(0, n, dtype).Erf()), v => Assert.True(v == 0 && !double.IsNegative(v)));
            foreach (var op in new Func<Tensor, Tensor>[] { x => x.Exp(), x => x.Log(), x => x.Tanh(), x => x.Sigmoid(), x => x.Erf(), x => x.Sqrt() })
            {
                Assert.All(Values(op(Filled(double.NaN, n, dtype))), v => Assert.True(double.IsNaN(v)));
            }
        }
    }

    /// <summary>float32 exp of 0 was 1.0000001 on the vector path of TensorPrimitives.Exp (4 elements or more).</summary>
    [Fact]
    public void Float32ExpOfZeroIsOneOnEveryLength()
    {
        for (var n = 1; n <= 40; n++)
        {
            var y = Tensor.Zeros(new Shape(n), DType.Float32).Exp().AsSpan<float>();
            for (var i = 0; i < n; i++)
            {
                Assert.True(y[i] == 1f, $"exp(0) = {y[i]:R} at element {i} of {n}");
            }
        }
    }

    /// <summary>The composed log-softmax of a column of length 1 is log(exp(0)) = 0, as in PyTorch (it was −1.19e-7).</summary>
    [Fact]
    public void Float32LogSoftmaxOfAColumnIsZero()
    {
        var x = Tensor.FromArray(new[] { 3f, -1f, 0.25f, 7f, 1e4f, -2f }, 6, 1);
        Assert.All(x.LogSoftmaxComposed(1).AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
        Assert.All(x.LogSoftmax(1).AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
    }

    /// <summary>The fused logsumexp of one element per column is the element: log(exp(0)) + x = x.</summary>
    [Fact]
    public void Float32FusedLogSumExpOfOneRowIsTheRow()
    {
        var values = new[] { 3f, -1f, 0.25f, 7f, 1e4f, -2f, 0.1f, 5f, 1f };
        var x = Tensor.FromArray(values, 1, values.Length);
        Assert.Equal(values, x.LogSumExp(0).AsSpan<float>().ToArray());
        Assert.Equal(values, x.Reshape(values.Length, 1).LogSumExp(1).AsSpan<float>().ToArray());
    }

    /// <summary>At saturation σ(x) − y is 0 for x = 100, y = 1: the gradient was 2.98e-8 with exp(0) = 1.0000001.</summary>
    [Fact]
    public void Float32BinaryCrossEntropyGradientVanishesAtSaturation()
    {
        var logits = Tensor.FromArray(new[] { 100f, 100f, 100f, 100f }, 4).WithRequiresGrad();
        var target = Tensor.FromArray(new[] { 1f, 1f, 1f, 1f }, 4);
        var g = Autodiff.Grad(Functional.BinaryCrossEntropyWithLogits(logits, target), logits);
        Assert.All(g.AsSpan<float>().ToArray(), v => Assert.Equal(0f, v));
    }

    /// <summary>TensorPrimitives.Tanh gave tanh(1e-12) = −5.96e-8 in float32 and a relative error of 2.8e-5 in float64.</summary>
    [Theory]
    [MemberData(nameof(DTypes))]
    public void TanhOfTinyValuesIsTheValue(DType dtype)
    {
        foreach (var v in new[] { 1e-12, -1e-12, 1e-30, -3e-20, 1e-40, 1e-300, 4.9e-324 })
        {
            var x = Filled(v, 67, dtype);
            var expected = Values(x)[0];
            Assert.All(Values(x.Tanh()), t => Assert.True(t == expected, $"tanh({expected:R}) = {t:R}"));
        }

        var small = Values(Filled(1e-4, 64, dtype).Tanh())[0];
        var exact = Math.Tanh(Values(Filled(1e-4, 1, dtype))[0]);
        Assert.True(Math.Abs(small - exact) <= exact * ForDType.Pick(dtype, 2.3e-16, 6e-8), $"tanh(1e-4) = {small:R}, expected {exact:R}");
    }

    /// <summary>σ of large negative values is its tiny value, not 0 from an overflowed exp(−x) or a subtraction from 1.</summary>
    [Fact]
    public void SigmoidTailsAreRelativelyAccurate()
    {
        var x32 = Tensor.FromArray(Enumerable.Repeat(-100f, 64).Concat([-90f, -30f, 30f, 16f]).ToArray(), 68);
        var y32 = x32.Sigmoid().AsSpan<float>();
        Assert.Equal((float)SigmoidReference(-100), y32[0]);
        Assert.True(y32[0] > 0);
        Assert.Equal((float)SigmoidReference(-90), y32[64]);
        Assert.Equal((float)SigmoidReference(-30), y32[65]);
        Assert.Equal(1f, y32[66]);
        Assert.Equal((float)SigmoidReference(16), y32[67]);

        var y64 = Tensor.From(-740.0, -745.0, -700.0, -40.0, 40.0, 36.0).Sigmoid().AsSpan<double>();
        Assert.True(y64[0] > 0 && Ulps(y64[0], SigmoidReference(-740)) <= 1, $"σ(−740) = {y64[0]:R}");
        Assert.True(y64[1] > 0, $"σ(−745) = {y64[1]:R}");
        Assert.True(Ulps(y64[2], SigmoidReference(-700)) <= 2, $"σ(−700) = {y64[2]:R}");
        Assert.True(Ulps(y64[3], SigmoidReference(-40)) <= 2, $"σ(−40) = {y64[3]:R}");
        Assert.Equal(1.0, y64[4]);
        Assert.True(Ulps(y64[5], SigmoidReference(36)) <= 1);
    }

    /// <summary>log(1 + ε) keeps its digits: ε itself to within the log kernel's bound.</summary>
    [Theory]
    [MemberData(nameof(DTypes))]
    public void LogNearOneIsRelativelyAccurate(DType dtype)
    {
        foreach (var k in new[] { 1, 2, 3, 17, 1000 })
        {
            var up = dtype == DType.Float32 ? 1.0 + (k * Math.ScaleB(1.0, -23)) : 1.0 + (k * Math.ScaleB(1.0, -52));
            var down = dtype == DType.Float32 ? 1.0 - (k * Math.ScaleB(1.0, -24)) : 1.0 - (k * Math.ScaleB(1.0, -53));
            foreach (var v in new[] { up, down })
            {
                var y = Values(Filled(v, 65, dtype).Log());
                var exact = Math.Log(v);
                var bound = ForDType.Pick(dtype, 2 * Math.Abs(exact) * 2.3e-16, 2 * Math.Abs(exact) * 1.2e-7);
                Assert.All(y, l => Assert.True(Math.Abs(l - exact) <= bound, $"log({v:R}) = {l:R}, expected {exact:R}"));
            }
        }
    }

    [Fact]
    public void KernelsRefuseAShortDestination()
    {
        var cases = new (string Name, Action Call)[]
        {
            ("ExpKernel.Exp", () => ExpKernel.Exp(new float[5], new float[4])),
            ("ExpKernel.Exp", () => ExpKernel.Exp(new double[5], new double[4])),
            ("TanhKernel.Tanh", () => TanhKernel.Tanh(new float[5], new float[4])),
            ("TanhKernel.Tanh", () => TanhKernel.Tanh(new double[5], new double[4])),
            ("SigmoidKernel.Sigmoid", () => SigmoidKernel.Sigmoid(new float[5], new float[4])),
            ("SigmoidKernel.Sigmoid", () => SigmoidKernel.Sigmoid(new double[5], new double[4])),
        };
        foreach (var (name, call) in cases)
        {
            var e = Assert.Throws<ArgumentException>(call);
            Assert.Equal($"{name}: the destination holds 4 elements but the source has 5. (Parameter 'y')", e.Message);
        }
    }

    /// <summary>
    /// The <see cref="System.Numerics.Vector{T}"/> code, which runs where 512-bit vectors are not accelerated, gives the
    /// 512-bit code's float64 bits (and float32 bits for tanh and sigmoid); float32 exp runs on 256-bit vectors there
    /// (<see cref="FastExp"/>), with the 512-bit bits, within the bound of 2 ulp (1 on this sweep).
    /// </summary>
    [Fact]
    public void ThePortableCodeGivesTheSameBits()
    {
        var xd = Float64Sweep.Value;
        var xf = Float32Sweep.Value;
        foreach (var (name, kernel) in new (string, Action<double[], double[]>)[]
        {
            ("Exp", (a, b) => ExpKernel.Exp(a, b)),
            ("Tanh", (a, b) => TanhKernel.Tanh(a, b)),
            ("Sigmoid", (a, b) => SigmoidKernel.Sigmoid(a, b)),
        })
        {
            var (wide, portable) = BothPaths(xd, kernel);
            var differ = Enumerable.Range(0, xd.Length).Count(i => BitConverter.DoubleToInt64Bits(wide[i]) != BitConverter.DoubleToInt64Bits(portable[i]));
            Assert.True(differ == 0, $"{name} float64: {differ} elements differ between the 512-bit and the portable code");
        }

        foreach (var (name, kernel) in new (string, Action<float[], float[]>)[]
        {
            ("Exp", (a, b) => ExpKernel.Exp(a, b)),
            ("Tanh", (a, b) => TanhKernel.Tanh(a, b)),
            ("Sigmoid", (a, b) => SigmoidKernel.Sigmoid(a, b)),
        })
        {
            var (wide, portable) = BothPaths(xf, kernel);
            var differ = Enumerable.Range(0, xf.Length).Count(i => BitConverter.SingleToInt32Bits(wide[i]) != BitConverter.SingleToInt32Bits(portable[i]));
            Assert.True(differ == 0, $"{name} float32: {differ} elements differ between the 512-bit and the portable code");
        }

        var (_, exp) = BothPaths<float>(xf, (a, b) => ExpKernel.Exp(a, b));
        var worst = Enumerable.Range(0, xf.Length).Max(i => Ulps(exp[i], (float)Math.Exp(xf[i])));
        output.WriteLine($"Exp float32, portable code: max {worst} ulp");
        Assert.True(worst <= 2, $"portable float32 exp: {worst} ulp");
    }

    private static (T[] Wide, T[] Portable) BothPaths<T>(T[] x, Action<T[], T[]> kernel)
    {
        var wide = new T[x.Length];
        var portable = new T[x.Length];
        kernel(x, wide);
        VectorMath.PortableOnly = true;
        try
        {
            kernel(x, portable);
        }
        finally
        {
            VectorMath.PortableOnly = false;
        }

        return (wide, portable);
    }

    [Fact]
    public void TheScalarEntryPointsMatchTheSpanKernels()
    {
        var x = Float32Sweep.Value.Where((_, i) => i % 13 == 0).ToArray();
        var y = new float[x.Length];
        foreach (var (span, one) in new (Action<float[], float[]>, Func<float, float>)[]
        {
            ((a, b) => ExpKernel.Exp(a, b), ExpKernel.Exp),
            ((a, b) => TanhKernel.Tanh(a, b), TanhKernel.Tanh),
            ((a, b) => SigmoidKernel.Sigmoid(a, b), SigmoidKernel.Sigmoid),
        })
        {
            span(x, y);
            for (var i = 0; i < x.Length; i++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(one(x[i])), BitConverter.SingleToInt32Bits(y[i]));
            }
        }

        var xd = Float64Sweep.Value.Where((_, i) => i % 13 == 0).ToArray();
        var yd = new double[xd.Length];
        foreach (var (span, one) in new (Action<double[], double[]>, Func<double, double>)[]
        {
            ((a, b) => ExpKernel.Exp(a, b), ExpKernel.Exp),
            ((a, b) => TanhKernel.Tanh(a, b), TanhKernel.Tanh),
            ((a, b) => SigmoidKernel.Sigmoid(a, b), SigmoidKernel.Sigmoid),
        })
        {
            span(xd, yd);
            for (var i = 0; i < xd.Length; i++)
            {
                Assert.Equal(BitConverter.DoubleToInt64Bits(one(xd[i])), BitConverter.DoubleToInt64Bits(yd[i]));
            }
        }
    }
}
