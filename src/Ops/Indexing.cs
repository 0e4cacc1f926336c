using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Indexing operators: <c>Gather</c> and its adjoint <c>ScatterAdd</c>, <c>IndexSelect</c> and its adjoint
/// <c>IndexAdd</c>, <c>Narrow</c> and Python-like <c>Slice</c> along one dim, <c>Concat</c> and <c>Stack</c> of several
/// tensors, <c>OneHot</c>, and <c>Embedding</c>, the row lookup in a float table whose gradient is an <c>IndexAdd</c>.
/// Index tensors are int64 (<see cref="DType.Int64"/>); an index outside its dim is an error naming the value, where it
/// is in the index, the dim and its size (negative indices do not wrap, as in PyTorch's gather and index_select). The
/// results are new contiguous tensors; every operator but <c>Embedding</c> works on float64, float32 and int64 data, and
/// each is differentiable in its floating-point inputs, each backward rule being another operator of this family so
/// that second derivatives work.
/// </summary>
public static class Indexing
{
    extension(Tensor x)
    {
        /// <summary>
        /// Picks values along <paramref name="dim"/> with an int64 <paramref name="index"/> of the same rank, as
        /// <c>torch.gather</c>: for a 3-D x and dim 1, <c>y[i, j, k] = x[i, index[i, j, k], k]</c>. The result has the
        /// index's shape, which may be larger than x's along <paramref name="dim"/> and no larger along the others.
        /// </summary>
        /// <remarks>The gradient is scattered back with <see cref="ScatterAdd"/>; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">The index is not int64, its rank differs from x's, or it is larger than x in a dim other than <paramref name="dim"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, or an index value is outside [0, x.Shape[dim]).</exception>
        public Tensor Gather(int dim, Tensor index)
        {
            const string op = "Gather";
            var d = x.Shape.NormalizeDim(dim, op);
            var offsets = GatherOffsets(op, x.Shape, d, index);
            var y = Tensor.Empty(index.Shape, x.DType);
            Dispatch.ByElementType(x.DType, new TakeWork(x, y, offsets));

            if (Tensor.ShouldRecord(x))
            {
                y.SetGradFn(new SelectNode("Gather", x, d, index));
            }

            return y;
        }

        /// <summary>
        /// A copy of x with the values of <paramref name="src"/> added at the positions an int64 <paramref name="index"/>
        /// names along <paramref name="dim"/>, as <c>torch.scatter_add</c>: for a 3-D x and dim 1,
        /// <c>y[i, index[i, j, k], k] += src[i, j, k]</c>, repeated positions accumulating. Here the index and
        /// <paramref name="src"/> must have the same shape, no larger than x's in the dims other than <paramref name="dim"/>.
        /// The adjoint of <see cref="Gather"/>.
        /// </summary>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">Mixed dtypes of x and src, an index that is not int64 or of another rank, src and index of different shapes, or an index larger than x off <paramref name="dim"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, or an index value is outside [0, x.Shape[dim]).</exception>
        public Tensor ScatterAdd(int dim, Tensor index, Tensor src)
        {
            const string op = "ScatterAdd";
            RequireSameDType(op, x, "x", src, "src");
            var d = x.Shape.NormalizeDim(dim, op);
            RequireIndexDType(op, index);
            if (src.Shape != index.Shape)
            {
                throw new ArgumentException($"{op}: src has shape {src.Shape} but the index has shape {index.Shape}; they must match.", nameof(src));
            }

            var offsets = GatherOffsets(op, x.Shape, d, index);
            var y = x.Clone();
            Dispatch.ByElementType(x.DType, new AddAtWork(y, src, offsets));

            if (Tensor.ShouldRecord(x, src))
            {
                y.SetGradFn(new AddAtNode("ScatterAdd", x, src, d, index));
            }

            return y;
        }

        /// <summary>
        /// The slices of x at the positions a one-dimensional int64 <paramref name="index"/> lists along
        /// <paramref name="dim"/>, in that order and possibly repeated, as <c>torch.index_select</c>: the result has x's
        /// shape with <paramref name="dim"/> resized to the index length (a rank-0 index counts as one position).
        /// </summary>
        /// <remarks>The gradient is added back with <see cref="IndexAdd"/>; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is rank-0, or the index is not int64 or has rank above 1.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, or an index value is outside [0, x.Shape[dim]).</exception>
        public Tensor IndexSelect(int dim, Tensor index)
        {
            const string op = "IndexSelect";
            var d = RequireDimOfRank1(op, x, dim);
            CheckSelectIndex(op, index, x.Shape, d);
            var k = index.ElementCount;
            var dims = x.Shape.ToArray();
            dims[d] = k;
            var y = Tensor.Empty(new Shape(dims), x.DType);
            var (outer, size, inner) = Dispatch.Around(x.Shape, d);
            Dispatch.ByElementType(x.DType, new SelectBlocksWork(x, y, outer, size, inner, index));

            if (Tensor.ShouldRecord(x))
            {
                y.SetGradFn(new SelectNode("IndexSelect", x, d, index));
            }

            return y;
        }

