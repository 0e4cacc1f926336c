using System.Buffers;
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Convolutions as PyTorch's <c>torch.nn.functional.conv2d</c> and <c>conv1d</c> (cross-correlation, NCHW layout): with
/// stride, zero padding, dilation and groups (depthwise when <c>groups</c> equals the input channels). Each group of a
/// block of images is one matrix product: the receptive fields are copied into the columns of a matrix (im2col), the
/// images of the block side by side so that the product is wide enough for the blocked GEMM to run near its peak, and
/// multiplied by the group's weights; large batches are split among the cores. The gradient
/// for the input is a transposed convolution (the weights' transpose times the gradient, folded back onto the image)
/// and the gradient for the weights is the gradient times the transposed column matrix; both are operators with their
/// own backward rules, so second derivatives work.
/// </summary>
public static class Convolution
{
    extension(Tensor x)
    {
        /// <summary>
        /// The 2-D convolution of x [N, C_in, H, W] with <paramref name="weight"/> [C_out, C_in / groups, kH, kW], plus
        /// <paramref name="bias"/> [C_out] when given: <c>y[n, o, i, j] = b[o] + Σ_{c,p,q} w[o, c, p, q] ·
        /// x[n, g·C_in/groups + c, i·stride − padding + p·dilation, j·stride − padding + q·dilation]</c> for the group g of
        /// output channel o, with zeros outside the image. The result is [N, C_out, H_out, W_out], where
        /// <c>H_out = ⌊(H + 2·padding − dilation·(kH − 1) − 1) / stride⌋ + 1</c> (the same for W), as
        /// <c>torch.nn.functional.conv2d</c>.
        /// </summary>
        /// <param name="weight">The kernels, [C_out, C_in / groups, kH, kW], of x's dtype.</param>
        /// <param name="bias">One value per output channel, [C_out], or null for none.</param>
        /// <param name="stride">The step between windows, in both spatial dims (≥ 1).</param>
        /// <param name="padding">The zeros added on each side, in both spatial dims (≥ 0).</param>
        /// <param name="dilation">The spacing between kernel taps, in both spatial dims (≥ 1).</param>
        /// <param name="groups">The number of channel groups (≥ 1, dividing C_in and C_out); C_in for a depthwise convolution.</param>
        /// <remarks>The backward rules are in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is not 4-D or the weight not 4-D, mixed or non-float dtypes, groups that do not divide C_in or C_out, input channels that do not match the weight, a bias that is not [C_out], or a kernel larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">A stride, dilation or groups below 1, or a negative padding.</exception>
        public Tensor Conv2d(Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
            => Conv2d(x, weight, bias, (stride, stride), (padding, padding), (dilation, dilation), groups);

        /// <summary>
        /// The 2-D convolution with a stride, padding and dilation of their own for each spatial dim (H, W); otherwise as
        /// <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/>.
        /// </summary>
        /// <param name="weight">The kernels, [C_out, C_in / groups, kH, kW], of x's dtype.</param>
        /// <param name="bias">One value per output channel, [C_out], or null for none.</param>
        /// <param name="stride">The step between windows along H and along W (each ≥ 1).</param>
        /// <param name="padding">The zeros added on each side along H and along W (each ≥ 0); none when null.</param>
        /// <param name="dilation">The spacing between kernel taps along H and along W (each ≥ 1); 1 when null.</param>
        /// <param name="groups">The number of channel groups (≥ 1, dividing C_in and C_out).</param>
        /// <exception cref="ArgumentException">As for <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException">A stride, dilation or groups below 1, or a negative padding.</exception>
        public Tensor Conv2d(Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W)? padding = null, (int H, int W)? dilation = null, int groups = 1)
        {
            var args = new ConvArgs(stride.H, stride.W, padding?.H ?? 0, padding?.W ?? 0, dilation?.H ?? 1, dilation?.W ?? 1, groups);
            CheckDTypes("Conv2d", x, weight, bias);
            var geo = Validate("Conv2d", 2, x.Shape, weight.Shape, bias?.Shape, args);
            return Forward(x, weight, bias, geo);
        }

