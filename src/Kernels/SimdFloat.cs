using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Kernels;

/// <summary>
/// The lane operations that the span kernels of both element types are written with, once for every vector width: a
/// kernel generic over <c>TV</c> (the vector) and <c>TS</c> (an interface over it) is compiled for each width, and each
/// call below becomes one or a few instructions. <see cref="ISimdFloat{TV}"/> and <see cref="ISimdDouble{TV}"/> add what
/// their kernels need beyond these.
/// </summary>
/// <typeparam name="T">The element type, float or double.</typeparam>
/// <typeparam name="TV">The vector type over <typeparamref name="T"/>.</typeparam>
internal interface ISimdLanes<T, TV>
    where T : unmanaged
    where TV : struct
{
    /// <summary>The number of lanes.</summary>
    static abstract int Count { get; }

    /// <summary>The vector of zeros.</summary>
    static abstract TV Zero { get; }

    /// <summary>Every lane <paramref name="value"/>.</summary>
    static abstract TV Broadcast(T value);

    /// <summary>The lanes at <paramref name="source"/> + <paramref name="index"/>.</summary>
    static abstract TV Load(ref T source, nuint index);

    /// <summary>Writes the lanes at <paramref name="destination"/> + <paramref name="index"/>.</summary>
    static abstract void Store(TV value, ref T destination, nuint index);

    /// <summary>a + b.</summary>
    static abstract TV Add(TV a, TV b);

    /// <summary>a − b.</summary>
    static abstract TV Subtract(TV a, TV b);

    /// <summary>a · b.</summary>
    static abstract TV Multiply(TV a, TV b);

    /// <summary>The larger lane; where either is NaN, any of the two (the platform's instruction).</summary>
    static abstract TV MaxNative(TV a, TV b);

    /// <summary>The sum of the lanes.</summary>
    static abstract T Sum(TV v);

    /// <summary>The largest lane (NaN lanes as <see cref="MaxNative"/> treats them).</summary>
    static abstract T MaxAcross(TV v);
}

/// <summary>The float32 lane operations of <see cref="FastExp"/>'s kernels: the shared ones and these.</summary>
/// <typeparam name="TV">The vector type: <see cref="Vector512{T}"/>, <see cref="Vector256{T}"/> or <see cref="Vector128{T}"/> of float.</typeparam>
internal interface ISimdFloat<TV> : ISimdLanes<float, TV>
    where TV : struct
{
    /// <summary>
    /// a · b + c, rounded once where the CPU has a fused multiply-add (every 512- and 256-bit path, ARM64), else a multiply
    /// and an add: on x86 without FMA .NET computes a fused one in software, some thirty times slower in the softmax.
    /// </summary>
    static abstract TV FusedMultiplyAdd(TV a, TV b, TV c);

    /// <summary>The smaller lane; where either is NaN, any of the two (the platform's instruction).</summary>
    static abstract TV MinNative(TV a, TV b);

    /// <summary>Each lane rounded to the nearest integer, ties to even.</summary>
    static abstract TV RoundToEven(TV a);

    /// <summary>
    /// p · 2ⁿ rounded once, for lanes n integral and at least −150 and p in [0.5, 2] (or NaN): subnormal results are
    /// rounded once, results past the largest float become +∞.
    /// </summary>
    static abstract TV ScaleByPowerOfTwo(TV p, TV n);

    /// <summary>The first <paramref name="count"/> lanes of <paramref name="v"/>, the others 0.</summary>
    static abstract TV FirstLanes(TV v, int count);
}

