using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace Autograd.Nn.Data;

/// <summary>
/// Small two-dimensional classification sets for trying out networks: two moons and interleaved spirals. Features are
/// float64 [n, 2], labels int64 [n]; everything is reproducible from the seed.
/// </summary>
public static class SyntheticData
{
    /// <summary>
    /// Two interleaving half circles, as scikit-learn's <c>make_moons</c>: ⌊n/2⌋ points of class 0 on the upper half of
    /// the unit circle, x = cos t, y = sin t, and the remaining n − ⌊n/2⌋ points of class 1 on the lower half circle
    /// x = 1 − cos t, y = 0.5 − sin t, with t evenly spaced over [0, π]; then Gaussian noise of standard deviation
    /// <paramref name="noise"/> is added to each coordinate.
    /// </summary>
    /// <param name="n">The number of points, at least 0.</param>
    /// <param name="noise">The standard deviation of the noise added to each coordinate, at least 0.</param>
    /// <param name="seed">The seed of the noise and the shuffle.</param>
    /// <param name="shuffle">True (the default) to put the points in a seeded random order; false for class 0 then class 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative or <paramref name="noise"/> is negative or not finite.</exception>
    public static TensorDataset MakeMoons(int n, double noise = 0.0, int seed = 0, bool shuffle = true)
    {
        if (n < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, $"MakeMoons: the number of points must be at least 0, not {n}.");
        }

        CheckNoise(noise, "MakeMoons");
        var nOut = n / 2;
        var nIn = n - nOut;
        var xy = new double[2 * n];
        var labels = new long[n];
        for (var i = 0; i < nOut; i++)
        {
            var t = Linspace(i, nOut, Math.PI);
            xy[2 * i] = Math.Cos(t);
            xy[(2 * i) + 1] = Math.Sin(t);
        }

        for (var i = 0; i < nIn; i++)
        {
            var t = Linspace(i, nIn, Math.PI);
            var k = nOut + i;
            xy[2 * k] = 1 - Math.Cos(t);
            xy[(2 * k) + 1] = 0.5 - Math.Sin(t);
            labels[k] = 1;
        }

        return Finish(xy, labels, noise, seed, shuffle);
    }

    /// <summary>
    /// <paramref name="classes"/> interleaved spiral arms of <paramref name="perClass"/> points each. Point i of arm c has
    /// radius r = i / (perClass − 1) and angle θ = 2π c / classes + 2π · <paramref name="turns"/> · r, so it lies at
    /// (r cos θ, r sin θ) before Gaussian noise of standard deviation <paramref name="noise"/> is added to each coordinate.
    /// The label of arm c is c.
    /// </summary>
    /// <param name="classes">The number of arms (classes), at least 1.</param>
    /// <param name="perClass">The number of points per arm, at least 0.</param>
    /// <param name="noise">The standard deviation of the noise added to each coordinate, at least 0.</param>
    /// <param name="seed">The seed of the noise and the shuffle.</param>
    /// <param name="turns">How many full turns an arm makes from the centre to radius 1.</param>
    /// <param name="shuffle">True (the default) to put the points in a seeded random order; false for arm 0, arm 1, ….</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range or the point count overflows.</exception>
    public static TensorDataset MakeSpirals(int classes, int perClass, double noise = 0.0, int seed = 0, double turns = 1.0, bool shuffle = true)
    {
        if (classes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(classes), classes, $"MakeSpirals: the number of classes must be at least 1, not {classes}.");
        }

        if (perClass < 0 || (long)classes * perClass * 2 > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(nameof(perClass), perClass, $"MakeSpirals: {perClass} points per class for {classes} classes is out of range.");
        }

        if (!double.IsFinite(turns))
        {
            throw new ArgumentOutOfRangeException(nameof(turns), turns, $"MakeSpirals: the number of turns must be finite, not {turns}.");
        }

        CheckNoise(noise, "MakeSpirals");
        var n = classes * perClass;
        var xy = new double[2 * n];
        var labels = new long[n];
        for (var c = 0; c < classes; c++)
        {
            for (var i = 0; i < perClass; i++)
            {
                var r = perClass == 1 ? 0.0 : (double)i / (perClass - 1);
                var theta = (2 * Math.PI * c / classes) + (2 * Math.PI * turns * r);
                var k = (c * perClass) + i;
                xy[2 * k] = r * Math.Cos(theta);
                xy[(2 * k) + 1] = r * Math.Sin(theta);
                labels[k] = c;
            }
        }

        return Finish(xy, labels, noise, seed, shuffle);
    }

    private static double Linspace(int i, int count, double stop) => count == 1 ? 0.0 : stop * i / (count - 1);

    private static void CheckNoise(double noise, string op)
    {
        if (!(noise >= 0) || double.IsInfinity(noise))
        {
            throw new ArgumentOutOfRangeException(nameof(noise), noise, $"{op}: the noise standard deviation must be finite and at least 0, not {noise}.");
        }
    }

    private static TensorDataset Finish(double[] xy, long[] labels, double noise, int seed, bool shuffle)
    {
        var rng = new MersenneTwister(seed);
        if (noise > 0)
        {
            var normal = new Normal(0.0, noise, rng);
            for (var i = 0; i < xy.Length; i++)
            {
                xy[i] += normal.Sample();
            }
        }

        var n = labels.Length;
        if (shuffle)
        {
            for (var i = n - 1; i > 0; i--)
            {
                var j = rng.Next(i + 1);
                (labels[i], labels[j]) = (labels[j], labels[i]);
                (xy[2 * i], xy[2 * j]) = (xy[2 * j], xy[2 * i]);
                (xy[(2 * i) + 1], xy[(2 * j) + 1]) = (xy[(2 * j) + 1], xy[(2 * i) + 1]);
            }
        }

        return new TensorDataset(Tensor.FromArray(xy, n, 2), Tensor.FromArray(labels, n));
    }
}
