using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// 2-D pooling over the last two dims of an NCHW (or CHW) tensor, as PyTorch's functional forms: <c>MaxPool2d</c>,
/// <c>AvgPool2d</c> and <c>AdaptiveAvgPool2d</c>. The output size along each dim is ⌊(size + 2·padding − kernel) /
/// stride⌋ + 1 (no ceil mode, no dilation). Padding must be at most half the kernel, as in PyTorch; max pooling pads
/// with −∞.
/// </summary>
public static class Pooling
{
    extension(Tensor x)
    {
        /// <summary>
        /// Max pooling with a square kernel, as <c>torch.nn.functional.max_pool2d</c>: each output is the largest value
        /// of its window. The stride defaults to the kernel size. Of tied maxima the first in row-major order gets the
        /// gradient, as in PyTorch.
        /// </summary>
        /// <param name="kernelSize">The window's height and width.</param>
        /// <param name="stride">The step between windows; the kernel size when null.</param>
        /// <param name="padding">The −∞ padding added on each side of both spatial dims.</param>
        /// <remarks>The gradient is scattered to the positions of the maxima; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4, or the kernel is larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The kernel size or stride is not positive, or the padding is negative or more than half the kernel.</exception>
        public Tensor MaxPool2d(int kernelSize, int? stride = null, int padding = 0)
            => x.MaxPool2d((kernelSize, kernelSize), stride is { } s ? (s, s) : null, (padding, padding));

        /// <summary>Max pooling with a (height, width) kernel, stride and padding; see <see cref="MaxPool2d(Tensor, int, int?, int)"/>.</summary>
        /// <param name="kernelSize">The window's (height, width).</param>
        /// <param name="stride">The (vertical, horizontal) step; the kernel size when null.</param>
        /// <param name="padding">The (vertical, horizontal) −∞ padding on each side.</param>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4, or the kernel is larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The kernel size or stride is not positive, or the padding is negative or more than half the kernel.</exception>
        public Tensor MaxPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default)
        {
            const string op = "MaxPool2d";
            var (p, outShape) = Geometry(op, x, kernelSize, stride, padding);
            var y = Tensor.Uninitialized(outShape, x.DType);
            var indices = Tensor.Uninitialized(new Shape(p.Planes, p.OutPlaneSize), DType.Int64);
            Dispatch.ByFloatType(x.DType, new MaxWork(x, y, indices, p));

            if (Tensor.ShouldRecord(x))
            {
                y.SetGradFn(new MaxPoolNode(x, indices, p));
            }

            return y;
        }

