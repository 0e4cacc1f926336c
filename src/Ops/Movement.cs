namespace Autograd.Ops;

/// <summary>
/// Movement operators: reshape/view, flatten, squeeze/unsqueeze (which share storage), transpose and permute, and
/// expand/broadcast-to (which copy into a new contiguous tensor). Their gradients move the gradient back.
/// </summary>
public static class Movement
{
    extension(Tensor x)
    {
        /// <summary>
        /// The same elements in a new shape (row-major order kept), sharing storage. One size may be −1 and is inferred.
        /// </summary>
        /// <exception cref="ArgumentException">The element counts differ, or more than one size is −1.</exception>
        public Tensor Reshape(params int[] shape) => View(x, "Reshape", InferShape(x, shape, "Reshape"));

        /// <summary>Same as <see cref="Reshape"/> (storage is always contiguous, so every reshape is a view).</summary>
        public Tensor View(params int[] shape) => View(x, "View", InferShape(x, shape, "View"));

        /// <summary>Flattens dims <paramref name="startDim"/> … <paramref name="endDim"/> into one.</summary>
        public Tensor Flatten(int startDim = 0, int endDim = -1)
        {
            if (x.Rank == 0)
            {
                return View(x, "Flatten", new Shape(1));
            }

            var s = x.Shape.NormalizeDim(startDim, "Flatten");
            var e = x.Shape.NormalizeDim(endDim, "Flatten");
            if (s > e)
            {
                throw new ArgumentException($"Flatten: startDim {startDim} comes after endDim {endDim} for shape {x.Shape}.", nameof(startDim));
            }

            var dims = new List<int>();
            var merged = 1;
            for (var i = 0; i < x.Rank; i++)
            {
                if (i < s || i > e)
                {
                    dims.Add(x.Shape[i]);
                }
                else
                {
                    merged *= x.Shape[i];
                    if (i == e)
                    {
                        dims.Add(merged);
                    }
                }
            }

            return View(x, "Flatten", new Shape([.. dims]));
        }

        /// <summary>Removes every dim of size 1.</summary>
        public Tensor Squeeze() => View(x, "Squeeze", new Shape([.. x.Shape.Where(d => d != 1)]));

        /// <summary>Removes dim <paramref name="dim"/> if its size is 1 (otherwise returns the same shape, as PyTorch).</summary>
        public Tensor Squeeze(int dim)
        {
            var d = x.Shape.NormalizeDim(dim, "Squeeze");
            if (x.Rank == 0 || x.Shape[d] != 1)
            {
                return View(x, "Squeeze", x.Shape);
            }

            var dims = x.Shape.ToArray().ToList();
            dims.RemoveAt(d);
            return View(x, "Squeeze", new Shape([.. dims]));
        }

        /// <summary>Inserts a dim of size 1 at position <paramref name="dim"/> (in [−rank−1, rank]).</summary>
        /// <exception cref="ArgumentOutOfRangeException">The position is out of range.</exception>
        public Tensor Unsqueeze(int dim)
        {
            var rank = x.Rank;
            if (dim < -rank - 1 || dim > rank)
            {
                throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Unsqueeze: dim {dim} is out of range for a tensor of rank {rank} and shape {x.Shape} (expected a dim in [{-rank - 1}, {rank}]).");
            }

            var d = dim < 0 ? dim + rank + 1 : dim;
            var dims = x.Shape.ToArray().ToList();
            dims.Insert(d, 1);
            return View(x, "Unsqueeze", new Shape([.. dims]));
        }

        /// <summary>Swaps dims <paramref name="dim0"/> and <paramref name="dim1"/> (a copy in the new layout).</summary>
        public Tensor Transpose(int dim0, int dim1)
        {
            if (x.Rank < 2)
            {
                x.Shape.NormalizeDim(dim0, "Transpose");
                x.Shape.NormalizeDim(dim1, "Transpose");
                return View(x, "Transpose", x.Shape);
            }

            var perm = Enumerable.Range(0, x.Rank).ToArray();
            var a = x.Shape.NormalizeDim(dim0, "Transpose");
            var b = x.Shape.NormalizeDim(dim1, "Transpose");
            (perm[a], perm[b]) = (perm[b], perm[a]);
            return PermuteImpl(x, perm, "Transpose");
        }

