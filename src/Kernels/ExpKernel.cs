using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// The exponential, vectorised. float64 follows fdlibm (<c>e_exp.c</c>): x = k·ln2 + r with |r| ≤ ln2/2 (ln2 in two
/// parts, so r carries no rounding error from k·ln2), exp(r) = 1 + r + r·c/(2 − c) with a degree-5 minimax c, then a
/// scale by 2ᵏ rounded once (<c>vscalefpd</c>, or two exact halves), so subnormal results are rounded once and results
/// past the largest double become +∞; its error is below 1 ulp. float32 uses <see cref="FastExp"/>, the fused softmax's
/// exponential, on 512-, 256- or 128-bit vectors (within 2 ulp, the same bits at every width). exp(±0) = 1 exactly, exp(−∞) = +0, exp(+∞) = +∞, NaN stays NaN. Every element — whether in
/// a vector or in the tail of a span, which is padded to a vector — takes the same operations, so the result does not
/// depend on its position; the 512-bit and <see cref="Vector{T}"/> float64 code give the same bits.
/// </summary>
public static class ExpKernel
{
    // fdlibm's constants: ln2 = Ln2Hi + Ln2Lo with Ln2Hi's low 32 bits zero (k·Ln2Hi is exact for |k| < 2²⁰), and the
    // minimax coefficients of (r·(eʳ + 1)/(eʳ − 1) − 2) in r².
    private const double Ln2Hi = 6.93147180369123816490e-01;
    private const double Ln2Lo = 1.90821492927058770002e-10;
    private const double InvLn2 = 1.44269504088896338700e+00;
    private const double P1 = 1.66666666666666019037e-01;
    private const double P2 = -2.77777777770155933842e-03;
    private const double P3 = 6.61375632143793436117e-05;
    private const double P4 = -1.65339022054652515390e-06;
    private const double P5 = 4.13813679705723846039e-08;

    /// <summary>y[i] = exp(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Exp(ReadOnlySpan<float> x, Span<float> y)
    {
        VectorMath.CheckLength(x.Length, y.Length, "ExpKernel.Exp");
        FastExp.Exp(x, y[..x.Length]);
    }

    /// <summary>y[i] = exp(x[i]). <paramref name="y"/> may be <paramref name="x"/> itself.</summary>
    /// <exception cref="ArgumentException">y is shorter than x.</exception>
    public static void Exp(ReadOnlySpan<double> x, Span<double> y) => VectorMath.Map<ExpFunction>(x, y, "ExpKernel.Exp");

