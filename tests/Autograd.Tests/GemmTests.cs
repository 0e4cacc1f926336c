using System.Numerics;
using System.Runtime.Intrinsics;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// The blocked matrix multiply (<see cref="Gemm"/>) against a naive triple loop accumulated in float64, over shapes
/// around every block and vector edge (0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 257), all four
/// transposition flags, both dtypes, one and two threads, every micro-kernel width, row strides and accumulation; then
/// the differentiable transposed product <c>MatMulT</c> that MatMul and its backward rule are built on.
/// </summary>
/// <remarks>
/// The tolerance for each element is (k + 2)·eps·Σₚ|a_ip·b_pj|, the classical bound for a sum of k products, so it
/// scales with k and with the magnitude of the terms rather than of the result.
/// </remarks>
[Collection(ProcessWideSettings.Name)]
public class GemmTests
{
    private static readonly int[] SmallSizes = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33];

    /// <summary>Shapes (m, n, k) with at least one size beyond a register tile, a cache block or a transpose block.</summary>
    private static readonly (int M, int N, int K)[] LargeShapes =
    [
        (63, 65, 127), (65, 63, 129), (127, 129, 63), (129, 127, 65), (255, 17, 257), (257, 255, 9), (17, 257, 255),
        (1, 257, 129), (257, 1, 65), (129, 257, 1), (255, 257, 129), (33, 255, 257), (257, 31, 16), (16, 15, 257),
        (0, 257, 129), (257, 0, 33), (65, 129, 0), (64, 784, 256), (784, 256, 64), (64, 10, 128), (5, 1031, 33), (33, 2053, 3),
    ];

    public static TheoryData<bool, bool, bool> DTypeAndFlags()
    {
        var data = new TheoryData<bool, bool, bool>();
        foreach (var isFloat in new[] { true, false })
        {
            foreach (var transA in new[] { false, true })
            {
                foreach (var transB in new[] { false, true })
                {
                    data.Add(isFloat, transA, transB);
                }
            }
        }

        return data;
    }

    public static TheoryData<bool, bool, bool, int> DTypeFlagsAndThreads()
    {
        var data = new TheoryData<bool, bool, bool, int>();
        foreach (var row in DTypeAndFlags())
        {
            var (isFloat, transA, transB) = row.Data;
            data.Add(isFloat, transA, transB, 1);
            data.Add(isFloat, transA, transB, 2);
        }

        return data;
    }

    // ---------------------------------------------------------------- the kernel against the naive product

    [Theory]
    [MemberData(nameof(DTypeAndFlags))]
    public void EverySmallShapeMatchesTheNaiveProduct(bool isFloat, bool transA, bool transB)
    {
        var seed = 0;
        foreach (var m in SmallSizes)
        {
            foreach (var n in SmallSizes)
            {
                foreach (var k in SmallSizes)
                {
                    Check(isFloat, transA, transB, m, n, k, threads: 1, seed: seed++);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(DTypeFlagsAndThreads))]
    public void LargeShapesMatchTheNaiveProduct(bool isFloat, bool transA, bool transB, int threads)
    {
        var seed = 100;
        foreach (var (m, n, k) in LargeShapes)
        {
            Check(isFloat, transA, transB, m, n, k, threads, seed: seed++);
        }
    }

    [Theory]
    [MemberData(nameof(DTypeAndFlags))]
    public void SmallShapesSplitAmongTwoThreadsMatchTheNaiveProduct(bool isFloat, bool transA, bool transB)
    {
        // A threshold of 1 sends even 1×1×1 products through the split among threads.
        int[] sizes = [0, 1, 7, 8, 9, 17, 33, 65];
        var seed = 200;
        foreach (var m in sizes)
        {
            foreach (var n in sizes)
            {
                foreach (var k in sizes)
                {
                    Check(isFloat, transA, transB, m, n, k, threads: 2, seed: seed++, parallelThreshold: 1);
                }
            }
        }
    }

    [Fact]
    public void EveryMicroKernelWidthMatchesTheNaiveProduct()
    {
        var widths = MicroKernelWidths();
        int[] sizes = [1, 3, 8, 9, 17, 33];
        try
        {
            foreach (var bits in widths)
            {
                Gemm.ForcedVectorBits = bits;
                Assert.Equal(bits, Gemm.VectorBits<float>());
                var seed = 300;
                foreach (var isFloat in new[] { true, false })
                {
                    foreach (var transA in new[] { false, true })
                    {
                        foreach (var transB in new[] { false, true })
                        {
                            foreach (var m in sizes)
                            {
                                foreach (var n in sizes)
                                {
                                    Check(isFloat, transA, transB, m, n, 31, threads: 1, seed: seed++);
                                }
                            }

                            Check(isFloat, transA, transB, 129, 127, 257, threads: 1, seed: seed++);
                            Check(isFloat, transA, transB, 65, 63, 33, threads: 2, seed: seed++, parallelThreshold: 1);
                        }
                    }
                }
            }
        }
        finally
        {
            Gemm.ForcedVectorBits = -1;
        }
    }

    [Fact]
    public void NarrowProductsComputedTransposedMatchTheNaiveProduct()
    {
        // A C of many rows and a few columns (a classifier's 64×10) fills fewer padded tiles as Cᵀ = op(B)ᵀ·op(A)ᵀ,
        // written back element by element: on every width, every flag, with strides and accumulation, over two k blocks
        // (k = 300) and two column blocks of the transpose (1100 rows).
        (int M, int N, int K)[] shapes = [(64, 10, 128), (128, 10, 64), (1000, 3, 50), (63, 5, 33), (257, 7, 300), (40, 2, 17), (1100, 9, 40)];
        var widths = MicroKernelWidths();
        try
        {
            foreach (var bits in widths)
            {
                Gemm.ForcedVectorBits = bits;
                if (bits != 0)
                {
                    Assert.True(Gemm.ComputesTransposed<float>(64, 10, 128), $"width {bits}: float32 64×10 over 128 is not computed transposed");
                }

                var transposed = 0;
                var seed = 500;
                foreach (var isFloat in new[] { true, false })
                {
                    foreach (var (m, n, k) in shapes)
                    {
                        transposed += (isFloat ? Gemm.ComputesTransposed<float>(m, n, k) : Gemm.ComputesTransposed<double>(m, n, k)) ? 1 : 0;
                        foreach (var transA in new[] { false, true })
                        {
                            foreach (var transB in new[] { false, true })
                            {
                                foreach (var accumulate in new[] { false, true })
                                {
                                    Check(isFloat, transA, transB, m, n, k, threads: 1, seed: seed++, accumulate: accumulate, padA: 2, padB: 3, padC: 4);
                                }
                            }

                            // Split among two threads by rows, each part computed transposed on its own.
                            Check(isFloat, transA, false, m, n, k, threads: 2, seed: seed++, padC: 1, parallelThreshold: 1);
                        }
                    }
                }

                // The 4×4 scalar tile pads rows and columns alike, so it never gains by the transpose.
                Assert.True(bits == 0 ? transposed == 0 : transposed >= 4, $"width {bits}: {transposed} of the shapes were computed transposed");
            }
        }
        finally
        {
            Gemm.ForcedVectorBits = -1;
        }
    }

    [Fact]
    public void EdgeKernelsGiveTheBitsOfTheFullTileForTheirRows()
    {
        // The last rows of a block go through a 2- or 4-row kernel; each element must come out as the full MR-row tile
        // computes it (a product split among threads cuts its tiles elsewhere), overwriting or adding, and the rows
        // past the edge kernel's must stay untouched.
        EdgeMatchesFull<float, Kernel512<float>>();
        EdgeMatchesFull<double, Kernel512<double>>();
        EdgeMatchesFull<float, Kernel256<float>>();
        EdgeMatchesFull<double, Kernel256<double>>();
        EdgeMatchesFull<float, Kernel128<float>>();
        EdgeMatchesFull<double, Kernel128<double>>();
        EdgeMatchesFull<float, KernelScalar<float>>();
        EdgeMatchesFull<double, KernelScalar<double>>();
    }

    [Fact]
    public void EdgeRowsCostWhatTheEdgeKernelsCompute()
    {
        Assert.Equal([0, 2, 2, 4, 4, 8, 8, 8, 8], Enumerable.Range(0, 9).Select(Kernel512<double>.EdgeRows));
        Assert.Equal([0, 2, 2, 4, 4, 6, 6], Enumerable.Range(0, 7).Select(Kernel256<float>.EdgeRows));
        Assert.Equal([0, 2, 2, 4, 4, 6, 6], Enumerable.Range(0, 7).Select(Kernel128<double>.EdgeRows));
        Assert.Equal([0, 4, 4, 4, 4], Enumerable.Range(0, 5).Select(KernelScalar<float>.EdgeRows));

        // A C of ten rows costs twelve on the 512-bit tile of eight (8 + an edge of 2 that costs 4), so 64×10 float64 is
        // computed transposed there, though both ways pad it to 1024 elements without the edge kernels; on 128 bits
        // (two float64 lanes) the edge does not count and the choice stays as it was.
        try
        {
            Gemm.ForcedVectorBits = 128;
            Assert.False(Gemm.ComputesTransposed<double>(64, 10, 128));
            Assert.True(Gemm.ComputesTransposed<float>(64, 10, 128));
            if (Kernel512<double>.IsSupported)
            {
                Gemm.ForcedVectorBits = 512;
                Assert.True(Gemm.ComputesTransposed<double>(64, 10, 128));
            }
        }
        finally
        {
            Gemm.ForcedVectorBits = -1;
        }
    }

    [Fact]
    public void NarrowProductsMatchTheNaiveProductAndGiveTheSameBitsWhereverATileFalls()
    {
        // A C of a few columns, A not transposed, is computed as dot products along k on vectors of two or four lanes:
        // against the naive product (both B layouts, strides, accumulation, k with and without a tail past the last
        // vector), and each element the same bits when the product starts a row later (so tiles of four rows fall elsewhere).
        (int M, int N, int K)[] shapes = [(64, 10, 128), (7, 3, 33), (13, 12, 100), (5, 2, 8), (1000, 9, 20)];
        var widths = MicroKernelWidths();
        try
        {
            var narrow = 0;
            var seed = 700;
            foreach (var bits in widths)
            {
                Gemm.ForcedVectorBits = bits;
                Assert.Equal(bits is 256 or 128, Gemm.ComputesNarrow<double>(false, 10, 128));
                Assert.Equal(bits == 128, Gemm.ComputesNarrow<float>(false, 10, 128));
                Assert.False(Gemm.ComputesNarrow<double>(true, 10, 128));
                Assert.False(Gemm.ComputesNarrow<double>(false, 13, 128));
                foreach (var isFloat in new[] { true, false })
                {
                    foreach (var (m, n, k) in shapes)
                    {
                        narrow += (isFloat ? Gemm.ComputesNarrow<float>(false, n, k) : Gemm.ComputesNarrow<double>(false, n, k)) ? 1 : 0;
                        foreach (var transB in new[] { false, true })
                        {
                            foreach (var accumulate in new[] { false, true })
                            {
                                Check(isFloat, false, transB, m, n, k, threads: 1, seed: seed++, accumulate: accumulate, padA: 2, padB: 3, padC: 1);
                            }

                            if (isFloat)
                            {
                                SameBitsOneRowLater<float>(m, n, k, transB, seed++);
                            }
                            else
                            {
                                SameBitsOneRowLater<double>(m, n, k, transB, seed++);
                            }
                        }
                    }
                }
            }

            Assert.True(narrow >= 10, $"only {narrow} of the shapes were computed as dot products");
        }
        finally
        {
            Gemm.ForcedVectorBits = -1;
        }
    }

    private static void SameBitsOneRowLater<T>(int m, int n, int k, bool transB, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var random = new Random(seed);
        var a = Enumerable.Range(0, m * k).Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
        var b = Enumerable.Range(0, k * n).Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
        var whole = new T[m * n];
        var later = new T[(m - 1) * n];
        Gemm.Serial(false, transB, m, n, k, a, k, b, transB ? k : n, whole, n, false);
        Gemm.Serial(false, transB, m - 1, n, k, a.AsSpan(k), k, b, transB ? k : n, later, n, false);
        for (var i = 0; i < later.Length; i++)
        {
            Assert.True(whole[n + i].Equals(later[i]), $"{typeof(T).Name} {m}×{n} over {k}: element ({(i / n) + 1}, {i % n}) is {whole[n + i]} from row 0 and {later[i]} from row 1");
        }
    }

    private static void EdgeMatchesFull<T, TKernel>()
        where T : unmanaged, IFloatingPointIeee754<T>
        where TKernel : struct, IMicroKernel<T>
    {
        if (!TKernel.IsSupported)
        {
            return;
        }

        int mr = TKernel.MR, nr = TKernel.NR, ldc = nr + 3;
        var random = new Random(mr * 1000 + nr);
        foreach (var kc in new[] { 1, 2, 7, 64 })
        {
            var a = Enumerable.Range(0, kc * mr).Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
            var b = Enumerable.Range(0, kc * nr).Select(_ => T.CreateTruncating(random.NextDouble() * 2 - 1)).ToArray();
            var start = Enumerable.Range(0, mr * ldc).Select(_ => T.CreateTruncating(random.NextDouble())).ToArray();
            foreach (var add in new[] { false, true })
            {
                var full = (T[])start.Clone();
                TKernel.Compute(kc, ref a[0], ref b[0], ref full[0], ldc, add);
                for (var rows = 1; rows <= mr; rows++)
                {
                    var edge = (T[])start.Clone();
                    TKernel.ComputeRows(kc, rows, ref a[0], ref b[0], ref edge[0], ldc, add);
                    var computed = TKernel.EdgeRows(rows);
                    Assert.InRange(computed, rows, mr);
                    for (var i = 0; i < mr * ldc; i++)
                    {
                        var (r, j) = Math.DivRem(i, ldc);
                        var expected = r < computed && j < nr ? full[i] : start[i];
                        Assert.True(expected.Equals(edge[i]), $"{typeof(TKernel).Name} {typeof(T).Name}, kc {kc}, {rows} rows, add {add}: element ({r}, {j}) is {edge[i]}, the full tile {expected}");
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(DTypeAndFlags))]
    public void RowStridesAndAccumulationLeavePaddingUntouched(bool isFloat, bool transA, bool transB)
    {
        var seed = 400;
        foreach (var (m, n, k) in new[] { (1, 1, 1), (9, 17, 33), (33, 65, 17), (65, 33, 129), (130, 70, 300) })
        {
            foreach (var accumulate in new[] { false, true })
            {
                foreach (var threads in new[] { 1, 2 })
                {
                    Check(isFloat, transA, transB, m, n, k, threads, seed: seed++, accumulate: accumulate, padA: 3, padB: 5, padC: 7, parallelThreshold: 1);
                }
            }
        }
    }

    [Fact]
    public void AnEmptyInnerDimClearsCOrLeavesItWhenAccumulating()
    {
        var c = new float[] { 1, 2, 3, 4, 5, 6, 99 };
        Gemm.Multiply(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c.AsSpan(), 3, accumulate: true);
        Assert.Equal([1, 2, 3, 4, 5, 6, 99], c);
        Gemm.Multiply(false, false, 2, 3, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 3, c.AsSpan(), 3);
        Assert.Equal([0, 0, 0, 0, 0, 0, 99], c);

        var d = new double[] { 1, 2, 3, 4 };
        Gemm.Multiply(true, true, 2, 2, 0, ReadOnlyMemory<double>.Empty, 2, ReadOnlyMemory<double>.Empty, 0, d.AsMemory(), 2);
        Assert.Equal([0, 0, 0, 0], d);
    }

    [Fact]
    public void InvalidSizesStridesAndLengthsAreRejected()
    {
        var a = new float[6];
        var b = new float[6];
        var c = new float[4];
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, -1, 2, 3, a, 3, b, 2, c, 2));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, a, 2, b, 2, c, 2));   // lda < k
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, a, 3, b, 1, c, 2));   // ldb < n
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, a, 3, b, 2, c, 1));   // ldc < n
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 3, a, 4, b, 2, c, 2));   // a too short for its stride
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, true, 2, 3, 3, a, 3, b, 3, c, 2));    // b is 3×3 transposed
        var e = Assert.Throws<ArgumentException>(() => Gemm.Multiply(true, false, 2, 2, 3, a.AsMemory(), 2, b.AsMemory(), 2, new float[3].AsMemory(), 2));
        Assert.Contains("C holds 3 elements", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.MaxThreads = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.ParallelThreshold = 0);
    }

    [Fact]
    public void RepeatedSingleThreadProductsAllocateNothing()
    {
        var a = new float[96 * 80];
        var b = new float[80 * 112];
        var c = new float[96 * 112];
        var ad = new double[96 * 80];
        var bd = new double[80 * 112];
        var cd = new double[96 * 112];
        for (var i = 0; i < 3; i++)
        {
            Gemm.Multiply(false, true, 96, 112, 80, a, 80, b, 80, c, 112);
            Gemm.Multiply(true, false, 96, 112, 80, ad, 96, bd, 112, cd, 112);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            Gemm.Multiply(false, true, 96, 112, 80, a, 80, b, 80, c, 112);
            Gemm.Multiply(true, false, 96, 112, 80, ad, 96, bd, 112, cd, 112);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    // ---------------------------------------------------------------- MatMulT and MatMul on tensors

    public static TheoryData<bool, bool> Flags() => new() { { false, false }, { true, false }, { false, true }, { true, true } };

    [Theory]
    [MemberData(nameof(Flags))]
    public void MatMulTEqualsMatMulOfExplicitTransposes(bool transA, bool transB)
    {
        // op(a): [2, 1, 5, 7], op(b): [3, 7, 4] → [2, 3, 5, 4], batch dims broadcast.
        var a = Tensor.RandN(transA ? new Shape(2, 1, 7, 5) : new Shape(2, 1, 5, 7), 1);
        var b = Tensor.RandN(transB ? new Shape(3, 4, 7) : new Shape(3, 7, 4), 2);
        var y = LinearAlgebra.MatMulT(a, b, transA, transB);
        var expected = (transA ? a.Transpose(-1, -2) : a).MatMul(transB ? b.Transpose(-1, -2) : b);
        Assert.Equal(expected.Shape, y.Shape);
        AssertClose(expected.ToArray(), y.ToArray(), 1e-12);
    }

    [Theory]
    [MemberData(nameof(Flags))]
    public void MatMulWithInnerSizeZeroIsZeros(bool transA, bool transB)
    {
        // The result's storage is not cleared before the product, which must write the empty sums' zeros itself.
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            for (var round = 0; round < 3; round++)
            {
                // Large results and fresh garbage, so an uninitialised result would likely show old values.
                _ = Tensor.Full(new Shape(64, 300), 7.0, dtype);
                var a = Tensor.Zeros(transA ? new Shape(2, 0, 64) : new Shape(2, 64, 0), dtype);
                var b = Tensor.Zeros(transB ? new Shape(300, 0) : new Shape(0, 300), dtype);
                var y = LinearAlgebra.MatMulT(a, b, transA, transB);
                Assert.Equal(new Shape(2, 64, 300), y.Shape);
                Assert.All(y.ToArray(), v => Assert.Equal(0.0, v));
            }
        }
    }

    [Fact]
    public void MatMulBackwardRecordsProductsWithoutTransposeCopies()
    {
        var a = Tensor.RandN(new Shape(3, 4), 5).WithRequiresGrad();
        var b = Tensor.RandN(new Shape(4, 2), 6).WithRequiresGrad();
        var grads = Autodiff.Grad([a.MatMul(b).Sum()], [a, b], createGraph: true);
        Assert.Equal("MatMul", grads[0].OpName);
        Assert.Equal("MatMul", grads[1].OpName);
        Assert.Equal("da = g · bᵀ, db = aᵀ · g", a.MatMul(b).GradFn!.Formula);
        Assert.DoesNotContain("Transpose", Ancestors(grads[0]).Concat(Ancestors(grads[1])));
    }

    [Fact]
    public void LargeFloat32MatMulAndGradientsMatchFloat64()
    {
        // The MLP layer shapes: forward 64×784·784×256, backward g·bᵀ and aᵀ·g, over the threaded path.
        var a64 = Tensor.RandN(new Shape(64, 784), 7);
        var b64 = Tensor.RandN(new Shape(784, 256), 8);
        var g64 = Tensor.RandN(new Shape(64, 256), 9);
        var a = a64.To(DType.Float32).WithRequiresGrad();
        var b = b64.To(DType.Float32).WithRequiresGrad();
        var y = a.MatMul(b);
        y.Backward(g64.To(DType.Float32));
        AssertClose(a64.MatMul(b64).ToArray(), y.ToArray(), 2e-4 * Math.Sqrt(784));
        AssertClose(g64.MatMul(b64.T).ToArray(), a.Grad!.ToArray(), 2e-4 * Math.Sqrt(256));
        AssertClose(a64.T.MatMul(g64).ToArray(), b.Grad!.ToArray(), 2e-4 * Math.Sqrt(64));
    }

    [Fact]
    public void BatchedProductsGiveTheSameBitsOnOneAndTwoThreads()
    {
        // Broadcast batches (one product per batch matrix), a folded batch (b shared: one product over stacked rows),
        // and matrix-vector products, in both dtypes.
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            (Shape A, Shape B)[] cases =
            [
                (new Shape(4, 1, 33, 40), new Shape(3, 40, 35)),
                (new Shape(3, 65, 40), new Shape(40, 70)),
                (new Shape(2, 3, 129), new Shape(129)),
                (new Shape(129), new Shape(2, 129, 9)),
            ];
            foreach (var (sa, sb) in cases)
            {
                var a = Tensor.RandN(sa, 11, dtype);
                var b = Tensor.RandN(sb, 12, dtype);
                var oldThreads = Gemm.MaxThreads;
                var oldThreshold = Gemm.ParallelThreshold;
                Tensor one, two;
                try
                {
                    Gemm.MaxThreads = 1;
                    one = a.MatMul(b);
                    Gemm.MaxThreads = 2;
                    Gemm.ParallelThreshold = 1000;
                    two = a.MatMul(b);
                }
                finally
                {
                    Gemm.MaxThreads = oldThreads;
                    Gemm.ParallelThreshold = oldThreshold;
                }

                Assert.Equal(one.Shape, two.Shape);
                Assert.Equal(one.ToArray(), two.ToArray());
                var reference = a.To(DType.Float64).MatMul(b.To(DType.Float64));
                AssertClose(reference.ToArray(), one.ToArray(), ForDType.Pick(dtype, float64: 1e-13, float32: 1e-5) * sa[-1]);
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static IEnumerable<string> Ancestors(Tensor t)
    {
        var seen = new HashSet<Node>();
        var stack = new Stack<Node>();
        if (t.GradFn is { } root)
        {
            stack.Push(root);
        }

        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!seen.Add(node))
            {
                continue;
            }

            yield return node.Name;
            foreach (var next in node.NextNodes.ToArray())
            {
                if (next is not null)
                {
                    stack.Push(next);
                }
            }
        }
    }

    private static void AssertClose(double[] expected, double[] actual, double tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    [Fact]
    public void SegmentedColumnsGetTheProductInTheirPlacesAndNothingBetween()
    {
        // C's columns in segments of `length`, `stride` apart (a convolution's planes of several images written straight
        // into the output tensor): tiles that cross a segment's end, segments shorter than a tile, two k blocks, accumulation,
        // every micro-kernel width.
        var widths = MicroKernelWidths();
        try
        {
            var seed = 900;
            foreach (var bits in widths)
            {
                Gemm.ForcedVectorBits = bits;
                foreach (var (m, length, segments, k) in new[] { (1, 5, 3, 7), (7, 16, 4, 9), (9, 17, 5, 33), (64, 49, 8, 289), (3, 1, 40, 3), (16, 196, 3, 65), (5, 7, 1, 0) })
                {
                    foreach (var accumulate in new[] { false, true })
                    {
                        CheckSegments<float>(m, length, segments, k, accumulate, seed++);
                        CheckSegments<double>(m, length, segments, k, accumulate, seed++);
                    }
                }
            }
        }
        finally
        {
            Gemm.ForcedVectorBits = -1;
        }
    }

    [Fact]
    public void SegmentsThatDoNotFitAreRefused()
    {
        var a = new float[6];
        var b = new float[3 * 8];
        var ex = Assert.Throws<ArgumentException>(() => Gemm.SerialSegments<float>(2, 8, 3, a, 3, b, 8, new float[17], 4, 4, 10));
        Assert.Contains("C needs 18 elements", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => Gemm.SerialSegments<float>(2, 8, 3, a, 3, b, 8, new float[40], 4, 4, 5));
        Assert.Throws<ArgumentException>(() => Gemm.SerialSegments<float>(2, 8, 3, a, 3, b, 8, new float[40], 4, 0, 10));
    }

    private static void CheckSegments<T>(int m, int length, int segments, int k, bool accumulate, int seed)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(seed);
        var n = (length * segments) - (segments > 1 ? length / 2 : 0);
        var ldc = length + 3;
        var stride = (m * ldc) + 5;
        var a = Random<T>(rng, m * k);
        var b = Random<T>(rng, k * n);
        var c0 = Random<T>(rng, (segments * stride) + 2);
        var c = (T[])c0.Clone();
        Gemm.SerialSegments<T>(m, n, k, a, k, b, n, c, ldc, length, stride, accumulate);

        var eps = double.CreateTruncating(T.BitIncrement(T.One) - T.One);
        var written = new bool[c.Length];
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < n; j++)
            {
                var at = ((j / length) * stride) + (i * ldc) + (j % length);
                written[at] = true;
                double sum = accumulate ? double.CreateTruncating(c0[at]) : 0, bound = Math.Abs(sum);
                for (var p = 0; p < k; p++)
                {
                    var term = double.CreateTruncating(a[(i * k) + p]) * double.CreateTruncating(b[(p * n) + j]);
                    sum += term;
                    bound += Math.Abs(term);
                }

                var got = double.CreateTruncating(c[at]);
                Assert.True(Math.Abs(got - sum) <= ((k + 2) * eps * bound) + 1e-300, $"{typeof(T).Name} m={m} segments of {length}×{segments} k={k} width {Gemm.VectorBits<T>()}: C[{i}, {j}] = {got}, expected {sum}");
            }
        }

        for (var e = 0; e < c.Length; e++)
        {
            Assert.True(written[e] || c[e].Equals(c0[e]), $"{typeof(T).Name} m={m} segments of {length}×{segments} k={k}: element {e} between segments changed");
        }
    }

    /// <summary>Every micro-kernel width this machine can run: 128 and scalar always, 512 and 256 where accelerated.</summary>
    private static List<int> MicroKernelWidths()
    {
        var widths = new List<int> { 128, 0 };
        if (Vector512.IsHardwareAccelerated)
        {
            widths.Add(512);
        }

        if (Vector256.IsHardwareAccelerated)
        {
            widths.Add(256);
        }

        return widths;
    }

    private static void Check(bool isFloat, bool transA, bool transB, int m, int n, int k, int threads, int seed, bool accumulate = false, int padA = 0, int padB = 0, int padC = 0, long parallelThreshold = 1L << 21)
    {
        if (isFloat)
        {
            Check<float>(transA, transB, m, n, k, threads, seed, accumulate, padA, padB, padC, parallelThreshold);
        }
        else
        {
            Check<double>(transA, transB, m, n, k, threads, seed, accumulate, padA, padB, padC, parallelThreshold);
        }
    }

    /// <summary>Runs one product (on spans for one thread, on memory for more) and compares every element of C, padding included.</summary>
    private static void Check<T>(bool transA, bool transB, int m, int n, int k, int threads, int seed, bool accumulate, int padA, int padB, int padC, long parallelThreshold)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var rng = new Random(seed);
        var lda = (transA ? m : k) + padA;
        var ldb = (transB ? k : n) + padB;
        var ldc = n + padC;
        var a = Random<T>(rng, (transA ? k : m) * lda);
        var b = Random<T>(rng, (transB ? n : k) * ldb);
        var c0 = Random<T>(rng, m * ldc);
        var c = (T[])c0.Clone();

        var oldThreads = Gemm.MaxThreads;
        var oldThreshold = Gemm.ParallelThreshold;
        try
        {
            Gemm.MaxThreads = threads;
            Gemm.ParallelThreshold = parallelThreshold;
            if (threads == 1)
            {
                Gemm.Serial<T>(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
                if (typeof(T) == typeof(float))
                {
                    // The public span overload on a copy gives the same bits.
                    var cf = (float[])(object)c0.Clone();
                    Gemm.Multiply(transA, transB, m, n, k, (float[])(object)a, lda, (float[])(object)b, ldb, cf, ldc, accumulate);
                    Assert.Equal((float[])(object)c, cf);
                }
            }
            else
            {
                Gemm.Product<T>(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
            }
        }
        finally
        {
            Gemm.MaxThreads = oldThreads;
            Gemm.ParallelThreshold = oldThreshold;
        }

        var eps = double.CreateTruncating(T.BitIncrement(T.One) - T.One);
        for (var i = 0; i < m; i++)
        {
            for (var j = 0; j < ldc; j++)
            {
                var got = double.CreateTruncating(c[(i * ldc) + j]);
                var before = double.CreateTruncating(c0[(i * ldc) + j]);
                if (j >= n)
                {
                    Assert.True(got.Equals(before), $"{Describe<T>(transA, transB, m, n, k, threads)}: padding C[{i}, {j}] changed from {before} to {got}");
                    continue;
                }

                double sum = 0, bound = 0;
                for (var p = 0; p < k; p++)
                {
                    var x = double.CreateTruncating(transA ? a[(p * lda) + i] : a[(i * lda) + p]);
                    var y = double.CreateTruncating(transB ? b[(j * ldb) + p] : b[(p * ldb) + j]);
                    sum += x * y;
                    bound += Math.Abs(x * y);
                }

                var expected = accumulate ? before + sum : sum;
                var tol = (k + 2) * eps * (bound + (accumulate ? Math.Abs(before) : 0));
                if (!(Math.Abs(got - expected) <= tol))
                {
                    Assert.Fail($"{Describe<T>(transA, transB, m, n, k, threads)}{(accumulate ? " accumulate" : string.Empty)}: C[{i}, {j}] = {got}, expected {expected} (tolerance {tol:G3})");
                }
            }
        }
    }

    private static string Describe<T>(bool transA, bool transB, int m, int n, int k, int threads)
        where T : unmanaged, IFloatingPointIeee754<T>
        => $"{typeof(T).Name} m={m} n={n} k={k}{(transA ? " Aᵀ" : string.Empty)}{(transB ? " Bᵀ" : string.Empty)} threads={threads} width={Gemm.VectorBits<T>()}";

    private static T[] Random<T>(Random rng, int length)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var x = new T[length];
        for (var i = 0; i < length; i++)
        {
            x[i] = T.CreateTruncating((2 * rng.NextDouble()) - 1);
        }

        return x;
    }
}