        /// <summary>
        /// Average pooling with a square kernel, as <c>torch.nn.functional.avg_pool2d</c>: each output is the mean of its
        /// window. The stride defaults to the kernel size.
        /// </summary>
        /// <param name="kernelSize">The window's height and width.</param>
        /// <param name="stride">The step between windows; the kernel size when null.</param>
        /// <param name="padding">The zero padding added on each side of both spatial dims.</param>
        /// <param name="countIncludePad">Divide by the kernel area (true, PyTorch's default) or by the number of input elements in the window.</param>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4, or the kernel is larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The kernel size or stride is not positive, or the padding is negative or more than half the kernel.</exception>
        public Tensor AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true)
            => x.AvgPool2d((kernelSize, kernelSize), stride is { } s ? (s, s) : null, (padding, padding), countIncludePad);

        /// <summary>Average pooling with a (height, width) kernel, stride and padding; see <see cref="AvgPool2d(Tensor, int, int?, int, bool)"/>.</summary>
        /// <param name="kernelSize">The window's (height, width).</param>
        /// <param name="stride">The (vertical, horizontal) step; the kernel size when null.</param>
        /// <param name="padding">The (vertical, horizontal) zero padding on each side.</param>
        /// <param name="countIncludePad">Divide by the kernel area or by the number of input elements in the window.</param>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4, or the kernel is larger than the padded input.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The kernel size or stride is not positive, or the padding is negative or more than half the kernel.</exception>
        public Tensor AvgPool2d((int H, int W) kernelSize, (int H, int W)? stride = null, (int H, int W) padding = default, bool countIncludePad = true)
        {
            const string op = "AvgPool2d";
            var (p, outShape) = Geometry(op, x, kernelSize, stride, padding);
            return Average(x, p, outShape, countIncludePad);
        }

        /// <summary>
        /// Adaptive average pooling to an <paramref name="outputSize"/>×<paramref name="outputSize"/> output, as
        /// <c>torch.nn.functional.adaptive_avg_pool2d</c>. Size 1 is the mean over the spatial dims (global average
        /// pooling); a size that divides both spatial dims is average pooling with kernel and stride size / outputSize.
        /// </summary>
        /// <param name="outputSize">The output's height and width.</param>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4.</exception>
        /// <exception cref="ArgumentOutOfRangeException">The output size is not positive.</exception>
        /// <exception cref="NotSupportedException">An output size above 1 that does not divide the input's height and width (uneven windows).</exception>
        public Tensor AdaptiveAvgPool2d(int outputSize) => x.AdaptiveAvgPool2d((outputSize, outputSize));

        /// <summary>Adaptive average pooling to a (height, width) output; see <see cref="AdaptiveAvgPool2d(Tensor, int)"/>.</summary>
        /// <param name="outputSize">The output's (height, width).</param>
        /// <exception cref="ArgumentException">x is not float32/float64 of rank 3 or 4.</exception>
        /// <exception cref="ArgumentOutOfRangeException">An output size is not positive.</exception>
        /// <exception cref="NotSupportedException">An output size above 1 that does not divide the input's size in that dim (uneven windows).</exception>
        public Tensor AdaptiveAvgPool2d((int H, int W) outputSize)
        {
            const string op = "AdaptiveAvgPool2d";
            RequireInput(op, x);
            var (h, w) = (x.Shape[-2], x.Shape[-1]);
            if (outputSize.H <= 0 || outputSize.W <= 0)
            {
                throw new ArgumentOutOfRangeException(nameof(outputSize), $"{op}: the output size must be positive, got ({outputSize.H}, {outputSize.W}) (input {x.Shape}).");
            }

            if (outputSize == (1, 1))
            {
                return x.Mean([-2, -1], keepDim: true);
            }

            if (h % outputSize.H != 0 || w % outputSize.W != 0)
            {
                throw new NotSupportedException(
                    $"{op}: output size ({outputSize.H}, {outputSize.W}) does not divide the input's spatial size ({h}, {w}) (input {x.Shape}); only output size 1 or sizes that divide the input are supported.");
            }

            var k = (h / outputSize.H, w / outputSize.W);
            return x.AvgPool2d(k, k, (0, 0));
        }
    }

    /// <summary>The adjoint of average pooling: spreads each value of g evenly over its window (the gradient of <c>AvgPool2d</c>).</summary>
    internal static Tensor AvgPool2dBackward(Tensor g, Shape inputShape, PoolGeometry p, bool countIncludePad)
        => Average(g, p, inputShape, countIncludePad, adjoint: true);

    /// <summary>Average pooling of x into <paramref name="outShape"/>, or with <paramref name="adjoint"/> its adjoint (x is then a gradient).</summary>
    private static Tensor Average(Tensor x, PoolGeometry p, Shape outShape, bool countIncludePad, bool adjoint = false)
    {
        var y = Tensor.Uninitialized(outShape, x.DType);
        Dispatch.ByFloatType(x.DType, new AvgWork(x, y, p, countIncludePad, adjoint));

        if (Tensor.ShouldRecord(x))
        {
            y.SetGradFn(new AvgPoolNode(adjoint ? "AvgPool2dBackward" : "AvgPool2d", x, p, countIncludePad));
        }

        return y;
    }

    private static void RequireInput(string op, Tensor x)
    {
        Dispatch.RequireFloat(x, op);
        if (x.Rank is not (3 or 4))
        {
            throw new ArgumentException($"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x.Shape} (rank {x.Rank}).", nameof(x));
        }
    }

    private static (PoolGeometry Geometry, Shape OutShape) Geometry(string op, Tensor x, (int H, int W) kernel, (int H, int W)? stride, (int H, int W) padding)
    {
        RequireInput(op, x);
        var s = stride ?? kernel;
        if (kernel.H <= 0 || kernel.W <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(kernel), $"{op}: the kernel size must be positive, got ({kernel.H}, {kernel.W}) (input {x.Shape}).");
        }

        if (s.H <= 0 || s.W <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(stride), $"{op}: the stride must be positive, got ({s.H}, {s.W}) (input {x.Shape}, kernel ({kernel.H}, {kernel.W})).");
        }

        if (padding.H < 0 || padding.W < 0 || padding.H > kernel.H / 2 || padding.W > kernel.W / 2)
        {
            throw new ArgumentOutOfRangeException(nameof(padding),
                $"{op}: the padding must be between 0 and half the kernel size, got padding ({padding.H}, {padding.W}) for kernel ({kernel.H}, {kernel.W}) (input {x.Shape}).");
        }

        var (h, w) = (x.Shape[-2], x.Shape[-1]);
        var oh = ((h + (2 * padding.H) - kernel.H) / s.H) + 1;
        var ow = ((w + (2 * padding.W) - kernel.W) / s.W) + 1;
        if (h + (2 * padding.H) < kernel.H || w + (2 * padding.W) < kernel.W)
        {
            throw new ArgumentException(
                $"{op}: the kernel ({kernel.H}, {kernel.W}) is larger than the padded input ({h + (2 * padding.H)}, {w + (2 * padding.W)}) (input {x.Shape}, padding ({padding.H}, {padding.W})).",
                nameof(x));
        }

        var dims = x.Shape.ToArray();
        dims[^2] = oh;
        dims[^1] = ow;
        var planes = x.Rank == 4 ? x.Shape[0] * x.Shape[1] : x.Shape[0];
        return (new PoolGeometry(planes, h, w, kernel.H, kernel.W, s.H, s.W, padding.H, padding.W, oh, ow), new Shape(dims));
    }

    private static Memory<T> Mem<T>(Tensor t) => new((T[])t.Storage, t.Offset, t.ElementCount);

    private readonly struct MaxWork(Tensor x, Tensor y, Tensor indices, PoolGeometry p) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => PoolKernels.MaxPool(Mem<T>(x), Mem<T>(y), Mem<long>(indices), p);
    }

    private readonly struct AvgWork(Tensor src, Tensor dst, PoolGeometry p, bool countIncludePad, bool adjoint) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
        {
            if (adjoint)
            {
                PoolKernels.AvgPoolAdjoint(Mem<T>(src), Mem<T>(dst), p, countIncludePad);
            }
            else
            {
                PoolKernels.AvgPool(Mem<T>(src), Mem<T>(dst), p, countIncludePad);
            }
        }
    }

    [Rule("MaxPool2d", Forward = "y = max of x over each window", Backward = "dx = scatter_add(index, g): g goes to the first maximum of each window", Saves = "index", Tangent = "ẏ = ẋ gathered at the first maximum of each window")]
    private sealed class MaxPoolNode : Node
    {
        private readonly Shape _shape;
        private readonly PoolGeometry _p;

        public MaxPoolNode(Tensor x, Tensor indices, PoolGeometry p)
            : base("MaxPool2d", x)
        {
            _shape = x.Shape;
            _p = p;
            Save(indices);
        }

        // Linear in g: ScatterAdd's own rule (a Gather at the same indices) gives the second derivatives.
        protected internal override void Backward(Tensor g, Tensor?[] grads)
            => grads[0] = Tensor.Zeros(new Shape(_p.Planes, _p.PlaneSize), g.DType)
                .ScatterAdd(1, Saved(0), g.Reshape(_p.Planes, _p.OutPlaneSize))
                .Reshape(_shape.ToArray());

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => t[0]!.Reshape(_p.Planes, _p.PlaneSize).Gather(1, Saved(0)).Reshape(y.Shape.ToArray());
    }

    // Average pooling is linear and AvgPool2dBackward is its adjoint, so each one's gradient is the other.
    [Rule("AvgPool2d", Forward = "y = mean of x over each window", Backward = "dx = AvgPool2dBackward(g): each g spread evenly over its window", Saves = "", Tangent = "ẏ = AvgPool2d(ẋ)")]
    [Rule("AvgPool2dBackward", Forward = "dx = each g spread evenly over its window", Backward = "dg = AvgPool2d(gg)", Saves = "", Tangent = "ẏ = AvgPool2dBackward(ġ)")]
    private sealed class AvgPoolNode : Node
    {
        private readonly Shape _inputShape;
        private readonly PoolGeometry _p;
        private readonly bool _countIncludePad;

        public AvgPoolNode(string name, Tensor input, PoolGeometry p, bool countIncludePad)
            : base(name, input)
        {
            _inputShape = input.Shape;
            _p = p;
            _countIncludePad = countIncludePad;
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
            => grads[0] = Name == "AvgPool2d" ? AvgPool2dBackward(g, _inputShape, _p, _countIncludePad) : Average(g, _p, _inputShape, _countIncludePad);

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => Average(t[0]!, _p, y.Shape, _countIncludePad, adjoint: Name != "AvgPool2d");
    }
}
