namespace Autograd.Tests;

/// <summary>
/// Conv2d and Conv1d: against a direct sum over the kernel (with batches large enough to be split among the cores),
/// Conv1d against Conv2d of height 1, the recorded graph, and every rejected input with its message.
/// </summary>
public class ConvolutionTests
{
    /// <summary>y[n, o, i, j] = b[o] + Σ w[o, c, p, q] · x[n, g·Cg + c, i·s − pad + p·d, j·s − pad + q·d], term by term.</summary>
    private static double[] Direct(Tensor x, Tensor w, Tensor? b, (int H, int W) s, (int H, int W) pad, (int H, int W) d, int groups, out int[] shape)
    {
        var xv = x.ToArray();
        var wv = w.ToArray();
        var bv = b?.ToArray();
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], wd = x.Shape[3];
        int cout = w.Shape[0], cg = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
        var cog = cout / groups;
        var oh = ((h + (2 * pad.H) - (d.H * (kh - 1)) - 1) / s.H) + 1;
        var ow = ((wd + (2 * pad.W) - (d.W * (kw - 1)) - 1) / s.W) + 1;
        shape = [n, cout, oh, ow];
        var y = new double[n * cout * oh * ow];
        for (var ni = 0; ni < n; ni++)
        {
            for (var o = 0; o < cout; o++)
            {
                var gi = o / cog;
                for (var i = 0; i < oh; i++)
                {
                    for (var j = 0; j < ow; j++)
                    {
                        var sum = bv?[o] ?? 0.0;
                        for (var c = 0; c < cg; c++)
                        {
                            for (var p = 0; p < kh; p++)
                            {
                                for (var q = 0; q < kw; q++)
                                {
                                    var ih = (i * s.H) - pad.H + (p * d.H);
                                    var iw = (j * s.W) - pad.W + (q * d.W);
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd)
                                    {
                                        continue;
                                    }

                                    sum += wv[(((o * cg) + c) * kh + p) * kw + q] * xv[((((ni * cin) + (gi * cg) + c) * h) + ih) * wd + iw];
                                }
                            }
                        }

                        y[(((ni * cout) + o) * oh + i) * ow + j] = sum;
                    }
                }
            }
        }

        return y;
    }

    public static TheoryData<int[], int[], bool, int, int, int, int, int, int, int> Shapes() => new()
    {
        // x, w, bias, stride (H, W), padding (H, W), dilation (H, W), groups
        { [2, 3, 9, 8], [4, 3, 3, 3], true, 1, 1, 0, 0, 1, 1, 1 },
        { [3, 4, 11, 10], [6, 2, 3, 2], false, 2, 1, 1, 2, 2, 1, 2 },
        { [2, 3, 7, 7], [6, 1, 3, 3], true, 1, 2, 1, 1, 1, 2, 3 },
        { [2, 5, 6, 7], [3, 5, 1, 1], true, 1, 1, 0, 0, 1, 1, 1 },
        { [4, 32, 14, 14], [64, 32, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [5, 8, 12, 9], [8, 2, 3, 3], false, 2, 2, 1, 1, 1, 1, 4 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Conv2dMatchesTheDirectSumAndItsGradientsTheAdjoint(int[] sx, int[] sw, bool hasBias, int sh, int sW, int ph, int pw, int dh, int dw, int groups)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var x = Tensor.RandN(new Shape(sx), seed: 1).To(dtype).WithRequiresGrad();
            var w = Tensor.RandN(new Shape(sw), seed: 2).To(dtype).WithRequiresGrad();
            var b = hasBias ? Tensor.RandN(new Shape(sw[0]), seed: 3).To(dtype).WithRequiresGrad() : null;
            var y = x.Conv2d(w, b, (sh, sW), (ph, pw), (dh, dw), groups);
            var expected = Direct(x.Detach().To(DType.Float64), w.Detach().To(DType.Float64), b?.Detach().To(DType.Float64), (sh, sW), (ph, pw), (dh, dw), groups, out var shape);
            Assert.Equal(new Shape(shape), y.Shape);
            Assert.Equal(dtype, y.DType);
            var tol = dtype == DType.Float64 ? 1e-12 : 1e-4;
            AssertClose(expected, y.ToArray(), tol, "output");

            // ⟨y(x, w), v⟩ is linear in x and in w: its gradients are the adjoint products, checked against directional
            // derivatives computed with the direct sum (exact for a linear map).
            var v = Tensor.RandN(y.Shape, seed: 4).To(dtype);
            var grads = Autodiff.Grad([(y * v).Sum()], b is null ? [x, w] : [x, w, b]);
            var dxDir = Tensor.RandN(x.Shape, seed: 5);
            var dwDir = Tensor.RandN(w.Shape, seed: 6);
            var vv = v.To(DType.Float64).ToArray();
            var yx = Direct(dxDir, w.Detach().To(DType.Float64), null, (sh, sW), (ph, pw), (dh, dw), groups, out _);
            var yw = Direct(x.Detach().To(DType.Float64), dwDir, null, (sh, sW), (ph, pw), (dh, dw), groups, out _);
            var scale = Math.Sqrt(yx.Length) * 10;
            Assert.Equal(Dot(yx, vv), Dot(grads[0].To(DType.Float64).ToArray(), dxDir.ToArray()), dtype == DType.Float64 ? 1e-9 * scale : 1e-3 * scale);
            Assert.Equal(Dot(yw, vv), Dot(grads[1].To(DType.Float64).ToArray(), dwDir.ToArray()), dtype == DType.Float64 ? 1e-9 * scale : 1e-3 * scale);
            if (b is not null)
            {
                var db = grads[2].To(DType.Float64).ToArray();
                var plane = shape[2] * shape[3];
                for (var o = 0; o < shape[1]; o++)
                {
                    var sum = 0.0;
                    for (var n = 0; n < shape[0]; n++)
                    {
                        for (var k = 0; k < plane; k++)
                        {
                            sum += vv[(((n * shape[1]) + o) * plane) + k];
                        }
                    }

                    Assert.Equal(sum, db[o], dtype == DType.Float64 ? 1e-9 : 1e-3);
                }
            }
        }
    }

    /// <summary>dx and dW of ⟨y, g⟩ by the direct sum, term by term: every term x·w·g of the output adds w·g to dx and x·g to dW.</summary>
    private static (double[] Dx, double[] Dw) DirectGradients(Tensor x, Tensor w, Tensor g, (int H, int W) s, (int H, int W) pad, (int H, int W) d, int groups)
    {
        var xv = x.ToArray();
        var wv = w.ToArray();
        var gv = g.ToArray();
        int n = x.Shape[0], cin = x.Shape[1], h = x.Shape[2], wd = x.Shape[3];
        int cout = w.Shape[0], cg = w.Shape[1], kh = w.Shape[2], kw = w.Shape[3];
        int oh = g.Shape[2], ow = g.Shape[3];
        var cog = cout / groups;
        var dx = new double[xv.Length];
        var dw = new double[wv.Length];
        for (var ni = 0; ni < n; ni++)
        {
            for (var o = 0; o < cout; o++)
            {
                var gi = o / cog;
                for (var i = 0; i < oh; i++)
                {
                    for (var j = 0; j < ow; j++)
                    {
                        var gval = gv[(((ni * cout) + o) * oh + i) * ow + j];
                        for (var c = 0; c < cg; c++)
                        {
                            for (var p = 0; p < kh; p++)
                            {
                                for (var q = 0; q < kw; q++)
                                {
                                    var ih = (i * s.H) - pad.H + (p * d.H);
                                    var iw = (j * s.W) - pad.W + (q * d.W);
                                    if (ih < 0 || ih >= h || iw < 0 || iw >= wd)
                                    {
                                        continue;
                                    }

                                    var wi = (((o * cg) + c) * kh + p) * kw + q;
                                    var xi = ((((ni * cin) + (gi * cg) + c) * h) + ih) * wd + iw;
                                    dx[xi] += wv[wi] * gval;
                                    dw[wi] += xv[xi] * gval;
                                }
                            }
                        }
                    }
                }
            }
        }

        return (dx, dw);
    }

    public static TheoryData<int[], int[], bool, int, int, int, int, int, int, int> BlockShapes() => new()
    {
        // x, w, bias, stride (H, W), padding (H, W), dilation (H, W), groups.
        // A batch of 23 on a 14×14 plane is one chunk cut into uneven blocks of images; 37 images of a larger product are
        // split among the cores first.
        { [23, 4, 14, 14], [6, 4, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [37, 32, 14, 14], [16, 32, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [1, 3, 14, 14], [5, 3, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [1, 1, 28, 28], [8, 1, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [9, 1, 28, 28], [8, 1, 3, 3], false, 1, 1, 1, 1, 1, 1, 1 },

        // Fewer kernel taps than output channels per group: the weight gradient is computed transposed.
        { [37, 1, 28, 28], [32, 1, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [5, 2, 9, 9], [24, 1, 3, 3], false, 1, 1, 1, 1, 1, 1, 2 },
        { [3, 1, 7, 9], [12, 1, 2, 3], true, 2, 1, 0, 1, 1, 1, 1 },

        // Stride 1 and as wide as the input, so each column row is a shifted copy of the plane: asymmetric kernel and
        // padding, padding along W only (fewer output lines), dilation, groups, a kernel reaching wholly into the padding.
        { [7, 4, 9, 10], [6, 4, 3, 5], true, 1, 1, 1, 2, 1, 1, 1 },
        { [5, 3, 9, 8], [4, 3, 3, 3], false, 1, 1, 0, 1, 1, 1, 1 },
        { [6, 4, 10, 9], [6, 4, 3, 3], true, 1, 1, 2, 2, 2, 2, 1 },
        { [11, 6, 8, 8], [9, 2, 3, 3], true, 1, 1, 1, 1, 1, 1, 3 },
        { [3, 4, 8, 8], [4, 1, 3, 3], false, 1, 1, 1, 1, 1, 1, 4 },
        { [4, 2, 5, 2], [3, 2, 3, 3], true, 1, 1, 3, 3, 3, 3, 1 },

        // Other paths: pointwise, a 1×1 kernel with padding, stride 2, dilation without "same" padding, and planes large
        // enough for a block of one image (the product reads and writes the tensors in place).
        { [13, 5, 7, 6], [3, 5, 1, 1], true, 1, 1, 0, 0, 1, 1, 1 },
        { [3, 3, 33, 32], [4, 3, 1, 1], true, 1, 1, 0, 0, 1, 1, 1 },
        { [3, 2, 34, 32], [3, 2, 3, 3], true, 1, 1, 1, 1, 1, 1, 1 },
        { [3, 2, 4, 5], [3, 2, 1, 1], false, 1, 1, 2, 1, 1, 1, 1 },
        { [17, 4, 15, 13], [6, 4, 3, 3], true, 2, 2, 1, 1, 1, 1, 1 },
        { [6, 4, 12, 11], [4, 2, 3, 2], false, 2, 1, 0, 1, 2, 3, 2 },
    };

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void BlocksOfImagesGiveTheDirectSumAndItsGradients(int[] sx, int[] sw, bool hasBias, int sh, int sW, int ph, int pw, int dh, int dw, int groups)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var x = Tensor.RandN(new Shape(sx), seed: 11).To(dtype).WithRequiresGrad();
            var w = Tensor.RandN(new Shape(sw), seed: 12).To(dtype).WithRequiresGrad();
            var b = hasBias ? Tensor.RandN(new Shape(sw[0]), seed: 13).To(dtype).WithRequiresGrad() : null;
            var x64 = x.Detach().To(DType.Float64);
            var w64 = w.Detach().To(DType.Float64);
            var y = x.Conv2d(w, b, (sh, sW), (ph, pw), (dh, dw), groups);
            var expected = Direct(x64, w64, b?.Detach().To(DType.Float64), (sh, sW), (ph, pw), (dh, dw), groups, out var shape);
            Assert.Equal(new Shape(shape), y.Shape);
            var tol = dtype == DType.Float64 ? 1e-12 : 1e-4;
            AssertClose(expected, y.ToArray(), tol, $"{dtype} output");

            var g = Tensor.RandN(y.Shape, seed: 14).To(dtype);
            var grads = Autodiff.Grad([y], b is null ? [x, w] : [x, w, b], [g]);
            var (dxExpected, dwExpected) = DirectGradients(x64, w64, g.To(DType.Float64), (sh, sW), (ph, pw), (dh, dw), groups);
            AssertClose(dxExpected, grads[0].To(DType.Float64).ToArray(), tol, $"{dtype} dx");
            AssertClose(dwExpected, grads[1].To(DType.Float64).ToArray(), dtype == DType.Float64 ? 1e-11 : 1e-4, $"{dtype} dw");
            if (b is not null)
            {
                AssertClose(g.To(DType.Float64).Sum([0, 2, 3]).ToArray(), grads[2].To(DType.Float64).ToArray(), tol, $"{dtype} db");
            }
        }
    }

    [Theory]
    [MemberData(nameof(BlockShapes))]
    public void TheOnePassBackwardGivesWhatTheBackwardOperatorsGiveForEverySubsetOfInputs(int[] sx, int[] sw, bool hasBias, int sh, int sW, int ph, int pw, int dh, int dw, int groups)
    {
        // Without create-graph a Conv2d node computes the gradients it is asked for in one pass over the batch; with it,
        // through Conv2dBackwardInput, Conv2dBackwardWeight and a sum. Both must agree for every subset of inputs.
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var x = Tensor.RandN(new Shape(sx), seed: 21).To(dtype).WithRequiresGrad();
            var w = Tensor.RandN(new Shape(sw), seed: 22).To(dtype).WithRequiresGrad();
            var b = hasBias ? Tensor.RandN(new Shape(sw[0]), seed: 23).To(dtype).WithRequiresGrad() : null;
            var g = Tensor.RandN(x.Conv2d(w, b, (sh, sW), (ph, pw), (dh, dw), groups).Shape, seed: 24).To(dtype);
            var all = b is null ? new[] { x, w } : [x, w, b];
            for (var mask = 1; mask < 1 << all.Length; mask++)
            {
                var inputs = all.Where((_, i) => (mask & (1 << i)) != 0).ToArray();
                var onePass = Autodiff.Grad([x.Conv2d(w, b, (sh, sW), (ph, pw), (dh, dw), groups)], inputs, [g]);
                var operators = Autodiff.Grad([x.Conv2d(w, b, (sh, sW), (ph, pw), (dh, dw), groups)], inputs, [g], createGraph: true);
                for (var i = 0; i < inputs.Length; i++)
                {
                    Assert.Equal(inputs[i].Shape, onePass[i].Shape);
                    Assert.Null(onePass[i].GradFn);
                    AssertClose(operators[i].To(DType.Float64).ToArray(), onePass[i].To(DType.Float64).ToArray(), dtype == DType.Float64 ? 1e-12 : 1e-5, $"{dtype} mask {mask} input {i}");
                }
            }
        }
    }

    [Fact]
    public void Conv1dIsConv2dOfHeightOne()
    {
        var x = Tensor.RandN(new Shape(2, 4, 11), seed: 7);
        var w = Tensor.RandN(new Shape(6, 2, 3), seed: 8);
        var b = Tensor.RandN(new Shape(6), seed: 9);
        var y1 = x.Conv1d(w, b, stride: 2, padding: 1, dilation: 2, groups: 2);
        var y2 = x.Unsqueeze(2).Conv2d(w.Unsqueeze(2), b, (1, 2), (0, 1), (1, 2), 2).Squeeze(2);
        Assert.Equal(new Shape(2, 6, 5), y1.Shape);
        Assert.Equal(y2.ToArray(), y1.ToArray());
    }

    [Fact]
    public void TheGraphHasOneConv2dNodeWithOneEdgePerInput()
    {
        var x = Tensor.RandN(new Shape(1, 2, 4, 4), seed: 1).WithRequiresGrad();
        var w = Tensor.RandN(new Shape(3, 2, 3, 3), seed: 2).WithRequiresGrad();
        var b = Tensor.RandN(new Shape(3), seed: 3).WithRequiresGrad();
        Assert.Equal("Conv2d", x.Conv2d(w, b).OpName);
        Assert.Equal("Conv2d", x.Conv2d(w).OpName);
        using (Tensor.NoGrad())
        {
            Assert.Null(x.Conv2d(w, b).GradFn);
        }

        var g = Autodiff.Grad([x.Conv2d(w, b).Sum()], [x, w, b], createGraph: true);
        Assert.Equal("Conv2dBackwardInput", g[0].OpName);
        Assert.Equal("Conv2dBackwardWeight", g[1].OpName);
    }

    public static TheoryData<string, Func<Tensor>, Type, string> Errors()
    {
        var x = Tensor.Zeros(2, 3, 8, 8);
        var w = Tensor.Zeros(4, 3, 3, 3);
        var x1 = Tensor.Zeros(2, 3, 10);
        var w1 = Tensor.Zeros(4, 3, 3);
        var ae = typeof(ArgumentException);
        var aoor = typeof(ArgumentOutOfRangeException);
        return new()
        {
            { "input rank", () => Tensor.Zeros(3, 8, 8).Conv2d(w), ae, "Conv2d: the input must be 4-D [N, C_in, H, W], got shape [3, 8, 8]." },
            { "weight rank", () => x.Conv2d(Tensor.Zeros(4, 3, 3)), ae, "Conv2d: the weight must be 4-D [C_out, C_in / groups, kH, kW], got shape [4, 3, 3]." },
            { "channels", () => x.Conv2d(Tensor.Zeros(8, 4, 3, 3)), ae, "Conv2d: the input has 3 channels but the weight [8, 4, 3, 3] expects 4 (groups 1); the input is [2, 3, 8, 8]." },
            { "channels with groups", () => Tensor.Zeros(1, 4, 5, 5).Conv2d(Tensor.Zeros(4, 1, 3, 3), groups: 2), ae, "Conv2d: the input has 4 channels but the weight [4, 1, 3, 3] expects 2 (groups 2); the input is [1, 4, 5, 5]." },
            { "groups divide C_in", () => x.Conv2d(Tensor.Zeros(4, 1, 3, 3), groups: 2), ae, "Conv2d: groups 2 must divide the input channels, but the input [2, 3, 8, 8] has 3." },
            { "groups divide C_out", () => Tensor.Zeros(1, 4, 5, 5).Conv2d(Tensor.Zeros(3, 2, 3, 3), groups: 2), ae, "Conv2d: groups 2 must divide the output channels, but the weight [3, 2, 3, 3] has 3." },
            { "groups 0", () => x.Conv2d(w, groups: 0), aoor, "Conv2d: groups must be at least 1, got 0 (input [2, 3, 8, 8], weight [4, 3, 3, 3])." },
            { "stride 0", () => x.Conv2d(w, stride: 0), aoor, "Conv2d: the stride must be at least 1, got (0, 0) (input [2, 3, 8, 8], weight [4, 3, 3, 3])." },
            { "stride negative (tuple)", () => x.Conv2d(w, null, (1, -2)), aoor, "Conv2d: the stride must be at least 1, got (1, -2) (input [2, 3, 8, 8], weight [4, 3, 3, 3])." },
            { "dilation 0", () => x.Conv2d(w, dilation: 0), aoor, "Conv2d: the dilation must be at least 1, got (0, 0) (input [2, 3, 8, 8], weight [4, 3, 3, 3])." },
            { "padding negative", () => x.Conv2d(w, null, (1, 1), (-1, 0)), aoor, "Conv2d: the padding must not be negative, got (-1, 0) (input [2, 3, 8, 8], weight [4, 3, 3, 3])." },
            { "kernel too large", () => Tensor.Zeros(1, 3, 2, 8).Conv2d(w), ae, "Conv2d: the kernel (3, 3) with dilation (1, 1) spans (3, 3) but the padded input is only (2, 8) (input [1, 3, 2, 8], padding (0, 0)); the output would be empty." },
            { "dilated kernel too large", () => x.Conv2d(w, dilation: 5, padding: 1), ae, "Conv2d: the kernel (3, 3) with dilation (5, 5) spans (11, 11) but the padded input is only (10, 10) (input [2, 3, 8, 8], padding (1, 1)); the output would be empty." },
            { "mixed dtypes", () => x.Conv2d(w.To(DType.Float32)), ae, "Conv2d: mixed dtypes float64 (shape [2, 3, 8, 8]) and float32 (shape [4, 3, 3, 3]); convert one explicitly, e.g. b.To(DType.Float64)." },
            { "bias dtype", () => x.Conv2d(w, Tensor.Zeros(new Shape(4), DType.Float32)), ae, "Conv2d: mixed dtypes float64 (shape [2, 3, 8, 8]) and float32 (shape [4]); convert one explicitly, e.g. b.To(DType.Float64)." },
            { "int64 input", () => Tensor.Zeros(new Shape(2, 3, 8, 8), DType.Int64).Conv2d(w), ae, "Conv2d: expected a float64 or float32 tensor, got int64 (shape [2, 3, 8, 8]). Convert it with To(DType.Float64)." },
            { "bias shape", () => x.Conv2d(w, Tensor.Zeros(3)), ae, "Conv2d: the bias must have shape [4], one value per output channel of the weight [4, 3, 3, 3], got [3]." },
            { "bias rank", () => x.Conv2d(w, Tensor.Zeros(4, 1)), ae, "Conv2d: the bias must have shape [4], one value per output channel of the weight [4, 3, 3, 3], got [4, 1]." },
            { "Conv1d input rank", () => x.Conv1d(w1), ae, "Conv1d: the input must be 3-D [N, C_in, L], got shape [2, 3, 8, 8]." },
            { "Conv1d weight rank", () => x1.Conv1d(w), ae, "Conv1d: the weight must be 3-D [C_out, C_in / groups, k], got shape [4, 3, 3, 3]." },
            { "Conv1d channels", () => x1.Conv1d(Tensor.Zeros(4, 2, 3)), ae, "Conv1d: the input has 3 channels but the weight [4, 2, 3] expects 2 (groups 1); the input is [2, 3, 10]." },
            { "Conv1d stride", () => x1.Conv1d(w1, stride: -1), aoor, "Conv1d: the stride must be at least 1, got -1 (input [2, 3, 10], weight [4, 3, 3])." },
            { "Conv1d padding", () => x1.Conv1d(w1, padding: -2), aoor, "Conv1d: the padding must not be negative, got -2 (input [2, 3, 10], weight [4, 3, 3])." },
            { "Conv1d kernel too large", () => x1.Conv1d(Tensor.Zeros(4, 3, 12)), ae, "Conv1d: the kernel 12 with dilation 1 spans 12 but the padded input is only 10 (input [2, 3, 10], padding 0); the output would be empty." },
            { "Conv1d groups", () => x1.Conv1d(Tensor.Zeros(4, 1, 3), groups: 2), ae, "Conv1d: groups 2 must divide the input channels, but the input [2, 3, 10] has 3." },
        };
    }

    [Theory]
    [MemberData(nameof(Errors))]
    public void BadInputIsRejectedWithAMessageNamingIt(string what, Func<Tensor> call, Type type, string message)
    {
        var e = Assert.ThrowsAny<ArgumentException>(call);
        Assert.True(e.GetType() == type, $"{what}: {e.GetType().Name} instead of {type.Name}");
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheBackwardOperatorsRejectAGradientOfTheWrongShape()
    {
        var e = Assert.Throws<ArgumentException>(() => Convolution.Conv2dBackwardInput(Tensor.Zeros(1, 2, 3, 4), Tensor.Zeros(2, 2, 3, 3), new Shape(1, 2, 5, 5), (1, 1), (0, 0), (1, 1), 1));
        Assert.StartsWith("Conv2dBackwardInput: the output gradient has shape [1, 2, 3, 4] but the convolution's output is [1, 2, 3, 3].", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<ArgumentException>(() => Convolution.Conv2dBackwardWeight(Tensor.Zeros(1, 3, 3, 3), Tensor.Zeros(1, 2, 5, 5), new Shape(2, 2, 3, 3), (1, 1), (0, 0), (1, 1), 1));
        Assert.StartsWith("Conv2dBackwardWeight: the output gradient has shape [1, 3, 3, 3] but the convolution's output is [1, 2, 3, 3].", e.Message, StringComparison.Ordinal);
    }

    private static double Dot(double[] a, double[] b)
    {
        var s = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }

    private static void AssertClose(double[] expected, double[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = Math.Max(1.0, expected.Max(Math.Abs));
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale, $"{what}[{i}]: {actual[i]} instead of {expected[i]}");
        }
    }
}
