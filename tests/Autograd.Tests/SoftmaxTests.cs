using System.Globalization;
using MathNet.Numerics.LinearAlgebra;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace Autograd.Tests;

/// <summary>
/// Softmax, log-softmax and logsumexp: fused against composed against an explicit Jacobian, fused against composed
/// through <see cref="FusedCheck"/> on every layout, numerical stability (±1e4, −∞ masks, huge rows), higher
/// derivatives, float32 against float64, and rejected inputs.
/// </summary>
/// <remarks>
/// Error measures. Values that are not produced by cancellation (probabilities, logsumexp) are compared element by
/// element, relative to themselves. Gradients and second derivatives are differences (softmax: dxᵢ = sᵢ(gᵢ − s·g);
/// log-softmax: gᵢ − pᵢΣg; second order: pᵢ(vᵢ − p·v)…), and an entry where the two terms nearly cancel carries the
/// rounding error of the terms, not of the result: with rows of 3079 random entries some vᵢ − p·v loses 4–5 digits, and
/// on such an entry the fused and the composed form both miss an exact (decimal) reference by ~4e-12 relative. So
/// derivatives are compared against the size of the terms they are made of: element-wise where the terms are known
/// (the Jacobian tests), and otherwise normwise, max|fused − composed| / max|composed| per component.
/// </remarks>
public class SoftmaxTests
{
    /// <summary>The unit roundoff of float32, 2⁻²⁴.</summary>
    private const double U32 = 5.9604644775390625e-8;

    /// <summary>The unit roundoff of float64, 2⁻⁵³.</summary>
    private const double U64 = 1.1102230246251565e-16;

    private static readonly string[] FusedOps = ["Softmax", "LogSoftmax", "LogSumExp(keepDim)", "LogSumExp"];

    // ───────────────────────────── 1. composed = fused = explicit Jacobian ─────────────────────────────

    public static TheoryData<int, double, int> Rows => new()
    {
        { 1, 1.0, 1 },
        { 2, 1.0, 2 },
        { 3, 0.1, 3 },
        { 7, 3.0, 4 },
        { 8, 3.0, 5 },
        { 9, 1.0, 6 },
        { 33, 5.0, 7 },
        { 100, 10.0, 8 },
    };

    /// <summary>One row: y and dx = J·dL with J = diag(s) − s sᵀ (MathNet), fused and composed.</summary>
    [Theory]
    [MemberData(nameof(Rows))]
    public void SoftmaxOfARowMatchesTheExplicitJacobian(int length, double scale, int seed)
    {
        var x = Tensor.RandN(new Shape(length), seed, std: scale);
        var dl = Tensor.RandN(new Shape(length), seed + 100);
        var s = RefSoftmax(x.ToArray());
        var dx = JacobianTimes(s, dl.ToArray());

        var (fy, fdx) = ValueAndGrad(x, t => t.Softmax(0), dl);
        var (cy, cdx) = ValueAndGrad(x, t => t.SoftmaxComposed(0), dl);

        AssertSoftmaxLine("fused", s, dl.ToArray(), dx, fy, fdx, 1e-12);
        AssertSoftmaxLine("composed", s, dl.ToArray(), dx, cy, cdx, 1e-12);
    }

    /// <summary>The article's row 1..9 shifted by 500: the Jacobian product does not depend on the shift.</summary>
    [Fact]
    public void ShiftedRowMatchesTheExplicitJacobian()
    {
        var x = Tensor.Arange(501, 510);
        var dl = Tensor.Arange(11, 20);
        var s = RefSoftmax(Tensor.Arange(1, 10).ToArray());
        var dx = JacobianTimes(s, dl.ToArray());
        var (fy, fdx) = ValueAndGrad(x, t => t.Softmax(-1), dl);
        var (cy, cdx) = ValueAndGrad(x, t => t.SoftmaxComposed(-1), dl);
        AssertSoftmaxLine("fused", s, dl.ToArray(), dx, fy, fdx, 1e-12);
        AssertSoftmaxLine("composed", s, dl.ToArray(), dx, cy, cdx, 1e-12);
    }

    /// <summary>A 2-D input along dim 1 (each row) and along dim 0 (each column), negative dims included.</summary>
    [Theory]
    [InlineData(1, 5, 7)]
    [InlineData(-1, 5, 7)]
    [InlineData(0, 5, 7)]
    [InlineData(-2, 5, 7)]
    [InlineData(1, 1, 9)]
    [InlineData(0, 9, 1)]
    public void SoftmaxOfA2DInputMatchesTheJacobianOfEachLine(int dim, int rows, int cols)
    {
        var x = Tensor.RandN(new Shape(rows, cols), 40 + dim, std: 2.0);
        var dl = Tensor.RandN(new Shape(rows, cols), 50 + dim);
        var (fy, fdx) = ValueAndGrad(x, t => t.Softmax(dim), dl);
        var (cy, cdx) = ValueAndGrad(x, t => t.SoftmaxComposed(dim), dl);
        var d = dim < 0 ? dim + 2 : dim;
        var lines = d == 1 ? rows : cols;
        for (var k = 0; k < lines; k++)
        {
            var idx = LineIndices(rows, cols, d, k);
            var s = RefSoftmax(Pick(x.ToArray(), idx));
            var dlk = Pick(dl.ToArray(), idx);
            var dx = JacobianTimes(s, dlk);
            AssertSoftmaxLine($"fused line {k}", s, dlk, dx, Pick(fy, idx), Pick(fdx, idx), 1e-12);
            AssertSoftmaxLine($"composed line {k}", s, dlk, dx, Pick(cy, idx), Pick(cdx, idx), 1e-12);
        }
    }

    // ───────────────────────────── 2. fused = composed (FusedCheck) on every op, dim, rank, length ─────────────────────────────

    public static TheoryData<string, DType, int, int, int> FusedCases()
    {
        var data = new TheoryData<string, DType, int, int, int>();
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            foreach (var op in FusedOps)
            {
                for (var rank = 1; rank <= 3; rank++)
                {
                    for (var dim = -rank; dim < rank; dim++)
                    {
                        foreach (var length in new[] { 1, 7, 8, 9, 3079 })
                        {
                            data.Add(op, dtype, rank, dim, length);
                        }
                    }
                }
            }
        }