        /// <summary>
        /// A copy of x with the slices of <paramref name="source"/> added at the positions a one-dimensional int64
        /// <paramref name="index"/> lists along <paramref name="dim"/>, as <c>torch.index_add</c>: source has x's shape
        /// with <paramref name="dim"/> resized to the index length; repeated positions accumulate. The adjoint of
        /// <see cref="IndexSelect"/>.
        /// </summary>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">Mixed dtypes, x rank-0, an index that is not int64 or has rank above 1, or a source of the wrong shape.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, or an index value is outside [0, x.Shape[dim]).</exception>
        public Tensor IndexAdd(int dim, Tensor index, Tensor source)
        {
            const string op = "IndexAdd";
            RequireSameDType(op, x, "x", source, "source");
            var d = RequireDimOfRank1(op, x, dim);
            CheckSelectIndex(op, index, x.Shape, d);
            var dims = x.Shape.ToArray();
            dims[d] = index.ElementCount;
            var expected = new Shape(dims);
            if (source.Shape != expected)
            {
                throw new ArgumentException(
                    $"{op}: source has shape {source.Shape}, but x's shape {x.Shape} with dim {d} resized to the index length {index.ElementCount} is {expected}; they must match.",
                    nameof(source));
            }

            var y = x.Clone();
            var (outer, size, inner) = Dispatch.Around(x.Shape, d);
            Dispatch.ByElementType(x.DType, new AddBlocksWork(y, source, outer, size, inner, index));

            if (Tensor.ShouldRecord(x, source))
            {
                y.SetGradFn(new AddAtNode("IndexAdd", x, source, d, index));
            }

            return y;
        }

        /// <summary>
        /// The <paramref name="length"/> consecutive slices of x along <paramref name="dim"/> that begin at
        /// <paramref name="start"/> (negative counts from the end), as <c>torch.narrow</c>; unlike <see cref="Slice"/>
        /// the range must lie inside the dim.
        /// </summary>
        /// <remarks>The gradient is padded back with zeros; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is rank-0.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, start is outside [−size, size], the length is negative, or start + length exceeds the size.</exception>
        public Tensor Narrow(int dim, int start, int length)
        {
            const string op = "Narrow";
            var d = RequireDimOfRank1(op, x, dim);
            var size = x.Shape[d];
            var s = start < 0 ? start + size : start;
            if (s < 0 || s > size)
            {
                throw new ArgumentOutOfRangeException(nameof(start),
                    $"{op}: start {start} is out of range for dim {d} of size {size} (shape {x.Shape}); expected a start in [{-size}, {size}].");
            }

            if (length < 0 || (long)s + length > size)
            {
                throw new ArgumentOutOfRangeException(nameof(length),
                    $"{op}: length {length} from start {start} does not fit in dim {d} of size {size} (shape {x.Shape}); expected a length in [0, {size - s}].");
            }

            return SliceCore(op, x, d, s, 1, length);
        }

        /// <summary>
        /// The Python slice <c>x[start:end:step]</c> along <paramref name="dim"/>: negative start and end count from the
        /// end, and both are clamped to [0, size] as in Python (so <c>int.MaxValue</c> as end means "to the end", and an
        /// empty range gives a size-0 dim). The step must be positive, as in PyTorch.
        /// </summary>
        /// <remarks>The gradient is padded back with zeros; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is rank-0.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range, or the step is not positive.</exception>
        public Tensor Slice(int dim, int start, int end, int step = 1)
        {
            const string op = "Slice";
            var d = RequireDimOfRank1(op, x, dim);
            var size = x.Shape[d];
            if (step <= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(step), $"{op}: step must be positive, got {step} (dim {d} of shape {x.Shape}).");
            }

