using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Autograd.Kernels;

/// <summary>A binary elementwise operation that also has a 256-bit vector form, for <see cref="Stream256"/>.</summary>
internal interface IBinaryKernel256<T> : IBinaryKernel<T>
{
    /// <summary>The operation on each lane; each lane's result has the bits of <see cref="IBinaryKernel{T}.Apply"/>.</summary>
    static abstract Vector256<T> Apply(Vector256<T> a, Vector256<T> b);
}

/// <summary>
/// An operation that <c>TensorPrimitives</c> has too: its span loops run in <see cref="Stream256"/> where that applies
/// and in <c>TensorPrimitives</c> otherwise (<see cref="Stream256.RunOrPrimitive{T, TOp}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T})"/>),
/// with the same bits.
/// </summary>
internal interface IPrimitiveKernel<T> : IBinaryKernel256<T>
{
    /// <summary>dst = a ⊕ b with <c>TensorPrimitives</c>.</summary>
    static abstract void Primitive(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst);

    /// <summary>dst = a ⊕ b for a number b with <c>TensorPrimitives</c>.</summary>
    static abstract void Primitive(ReadOnlySpan<T> a, T b, Span<T> dst);

    /// <summary>dst = a ⊕ b for a number a with <c>TensorPrimitives</c>.</summary>
    static abstract void Primitive(T a, ReadOnlySpan<T> b, Span<T> dst);
}

/// <summary>A rule of several operations per element, with a <see cref="Vector{T}"/> form for the 128-bit path too.</summary>
internal interface IRuleKernel<T> : IBinaryKernel256<T>
{
    /// <summary>The rule on each lane; each lane's result has the bits of <see cref="IBinaryKernel{T}.Apply"/>.</summary>
    static abstract Vector<T> Apply(Vector<T> a, Vector<T> b);
}

/// <summary>An operand of <see cref="Stream256"/>: a span read element by element, or one number for every element.</summary>
internal interface IStreamOperand<T>
    where T : unmanaged
{
    /// <summary>The 256-bit vector of elements i, i + 1, ….</summary>
    Vector256<T> Vector(int i);

    /// <summary>The <see cref="Vector{T}"/> of elements i, i + 1, … (the 128-bit path's loops).</summary>
    Vector<T> Portable(int i);

    /// <summary>Element i.</summary>
    T Element(int i);
}

/// <summary>
/// Elementwise loops on 256-bit vectors in one pass. Long add, subtract, multiply, divide, maximum and minimum run here
/// on the 512-bit path. A .NET array's elements are only 8-byte aligned, and <c>TensorPrimitives</c> aligns its 512-bit
/// stores to the destination, so when the operands lie at another offset within a cache line than the destination,
/// every 512-bit load spans two lines. From memory that costs more than the wider vectors gain: on the AMD EPYC (Zen 5)
/// VM, <c>TensorPrimitives.Add</c> of two 1×10⁶-element float64 arrays took 580 µs with 512-bit loads spanning two
/// lines, 290 µs when all three arrays had the same offset and 330 µs on 256-bit vectors (docs/design.md, "Softmax,
/// three ways"). So spans of at least <see cref="MinLength"/> elements run here, with stores aligned to 32 bytes, and
/// non-temporal past 256 KB as <c>TensorPrimitives</c> does; each element is the one operation of its scalar form, so
/// the result has the bits of <c>TensorPrimitives</c> (a NaN where it gives one). The rules of tanh and sigmoid, three
/// operations per element, run here at any length in one pass instead of three (<see cref="Rule{T, TOp}(ReadOnlySpan{T}, ReadOnlySpan{T}, Span{T})"/>).
/// </summary>
internal static unsafe class Stream256
{
    /// <summary>The shortest span that runs here: shorter ones come from the caches, where 512-bit loads win.</summary>
    public const int MinLength = 1 << 14;

    private const int NonTemporalBytes = 256 * 1024;

    /// <summary>Whether a span of <paramref name="length"/> elements runs here: on the 512-bit path, when it is long.</summary>
    public static bool Applies(int length) => length >= MinLength && FastExp.Bits == 512;

    /// <summary>
    /// Whether 256-bit vectors run in hardware (the 512- and 256-bit paths), so that a rule of several operations per
    /// element can run here in one pass at any length.
    /// </summary>
    public static bool IsAccelerated => FastExp.Bits >= 256;

    /// <summary>
    /// dst = rule(a, b) in one pass: on 256-bit vectors where they run in hardware, else on <see cref="Vector{T}"/>
    /// (128 bits: NEON, SSE), else element by element.
    /// </summary>
    public static void Rule<T, TOp>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IRuleKernel<T>
    {
        var n = dst.Length;
        Rule<T, TOp, SpanOperand<T>, SpanOperand<T>>(new(a[..n]), new(b[..n]), dst);
    }