        return data;
    }

    /// <summary>
    /// Value, gradient and gradient of ⟨gradient, v⟩ of the fused operator against its composed form, through the
    /// public <see cref="FusedCheck.Compare"/>: normwise to 1e-12 (float64) and 1e-5 (float32) per component; in float64
    /// also element-wise (relativeFloor 1e-6) to 1e-10, which leaves room only for the cancellation described on the class.
    /// </summary>
    /// <remarks>
    /// <para>
    /// float32 rows of 3079: the composed form sums each column with a running float32 sum (Reduce.Sum), whose a-priori
    /// error bound is (n − 1)u = 1.8e-4, and it does reach 1.07e-5 of the float64 result on the second order of
    /// [3079, 3, 2] along dim 0 (the fused form: 2.4e-6; fused vs composed: 1.04e-5). So float32 asserts
    /// max(1e-5, (n − 1)u), which is 1e-5 for every other length; the fused float32 result is held to float64 in
    /// <see cref="Float32MatchesFloat64"/>.
    /// </para>
    /// <para>
    /// A row of length 1 makes some components identically zero (all derivatives of softmax and log-softmax, the log-softmax
    /// itself, the second derivative of logsumexp). Their computed values are pure rounding of terms of size 1 for
    /// values (exp(0) = 1), ‖g‖ for gradients and ‖g‖‖v‖ for second derivatives, so for that length the normwise scale
    /// is floored by those term sizes.
    /// </para>
    /// <para>
    /// In float32 the second derivatives are sums of terms of size about ‖g‖‖v‖/length that can largely cancel (logsumexp
    /// of [3, 8] along dim 1: a largest second derivative of 0.017, so a difference of 2e-7, a few float32 roundings of
    /// such terms, between the fused and composed forms is 1.15e-5 of it), so the float32 second-order scale is floored
    /// by ‖g‖‖v‖/length.
    /// </para>
    /// </remarks>
    [Theory]
    [MemberData(nameof(FusedCases))]
    public void FusedMatchesComposed(string op, DType dtype, int rank, int dim, int length)
    {
        var (fused, composed, node) = Pair(op, dim);
        var shape = ShapeAround(rank, dim, length);
        var seed = (1000 * rank) + (100 * (dim + 3)) + length;
        var x = Tensor.RandN(shape, seed, dtype, std: 3.0);
        var g = Tensor.RandN(composed(x).Shape, seed + 1, dtype);
        var v = Tensor.RandN(shape, seed + 2, dtype);
        var (y, gx, hx) = Components(composed, x, g, v);
        Assert.Equal(node, fused(x.Clone().WithRequiresGrad()).OpName);

        var r = FusedCheck.Compare(fused, composed, x, g, v);

        var floor = length == 1;
        var valueErr = Normwise(r.ValueAbs, MaxAbs(y), floor ? 1.0 : 0.0);
        var gradErr = Normwise(r.GradAbs, MaxAbs(gx), floor ? MaxAbs(g) : 0.0);
        var ggFloor = floor ? MaxAbs(g) * MaxAbs(v) : dtype == DType.Float32 ? MaxAbs(g) * MaxAbs(v) / length : 0.0;
        var ggErr = Normwise(r.GradGradAbs, MaxAbs(hx), ggFloor);
        var tol = ForDType.Pick(dtype, float64: 1e-12, float32: Math.Max(1e-5, (length - 1) * U32));
        var report = string.Create(
            CultureInfo.InvariantCulture,
            $"{op} {dtype.Name()} shape {shape} dim {dim}: normwise value {valueErr:G3}, gradient {gradErr:G3}, second order {ggErr:G3} (tolerance {tol:G3}); FusedCheck: {r}");
        Assert.True(valueErr <= tol && gradErr <= tol && ggErr <= tol, report);
        if (dtype == DType.Float64)
        {
            Assert.True(r.MaxRel <= 1e-10, "element-wise " + report);
        }
    }

    /// <summary>Masked inputs (−∞ entries, no fully masked row) also agree, including the second order.</summary>
    [Theory]
    [InlineData(DType.Float64, 1)]
    [InlineData(DType.Float64, 0)]
    [InlineData(DType.Float32, 1)]
    [InlineData(DType.Float32, 0)]
    public void FusedMatchesComposedWithMasks(DType dtype, int dim)
    {
        var ni = double.NegativeInfinity;
        double[][] lines = [[1, ni, 2, ni, 0.5, 3], [ni, 3, -1, 0, ni, 1], [0.25, 0.5, ni, ni, ni, ni]];
        var x = Arrange(lines, dim, dtype);
        var tol = ForDType.Pick(dtype, float64: 1e-12, float32: 1e-5);
        foreach (var op in FusedOps)
        {
            var (fused, composed, _) = Pair(op, dim);
            var g = Tensor.RandN(composed(x).Shape, 7, dtype);
            var v = Tensor.RandN(x.Shape, 8, dtype);
            var (y, gx, hx) = Components(composed, x, g, v);
            var r = FusedCheck.Compare(fused, composed, x, g, v);
            var msg = $"{op} dim {dim} {dtype.Name()}: {r}";
            Assert.True(Normwise(r.ValueAbs, MaxAbs(y), 0) <= tol, msg);
            Assert.True(Normwise(r.GradAbs, MaxAbs(gx), 0) <= tol, msg);
            Assert.True(Normwise(r.GradGradAbs, MaxAbs(hx), 0) <= tol, msg);
        }
    }

    // ───────────────────────────── 3. stability ─────────────────────────────

    /// <summary>Logits of ±1e4: values, gradients and second derivatives are finite and correct.</summary>
    [Theory]
    [InlineData(DType.Float64, 1)]
    [InlineData(DType.Float64, 0)]
    [InlineData(DType.Float32, 1)]
    [InlineData(DType.Float32, 0)]
    public void HugeLogitsGiveNoNanOrInf(DType dtype, int dim)
    {
        double[][] lines =
        [
            [1e4, -1e4, 0, 1e4 - 1, -1e4 + 1],
            [-1e4, -1e4, -1e4, -1e4 + 2, -1e4],
            [1e4, 1e4, 1e4, 1e4, 1e4],
            [-1e4, 1e4, -1e4, 1e4, -1e4],
        ];
        var x = Arrange(lines, dim, dtype);
        var tol = ForDType.Pick(dtype, float64: 1e-12, float32: 1e-6);
        foreach (var op in FusedOps)
        {
            var (fused, _, _) = Pair(op, dim);
            var leaf = x.Clone().WithRequiresGrad();
            var y = fused(leaf);
            var g = Tensor.RandN(y.Shape, 3, dtype);
            var grad = Autodiff.Grad(y, leaf, g, createGraph: true);
            var hess = Autodiff.Grad(grad, leaf, Tensor.RandN(x.Shape, 4, dtype));
            Assert.All(y.ToArray(), e => Assert.True(double.IsFinite(e), $"{op}: value {e}"));
            Assert.All(grad.ToArray(), e => Assert.True(double.IsFinite(e), $"{op}: gradient {e}"));
            Assert.All(hess.ToArray(), e => Assert.True(double.IsFinite(e), $"{op}: second derivative {e}"));
            AssertAgainstReference(op, lines, dim, x, y, g, grad, tol);
        }
    }

    /// <summary>
    /// −∞ entries are masks: probability 0, gradient 0, log-probability −∞. A fully masked row gives NaN for softmax and
    /// log-softmax and −∞ for logsumexp (PyTorch masks an infinite maximum to 0 there); the other rows are unaffected.
    /// </summary>
    /// <remarks>
    /// Log-softmax at a masked entry i: ∂yᵢ/∂xᵢ = 1 − pᵢ = 1 and ∂yⱼ/∂xᵢ = −pᵢ = 0, so dxᵢ = gᵢ exactly (as PyTorch); it is
    /// 0 when the loss does not read the masked entries (gᵢ = 0), as a cross-entropy does. The gradient of logsumexp on
    /// a fully masked row is g·exp(x − r) = exp(−∞ − (−∞)) = NaN, as PyTorch's logsumexp backward.
    /// </remarks>
    [Theory]
    [InlineData(DType.Float64, 1)]
    [InlineData(DType.Float64, 0)]
    [InlineData(DType.Float32, 1)]
    [InlineData(DType.Float32, 0)]
    public void MinusInfinityMasks(DType dtype, int dim)
    {
        var ni = double.NegativeInfinity;
        double[][] lines = [[1, ni, 2, ni, 0.5], [ni, ni, ni, ni, ni], [ni, 3, -1, 0, ni]];
        var x = Arrange(lines, dim, dtype);
        var tol = ForDType.Pick(dtype, float64: 1e-12, float32: 1e-6);
        foreach (var op in FusedOps)
        {
            var (fused, _, _) = Pair(op, dim);
            var leaf = x.Clone().WithRequiresGrad();
            var y = fused(leaf);
            var g = Tensor.RandN(y.Shape, 5, dtype);
            var grad = Autodiff.Grad(y, leaf, g);
            var ya = y.ToArray();
            var ga = grad.ToArray();
            var gg = g.ToArray();
            for (var k = 0; k < lines.Length; k++)
            {
                var idx = LineIndices(x.Shape, dim, k);
                var allMasked = lines[k].All(double.IsNegativeInfinity);
                for (var j = 0; j < idx.Length; j++)
                {
                    var masked = double.IsNegativeInfinity(lines[k][j]);
                    var dx = ga[idx[j]];
                    switch (op)
                    {
                        case "Softmax":
                            Assert.True(allMasked ? double.IsNaN(ya[idx[j]]) : !masked || ya[idx[j]] == 0, $"softmax line {k} entry {j}: {ya[idx[j]]}");
                            Assert.True(allMasked ? double.IsNaN(dx) : !masked || dx == 0, $"softmax gradient line {k} entry {j}: {dx}");
                            break;
                        case "LogSoftmax":
                            Assert.True(allMasked ? double.IsNaN(ya[idx[j]]) : !masked || double.IsNegativeInfinity(ya[idx[j]]), $"log-softmax line {k} entry {j}: {ya[idx[j]]}");
                            Assert.True(allMasked ? double.IsNaN(dx) : !masked || dx == gg[idx[j]], $"log-softmax gradient line {k} entry {j}: {dx}");
                            break;
                        default:
                            Assert.True(allMasked ? double.IsNaN(dx) : !masked || dx == 0, $"{op} gradient line {k} entry {j}: {dx}");
                            break;
                    }
                }

                if (op.StartsWith("LogSumExp", StringComparison.Ordinal))
                {
                    var r = ya[k];
                    Assert.True(allMasked ? double.IsNegativeInfinity(r) : double.IsFinite(r), $"{op} line {k}: {r}");
                }
            }

            AssertAgainstReference(op, lines, dim, x, y, g, grad, tol);
        }

        // A loss that does not read the masked entries (a cross-entropy picks one target per line) sends them gradient 0.
        var pick = new double[x.ElementCount];
        pick[LineIndices(x.Shape, dim, 0)[2]] = -1;
        pick[LineIndices(x.Shape, dim, 2)[1]] = -1;
        var xl = x.Clone().WithRequiresGrad();
        var dNll = Autodiff.Grad(xl.LogSoftmax(dim), xl, Tensor.FromArray(pick, x.Shape.ToArray()).To(dtype)).ToArray();
        for (var k = 0; k < lines.Length; k += 2)
        {
            var idx = LineIndices(x.Shape, dim, k);
            for (var j = 0; j < idx.Length; j++)
            {
                Assert.True(double.IsFinite(dNll[idx[j]]), $"line {k} entry {j}: {dNll[idx[j]]}");
                if (double.IsNegativeInfinity(lines[k][j]))
                {
                    Assert.Equal(0.0, dNll[idx[j]]);
                }
            }
        }
    }

    public static TheoryData<int, DType, int> LargeRows()
    {
        var data = new TheoryData<int, DType, int>();
        foreach (var n in new[] { 10_000, 1_000_000 })
        {
            foreach (var dtype in new[] { DType.Float64, DType.Float32 })
            {
                foreach (var layout in new[] { 0, 1, 2 })
                {
                    data.Add(n, dtype, layout);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// Rows of 10 000 and 1 000 000 elements (one row; two rows along the last dim; two columns along dim 0): softmax
    /// and exp(log-softmax) sum to 1 and logsumexp matches a compensated float64 reference.
    /// </summary>
    /// <remarks>
    /// The normaliser Σ exp(x − max) is a recursive float sum (per SIMD lane along the last dim, a running sum per column
    /// along other dims), whose a-priori error bound is (n − 1)u relative (Higham, Accuracy and Stability of Numerical
    /// Algorithms, §4.2). In float64 that bound is 1.1e-12 at n = 1e4 and 1.1e-10 at n = 1e6; the errors seen are at most
    /// 5.2e-14, so 1e-12 is asserted. In float32 the errors seen go from 8e-8 (n = 1e4, last dim) to 1.9e-3 (n = 1e6 along
    /// dim 0: a running float32 sum of 1e6 terms, as in PyTorch's CPU kernel), so only the rigorous n·u is asserted there.
    /// </remarks>
    [Theory]
    [MemberData(nameof(LargeRows))]
    public void LargeRowsSumToOne(int n, DType dtype, int layout)
    {
        var (shape, dim, count) = layout switch
        {
            0 => (new Shape(n), 0, 1),
            1 => (new Shape(2, n), -1, 2),
            _ => (new Shape(n, 2), 0, 2),
        };
        var x = Tensor.RandN(shape, n + layout, dtype, std: 3.0);
        var y = x.Softmax(dim).ToArray();
        var ly = x.LogSoftmax(dim).ToArray();
        var r = x.LogSumExp(dim).ToArray();
        var xa = x.ToArray();
        var tol = ForDType.Pick(dtype, float64: 1e-12, float32: n * U32);
        for (var k = 0; k < count; k++)
        {
            var idx = LineIndices(shape, dim, k);
            var sum = CompensatedSum(idx.Select(i => y[i]));
            var sumExp = CompensatedSum(idx.Select(i => Math.Exp(ly[i])));
            var m = idx.Max(i => xa[i]);
            var lse = m + Math.Log(CompensatedSum(idx.Select(i => Math.Exp(xa[i] - m))));
            Assert.True(Math.Abs(sum - 1) <= tol, $"Σ softmax − 1 = {sum - 1:G3} (tolerance {tol:G3})");
            Assert.True(Math.Abs(sumExp - 1) <= tol, $"Σ exp(log-softmax) − 1 = {sumExp - 1:G3} (tolerance {tol:G3})");
            Assert.True(Math.Abs(r[k] - lse) <= tol * Math.Abs(lse), $"logsumexp {r[k]:R} vs {lse:R} (tolerance {tol:G3} relative)");
        }
    }

    /// <summary>
    /// The float32 row kernel takes each row's maximum while it exponentiates the row before it, and splits the rows
    /// between threads; above 2 MB the softmax backward writes dx with non-temporal stores. On rows of every length
    /// class around the 16- and 32-lane steps, with the maximum planted first or last, a NaN row and −∞ entries, each
    /// row of softmax, log-softmax and the softmax backward must match a float64 reference computed from the same
    /// float32 values, a NaN must stay inside its row, and a row's values must not depend on where a split between
    /// threads starts or on the store path (the same rows computed as a small tensor are bit-identical).
    /// </summary>
    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(48)]
    [InlineData(50)]
    [InlineData(1000)]
    public void Float32RowsMatchAFloat64ReferenceWhateverTheSplit(int size)
    {
        var rows = Math.Max(16, (600_000 / size) + 1);
        var data = Tensor.RandN(new Shape(rows, size), size, DType.Float32, std: 3.0).ToArray<float>();
        for (var r = 0; r < rows; r++)
        {
            switch (r % 4)
            {
                // A maximum of 110 where a wrong shift would overflow exp to +∞ (and the row to NaN).
                case 0: data[(r * size) + size - 1] = 110f; break;
                case 1: data[r * size] = 110f; break;
                case 2: data[(r * size) + (size / 2)] = float.NegativeInfinity; break;
            }
        }

        const int nanRow = 5;
        data[(nanRow * size) + 3] = float.NaN;
        var x = Tensor.FromArray(data, rows, size).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(rows, size), size + 1, DType.Float32);
        var ga = g.ToArray<float>();
        var yt = x.Softmax(-1);
        var y = yt.ToArray<float>();
        var ly = x.LogSoftmax(-1).ToArray<float>();
        var dx = Autodiff.Grad(yt, x, g).ToArray<float>();
        var tol = (size + 8) * U32;
        for (var r = 0; r < rows; r++)
        {
            var row = data.AsSpan(r * size, size);
            if (r == nanRow)
            {
                Assert.All(y.AsSpan(r * size, size).ToArray(), v => Assert.True(float.IsNaN(v)));
                Assert.All(ly.AsSpan(r * size, size).ToArray(), v => Assert.True(float.IsNaN(v)));
                Assert.All(dx.AsSpan(r * size, size).ToArray(), v => Assert.True(float.IsNaN(v)));
                continue;
            }

            // dx = y ⊙ (g − Σ g⊙y) from our float32 y: the float32 dot errs by at most n·u·Σ|g⊙y|.
            double dot = 0, dotAbs = 0;
            for (var j = 0; j < size; j++)
            {
                dot += (double)ga[(r * size) + j] * y[(r * size) + j];
                dotAbs += Math.Abs((double)ga[(r * size) + j] * y[(r * size) + j]);
            }

            for (var j = 0; j < size; j++)
            {
                var at = (r * size) + j;
                var expectedDx = y[at] * (ga[at] - dot);
                // Plus a few float32 subnormal spacings (1.4e-45) for results in the subnormal range.
                var tolDx = (y[at] * (size + 8) * U32 * (dotAbs + Math.Abs(ga[at]) + Math.Abs(dot))) + 1e-44;
                Assert.True(Math.Abs(dx[at] - expectedDx) <= tolDx, $"softmax backward row {r} column {j}: {dx[at]:R} vs {expectedDx:R}");
            }

            double m = double.NegativeInfinity;
            foreach (var v in row)
            {
                m = Math.Max(m, v);
            }

            var sum = 0.0;
            foreach (var v in row)
            {
                sum += Math.Exp(v - m);
            }

            for (var j = 0; j < size; j++)
            {
                var at = (r * size) + j;
                var expected = Math.Exp(row[j] - m) / sum;
                var expectedLog = row[j] - m - Math.Log(sum);
                if (float.IsNegativeInfinity(row[j]))
                {
                    Assert.Equal(0f, y[at]);
                    Assert.True(float.IsNegativeInfinity(ly[at]), $"log-softmax of −∞ at row {r}, column {j}: {ly[at]}");
                    continue;
                }

                // x − max is rounded to float32 before the exponential: a relative error of |x − max|·u in exp.
                var tolj = tol + (Math.Abs(row[j] - m) * U32);
                Assert.True(Math.Abs(ly[at] - expectedLog) <= tolj * Math.Max(1.0, Math.Abs(expectedLog)), $"log-softmax row {r} column {j}: {ly[at]:R} vs {expectedLog:R}");
                if (expected < 1e-30)
                {
                    // Near and below the float32 subnormals only the absolute error is small.
                    Assert.True(Math.Abs(y[at] - expected) <= 1e-37, $"softmax row {r} column {j}: {y[at]:R} vs {expected:R}");
                    continue;
                }

                Assert.True(Math.Abs(y[at] - expected) <= tolj * expected, $"softmax row {r} column {j}: {y[at]:R} vs {expected:R}");
            }
        }

        // The same rows as part of a tensor that starts three rows later (one thread, other split points): same bits.
        var part = Tensor.FromArray(data.AsSpan(3 * size, 9 * size).ToArray(), 9, size).WithRequiresGrad();
        var pyt = part.Softmax(-1);
        var py = pyt.ToArray<float>();
        var ply = part.LogSoftmax(-1).ToArray<float>();
        var pdx = Autodiff.Grad(pyt, part, Tensor.FromArray(ga.AsSpan(3 * size, 9 * size).ToArray(), 9, size)).ToArray<float>();
        for (var i = 0; i < py.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits(y[(3 * size) + i]), BitConverter.SingleToInt32Bits(py[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(ly[(3 * size) + i]), BitConverter.SingleToInt32Bits(ply[i]));
            Assert.Equal(BitConverter.SingleToInt32Bits(dx[(3 * size) + i]), BitConverter.SingleToInt32Bits(pdx[i]));
        }
    }

    /// <summary>
    /// Why TensorPrimitives.SoftMax is not used: it exponentiates without subtracting the maximum, so logits near 1000
    /// overflow to ∞/∞ = NaN, where the fused softmax is exact.
    /// </summary>
    [Fact]
    public void TensorPrimitivesSoftMaxIsUnsafeButOursIsNot()
    {
        double[] logits = [1000, 999, 998];
        var expected = RefSoftmax(logits);

        var naive = new double[3];
        TensorPrimitives.SoftMax(logits, naive);
        Assert.All(naive, e => Assert.True(double.IsNaN(e)));

        var naive32 = new float[3];
        TensorPrimitives.SoftMax([1000f, 999f, 998f], naive32);
        Assert.All(naive32, e => Assert.True(float.IsNaN(e)));

        var ours = Tensor.From(logits).Softmax(0).ToArray();
        var ours32 = Tensor.From(1000f, 999f, 998f).Softmax(0).ToArray();
        for (var i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(ours[i] - expected[i]) <= 1e-15 * expected[i], $"float64 {ours[i]:R} vs {expected[i]:R}");
            Assert.True(Math.Abs(ours32[i] - expected[i]) <= 4 * U32 * expected[i], $"float32 {ours32[i]:R} vs {expected[i]:R}");
        }

        // Where exp does not overflow the two agree, so the difference is only the missing max subtraction.
        double[] shifted = [0, -1, -2];
        var small = new double[3];
        TensorPrimitives.SoftMax(shifted, small);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(small[i] - expected[i]) <= 1e-15, $"TensorPrimitives.SoftMax {small[i]:R} vs {expected[i]:R}");
        }
    }

    // ───────────────────────────── 4. higher order ─────────────────────────────

    // GradCheck and GradGradCheck of the fused operators and of their backward operators are rows of OpTable.

    /// <summary>
    /// The Hessian of Σ softmax(x) ⊙ w from Autodiff.Grad(createGraph: true) twice: fused = composed = the analytic
    /// H = diag(a) − a sᵀ − s aᵀ per line, a = s ⊙ (w − s·w) (MathNet), and symmetric.
    /// </summary>
    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(2, 0)]
    [InlineData(2, -1)]
    public void HessianOfWeightedSoftmaxSum(int rank, int dim)
    {
        var shape = rank == 1 ? new Shape(6) : new Shape(3, 4);
        var x = Tensor.RandN(shape, 60 + dim, std: 2.0);
        var w = Tensor.RandN(shape, 70 + dim);
        var hf = Hessian(x, t => (t.Softmax(dim) * w).Sum());
        var hc = Hessian(x, t => (t.SoftmaxComposed(dim) * w).Sum());

        var n = x.ElementCount;
        var ha = Matrix<double>.Build.Dense(n, n);
        var d = dim < 0 ? dim + x.Rank : dim;
        for (var k = 0; k < x.ElementCount / x.Shape[d]; k++)
        {
            var idx = LineIndices(shape, d, k);
            var s = Vector<double>.Build.DenseOfArray(RefSoftmax(Pick(x.ToArray(), idx)));
            var wl = Vector<double>.Build.DenseOfArray(Pick(w.ToArray(), idx));
            var a = s.PointwiseMultiply(wl - (s * wl));
            var block = Matrix<double>.Build.DenseOfDiagonalVector(a) - a.OuterProduct(s) - s.OuterProduct(a);
            for (var p = 0; p < idx.Length; p++)
            {
                for (var q = 0; q < idx.Length; q++)
                {
                    ha[idx[p], idx[q]] = block[p, q];
                }
            }
        }

        var scale = ha.Enumerate().Max(Math.Abs);
        Assert.True((hf - ha).Enumerate().Max(Math.Abs) <= 1e-12 * scale, $"fused Hessian\n{hf}\nanalytic\n{ha}");
        Assert.True((hc - ha).Enumerate().Max(Math.Abs) <= 1e-12 * scale, $"composed Hessian\n{hc}\nanalytic\n{ha}");
        Assert.True((hf - hc).Enumerate().Max(Math.Abs) <= 1e-12 * scale, "fused vs composed Hessian");
        Assert.True((hf - hf.Transpose()).Enumerate().Max(Math.Abs) <= 1e-12 * scale, "fused Hessian is not symmetric");
    }

    // ───────────────────────────── 5. float32 = float64 ─────────────────────────────

    public static TheoryData<string, int, int> PrecisionCases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var op in FusedOps)
        {
            foreach (var dim in new[] { 0, 1, -1 })
            {
                foreach (var length in new[] { 9, 37, 3079 })
                {
                    data.Add(op, dim, length);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// The same float32-representable logits and output gradient in float32 and float64: the fused forward, the
    /// gradient through the tape and the backward operator applied directly agree to float32 precision.
    /// </summary>
    /// <remarks>
    /// Tolerance, normwise: (n + 16)·u₃₂. A float32 result carries the rounding of the n-term sums (the recursive-summation
    /// bound (n − 1)u) plus a few roundings per element (x − max, exp, product, the final sum or difference).
    /// </remarks>
    [Theory]
    [MemberData(nameof(PrecisionCases))]
    public void Float32MatchesFloat64(string op, int dim, int length)
    {
        var shape = dim == 0 ? new Shape(length, 6) : new Shape(6, length);
        var x32 = Tensor.RandN(shape, 80 + length + dim, DType.Float32, std: 3.0);
        var x64 = x32.To(DType.Float64);
        var (fused, _, _) = Pair(op, dim);
        var g32 = Tensor.RandN(fused(x32).Shape, 90 + length, DType.Float32);
        var g64 = g32.To(DType.Float64);
        var tol = (length + 16) * U32;

        var l32 = x32.Clone().WithRequiresGrad();
        var l64 = x64.Clone().WithRequiresGrad();
        var y32 = fused(l32);
        var y64 = fused(l64);
        var d32 = Autodiff.Grad(y32, l32, g32);
        var d64 = Autodiff.Grad(y64, l64, g64);
        Assert.Equal(DType.Float32, y32.DType);
        Assert.Equal(DType.Float32, d32.DType);
        AssertNormwise($"{op} value", y64.ToArray(), y32.ToArray(), tol);
        AssertNormwise($"{op} gradient", d64.ToArray(), d32.ToArray(), tol);

        if (op is "Softmax" or "LogSoftmax")
        {
            var log = op == "LogSoftmax";
            var b32 = log ? Tensor.LogSoftmaxBackward(g32, y32.Detach(), dim) : Tensor.SoftmaxBackward(g32, y32.Detach(), dim);
            var b64 = log ? Tensor.LogSoftmaxBackward(g64, y64.Detach(), dim) : Tensor.SoftmaxBackward(g64, y64.Detach(), dim);
            AssertNormwise($"{op} backward operator", b64.ToArray(), b32.ToArray(), tol);
            Assert.Equal(d32.ToArray(), b32.ToArray());
        }
    }

    // ───────────────────────────── 6. bad inputs ─────────────────────────────

    [Theory]
    [InlineData("Softmax", 2, 2)]
    [InlineData("Softmax", -3, 2)]
    [InlineData("Softmax", 1, 1)]
    [InlineData("Softmax", 1, 0)]
    [InlineData("LogSoftmax", 2, 2)]
    [InlineData("LogSoftmax", -3, 2)]
    [InlineData("LogSumExp", 5, 2)]
    [InlineData("LogSumExp", -2, 1)]
    [InlineData("SoftmaxBackward", 2, 2)]
    [InlineData("LogSoftmaxBackward", -3, 2)]
    public void DimOutOfRangeNamesTheDimAndTheRank(string op, int dim, int rank)
    {
        var shape = rank switch { 0 => Shape.Scalar, 1 => new Shape(4), _ => new Shape(2, 3) };
        var x = Tensor.RandN(shape, 1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Apply(op, x, dim));
        Assert.Equal("dim", ex.ParamName);
        Assert.StartsWith(op + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"dim {dim} ", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"rank {rank} ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ComposedFormsRejectABadDimToo()
    {
        var x = Tensor.RandN(new Shape(2, 3), 1);
        Assert.Contains("rank 2", Assert.Throws<ArgumentOutOfRangeException>(() => x.SoftmaxComposed(2)).Message, StringComparison.Ordinal);
        Assert.Contains("rank 2", Assert.Throws<ArgumentOutOfRangeException>(() => x.LogSoftmaxComposed(-3)).Message, StringComparison.Ordinal);
        Assert.Contains("rank 2", Assert.Throws<ArgumentOutOfRangeException>(() => x.LogSumExpComposed(2)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Softmax")]
    [InlineData("LogSoftmax")]
    [InlineData("LogSumExp")]
    [InlineData("SoftmaxBackward")]
    [InlineData("LogSoftmaxBackward")]
    public void IntegerTensorsAreRejected(string op)
    {
        var x = Tensor.FromArray(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        var ex = Assert.Throws<ArgumentException>(() => Apply(op, x, 1));
        Assert.StartsWith(op + ":", ex.Message, StringComparison.Ordinal);
        Assert.Contains("int64", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BackwardOperatorsRejectMismatchedShapesAndDTypes(bool log)
    {
        var op = log ? "LogSoftmaxBackward" : "SoftmaxBackward";
        Func<Tensor, Tensor, Tensor> backward = log ? (g, y) => Tensor.LogSoftmaxBackward(g, y, 1) : (g, y) => Tensor.SoftmaxBackward(g, y, 1);
        var y = Tensor.RandN(new Shape(2, 3), 1).Softmax(1);

        var transposed = Assert.Throws<ArgumentException>(() => backward(Tensor.RandN(new Shape(3, 2), 2), y));
        Assert.Equal("g", transposed.ParamName);
        Assert.StartsWith(op + ":", transposed.Message, StringComparison.Ordinal);
        Assert.Contains("[3, 2]", transposed.Message, StringComparison.Ordinal);
        Assert.Contains("[2, 3]", transposed.Message, StringComparison.Ordinal);

        // A gradient that would broadcast is still rejected: the backward kernel never broadcasts.
        var broadcastable = Assert.Throws<ArgumentException>(() => backward(Tensor.RandN(new Shape(1, 3), 2), y));
        Assert.Contains("[1, 3]", broadcastable.Message, StringComparison.Ordinal);

        var mixed = Assert.Throws<ArgumentException>(() => backward(Tensor.RandN(new Shape(2, 3), 2, DType.Float32), y));
        Assert.Contains("float32", mixed.Message, StringComparison.Ordinal);
        Assert.Contains("float64", mixed.Message, StringComparison.Ordinal);
    }

    /// <summary>Rank 0 and empty inputs, as PyTorch: softmax of a scalar is 1, logsumexp of nothing is −∞.</summary>
    [Fact]
    public void DegenerateShapesFollowPyTorch()
    {
        var s = Tensor.Scalar(2.5).WithRequiresGrad();
        Assert.Equal(1.0, s.Softmax(0).Item());
        Assert.Equal(0.0, s.LogSoftmax(-1).Item());
        var r = s.LogSumExp(0);
        Assert.Equal(Shape.Scalar, r.Shape);
        Assert.Equal(2.5, r.Item());
        r.Backward();
        Assert.Equal(1.0, s.Grad!.Item());

        var empty = Tensor.Zeros(2, 0);
        Assert.Equal(new Shape(2, 0), empty.Softmax(1).Shape);
        Assert.Equal(new Shape(2, 0), empty.LogSoftmax(1).Shape);
        Assert.All(empty.LogSumExp(1).ToArray(), e => Assert.True(double.IsNegativeInfinity(e)));
        Assert.Equal(new Shape(0), empty.LogSumExp(0).Shape);
    }

    public static TheoryData<int[], int, bool> LogSumExpLayouts => new()
    {
        { [3, 5], 1, false },
        { [3, 5], 0, true },
        { [2, 3, 4], 1, false },
        { [2, 3, 4], -1, true },
        { [2, 3, 4], 0, false },
        { [9], 0, false },
        { [], 0, false },
        { [2, 0, 3], 1, false },
        { [3, 70000], 1, false },
        { [70000, 3], 0, true },
        { [1, 300000], -1, false },
    };

    /// <summary>
    /// Without create-graph, logsumexp's gradient is one fused pass (rows, inner dims, threads sharing long rows); with
    /// it, the rule's tensor operations. Both do the same operations element by element, so they agree to the bit, in
    /// both dtypes, with infinite entries too (a row holding +∞ gives NaN where the rule does).
    /// </summary>
    [Theory]
    [MemberData(nameof(LogSumExpLayouts))]
    public void LogSumExpGradientWithoutCreateGraphIsTheRulesBitForBit(int[] dims, int dim, bool keepDim)
    {
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var shape = new Shape(dims);
            var values = Tensor.RandN(shape, 41, DType.Float64, std: 3).ToArray();
            if (values.Length >= 12)
            {
                values[1] = double.NegativeInfinity;
                values[7] = double.PositiveInfinity;
                values[11] = double.NegativeInfinity;
            }

            var x = Tensor.FromArray(values, dims).To(dtype).WithRequiresGrad();
            var y = x.LogSumExp(dim, keepDim);
            var g = Tensor.RandN(y.Shape, 42, dtype);
            var fast = Autodiff.Grad(y, x, g, retainGraph: true);
            var rule = Autodiff.Grad(y, x, g, createGraph: true);
            Assert.Null(fast.GradFn);
            Assert.NotNull(rule.GradFn);
            Assert.Equal(x.Shape, fast.Shape);
            var a = fast.ToArray();
            var b = rule.ToArray();
            for (var i = 0; i < a.Length; i++)
            {
                if (!(double.IsNaN(a[i]) && double.IsNaN(b[i])) && BitConverter.DoubleToInt64Bits(a[i]) != BitConverter.DoubleToInt64Bits(b[i]))
                {
                    Assert.Fail($"LogSumExp({dim}, keepDim: {keepDim}) of {shape} {dtype}: dx[{i}] = {a[i]:R} without create-graph, {b[i]:R} by the rule");
                }
            }
        }
    }

    // ───────────────────────────── helpers ─────────────────────────────

    private static (Func<Tensor, Tensor> Fused, Func<Tensor, Tensor> Composed, string Node) Pair(string op, int dim) => op switch
    {
        "Softmax" => (t => t.Softmax(dim), t => t.SoftmaxComposed(dim), "Softmax"),
        "LogSoftmax" => (t => t.LogSoftmax(dim), t => t.LogSoftmaxComposed(dim), "LogSoftmax"),
        "LogSumExp(keepDim)" => (t => t.LogSumExp(dim, keepDim: true), t => t.LogSumExpComposed(dim, keepDim: true), "LogSumExp"),
        "LogSumExp" => (t => t.LogSumExp(dim), t => t.LogSumExpComposed(dim), "LogSumExp"),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown op"),
    };

    private static Tensor Apply(string op, Tensor x, int dim) => op switch
    {
        "Softmax" => x.Softmax(dim),
        "LogSoftmax" => x.LogSoftmax(dim),
        "LogSumExp" => x.LogSumExp(dim),
        "SoftmaxBackward" => Tensor.SoftmaxBackward(x, x, dim),
        "LogSoftmaxBackward" => Tensor.LogSoftmaxBackward(x, x, dim),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, "unknown op"),
    };

    /// <summary>A shape of the given rank with <paramref name="length"/> at <paramref name="dim"/> and 3, 2 elsewhere.</summary>
    private static Shape ShapeAround(int rank, int dim, int length)
    {
        var d = dim < 0 ? dim + rank : dim;
        var others = new Queue<int>([3, 2]);
        return new Shape([.. Enumerable.Range(0, rank).Select(i => i == d ? length : others.Dequeue())]);
    }

    /// <summary>The flat indices of line <paramref name="k"/> along <paramref name="dim"/> (lines in row-major order of the other dims).</summary>
    private static int[] LineIndices(Shape shape, int dim, int k)
    {
        var d = dim < 0 ? dim + shape.Rank : dim;
        var inner = 1;
        for (var i = d + 1; i < shape.Rank; i++)
        {
            inner *= shape[i];
        }

        var size = shape[d];
        var start = (k / inner * size * inner) + (k % inner);
        return [.. Enumerable.Range(0, size).Select(j => start + (j * inner))];
    }

    private static int[] LineIndices(int rows, int cols, int dim, int k) => LineIndices(new Shape(rows, cols), dim, k);

    private static double[] Pick(double[] flat, int[] idx) => [.. idx.Select(i => flat[i])];

    /// <summary>A 2-D tensor whose lines along <paramref name="dim"/> are <paramref name="lines"/>.</summary>
    private static Tensor Arrange(double[][] lines, int dim, DType dtype)
    {
        var n = lines[0].Length;
        var shape = dim == 0 ? new Shape(n, lines.Length) : new Shape(lines.Length, n);
        var t = Tensor.Zeros(shape, dtype);
        for (var k = 0; k < lines.Length; k++)
        {
            var idx = LineIndices(shape, dim, k);
            for (var j = 0; j < n; j++)
            {
                t.SetFlat(idx[j], lines[k][j]);
            }
        }

        return t;
    }

    /// <summary>exp(x − max) / Σ exp(x − max), entry by entry in float64.</summary>
    private static double[] RefSoftmax(double[] x)
    {
        var m = x.Max();
        var e = x.Select(v => Math.Exp(v - m)).ToArray();
        var sum = CompensatedSum(e);
        return [.. e.Select(v => v / sum)];
    }

    /// <summary>J·dl with the explicit softmax Jacobian J = diag(s) − s sᵀ.</summary>
    private static double[] JacobianTimes(double[] s, double[] dl)
    {
        var sv = Vector<double>.Build.DenseOfArray(s);
        var j = Matrix<double>.Build.DenseOfDiagonalVector(sv) - sv.OuterProduct(sv);
        return (j * Vector<double>.Build.DenseOfArray(dl)).ToArray();
    }

    private static (double[] Y, double[] Dx) ValueAndGrad(Tensor x, Func<Tensor, Tensor> f, Tensor dl)
    {
        var leaf = x.Clone().WithRequiresGrad();
        var y = f(leaf);
        y.Backward(dl);
        return (y.ToArray(), leaf.Grad!.ToArray());
    }

    /// <summary>The value, the gradient for g and the gradient of ⟨gradient, v⟩, computed as FusedCheck computes them.</summary>
    private static (Tensor Y, Tensor Grad, Tensor GradGrad) Components(Func<Tensor, Tensor> f, Tensor x, Tensor g, Tensor v)
    {
        var leaf = x.Clone().WithRequiresGrad();
        var y = f(leaf);
        var grad = Autodiff.Grad(y, leaf, g, createGraph: true);
        var h = grad.RequiresGrad ? Autodiff.Grad(grad, leaf, v, allowUnused: true) : Tensor.ZerosLike(x);
        return (y, grad, h);
    }

    /// <summary>
    /// Softmax line: values element-wise relative, |ŝᵢ − sᵢ| ≤ tol·sᵢ; gradient relative to its terms,
    /// |dx̂ᵢ − dxᵢ| ≤ tol·sᵢ(|dlᵢ| + Σⱼ sⱼ|dlⱼ|).
    /// </summary>
    private static void AssertSoftmaxLine(string what, double[] s, double[] dl, double[] dxRef, double[] y, double[] dx, double tol)
    {
        var mass = s.Zip(dl, (a, b) => a * Math.Abs(b)).Sum();
        for (var i = 0; i < s.Length; i++)
        {
            Assert.True(Math.Abs(y[i] - s[i]) <= tol * s[i], $"{what}: softmax[{i}] = {y[i]:R}, expected {s[i]:R}");
            var bound = tol * s[i] * (Math.Abs(dl[i]) + mass);
            Assert.True(Math.Abs(dx[i] - dxRef[i]) <= bound, $"{what}: dx[{i}] = {dx[i]:R}, J·dL gives {dxRef[i]:R} (bound {bound:G3})");
        }
    }

    /// <summary>
    /// Checks values and gradients line by line against float64 references computed from <paramref name="lines"/>
    /// (−∞ entries and fully masked lines are checked by the caller). <paramref name="x"/> is the 2-D input.
    /// </summary>
    /// <remarks>
    /// The logsumexp gradient is g·exp(x − r): r = log Σ exp(x) is rounded to u·|r| absolute, which the exponential turns
    /// into a relative error of u·|r| (PyTorch's logsumexp backward is the same formula). With logits of 1e4 that is
    /// 6e-4 in float32 — less than one rounding of the logits themselves, so the gradient is backward stable — and it is
    /// added to the tolerance: tol + 2u·max|x|.
    /// </remarks>
    private static void AssertAgainstReference(string op, double[][] lines, int dim, Tensor x, Tensor y, Tensor g, Tensor grad, double tol)
    {
        var u = ForDType.Pick(x.DType, float64: U64, float32: U32);
        var lse = op.StartsWith("LogSumExp", StringComparison.Ordinal);
        var ya = y.ToArray();
        var ga = g.ToArray();
        var da = grad.ToArray();
        for (var k = 0; k < lines.Length; k++)
        {
            if (lines[k].All(double.IsNegativeInfinity))
            {
                continue;
            }

            // A reduced output (logsumexp) holds line k at flat index k, with or without keepDim.
            var idx = LineIndices(x.Shape, dim, k);
            var p = RefSoftmax(lines[k]);
            var m = lines[k].Max();
            var r = m + Math.Log(CompensatedSum(lines[k].Select(v => Math.Exp(v - m))));
            double[] expectY, expectDx, actualY;
            switch (op)
            {
                case "Softmax":
                    var gl = Pick(ga, idx);
                    var sg = CompensatedSum(p.Select((pi, i) => pi * gl[i]));
                    expectY = p;
                    expectDx = [.. p.Select((pi, i) => pi * (gl[i] - sg))];
                    actualY = Pick(ya, idx);
                    break;
                case "LogSoftmax":
                    var gk = Pick(ga, idx);
                    var sum = CompensatedSum(gk);
                    expectY = [.. lines[k].Select(v => v - r)];
                    expectDx = [.. p.Select((pi, i) => gk[i] - (pi * sum))];
                    actualY = Pick(ya, idx);
                    break;
                default:
                    Assert.True(lse);
                    expectY = [r];
                    expectDx = [.. p.Select(pi => pi * ga[k])];
                    actualY = [ya[k]];
                    break;
            }

            var finite = Enumerable.Range(0, expectY.Length).Where(i => double.IsFinite(expectY[i])).ToArray();
            AssertNormwise($"{op} line {k} value", Pick(expectY, finite), Pick(actualY, finite), tol);
            var gradTol = lse ? tol + (2 * u * lines[k].Where(double.IsFinite).Max(Math.Abs)) : tol;
            AssertNormwise($"{op} line {k} gradient", expectDx, Pick(da, idx), gradTol);
        }
    }

    /// <summary>max|actual − expected| ≤ tol·max|expected| (infinite entries must match exactly).</summary>
    private static void AssertNormwise(string what, double[] expected, double[] actual, double tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = 0.0;
        var diff = 0.0;
        for (var i = 0; i < expected.Length; i++)
        {
            if (double.IsInfinity(expected[i]) || double.IsNaN(expected[i]))
            {
                Assert.True(expected[i].Equals(actual[i]), $"{what}[{i}] = {actual[i]:R}, expected {expected[i]:R}");
                continue;
            }

            scale = Math.Max(scale, Math.Abs(expected[i]));
            var d = Math.Abs(actual[i] - expected[i]);
            diff = Math.Max(diff, double.IsNaN(d) ? double.PositiveInfinity : d);
        }

        Assert.True(diff <= tol * scale, string.Create(CultureInfo.InvariantCulture, $"{what}: max |difference| {diff:G3} > {tol:G3} × {scale:G3}"));
    }

    private static double Normwise(double absDiff, double scale, double floor)
    {
        var s = Math.Max(scale, floor);
        return absDiff == 0 ? 0 : absDiff / s;
    }

    private static double MaxAbs(Tensor t) => t.ToArray().Where(double.IsFinite).Select(Math.Abs).DefaultIfEmpty(0).Max();

    /// <summary>Σ with Neumaier compensation, so the reference sums carry no error of their own.</summary>
    private static double CompensatedSum(IEnumerable<double> values)
    {
        double sum = 0, c = 0;
        foreach (var v in values)
        {
            var t = sum + v;
            c += Math.Abs(sum) >= Math.Abs(v) ? sum - t + v : v - t + sum;
            sum = t;
        }

        return sum + c;
    }

    private static Matrix<double> Hessian(Tensor x, Func<Tensor, Tensor> f)
    {
        var leaf = x.Clone().WithRequiresGrad();
        var grad = Autodiff.Grad(f(leaf), leaf, createGraph: true);
        var n = x.ElementCount;
        var h = Matrix<double>.Build.Dense(n, n);
        for (var i = 0; i < n; i++)
        {
            var e = new double[n];
            e[i] = 1;
            var row = Autodiff.Grad(grad, leaf, Tensor.FromArray(e, x.Shape.ToArray()), createGraph: true);
            Assert.True(row.RequiresGrad, "createGraph: the second derivative should itself be on the tape");
            h.SetRow(i, row.ToArray());
        }

        return h;
    }
}
