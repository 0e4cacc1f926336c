using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// The float32 exponential and softmax row kernels on each vector width (512, 256 and 128 bits, narrowed on the test
/// thread through <see cref="FastExp.WidthLimit"/>), against float64 references and against each other; and the split
/// of one long row between threads (<see cref="LongRows"/>) against the one-row kernels, float64 and itself.
/// </summary>
public class SoftmaxKernelTests(ITestOutputHelper output)
{
    public static TheoryData<int> Widths => [512, 256, 128];

    /// <summary>Runs <paramref name="action"/> with the kernels narrowed to <paramref name="bits"/> on this thread.</summary>
    private static T AtWidth<T>(int bits, Func<T> action)
    {
        FastExp.WidthLimit = bits;
        try
        {
            return action();
        }
        finally
        {
            FastExp.WidthLimit = 0;
        }
    }

    public static TheoryData<int, int> WidthsAndRowLengths()
    {
        var data = new TheoryData<int, int>();
        foreach (var bits in new[] { 512, 256, 128 })
        {
            foreach (var size in new[] { 3, 1000, 300_000 })
            {
                data.Add(bits, size);
            }
        }

        return data;
    }

    /// <summary>
    /// Logsumexp over rows of every length its kernel treats differently (shorter than a vector, rows of vectors, long
    /// rows whose parts the threads share, those at full width), with a row holding +∞ among finite values, a row of −∞
    /// only and a row holding NaN and +∞: +∞, −∞ and NaN as PyTorch gives them (below 512 bits float32's one-pass
    /// exponential makes exp(+∞ − 0) NaN, so the +∞ row must not reach it), and the finite row within a few roundings of
    /// a float64 sum of its elements.
    /// </summary>
    [Theory]
    [MemberData(nameof(WidthsAndRowLengths))]
    public void LogSumExpOfRowsWithInfinitiesAndNaNs(int bits, int size)
    {
        var rng = new Random(size);
        var values = new double[4 * size];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (rng.NextDouble() * 20) - 10;
        }

