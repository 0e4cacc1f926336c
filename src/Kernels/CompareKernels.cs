using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>A predicate on two elements, for <see cref="CompareKernel{T, TPredicate}"/>.</summary>
internal interface IComparePredicate<T>
{
    static abstract bool Test(T a, T b);
}

/// <summary>1 where the predicate holds, else 0: a mask in the floating type of the operands. NaN compares as IEEE (only ≠ holds).</summary>
internal readonly struct CompareKernel<T, TPredicate> : IBinaryKernel<T>
    where T : IFloatingPointIeee754<T>
    where TPredicate : IComparePredicate<T>
{
    public static T Apply(T a, T b) => TPredicate.Test(a, b) ? T.One : T.Zero;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
    {
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = TPredicate.Test(a[i], b[i]) ? T.One : T.Zero;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst)
    {
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = TPredicate.Test(a[i], b) ? T.One : T.Zero;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst)
    {
        for (var i = 0; i < dst.Length; i++)
        {
            dst[i] = TPredicate.Test(a, b[i]) ? T.One : T.Zero;
        }
    }
}

internal readonly struct EqPredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a == b;
}

internal readonly struct NePredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a != b;
}

internal readonly struct LtPredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a < b;
}

internal readonly struct LePredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a <= b;
}

internal readonly struct GtPredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a > b;
}

internal readonly struct GePredicate<T> : IComparePredicate<T>
    where T : IFloatingPointIeee754<T>
{
    public static bool Test(T a, T b) => a >= b;
}

/// <summary>The elementwise maximum, NaN propagating (as PyTorch's <c>maximum</c>).</summary>
internal readonly struct MaxKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => T.Max(a, b);

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => Vector256.Max(a, b);

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MaxKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, MaxKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MaxKernel<T>>(b, a, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Max(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Max(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Max(b, a, dst);
}

/// <summary>The elementwise minimum, NaN propagating (as PyTorch's <c>minimum</c>).</summary>
internal readonly struct MinKernel<T> : IPrimitiveKernel<T>
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T Apply(T a, T b) => T.Min(a, b);

    public static Vector256<T> Apply(Vector256<T> a, Vector256<T> b) => Vector256.Min(a, b);

    public static void Run(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MinKernel<T>>(a, b, dst);

    public static void Run(ReadOnlySpan<T> a, T b, Span<T> dst) => Stream256.RunOrPrimitive<T, MinKernel<T>>(a, b, dst);

    public static void Run(T a, ReadOnlySpan<T> b, Span<T> dst) => Stream256.RunOrPrimitive<T, MinKernel<T>>(b, a, dst);

    public static void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Min(a, b, dst);

    public static void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst) => TensorPrimitives.Min(a, b, dst);

    public static void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst) => TensorPrimitives.Min(b, a, dst);
}