        /// <summary>
        /// The 1-D convolution of x [N, C_in, L] with <paramref name="weight"/> [C_out, C_in / groups, k], plus
        /// <paramref name="bias"/> [C_out] when given, as <c>torch.nn.functional.conv1d</c>: the result is
        /// [N, C_out, L_out] with <c>L_out = ⌊(L + 2·padding − dilation·(k − 1) − 1) / stride⌋ + 1</c>. It is computed as a
        /// <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/> of height 1, so its node on the tape is a Conv2d.
        /// </summary>
        /// <param name="weight">The kernels, [C_out, C_in / groups, k], of x's dtype.</param>
        /// <param name="bias">One value per output channel, [C_out], or null for none.</param>
        /// <param name="stride">The step between windows (≥ 1).</param>
        /// <param name="padding">The zeros added on each side (≥ 0).</param>
        /// <param name="dilation">The spacing between kernel taps (≥ 1).</param>
        /// <param name="groups">The number of channel groups (≥ 1, dividing C_in and C_out).</param>
        /// <exception cref="ArgumentException">x is not 3-D or the weight not 3-D, mixed or non-float dtypes, groups that do not divide C_in or C_out, input channels that do not match the weight, a bias that is not [C_out], or a kernel larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">A stride, dilation or groups below 1, or a negative padding.</exception>
        public Tensor Conv1d(Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        {
            var args = new ConvArgs(1, stride, 0, padding, 1, dilation, groups);
            CheckDTypes("Conv1d", x, weight, bias);
            var geo = Validate("Conv1d", 1, x.Shape, weight.Shape, bias?.Shape, args);
            return Forward(x.Unsqueeze(2), weight.Unsqueeze(2), bias, geo).Squeeze(2);
        }
    }

