namespace Autograd.Nn.Data;

/// <summary>
/// Features and labels that belong together row by row: row <c>i</c> of <see cref="Features"/> (shape [n, …]) goes
/// with row <c>i</c> of <see cref="Labels"/> (shape [n, …], usually int64 [n] class indices).
/// </summary>
public sealed class TensorDataset
{
    /// <summary>Pairs features and labels.</summary>
    /// <param name="features">A tensor of rank at least 1; its first dimension counts the samples.</param>
    /// <param name="labels">A tensor of rank at least 1 with the same first dimension.</param>
    /// <exception cref="ArgumentException">A tensor is rank 0, or the two first dimensions differ.</exception>
    public TensorDataset(Tensor features, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (features.Rank == 0 || labels.Rank == 0)
        {
            throw new ArgumentException(
                $"TensorDataset: features and labels need a first dimension that counts samples; got features {features.Shape} and labels {labels.Shape}.");
        }

        if (features.Shape[0] != labels.Shape[0])
        {
            throw new ArgumentException(
                $"TensorDataset: features have {features.Shape[0]} rows (shape {features.Shape}) but labels have {labels.Shape[0]} (shape {labels.Shape}).",
                nameof(labels));
        }

        Features = features;
        Labels = labels;
    }

    /// <summary>The features, shape [n, …].</summary>
    public Tensor Features { get; }

    /// <summary>The labels, shape [n, …].</summary>
    public Tensor Labels { get; }

    /// <summary>The number of samples (rows).</summary>
    public int Count => Features.Shape[0];

    /// <summary>A new data set holding copies of the given rows, in the given order (repeats allowed).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, <see cref="Count"/>).</exception>
    public TensorDataset Gather(ReadOnlySpan<int> indices) => new(GatherRows(Features, indices), GatherRows(Labels, indices));

    /// <summary>A new data set holding copies of rows <paramref name="start"/> … <paramref name="start"/> + <paramref name="count"/> − 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside [0, <see cref="Count"/>).</exception>
    public TensorDataset Slice(int start, int count)
    {
        if (start < 0 || count < 0 || start > Count - count)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"Slice: rows [{start}, {start} + {count}) are not inside the {Count} rows of the data set.");
        }

        var idx = new int[count];
        for (var i = 0; i < count; i++)
        {
            idx[i] = start + i;
        }

        return Gather(idx);
    }

    /// <summary>
    /// A new tensor of shape [indices.Length, …] and the same dtype holding copies of the given rows (first-dimension
    /// entries) of <paramref name="source"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> is rank 0.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the first dimension.</exception>
    public static Tensor GatherRows(Tensor source, ReadOnlySpan<int> indices)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (source.Rank == 0)
        {
            throw new ArgumentException("GatherRows: a rank-0 tensor has no rows.", nameof(source));
        }

        var n = source.Shape[0];
        var rowSize = 1;
        for (var d = 1; d < source.Rank; d++)
        {
            rowSize *= source.Shape[d];
        }

        foreach (var i in indices)
        {
            if ((uint)i >= (uint)n)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), $"GatherRows: row index {i} is out of range for {n} rows (shape {source.Shape}).");
            }
        }

        var shape = source.Shape.ToArray();
        shape[0] = indices.Length;
        var result = Tensor.Empty(new Shape(shape), source.DType);
        switch (source.DType)
        {
            case DType.Float64: Copy(source.AsSpan<double>(), result.Span<double>(), rowSize, indices); break;
            case DType.Float32: Copy(source.AsSpan<float>(), result.Span<float>(), rowSize, indices); break;
            default: Copy(source.AsSpan<long>(), result.Span<long>(), rowSize, indices); break;
        }

        return result;
    }

    private static void Copy<T>(ReadOnlySpan<T> src, Span<T> dst, int rowSize, ReadOnlySpan<int> indices)
    {
        for (var r = 0; r < indices.Length; r++)
        {
            src.Slice(indices[r] * rowSize, rowSize).CopyTo(dst.Slice(r * rowSize, rowSize));
        }
    }
}
