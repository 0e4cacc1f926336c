using System.Numerics;
using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// Long add, subtract, multiply, divide, maximum and minimum on 256-bit vectors (<see cref="Stream256"/>, what the
/// 512-bit path runs for long spans): the bits of <c>TensorPrimitives</c> (a NaN where it gives one) for every operand
/// form, at every start of the destination and of the operands within 64 bytes, for lengths around the vector widths
/// and past the non-temporal threshold, with NaNs, infinities, signed zeros and divisions by zero; and the operators
/// that run them on large tensors.
/// </summary>
public class ElementwiseKernelTests
{
    public static TheoryData<string> Ops => ["add", "sub", "mul", "div", "max", "min"];

    [Theory]
    [MemberData(nameof(Ops))]
    public void Stream256GivesTheBitsOfTensorPrimitives(string op)
    {
        var lengths = Enumerable.Range(0, 40).Concat([63, 64, 65, 1000, 1023]).ToArray();
        Check<float>(op, lengths, v => (float)v, x => BitConverter.SingleToInt32Bits(x));
        Check<double>(op, lengths, v => v, x => BitConverter.DoubleToInt64Bits(x));

        // Past 256 KB the stores bypass the caches: 70 000 float32 and 40 000 float64 elements.
        Check<float>(op, [70_000], v => (float)v, x => BitConverter.SingleToInt32Bits(x), starts: 3);
        Check<double>(op, [40_000], v => v, x => BitConverter.DoubleToInt64Bits(x), starts: 3);
    }

    private static void Check<T>(string op, int[] lengths, Func<double, T> of, Func<T, long> bits, int starts = 16)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var size = lengths.Max() + 48;
        var rng = new Random(11);
        var a = new T[size];
        var b = new T[size];
        for (var i = 0; i < size; i++)
        {
            a[i] = of((rng.NextDouble() * 8) - 4);
            b[i] = of((rng.NextDouble() * 8) - 4);
        }

        a[5] = T.NaN;
        b[9] = T.NaN;
        a[12] = -T.NaN;
        b[12] = T.NaN;
        a[20] = T.PositiveInfinity;
        b[21] = T.NegativeInfinity;
        b[22] = T.Zero;
        b[23] = T.NegativeZero;
        a[30] = T.NegativeZero;
        b[30] = T.Zero;
        a[32] = T.Zero;
        b[32] = T.NegativeZero;
        a[31] = T.PositiveInfinity;
        b[31] = T.PositiveInfinity;
        var number = of(-0.375);
        var count = 0;
        foreach (var n in lengths)
        {
            for (var start = 0; start < starts; start++)
            {
                // The destination and the two operands start at different elements of their arrays, so their offsets
                // within a cache line differ, as tensors' storage does.
                var sa = (start + 5) % 16;
                var sb = (start * 3) % 16;
                var want = new T[n + 16];
                var got = new T[n + 16];
                for (var form = 0; form < 3; form++)
                {
                    Array.Clear(want);
                    Array.Clear(got);
                    Expected(op, form, a.AsSpan(sa, n), b.AsSpan(sb, n), number, want.AsSpan(start, n));
                    Actual(op, form, a.AsSpan(sa, n), b.AsSpan(sb, n), number, got.AsSpan(start, n));
                    for (var i = 0; i < got.Length; i++)
                    {
                        // Where both operands are NaN, which payload comes out is the JIT's choice (it may swap the
                        // operands of an add or a multiply): a NaN is all that is asked there.
                        Assert.True(
                            T.IsNaN(want[i]) ? T.IsNaN(got[i]) : bits(want[i]) == bits(got[i]),
                            $"{op} {typeof(T).Name} form {form}, n = {n}, start {start}, element {i}: {got[i]} against TensorPrimitives {want[i]}");
                    }

                    count++;
                }
            }
        }