    /// <summary>y[i] = exp(x[i]) for <typeparamref name="T"/> float or double: the entry point of generic kernels.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is neither float nor double.</exception>
    internal static void Exp<T>(ReadOnlySpan<T> x, Span<T> y)
    {
        if (typeof(T) == typeof(float))
        {
            Exp(
                MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(x)), x.Length),
                MemoryMarshal.CreateSpan(ref Unsafe.As<T, float>(ref MemoryMarshal.GetReference(y)), y.Length));
        }
        else if (typeof(T) == typeof(double))
        {
            Exp(
                MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<T, double>(ref MemoryMarshal.GetReference(x)), x.Length),
                MemoryMarshal.CreateSpan(ref Unsafe.As<T, double>(ref MemoryMarshal.GetReference(y)), y.Length));
        }
        else
        {
            throw new NotSupportedException($"ExpKernel.Exp: {typeof(T).Name} is neither float nor double.");
        }
    }

    /// <summary>exp(x) for one float32 value, by the same operations as the vector path.</summary>
    public static float Exp(float x)
        => FastExp.Exp(x);

    /// <summary>exp(x) for one float64 value, by the same operations as the vector path.</summary>
    public static double Exp(double x) => VectorMath.One<ExpFunction>(x);

    /// <summary>exp of each lane; NaN lanes stay NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<double> Exp(Vector<double> x)
    {
        // Below −746 the result rounds to +0, above 710 to +∞; the clamp also keeps 2ᵏ within two normal halves.
        var c = Vector.MinNative(Vector.MaxNative(x, new Vector<double>(-746.0)), new Vector<double>(710.0));
        var k = Vector.Round(c * new Vector<double>(InvLn2));
        var hi = c - (k * new Vector<double>(Ln2Hi));
        var lo = k * new Vector<double>(Ln2Lo);
        var r = hi - lo;
        var t = r * r;
        var p = Vector.MultiplyAddEstimate(new Vector<double>(P5), t, new Vector<double>(P4));
        p = Vector.MultiplyAddEstimate(p, t, new Vector<double>(P3));
        p = Vector.MultiplyAddEstimate(p, t, new Vector<double>(P2));
        p = Vector.MultiplyAddEstimate(p, t, new Vector<double>(P1));
        var cr = r - (t * p);
        var y = Vector<double>.One - ((lo - (r * cr / (new Vector<double>(2.0) - cr))) - hi);

        // Where every |c| ≤ 708, |k| ≤ 1022 and y·2ᵏ is a normal double: one exact multiplication by 2ᵏ gives the bits of
        // the two-step scale, with five instructions fewer (10⁶ exps on 256 bits 1.41 → 1.19 ms, AMD EPYC Zen 5).
        var e = Vector.GreaterThanAny(Vector.Abs(c), new Vector<double>(708.0)) ? ScaleByPowerOfTwo(y, k) : y * PowerOfTwo(k);
        return Vector.ConditionalSelect(Vector.Equals(x, x), e, x);
    }

    /// <summary>
    /// eᵃ − 1 for lanes a in [−60, 0] (the caller clamps): a = k·ln2 + r, eʳ − 1 by its Taylor series to r¹⁴ (|r| ≤ ln2/2,
    /// so the first omitted term is below 2⁻⁵⁶·|r|), then 2ᵏ·(eʳ − 1) + (2ᵏ − 1) with one rounding (two on a CPU without FMA). Where k = 0 this is the
    /// series alone, relatively accurate down to subnormal a.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector<double> ExpM1NonPositive(Vector<double> a)
    {
        var k = Vector.Round(a * new Vector<double>(InvLn2));
        var r = (a - (k * new Vector<double>(Ln2Hi))) - (k * new Vector<double>(Ln2Lo));
        var q = new Vector<double>(1.0 / 87178291200.0);
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 6227020800.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 479001600.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 39916800.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 3628800.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 362880.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 40320.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 5040.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 720.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 120.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 24.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(1.0 / 6.0));
        q = Vector.MultiplyAddEstimate(q, r, new Vector<double>(0.5));
        var p = Vector.MultiplyAddEstimate(r * r, q, r);

        // 2ᵏ for k in [−87, 0] is a normal double; 2ᵏ − 1 is exact down to k = −53 and rounds to −1 below.
        var s = PowerOfTwo(k);
        return Vector.MultiplyAddEstimate(s, p, s - Vector<double>.One);
    }

    /// <summary>
    /// y·2ᵏ for integral k in [−1076, 1024], in two steps of normal powers of two so that only the last one rounds. The
    /// halves are taken in double (⌊k/2⌋ and k − ⌊k/2⌋, both exact): 64-bit integer conversions and arithmetic shifts
    /// have no instruction below AVX-512, and .NET emulates them lane by lane there (six times slower in this exp).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<double> ScaleByPowerOfTwo(Vector<double> y, Vector<double> k)
    {
        var k1 = Vector.Floor(k * new Vector<double>(0.5));
        return y * PowerOfTwo(k1) * PowerOfTwo(k - k1);
    }

    /// <summary>
    /// 2ᵏ for integral k in [−1022, 1023], built from k's bits without a conversion instruction: k + 1.5·2⁵² holds k in
    /// the low bits of its significand (as 0x4338… + k), and shifting k + 1023 into the exponent field drops the rest.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<double> PowerOfTwo(Vector<double> k)
    {
        var bits = Vector.AsVectorInt64(k + new Vector<double>(6755399441055744.0)) + new Vector<long>(1023);
        return Vector.AsVectorDouble(Vector.ShiftLeft(bits, 52));
    }

    /// <summary>exp of each lane; NaN lanes stay NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<double> Exp(Vector512<double> x)
    {
        // Below −746 the result rounds to +0, above 710 to +∞; the clamp also keeps 2ᵏ within two normal halves.
        // The native min and max (one instruction each) may let a NaN lane through as either operand: it is restored below.
        var c = Vector512.MinNative(Vector512.MaxNative(x, Vector512.Create(-746.0)), Vector512.Create(710.0));
        var k = Vector512.Round(c * Vector512.Create(InvLn2));
        var hi = c - (k * Vector512.Create(Ln2Hi));
        var lo = k * Vector512.Create(Ln2Lo);
        var r = hi - lo;
        var t = r * r;
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P5), t, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, t, Vector512.Create(P1));
        var cr = r - (t * p);
        var y = Vector512<double>.One - ((lo - (r * cr / (Vector512.Create(2.0) - cr))) - hi);
        // vscalefpd rounds y·2ᵏ once, as the two-step scale does.
        var e = Avx512F.IsSupported ? Avx512F.Scale(y, k) : ScaleByPowerOfTwo(y, Vector512.ConvertToInt64(k));
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), e, x);
    }

    /// <summary>
    /// eᵃ − 1 for lanes a in [−60, 0] (the caller clamps): a = k·ln2 + r, eʳ − 1 by its Taylor series to r¹⁴ (|r| ≤ ln2/2,
    /// so the first omitted term is below 2⁻⁵⁶·|r|), then 2ᵏ·(eʳ − 1) + (2ᵏ − 1) with one rounding. Where k = 0 this is the
    /// series alone, relatively accurate down to subnormal a.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<double> ExpM1NonPositive(Vector512<double> a)
    {
        var k = Vector512.Round(a * Vector512.Create(InvLn2));
        var r = (a - (k * Vector512.Create(Ln2Hi))) - (k * Vector512.Create(Ln2Lo));
        var q = Vector512.Create(1.0 / 87178291200.0);
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 6227020800.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 479001600.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 39916800.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 3628800.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 362880.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 40320.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 5040.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 720.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 120.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 24.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(1.0 / 6.0));
        q = Vector512.FusedMultiplyAdd(q, r, Vector512.Create(0.5));
        var p = Vector512.FusedMultiplyAdd(r * r, q, r);

        // 2ᵏ for k in [−87, 0] is a normal double; 2ᵏ − 1 is exact down to k = −53 and rounds to −1 below.
        var s = Avx512F.IsSupported
            ? Avx512F.Scale(Vector512<double>.One, k)
            : Vector512.ShiftLeft(Vector512.ConvertToInt64(k) + Vector512.Create(1023L), 52).AsDouble();
        return Vector512.FusedMultiplyAdd(s, p, s - Vector512<double>.One);
    }

    /// <summary>y·2ᵏ for k in [−1076, 1024], in two steps of normal powers of two so that only the last one rounds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<double> ScaleByPowerOfTwo(Vector512<double> y, Vector512<long> k)
    {
        var k1 = Vector512.ShiftRightArithmetic(k, 1);
        var k2 = k - k1;
        var s1 = Vector512.ShiftLeft(k1 + Vector512.Create(1023L), 52).AsDouble();
        var s2 = Vector512.ShiftLeft(k2 + Vector512.Create(1023L), 52).AsDouble();
        return y * s1 * s2;
    }

    internal readonly struct ExpFunction : IVectorFunction
    {
        public static Vector<double> Apply(Vector<double> x) => Exp(x);

        public static Vector512<double> Apply(Vector512<double> x) => Exp(x);
    }
}

