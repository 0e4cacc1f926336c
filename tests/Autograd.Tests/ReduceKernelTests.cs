using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// Row maxima and minima (<see cref="Reduce.RowExtreme{T}"/>, which Max and Min over the last dim run): the bits of
/// <c>TensorPrimitives.Max</c> and <c>Min</c> (NaN propagating, +0 above −0) on rows of every length around the vector
/// widths, with NaNs, signed zeros and infinities placed anywhere, in float32 and float64; and rows too long for one thread,
/// which several threads share with the result of one.
/// </summary>
public class ReduceKernelTests
{
    private static readonly string[] KindNames = ["random", "negative", "nan", "zeros and negatives", "zeros and positives", "infinities"];

    public static TheoryData<string> Kinds => [.. KindNames];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void RowExtremeHasTheBitsOfTensorPrimitives(string kind)
    {
        var rng = new Random(Array.IndexOf(KindNames, kind) + 1);
        var lengths = Enumerable.Range(1, 70).Concat([127, 128, 129, 1000, 4099]);
        foreach (var n in lengths)
        {
            for (var trial = 0; trial < 3; trial++)
            {
                var v = Row(kind, n, rng);
                var f = v.Select(e => (float)e).ToArray();
                var at = $"{kind}, length {n}, trial {trial}";
                SameBits(TensorPrimitives.Max<float>(f), Reduce.RowExtreme<float>(f, max: true), $"float32 max, {at}");
                SameBits(TensorPrimitives.Min<float>(f), Reduce.RowExtreme<float>(f, max: false), $"float32 min, {at}");
                SameBits(TensorPrimitives.Max<double>(v), Reduce.RowExtreme<double>(v, max: true), $"float64 max, {at}");
                SameBits(TensorPrimitives.Min<double>(v), Reduce.RowExtreme<double>(v, max: false), $"float64 min, {at}");
            }
        }
    }

    /// <summary>
    /// Rows too few for the threads are cut into segments (sums at whole blocks): the result of <see cref="Reduce.Run{T}"/>
    /// has the bits of the row summed or searched on one thread, whichever segment holds the NaN, the +0 beside −0s, or the
    /// infinity; and a float64 sum, now added in blocks, stays within rounding of the plain sum.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void LongRowsSplitAcrossThreadsGiveTheBitsOfOneThread(string kind)
    {
        var rng = new Random(Array.IndexOf(KindNames, kind) + 11);
        foreach (var (outer, size) in new[] { (1, 4097), (1, 70_001), (1, 1_000_000), (2, 300_007), (3, 65_536) })
        {
            var values = new double[outer * size];
            for (var o = 0; o < outer; o++)
            {
                Row(kind, size, rng).CopyTo(values, o * size);
                if (kind == "zeros and negatives")
                {
                    // All zeros, a +0 only in the last segment: the maximum is +0, the minimum −0.
                    Array.Fill(values, -0.0, o * size, size);
                    values[(o * size) + size - 1] = 0.0;
                }
            }

            var floats = values.Select(e => (float)e).ToArray();
            foreach (var reduction in new[] { ReduceKind.Sum, ReduceKind.Max, ReduceKind.Min })
            {
                var at = $"{kind}, {reduction}, [{outer}, {size}]";
                var f = new float[outer];
                Reduce.Run(floats, 0, outer, size, 1, f, reduction);
                var d = new double[outer];
                Reduce.Run(values, 0, outer, size, 1, d, reduction);
                for (var o = 0; o < outer; o++)
                {
                    var rf = floats.AsSpan(o * size, size);
                    var rd = values.AsSpan(o * size, size);
                    SameBits(reduction == ReduceKind.Sum ? Reduce.SumRow<float>(rf) : Reduce.RowExtreme<float>(rf, reduction == ReduceKind.Max), f[o], $"float32 {at}, row {o}");
                    SameBits(reduction == ReduceKind.Sum ? Reduce.SumRow<double>(rd) : Reduce.RowExtreme<double>(rd, reduction == ReduceKind.Max), d[o], $"float64 {at}, row {o}");
                    if (reduction == ReduceKind.Sum && kind != "nan" && kind != "infinities")
                    {
                        var exact = CompensatedSum(rd);
                        var scale = TensorPrimitives.SumOfMagnitudes<double>(rd);
                        Assert.True(Math.Abs(d[o] - exact) <= 1e-14 * scale, $"float64 {at}: {d[o]:R} against {exact:R}");
                    }
                }
            }

            if (Environment.ProcessorCount > 1 && size >= 70_001)
            {
                Assert.True(Reduce.SplitsLongRows<float>(outer, size, 1, Reduce.ChunksFor((long)outer * size)), $"[{outer}, {size}] is not split");
            }
        }
    }

    /// <summary>Asserts that <paramref name="actual"/> has the bits of <paramref name="expected"/>.</summary>
    private static void SameBits(float expected, float actual, string what)
        => Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual), $"{what}: {actual:R}, TensorPrimitives {expected:R}");

    /// <inheritdoc cref="SameBits(float, float, string)"/>
    private static void SameBits(double expected, double actual, string what)
        => Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual), $"{what}: {actual:R}, TensorPrimitives {expected:R}");

    /// <summary>Σ values with Neumaier's compensation: the reference a float64 sum is held to.</summary>
    private static double CompensatedSum(ReadOnlySpan<double> values)
    {
        double sum = 0, compensation = 0;
        foreach (var v in values)
        {
            var t = sum + v;
            compensation += Math.Abs(sum) >= Math.Abs(v) ? (sum - t) + v : (v - t) + sum;
            sum = t;
        }

        return sum + compensation;
    }

    private static double[] Row(string kind, int n, Random rng)
    {
        var v = new double[n];
        for (var i = 0; i < n; i++)
        {
            var magnitude = 1 + (rng.NextDouble() * 4);
            v[i] = kind switch
            {
                "negative" => -magnitude,
                "zeros and negatives" => rng.Next(3) switch { 0 => 0.0, 1 => -0.0, _ => -magnitude },
                "zeros and positives" => rng.Next(3) switch { 0 => 0.0, 1 => -0.0, _ => magnitude },
                _ => (rng.NextDouble() * 10) - 5,
            };
        }

        if (kind == "nan")
        {
            v[rng.Next(n)] = double.NaN;
        }

        if (kind == "infinities")
        {
            v[rng.Next(n)] = double.PositiveInfinity;
            v[rng.Next(n)] = double.NegativeInfinity;
        }

        return v;
    }
}