        Assert.Equal(lengths.Length * starts * 3, count);
    }

    /// <summary>TensorPrimitives: span ⊕ span (form 0), span ⊕ number (1), number ⊕ span (2).</summary>
    private static void Expected<T>(string op, int form, ReadOnlySpan<T> a, ReadOnlySpan<T> b, T s, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (op, form)
        {
            case ("add", 0): TensorPrimitives.Add(a, b, dst); break;
            case ("add", 1): TensorPrimitives.Add(a, s, dst); break;
            case ("add", _): TensorPrimitives.Add(b, s, dst); break;
            case ("sub", 0): TensorPrimitives.Subtract(a, b, dst); break;
            case ("sub", 1): TensorPrimitives.Subtract(a, s, dst); break;
            case ("sub", _): TensorPrimitives.Subtract(s, b, dst); break;
            case ("mul", 0): TensorPrimitives.Multiply(a, b, dst); break;
            case ("mul", 1): TensorPrimitives.Multiply(a, s, dst); break;
            case ("mul", _): TensorPrimitives.Multiply(b, s, dst); break;
            case ("div", 0): TensorPrimitives.Divide(a, b, dst); break;
            case ("div", 1): TensorPrimitives.Divide(a, s, dst); break;
            case ("div", _): TensorPrimitives.Divide(s, b, dst); break;
            case ("max", 0): TensorPrimitives.Max(a, b, dst); break;
            case ("max", 1): TensorPrimitives.Max(a, s, dst); break;
            case ("max", _): TensorPrimitives.Max(b, s, dst); break;
            case ("min", 0): TensorPrimitives.Min(a, b, dst); break;
            case ("min", 1): TensorPrimitives.Min(a, s, dst); break;
            default: TensorPrimitives.Min(b, s, dst); break;
        }
    }

    /// <summary>The same through <see cref="Stream256"/> directly, whatever path this machine would take.</summary>
    private static void Actual<T>(string op, int form, ReadOnlySpan<T> a, ReadOnlySpan<T> b, T s, Span<T> dst)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (op)
        {
            case "add": Run<T, AddKernel<T>>(form, a, b, s, dst, swapNumber: true); break;
            case "sub": Run<T, SubKernel<T>>(form, a, b, s, dst, swapNumber: false); break;
            case "mul": Run<T, MulKernel<T>>(form, a, b, s, dst, swapNumber: true); break;
            case "div": Run<T, DivKernel<T>>(form, a, b, s, dst, swapNumber: false); break;
            case "max": Run<T, MaxKernel<T>>(form, a, b, s, dst, swapNumber: true); break;
            default: Run<T, MinKernel<T>>(form, a, b, s, dst, swapNumber: true); break;
        }

        // The kernels' number-first add, multiply, max and min put the span first, as TensorPrimitives has no other form.
        static void Run<TT, TOp>(int form, ReadOnlySpan<TT> a, ReadOnlySpan<TT> b, TT s, Span<TT> dst, bool swapNumber)
            where TT : unmanaged, IFloatingPointIeee754<TT>
            where TOp : IBinaryKernel256<TT>
        {
            if (form == 0)
            {
                Stream256.Run<TT, TOp>(a, b, dst);
            }
            else if (form == 1)
            {
                Stream256.Run<TT, TOp>(a, s, dst);
            }
            else if (swapNumber)
            {
                Stream256.Run<TT, TOp>(b, s, dst);
            }
            else
            {
                Stream256.Run<TT, TOp>(s, b, dst);
            }
        }
    }

    [Theory]
    [InlineData(DType.Float32)]
    [InlineData(DType.Float64)]
    public void LargeOperatorsGiveEachElementsOwnResult(DType dtype)
    {
        // Views at offsets 1 and 3 into their storage, of 2^17 + 5 elements: the workers' chunks are long enough for the
        // 256-bit loops, and no operand lies like the result within a cache line.
        var n = (1 << 17) + 5;
        var baseA = Tensor.RandN(new Shape(n + 8), 1, dtype);
        var baseB = Tensor.RandN(new Shape(n + 8), 2, dtype);
        var a = baseA.Narrow(0, 1, n);
        var b = baseB.Narrow(0, 3, n);
        var av = a.ToArray();
        var bv = b.ToArray();
        (string Name, Tensor Got, Func<double, double, double> Want)[] cases =
        [
            ("a + b", a + b, (x, y) => x + y),
            ("a - b", a - b, (x, y) => x - y),
            ("a * b", a * b, (x, y) => x * y),
            ("a / b", a / b, (x, y) => x / y),
            ("a + 0.75", a + 0.75, (x, _) => x + 0.75),
            ("0.75 - a", 0.75 - a, (x, _) => 0.75 - x),
            ("a * 0.75", a * 0.75, (x, _) => x * 0.75),
            ("0.75 / a", 0.75 / a, (x, _) => 0.75 / x),
            ("a.Maximum(b)", a.Maximum(b), Math.Max),
            ("a.Minimum(b)", a.Minimum(b), Math.Min),
            ("a.Maximum(0.25)", a.Maximum(0.25), (x, _) => Math.Max(x, 0.25)),
            ("a.Relu()", a.Relu(), (x, _) => Math.Max(x, 0)),
        ];
        foreach (var (name, got, want) in cases)
        {
            var g = got.ToArray();
            for (var i = 0; i < n; i++)
            {
                var expected = dtype == DType.Float32 ? (float)want((float)av[i], (float)bv[i]) : want(av[i], bv[i]);
                Assert.True(expected.Equals(g[i]), $"{name} {dtype} element {i}: {g[i]} against {expected}");
            }
        }

        // A gradient that meets itself at a node is summed by the walk with the same loops: d(a + a)/da = g + g.
        var x = a.Detach().WithRequiresGrad();
        var dy = baseB.Narrow(0, 5, n);
        var dx = Autodiff.Grad(x + x, x, dy).ToArray();
        var dyv = dy.ToArray();
        for (var i = 0; i < n; i++)
        {
            var expected = dtype == DType.Float32 ? (float)dyv[i] + (float)dyv[i] : dyv[i] + dyv[i];
            Assert.True(expected.Equals(dx[i]), $"gradient of a + a, {dtype} element {i}: {dx[i]} against {expected}");
        }
    }
}
