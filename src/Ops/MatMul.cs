using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Matrix product with PyTorch's <c>matmul</c> semantics: 2-D · 2-D, batched (leading batch dims broadcast), and
/// 1-D operands treated as a row (left) or column (right) vector that is removed from the result.
/// </summary>
public static class LinearAlgebra
{
    extension(Tensor a)
    {
        /// <summary>The matrix product a · b; see <see cref="LinearAlgebra"/> for the shapes accepted.</summary>
        /// <exception cref="ArgumentException">A rank-0 operand, inner sizes that differ, batch dims that do not broadcast, or mixed dtypes.</exception>
        public Tensor MatMul(Tensor b)
        {
            Dispatch.RequireSameDType(a, b, "MatMul");
            if (a.Rank == 0 || b.Rank == 0)
            {
                throw new ArgumentException($"MatMul: both operands need at least one dim, got shapes {a.Shape} and {b.Shape}.");
            }

            // Check the shapes as given, before 1-D operands are promoted, so that the message names the caller's shapes.
            var inner = b.Rank == 1 ? b.Shape[0] : b.Shape[-2];
            if (a.Shape[-1] != inner)
            {
                throw new ArgumentException(
                    $"MatMul: shapes {a.Shape} and {b.Shape} cannot be multiplied: the last dim of the first ({a.Shape[-1]}) must equal the {(b.Rank == 1 ? "size of the second" : "second-to-last dim of the second")} ({inner}).");
            }

            for (var i = 3; i <= Math.Min(a.Rank, b.Rank); i++)
            {
                if (a.Shape[-i] != b.Shape[-i] && a.Shape[-i] != 1 && b.Shape[-i] != 1)
                {
                    throw new ArgumentException(
                        $"MatMul: shapes {a.Shape} and {b.Shape} cannot be multiplied: their batch dims {Shape.Format(a.Shape.Dims[..^2])} and {Shape.Format(b.Shape.Dims[..^2])} cannot be broadcast together (sizes must match or one must be 1).");
                }
            }

            if (a.Rank == 1 && b.Rank == 1)
            {
                return a.Unsqueeze(0).MatMul(b.Unsqueeze(1)).Reshape();
            }

            if (a.Rank == 1)
            {
                return a.Unsqueeze(0).MatMul(b).Squeeze(-2);
            }

            if (b.Rank == 1)
            {
                return a.MatMul(b.Unsqueeze(1)).Squeeze(-1);
            }

            return MatMulT(a, b, false, false);
        }
    }

    /// <summary>
    /// op(a) · op(b) for operands of rank ≥ 2, where op swaps the last two dims when its flag is set; the transposed
    /// operands are read in place (no copy). Batch dims broadcast as in <c>MatMul</c>. Differentiable to any order: its
    /// backward rule is again a <c>MatMulT</c>.
    /// </summary>
    /// <exception cref="ArgumentException">An operand of rank &lt; 2, inner sizes that differ, batch dims that do not broadcast, or mixed dtypes.</exception>
    internal static Tensor MatMulT(Tensor a, Tensor b, bool transA, bool transB)
    {
        Dispatch.RequireSameDType(a, b, "MatMul");
        if (a.Rank < 2 || b.Rank < 2)
        {
            throw new ArgumentException($"MatMul: transposed operands need at least two dims, got shapes {a.Shape} and {b.Shape}.");
        }

        // op(a) is n×k and op(b) is k×m.
        var n = transA ? a.Shape[-1] : a.Shape[-2];
        var k = transA ? a.Shape[-2] : a.Shape[-1];
        var m = transB ? b.Shape[-2] : b.Shape[-1];
        var kb = transB ? b.Shape[-1] : b.Shape[-2];
        if (k != kb)
        {
            throw new ArgumentException(
                $"MatMul: shapes {a.Shape}{(transA ? "ᵀ" : "")} and {b.Shape}{(transB ? "ᵀ" : "")} cannot be multiplied: inner sizes {k} and {kb} differ.");
        }

        var batchA = new Shape(a.Shape.Dims[..^2]);
        var batchB = new Shape(b.Shape.Dims[..^2]);
        var batch = Shape.Broadcast(batchA, batchB, "MatMul (batch dims)");
        // The product writes every element of y (zeros when the inner size is 0), so its storage is not cleared first.
        var y = Tensor.Uninitialized(new Shape([.. batch.Dims, n, m]), a.DType);
        if (y.ElementCount > 0)
        {
            Dispatch.ByFloatType(a.DType, new ForwardWork(a, b, y, transA, transB, batchA, batchB, batch, n, k, m));
        }

        if (Tensor.ShouldRecord(a, b))
        {
            y.SetGradFn(new MatMulNode(a, b, transA, transB));
        }

        return y;
    }

