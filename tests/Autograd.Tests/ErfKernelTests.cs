using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// The vectorised float32 erf against MathNet.Numerics' float64 erf rounded to float32, over a dense grid, tiny and
/// huge values, signed zeros, infinities and NaN; and the vector path against the scalar path, element by element.
/// </summary>
public class ErfKernelTests
{
    /// <summary>The distance in float32 units in the last place between two finite floats of the same sign.</summary>
    private static long Ulps(float a, float b)
    {
        static long Key(float f)
        {
            var bits = BitConverter.SingleToInt32Bits(f);
            return bits < 0 ? int.MinValue - (long)bits : bits;
        }

        return Math.Abs(Key(a) - Key(b));
    }

    private static float[] Grid()
    {
        var values = new List<float>();
        for (var i = -60_000; i <= 60_000; i++)
        {
            values.Add(i / 10_000f);
        }

        for (var e = -40; e <= 1; e++)
        {
            values.Add(MathF.Pow(10, e));
            values.Add(-MathF.Pow(10, e) * 1.37f);
        }

        values.AddRange([float.Epsilon, -float.Epsilon, 1e-30f, 3.83f, 3.9f, 4f, 4.5f, 10f, -10f, 1e30f, float.MaxValue, float.MinValue]);
        return [.. values];
    }

    [Fact]
    public void MatchesTheCorrectlyRoundedErfWithinTwoUnitsInTheLastPlace()
    {
        var x = Grid();
        var y = new float[x.Length];
        ErfKernel.Erf(x, y);
        long worstInner = 0, worst = 0;
        float innerAt = 0f, at = 0f;
        double worstAbs = 0;
        for (var i = 0; i < x.Length; i++)
        {
            var exact = MathNet.Numerics.SpecialFunctions.Erf(x[i]);
            var ulps = Ulps(y[i], (float)exact);
            worstAbs = Math.Max(worstAbs, Math.Abs(y[i] - exact));
            if (Math.Abs(x[i]) < 2 && ulps > worstInner)
            {
                (worstInner, innerAt) = (ulps, x[i]);
            }

            if (ulps > worst)
            {
                (worst, at) = (ulps, x[i]);
            }
        }

        Assert.True(worstInner <= 2, $"|x| < 2: worst error {worstInner} ulps at x = {innerAt:R}");
        Assert.True(worst <= 2, $"worst error {worst} ulps at x = {at:R}");
        Assert.True(worstAbs <= 1.2e-7, $"worst absolute error {worstAbs:E3}");
    }

    [Fact]
    public void SpecialValuesFollowTheFunction()
    {
        float[] x = [0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 5f, -5f];
        var y = new float[x.Length];
        ErfKernel.Erf(x, y);
        Assert.Equal(0f, y[0]);
        Assert.False(float.IsNegative(y[0]));
        Assert.True(float.IsNegative(y[1]) && y[1] == 0f, $"erf(−0) should be −0, got {y[1]:R}");
        Assert.Equal(1f, y[2]);
        Assert.Equal(-1f, y[3]);
        Assert.True(float.IsNaN(y[4]));
        Assert.Equal(1f, y[5]);
        Assert.Equal(-1f, y[6]);
    }

    [Fact]
    public void EveryElementGetsTheScalarResultWhateverItsPosition()
    {
        var x = Grid().Take(1_001).ToArray();
        for (var offset = 0; offset < 3; offset++)
        {
            var slice = x.AsSpan(offset);
            var y = new float[slice.Length];
            ErfKernel.Erf(slice, y);
            for (var i = 0; i < y.Length; i++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(ErfKernel.Erf(slice[i])), BitConverter.SingleToInt32Bits(y[i]));
            }
        }
    }

    [Fact]
    public void AShortDestinationIsRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => ErfKernel.Erf(new float[5], new float[4]));
        Assert.Contains("holds 4 elements but the source has 5", e.Message, StringComparison.Ordinal);
    }
}