    /// <summary>dst = rule(a, b) for a number a, in one pass (see the other overload).</summary>
    public static void Rule<T, TOp>(T a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IRuleKernel<T>
        => Rule<T, TOp, NumberOperand<T>, SpanOperand<T>>(new(a), new(b[..dst.Length]), dst);

    /// <summary>dst = a ⊕ b elementwise: here when <see cref="Applies"/>, else with <c>TensorPrimitives</c>.</summary>
    public static void RunOrPrimitive<T, TOp>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IPrimitiveKernel<T>
    {
        if (Applies(dst.Length))
        {
            Run<T, TOp>(a, b, dst);
        }
        else
        {
            TOp.Primitive(a, b, dst);
        }
    }

    /// <summary>dst = a ⊕ b for a number b: here when <see cref="Applies"/>, else with <c>TensorPrimitives</c>.</summary>
    public static void RunOrPrimitive<T, TOp>(ReadOnlySpan<T> a, T b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IPrimitiveKernel<T>
    {
        if (Applies(dst.Length))
        {
            Run<T, TOp>(a, b, dst);
        }
        else
        {
            TOp.Primitive(a, b, dst);
        }
    }

    /// <summary>dst = a ⊕ b for a number a: here when <see cref="Applies"/>, else with <c>TensorPrimitives</c>.</summary>
    public static void RunOrPrimitive<T, TOp>(T a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IPrimitiveKernel<T>
    {
        if (Applies(dst.Length))
        {
            Run<T, TOp>(a, b, dst);
        }
        else
        {
            TOp.Primitive(a, b, dst);
        }
    }

    /// <summary>dst = a ⊕ b elementwise.</summary>
    public static void Run<T, TOp>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IBinaryKernel256<T>
    {
        var n = dst.Length;
        Run<T, TOp, SpanOperand<T>, SpanOperand<T>>(new(a[..n]), new(b[..n]), dst);
    }

    /// <summary>dst = a ⊕ b for a number b.</summary>
    public static void Run<T, TOp>(ReadOnlySpan<T> a, T b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IBinaryKernel256<T>
        => Run<T, TOp, SpanOperand<T>, NumberOperand<T>>(new(a[..dst.Length]), new(b), dst);

    /// <summary>dst = a ⊕ b for a number a.</summary>
    public static void Run<T, TOp>(T a, ReadOnlySpan<T> b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IBinaryKernel256<T>
        => Run<T, TOp, NumberOperand<T>, SpanOperand<T>>(new(a), new(b[..dst.Length]), dst);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<T, TOp, TA, TB>(TA a, TB b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IBinaryKernel256<T>
        where TA : IStreamOperand<T>, allows ref struct
        where TB : IStreamOperand<T>, allows ref struct
    {
        var n = dst.Length;
        var w = Vector256<T>.Count;
        fixed (T* d = dst)
        {
            var i = 0;
            for (var head = Math.Min(n, (int)((32 - ((nint)d & 31)) & 31) / sizeof(T)); i < head; i++)
            {
                d[i] = TOp.Apply(a.Element(i), b.Element(i));
            }

            if (n * sizeof(T) > NonTemporalBytes)
            {
                for (; i <= n - (2 * w); i += 2 * w)
                {
                    Vector256.StoreAlignedNonTemporal(TOp.Apply(a.Vector(i), b.Vector(i)), d + i);
                    Vector256.StoreAlignedNonTemporal(TOp.Apply(a.Vector(i + w), b.Vector(i + w)), d + i + w);
                }
            }

            for (; i <= n - (2 * w); i += 2 * w)
            {
                Vector256.StoreAligned(TOp.Apply(a.Vector(i), b.Vector(i)), d + i);
                Vector256.StoreAligned(TOp.Apply(a.Vector(i + w), b.Vector(i + w)), d + i + w);
            }

            for (; i <= n - w; i += w)
            {
                Vector256.StoreAligned(TOp.Apply(a.Vector(i), b.Vector(i)), d + i);
            }

            for (; i < n; i++)
            {
                d[i] = TOp.Apply(a.Element(i), b.Element(i));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rule<T, TOp, TA, TB>(TA a, TB b, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TOp : IRuleKernel<T>
        where TA : IStreamOperand<T>, allows ref struct
        where TB : IStreamOperand<T>, allows ref struct
    {
        if (IsAccelerated)
        {
            Run<T, TOp, TA, TB>(a, b, dst);
            return;
        }

        var n = dst.Length;
        ref var dr = ref MemoryMarshal.GetReference(dst);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (var w = Vector<T>.Count; i <= n - w; i += w)
            {
                TOp.Apply(a.Portable(i), b.Portable(i)).StoreUnsafe(ref dr, (nuint)i);
            }
        }

        for (; i < n; i++)
        {
            Unsafe.Add(ref dr, i) = TOp.Apply(a.Element(i), b.Element(i));
        }
    }

    private readonly ref struct SpanOperand<T>(ReadOnlySpan<T> span) : IStreamOperand<T>
        where T : unmanaged
    {
        private readonly ref readonly T _first = ref MemoryMarshal.GetReference(span);

        public Vector256<T> Vector(int i) => Vector256.LoadUnsafe(in _first, (nuint)i);

        public Vector<T> Portable(int i) => System.Numerics.Vector.LoadUnsafe(in _first, (nuint)i);

        public T Element(int i) => Unsafe.Add(ref Unsafe.AsRef(in _first), i);
    }

    private readonly struct NumberOperand<T>(T value) : IStreamOperand<T>
        where T : unmanaged
    {
        private readonly Vector256<T> _vector = Vector256.Create(value);

        private readonly Vector<T> _portable = new(value);

        public Vector256<T> Vector(int i) => _vector;

        public Vector<T> Portable(int i) => _portable;

        public T Element(int i) => value;
    }
}
