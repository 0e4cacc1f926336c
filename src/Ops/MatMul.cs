using System.Numerics.Tensors;
using Autograd.Kernels;

namespace Autograd;

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

            var n = a.Shape[-2];
            var k = a.Shape[-1];
            var m = b.Shape[-1];
            if (b.Shape[-2] != k)
            {
                throw new ArgumentException(
                    $"MatMul: shapes {a.Shape} and {b.Shape} cannot be multiplied: the last dim of the first ({k}) must equal the second-to-last dim of the second ({b.Shape[-2]}).");
            }

            var batchA = new Shape(a.Shape.Dims[..^2]);
            var batchB = new Shape(b.Shape.Dims[..^2]);
            var batch = Shape.Broadcast(batchA, batchB, "MatMul (batch dims)");
            var y = Tensor.Empty(new Shape([.. batch.Dims, n, m]), a.DType);
            var offA = BatchOffsets(batchA, batch, n * k);
            var offB = BatchOffsets(batchB, batch, k * m);
            for (var i = 0; i < offA.Length; i++)
            {
                if (a.DType == DType.Float64)
                {
                    Gemm<double>(a.Span<double>().Slice(offA[i], n * k), b.Span<double>().Slice(offB[i], k * m), y.Span<double>().Slice(i * n * m, n * m), n, k, m);
                }
                else
                {
                    Gemm<float>(a.Span<float>().Slice(offA[i], n * k), b.Span<float>().Slice(offB[i], k * m), y.Span<float>().Slice(i * n * m, n * m), n, k, m);
                }
            }

            if (Tensor.ShouldRecord(a, b))
            {
                y.SetGradFn(new MatMulNode(a, b));
            }

            return y;
        }
    }

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

    /// <summary>c[n×m] = a[n×k] · b[k×m], row by row: c_i = Σ_p a_ip · b_p (vectorised along the row).</summary>
    private static void Gemm<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> c, int n, int k, int m)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        c.Clear();
        for (var i = 0; i < n; i++)
        {
            var row = c.Slice(i * m, m);
            for (var p = 0; p < k; p++)
            {
                TensorPrimitives.MultiplyAdd(b.Slice(p * m, m), a[(i * k) + p], row, row);
            }
        }
    }

    // y = a · b            da = g · bᵀ, db = aᵀ · g   (each summed over broadcast batch dims)
    private sealed class MatMulNode(Tensor a, Tensor b) : Node("MatMul", a, b)
    {
        private Tensor? _a = a, _b = b;

        public override string Formula => "da = g · bᵀ, db = aᵀ · g";

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var a = Saved(_a);
            var b = Saved(_b);
            if (NeedsInputGrad(0))
            {
                grads[0] = g.MatMul(b.Transpose(-1, -2)).SumTo(a.Shape);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = a.Transpose(-1, -2).MatMul(g).SumTo(b.Shape);
            }
        }

        protected internal override void Release()
        {
            _a = _b = null;
            base.Release();
        }
    }
}