/// <summary>A function of float64 lanes that the span maps of <see cref="VectorMath"/> apply, by the same operations at either width.</summary>
internal interface IVectorFunction
{
    /// <summary>The function of each lane.</summary>
    static abstract Vector<double> Apply(Vector<double> x);

    /// <summary>The function of each lane, 8 at a time.</summary>
    static abstract Vector512<double> Apply(Vector512<double> x);
}

/// <summary>
/// Applies a float64 vector function to spans of float64 or float32 (widened, computed, rounded once), on 512-bit
/// vectors where they are accelerated and <see cref="Vector{T}"/> elsewhere. The tail of a span is copied into a vector
/// padded with zeros, and a single value goes through the same vector code, so every element takes the same
/// operations wherever it sits.
/// </summary>
internal static class VectorMath
{
    private static readonly bool Accelerated512 = Vector512.IsHardwareAccelerated;

    /// <summary>
    /// Set on a thread to run the portable code, on <see cref="Vector{T}"/> and without <see cref="FastExp"/>, where
    /// 512-bit vectors are accelerated (for tests).
    /// </summary>
    [ThreadStatic]
    internal static bool PortableOnly;

    /// <summary>Whether the 512-bit code runs on this thread.</summary>
    internal static bool Wide => Accelerated512 && !PortableOnly;