/// <summary>16 lanes: AVX-512 (<c>vrndscaleps</c>, <c>vscalefps</c>).</summary>
internal readonly struct Simd512 : ISimdFloat<Vector512<float>>
{
    public static int Count => 16;

    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref float source, nuint index) => Vector512.LoadUnsafe(ref source, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref float destination, nuint index) => value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FusedMultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MaxNative(Vector512<float> a, Vector512<float> b) => Avx512F.Max(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MinNative(Vector512<float> a, Vector512<float> b) => Avx512F.Min(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundToEven(Vector512<float> a) => Avx512F.RoundScale(a, 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ScaleByPowerOfTwo(Vector512<float> p, Vector512<float> n) => Avx512F.Scale(p, n);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FirstLanes(Vector512<float> v, int count)
        => Vector512.ConditionalSelect(Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle(), v, Vector512<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector512<float> v) => Simd256.MaxAcross(Avx.Max(v.GetLower(), v.GetUpper()));
}

/// <summary>8 lanes: AVX2 and FMA on x86.</summary>
internal readonly struct Simd256 : ISimdFloat<Vector256<float>>
{
    public static int Count => 8;

    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(ref float source, nuint index) => Vector256.LoadUnsafe(ref source, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref float destination, nuint index) => value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FusedMultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MaxNative(Vector256<float> a, Vector256<float> b) => Vector256.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MinNative(Vector256<float> a, Vector256<float> b) => Vector256.MinNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundToEven(Vector256<float> a) => Vector256.Round(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ScaleByPowerOfTwo(Vector256<float> p, Vector256<float> n)
    {
        // Two normal powers of two, 2^(n >> 1) and 2^(n − (n >> 1)), both in [2⁻⁷⁵, 2⁶⁴]: the first product is exact,
        // the second rounds once, as vscalefps does. n is clamped at 128 (the result is +∞ from there) so that a huge
        // lane converts to a small integer; a NaN lane of p stays NaN whatever its n.
        // Where every |n| ≤ 125, p · 2ⁿ is a normal float for p in [0.5, 2]: one exact product gives the same bits with six
        // instructions fewer (10⁶ float32 exps on 256 bits 0.47 → 0.43 ms, AMD EPYC Zen 5). n is an integer, so its bits
        // come from RoundingBits, not from a conversion: .NET's conversion to int32 saturates, which x86 has no
        // instruction for below AVX-512 (five instructions instead of one).
        if (!Vector256.GreaterThanAny(Vector256.Abs(n), Vector256.Create(125f)))
        {
            return p * (Vector256.ShiftLeft(RoundingBits(n), 23) + Vector256.Create(127 << 23)).AsSingle();
        }

        var k = RoundingBits(Vector256.MinNative(n, Vector256.Create(128f))) - Vector256.Create(RoundingConstantBits);
        var k1 = Vector256.ShiftRightArithmetic(k, 1);
        var s1 = Vector256.ShiftLeft(k1 + Vector256.Create(127), 23).AsSingle();
        var s2 = Vector256.ShiftLeft(k - k1 + Vector256.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>The bits of 1.5 · 2²³, the constant of <see cref="RoundingBits(Vector256{float})"/>.</summary>
    internal const int RoundingConstantBits = 0x4B400000;

    /// <summary>
    /// The bits of n + 1.5 · 2²³ for integral lanes |n| ≤ 2²², exact: its low 23 bits hold n + 2²², so shifting it left
    /// by 23 gives n's low bits in the exponent field, and subtracting <see cref="RoundingConstantBits"/> gives n.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> RoundingBits(Vector256<float> n) => (n + Vector256.Create(12582912f)).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FirstLanes(Vector256<float> v, int count)
        => Vector256.ConditionalSelect(Vector256.LessThan(Vector256<int>.Indices, Vector256.Create(count)).AsSingle(), v, Vector256<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Vector256.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector256<float> v) => Simd128.MaxAcross(Vector128.MaxNative(v.GetLower(), v.GetUpper()));
}

/// <summary>4 lanes: SSE on x86, NEON on ARM64.</summary>
internal readonly struct Simd128 : ISimdFloat<Vector128<float>>
{
    public static int Count => 4;

    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(ref float source, nuint index) => Vector128.LoadUnsafe(ref source, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref float destination, nuint index) => value.StoreUnsafe(ref destination, index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Subtract(Vector128<float> a, Vector128<float> b) => a - b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Multiply(Vector128<float> a, Vector128<float> b) => a * b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> FusedMultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MaxNative(Vector128<float> a, Vector128<float> b) => Vector128.MaxNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MinNative(Vector128<float> a, Vector128<float> b) => Vector128.MinNative(a, b);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> RoundToEven(Vector128<float> a) => Vector128.Round(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> ScaleByPowerOfTwo(Vector128<float> p, Vector128<float> n)
    {
        // As Simd256.ScaleByPowerOfTwo: one exact product where every |n| ≤ 125, else two normal powers of two, only the
        // second product rounding.
        if (!Vector128.GreaterThanAny(Vector128.Abs(n), Vector128.Create(125f)))
        {
            return p * (Vector128.ShiftLeft(RoundingBits(n), 23) + Vector128.Create(127 << 23)).AsSingle();
        }

        var k = RoundingBits(Vector128.MinNative(n, Vector128.Create(128f))) - Vector128.Create(Simd256.RoundingConstantBits);
        var k1 = Vector128.ShiftRightArithmetic(k, 1);
        var s1 = Vector128.ShiftLeft(k1 + Vector128.Create(127), 23).AsSingle();
        var s2 = Vector128.ShiftLeft(k - k1 + Vector128.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    /// <summary>As <see cref="Simd256.RoundingBits(Vector256{float})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<int> RoundingBits(Vector128<float> n) => (n + Vector128.Create(12582912f)).AsInt32();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> FirstLanes(Vector128<float> v, int count)
        => Vector128.ConditionalSelect(Vector128.LessThan(Vector128<int>.Indices, Vector128.Create(count)).AsSingle(), v, Vector128<float>.Zero);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v) => Vector128.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Vector128<float> v)
    {
        var q = Vector128.MaxNative(v, Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1)));
        q = Vector128.MaxNative(q, Vector128.Shuffle(q, Vector128.Create(1, 0, 3, 2)));
        return q.ToScalar();
    }
}
