using MathNet.Numerics.Random;

namespace Autograd.Nn.Data;

/// <summary>One mini-batch: copies of some rows of a <see cref="TensorDataset"/>.</summary>
/// <param name="Features">The features of the batch, shape [b, …], same dtype as the data set's.</param>
/// <param name="Labels">The labels of the batch, shape [b, …], same dtype as the data set's.</param>
/// <param name="Indices">The data-set rows the batch holds, in batch order.</param>
public sealed record Batch(Tensor Features, Tensor Labels, int[] Indices)
{
    /// <summary>The number of samples in the batch.</summary>
    public int Count => Indices.Length;
}

/// <summary>
/// Splits a <see cref="TensorDataset"/> into mini-batches, shuffled with a seeded Mersenne Twister. The order of an
/// epoch depends only on the seed and the epoch number, so a run is reproducible and each epoch sees a new order.
/// </summary>
/// <remarks>
/// Every row is visited exactly once per epoch. The last batch is smaller when the batch size does not divide the
/// number of rows, unless <see cref="DropLast"/> is set, in which case it is left out. Batches are new tensors (copies
/// of rows) that do not require grad.
/// </remarks>
public sealed class DataLoader
{
    /// <summary>Creates a loader.</summary>
    /// <param name="data">The samples.</param>
    /// <param name="batchSize">The number of rows per batch, at least 1.</param>
    /// <param name="shuffle">True to visit rows in a new seeded random order each epoch; false for 0, 1, …, n − 1 every epoch.</param>
    /// <param name="seed">The seed of the shuffle.</param>
    /// <param name="dropLast">True to leave out a final batch smaller than <paramref name="batchSize"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is less than 1.</exception>
    public DataLoader(TensorDataset data, int batchSize, bool shuffle = true, int seed = 0, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (batchSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, $"DataLoader: the batch size must be at least 1, not {batchSize}.");
        }

        Data = data;
        BatchSize = batchSize;
        Shuffle = shuffle;
        Seed = seed;
        DropLast = dropLast;
    }

    /// <summary>Creates a loader over features [n, …] and labels [n, …]; see the main constructor.</summary>
    /// <exception cref="ArgumentException">The first dimensions of the features and labels differ.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="batchSize"/> is less than 1.</exception>
    public DataLoader(Tensor features, Tensor labels, int batchSize, bool shuffle = true, int seed = 0, bool dropLast = false)
        : this(Pair(features, labels), batchSize, shuffle, seed, dropLast)
    {
    }

    /// <summary>The samples.</summary>
    public TensorDataset Data { get; }

    /// <summary>The data set of <paramref name="features"/> and <paramref name="labels"/>, with errors in the loader's name.</summary>
    private static TensorDataset Pair(Tensor features, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (features.Rank == 0 || labels.Rank == 0 || features.Shape[0] != labels.Shape[0])
        {
            throw new ArgumentException(
                $"DataLoader: the features (shape {features.Shape}) and the labels (shape {labels.Shape}) need a first dimension of the same size that counts samples.",
                nameof(labels));
        }

        return new TensorDataset(features, labels);
    }

    /// <summary>The number of rows in a full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Whether rows are shuffled each epoch.</summary>
    public bool Shuffle { get; }

    /// <summary>The seed of the shuffle.</summary>
    public int Seed { get; }

    /// <summary>Whether a final, smaller batch is left out.</summary>
    public bool DropLast { get; }

    /// <summary>The number of batches in one epoch.</summary>
    public int BatchCount => DropLast ? Data.Count / BatchSize : (Data.Count + BatchSize - 1) / BatchSize;

    /// <summary>
    /// The order in which epoch <paramref name="epoch"/> visits the rows: a permutation of 0 … n − 1, a Fisher–Yates
    /// shuffle driven by a Mersenne Twister seeded from <see cref="Seed"/> and <paramref name="epoch"/> (the identity
    /// when <see cref="Shuffle"/> is false).
    /// </summary>
    public int[] Permutation(int epoch)
    {
        var n = Data.Count;
        var order = new int[n];
        for (var i = 0; i < n; i++)
        {
            order[i] = i;
        }

        if (!Shuffle)
        {
            return order;
        }

        var rng = new MersenneTwister(MixSeed(Seed, epoch));
        for (var i = n - 1; i > 0; i--)
        {
            var j = rng.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }

        return order;
    }

    /// <summary>The batches of epoch <paramref name="epoch"/>, produced lazily (each one copies its rows when reached).</summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        var order = Permutation(epoch);
        var count = BatchCount;
        for (var b = 0; b < count; b++)
        {
            var start = b * BatchSize;
            var indices = order.AsSpan(start, Math.Min(BatchSize, order.Length - start)).ToArray();
            var rows = Data.Gather(indices);
            yield return new Batch(rows.Features, rows.Labels, indices);
        }
    }

    /// <summary>
    /// Mixes the seed and the epoch into one 32-bit seed (SplitMix64 finaliser), so that neighbouring seeds and
    /// epochs give unrelated shuffles.
    /// </summary>
    internal static int MixSeed(int seed, int epoch)
    {
        var z = ((ulong)(uint)seed << 32) | (uint)epoch;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z ^ (z >> 32));
    }
}
