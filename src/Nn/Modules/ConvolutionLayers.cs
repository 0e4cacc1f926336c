using System.Globalization;

namespace Autograd.Nn;

/// <summary>
/// A 2-D convolution over NCHW input, as PyTorch's <c>nn.Conv2d</c>: weight [out, in/groups, kH, kW] and bias [out],
/// initialised as PyTorch does (Kaiming-uniform with a = √5: weight and bias uniform in ±1/√fan_in, fan_in =
/// in/groups·kH·kW), so weights move between the two frameworks unchanged.
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates the layer with weights drawn from a generator seeded by <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size, the stride, the dilation or the groups is not positive, or the padding is negative.</exception>
    /// <exception cref="ArgumentException">The groups do not divide the input and output channels.</exception>
    public Conv2d(int inChannels, int outChannels, int kernelSize, int seed, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, DType dtype = DType.Float64)
    {
        RequireAtLeast(inChannels, 1);
        RequireAtLeast(outChannels, 1);
        RequireAtLeast(kernelSize, 1);
        RequireAtLeast(stride, 1);
        RequireAtLeast(padding, 0);
        RequireAtLeast(dilation, 1);
        RequireAtLeast(groups, 1);
        if (inChannels % groups != 0 || outChannels % groups != 0)
        {
            throw new ArgumentException($"Conv2d: groups {groups} must divide both the input channels {inChannels} and the output channels {outChannels}.", nameof(groups));
        }

        (InChannels, OutChannels, KernelSize, Stride, Padding, Dilation, Groups) = (inChannels, outChannels, kernelSize, stride, padding, dilation, groups);
        var bound = 1.0 / Math.Sqrt(inChannels / groups * kernelSize * kernelSize);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(outChannels, inChannels / groups, kernelSize, kernelSize), seed, dtype, -bound, bound));
        if (bias)
        {
            Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outChannels), unchecked((seed * 31) + 17), dtype, -bound, bound));
        }
    }

    /// <summary>The number of input channels.</summary>
    public int InChannels { get; }

    /// <summary>The number of output channels.</summary>
    public int OutChannels { get; }

    /// <summary>The (square) kernel size.</summary>
    public int KernelSize { get; }

    /// <summary>The stride in both directions.</summary>
    public int Stride { get; }

    /// <summary>The zero padding on each side.</summary>
    public int Padding { get; }

    /// <summary>The dilation of the kernel.</summary>
    public int Dilation { get; }

    /// <summary>The number of groups (in/groups input channels feed each output channel).</summary>
    public int Groups { get; }

    /// <summary>The weight, [out, in/groups, k, k].</summary>
    public Tensor Weight { get; }

    /// <summary>The bias, [out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(
        CultureInfo.InvariantCulture,
        $"{InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Stride}, padding={Padding}{(Dilation != 1 ? $", dilation={Dilation}" : string.Empty)}{(Groups != 1 ? $", groups={Groups}" : string.Empty)}, bias={Bias is not null}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [N, C, H, W] with C = <see cref="InChannels"/>, or is smaller than the kernel.</exception>
    public override Tensor Forward(Tensor input) => input.Conv2d(Weight, Bias, Stride, Padding, Dilation, Groups);
}

/// <summary>2-D max pooling over NCHW input, as PyTorch's <c>nn.MaxPool2d</c> (stride defaults to the kernel size).</summary>
/// <param name="kernelSize">The (square) window size.</param>
/// <param name="stride">The step between windows; null for the kernel size.</param>
/// <param name="padding">The −∞ padding on each side.</param>
public sealed class MaxPool2d(int kernelSize, int? stride = null, int padding = 0) : Module
{
    /// <summary>The window size.</summary>
    public int KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public int Stride { get; } = stride ?? kernelSize;

    /// <summary>The padding on each side.</summary>
    public int Padding { get; } = padding;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"kernel_size={KernelSize}, stride={Stride}, padding={Padding}");

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.MaxPool2d(KernelSize, Stride, Padding);
}

/// <summary>2-D average pooling over NCHW input, as PyTorch's <c>nn.AvgPool2d</c> (padding counted in the average by default).</summary>
/// <param name="kernelSize">The (square) window size.</param>
/// <param name="stride">The step between windows; null for the kernel size.</param>
/// <param name="padding">The zero padding on each side.</param>
/// <param name="countIncludePad">True (PyTorch's default) to divide by the whole window, padding included.</param>
public sealed class AvgPool2d(int kernelSize, int? stride = null, int padding = 0, bool countIncludePad = true) : Module
{
    /// <summary>The window size.</summary>
    public int KernelSize { get; } = kernelSize;

    /// <summary>The step between windows.</summary>
    public int Stride { get; } = stride ?? kernelSize;

    /// <summary>The padding on each side.</summary>
    public int Padding { get; } = padding;

    /// <summary>Whether padded positions count in the average.</summary>
    public bool CountIncludePad { get; } = countIncludePad;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"kernel_size={KernelSize}, stride={Stride}, padding={Padding}");

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.AvgPool2d(KernelSize, Stride, Padding, CountIncludePad);
}