        /// <summary>The transpose of a matrix (rank ≤ 2); use <see cref="Transpose"/> or <see cref="Permute"/> for more dims.</summary>
        public Tensor T
        {
            get
            {
                if (x.Rank > 2)
                {
                    throw new InvalidOperationException($"T: only defined for rank ≤ 2, got shape {x.Shape}; use Transpose(dim0, dim1) or Permute.");
                }

                return x.Rank < 2 ? x : x.Transpose(0, 1);
            }
        }

        /// <summary>Reorders the dims: result dim i is input dim <paramref name="dims"/>[i] (a copy in the new layout).</summary>
        /// <exception cref="ArgumentException">The dims are not a permutation of 0 … rank−1.</exception>
        public Tensor Permute(params int[] dims)
        {
            if (dims.Length != x.Rank)
            {
                throw new ArgumentException($"Permute: {dims.Length} dims given for a tensor of rank {x.Rank} and shape {x.Shape}.", nameof(dims));
            }

            var perm = new int[dims.Length];
            var seen = new bool[dims.Length];
            for (var i = 0; i < dims.Length; i++)
            {
                perm[i] = x.Shape.NormalizeDim(dims[i], "Permute");
                if (seen[perm[i]])
                {
                    throw new ArgumentException($"Permute: dim {perm[i]} appears more than once in [{string.Join(", ", dims)}].", nameof(dims));
                }

                seen[perm[i]] = true;
            }

            return PermuteImpl(x, perm, "Permute");
        }

        /// <summary>
        /// Broadcasts x to <paramref name="shape"/> (sizes of 1 are repeated, new dims are added in front; −1 keeps a size).
        /// The result is a new contiguous tensor; its gradient is summed back to x's shape.
        /// </summary>
        /// <exception cref="ArgumentException">x cannot be broadcast to the shape.</exception>
        public Tensor Expand(params int[] shape)
        {
            var dims = (int[])shape.Clone();
            var off = dims.Length - x.Rank;
            for (var i = 0; i < dims.Length; i++)
            {
                if (dims[i] == -1)
                {
                    if (i < off)
                    {
                        throw new ArgumentException($"Expand: −1 is not allowed for the new leading dim {i} (shape {x.Shape} to [{string.Join(", ", shape)}]).", nameof(shape));
                    }

                    dims[i] = x.Shape[i - off];
                }
            }

            var target = new Shape(dims);
            if (off < 0 || !x.Shape.CanBroadcastTo(target))
            {
                throw new ArgumentException($"Expand: shape {x.Shape} cannot be broadcast to {target}; each size must match or be 1.", nameof(shape));
            }

            if (target == x.Shape)
            {
                return x;
            }

            var y = Dispatch.StridedCopy(x, x.Shape.BroadcastStrides(target), target);
            if (Tensor.ShouldRecord(x))
            {
                y.SetGradFn(new ExpandNode(x));
            }

            return y;
        }

        /// <summary>Same as <see cref="Expand"/>, named as in NumPy.</summary>
        public Tensor BroadcastTo(params int[] shape) => x.Expand(shape);
    }