    private readonly struct ForwardWork(Tensor a, Tensor b, Tensor y, bool transA, bool transB, Shape batchA, Shape batchB, Shape batch, int n, int k, int m) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => Forward<T>(a, b, y, transA, transB, batchA, batchB, batch, n, k, m);
    }

    /// <summary>y[batch] = op(a[batch]) · op(b[batch]) with the blocked kernel.</summary>
    private static void Forward<T>(Tensor a, Tensor b, Tensor y, bool transA, bool transB, Shape batchA, Shape batchB, Shape batch, int n, int k, int m)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var sa = (T[])a.Storage;
        var sb = (T[])b.Storage;
        var sy = (T[])y.Storage;
        var lda = transA ? n : k;
        var ldb = transB ? k : m;
        if (!transA && batchB.ElementCount == 1 && batchA.ElementCount == batch.ElementCount)
        {
            // One matrix b for every batch and a not broadcast: the batches of a are consecutive rows of one product.
            var rows = batch.ElementCount * n;
            Gemm.Product<T>(false, transB, rows, m, k, new(sa, a.Offset, rows * k), lda, new(sb, b.Offset, k * m), ldb, new(sy, y.Offset, rows * m), m);
            return;
        }

        Batched(sa, a.Offset, batchA, sb, b.Offset, batchB, sy, batch, transA, transB, n, k, m);
    }

    /// <summary>One product per batch matrix, on one thread per matrix when the matrices are small but many.</summary>
    private static void Batched<T>(T[] sa, int offsetA, Shape batchA, T[] sb, int offsetB, Shape batchB, T[] sy, Shape batch, bool transA, bool transB, int n, int k, int m)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var offA = BatchOffsets(batchA, batch, n * k);
        var offB = BatchOffsets(batchB, batch, k * m);
        for (var i = 0; i < offA.Length; i++)
        {
            offA[i] += offsetA;
            offB[i] += offsetB;
        }

        var work = (long)n * m * k;
        if (offA.Length > 1 && Gemm.MaxThreads > 1 && work < Gemm.ParallelThreshold && work * offA.Length >= Gemm.ParallelThreshold)
        {
            // Many small products: one thread per batch matrix rather than several per product.
            Workers.For(offA.Length, Math.Min(offA.Length, Gemm.MaxThreads), new BatchJob<T>(sa, offA, sb, offB, sy, transA, transB, n, k, m));
            return;
        }

        for (var i = 0; i < offA.Length; i++)
        {
            BatchProduct(sa, offA, sb, offB, sy, i, transA, transB, n, k, m, 0);
        }
    }

    /// <summary>Batch matrices [start, end) of a batched product, each on one thread.</summary>
    private readonly struct BatchJob<T>(T[] a, int[] offA, T[] b, int[] offB, T[] y, bool transA, bool transB, int n, int k, int m) : IRangeJob
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        public void Run(int start, int end)
        {
            for (var i = start; i < end; i++)
            {
                BatchProduct(a, offA, b, offB, y, i, transA, transB, n, k, m, 1);
            }
        }
    }

    /// <summary>Batch matrix i of y (which starts at offset 0) from the matrices of a and b at the given storage offsets.</summary>
    private static void BatchProduct<T>(T[] a, int[] offA, T[] b, int[] offB, T[] y, int i, bool transA, bool transB, int n, int k, int m, int threads)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        => Gemm.Product<T>(transA, transB, n, m, k, new(a, offA[i], n * k), transA ? n : k, new(b, offB[i], k * m), transB ? k : m, new(y, i * n * m, n * m), m, threads: threads);

    /// <summary>The storage offset of each batch's matrix when <paramref name="own"/> is broadcast to <paramref name="batch"/>.</summary>
    private static int[] BatchOffsets(Shape own, Shape batch, int matrixSize)
    {
        var count = batch.ElementCount;
        var offsets = new int[count];
        var strides = own.BroadcastStrides(batch);
        var idx = new int[batch.Rank];
        for (var i = 0; i < count; i++)
        {
            var off = 0;
            for (var d = 0; d < batch.Rank; d++)
            {
                off += idx[d] * strides[d];
            }

            offsets[i] = off * matrixSize;
            for (var d = batch.Rank - 1; d >= 0; d--)
            {
                if (++idx[d] < batch[d])
                {
                    break;
                }

                idx[d] = 0;
            }
        }

        return offsets;
    }

    // Gradients are summed over broadcast batch dims. A transposed operand is read in place, and each product of the
    // rule is again a MatMulT, so no operand is ever copied to transpose it.
    [Rule("MatMul", Forward = "y = a · b", Backward = "da = g · bᵀ, db = aᵀ · g", Saves = "a, b", Tangent = "ẏ = ȧ · b + a · ḃ (the same product)")]
    [Rule("MatMul", Variant = "aᵀ · b", Forward = "y = aᵀ · b", Backward = "da = b · gᵀ, db = a · g", Saves = "a, b", Tangent = "ẏ = ȧᵀ · b + aᵀ · ḃ (the same product)")]
    [Rule("MatMul", Variant = "a · bᵀ", Forward = "y = a · bᵀ", Backward = "da = g · b, db = gᵀ · a", Saves = "a, b", Tangent = "ẏ = ȧ · bᵀ + a · ḃᵀ (the same product)")]
    [Rule("MatMul", Variant = "aᵀ · bᵀ", Forward = "y = aᵀ · bᵀ", Backward = "da = bᵀ · gᵀ, db = gᵀ · aᵀ", Saves = "a, b", Tangent = "ẏ = ȧᵀ · bᵀ + aᵀ · ḃᵀ (the same product)")]
    private sealed class MatMulNode : Node
    {
        private readonly bool _transA, _transB;

        public MatMulNode(Tensor a, Tensor b, bool transA, bool transB)
            : base("MatMul", a, b)
        {
            _transA = transA;
            _transB = transB;
            Save(a, b);
        }

        protected override string? RuleVariant => (_transA, _transB) switch
        {
            (false, false) => null,
            (true, false) => "aᵀ · b",
            (false, true) => "a · bᵀ",
            _ => "aᵀ · bᵀ",
        };

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(0);
            var b = Saved(1);
            var transA = _transA;
            var transB = _transB;
            if (NeedsInputGrad(0))
            {
                var da = transA ? MatMulT(b, g, transB, true) : MatMulT(g, b, false, !transB);
                grads[0] = da.SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                if (b.Rank == 2 && a.Rank > 2 && !transA)
                {
                    // One b for every batch: the sum over batches of op(a)ᵀ · g is one product over the stacked rows.
                    var rows = 1;
                    for (var d = 0; d < a.Rank - 1; d++)
                    {
                        rows *= a.Shape[d];
                    }

                    var a2 = a.Reshape(rows, a.Shape[-1]);
                    var g2 = g.Reshape(rows, g.Shape[-1]);
                    grads[1] = transB ? MatMulT(g2, a2, true, false) : MatMulT(a2, g2, true, false);
                }
                else
                {
                    var db = transB ? MatMulT(g, a, true, transA) : MatMulT(a, g, !transA, false);
                    grads[1] = db.SumTo(b.Shape);
                }
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => Tangents.Sum(
                t[0] is { } ta ? MatMulT(ta, Saved(1), _transA, _transB) : null,
                t[1] is { } tb ? MatMulT(Saved(0), tb, _transA, _transB) : null,
                y);
    }
}