    /// <summary>
    /// The gradient of <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/> for its input: the transposed
    /// convolution of <paramref name="g"/> [N, C_out, H_out, W_out] with <paramref name="weight"/>, an input-shaped tensor
    /// (per image and group, col2im(W_gᵀ · g)). Linear in g and in the weight; its own rule uses Conv2d and
    /// <see cref="Conv2dBackwardWeight"/>, so it is differentiable to any order.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes that do not fit together, or mixed dtypes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A stride, dilation or groups below 1, or a negative padding.</exception>
    internal static Tensor Conv2dBackwardInput(Tensor g, Tensor weight, Shape inputShape, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        const string op = "Conv2dBackwardInput";
        var args = new ConvArgs(stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        CheckDTypes(op, g, weight, null);
        var geo = Validate(op, 2, inputShape, weight.Shape, null, args);
        return BackwardInput(g, weight, geo);
    }

    /// <summary>
    /// The gradient of <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/> for its weight: per group, the sum
    /// over the images of g · im2col(x)ᵀ, a tensor of shape <paramref name="weightShape"/>. Linear in g and in x; its own
    /// rule uses Conv2d and <see cref="Conv2dBackwardInput"/>, so it is differentiable to any order.
    /// </summary>
    /// <exception cref="ArgumentException">Shapes that do not fit together, or mixed dtypes.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A stride, dilation or groups below 1, or a negative padding.</exception>
    internal static Tensor Conv2dBackwardWeight(Tensor g, Tensor x, Shape weightShape, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        const string op = "Conv2dBackwardWeight";
        var args = new ConvArgs(stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        CheckDTypes(op, g, x, null);
        var geo = Validate(op, 2, x.Shape, weightShape, null, args);
        return BackwardWeight(g, x, geo);
    }

    /// <summary>Stride, padding and dilation along H and W, and the number of groups.</summary>
    private readonly record struct ConvArgs(int SH, int SW, int PH, int PW, int DH, int DW, int Groups)
    {
        public (int H, int W) Stride => (SH, SW);

        public (int H, int W) Padding => (PH, PW);

        public (int H, int W) Dilation => (DH, DW);
    }

    /// <summary>The sizes of a 2-D convolution: batch, channels, image, kernel, output, and its arguments.</summary>
    private readonly record struct Geometry(int N, int Cin, int H, int W, int Cout, int KH, int KW, int OH, int OW, ConvArgs Args)
    {
        public int Groups => Args.Groups;

        /// <summary>Input channels per group.</summary>
        public int Cg => Cin / Args.Groups;

        /// <summary>Output channels per group.</summary>
        public int Cog => Cout / Args.Groups;

        /// <summary>The inner size of each product: Cg·KH·KW.</summary>
        public int K => Cg * KH * KW;

        public int OutPlane => OH * OW;

        public int InPlane => H * W;

        public Shape InputShape => new(N, Cin, H, W);

        public Shape WeightShape => new(Cout, Cg, KH, KW);

        public Shape OutputShape => new(N, Cout, OH, OW);

        public ConvWindow Window => new(Cg, H, W, KH, KW, Args.SH, Args.SW, Args.PH, Args.PW, Args.DH, Args.DW, OH, OW);
    }

    /// <summary>Checks every argument (for a 1-D convolution when <paramref name="spatial"/> is 1) and returns the 2-D geometry.</summary>
    private static Geometry Validate(string op, int spatial, Shape x, Shape w, Shape? bias, ConvArgs a)
    {
        var rank = spatial + 2;
        var dimNames = spatial == 2 ? "H, W" : "L";
        var kNames = spatial == 2 ? "kH, kW" : "k";
        if (x.Rank != rank)
        {
            throw new ArgumentException($"{op}: the input must be {rank}-D [N, C_in, {dimNames}], got shape {x}.", nameof(x));
        }

        if (w.Rank != rank)
        {
            throw new ArgumentException($"{op}: the weight must be {rank}-D [C_out, C_in / groups, {kNames}], got shape {w}.");
        }

        string Pair(int h, int wv) => spatial == 2 ? $"({h}, {wv})" : $"{wv}";
        if (a.SH <= 0 || a.SW <= 0)
        {
            throw new ArgumentOutOfRangeException($"{op}: the stride must be at least 1, got {Pair(a.SH, a.SW)} (input {x}, weight {w}).", (Exception?)null);
        }

        if (a.DH <= 0 || a.DW <= 0)
        {
            throw new ArgumentOutOfRangeException($"{op}: the dilation must be at least 1, got {Pair(a.DH, a.DW)} (input {x}, weight {w}).", (Exception?)null);
        }

        if (a.PH < 0 || a.PW < 0)
        {
            throw new ArgumentOutOfRangeException($"{op}: the padding must not be negative, got {Pair(a.PH, a.PW)} (input {x}, weight {w}).", (Exception?)null);
        }

        if (a.Groups <= 0)
        {
            throw new ArgumentOutOfRangeException($"{op}: groups must be at least 1, got {a.Groups} (input {x}, weight {w}).", (Exception?)null);
        }

        var cin = x[1];
        var cout = w[0];
        if (cin % a.Groups != 0)
        {
            throw new ArgumentException($"{op}: groups {a.Groups} must divide the input channels, but the input {x} has {cin}.");
        }

        if (cout % a.Groups != 0)
        {
            throw new ArgumentException($"{op}: groups {a.Groups} must divide the output channels, but the weight {w} has {cout}.");
        }

        if (w[1] * a.Groups != cin)
        {
            throw new ArgumentException($"{op}: the input has {cin} channels but the weight {w} expects {w[1] * a.Groups} (groups {a.Groups}); the input is {x}.");
        }

        if (bias is not null && (bias.Rank != 1 || bias[0] != cout))
        {
            throw new ArgumentException($"{op}: the bias must have shape [{cout}], one value per output channel of the weight {w}, got {bias}.", nameof(bias));
        }

        var (h, wd) = spatial == 2 ? (x[2], x[3]) : (1, x[2]);
        var (kh, kw) = spatial == 2 ? (w[2], w[3]) : (1, w[2]);
        var spanH = (a.DH * (kh - 1)) + 1;
        var spanW = (a.DW * (kw - 1)) + 1;
        var padH = h + (2 * a.PH);
        var padW = wd + (2 * a.PW);
        if (kh == 0 || kw == 0 || spanH > padH || spanW > padW)
        {
            throw new ArgumentException(
                $"{op}: the kernel {Pair(kh, kw)} with dilation {Pair(a.DH, a.DW)} spans {Pair(spanH, spanW)} but the padded input is only {Pair(padH, padW)} (input {x}, padding {Pair(a.PH, a.PW)}); the output would be empty.");
        }

        var oh = ((padH - spanH) / a.SH) + 1;
        var ow = ((padW - spanW) / a.SW) + 1;
        return new Geometry(x[0], cin, h, wd, cout, kh, kw, oh, ow, a);
    }

    private static void CheckDTypes(string op, Tensor x, Tensor w, Tensor? bias)
    {
        Dispatch.RequireSameDType(x, w, op);
        if (bias is not null)
        {
            Dispatch.RequireSameDType(x, bias, op);
        }
    }

    private static Tensor Forward(Tensor x, Tensor w, Tensor? bias, Geometry geo)
    {
        var y = Tensor.Uninitialized(geo.OutputShape, x.DType);
        if (y.ElementCount > 0)
        {
            Dispatch.ByFloatType(x.DType, new ConvWork(Pass.Forward, geo, x, w, null, bias, y, null, null, null));
        }

        if (bias is null ? Tensor.ShouldRecord(x, w) : Tensor.ShouldRecord([x, w, bias]))
        {
            y.SetGradFn(new Conv2dNode(x, w, bias, geo.Args));
        }

        return y;
    }

    private static Tensor BackwardInput(Tensor g, Tensor w, Geometry geo)
    {
        const string op = "Conv2dBackwardInput";
        RequireShape(op, g, geo.OutputShape);
        var dx = InputGradient(geo, g, w.DType);
        if (g.ElementCount > 0)
        {
            Dispatch.ByFloatType(w.DType, new ConvWork(Pass.Backward, geo, null, w, g, null, null, dx, null, null));
        }

        if (Tensor.ShouldRecord(g, w))
        {
            dx.SetGradFn(new BackwardNode("Conv2dBackwardInput", g, w, geo.Args));
        }

        return dx;
    }

    private static Tensor BackwardWeight(Tensor g, Tensor x, Geometry geo)
    {
        const string op = "Conv2dBackwardWeight";
        RequireShape(op, g, geo.OutputShape);
        var dw = Tensor.Empty(geo.WeightShape, x.DType);
        if (g.ElementCount > 0 && dw.ElementCount > 0)
        {
            Dispatch.ByFloatType(x.DType, new ConvWork(Pass.Backward, geo, x, null, g, null, null, null, dw, null));
        }

        if (Tensor.ShouldRecord(g, x))
        {
            dw.SetGradFn(new BackwardNode("Conv2dBackwardWeight", g, x, geo.Args));
        }

        return dw;
    }

    /// <summary>
    /// The gradients a Conv2d node needs, in one pass over the batch when nothing is recorded: the output gradient of each
    /// block of images is laid out once and serves the input's gradient, the weight's and the bias's. Null for those not
    /// asked for.
    /// </summary>
    private static (Tensor? Dx, Tensor? Dw, Tensor? Db) BackwardAll(Tensor g, Tensor x, Tensor w, Geometry geo, bool input, bool weight, bool bias)
    {
        var dx = input ? InputGradient(geo, g, x.DType) : null;
        var dw = weight ? Tensor.Empty(geo.WeightShape, x.DType) : null;
        var db = bias ? Tensor.Empty(new Shape(geo.Cout), x.DType) : null;
        if (g.ElementCount > 0)
        {
            Dispatch.ByFloatType(x.DType, new ConvWork(Pass.Backward, geo, x, w, g, null, null, dx, dw, db));
        }

        return (dx, dw, db);
    }

    /// <summary>
    /// The tensor the input's gradient is folded into: left uninitialised when the kernel will clear each image's part
    /// (on the thread that folds it), zeros when g is empty (no output channel) and the kernel does not run.
    /// </summary>
    private static Tensor InputGradient(Geometry geo, Tensor g, DType dtype)
        => g.ElementCount > 0 ? Tensor.Uninitialized(geo.InputShape, dtype) : Tensor.Empty(geo.InputShape, dtype);

    private static void RequireShape(string op, Tensor g, Shape expected)
    {
        if (g.Shape != expected)
        {
            throw new ArgumentException($"{op}: the output gradient has shape {g.Shape} but the convolution's output is {expected}.", nameof(g));
        }
    }

    private enum Pass
    {
        /// <summary>y = W ⋆ x + b.</summary>
        Forward,

        /// <summary>
        /// From g, those of dx = col2im(Wᵀ · g), dW = Σ_n g · im2col(x)ᵀ and db = Σ_{n,h,w} g whose result tensor is given.
        /// </summary>
        Backward,
    }

    /// <summary>An operand or result of a convolution kernel: a tensor's array and offset (no array when absent).</summary>
    private readonly record struct Operand<T>(T[]? Data, int Offset)
    {
        public static Operand<T> Of(Tensor? t) => t is null ? default : new((T[])t.Storage, t.Offset);

        /// <summary>The array, for an operand the pass requires.</summary>
        public T[] Array => Data!;
    }

    private readonly struct ConvWork(Pass pass, Geometry geo, Tensor? x, Tensor? w, Tensor? g, Tensor? bias, Tensor? y, Tensor? dx, Tensor? dw, Tensor? db) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
        {
            var work = (long)geo.N * geo.Cout * geo.K * geo.OutPlane;
            var chunks = geo.N > 1 && Gemm.MaxThreads > 1 && Workers.CanSplit && work >= Gemm.ParallelThreshold
                ? Math.Min(geo.N, Gemm.MaxThreads)
                : 1;
            var weightSums = dw is not null && chunks > 1 ? new T[chunks][] : null;
            var biasSums = db is not null ? new double[chunks * geo.Cout] : null;
            var job = new ConvJob<T>(
                pass,
                geo,
                Operand<T>.Of(x),
                Operand<T>.Of(w),
                Operand<T>.Of(g),
                Operand<T>.Of(bias),
                Operand<T>.Of(y),
                Operand<T>.Of(dx),
                Operand<T>.Of(dw),
                chunks,
                weightSums,
                biasSums);
            Workers.For(chunks, chunks, job);
            if (weightSums is not null)
            {
                var total = dw!.Span<T>();
                for (var c = 1; c < chunks; c++)
                {
                    TensorPrimitives.Add(total, weightSums[c], total);
                }
            }

            if (biasSums is not null)
            {
                var total = db!.Span<T>();
                for (var o = 0; o < geo.Cout; o++)
                {
                    var sum = 0.0;
                    for (var c = 0; c < chunks; c++)
                    {
                        sum += biasSums[(c * geo.Cout) + o];
                    }

                    total[o] = T.CreateTruncating(sum);
                }
            }
        }
    }

    /// <summary>
    /// Chunks [start, end) of the batch, each a run of consecutive images done on one thread (or, with a single chunk,
    /// with the GEMM itself split among the threads). A chunk goes through its images in blocks of a few: the column
    /// matrices of a block's images sit side by side in one matrix [K, nb·plane], so that each product is nb times wider
    /// (a product over a single image of a small plane runs the GEMM far from its peak). The output (forward) or the
    /// gradient g (backward) is then copied between the tensor's [nb, C_out, plane] layout and the product's
    /// [C_out, nb·plane]; in the backward pass that copy of g serves the weight's, the bias's and the input's gradients.
    /// For the weight gradient every chunk but the first sums into a buffer of its own, added to the result afterwards;
    /// for the bias each chunk sums its channels in float64.
    /// </summary>
    private readonly struct ConvJob<T>(Pass pass, Geometry geo, Operand<T> x, Operand<T> w, Operand<T> g, Operand<T> bias, Operand<T> y, Operand<T> dx, Operand<T> dw, int chunks, T[][]? weightSums, double[]? biasSums) : IRangeJob
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        /// <summary>The columns a block's product aims at (nb·plane): wide enough for the GEMM to run near its peak.</summary>
        private const int TargetColumns = 2048;

        /// <summary>The most elements of a block's column matrix (K·nb·plane), so that it stays in the outer caches.</summary>
        private const int MaxColumnElements = 1 << 20;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Run(int start, int end)
        {
            for (var c = start; c < end; c++)
            {
                Chunk(c);
            }
        }

        /// <summary>The images per block for a chunk of <paramref name="count"/> images: blocks of equal size, as wide as allowed.</summary>
        private int BlockSize(int count)
        {
            var plane = geo.OutPlane;
            var byColumns = Math.Max(1, TargetColumns / plane);
            var byElements = (int)Math.Max(1, MaxColumnElements / ((long)geo.K * plane));
            var most = Math.Min(Math.Min(byColumns, byElements), count);
            var blocks = (count + most - 1) / most;
            return (count + blocks - 1) / blocks;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void Chunk(int chunk)
        {
            var first = (int)((long)chunk * geo.N / chunks);
            var last = (int)((long)(chunk + 1) * geo.N / chunks);
            if (last <= first)
            {
                return;
            }

            var threads = chunks > 1 ? 1 : 0;
            var nbMax = BlockSize(last - first);
            var forward = pass == Pass.Forward;

            // A forward block of several images with a bias multiplies [W | b] by the column matrix with a row of ones
            // below it, so the product writes the biased output straight into y.
            var biasRow = forward && nbMax > 1 && bias.Data is not null;
            var col = ArrayPool<T>.Shared.Rent((geo.K + (biasRow ? 1 : 0)) * nbMax * geo.OutPlane);
            var wide = nbMax > 1 && !forward ? ArrayPool<T>.Shared.Rent(geo.Cog * nbMax * geo.OutPlane) : null;
            var weightBias = biasRow ? WithBias() : null;
            var weight = dw.Data is not null;
            var target = weight ? (chunk > 0 ? weightSums![chunk] = new T[geo.Cout * geo.K] : dw.Array) : null;

            // The weight gradient is computed transposed, [K, Cog] per group (col · gᵀ), and transposed at the end: the GEMM
            // then packs g, the shorter operand, transposed, and runs the column matrix through as it is.
            var sums = weight ? ArrayPool<T>.Shared.Rent(geo.Cout * geo.K) : null;
            try
            {
                for (var n = first; n < last; n += nbMax)
                {
                    var nb = Math.Min(nbMax, last - n);
                    for (var gi = 0; gi < geo.Groups; gi++)
                    {
                        if (forward)
                        {
                            ForwardBlock(n, nb, gi, col, weightBias, threads);
                        }
                        else
                        {
                            BackwardBlock(n, nb, gi, col, wide, sums, accumulate: n > first, chunk, threads);
                        }
                    }
                }

                if (weight)
                {
                    for (var gi = 0; gi < geo.Groups; gi++)
                    {
                        var off = gi * geo.Cog * geo.K;
                        for (var r = 0; r < geo.K; r++)
                        {
                            for (var o = 0; o < geo.Cog; o++)
                            {
                                target![off + (o * geo.K) + r] = sums![off + (r * geo.Cog) + o];
                            }
                        }
                    }
                }
            }
            finally
            {
                ArrayPool<T>.Shared.Return(col);
                if (wide is not null)
                {
                    ArrayPool<T>.Shared.Return(wide);
                }

                if (sums is not null)
                {
                    ArrayPool<T>.Shared.Return(sums);
                }

                if (weightBias is not null)
                {
                    ArrayPool<T>.Shared.Return(weightBias);
                }
            }
        }

        /// <summary>The weight with the bias as one more column, [C_out, K + 1].</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private T[] WithBias()
        {
            var k = geo.K;
            var result = ArrayPool<T>.Shared.Rent(geo.Cout * (k + 1));
            for (var o = 0; o < geo.Cout; o++)
            {
                w.Array.AsSpan(w.Offset + (o * k), k).CopyTo(result.AsSpan(o * (k + 1), k));
                result[(o * (k + 1)) + k] = bias.Array[bias.Offset + o];
            }

            return result;
        }

        /// <summary>
        /// The column matrix [K, nb·plane] of group gi of images [n, n + nb) of x, built in <paramref name="col"/>; for a
        /// single image of a pointwise convolution, the image itself.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private ReadOnlyMemory<T> Expand(int n, int nb, int gi, T[] col)
        {
            var plane = geo.OutPlane;
            var ld = nb * plane;
            var length = geo.Cg * geo.InPlane;
            if (nb == 1 && geo.Window.IsPointwise)
            {
                return new(x.Array, x.Offset + (((n * geo.Cin) + (gi * geo.Cg)) * geo.InPlane), length);
            }

            for (var i = 0; i < nb; i++)
            {
                var start = x.Offset + ((((n + i) * geo.Cin) + (gi * geo.Cg)) * geo.InPlane);
                Im2Col.Expand<T>(geo.Window, x.Array.AsSpan(start, length), col.AsSpan(i * plane, ((geo.K - 1) * ld) + plane), ld);
            }

            return new(col, 0, geo.K * ld);
        }

        /// <summary>
        /// The output channels of group gi of images [n, n + nb) of g side by side, [Cog, nb·plane]: g itself when nb is 1,
        /// else copied into <paramref name="wide"/>.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private ReadOnlyMemory<T> Gradient(int n, int nb, int gi, T[]? wide)
        {
            var plane = geo.OutPlane;
            var rows = geo.Cog * plane;
            if (nb == 1)
            {
                return new(g.Array, g.Offset + (((n * geo.Cout) + (gi * geo.Cog)) * plane), rows);
            }

            var ld = nb * plane;
            for (var i = 0; i < nb; i++)
            {
                var gOff = g.Offset + ((((n + i) * geo.Cout) + (gi * geo.Cog)) * plane);
                for (var o = 0; o < geo.Cog; o++)
                {
                    g.Array.AsSpan(gOff + (o * plane), plane).CopyTo(wide.AsSpan((o * ld) + (i * plane), plane));
                }
            }

            return new(wide, 0, geo.Cog * ld);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void ForwardBlock(int n, int nb, int gi, T[] col, T[]? weightBias, int threads)
        {
            var plane = geo.OutPlane;
            var ld = nb * plane;
            var cols = Expand(n, nb, gi, col);
            var result = y.Array;
            var yOff = ((n * geo.Cout) + (gi * geo.Cog)) * plane;
            if (nb == 1)
            {
                var wMem = new ReadOnlyMemory<T>(w.Array, w.Offset + (gi * geo.Cog * geo.K), geo.Cog * geo.K);
                if (bias.Data is { } b)
                {
                    for (var o = 0; o < geo.Cog; o++)
                    {
                        result.AsSpan(yOff + (o * plane), plane).Fill(b[bias.Offset + (gi * geo.Cog) + o]);
                    }
                }

                Gemm.Product<T>(false, false, geo.Cog, plane, geo.K, wMem, geo.K, cols, plane, new(result, yOff, geo.Cog * plane), plane, accumulate: bias.Data is not null, threads: threads);
                return;
            }

            // The product's columns are the images' planes side by side; each plane of nb goes to its own image of y.
            var cSpan = result.AsSpan(yOff, ((nb - 1) * geo.Cout * plane) + (geo.Cog * plane));
            if (weightBias is not null)
            {
                var k = geo.K + 1;
                col.AsSpan(geo.K * ld, ld).Fill(T.One);
                Gemm.SerialSegments<T>(geo.Cog, ld, k, weightBias.AsSpan(gi * geo.Cog * k, geo.Cog * k), k, col.AsSpan(0, k * ld), ld, cSpan, plane, plane, geo.Cout * plane);
            }
            else
            {
                Gemm.SerialSegments<T>(geo.Cog, ld, geo.K, w.Array.AsSpan(w.Offset + (gi * geo.Cog * geo.K), geo.Cog * geo.K), geo.K, cols.Span, ld, cSpan, plane, plane, geo.Cout * plane);
            }
        }

        /// <summary>
        /// Group gi of images [n, n + nb): adds the bias's sums to the chunk's, adds (or, for the first block, writes) the
        /// transposed weight gradient col · gᵀ [K, Cog] to <paramref name="sums"/> at the group's offset, and writes the
        /// input's gradient col2im(Wᵀ · g). The column matrix of x is used before <paramref name="col"/> receives Wᵀ · g.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private void BackwardBlock(int n, int nb, int gi, T[] col, T[]? wide, T[]? sums, bool accumulate, int chunk, int threads)
        {
            var plane = geo.OutPlane;
            var ld = nb * plane;
            var gw = Gradient(n, nb, gi, wide);
            if (biasSums is not null)
            {
                var span = gw.Span;
                for (var o = 0; o < geo.Cog; o++)
                {
                    biasSums[(chunk * geo.Cout) + (gi * geo.Cog) + o] += double.CreateTruncating(TensorPrimitives.Sum(span.Slice(o * ld, ld)));
                }
            }

            if (sums is not null)
            {
                var cols = Expand(n, nb, gi, col);
                var dst = new Memory<T>(sums, gi * geo.Cog * geo.K, geo.Cog * geo.K);
                Gemm.Product<T>(false, true, geo.K, geo.Cog, ld, cols, ld, gw, ld, dst, geo.Cog, accumulate: accumulate, threads: threads);
            }

            if (dx.Data is not { } result)
            {
                return;
            }

            var wMem = new ReadOnlyMemory<T>(w.Array, w.Offset + (gi * geo.Cog * geo.K), geo.Cog * geo.K);
            var length = geo.Cg * geo.InPlane;
            if (nb == 1 && geo.Window.IsPointwise)
            {
                // The columns are the image, so the product is the gradient itself.
                var dxOff = ((n * geo.Cin) + (gi * geo.Cg)) * geo.InPlane;
                Gemm.Product<T>(true, false, geo.K, plane, geo.Cog, wMem, geo.K, gw, plane, new(result, dxOff, length), plane, threads: threads);
                return;
            }

            Gemm.Product<T>(true, false, geo.K, ld, geo.Cog, wMem, geo.K, gw, ld, new(col, 0, geo.K * ld), ld, threads: threads);
            for (var i = 0; i < nb; i++)
            {
                var dxOff = (((n + i) * geo.Cin) + (gi * geo.Cg)) * geo.InPlane;
                var image = result.AsSpan(dxOff, length);
                image.Clear();
                Im2Col.Fold<T>(geo.Window, col.AsSpan(i * plane, ((geo.K - 1) * ld) + plane), image, ld);
            }
        }
    }

    private static Tensor[] Inputs(Tensor x, Tensor w, Tensor? bias) => bias is null ? [x, w] : [x, w, bias];

    // The convolution is bilinear in x and W, so each gradient is the other backward operator or the convolution
    // itself, with the same stride, padding, dilation and groups.
    [Rule("Conv2d", Forward = "y = W ⋆ x + b (per image and group: W_g · im2col(x_g))", Backward = "dx = Conv2dBackwardInput(g, W), dW = Conv2dBackwardWeight(g, x), db = Σ_{n,h,w} g", Saves = "x, w", Tangent = "ẏ = Ẇ ⋆ x + W ⋆ ẋ + ḃ")]
    private sealed class Conv2dNode : Node
    {
        private readonly ConvArgs _args;
        private readonly bool _hasBias;

        public Conv2dNode(Tensor x, Tensor w, Tensor? bias, ConvArgs args)
            : base("Conv2d", Inputs(x, w, bias))
        {
            _args = args;
            _hasBias = bias is not null;
            Save(x, w);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            var w = Saved(1);
            var a = _args;
            if (!GradMode.IsEnabled && ForwardMode.Level == 0 && (NeedsInputGrad(0) || NeedsInputGrad(1)))
            {
                // Nothing is recorded: one pass over the batch gives every gradient asked for.
                var geo = Validate("Conv2d", 2, x.Shape, w.Shape, null, a);
                RequireShape("Conv2d", g, geo.OutputShape);
                (grads[0], grads[1], var db) = BackwardAll(g, x, w, geo, NeedsInputGrad(0), NeedsInputGrad(1), _hasBias && NeedsInputGrad(2));
                if (db is not null)
                {
                    grads[2] = db;
                }

                return;
            }

            if (NeedsInputGrad(0))
            {
                grads[0] = Conv2dBackwardInput(g, w, x.Shape, a.Stride, a.Padding, a.Dilation, a.Groups);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = Conv2dBackwardWeight(g, x, w.Shape, a.Stride, a.Padding, a.Dilation, a.Groups);
            }

            if (_hasBias && NeedsInputGrad(2))
            {
                grads[2] = g.Sum([0, 2, 3]);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var a = _args;
            var bias = _hasBias ? t[2] : null;
            Tensor? result = null;
            if (t[0] is { } tx)
            {
                result = tx.Conv2d(Saved(1), bias, a.Stride, a.Padding, a.Dilation, a.Groups);
                bias = null;
            }

            if (t[1] is { } tw)
            {
                var fromW = Saved(0).Conv2d(tw, bias, a.Stride, a.Padding, a.Dilation, a.Groups);
                result = result is null ? fromW : result + fromW;
                bias = null;
            }

            return bias is null ? result : Tangents.To(bias.Reshape(bias.Shape[0], 1, 1), y.Shape);
        }
    }

    // Both backward operators are bilinear in (g, other), where other is W for the input's and x for the weight's:
    // ⟨dx, gg⟩ = ⟨g, conv(gg, W)⟩ and ⟨dW, gg⟩ = ⟨g, conv(x, gg)⟩, so each one's rule is Conv2d and the other operator.
    [Rule("Conv2dBackwardInput", Forward = "dx = col2im(Wᵀ · g) (transposed convolution)", Backward = "dg = Conv2d(gg, W), dW = Conv2dBackwardWeight(g, gg)", Saves = "g, w", Tangent = "ḋx = Conv2dBackwardInput(ġ, W) + Conv2dBackwardInput(g, Ẇ)")]
    [Rule("Conv2dBackwardWeight", Forward = "dW = Σ_n g · im2col(x)ᵀ", Backward = "dg = Conv2d(x, gg), dx = Conv2dBackwardInput(g, gg)", Saves = "g, x", Tangent = "ḋW = Conv2dBackwardWeight(ġ, x) + Conv2dBackwardWeight(g, ẋ)")]
    private sealed class BackwardNode : Node
    {
        private readonly ConvArgs _args;

        public BackwardNode(string name, Tensor g, Tensor other, ConvArgs args)
            : base(name, g, other)
        {
            _args = args;
            Save(g, other);
        }

        protected internal override void Backward(Tensor gg, Tensor?[] grads)
        {
            var g = Saved(0);
            var other = Saved(1);
            var a = _args;
            var ofInput = Name == "Conv2dBackwardInput";
            if (NeedsInputGrad(0))
            {
                grads[0] = ofInput ? gg.Conv2d(other, null, a.Stride, a.Padding, a.Dilation, a.Groups) : other.Conv2d(gg, null, a.Stride, a.Padding, a.Dilation, a.Groups);
            }

            if (NeedsInputGrad(1))
            {
                grads[1] = ofInput
                    ? Conv2dBackwardWeight(g, gg, other.Shape, a.Stride, a.Padding, a.Dilation, a.Groups)
                    : Conv2dBackwardInput(g, gg, other.Shape, a.Stride, a.Padding, a.Dilation, a.Groups);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var a = _args;
            var ofInput = Name == "Conv2dBackwardInput";
            Tensor Apply(Tensor g, Tensor other) => ofInput
                ? Conv2dBackwardInput(g, other, y.Shape, a.Stride, a.Padding, a.Dilation, a.Groups)
                : Conv2dBackwardWeight(g, other, y.Shape, a.Stride, a.Padding, a.Dilation, a.Groups);

            var fromG = t[0] is { } tg ? Apply(tg, Saved(1)) : null;
            var fromOther = t[1] is { } to ? Apply(Saved(0), to) : null;
            return Tangents.Sum(fromG, fromOther, y);
        }
    }
}