            var s = Math.Clamp(start < 0 ? start + size : start, 0, size);
            var e = Math.Clamp(end < 0 ? end + size : end, 0, size);
            var count = e > s ? (int)(((long)e - s + step - 1) / step) : 0;
            return SliceCore(op, x, d, s, step, count);
        }
    }

    extension(Tensor)
    {
        /// <summary>
        /// Joins tensors along an existing dim, as <c>torch.cat</c>: all must have the same dtype and rank (at least 1)
        /// and the same sizes except along <paramref name="dim"/>.
        /// </summary>
        /// <remarks>The gradient is split back with <c>Narrow</c>; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentNullException">The list, or one of its tensors, is null.</exception>
        /// <exception cref="ArgumentException">The list is empty, or a tensor is rank-0, or its dtype, rank or sizes differ from tensor 0's; the message names its index and both shapes.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range.</exception>
        public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim = 0)
        {
            const string op = "Concat";
            var ts = CheckList(op, tensors);
            for (var i = 0; i < ts.Length; i++)
            {
                if (ts[i].Rank == 0)
                {
                    throw new ArgumentException($"{op}: tensor {i} is rank-0 (shape []) and has no dim to concatenate along; use Stack, or Reshape(1) first.", nameof(tensors));
                }
            }

            var first = ts[0];
            var d = first.Shape.NormalizeDim(dim, op);
            var total = 0L;
            for (var i = 0; i < ts.Length; i++)
            {
                var s = ts[i].Shape;
                if (s.Rank != first.Rank)
                {
                    throw new ArgumentException(
                        $"{op}: tensor {i} has shape {s} (rank {s.Rank}) but tensor 0 has shape {first.Shape} (rank {first.Rank}); all tensors must have the same rank.",
                        nameof(tensors));
                }

                for (var k = 0; k < s.Rank; k++)
                {
                    if (k != d && s[k] != first.Shape[k])
                    {
                        throw new ArgumentException(
                            $"{op}: tensor {i} has shape {s} but tensor 0 has shape {first.Shape}; the sizes must match except along dim {d} (they differ in dim {k}: {s[k]} and {first.Shape[k]}).",
                            nameof(tensors));
                    }
                }

                total += s[d];
            }

            var dims = first.Shape.ToArray();
            dims[d] = total > int.MaxValue ? throw new ArgumentException($"{op}: the result along dim {d} would have {total} elements.", nameof(tensors)) : (int)total;
            return ConcatCore(op, ts, d, new Shape(dims), stacked: false);
        }

        /// <summary>
        /// Joins tensors of one shape along a new dim inserted at <paramref name="dim"/> (in [−rank−1, rank]), as
        /// <c>torch.stack</c>.
        /// </summary>
        /// <remarks>The gradient is split back along the new dim; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentNullException">The list, or one of its tensors, is null.</exception>
        /// <exception cref="ArgumentException">The list is empty, or a tensor's dtype or shape differs from tensor 0's; the message names its index and both shapes.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The dim is out of range.</exception>
        public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim = 0)
        {
            const string op = "Stack";
            var ts = CheckList(op, tensors);
            var first = ts[0];
            var rank = first.Rank;
            if (dim < -rank - 1 || dim > rank)
            {
                throw new ArgumentOutOfRangeException(nameof(dim), dim,
                    $"{op}: dim {dim} is out of range for stacking tensors of rank {rank} and shape {first.Shape} (expected a dim in [{-rank - 1}, {rank}]).");
            }

            var d = dim < 0 ? dim + rank + 1 : dim;
            for (var i = 1; i < ts.Length; i++)
            {
                if (ts[i].Shape != first.Shape)
                {
                    throw new ArgumentException(
                        $"{op}: tensor {i} has shape {ts[i].Shape} but tensor 0 has shape {first.Shape}; all tensors must have the same shape.",
                        nameof(tensors));
                }
            }

            var dims = first.Shape.ToArray().ToList();
            dims.Insert(d, ts.Length);
            return ConcatCore(op, ts, d, new Shape([.. dims]), stacked: true);
        }

        /// <summary>
        /// One-hot encoding, as <c>torch.nn.functional.one_hot</c>: for int64 <paramref name="indices"/> of any shape, a
        /// tensor of shape <c>[..indices.shape, numClasses]</c> of <paramref name="dtype"/> that is 1 at each index and
        /// 0 elsewhere. A <paramref name="numClasses"/> of −1 means the largest index + 1. Not differentiable.
        /// </summary>
        /// <exception cref="ArgumentException">The indices are not int64, <paramref name="numClasses"/> is 0 or below −1, or it is −1 and there are no indices.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, numClasses).</exception>
        public static Tensor OneHot(Tensor indices, int numClasses, DType dtype = DType.Float64)
        {
            const string op = "OneHot";
            if (indices.DType != DType.Int64)
            {
                throw new ArgumentException($"{op}: the indices must be an int64 tensor, got {indices.DType.Name()} (shape {indices.Shape}).", nameof(indices));
            }

            var idx = indices.AsSpan<long>();
            if (numClasses == -1)
            {
                if (idx.IsEmpty)
                {
                    throw new ArgumentException($"{op}: numClasses −1 asks to infer the number of classes, but the indices (shape {indices.Shape}) are empty.", nameof(numClasses));
                }

                var max = System.Numerics.Tensors.TensorPrimitives.Max(idx);
                if (max >= int.MaxValue)
                {
                    throw new ArgumentOutOfRangeException(nameof(indices), $"{op}: the largest index {max} is too large to infer the number of classes from.");
                }

                numClasses = max < 0 ? 1 : (int)max + 1;
            }
            else if (numClasses <= 0)
            {
                throw new ArgumentException($"{op}: numClasses must be positive (or −1 to infer it), got {numClasses}.", nameof(numClasses));
            }

            var bad = IndexKernels.FirstOutOfRange(idx, numClasses);
            if (bad >= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(indices),
                    $"{op}: index {idx[bad]} at position {Position(indices.Shape, bad)} is out of range for {numClasses} classes; indices must be in [0, {numClasses - 1}].");
            }

            var y = Tensor.Zeros(new Shape([.. indices.Shape.Dims, numClasses]), dtype);
            Dispatch.ByElementType(dtype, new OneHotWork(y, indices, numClasses));

            return y;
        }

        /// <summary>
        /// Looks up rows of an embedding table, as <c>torch.nn.functional.embedding</c>: for int64
        /// <paramref name="indices"/> of any shape and a <paramref name="weight"/> [vocabulary, embeddingDim], the result
        /// [..indices.shape, embeddingDim] holds row <c>weight[indices[...]]</c> at each index position.
        /// </summary>
        /// <param name="indices">The int64 row numbers, each in [0, vocabulary).</param>
        /// <param name="weight">The table [vocabulary, embeddingDim], float64 or float32.</param>
        /// <param name="paddingIndex">
        /// A row that takes no gradient (its value is still looked up), as <c>padding_idx</c>; a negative value counts
        /// from the end of the table.
        /// </param>
        /// <remarks>
        /// The gradient of the table adds the output gradient of every position into the row it names (repeated indices
        /// accumulate) with <see cref="IndexAdd"/>, leaving the padding row zero, so it is linear in the output gradient
        /// and second derivatives work. The backward rule is in docs/rules.md.
        /// </remarks>
        /// <exception cref="ArgumentException">The indices are not int64, or the weight is not a float tensor of rank 2.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, vocabulary), or the padding index is outside [−vocabulary, vocabulary).</exception>
        public static Tensor Embedding(Tensor indices, Tensor weight, int? paddingIndex = null)
        {
            const string op = "Embedding";
            ArgumentNullException.ThrowIfNull(indices);
            ArgumentNullException.ThrowIfNull(weight);
            if (indices.DType != DType.Int64)
            {
                throw new ArgumentException(
                    $"{op}: the indices must be an int64 tensor, got {indices.DType.Name()} (shape {indices.Shape}); convert them with To(DType.Int64).", nameof(indices));
            }

            if (weight.Rank != 2 || !weight.DType.IsFloatingPoint())
            {
                throw new ArgumentException(
                    $"{op}: the weight must be a float64 or float32 table [vocabulary, embeddingDim], got {weight.DType.Name()} of shape {weight.Shape}.", nameof(weight));
            }

            var vocabulary = weight.Shape[0];
            int? padding = null;
            if (paddingIndex is { } pad)
            {
                if (pad < -vocabulary || pad >= vocabulary)
                {
                    throw new ArgumentOutOfRangeException(nameof(paddingIndex), pad,
                        $"{op}: the padding index {pad} is out of range for a vocabulary of {vocabulary} (weight shape {weight.Shape}); expected one in [{-vocabulary}, {vocabulary - 1}].");
                }

                padding = pad < 0 ? pad + vocabulary : pad;
            }

            var idx = indices.AsSpan<long>();
            var bad = IndexKernels.FirstOutOfRange(idx, vocabulary);
            if (bad >= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(indices),
                    $"{op}: index {idx[bad]} at position {Position(indices.Shape, bad)} of the indices (shape {indices.Shape}) is out of range for a vocabulary of {vocabulary} (weight shape {weight.Shape}); indices must be in [0, {vocabulary - 1}].");
            }

            var dim = weight.Shape[1];
            var y = Tensor.Empty(new Shape([.. indices.Shape.Dims, dim]), weight.DType);
            Dispatch.ByElementType(weight.DType, new SelectBlocksWork(weight, y, 1, vocabulary, dim, indices));

            if (Tensor.ShouldRecord(weight))
            {
                y.SetGradFn(new EmbeddingNode(weight, indices, padding));
            }

            return y;
        }
    }

    // ---------------------------------------------------------------- checks

    private static void RequireSameDType(string op, Tensor a, string aName, Tensor b, string bName)
    {
        if (a.DType != b.DType)
        {
            throw new ArgumentException(
                $"{op}: {aName} is {a.DType.Name()} (shape {a.Shape}) but {bName} is {b.DType.Name()} (shape {b.Shape}); they must have the same dtype.", bName);
        }
    }

    private static void RequireIndexDType(string op, Tensor index)
    {
        if (index.DType != DType.Int64)
        {
            throw new ArgumentException(
                $"{op}: the index must be an int64 tensor, got {index.DType.Name()} (shape {index.Shape}); convert it with To(DType.Int64).", nameof(index));
        }
    }

    /// <summary>Normalises the dim of an operator that needs x to have at least one dim.</summary>
    private static int RequireDimOfRank1(string op, Tensor x, int dim)
    {
        var d = x.Shape.NormalizeDim(dim, op);
        if (x.Rank == 0)
        {
            throw new ArgumentException($"{op}: x is rank-0 (shape []) and has no dim to index; Reshape(1) it first.", nameof(x));
        }

        return d;
    }

    /// <summary>Validates a gather/scatter index against a tensor of shape <paramref name="target"/> and returns the flat offset of every index element in it.</summary>
    private static int[] GatherOffsets(string op, Shape target, int d, Tensor index)
    {
        RequireIndexDType(op, index);
        if (index.Rank != target.Rank)
        {
            throw new ArgumentException(
                $"{op}: the index has rank {index.Rank} (shape {index.Shape}) but x has rank {target.Rank} (shape {target}); they must have the same rank.", nameof(index));
        }

        for (var k = 0; k < target.Rank; k++)
        {
            if (k != d && index.Shape[k] > target[k])
            {
                throw new ArgumentException(
                    $"{op}: the index (shape {index.Shape}) is larger than x (shape {target}) in dim {k} ({index.Shape[k]} > {target[k]}); only dim {d} may be larger.",
                    nameof(index));
            }
        }

        // A rank-0 tensor is indexed as the one-element vector it holds (dim 0 and −1 are accepted, as in PyTorch).
        var scalar = target.Rank == 0;
        var size = scalar ? 1 : target[d];
        var offsets = new int[index.ElementCount];
        var idx = index.AsSpan<long>();
        var bad = IndexKernels.GatherOffsets(idx, scalar ? [1] : index.Shape.Dims, scalar ? [1] : target.Strides, d, size, offsets);
        if (bad >= 0)
        {
            throw OutOfRange(op, idx[bad], Position(index.Shape, bad), d, size, target, nameof(index));
        }

        return offsets;
    }

    /// <summary>Validates a one-dimensional (or rank-0) index of positions along dim <paramref name="d"/> of <paramref name="target"/>.</summary>
    private static void CheckSelectIndex(string op, Tensor index, Shape target, int d)
    {
        RequireIndexDType(op, index);
        if (index.Rank > 1)
        {
            throw new ArgumentException($"{op}: the index must be one-dimensional, got rank {index.Rank} (shape {index.Shape}); flatten it with Reshape(-1).", nameof(index));
        }

        var idx = index.AsSpan<long>();
        var bad = IndexKernels.FirstOutOfRange(idx, target[d]);
        if (bad >= 0)
        {
            throw OutOfRange(op, idx[bad], Position(index.Shape, bad), d, target[d], target, nameof(index));
        }
    }

    private static ArgumentOutOfRangeException OutOfRange(string op, long value, string position, int d, int size, Shape target, string paramName)
    {
        var valid = size == 0 ? "the dim is empty, so no index is valid" : $"indices must be in [0, {size - 1}]";
        return new ArgumentOutOfRangeException(paramName,
            $"{op}: index {value} at position {position} of the index is out of range for dim {d} of size {size} (x shape {target}); {valid}.");
    }

    /// <summary>The multi-index of flat position <paramref name="flat"/> in a tensor of <paramref name="shape"/>, e.g. <c>[1, 0]</c>.</summary>
    private static string Position(Shape shape, int flat)
    {
        var idx = new int[shape.Rank];
        for (var k = shape.Rank - 1; k >= 0; k--)
        {
            idx[k] = flat % shape[k];
            flat /= shape[k];
        }

        return shape.Rank == 0 ? "[]" : $"[{string.Join(", ", idx)}]";
    }

    private static Tensor[] CheckList(string op, IReadOnlyList<Tensor> tensors)
    {
        if (tensors is null)
        {
            throw new ArgumentNullException(nameof(tensors), $"{op}: the list of tensors is null.");
        }

        if (tensors.Count == 0)
        {
            throw new ArgumentException($"{op}: the list of tensors is empty; at least one tensor is needed.", nameof(tensors));
        }

        var ts = new Tensor[tensors.Count];
        for (var i = 0; i < ts.Length; i++)
        {
            ts[i] = tensors[i] ?? throw new ArgumentNullException(nameof(tensors), $"{op}: tensor {i} of the list is null.");
            if (ts[i].DType != ts[0].DType)
            {
                throw new ArgumentException(
                    $"{op}: tensor {i} has dtype {ts[i].DType.Name()} (shape {ts[i].Shape}) but tensor 0 has dtype {ts[0].DType.Name()} (shape {ts[0].Shape}); all tensors must have the same dtype.",
                    nameof(tensors));
            }
        }

        return ts;
    }

    // ---------------------------------------------------------------- shared forward paths

    /// <summary>The slices start, start + step, … (count of them) of x along dim d, recorded under <paramref name="op"/>.</summary>
    private static Tensor SliceCore(string op, Tensor x, int d, int start, int step, int count)
    {
        var dims = x.Shape.ToArray();
        dims[d] = count;
        var y = Tensor.Empty(new Shape(dims), x.DType);
        var (outer, size, inner) = Dispatch.Around(x.Shape, d);
        Dispatch.ByElementType(x.DType, new SliceCopyWork(x, y, outer, size, inner, start, step, count));

        if (Tensor.ShouldRecord(x))
        {
            y.SetGradFn(new SliceNode(op, x, d, start, step));
        }

        return y;
    }

    /// <summary>
    /// The adjoint of a slice, as an operator: zeros of <paramref name="shape"/> with g written at positions
    /// start, start + step, … along dim d. Differentiable in g (its gradient is the slice again).
    /// </summary>
    internal static Tensor SliceBackward(Tensor g, Shape shape, int d, int start, int step)
    {
        var count = g.Shape[d];
        var y = Tensor.Empty(shape, g.DType);
        var (outer, size, inner) = Dispatch.Around(shape, d);
        Dispatch.ByElementType(g.DType, new SliceScatterWork(g, y, outer, size, inner, start, step, count));

        if (Tensor.ShouldRecord(g))
        {
            y.SetGradFn(new SliceBackwardNode(g, d, start, step));
        }

        return y;
    }

    /// <summary>Copies validated tensors into <paramref name="shape"/> along dim d (an existing dim, or the new one when <paramref name="stacked"/>).</summary>
    private static Tensor ConcatCore(string op, Tensor[] ts, int d, Shape shape, bool stacked)
    {
        var y = Tensor.Empty(shape, ts[0].DType);
        var (outer, total, inner) = Dispatch.Around(shape, d);
        var offset = 0;
        foreach (var t in ts)
        {
            var size = stacked ? 1 : t.Shape[d];
            Dispatch.ByElementType(t.DType, new CopyRowsWork(t, y, outer, size, inner, total, offset));

            offset += size;
        }

        if (Tensor.ShouldRecord(ts))
        {
            y.SetGradFn(new ConcatNode(op, ts, d, stacked));
        }

        return y;
    }

    // ---------------------------------------------------------------- kernels for every element type

    private readonly struct TakeWork(Tensor x, Tensor y, int[] offsets) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.Take(x.Span<T>(), offsets, y.Span<T>());
    }

    private readonly struct AddAtWork(Tensor y, Tensor src, int[] offsets) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.AddAt(y.Span<T>(), offsets, src.Span<T>());
    }

    private readonly struct SelectBlocksWork(Tensor x, Tensor y, int outer, int size, int inner, Tensor index) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.SelectBlocks(x.Span<T>(), outer, size, inner, index.AsSpan<long>(), y.Span<T>());
    }

    private readonly struct AddBlocksWork(Tensor y, Tensor source, int outer, int size, int inner, Tensor index) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.AddBlocks(y.Span<T>(), outer, size, inner, index.AsSpan<long>(), source.Span<T>());
    }

    private readonly struct OneHotWork(Tensor y, Tensor index, int numClasses) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.OneHot(index.AsSpan<long>(), numClasses, y.Span<T>());
    }

    private readonly struct SliceCopyWork(Tensor x, Tensor y, int outer, int size, int inner, int start, int step, int count) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.SliceCopy(x.Span<T>(), outer, size, inner, start, step, count, y.Span<T>());
    }

    private readonly struct SliceScatterWork(Tensor g, Tensor y, int outer, int size, int inner, int start, int step, int count) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.SliceScatter(g.Span<T>(), outer, size, inner, start, step, count, y.Span<T>());
    }

    private readonly struct CopyRowsWork(Tensor t, Tensor y, int outer, int size, int inner, int total, int offset) : IElementWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.INumber<T>
            => IndexKernels.CopyRows(t.Span<T>(), outer, size * inner, y.Span<T>(), total * inner, offset * inner);
    }

    // ---------------------------------------------------------------- backward rules

    // Gather and IndexSelect read elements picked by an index; each is the adjoint of the matching scatter below.
    [Rule("Gather", Forward = "y = gather(x, dim, index)", Backward = "dx = scatterAdd(zeros(x.shape), dim, index, g)", Saves = "index", Tangent = "ẏ = gather(ẋ, dim, index)")]
    [Rule("IndexSelect", Forward = "y = indexSelect(x, dim, index)", Backward = "dx = indexAdd(zeros(x.shape), dim, index, g)", Saves = "index", Tangent = "ẏ = indexSelect(ẋ, dim, index)")]
    private sealed class SelectNode : Node
    {
        private readonly Shape _shape;
        private readonly DType _dtype;
        private readonly int _dim;

        public SelectNode(string name, Tensor x, int dim, Tensor index)
            : base(name, x)
        {
            _shape = x.Shape;
            _dtype = x.DType;
            _dim = dim;
            Save(index);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var zeros = Tensor.Zeros(_shape, _dtype);
            grads[0] = Name == "Gather" ? zeros.ScatterAdd(_dim, Saved(0), g) : zeros.IndexAdd(_dim, Saved(0), g);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => Name == "Gather" ? t[0]!.Gather(_dim, Saved(0)) : t[0]!.IndexSelect(_dim, Saved(0));
    }

    // ScatterAdd and IndexAdd add a source into x at the places an index picks; x's gradient passes through.
    [Rule("ScatterAdd", Forward = "y = scatterAdd(x, dim, index, src)", Backward = "dx = g, dsrc = gather(g, dim, index)", Saves = "index", Tangent = "ẏ = scatterAdd(ẋ, dim, index, ṡrc)")]
    [Rule("IndexAdd", Forward = "y = indexAdd(x, dim, index, source)", Backward = "dx = g, dsource = indexSelect(g, dim, index)", Saves = "index", Tangent = "ẏ = indexAdd(ẋ, dim, index, ṡource)")]
    private sealed class AddAtNode : Node
    {
        private readonly int _dim;

        public AddAtNode(string name, Tensor x, Tensor source, int dim, Tensor index)
            : base(name, x, source)
        {
            _dim = dim;
            Save(index);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            if (NeedsInputGrad(0))
            {
                grads[0] = g;
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = Name == "ScatterAdd" ? g.Gather(_dim, Saved(0)) : g.IndexSelect(_dim, Saved(0));
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            if (t[1] is not { } ts)
            {
                return t[0];
            }

            var x = t[0] ?? Tensor.Zeros(y.Shape, y.DType);
            return Name == "ScatterAdd" ? x.ScatterAdd(_dim, Saved(0), ts) : x.IndexAdd(_dim, Saved(0), ts);
        }
    }

    // The table's gradient is linear in g: IndexAdd's own rule gives the second derivatives.
    [Rule("Embedding", Forward = "y[p] = W[index[p]]", Backward = "dW = indexAdd(zeros(W.shape), 0, index, g), row paddingIndex left 0", Saves = "index", Tangent = "ẏ[p] = Ẇ[index[p]], 0 where index[p] = paddingIndex")]
    private sealed class EmbeddingNode : Node
    {
        private readonly Shape _shape;
        private readonly DType _dtype;
        private readonly int? _padding;

        public EmbeddingNode(Tensor weight, Tensor indices, int? padding)
            : base("Embedding", weight)
        {
            _shape = weight.Shape;
            _dtype = weight.DType;
            _padding = padding;
            Save(indices);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var indices = Saved(0);
            var flat = indices.Reshape(-1);
            var rows = g.Reshape(indices.ElementCount, _shape[1]);
            if (_padding is { } pad)
            {
                // Only the positions that do not name the padding row send their gradient.
                var idx = flat.AsSpan<long>();
                var keep = new List<long>(idx.Length);
                var keptRows = new List<long>(idx.Length);
                for (var i = 0; i < idx.Length; i++)
                {
                    if (idx[i] != pad)
                    {
                        keep.Add(i);
                        keptRows.Add(idx[i]);
                    }
                }

                if (keep.Count < idx.Length)
                {
                    rows = rows.IndexSelect(0, Tensor.FromArray(keep.ToArray(), keep.Count));
                    flat = Tensor.FromArray(keptRows.ToArray(), keptRows.Count);
                }
            }

            grads[0] = Tensor.Zeros(_shape, _dtype).IndexAdd(0, flat, rows);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var indices = Saved(0);
            var flat = indices.Reshape(-1);
            var rows = t[0]!.IndexSelect(0, flat);
            if (_padding is { } pad)
            {
                // The padding row sends no gradient, so its positions carry no tangent either.
                var idx = flat.AsSpan<long>();
                var keep = new double[idx.Length];
                var any = false;
                for (var i = 0; i < idx.Length; i++)
                {
                    keep[i] = idx[i] == pad ? 0 : 1;
                    any |= idx[i] == pad;
                }

                if (any)
                {
                    rows = rows * Tensor.FromArray(keep, idx.Length, 1).To(_dtype);
                }
            }

            return rows.Reshape(y.Shape.ToArray());
        }
    }

    [Rule("Narrow", Forward = "y = x[start : start + length] along dim", Backward = "dx = zeros(x.shape), dx[start + j·step] = g[j] along dim", Tangent = "ẏ = ẋ sliced the same way")]
    [Rule("Slice", Forward = "y = x[start : end : step] along dim", Backward = "dx = zeros(x.shape), dx[start + j·step] = g[j] along dim", Tangent = "ẏ = ẋ sliced the same way")]
    private sealed class SliceNode(string name, Tensor x, int dim, int start, int step) : Node(name, x)
    {
        private readonly Shape _shape = x.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = SliceBackward(g, _shape, dim, start, step);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => SliceCore(Name, t[0]!, dim, start, step, y.Shape[dim]);
    }

    [Rule("SliceBackward", Forward = "y = zeros(shape), y[start + j·step] = g[j] along dim", Backward = "dg = gg[start::step] along dim", Tangent = "ẏ = zeros(shape), ẏ[start + j·step] = ġ[j] along dim")]
    private sealed class SliceBackwardNode(Tensor g, int dim, int start, int step) : Node("SliceBackward", g)
    {
        private readonly int _count = g.Shape[dim];

        protected internal override void Backward(Tensor gg, Tensor?[] grads) => grads[0] = SliceCore("Slice", gg, dim, start, step, _count);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => SliceBackward(t[0]!, y.Shape, dim, start, step);
    }

    [Rule("Concat", Forward = "y = concat(x_0, …, x_n−1; dim)", Backward = "dx_i = narrow(g, dim, offset_i, size_i)", Tangent = "ẏ = concat(ẋ_0, …, ẋ_n−1; dim), 0 for an input without one")]
    [Rule("Stack", Forward = "y = stack(x_0, …, x_n−1; dim)", Backward = "dx_i = g[i] along the new dim", Tangent = "ẏ = stack(ẋ_0, …, ẋ_n−1; dim), 0 for an input without one")]
    private sealed class ConcatNode(string name, Tensor[] inputs, int dim, bool stacked) : Node(name, inputs)
    {
        private readonly Shape[] _shapes = [.. inputs.Select(t => t.Shape)];

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var offset = 0;
            for (var i = 0; i < _shapes.Length; i++)
            {
                var size = stacked ? 1 : _shapes[i][dim];
                if (NeedsInputGrad(i))
                {
                    var part = g.Narrow(dim, offset, size);
                    grads[i] = stacked ? part.Reshape(_shapes[i].ToArray()) : part;
                }

                offset += size;
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var parts = new Tensor[_shapes.Length];
            for (var i = 0; i < parts.Length; i++)
            {
                parts[i] = t[i] ?? Tensor.Zeros(_shapes[i], y.DType);
            }

            return stacked ? Tensor.Stack(parts, dim) : Tensor.Concat(parts, dim);
        }
    }
}
