namespace Autograd.Tests;

/// <summary>
/// Embedding and scaled dot-product attention: the fused attention against its composed form through
/// <see cref="FusedCheck"/> (values, gradients, gradients of gradients) in float64 and float32, with and without a
/// mask and the causal rule; the mask's semantics; fully masked rows; the embedding's gradient; rejected inputs.
/// </summary>
public class AttentionTests
{
    private static Shape S(params int[] dims) => new(dims);

    private static Tensor I(params long[] values) => Tensor.FromArray(values, values.Length);

    private static double MaxAbs(Tensor t) => t.ToArray().Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();

    /// <summary>q, k and v read from one flat input, so that <see cref="FusedCheck.Compare"/> differentiates all three.</summary>
    private static Func<Tensor, Tensor> Packed(Shape sq, Shape sk, Shape sv, Tensor? mask, bool causal, double? scale, bool fused) => x =>
    {
        var (nq, nk, nv) = (sq.ElementCount, sk.ElementCount, sv.ElementCount);
        var q = x.Narrow(0, 0, nq).Reshape(sq.ToArray());
        var k = x.Narrow(0, nq, nk).Reshape(sk.ToArray());
        var v = x.Narrow(0, nq + nk, nv).Reshape(sv.ToArray());
        return fused
            ? Tensor.ScaledDotProductAttention(q, k, v, mask, causal, scale)
            : Tensor.ScaledDotProductAttentionComposed(q, k, v, mask, causal, scale);
    };

    /// <summary>A 0/1 mask of a shape with about one score in four masked, and key 0 always kept.</summary>
    private static Tensor RandomMask(Shape shape, int seed)
    {
        var m = Tensor.Rand(shape, seed).Gt(0.25).ToArray();
        var last = shape[-1];
        for (var i = 0; i < m.Length; i += last)
        {
            m[i] = 1;
        }

        return Tensor.FromArray(m, shape.ToArray());
    }

    public static TheoryData<string, int[], int[], int[], int, bool> FusedCases => new()
    {
        { "[2,4,16,16]", [2, 4, 16, 16], [2, 4, 16, 16], [2, 4, 16, 16], 0, false },
        { "[2,4,16,16] causal", [2, 4, 16, 16], [2, 4, 16, 16], [2, 4, 16, 16], 0, true },
        { "[2,4,16,16] mask [2,1,16,16]", [2, 4, 16, 16], [2, 4, 16, 16], [2, 4, 16, 16], 4, false },
        { "[2,4,16,16] mask [16] and causal", [2, 4, 16, 16], [2, 4, 16, 16], [2, 4, 16, 16], 1, true },
        { "odd: q[3,7,5] k[3,9,5] v[3,9,3]", [3, 7, 5], [3, 9, 5], [3, 9, 3], 0, false },
        { "odd: q[3,7,5] k[3,9,5] v[3,9,3] mask [3,7,9] causal", [3, 7, 5], [3, 9, 5], [3, 9, 3], 3, true },
        { "odd: q[1,11,3] k[2,1,6,3] v[6,1] mask [1,6]", [1, 11, 3], [2, 1, 6, 3], [6, 1], 2, false },
        { "rank 2: q[9,1] k[9,1] v[9,7] causal", [9, 1], [9, 1], [9, 7], 0, true },
        { "v's batch the largest: q[5,3] k[1,6,3] v[2,3,6,4] mask [6] causal", [5, 3], [1, 6, 3], [2, 3, 6, 4], 1, true },
        { "one batch shape, odd: q[2,37,3] k[2,40,3] v[2,40,2] mask [1,40] causal", [2, 37, 3], [2, 40, 3], [2, 40, 2], 2, true },
    };

