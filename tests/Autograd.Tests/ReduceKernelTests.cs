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
                Assert.True(BitConverter.SingleToInt32Bits(TensorPrimitives.Max<float>(f)) == BitConverter.SingleToInt32Bits(Reduce.RowExtreme<float>(f, max: true)), $"float32 max, {at}: {Reduce.RowExtreme<float>(f, max: true):R}, TensorPrimitives {TensorPrimitives.Max<float>(f):R}");
                Assert.True(BitConverter.SingleToInt32Bits(TensorPrimitives.Min<float>(f)) == BitConverter.SingleToInt32Bits(Reduce.RowExtreme<float>(f, max: false)), $"float32 min, {at}: {Reduce.RowExtreme<float>(f, max: false):R}, TensorPrimitives {TensorPrimitives.Min<float>(f):R}");
                Assert.True(BitConverter.DoubleToInt64Bits(TensorPrimitives.Max<double>(v)) == BitConverter.DoubleToInt64Bits(Reduce.RowExtreme<double>(v, max: true)), $"float64 max, {at}: {Reduce.RowExtreme<double>(v, max: true):R}, TensorPrimitives {TensorPrimitives.Max<double>(v):R}");
                Assert.True(BitConverter.DoubleToInt64Bits(TensorPrimitives.Min<double>(v)) == BitConverter.DoubleToInt64Bits(Reduce.RowExtreme<double>(v, max: false)), $"float64 min, {at}: {Reduce.RowExtreme<double>(v, max: false):R}, TensorPrimitives {TensorPrimitives.Min<double>(v):R}");
            }
        }
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
