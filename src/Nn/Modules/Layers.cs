using System.Globalization;

namespace Autograd.Nn;

/// <summary>
/// y = x·Wᵀ + b, with W of shape [out, in] and b of shape [out] (PyTorch's layout, so weights load from and save to
/// PyTorch's files unchanged). Initialised as PyTorch does: W and b uniform in ±1/√in (Kaiming-uniform with a = √5).
/// </summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer with weights drawn from a generator seeded by <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    public Linear(int inFeatures, int outFeatures, int seed, bool bias = true, DType dtype = DType.Float64)
    {
        RequireAtLeast(inFeatures, 1);
        RequireAtLeast(outFeatures, 1);
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        var bound = 1.0 / Math.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(outFeatures, inFeatures), seed, dtype, -bound, bound));
        if (bias)
        {
            Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outFeatures), unchecked((seed * 31) + 17), dtype, -bound, bound));
        }
    }

    /// <summary>The number of input features.</summary>
    public int InFeatures { get; }

    /// <summary>The number of output features.</summary>
    public int OutFeatures { get; }

    /// <summary>The weight, [out, in].</summary>
    public Tensor Weight { get; }

    /// <summary>The bias, [out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"in={InFeatures}, out={OutFeatures}, bias={Bias is not null}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input's last dim is not <see cref="InFeatures"/>, or its dtype is not the weight's.</exception>
    public override Tensor Forward(Tensor input)
    {
        if (input.Rank == 0 || input.Shape[-1] != InFeatures)
        {
            throw new ArgumentException($"Linear: expected an input whose last dim is {InFeatures}, got shape {input.Shape}.", nameof(input));
        }

        if (input.DType != Weight.DType)
        {
            throw new ArgumentException($"Linear: the input is {input.DType.Name()} (shape {input.Shape}) but the layer's weight is {Weight.DType.Name()}; convert the input with To({Weight.DType}).", nameof(input));
        }

        // x·Wᵀ without materialising Wᵀ: the matmul kernel reads W transposed while packing.
        var y = input.Rank == 1
            ? LinearAlgebra.MatMulT(input.Unsqueeze(0), Weight, transA: false, transB: true).Squeeze(0)
            : LinearAlgebra.MatMulT(input, Weight, transA: false, transB: true);
        return Bias is null ? y : y + Bias;
    }
}

/// <summary>Applies its children in order, each to the previous one's output. Children are named 0, 1, 2, …</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = [];

    /// <summary>Creates the sequence.</summary>
    public Sequential(params Module[] layers)
    {
        foreach (var layer in layers)
        {
            Add(layer);
        }
    }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<Module> Layers => _layers;

    /// <summary>Appends a layer (named by its position).</summary>
    public Sequential Add(Module layer)
    {
        RegisterModule(_layers.Count.ToString(CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    /// <inheritdoc />
    public override Tensor Forward(Tensor input)
    {
        var x = input;
        foreach (var layer in _layers)
        {
            x = layer.Call(x);
        }

        return x;
    }
}

/// <summary>
/// Flattens dims <see cref="StartDim"/> … <see cref="EndDim"/> into one, as PyTorch's <c>nn.Flatten</c> (by default every
/// dim but the batch dim: [N, C, H, W] → [N, C·H·W]).
/// </summary>
/// <param name="startDim">The first dim to flatten (default 1, after the batch dim).</param>
/// <param name="endDim">The last dim to flatten (default −1, the last).</param>
public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    /// <summary>The first dim flattened.</summary>
    public int StartDim { get; } = startDim;

    /// <summary>The last dim flattened.</summary>
    public int EndDim { get; } = endDim;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"start_dim={StartDim}, end_dim={EndDim}");

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">A dim is outside the input's rank.</exception>
    /// <exception cref="ArgumentException">The start dim comes after the end dim.</exception>
    public override Tensor Forward(Tensor input) => input.Flatten(StartDim, EndDim);
}

/// <summary>Softmax along <see cref="Dim"/>, as PyTorch's <c>nn.Softmax(dim)</c>: the fused operator (one kernel each way).</summary>
/// <param name="dim">The dim the probabilities sum to 1 along (negative counts from the end).</param>
public sealed class Softmax(int dim) : Module
{
    /// <summary>The dim the probabilities sum to 1 along.</summary>
    public int Dim { get; } = dim;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"dim={Dim}");

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The dim is outside the input's rank.</exception>
    public override Tensor Forward(Tensor input) => input.Softmax(Dim);
}

/// <summary>Log-softmax along <see cref="Dim"/>, as PyTorch's <c>nn.LogSoftmax(dim)</c>: the fused operator.</summary>
/// <param name="dim">The dim to normalise along (negative counts from the end).</param>
public sealed class LogSoftmax(int dim) : Module
{
    /// <summary>The dim normalised along.</summary>
    public int Dim { get; } = dim;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"dim={Dim}");

    /// <inheritdoc />
    /// <exception cref="ArgumentOutOfRangeException">The dim is outside the input's rank.</exception>
    public override Tensor Forward(Tensor input) => input.LogSoftmax(Dim);
}

/// <summary>
/// Adaptive average pooling of [N, C, H, W] to [N, C, size, size], as PyTorch's <c>nn.AdaptiveAvgPool2d</c>; with size 1,
/// the global average pooling that ends many CNNs.
/// </summary>
/// <param name="outputSize">The output's height and width (default 1).</param>
public sealed class AdaptiveAvgPool2d(int outputSize = 1) : Module
{
    /// <summary>The output's height and width.</summary>
    public int OutputSize { get; } = outputSize;

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"output_size={OutputSize}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [N, C, H, W], or the output size is not positive.</exception>
    public override Tensor Forward(Tensor input) => input.AdaptiveAvgPool2d(OutputSize);
}

/// <summary>max(x, 0).</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Relu();
}

/// <summary>tanh(x).</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Tanh();
}

/// <summary>1 / (1 + e^(−x)).</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.Sigmoid();
}

/// <summary>The exact GELU: x · Φ(x) = ½ x (1 + erf(x / √2)), as PyTorch's default.</summary>
public sealed class GELU : Module
{
    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => Functional.Gelu(input);
}

/// <summary>
/// In training, zeroes each element with probability <see cref="P"/> and scales the rest by 1/(1 − p); in evaluation,
/// the identity. The masks come from a generator seeded at construction, so a run is reproducible.
/// </summary>
public sealed class Dropout : Module
{
    private readonly MathNet.Numerics.Random.MersenneTwister _rng;

    /// <summary>Creates the layer.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="p"/> is outside [0, 1).</exception>
    public Dropout(double p, int seed)
    {
        if (!(p >= 0 && p < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, string.Create(CultureInfo.InvariantCulture, $"Dropout: p must be in [0, 1), got {p}."));
        }

        P = p;
        _rng = new MathNet.Numerics.Random.MersenneTwister(seed);
    }

    /// <summary>The probability of zeroing an element.</summary>
    public double P { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"p={P}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not float32 or float64.</exception>
    public override Tensor Forward(Tensor input)
    {
        if (!input.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"Dropout: expected a float32 or float64 input, got {input.DType.Name()} of shape {input.Shape}.", nameof(input));
        }

        if (!IsTraining || P == 0)
        {
            return input;
        }

        var keep = 1.0 / (1 - P);
        var mask = new double[input.ElementCount];
        for (var i = 0; i < mask.Length; i++)
        {
            mask[i] = _rng.NextDouble() < P ? 0 : keep;
        }

        return input * Tensor.FromArray(mask, input.Shape.ToArray()).To(input.DType);
    }
}