    [Theory]
    [MemberData(nameof(FusedCases))]
    public void FusedMatchesComposed(string name, int[] q, int[] k, int[] v, int maskRank, bool causal)
    {
        var (sq, sk, sv) = (S(q), S(k), S(v));
        var lq = sq[-2];
        var lk = sk[-2];
        Tensor? mask = maskRank switch
        {
            0 => null,
            1 => RandomMask(S(lk), 11),
            2 => RandomMask(S(1, lk), 12),
            3 => RandomMask(S(3, lq, lk), 13),
            _ => RandomMask(S(2, 1, lq, lk), 14),
        };
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var n = sq.ElementCount + sk.ElementCount + sv.ElementCount;
            var x = Tensor.RandN(S(n), 5, dtype);
            var fused = Packed(sq, sk, sv, mask, causal, null, fused: true);
            var composed = Packed(sq, sk, sv, mask, causal, null, fused: false);

            // The magnitudes of the composed form's value, gradient and gradient of gradient, for normwise errors.
            var xc = x.Clone().WithRequiresGrad();
            var y = composed(xc);
            var g = Tensor.RandN(y.Shape, 6, dtype);
            var vv = Tensor.RandN(x.Shape, 7, dtype);
            var gx = Autodiff.Grad(y, xc, g, createGraph: true);
            var hx = Autodiff.Grad(gx, xc, vv);

            var r = FusedCheck.Compare(fused, composed, x, g, vv);
            var tol = ForDType.Pick(dtype, float64: 1e-12, float32: 2e-5);
            var msg = $"{name} {dtype.Name()}: {r}";
            Assert.True(r.ValueAbs <= tol * Math.Max(1, MaxAbs(y)), msg);
            Assert.True(r.GradAbs <= tol * Math.Max(1, MaxAbs(gx)), msg);
            Assert.True(r.GradGradAbs <= tol * Math.Max(1, MaxAbs(hx)), msg);
        }
    }

    // ───────────────────────────── the kernel path (one batch shape) ─────────────────────────────

    /// <summary>
    /// Cases of the fused kernels: q [..batch, Lq, d], k [..batch, Lk, d], v [..batch, Lk, dv]; the mask kind is 0 (none),
    /// 1 (random [..batch, Lq, Lk] with key 0 kept), 2 (random with some rows fully masked), 3 (padding: trailing keys
    /// masked per batch, [batch0, 1, 1, Lk] or [batch0, 1, Lk]).
    /// </summary>
    public static TheoryData<string, int[], int, int, int, int, int, bool> KernelCases => new()
    {
        { "causal Lq 37 < Lk 70", [2], 37, 70, 5, 3, 0, true },
        { "causal Lq 70 > Lk 37", [2], 70, 37, 5, 3, 0, true },
        { "causal Lq = Lk = 77 (not a multiple of the row block)", [3], 77, 77, 8, 8, 0, true },
        { "mask and causal", [3], 45, 45, 6, 4, 1, true },
        { "mask, Lq 33 Lk 70", [2, 2], 33, 70, 4, 5, 1, false },
        { "fully masked rows", [2, 2], 40, 33, 4, 3, 2, false },
        { "fully masked rows and causal", [2], 40, 33, 4, 3, 2, true },
        { "padding mask", [2, 3], 21, 19, 4, 4, 3, false },
        { "padding mask and causal", [2, 3], 26, 29, 3, 2, 3, true },
        { "batch 1, causal", [1], 100, 100, 8, 12, 0, true },
        { "batch 1, mask and causal", [1], 90, 75, 8, 8, 1, true },
        { "batch 1, fully masked rows", [1], 40, 70, 16, 16, 2, false },
        { "batch 1, padding mask", [1], 50, 100, 16, 16, 3, false },
        { "batch 9 (more than the cores)", [9], 19, 23, 7, 5, 0, true },
        { "no mask, products over 64", [2], 70, 130, 65, 66, 0, false },
        { "causal, products over 64", [2], 130, 70, 65, 9, 0, true },
        { "rank 2, causal", [], 33, 33, 3, 2, 0, true },
        { "one query", [4], 1, 9, 3, 2, 0, true },
        { "one key", [4], 9, 1, 3, 2, 1, false },
        { "GPT shape [64, 4, 16, 16] causal", [64, 4], 16, 16, 16, 16, 0, true },
    };

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void KernelPathMatchesComposed(string name, int[] batch, int lq, int lk, int d, int dv, int maskKind, bool causal)
    {
        var mask = KernelMask(batch, lq, lk, maskKind);
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var q = Tensor.RandN(S([.. batch, lq, d]), 21, dtype).WithRequiresGrad();
            var k = Tensor.RandN(S([.. batch, lk, d]), 22, dtype).WithRequiresGrad();
            var v = Tensor.RandN(S([.. batch, lk, dv]), 23, dtype).WithRequiresGrad();
            var y = Tensor.ScaledDotProductAttention(q, k, v, mask, causal);
            var yc = Tensor.ScaledDotProductAttentionComposed(q, k, v, mask, causal);
            var g = Tensor.RandN(y.Shape, 24, dtype);
            var grads = Autodiff.Grad([y], [q, k, v], [g]);
            var expected = Autodiff.Grad([yc], [q, k, v], [g]);
            var tol = ForDType.Pick(dtype, float64: 1e-12, float32: 2e-5);
            var msg = $"{name} {dtype.Name()}";
            AssertClose(yc, y, tol, $"{msg}: value");
            AssertClose(expected[0], grads[0], tol, $"{msg}: dq");
            AssertClose(expected[1], grads[1], tol, $"{msg}: dk");
            AssertClose(expected[2], grads[2], tol, $"{msg}: dv");

            // One gradient at a time: the kernel writes only what is asked for.
            AssertClose(expected[0], Autodiff.Grad(Tensor.ScaledDotProductAttention(q, k, v.Detach(), mask, causal), q, g), tol, $"{msg}: dq alone");
            AssertClose(expected[1], Autodiff.Grad(Tensor.ScaledDotProductAttention(q.Detach(), k, v.Detach(), mask, causal), k, g), tol, $"{msg}: dk alone");
            AssertClose(expected[2], Autodiff.Grad(Tensor.ScaledDotProductAttention(q.Detach(), k.Detach(), v, mask, causal), v, g), tol, $"{msg}: dv alone");
        }
    }

    /// <summary>
    /// In float32 with rows of at least 16 keys, the fused forward has the composed form's bits on every vector width: its
    /// small products are FMA chains in the GEMM micro-kernel's order, and its weights rows are the softmax operator's
    /// row kernel (the CI runs the suite at 512, 256 and 128 bits).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KernelPathForwardHasTheComposedBitsInFloat32(bool causal)
    {
        var q = Tensor.RandN(S(64, 4, 16, 16), 31, DType.Float32);
        var k = Tensor.RandN(S(64, 4, 16, 16), 32, DType.Float32);
        var v = Tensor.RandN(S(64, 4, 16, 16), 33, DType.Float32);
        var y = Tensor.ScaledDotProductAttention(q, k, v, causal: causal).AsSpan<float>().ToArray();
        var yc = Tensor.ScaledDotProductAttentionComposed(q, k, v, causal: causal).AsSpan<float>().ToArray();
        var differ = Enumerable.Range(0, y.Length).Count(i => BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(yc[i]));
        Assert.True(differ == 0, $"{differ} of {y.Length} elements differ from the composed form (causal {causal}, {System.Numerics.Vector<byte>.Count * 8}-bit Vector<T>)");
    }

    [Fact]
    public void KernelPathGivesTheComposedSecondDerivatives()
    {
        // With create-graph the rule is recorded from tensor operations on the weights the kernel saved.
        var fused = Packed(S(2, 37, 3), S(2, 40, 3), S(2, 40, 2), null, true, null, fused: true);
        var composed = Packed(S(2, 37, 3), S(2, 40, 3), S(2, 40, 2), null, true, null, fused: false);
        var x = Tensor.RandN(S((2 * 37 * 3) + (2 * 40 * 3) + (2 * 40 * 2)), 31);
        var r = FusedCheck.Compare(fused, composed, x);
        Assert.True(r.MaxAbs < 1e-10, r.ToString());
    }

    [Fact]
    public void KernelPathFullyMaskedRowsAreNaNWhereTheComposedFormsAre()
    {
        var mask = KernelMask([2], 40, 33, 2);
        var q = Tensor.RandN(S(2, 40, 4), 1).WithRequiresGrad();
        var k = Tensor.RandN(S(2, 33, 4), 2).WithRequiresGrad();
        var v = Tensor.RandN(S(2, 33, 3), 3).WithRequiresGrad();
        var y = Tensor.ScaledDotProductAttention(q, k, v, mask, causal: true);
        var yc = Tensor.ScaledDotProductAttentionComposed(q, k, v, mask, causal: true);
        Assert.Contains(y.ToArray(), double.IsNaN);
        Assert.Equal(yc.ToArray().Select(double.IsNaN), y.ToArray().Select(double.IsNaN));
        var g = Tensor.RandN(y.Shape, 4);
        var grads = Autodiff.Grad([y], [q, k, v], [g]);
        var expected = Autodiff.Grad([yc], [q, k, v], [g]);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(expected[i].ToArray().Select(double.IsNaN), grads[i].ToArray().Select(double.IsNaN));
        }

        // q gets no gradient from a fully masked row, and nothing is NaN in q's or k's gradient.
        Assert.All(grads[0].ToArray(), e => Assert.True(double.IsFinite(e)));
        Assert.All(grads[1].ToArray(), e => Assert.True(double.IsFinite(e)));
    }

    /// <summary>A mask for <see cref="KernelCases"/>.</summary>
    private static Tensor? KernelMask(int[] batch, int lq, int lk, int kind)
    {
        switch (kind)
        {
            case 0:
                return null;
            case 1:
                return RandomMask(S([.. batch, lq, lk]), 41);
            case 2:
                {
                    // Rows 3, 4 and the last of every batch matrix fully masked.
                    var shape = S([.. batch, lq, lk]);
                    var m = RandomMask(shape, 42).ToArray();
                    for (var row = 0; row < m.Length / lk; row++)
                    {
                        var i = row % lq;
                        if (i == 3 || i == 4 || i == lq - 1)
                        {
                            Array.Clear(m, row * lk, lk);
                        }
                    }

                    return Tensor.FromArray(m, shape.ToArray());
                }

            default:
                {
                    // Keys from a per-batch length on masked, broadcast over the other batch dims and the queries.
                    int[] dims = batch.Length > 1 ? [batch[0], .. Enumerable.Repeat(1, batch.Length), lk] : [1, lk];
                    var m = new double[dims.Aggregate(1, (a, b) => a * b)];
                    for (var b = 0; b < m.Length / lk; b++)
                    {
                        var length = Math.Max(1, lk - (5 * b) - 2);
                        for (var j = 0; j < length; j++)
                        {
                            m[(b * lk) + j] = 1;
                        }
                    }

                    return Tensor.FromArray(m, dims);
                }
        }
    }

    /// <summary>Equal NaN positions, and the other elements within <paramref name="tol"/> times the largest magnitude of <paramref name="expected"/> (at least 1).</summary>
    private static void AssertClose(Tensor expected, Tensor actual, double tol, string what)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.DType, actual.DType);
        var e = expected.ToArray();
        var a = actual.ToArray();
        var bound = tol * Math.Max(1, MaxAbs(expected));
        for (var i = 0; i < e.Length; i++)
        {
            if (double.IsNaN(e[i]) || double.IsNaN(a[i]))
            {
                Assert.True(double.IsNaN(e[i]) && double.IsNaN(a[i]), $"{what}: element {i} is {a[i]}, expected {e[i]}");
                continue;
            }

            Assert.True(Math.Abs(e[i] - a[i]) <= bound, $"{what}: element {i} is {a[i]}, expected {e[i]} (bound {bound})");
        }
    }

    [Fact]
    public void FullyMaskedRowIsNaNAsInTheComposedForm()
    {
        var keep = Enumerable.Repeat(1.0, 24).ToArray();
        for (var j = 0; j < 4; j++)
        {
            keep[(1 * 12) + (2 * 4) + j] = 0;
        }

        keep[1] = 0;
        var mask = Tensor.FromArray(keep, 2, 3, 4);
        var q = Tensor.RandN(S(2, 3, 4), 1).WithRequiresGrad();
        var k = Tensor.RandN(S(2, 4, 4), 2).WithRequiresGrad();
        var v = Tensor.RandN(S(2, 4, 3), 3).WithRequiresGrad();
        var y = Tensor.ScaledDotProductAttention(q, k, v, mask);

        // The fully masked query's row is NaN; every other row is finite.
        for (var b = 0; b < 2; b++)
        {
            for (var i = 0; i < 3; i++)
            {
                for (var c = 0; c < 3; c++)
                {
                    Assert.Equal(b == 1 && i == 2, double.IsNaN(y[b, i, c]));
                }
            }
        }

        // q gets no gradient from the masked row and k stays finite; v's gradient in that batch is NaN.
        var g = Tensor.RandN(y.Shape, 4);
        var grads = Autodiff.Grad([y], [q, k, v], [g]);
        Assert.All(grads[0].ToArray(), e => Assert.True(double.IsFinite(e)));
        Assert.All(Enumerable.Range(0, 4).Select(c => grads[0][1, 2, c]), e => Assert.Equal(0.0, e));
        Assert.All(grads[1].ToArray(), e => Assert.True(double.IsFinite(e)));
        Assert.True(double.IsNaN(grads[2][1, 0, 0]));
        Assert.True(double.IsFinite(grads[2][0, 0, 0]));

        // The same NaN in the same places as the composed form, to second order.
        var fused = Packed(S(2, 3, 4), S(2, 4, 4), S(2, 4, 3), mask, false, null, fused: true);
        var composed = Packed(S(2, 3, 4), S(2, 4, 4), S(2, 4, 3), mask, false, null, fused: false);
        var x = Tensor.RandN(S(24 + 32 + 24), 9);
        var r = FusedCheck.Compare(fused, composed, x);
        Assert.True(r.MaxAbs < 1e-12, r.ToString());
    }

    [Fact]
    public void MaskKeepsNonzeroScoresOfAnyDType()
    {
        var q = Tensor.RandN(S(2, 3, 4), 1);
        var k = Tensor.RandN(S(2, 5, 4), 2);
        var v = Tensor.RandN(S(2, 5, 2), 3);
        var ints = Tensor.FromArray(new long[] { 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1 }, 3, 5);
        var floats = Tensor.FromArray(new double[] { 2, 0, -1, double.NaN, 0, 1, 0.5, 0, 0, 1, 0, 3, 1, 1, 1 }, 3, 5);
        var floats32 = ints.To(DType.Float32);
        var a = Tensor.ScaledDotProductAttention(q, k, v, ints);
        Assert.Equal(a.ToArray(), Tensor.ScaledDotProductAttention(q, k, v, floats).ToArray());
        Assert.Equal(a.ToArray(), Tensor.ScaledDotProductAttention(q, k, v, floats32).ToArray());
        Assert.Equal(a.ToArray(), Tensor.ScaledDotProductAttentionComposed(q, k, v, floats).ToArray());

        // Against the definition: softmax over the kept scores only.
        var s = q.MatMul(k.Transpose(-1, -2)) / 2.0;
        for (var b = 0; b < 2; b++)
        {
            for (var i = 0; i < 3; i++)
            {
                var w = Enumerable.Range(0, 5).Select(j => ints[i, j] != 0 ? Math.Exp(s[b, i, j]) : 0).ToArray();
                var total = w.Sum();
                for (var c = 0; c < 2; c++)
                {
                    var expected = Enumerable.Range(0, 5).Sum(j => w[j] / total * v[b, j, c]);
                    Assert.Equal(expected, a[b, i, c], 1e-12);
                }
            }
        }
    }

    [Fact]
    public void CausalIsTheLowerTriangleAtTheTopLeft()
    {
        foreach (var (lq, lk) in new[] { (4, 4), (5, 3), (3, 5) })
        {
            var q = Tensor.RandN(S(2, lq, 3), 1);
            var k = Tensor.RandN(S(2, lk, 3), 2);
            var v = Tensor.RandN(S(2, lk, 2), 3);
            var tri = new double[lq * lk];
            for (var i = 0; i < lq; i++)
            {
                for (var j = 0; j <= Math.Min(i, lk - 1); j++)
                {
                    tri[(i * lk) + j] = 1;
                }
            }

            var mask = Tensor.FromArray(tri, lq, lk);
            Assert.Equal(Tensor.ScaledDotProductAttention(q, k, v, mask).ToArray(), Tensor.ScaledDotProductAttention(q, k, v, causal: true).ToArray());
        }
    }

    [Fact]
    public void DefaultScaleIsOneOverTheSquareRootOfD()
    {
        var q = Tensor.RandN(S(3, 9), 1);
        var k = Tensor.RandN(S(4, 9), 2);
        var v = Tensor.RandN(S(4, 2), 3);
        Assert.Equal(Tensor.ScaledDotProductAttention(q, k, v, scale: 1.0 / 3).ToArray(), Tensor.ScaledDotProductAttention(q, k, v).ToArray());
        var y = Tensor.ScaledDotProductAttention(q, k, v, scale: 0.0);
        var mean = v.Mean(0).ToArray();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(mean[0], y[i, 0], 1e-14);
            Assert.Equal(mean[1], y[i, 1], 1e-14);
        }
    }

    [Fact]
    public void NothingIsRecordedWithoutGrad()
    {
        var q = Tensor.RandN(S(3, 4), 1);
        Assert.Null(Tensor.ScaledDotProductAttention(q, q, q).GradFn);
        var qg = q.Clone().WithRequiresGrad();
        using (Tensor.NoGrad())
        {
            Assert.Null(Tensor.ScaledDotProductAttention(qg, qg, qg).GradFn);
        }

        var vOnly = Tensor.ScaledDotProductAttention(q, q, qg);
        Assert.Equal("ScaledDotProductAttention", vOnly.OpName);
        var gv = Autodiff.Grad(vOnly.Sum(), qg);
        Assert.Equal(new double[] { 3, 3, 3, 3 }, gv.Sum(0).ToArray().Select(e => Math.Round(e, 12)).ToArray());
    }

    [Fact]
    public void ThirdOrderMatchesComposed()
    {
        var x0 = Tensor.RandN(S(3, 2), 3);
        Tensor Third(Func<Tensor, Tensor> f)
        {
            var x = x0.Clone().WithRequiresGrad();
            var g1 = Autodiff.Grad(f(x).Sum(), x, createGraph: true);
            var g2 = Autodiff.Grad((g1 * g1).Sum(), x, createGraph: true);
            return Autodiff.Grad((g2 * x).Sum(), x);
        }

        var fused = Third(x => Tensor.ScaledDotProductAttention(x, x * 2.0, x.Tanh(), causal: true));
        var composed = Third(x => Tensor.ScaledDotProductAttentionComposed(x, x * 2.0, x.Tanh(), causal: true));
        var a = fused.ToArray();
        var b = composed.ToArray();
        for (var i = 0; i < a.Length; i++)
        {
            Assert.Equal(b[i], a[i], 1e-10);
        }
    }

    // ───────────────────────────── embedding ─────────────────────────────

    [Fact]
    public void EmbeddingLooksUpRowsAndAddsRepeatedGradients()
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var w = Tensor.RandN(S(5, 3), 1, dtype).WithRequiresGrad();
            var idx = Tensor.FromArray(new long[] { 1, 3, 1, 0, 4, 1 }, 2, 3);
            var y = Tensor.Embedding(idx, w);
            Assert.Equal(S(2, 3, 3), y.Shape);
            Assert.Equal(dtype, y.DType);
            Assert.Equal(w.IndexSelect(0, idx.Reshape(-1)).Reshape(2, 3, 3).ToArray(), y.ToArray());

            var dw = Autodiff.Grad(y, w, Tensor.Ones(y.Shape, dtype));
            Assert.Equal(new double[] { 1, 1, 1, 3, 3, 3, 0, 0, 0, 1, 1, 1, 1, 1, 1 }, dw.ToArray());
            var padded = Autodiff.Grad(Tensor.Embedding(idx, w, paddingIndex: 1), w, Tensor.Ones(y.Shape, dtype));
            Assert.Equal(new double[] { 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1 }, padded.ToArray());

            // The padding row is still looked up.
            Assert.Equal(y.ToArray(), Tensor.Embedding(idx, w, paddingIndex: 1).ToArray());
        }
    }

    [Fact]
    public void EmbeddingOfEmptyIndicesIsEmpty()
    {
        var w = Tensor.RandN(S(4, 2), 1).WithRequiresGrad();
        var y = Tensor.Embedding(Tensor.FromArray(Array.Empty<long>(), 0, 3), w, 2);
        Assert.Equal(S(0, 3, 2), y.Shape);
        Assert.Equal(new double[8], Autodiff.Grad(y.Sum(), w).ToArray());
    }

    // ───────────────────────────── rejected inputs ─────────────────────────────

    public static TheoryData<string, Func<Tensor>, Type, string[]> BadInputs()
    {
        var q = Tensor.RandN(S(2, 3, 4), 1);
        var k = Tensor.RandN(S(2, 5, 4), 2);
        var v = Tensor.RandN(S(2, 5, 6), 3);
        var w = Tensor.RandN(S(5, 3), 4);
        var arg = typeof(ArgumentException);
        var range = typeof(ArgumentOutOfRangeException);
        var data = new TheoryData<string, Func<Tensor>, Type, string[]>
        {
            { "Embedding: float indices", () => Tensor.Embedding(Tensor.From(0.0, 1.0), w), arg, ["Embedding", "int64", "float64", "[2]"] },
            { "Embedding: index too large", () => Tensor.Embedding(Tensor.FromArray(new long[] { 0, 1, 2, 7 }, 2, 2), w), range, ["Embedding", "index 7", "position [1, 1]", "vocabulary of 5", "[5, 3]"] },
            { "Embedding: negative index", () => Tensor.Embedding(I(-1), w), range, ["Embedding", "index -1", "position [0]", "vocabulary of 5"] },
            { "Embedding: weight of rank 1", () => Tensor.Embedding(I(0), Tensor.RandN(S(5), 1)), arg, ["Embedding", "[vocabulary, embeddingDim]", "[5]"] },
            { "Embedding: int64 weight", () => Tensor.Embedding(I(0), Tensor.FromArray(new long[4], 2, 2)), arg, ["Embedding", "int64", "[2, 2]"] },
            { "Embedding: padding index out of range", () => Tensor.Embedding(I(0), w, 5), range, ["Embedding", "padding index 5", "vocabulary of 5", "[-5, 4]"] },
            { "Embedding: padding index below -vocabulary", () => Tensor.Embedding(I(0), w, -6), range, ["Embedding", "padding index -6"] },
        };
        foreach (var composed in new[] { false, true })
        {
            var op = composed ? "ScaledDotProductAttentionComposed" : "ScaledDotProductAttention";
            Func<Tensor> Call(Tensor a, Tensor b, Tensor c, Tensor? m = null) => composed
                ? () => Tensor.ScaledDotProductAttentionComposed(a, b, c, m)
                : () => Tensor.ScaledDotProductAttention(a, b, c, m);

            data.Add($"{op}: q of rank 1", Call(Tensor.RandN(S(4), 1), k, v), arg, [op, "q has shape [4] (rank 1)", "at least two dims"]);
            data.Add($"{op}: v of rank 0", Call(q, k, Tensor.Scalar(1)), arg, [op, "v has shape [] (rank 0)"]);
            data.Add($"{op}: d differs", Call(q, Tensor.RandN(S(2, 5, 3), 2), v), arg, [op, "[2, 3, 4]", "[2, 5, 3]", "4 and 3"]);
            data.Add($"{op}: Lk differs", Call(q, k, Tensor.RandN(S(2, 6, 6), 2)), arg, [op, "[2, 5, 4] with 5 keys", "[2, 6, 6] with 6 values"]);
            data.Add($"{op}: batch dims", Call(q, Tensor.RandN(S(3, 5, 4), 2), v), arg, [op, "batch dims", "[2, 3, 4]", "[3, 5, 4]", "[2, 5, 6]"]);
            data.Add($"{op}: mask does not broadcast", Call(q, k, v, Tensor.Ones(3, 4)), arg, [op, "mask has shape [3, 4]", "scores' shape [2, 3, 5]"]);
            data.Add($"{op}: mask would enlarge", Call(q, k, v, Tensor.Ones(4, 2, 3, 5)), arg, [op, "[4, 2, 3, 5]", "[2, 3, 5]"]);
            data.Add($"{op}: mixed dtypes", Call(q, k.To(DType.Float32), v), arg, [op, "mixed dtypes", "q is float64", "k is float32"]);
            data.Add($"{op}: int64 values", Call(q, k, Tensor.FromArray(new long[60], 2, 5, 6)), arg, [op, "v is int64"]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputsAreRejectedWithAClearMessage(string name, Func<Tensor> call, Type type, string[] fragments)
    {
        var e = Assert.Throws(type, () => call());
        foreach (var f in fragments)
        {
            Assert.True(e.Message.Contains(f, StringComparison.Ordinal), $"{name}: '{e.Message}' does not contain '{f}'");
        }
    }
}