    public static void Map<TF>(ReadOnlySpan<double> x, Span<double> y, string op)
        where TF : IVectorFunction
    {
        CheckLength(x.Length, y.Length, op);
        if (x.Length == 1)
        {
            // One element (a scalar tensor, a tape of one-element steps): the broadcast vector, no buffer to fill.
            y[0] = One<TF>(x[0]);
            return;
        }

        // Each width in a method of its own: one method holding both loops runs out of the JIT's inlining budget, and
        // then calls each vector's load, function and store (measured: the 256-bit exp 2.6 times slower).
        if (Wide)
        {
            Map<TF, Vector512<double>, Double512>(x, y);
        }
        else
        {
            Map<TF, Vector<double>, DoubleVector>(x, y);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Map<TF, TV, TS>(ReadOnlySpan<double> x, Span<double> y)
        where TF : IVectorFunction
        where TV : struct
        where TS : ISimdDouble<TV>
    {
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var length = (nuint)x.Length;
        var n = (nuint)TS.Count;
        nuint i = 0;
        for (; i + n <= length; i += n)
        {
            TS.Store(TS.Apply<TF>(TS.Load(ref xr, i)), ref yr, i);
        }

        if (i < length)
        {
            Span<double> buffer = stackalloc double[TS.Count];
            buffer.Clear();
            x[(int)i..].CopyTo(buffer);
            TS.Store(TS.Apply<TF>(TS.Load(ref MemoryMarshal.GetReference(buffer), 0)), ref MemoryMarshal.GetReference(buffer), 0);
            buffer[..(int)(length - i)].CopyTo(y[(int)i..]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Map<TF>(ReadOnlySpan<float> x, Span<float> y, string op)
        where TF : IVectorFunction
    {
        CheckLength(x.Length, y.Length, op);
        if (x.Length == 1)
        {
            y[0] = One<TF>(x[0]);
            return;
        }

        var wide = Wide;
        var n = wide ? 16 : Vector<float>.Count;
        var i = 0;
        if (wide)
        {
            for (; i <= x.Length - n; i += n)
            {
                Apply<TF>(Vector512.Create(x.Slice(i, n))).CopyTo(y.Slice(i, n));
            }
        }
        else
        {
            for (; i <= x.Length - n; i += n)
            {
                Apply<TF>(new Vector<float>(x.Slice(i, n))).CopyTo(y.Slice(i, n));
            }
        }

        if (i < x.Length)
        {
            Span<float> buffer = stackalloc float[n];
            buffer.Clear();
            x[i..].CopyTo(buffer);
            if (wide)
            {
                Apply<TF>(Vector512.Create<float>(buffer)).CopyTo(buffer);
            }
            else
            {
                Apply<TF>(new Vector<float>(buffer)).CopyTo(buffer);
            }

            buffer[..(x.Length - i)].CopyTo(y[i..]);
        }
    }

    /// <summary>
    /// One pass of a float64 softmax row: y = exp(x − <paramref name="shift"/>) lane by lane (the same operations as
    /// <see cref="Map{TF}(ReadOnlySpan{double}, Span{double}, string)"/> on x − shift), written to <paramref name="y"/> when
    /// <paramref name="store"/>, and their sum. The tail is padded with −∞, whose exp adds nothing.
    /// </summary>
    public static double ExpShiftedSum(ReadOnlySpan<double> x, double shift, Span<double> y, bool store)
    {
        if (store)
        {
            CheckLength(x.Length, y.Length, "VectorMath.ExpShiftedSum");
        }

        return Wide ? ExpShiftedSum<Vector512<double>, Double512>(x, shift, y, store) : ExpShiftedSum<Vector<double>, DoubleVector>(x, shift, y, store);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double ExpShiftedSum<TV, TS>(ReadOnlySpan<double> x, double shift, Span<double> y, bool store)
        where TV : struct
        where TS : ISimdDouble<TV>
    {
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var length = (nuint)x.Length;
        var n = (nuint)TS.Count;
        var s = TS.Broadcast(shift);
        var acc0 = TS.Zero;
        var acc1 = TS.Zero;
        nuint i = 0;

        // Two exponentials a step on 512 bits; below (16 vector registers on x86 without AVX-512) one at a time spills
        // less, so the one-vector loop after this one takes the whole row.
        for (; n >= 8 && i + (2 * n) <= length; i += 2 * n)
        {
            var e0 = TS.Apply<ExpKernel.ExpFunction>(TS.Subtract(TS.Load(ref xr, i), s));
            var e1 = TS.Apply<ExpKernel.ExpFunction>(TS.Subtract(TS.Load(ref xr, i + n), s));
            if (store)
            {
                TS.Store(e0, ref yr, i);
                TS.Store(e1, ref yr, i + n);
            }

            acc0 = TS.Add(acc0, e0);
            acc1 = TS.Add(acc1, e1);
        }

        for (; i + n <= length; i += n)
        {
            var e = TS.Apply<ExpKernel.ExpFunction>(TS.Subtract(TS.Load(ref xr, i), s));
            if (store)
            {
                TS.Store(e, ref yr, i);
            }

            acc0 = TS.Add(acc0, e);
        }

        if (i < length)
        {
            // The tail, padded with −∞ (whose exp adds nothing).
            Span<double> buffer = stackalloc double[TS.Count];
            ref var br = ref MemoryMarshal.GetReference(buffer);
            buffer.Fill(double.NegativeInfinity);
            x[(int)i..].CopyTo(buffer);
            var e = TS.Apply<ExpKernel.ExpFunction>(TS.Subtract(TS.Load(ref br, 0), s));
            if (store)
            {
                TS.Store(e, ref br, 0);
                buffer[..(int)(length - i)].CopyTo(y[(int)i..]);
            }

            acc0 = TS.Add(acc0, e);
        }

        return TS.Sum(TS.Add(acc0, acc1));
    }

    /// <summary>
    /// The largest element of a span, for a softmax shift that only has to be an element (as
    /// <see cref="FastExp.MaxIgnoringNaN"/> in float32): where there are NaNs the result may be any element or NaN, and
    /// the sign of a zero maximum is unspecified. Four independent maxima of native max instructions, so the pass runs
    /// at the speed of the loads (<see cref="TensorPrimitives.Max{T}(ReadOnlySpan{T})"/> also orders NaN and −0).
    /// </summary>
    public static double MaxIgnoringNaN(ReadOnlySpan<double> x)
        => Wide ? MaxIgnoringNaN<Vector512<double>, Double512>(x) : MaxIgnoringNaN<Vector<double>, DoubleVector>(x);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static double MaxIgnoringNaN<TV, TS>(ReadOnlySpan<double> x)
        where TV : struct
        where TS : ISimdDouble<TV>
    {
        var n = (nuint)x.Length;
        var w = (nuint)TS.Count;
        if (n < w)
        {
            return TensorPrimitives.Max(x);
        }

        ref var xr = ref MemoryMarshal.GetReference(x);
        var m0 = TS.Load(ref xr, 0);
        var (m1, m2, m3) = (m0, m0, m0);
        var i = w;
        for (; i + (4 * w) <= n; i += 4 * w)
        {
            m0 = TS.MaxNative(m0, TS.Load(ref xr, i));
            m1 = TS.MaxNative(m1, TS.Load(ref xr, i + w));
            m2 = TS.MaxNative(m2, TS.Load(ref xr, i + (2 * w)));
            m3 = TS.MaxNative(m3, TS.Load(ref xr, i + (3 * w)));
        }

        for (; i + w <= n; i += w)
        {
            m0 = TS.MaxNative(m0, TS.Load(ref xr, i));
        }

        // The last vector again for a tail: the maximum does not mind seeing some elements twice.
        m1 = TS.MaxNative(m1, TS.Load(ref xr, n - w));
        return TS.MaxAcross(TS.MaxNative(TS.MaxNative(m0, m1), TS.MaxNative(m2, m3)));
    }

    /// <summary>
    /// y = (x − <paramref name="a"/>) − <paramref name="b"/> lane by lane, in one pass, rounded after each subtraction (the
    /// log-softmax forward's last pass, with its bits: two passes of one subtraction each gave the same values).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SubtractTwice<T>(ReadOnlySpan<T> x, T a, T b, Span<T> y)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        CheckLength(x.Length, y.Length, "VectorMath.SubtractTwice");
        ref var xr = ref MemoryMarshal.GetReference(x);
        ref var yr = ref MemoryMarshal.GetReference(y);
        var n = (nuint)x.Length;
        nuint i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
        {
            var w = (nuint)Vector512<T>.Count;
            var va = Vector512.Create(a);
            var vb = Vector512.Create(b);
            for (; i + (2 * w) <= n; i += 2 * w)
            {
                var x0 = Vector512.LoadUnsafe(ref xr, i);
                var x1 = Vector512.LoadUnsafe(ref xr, i + w);
                ((x0 - va) - vb).StoreUnsafe(ref yr, i);
                ((x1 - va) - vb).StoreUnsafe(ref yr, i + w);
            }

            for (; i + w <= n; i += w)
            {
                ((Vector512.LoadUnsafe(ref xr, i) - va) - vb).StoreUnsafe(ref yr, i);
            }
        }
        else if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var w = (nuint)Vector<T>.Count;
            var va = new Vector<T>(a);
            var vb = new Vector<T>(b);
            for (; i + (2 * w) <= n; i += 2 * w)
            {
                var x0 = Vector.LoadUnsafe(ref xr, i);
                var x1 = Vector.LoadUnsafe(ref xr, i + w);
                ((x0 - va) - vb).StoreUnsafe(ref yr, i);
                ((x1 - va) - vb).StoreUnsafe(ref yr, i + w);
            }

            for (; i + w <= n; i += w)
            {
                ((Vector.LoadUnsafe(ref xr, i) - va) - vb).StoreUnsafe(ref yr, i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref yr, i) = (Unsafe.Add(ref xr, i) - a) - b;
        }
    }

    /// <summary>
    /// One pass of a float64 log-softmax backward row: dst = g − exp(y) · <paramref name="scale"/>, lane by lane (exp as
    /// <see cref="Map{TF}(ReadOnlySpan{double}, Span{double}, string)"/> computes it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SubtractScaledExp(ReadOnlySpan<double> g, ReadOnlySpan<double> y, double scale, Span<double> dst)
    {
        CheckLength(y.Length, g.Length, "VectorMath.SubtractScaledExp");
        CheckLength(y.Length, dst.Length, "VectorMath.SubtractScaledExp");
        var i = Wide ? SubtractScaledExp<Vector512<double>, Double512>(g, y, scale, dst) : SubtractScaledExp<Vector<double>, DoubleVector>(g, y, scale, dst);
        for (; i < y.Length; i++)
        {
            dst[i] = g[i] - (One<ExpKernel.ExpFunction>(y[i]) * scale);
        }
    }

    /// <summary>The whole vectors of <see cref="SubtractScaledExp"/>; returns where the tail starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int SubtractScaledExp<TV, TS>(ReadOnlySpan<double> g, ReadOnlySpan<double> y, double scale, Span<double> dst)
        where TV : struct
        where TS : ISimdDouble<TV>
    {
        ref var gr = ref MemoryMarshal.GetReference(g);
        ref var yr = ref MemoryMarshal.GetReference(y);
        ref var dr = ref MemoryMarshal.GetReference(dst);
        var c = TS.Broadcast(scale);
        var n = (nuint)TS.Count;
        nuint i = 0;
        for (; i + n <= (nuint)y.Length; i += n)
        {
            TS.Store(TS.Subtract(TS.Load(ref gr, i), TS.Multiply(TS.Apply<ExpKernel.ExpFunction>(TS.Load(ref yr, i)), c)), ref dr, i);
        }

        return (int)i;
    }

    public static double One<TF>(double x)
        where TF : IVectorFunction
        => Wide ? TF.Apply(Vector512.Create(x)).ToScalar() : TF.Apply(new Vector<double>(x))[0];

    public static float One<TF>(float x)
        where TF : IVectorFunction
        => Wide ? Apply<TF>(Vector512.Create(x)).ToScalar() : Apply<TF>(new Vector<float>(x))[0];

    /// <summary>|v| with the sign of <paramref name="sign"/>, lane by lane (bit operations, so ±0 and NaN keep their sign bits).</summary>
    public static Vector<double> CopySign(Vector<double> v, Vector<double> sign)
    {
        var mask = Vector.AsVectorDouble(new Vector<long>(long.MinValue));
        return Vector.AndNot(v, mask) | (sign & mask);
    }

    /// <summary>|v| with the sign of <paramref name="sign"/>, lane by lane.</summary>
    public static Vector512<double> CopySign(Vector512<double> v, Vector512<double> sign)
    {
        var mask = Vector512.Create(long.MinValue).AsDouble();
        return Vector512.AndNot(v, mask) | (sign & mask);
    }

    private static Vector<float> Apply<TF>(Vector<float> x)
        where TF : IVectorFunction
    {
        Vector.Widen(x, out var low, out var high);
        return Vector.Narrow(TF.Apply(low), TF.Apply(high));
    }

    private static Vector512<float> Apply<TF>(Vector512<float> x)
        where TF : IVectorFunction
    {
        var (low, high) = Vector512.Widen(x);
        return Vector512.Narrow(TF.Apply(low), TF.Apply(high));
    }

    /// <summary>
    /// a·b + c as the vector kernels take it (<see cref="Vector.MultiplyAddEstimate(Vector{double}, Vector{double}, Vector{double})"/>):
    /// rounded once where the CPU has a fused multiply-add (x86 with FMA, every ARM64), else a multiply and an add, as
    /// on x86 without FMA .NET would compute a fused one in software, some thirty times slower in the softmax.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double MultiplyAdd(double a, double b, double c)
        => Fma.IsSupported || AdvSimd.IsSupported ? Math.FusedMultiplyAdd(a, b, c) : (a * b) + c;

    /// <summary>a·b + c in float32, as <see cref="MultiplyAdd(double, double, double)"/> takes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c)
        => Fma.IsSupported || AdvSimd.IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : (a * b) + c;

    /// <summary>a·b + c for float32 or float64 <typeparamref name="T"/>, as the overloads above take it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T MultiplyAdd<T>(T a, T b, T c)
        where T : unmanaged, IFloatingPointIeee754<T>
        => typeof(T) == typeof(float)
            ? Unsafe.BitCast<float, T>(MultiplyAdd(Unsafe.BitCast<T, float>(a), Unsafe.BitCast<T, float>(b), Unsafe.BitCast<T, float>(c)))
            : Unsafe.BitCast<double, T>(MultiplyAdd(Unsafe.BitCast<T, double>(a), Unsafe.BitCast<T, double>(b), Unsafe.BitCast<T, double>(c)));

    /// <summary>Refuses a destination of <paramref name="y"/> elements for a source of <paramref name="x"/>.</summary>
    public static void CheckLength(int x, int y, string op)
    {
        if (y < x)
        {
            ThrowShort(x, y, op);
        }
    }

    // Every kernel call runs the check above; building the message here keeps it small enough to inline.
    [DoesNotReturn]
    private static void ThrowShort(int x, int y, string op)
        => throw new ArgumentException($"{op}: the destination holds {y} elements but the source has {x}.", nameof(y));
}

/// <summary>
/// The float64 lane operations of <see cref="VectorMath"/>'s span loops at one width: the shared ones and
/// <see cref="Apply{TF}"/>, so that each loop is written once (and still compiles to one method per width: a method
/// holding both widths ran out of the JIT's inlining budget).
/// </summary>
internal interface ISimdDouble<TV> : ISimdLanes<double, TV>
    where TV : struct
{
    /// <summary>The function <typeparamref name="TF"/> of each lane at this width.</summary>
    static abstract TV Apply<TF>(TV x)
        where TF : IVectorFunction;
}

/// <summary>Eight float64 lanes on AVX-512.</summary>
internal readonly struct Double512 : ISimdDouble<Vector512<double>>
{
    public static int Count => 8;

    public static Vector512<double> Zero => Vector512<double>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Broadcast(double value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Load(ref double source, nuint index) => Vector512.LoadUnsafe(ref source, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<double> value, ref double destination, nuint index) => value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Add(Vector512<double> a, Vector512<double> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Subtract(Vector512<double> a, Vector512<double> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Multiply(Vector512<double> a, Vector512<double> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> MaxNative(Vector512<double> a, Vector512<double> b) => Vector512.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector512<double> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double MaxAcross(Vector512<double> v)
    {
        var q = Vector256.MaxNative(v.GetLower(), v.GetUpper());
        var h = Vector128.MaxNative(q.GetLower(), q.GetUpper());
        return Math.Max(h.GetElement(0), h.GetElement(1));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<double> Apply<TF>(Vector512<double> x)
        where TF : IVectorFunction
        => TF.Apply(x);
}

/// <summary>float64 lanes on <see cref="Vector{T}"/> (256 bits on AVX2, 128 on ARM64 and on x86 without AVX2).</summary>
internal readonly struct DoubleVector : ISimdDouble<Vector<double>>
{
    public static int Count => Vector<double>.Count;

    public static Vector<double> Zero => Vector<double>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Broadcast(double value) => new(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Load(ref double source, nuint index) => Vector.LoadUnsafe(ref source, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector<double> value, ref double destination, nuint index) => value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Add(Vector<double> a, Vector<double> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Subtract(Vector<double> a, Vector<double> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Multiply(Vector<double> a, Vector<double> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> MaxNative(Vector<double> a, Vector<double> b) => Vector.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Sum(Vector<double> v) => Vector.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double MaxAcross(Vector<double> v)
    {
        var max = v[0];
        for (var k = 1; k < Vector<double>.Count; k++)
        {
            max = Math.Max(max, v[k]);
        }

        return max;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<double> Apply<TF>(Vector<double> x)
        where TF : IVectorFunction
        => TF.Apply(x);
}
