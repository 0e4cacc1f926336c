using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// Row maxima and minima (<see cref="Reduce.RowExtreme{T}"/>, which Max and Min over the last dim run): the bits of
/// <c>TensorPrimitives.Max</c> and <c>Min</c> (NaN propagating, +0 above −0) on rows of every length around the vector
/// widths, with NaNs, signed zeros and infinities placed anywhere, in float32 and float64.
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

    /// <summary>Asserts that <paramref name="actual"/> has the bits of <paramref name="expected"/>.</summary>
    private static void SameBits(float expected, float actual, string what)
        => Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual), $"{what}: {actual:R}, TensorPrimitives {expected:R}");

    /// <inheritdoc cref="SameBits(float, float, string)"/>
    private static void SameBits(double expected, double actual, string what)
        => Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual), $"{what}: {actual:R}, TensorPrimitives {expected:R}");

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