        values[size + (size / 2)] = double.PositiveInfinity;
        Array.Fill(values, double.NegativeInfinity, 2 * size, size);
        values[(3 * size) + (size / 3)] = double.NaN;
        values[(4 * size) - 1] = double.PositiveInfinity;
        var x32 = values.Select(v => (float)v).ToArray();
        var r32 = AtWidth(bits, () =>
        {
            var r = new float[4];
            SoftmaxKernels.LogSumExp(x32, 0, r, 0, 4, size, 1);
            return r.Select(v => (double)v).ToArray();
        });
        var r64 = AtWidth(bits, () =>
        {
            var r = new double[4];
            SoftmaxKernels.LogSumExp(values, 0, r, 0, 4, size, 1);
            return r;
        });
        foreach (var (name, r, row, tolerance) in new[] { ("float32", r32, x32.Take(size).Select(v => (double)v).ToArray(), 64 * 5.96e-8), ("float64", r64, values[..size], 64 * 1.12e-16) })
        {
            var max = row.Max();
            var exact = Math.Log(row.Sum(v => Math.Exp(v - max))) + max;
            var at = $"{name}, {bits}-bit, rows of {size}";
            Assert.True(Math.Abs(r[0] - exact) <= tolerance * Math.Abs(exact), $"{at}: finite row {r[0]:R}, float64 sum {exact:R}");
            Assert.True(double.IsPositiveInfinity(r[1]), $"{at}: the row holding +inf gave {r[1]:R}");
            Assert.True(double.IsNegativeInfinity(r[2]), $"{at}: the row of -inf gave {r[2]:R}");
            Assert.True(double.IsNaN(r[3]), $"{at}: the row holding NaN and +inf gave {r[3]:R}");
        }
    }

    private static float[] Sweep()
    {
        var values = new List<float>();
        for (var x = -110.0; x <= 110.0; x += 1.0 / 64)
        {
            values.Add((float)x);
        }

        foreach (var t in new[] { 88.72283f, -87.33655f, -103.27893f, 0f })
        {
            var bits = BitConverter.SingleToInt32Bits(t);
            for (var k = -64; k <= 64; k++)
            {
                values.Add(BitConverter.Int32BitsToSingle(bits + k));
            }
        }

        values.AddRange([-0f, float.NegativeInfinity, float.PositiveInfinity, float.NaN, float.MaxValue, -float.MaxValue, float.Epsilon, 1e-30f]);
        return [.. values];
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void TheBackwardsDotProductIsWithinTheSummationBoundOfTheExactOne(int bits)
    {
        // Lengths around every vector and unrolled-block edge, and the rows of the benchmarks.
        var rng = new Random(7);
        foreach (var n in Enumerable.Range(0, 140).Concat([255, 256, 257, 1000, 1024, 4099]))
        {
            var a = new float[n];
            var b = new float[n];
            for (var i = 0; i < n; i++)
            {
                a[i] = (float)((rng.NextDouble() * 2) - 1);
                b[i] = (float)rng.NextDouble();
            }

            double exact = 0, magnitude = 0;
            for (var i = 0; i < n; i++)
            {
                exact += (double)a[i] * b[i];
                magnitude += Math.Abs((double)a[i] * b[i]);
            }

            // Any order of n float32 additions is within n·u·Σ|aᵢbᵢ| of the exact sum (u = 2⁻²⁴).
            var dot = AtWidth(bits, () => FastExp.Dot(a, b));
            Assert.True(Math.Abs(dot - exact) <= (n * Math.Pow(2, -24) * magnitude) + 1e-30, $"{bits}-bit, n = {n}: {dot} against {exact}");
        }

        Assert.ThrowsAny<ArgumentException>(() => FastExp.Dot(new float[5], new float[4]));
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void ExpIsWithinTwoUlpAndGivesTheSameBitsOnEveryWidth(int bits)
    {
        var x = Sweep();
        var wide = new float[x.Length];
        FastExp.Exp(x, wide);
        var narrow = AtWidth(bits, () =>
        {
            var y = new float[x.Length];
            FastExp.Exp(x, y);
            return y;
        });

        var worst = 0L;
        for (var i = 0; i < x.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(wide[i]), BitConverter.SingleToInt32Bits(narrow[i]));
            worst = Math.Max(worst, AccuracyTests.Ulps(narrow[i], (float)Math.Exp(x[i])));
            var one = AtWidth(bits, () => FastExp.Exp(x[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(narrow[i]), BitConverter.SingleToInt32Bits(one));
        }

        output.WriteLine($"{bits}-bit exp: {worst} ulp on {x.Length} inputs");
        Assert.True(worst <= 2, $"{bits}-bit exp: {worst} ulp");
        Assert.Equal(1f, AtWidth(bits, () => FastExp.Exp(0f)));
        Assert.Equal(0f, AtWidth(bits, () => FastExp.Exp(float.NegativeInfinity)));
        Assert.Equal(float.PositiveInfinity, AtWidth(bits, () => FastExp.Exp(float.PositiveInfinity)));
        Assert.True(float.IsNaN(AtWidth(bits, () => FastExp.Exp(float.NaN))));
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void ExpKernelFollowsTheWidth(int bits)
    {
        var x = Sweep();
        var y = AtWidth(bits, () =>
        {
            var r = new float[x.Length];
            ExpKernel.Exp(x, r);
            return r;
        });
        for (var i = 0; i < x.Length; i++)
        {
            Assert.True(AccuracyTests.Ulps(y[i], (float)Math.Exp(x[i])) <= 2, $"exp({x[i]:R}) = {y[i]:R}");
        }
    }

    public static TheoryData<int, bool> Float64OnePassCases()
    {
        var data = new TheoryData<int, bool>();
        foreach (var n in new[] { 1, 2, 7, 8, 9, 15, 16, 17, 33, OpTable.Long })
        {
            data.Add(n, false);
            data.Add(n, true);
        }

        return data;
    }

    /// <summary>
    /// The float64 one-pass row pieces (the maximum; exp of the shifted row with its sum; the two subtractions of log-softmax; the
    /// log-softmax backward) give, element by element, the bits of the operations they fuse, on the 512-bit vectors and on
    /// <see cref="System.Numerics.Vector{T}"/> (portable), whatever the row's length.
    /// </summary>
    [Theory]
    [MemberData(nameof(Float64OnePassCases))]
    public void Float64OnePassRowPiecesGiveTheBitsOfTheOperationsTheyFuse(int n, bool portable)
    {
        var rng = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => (rng.NextDouble() * 40) - 20).ToArray();
        var g = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var shift = x.Max();
        VectorMath.PortableOnly = portable;
        try
        {
            Assert.Equal(shift, VectorMath.MaxIgnoringNaN(x));
            var withNaN = (double[])x.Clone();
            withNaN[n / 2] = double.NaN;
            var m = VectorMath.MaxIgnoringNaN(withNaN);
            Assert.True(double.IsNaN(m) || withNaN.Contains(m), $"n={n}: {m} is neither NaN nor an element");

            var y = new double[n];
            var sum = VectorMath.ExpShiftedSum(x, shift, y, store: true);
            var expected = new double[n];
            ExpKernel.Exp(x.Select(v => v - shift).ToArray(), expected);
            Assert.Equal(expected, y);
            Assert.Equal(expected.Sum(), sum, 1e-15 * n);
            Assert.Equal(sum, VectorMath.ExpShiftedSum(x, shift, [], store: false));

            var lse = Math.Log(sum);
            var logY = new double[n];
            VectorMath.SubtractTwice(x, shift, lse, logY);
            Assert.Equal(x.Select(v => (v - shift) - lse).ToArray(), logY);

            var dx = new double[n];
            VectorMath.SubtractScaledExp(g, logY, 1.25, dx);
            Assert.Equal(g.Zip(logY, (gi, yi) => gi - (ExpKernel.Exp(yi) * 1.25)).ToArray(), dx);
        }
        finally
        {
            VectorMath.PortableOnly = false;
        }
    }

    public static TheoryData<int, int, bool> RowCases()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (var bits in new[] { 512, 256, 128 })
        {
            foreach (var n in new[] { 1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 100, 1000, 4099 })
            {
                data.Add(bits, n, false);
                data.Add(bits, n, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(RowCases))]
    public void RowKernelsMatchFloat64(int bits, int n, bool log)
    {
        const int rows = 5;
        var rng = new Random(n * 31 + bits);
        var x = new float[rows * n];
        var g = new float[rows * n];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)((rng.NextDouble() * 40) - 20);
            g[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        var (y, dx) = AtWidth(bits, () =>
        {
            var yy = new float[x.Length];
            var dd = new float[x.Length];
            SoftmaxKernels.Forward(x, 0, yy, rows, n, 1, log);
            SoftmaxKernels.Backward(g, 0, yy, 0, dd, rows, n, 1, log);
            return (yy, dd);
        });

        for (var r = 0; r < rows; r++)
        {
            var (ry, rdx, terms) = Reference(x.AsSpan(r * n, n), g.AsSpan(r * n, n), log);
            Compare(x.AsSpan(r * n, n), y.AsSpan(r * n, n), ry, dx.AsSpan(r * n, n), rdx, terms, log, $"{bits}-bit n={n} log={log} row {r}");
        }
    }

    /// <summary>
    /// Rows shorter than <see cref="SoftmaxKernels.ShortRow"/> are taken a block at a time. Every row still gets the
    /// one-row kernels' values (within the rounding of a sum taken in another order) and their special values: a NaN or
    /// a +∞ makes the row NaN, −∞ elements get 0 (log-softmax −∞), an all −∞ row is NaN. 300 rows cross the blocks' edges;
    /// the forward writes its result over its input as well as to a new array.
    /// </summary>
    [Theory]
    [MemberData(nameof(Widths))]
    public void ShortRowsGiveTheOneRowKernelsValues(int bits)
    {
        foreach (var n in new[] { 1, 2, 5, 10, SoftmaxKernels.ShortRow - 1 })
        {
            foreach (var log in new[] { false, true })
            {
                AtWidth(bits, () => Check<float>(n, log, v => (float)v, 4e-6));
                AtWidth(bits, () => Check<double>(n, log, v => v, 1e-14));
            }
        }

        static bool Check<T>(int n, bool log, Func<double, T> of, double tolerance)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            const int rows = 300;
            var rng = new Random((n * 7) + (log ? 1 : 0));
            var x = new T[rows * n];
            var g = new T[rows * n];
            for (var i = 0; i < x.Length; i++)
            {
                x[i] = of((rng.NextDouble() * 40) - 20);
                g[i] = of((rng.NextDouble() * 2) - 1);
            }

            x[(3 * n) + (n / 2)] = T.NaN;
            x[(7 * n) + (n / 3)] = T.PositiveInfinity;
            x.AsSpan(11 * n, n).Fill(T.NegativeInfinity);
            for (var j = 0; j < n; j += 2)
            {
                x[(13 * n) + j] = T.NegativeInfinity;
            }

            var y = new T[x.Length];
            var dx = new T[x.Length];
            SoftmaxKernels.Forward(x, 0, y, rows, n, 1, log);
            SoftmaxKernels.Backward(g, 0, y, 0, dx, rows, n, 1, log);
            var inPlace = (T[])x.Clone();
            SoftmaxKernels.Forward(inPlace, 0, inPlace, rows, n, 1, log);
            Assert.True(inPlace.AsSpan().SequenceEqual(y), $"{typeof(T).Name} n={n} log={log}: in place differs");

            var y1 = new T[n];
            var dx1 = new T[n];
            for (var r = 0; r < rows; r++)
            {
                var at = r * n;
                SoftmaxKernels.ForwardRow<T>(x.AsSpan(at, n), y1, log);
                SoftmaxKernels.BackwardRow<T>(g.AsSpan(at, n), y.AsSpan(at, n), dx1, log);
                var gs = 1.0;
                for (var j = 0; j < n; j++)
                {
                    gs += Math.Abs(double.CreateTruncating(g[at + j]));
                }

                for (var j = 0; j < n; j++)
                {
                    var what = $"{typeof(T).Name} n={n} log={log} row {r} [{j}]: {y[at + j]} / {dx[at + j]} against the one-row kernel's {y1[j]} / {dx1[j]}";
                    Assert.True(T.IsNaN(y[at + j]) == T.IsNaN(y1[j]), what);
                    Assert.True(T.IsNaN(dx[at + j]) == T.IsNaN(dx1[j]), what);
                    var a = double.CreateTruncating(y[at + j]);
                    var b = double.CreateTruncating(y1[j]);
                    Assert.True(double.IsNaN(b) || a == b || Math.Abs(a - b) <= tolerance * Math.Max(Math.Abs(b), log ? 1 : 0), what);
                    var da = double.CreateTruncating(dx[at + j]);
                    var db = double.CreateTruncating(dx1[j]);
                    Assert.True(double.IsNaN(db) || da == db || Math.Abs(da - db) <= tolerance * gs, what);
                }

                var special = r is 3 or 7 or 11 || (r == 13 && n == 1);
                Assert.True(special == T.IsNaN(y[at]), $"{typeof(T).Name} n={n} log={log} row {r}: y[0] = {y[at]}");
            }

            return true;
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void MaxAndShiftedSumMatchFloat64(int bits)
    {
        foreach (var n in new[] { 1, 5, 8, 16, 23, 64, 65, 200 })
        {
            var x = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i * 1.7) * 30).ToArray();
            var (max, sum) = AtWidth(bits, () =>
            {
                var m = FastExp.MaxIgnoringNaN(x);
                return (m, FastExp.ExpShifted(x, m, new float[n], store: false));
            });
            Assert.Equal(x.Max(), max);
            var reference = x.Sum(v => Math.Exp(v - (double)max));
            Assert.True(Math.Abs(sum - reference) <= Tolerance(n) * reference, $"{bits}-bit n={n}: {sum} vs {reference}");
        }
    }

    // ───────────────────────────── the long row split ─────────────────────────────

    public static TheoryData<int, bool> LongCases()
    {
        var data = new TheoryData<int, bool>();
        foreach (var n in new[] { SoftmaxKernels.LongRow - 1, SoftmaxKernels.LongRow, SoftmaxKernels.LongRow + 1001, 1_000_000 })
        {
            data.Add(n, false);
            data.Add(n, true);
        }

        return data;
    }

    /// <summary>
    /// Blocks of rows shared between threads (32×1000 float64 splits into chunks of 4096 elements below 512 bits, and
    /// every shape here splits into chunks of 32 768 or more) give the bits of each row computed alone on one thread.
    /// </summary>
    [Theory]
    [InlineData(32, 1000, 1, false)]
    [InlineData(32, 1000, 1, true)]
    [InlineData(96, 1000, 1, false)]
    [InlineData(96, 1000, 1, true)]
    [InlineData(40, 50, 40, false)]
    [InlineData(40, 50, 40, true)]
    public void RowsSplitBetweenThreadsGiveTheBitsOfOneThread(int outer, int size, int inner, bool log)
    {
        Check<double>(outer, size, inner, log, v => v);
        Check<float>(outer, size, inner, log, v => (float)v);

        static void Check<T>(int outer, int size, int inner, bool log, Func<double, T> of)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random((outer * 31) + size + inner);
            var n = outer * size * inner;
            var x = new T[n];
            var g = new T[n];
            for (var i = 0; i < n; i++)
            {
                x[i] = of((rng.NextDouble() * 30) - 15);
                g[i] = of((rng.NextDouble() * 2) - 1);
            }

            var y = new T[n];
            var dx = new T[n];
            var r = new T[outer * inner];
            SoftmaxKernels.Forward(x, 0, y, outer, size, inner, log);
            SoftmaxKernels.Backward(g, 0, y, 0, dx, outer, size, inner, log);
            SoftmaxKernels.LogSumExp(x, 0, r, 0, outer, size, inner);

            // Each outer block alone, one call per block.
            var block = size * inner;
            for (var o = 0; o < outer; o++)
            {
                var xo = x.AsSpan(o * block, block).ToArray();
                var go = g.AsSpan(o * block, block).ToArray();
                var yo = new T[block];
                var dxo = new T[block];
                var ro = new T[inner];
                SoftmaxKernels.Forward(xo, 0, yo, 1, size, inner, log);
                SoftmaxKernels.Backward(go, 0, yo, 0, dxo, 1, size, inner, log);
                SoftmaxKernels.LogSumExp<T>(xo, ro, 1, size, inner);
                var at = $"{typeof(T).Name} [{outer}, {size}, {inner}] log={log} block {o}";
                Assert.True(yo.AsSpan().SequenceEqual(y.AsSpan(o * block, block)), $"forward, {at}");
                Assert.True(dxo.AsSpan().SequenceEqual(dx.AsSpan(o * block, block)), $"backward, {at}");
                Assert.True(ro.AsSpan().SequenceEqual(r.AsSpan(o * inner, inner)), $"logsumexp, {at}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(LongCases))]
    public void LongRowMatchesTheOneRowKernelAndFloat64(int n, bool log)
    {
        var rng = new Random(n);
        var x = new float[n];
        var g = new float[n];
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)((rng.NextDouble() * 30) - 15);
            g[i] = (float)((rng.NextDouble() * 2) - 1);
        }

        var y = new float[n];
        var dx = new float[n];
        SoftmaxKernels.Forward(x, 0, y, 1, n, 1, log);
        SoftmaxKernels.Backward(g, 0, y, 0, dx, 1, n, 1, log);

        // The same bits again.
        var y2 = new float[n];
        var dx2 = new float[n];
        SoftmaxKernels.Forward(x, 0, y2, 1, n, 1, log);
        SoftmaxKernels.Backward(g, 0, y2, 0, dx2, 1, n, 1, log);
        Assert.Equal(y, y2);
        Assert.Equal(dx, dx2);

        // The one-row kernels on one thread.
        var y1 = new float[n];
        var dx1 = new float[n];
        SoftmaxKernels.ForwardRow<float>(x, y1, log);
        SoftmaxKernels.BackwardRow<float>(g, y1, dx1, log);
        var (ry, rdx, terms) = Reference(x, g, log);
        Compare(x, y, [.. y1.Select(v => (double)v)], dx, [.. dx1.Select(v => (double)v)], terms, log, $"n={n} log={log} against one thread");
        Compare(x, y, ry, dx, rdx, terms, log, $"n={n} log={log} against float64");

        // float64 through the split too.
        var xd = x.Select(v => (double)v).ToArray();
        var gd = g.Select(v => (double)v).ToArray();
        var yd = new double[n];
        var dxd = new double[n];
        SoftmaxKernels.Forward(xd, 0, yd, 1, n, 1, log);
        SoftmaxKernels.Backward(gd, 0, yd, 0, dxd, 1, n, 1, log);
        for (var i = 0; i < n; i += 97)
        {
            Assert.True(Math.Abs(yd[i] - ry[i]) <= 1e-12 * Math.Max(Math.Abs(ry[i]), log ? 1 : 0), $"float64 y[{i}] {yd[i]} vs {ry[i]}");
        }

        // The float64 gradient through the split against the one-row kernel on one thread, whose sum is taken in one
        // piece: they differ only by how Σ g (or Σ g⊙y) was summed.
        var dxd1 = new double[n];
        SoftmaxKernels.BackwardRow<double>(gd, yd, dxd1, log);
        var sumAbsG = gd.Sum(Math.Abs);
        for (var i = 0; i < n; i += 97)
        {
            var scale = log ? 1 + (Math.Exp(yd[i]) * sumAbsG) : (Math.Abs(gd[i]) + 1) * Math.Abs(yd[i]);
            Assert.True(Math.Abs(dxd[i] - dxd1[i]) <= 1e-12 * scale, $"float64 dx[{i}] {dxd[i]} vs one thread {dxd1[i]}");
        }

        var lse = new float[1];
        SoftmaxKernels.LogSumExp(x, 0, lse, 0, 1, n, 1);
        var lse1 = new float[1];
        SoftmaxKernels.LogSumExp<float>(x, lse1, 1, n, 1);
        var max = x.Max();
        var rlse = Math.Log(x.Sum(v => Math.Exp(v - (double)max))) + max;
        Assert.True(Math.Abs(lse[0] - rlse) <= Tolerance(n) * Math.Abs(rlse), $"logsumexp {lse[0]} vs {rlse}");
        Assert.True(Math.Abs(lse[0] - lse1[0]) <= Tolerance(n) * Math.Abs(rlse), $"logsumexp {lse[0]} vs one thread {lse1[0]}");
    }

    public static TheoryData<string, bool> SpecialRows()
    {
        var data = new TheoryData<string, bool>();
        foreach (var name in new[] { "some -inf", "one part -inf", "all -inf", "NaN", "+inf", "NaN in a -inf part" })
        {
            data.Add(name, false);
            data.Add(name, true);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SpecialRows))]
    public void LongRowKeepsTheOneRowSemanticsOfSpecialValues(string name, bool log)
    {
        var n = SoftmaxKernels.LongRow + 5000;
        var x = new float[n];
        var rng = new Random(7);
        for (var i = 0; i < n; i++)
        {
            x[i] = (float)((rng.NextDouble() * 10) - 5);
        }

        switch (name)
        {
            case "some -inf":
                for (var i = 0; i < n; i += 3)
                {
                    x[i] = float.NegativeInfinity;
                }

                break;
            case "one part -inf":
                x.AsSpan(SoftmaxKernels.PartElements, SoftmaxKernels.PartElements).Fill(float.NegativeInfinity);
                break;
            case "all -inf":
                x.AsSpan().Fill(float.NegativeInfinity);
                break;
            case "NaN":
                x[n / 2] = float.NaN;
                break;
            case "+inf":
                x[n / 3] = float.PositiveInfinity;
                break;
            case "NaN in a -inf part":
                x.AsSpan(SoftmaxKernels.PartElements, SoftmaxKernels.PartElements).Fill(float.NegativeInfinity);
                x[SoftmaxKernels.PartElements + 9] = float.NaN;
                break;
        }

        var y = new float[n];
        SoftmaxKernels.Forward(x, 0, y, 1, n, 1, log);
        var y1 = new float[n];
        SoftmaxKernels.ForwardRow<float>(x, y1, log);
        for (var i = 0; i < n; i++)
        {
            Assert.True(float.IsNaN(y[i]) == float.IsNaN(y1[i]), $"{name}: y[{i}] = {y[i]} but one thread gives {y1[i]}");
            if (!float.IsNaN(y1[i]))
            {
                Assert.True(y[i] == y1[i] || Math.Abs(y[i] - y1[i]) <= Tolerance(n) * Math.Max(Math.Abs(y1[i]), log ? 1 : 0), $"{name}: y[{i}] = {y[i]} vs {y1[i]}");
            }
        }

        var xd = x.Select(v => (double)v).ToArray();
        var yd = new double[n];
        SoftmaxKernels.Forward(xd, 0, yd, 1, n, 1, log);
        var yd1 = new double[n];
        SoftmaxKernels.ForwardRow<double>(xd, yd1, log);
        for (var i = 0; i < n; i++)
        {
            Assert.True(double.IsNaN(yd[i]) == double.IsNaN(yd1[i]), $"{name} float64: y[{i}] = {yd[i]} but one thread gives {yd1[i]}");
        }

        var lse = new float[1];
        SoftmaxKernels.LogSumExp(x, 0, lse, 0, 1, n, 1);
        var lse1 = new float[1];
        SoftmaxKernels.LogSumExp<float>(x, lse1, 1, n, 1);
        Assert.True(lse[0].Equals(lse1[0]) || Math.Abs(lse[0] - lse1[0]) <= Tolerance(n) * Math.Abs(lse1[0]), $"{name}: logsumexp {lse[0]} vs one thread {lse1[0]}");
    }

    /// <summary>Softmax (or log-softmax) and its backward of one row in float64.</summary>
    private static (double[] Y, double[] Dx, double Terms) Reference(ReadOnlySpan<float> x, ReadOnlySpan<float> g, bool log)
    {
        var n = x.Length;
        var max = double.NegativeInfinity;
        foreach (var v in x)
        {
            max = Math.Max(max, v);
        }

        var sum = 0.0;
        foreach (var v in x)
        {
            sum += Math.Exp(v - max);
        }

        var p = new double[n];
        var y = new double[n];
        for (var i = 0; i < n; i++)
        {
            p[i] = Math.Exp(x[i] - max) / sum;
            y[i] = log ? x[i] - max - Math.Log(sum) : p[i];
        }

        var dx = new double[n];
        var terms = 0.0;
        if (log)
        {
            var sg = 0.0;
            var sa = 0.0;
            foreach (var v in g)
            {
                sg += v;
                sa += Math.Abs(v);
            }

            for (var i = 0; i < n; i++)
            {
                dx[i] = g[i] - (p[i] * sg);
                terms = Math.Max(terms, Math.Abs(g[i]) + (p[i] * sa));
            }
        }
        else
        {
            var dot = 0.0;
            var da = 0.0;
            for (var i = 0; i < n; i++)
            {
                dot += g[i] * p[i];
                da += Math.Abs(g[i] * p[i]);
            }

            for (var i = 0; i < n; i++)
            {
                dx[i] = p[i] * (g[i] - dot);
                terms = Math.Max(terms, p[i] * (Math.Abs(g[i]) + da));
            }
        }

        return (y, dx, terms);
    }

    /// <summary>
    /// The float32 error allowed for a row of <paramref name="n"/>: a few ulp for the exponential and the scale, and the
    /// sum's rounding, which grows about as √n with the partial sums of vector lanes.
    /// </summary>
    private static double Tolerance(int n) => 6e-8 * (8 + (4 * Math.Sqrt(n)));

    /// <summary>
    /// Values element by element relative to themselves (log-softmax: to max(|y|, 1)), allowing for the rounding of x − max; gradients against the size of the
    /// terms they are differences of (<paramref name="terms"/>, max over the row of (|g| + Σ|g⊙p|)·p, or |g| + p·Σ|g|).
    /// </summary>
    private static void Compare(ReadOnlySpan<float> x, ReadOnlySpan<float> y, double[] ry, ReadOnlySpan<float> dx, double[] rdx, double terms, bool log, string what)
    {
        var max = double.NegativeInfinity;
        foreach (var v in x)
        {
            max = Math.Max(max, v);
        }

        var tolerance = Tolerance(y.Length);
        var worstDx = 0.0;
        for (var i = 0; i < y.Length; i++)
        {
            // x − max is rounded to float32 before the exponential: a relative error of up to |x − max|·2⁻²⁴ in exp.
            var allowed = tolerance + (6e-8 * Math.Abs(x[i] - max));
            var error = Math.Abs(y[i] - ry[i]) / Math.Max(Math.Abs(ry[i]), log ? 1 : 1e-30);
            Assert.True(error <= allowed, $"{what}: y[{i}] off by {error:E2} relative, tolerance {allowed:E2}");
            worstDx = Math.Max(worstDx, Math.Abs(dx[i] - rdx[i]));
        }

        Assert.True(worstDx <= tolerance * terms, $"{what}: dx off by {worstDx:E2} against terms of {terms:E2}, tolerance {tolerance:E2}");
    }

    /// <summary>
    /// The backward's 256-bit update gives TensorPrimitives.AddMultiply's bits, in float32 and float64, for every length
    /// up to a few vectors past a cache line and every start within one (so the unaligned head, the aligned stores and
    /// the tail all run), with NaNs, infinities and signed zeros among the values; and its float64 dot product is within
    /// the summation bound of the exact one.
    /// </summary>
    [Fact]
    public void Rows256AddMultiplyGivesTheBitsOfTensorPrimitives()
    {
        var cases = Check<float>(v => (float)v) + Check<double>(v => v);
        Assert.True(cases > 0);

        var rng = new Random(3);
        foreach (var n in Enumerable.Range(0, 70).Concat([255, 256, 257, 1000, 1024, 4099]))
        {
            var a = new double[n];
            var b = new double[n];
            for (var i = 0; i < n; i++)
            {
                a[i] = (rng.NextDouble() * 2) - 1;
                b[i] = rng.NextDouble();
            }

            // The exact sum from the products' float64 parts and rounding errors, summed in order (far below the bound).
            double exact = 0, magnitude = 0;
            for (var i = 0; i < n; i++)
            {
                var p = a[i] * b[i];
                exact += p + Math.FusedMultiplyAdd(a[i], b[i], -p);
                magnitude += Math.Abs(p);
            }

            var dot = Rows256.Dot<double>(a, b);
            Assert.True(Math.Abs(dot - exact) <= ((n + 1) * Math.Pow(2, -53) * magnitude) + 1e-300, $"n = {n}: {dot} against {exact}");
        }

        static int Check<T>(Func<double, T> of)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(7);
            var g = new T[200];
            var y = new T[200];
            for (var i = 0; i < g.Length; i++)
            {
                g[i] = of((rng.NextDouble() * 4) - 2);
                y[i] = of(rng.NextDouble());
            }

            g[5] = T.NaN;
            g[40] = T.PositiveInfinity;
            y[41] = T.Zero;
            g[77] = T.NegativeZero;
            y[90] = T.NegativeInfinity;
            var a = of(-0.375);
            var count = 0;
            for (var start = 0; start < 16; start++)
            {
                for (var n = 0; n + start + 16 <= g.Length; n += n < 40 ? 1 : 13)
                {
                    // The destination starts at a different element of its array each time, as tensors' storage does.
                    var want = new T[n + 16];
                    var got = new T[n + 16];
                    TensorPrimitives.AddMultiply(g.AsSpan(start, n), a, y.AsSpan(start, n), want.AsSpan(start, n));
                    Rows256.AddMultiply<T>(g.AsSpan(start, n), a, y.AsSpan(start, n), got.AsSpan(start, n));
                    for (var i = 0; i < got.Length; i++)
                    {
                        Assert.True(
                            want[i].Equals(got[i]) && T.IsNegative(want[i]) == T.IsNegative(got[i]),
                            $"{typeof(T).Name} start {start} n {n} [{i}]: {got[i]} against TensorPrimitives' {want[i]}");
                    }

                    count++;
                }
            }

            return count;
        }
    }

    /// <summary>
    /// The 512- and 256-bit paths run the same backward row loops (<see cref="Rows256"/>), so they give the same bits, in
    /// float32 and float64, on rows of every length the loops treat differently.
    /// </summary>
    [Fact]
    public void BackwardRowsGiveTheSameBitsOn512And256Bits()
    {
        Check<float>(v => (float)v);
        Check<double>(v => v);

        static void Check<T>(Func<double, T> of)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(11);
            foreach (var n in new[] { 1, 3, 8, 15, 16, 17, 31, 33, 100, 1000, 1024, 4099 })
            {
                var x = new T[n];
                var g = new T[n + 1];
                for (var i = 0; i < n; i++)
                {
                    x[i] = of((rng.NextDouble() * 30) - 15);
                    g[i + 1] = of((rng.NextDouble() * 2) - 1);
                }

                var y = new T[n];
                SoftmaxKernels.ForwardRow<T>(x, y, log: false);
                var wide = AtWidth(512, () => Backward(g.AsSpan(1), y));
                var narrow = AtWidth(256, () => Backward(g.AsSpan(1), y));
                Assert.True(wide.AsSpan().SequenceEqual(narrow), $"{typeof(T).Name} n={n}: the 512-bit path's gradient differs from the 256-bit path's");
            }
        }

        static T[] Backward<T>(ReadOnlySpan<T> g, T[] y)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var dx = new T[y.Length + 1];
            SoftmaxKernels.BackwardRow<T>(g, y, dx.AsSpan(1), log: false);
            return dx;
        }
    }

    /// <summary>
    /// A backward of 2 MB or more, its rows shared between threads, gives row for row the bits of the one-row kernel, in
    /// float32 and float64, softmax and log-softmax, with the gradient starting at an offset into its array.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LargeBackwardsGiveTheBitsOfTheOneRowKernel(bool log)
    {
        Check<float>(600, 1000, log, v => (float)v);
        Check<double>(300, 1000, log, v => v);

        static void Check<T>(int outer, int size, bool log, Func<double, T> of)
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            var rng = new Random(outer + size);
            var n = outer * size;
            var x = new T[n];
            var g = new T[n + 3];
            for (var i = 0; i < n; i++)
            {
                x[i] = of((rng.NextDouble() * 30) - 15);
                g[i + 3] = of((rng.NextDouble() * 2) - 1);
            }

            var y = new T[n];
            var dx = new T[n];
            SoftmaxKernels.Forward(x, 0, y, outer, size, 1, log);
            SoftmaxKernels.Backward(g, 3, y, 0, dx, outer, size, 1, log);
            var dx1 = new T[size];
            for (var r = 0; r < outer; r++)
            {
                SoftmaxKernels.BackwardRow<T>(g.AsSpan(3 + (r * size), size), y.AsSpan(r * size, size), dx1, log);
                Assert.True(dx1.AsSpan().SequenceEqual(dx.AsSpan(r * size, size)), $"{typeof(T).Name} [{outer}, {size}] log={log} row {r}");
            }
        }
    }
}