    private static Shape InferShape(Tensor x, int[] shape, string op)
    {
        var infer = -1;
        long known = 1;
        for (var i = 0; i < shape.Length; i++)
        {
            if (shape[i] == -1)
            {
                if (infer >= 0)
                {
                    throw new ArgumentException($"{op}: only one size can be −1, got [{string.Join(", ", shape)}].", nameof(shape));
                }

                infer = i;
            }
            else if (shape[i] < 0)
            {
                throw new ArgumentException($"{op}: invalid size {shape[i]} in [{string.Join(", ", shape)}].", nameof(shape));
            }
            else
            {
                known *= shape[i];
            }
        }

        var dims = (int[])shape.Clone();
        if (infer >= 0)
        {
            if (known == 0 || x.ElementCount % known != 0)
            {
                throw new ArgumentException($"{op}: cannot reshape a tensor of shape {x.Shape} ({x.ElementCount} elements) to [{string.Join(", ", shape)}]: the −1 cannot be inferred.", nameof(shape));
            }

            dims[infer] = (int)(x.ElementCount / known);
        }

        var result = new Shape(dims);
        if (result.ElementCount != x.ElementCount)
        {
            throw new ArgumentException($"{op}: cannot reshape a tensor of shape {x.Shape} ({x.ElementCount} elements) to {result} ({result.ElementCount} elements).", nameof(shape));
        }

        return result;
    }

    private static Tensor View(Tensor x, string op, Shape shape)
    {
        var y = new Tensor(shape, x);
        if (x.DType.IsFloatingPoint() && Tensor.ShouldRecord(x))
        {
            y.SetGradFn(new ViewNode(op, x));
        }

        return y;
    }

    private static Tensor PermuteImpl(Tensor x, int[] perm, string op)
    {
        var dims = new int[perm.Length];
        var strides = new int[perm.Length];
        var own = x.Shape.Strides;
        for (var i = 0; i < perm.Length; i++)
        {
            dims[i] = x.Shape[perm[i]];
            strides[i] = own[perm[i]];
        }

        var y = Dispatch.StridedCopy(x, strides, new Shape(dims));
        if (x.DType.IsFloatingPoint() && Tensor.ShouldRecord(x))
        {
            y.SetGradFn(new PermuteNode(op, x, perm));
        }

        return y;
    }

    // Every view: the same elements in a new shape, sharing storage.
    [Rule("Reshape", Forward = "y = reshape(x, shape)", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    [Rule("View", Forward = "y = view(x, shape)", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    [Rule("Flatten", Forward = "y = flatten(x, startDim, endDim)", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    [Rule("Squeeze", Forward = "y = squeeze(x), dims of size 1 removed", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    [Rule("Unsqueeze", Forward = "y = unsqueeze(x, dim), a dim of size 1 inserted", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    [Rule("Transpose", Forward = "y = x for x of rank < 2 (no dims to swap)", Backward = "dx = reshape(g, x.shape)", Tangent = "ẏ = ẋ reshaped the same way")]
    private sealed class ViewNode(string name, Tensor x) : Node(name, x)
    {
        private readonly Shape _shape = x.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.Reshape(_shape.ToArray());

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0]!.Reshape(y.Shape.ToArray());
    }

    [Rule("Transpose", Forward = "y = permute(x, p), p swapping two dims", Backward = "dx = permute(g, p⁻¹)", Tangent = "ẏ = permute(ẋ, p)")]
    [Rule("Permute", Forward = "y = permute(x, p)", Backward = "dx = permute(g, p⁻¹)", Tangent = "ẏ = permute(ẋ, p)")]
    private sealed class PermuteNode(string name, Tensor x, int[] perm) : Node(name, x)
    {
        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var inverse = new int[perm.Length];
            for (var i = 0; i < perm.Length; i++)
            {
                inverse[perm[i]] = i;
            }

            grads[0] = g.Permute(inverse);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0]!.Permute(perm);
    }

    [Rule("Expand", Forward = "y = expand(x, shape)", Backward = "dx = sumTo(g, x.shape)", Tangent = "ẏ = expand(ẋ, shape)")]
    private sealed class ExpandNode(Tensor x) : Node("Expand", x)
    {
        private readonly Shape _shape = x.Shape;

        protected internal override void Backward(Tensor g, Tensor?[] grads) => grads[0] = g.SumTo(_shape);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y) => t[0]!.Expand(y.Shape.ToArray());
    }
}
