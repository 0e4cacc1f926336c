using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Autograd;

/// <summary>
/// The immutable shape of a tensor: its dimension sizes, outermost first. Storage is row-major and contiguous,
/// so the last dimension varies fastest.
/// </summary>
public sealed class Shape : IEquatable<Shape>, IReadOnlyList<int>
{
    private readonly int[] _dims;
    private int[]? _strides;

    /// <summary>The shape of a scalar (rank 0, one element).</summary>
    public static Shape Scalar { get; } = new([]);

    /// <summary>
    /// Creates a shape from dimension sizes; every size must be zero or positive. A shape with a zero size has no
    /// elements, whatever its other sizes (such as [2147483647, 0]).
    /// </summary>
    /// <exception cref="ArgumentException">A size is negative, or the element count is more than an array can hold.</exception>
    public Shape(params ReadOnlySpan<int> dims)
    {
        _dims = dims.ToArray();
        var empty = false;
        foreach (var d in _dims)
        {
            if (d < 0)
            {
                throw new ArgumentException($"Shape {Format(_dims)} has a negative dimension size {d}.", nameof(dims));
            }

            empty |= d == 0;
        }

        if (empty)
        {
            ElementCount = 0;
            return;
        }

        long n = 1;
        foreach (var d in _dims)
        {
            n *= d;
            if (n > Array.MaxLength)
            {
                throw new ArgumentException($"Shape {Format(_dims)} has more elements than an array can hold ({Array.MaxLength}).", nameof(dims));
            }
        }

        ElementCount = (int)n;
    }

    /// <summary>The number of dimensions.</summary>
    public int Rank => _dims.Length;

    /// <summary>The number of elements (the product of the sizes; 1 for a scalar).</summary>
    public int ElementCount { get; }

    /// <summary>The number of dimensions (same as <see cref="Rank"/>), for <see cref="IReadOnlyCollection{T}"/>.</summary>
    public int Count => _dims.Length;

    /// <summary>The size of dimension <paramref name="dim"/>; negative values count from the end.</summary>
    public int this[int dim] => _dims[dim < 0 ? dim + _dims.Length : dim];

    /// <summary>The sizes as a read-only span.</summary>
    public ReadOnlySpan<int> Dims => _dims;

    /// <summary>Row-major strides in elements: the distance between neighbours along each dimension.</summary>
    public ReadOnlySpan<int> Strides => _strides ??= ComputeStrides(_dims);

    /// <summary>A copy of the sizes.</summary>
    public int[] ToArray() => (int[])_dims.Clone();

    /// <summary>Implicit conversion from an array of sizes.</summary>
    public static implicit operator Shape(int[] dims) => new(dims);

    /// <summary>Turns a possibly negative dim into an index in [0, rank), or throws naming the operation, the dim and the rank.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The dim is outside [-rank, rank).</exception>
    public int NormalizeDim(int dim, string op)
    {
        // As in PyTorch, a rank-0 tensor accepts dim 0 and -1.
        var rank = _dims.Length;
        var r = Math.Max(rank, 1);
        if (dim < -r || dim >= r)
        {
            throw new ArgumentOutOfRangeException(nameof(dim), dim,
                $"{op}: dim {dim} is out of range for a tensor of rank {rank} and shape {this} (expected a dim in [{-r}, {r - 1}]).");
        }

        return dim < 0 ? dim + r : dim;
    }

    /// <summary>
    /// The NumPy broadcast of two shapes: aligned from the right, each pair of sizes must be equal or one of them 1.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes cannot be broadcast; the message names the operation and both shapes.</exception>
    public static Shape Broadcast(Shape a, Shape b, string op)
    {
        if (a.Equals(b))
        {
            return a;
        }

        var rank = Math.Max(a.Rank, b.Rank);
        var dims = new int[rank];
        for (var i = 0; i < rank; i++)
        {
            var da = i < rank - a.Rank ? 1 : a._dims[i - (rank - a.Rank)];
            var db = i < rank - b.Rank ? 1 : b._dims[i - (rank - b.Rank)];
            if (da != db && da != 1 && db != 1)
            {
                ThrowNotBroadcastable(a, b, op, i - rank, da, db);
            }

            dims[i] = da == 1 ? db : da;
        }

        return new Shape(dims);
    }

    // Broadcast runs in every binary operation: the message is built here, so that its fast path sets up no string-building
    // locals on each call.
    [DoesNotReturn]
    private static void ThrowNotBroadcastable(Shape a, Shape b, string op, int dim, int da, int db)
        => throw new ArgumentException(
            $"{op}: shapes {a} and {b} cannot be broadcast together (dimension {dim} has sizes {da} and {db}; sizes must match or one must be 1).");

    /// <summary>True when this shape can be broadcast to <paramref name="target"/> without changing the target.</summary>
    public bool CanBroadcastTo(Shape target)
    {
        if (Rank > target.Rank)
        {
            return false;
        }

        var off = target.Rank - Rank;
        for (var i = 0; i < Rank; i++)
        {
            if (_dims[i] != 1 && _dims[i] != target._dims[i + off])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The strides to read a tensor of this shape as if it had shape <paramref name="target"/> (0 along broadcast dimensions).
    /// </summary>
    internal int[] BroadcastStrides(Shape target)
    {
        var strides = new int[target.Rank];
        var own = Strides;
        var off = target.Rank - Rank;
        for (var i = 0; i < Rank; i++)
        {
            strides[i + off] = _dims[i] == 1 && target._dims[i + off] != 1 ? 0 : own[i];
        }

        return strides;
    }

    private static int[] ComputeStrides(int[] dims)
    {
        // A shape with no elements may have sizes whose product overflows; no element is addressed through its
        // strides, which saturate at int.MaxValue.
        var s = new int[dims.Length];
        long acc = 1;
        for (var i = dims.Length - 1; i >= 0; i--)
        {
            s[i] = (int)Math.Min(acc, int.MaxValue);
            acc = Math.Min(acc * Math.Max(dims[i], 1), int.MaxValue);
        }

        return s;
    }

    /// <inheritdoc />
    public bool Equals(Shape? other) => other is not null && (ReferenceEquals(this, other) || _dims.AsSpan().SequenceEqual(other._dims));

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in _dims)
        {
            h.Add(d);
        }

        return h.ToHashCode();
    }

    /// <summary>Shape equality by sizes.</summary>
    public static bool operator ==(Shape? a, Shape? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Shape inequality by sizes.</summary>
    public static bool operator !=(Shape? a, Shape? b) => !(a == b);

    /// <summary>The sizes in brackets, e.g. <c>[2, 3]</c>; a scalar is <c>[]</c>.</summary>
    public override string ToString() => Format(_dims);

    internal static string Format(ReadOnlySpan<int> dims)
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < dims.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(", ");
            }

            sb.Append(dims[i]);
        }

        return sb.Append(']').ToString();
    }

    /// <inheritdoc />
    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_dims).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => _dims.GetEnumerator();
}
