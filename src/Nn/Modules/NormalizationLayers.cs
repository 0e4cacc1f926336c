using System.Globalization;

namespace Autograd.Nn;

/// <summary>
/// Layer normalisation over the last dims, as PyTorch's <c>nn.LayerNorm</c>: y = (x − mean) / √(var + ε) · weight + bias,
/// with weight initialised to ones and bias to zeros. Uses the fused operator (one pass each way).
/// </summary>
public sealed class LayerNorm : Module
{
    private readonly int[] _shape;

    /// <summary>Creates the layer for inputs whose trailing dims are <paramref name="normalizedShape"/>.</summary>
    /// <exception cref="ArgumentException">The shape is empty or has a size below 1.</exception>
    /// <exception cref="ArgumentOutOfRangeException">ε is negative or not finite.</exception>
    public LayerNorm(int[] normalizedShape, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float64)
    {
        ArgumentNullException.ThrowIfNull(normalizedShape);
        if (normalizedShape.Length == 0 || normalizedShape.Any(d => d < 1))
        {
            throw new ArgumentException($"LayerNorm: the normalized shape [{string.Join(", ", normalizedShape)}] must be non-empty with sizes of at least 1.", nameof(normalizedShape));
        }

        if (!(eps >= 0 && double.IsFinite(eps)))
        {
            throw new ArgumentOutOfRangeException(nameof(eps), eps, "LayerNorm: eps must be finite and at least 0.");
        }

        _shape = (int[])normalizedShape.Clone();
        Eps = eps;
        if (elementwiseAffine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(new Shape(_shape), dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros(new Shape(_shape), dtype));
        }
    }

    /// <summary>Creates the layer for inputs whose last dim is <paramref name="normalizedSize"/>.</summary>
    public LayerNorm(int normalizedSize, double eps = 1e-5, bool elementwiseAffine = true, DType dtype = DType.Float64)
        : this([normalizedSize], eps, elementwiseAffine, dtype)
    {
    }

    /// <summary>The normalised trailing dims.</summary>
    public IReadOnlyList<int> NormalizedShape => _shape;

    /// <summary>Added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The scale, shaped as <see cref="NormalizedShape"/>, or null without affine parameters.</summary>
    public Tensor? Weight { get; }

    /// <summary>The shift, or null without affine parameters.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"[{string.Join(", ", _shape)}], eps={Eps}, elementwise_affine={Weight is not null}");

    /// <inheritdoc />
    public override Tensor Forward(Tensor input) => input.LayerNorm(_shape, Weight, Bias, Eps);
}

/// <summary>
/// Batch normalisation, as PyTorch's <c>nn.BatchNorm1d</c> and <c>nn.BatchNorm2d</c>: in training, each channel is
/// normalised with the batch's mean and (biased) variance and the running statistics are updated with momentum
/// (running_var from the unbiased variance); in evaluation, the running statistics are used. Buffers
/// <c>running_mean</c> (zeros), <c>running_var</c> (ones) and <c>num_batches_tracked</c> (int64) are saved with the
/// module under PyTorch's names.
/// </summary>
public abstract class BatchNorm : Module
{
    private readonly int[] _ranks;

    private protected BatchNorm(int numFeatures, double eps, double momentum, bool affine, DType dtype, int[] ranks)
    {
        if (numFeatures <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(numFeatures), numFeatures, $"{GetType().Name}: numFeatures must be at least 1, got {numFeatures}.");
        }

        if (!(eps >= 0 && double.IsFinite(eps)))
        {
            throw new ArgumentOutOfRangeException(nameof(eps), eps, $"{GetType().Name}: eps must be finite and at least 0.");
        }

        if (!(momentum >= 0 && momentum <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, $"{GetType().Name}: momentum must be in [0, 1].");
        }

        (NumFeatures, Eps, Momentum, _ranks) = (numFeatures, eps, momentum, ranks);
        if (affine)
        {
            Weight = RegisterParameter("weight", Tensor.Ones(new Shape(numFeatures), dtype));
            Bias = RegisterParameter("bias", Tensor.Zeros(new Shape(numFeatures), dtype));
        }

        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(new Shape(numFeatures), dtype));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones(new Shape(numFeatures), dtype));
        NumBatchesTracked = RegisterBuffer("num_batches_tracked", Tensor.FromArray([0L]).Reshape());
    }

    /// <summary>The number of channels.</summary>
    public int NumFeatures { get; }

    /// <summary>Added to the variance.</summary>
    public double Eps { get; }

    /// <summary>The weight of the new batch's statistics in the running statistics.</summary>
    public double Momentum { get; }

    /// <summary>The per-channel scale, or null without affine parameters.</summary>
    public Tensor? Weight { get; }

    /// <summary>The per-channel shift, or null without affine parameters.</summary>
    public Tensor? Bias { get; }

    /// <summary>The running mean of each channel (a buffer).</summary>
    public Tensor RunningMean { get; }

    /// <summary>The running (unbiased) variance of each channel (a buffer).</summary>
    public Tensor RunningVar { get; }

    /// <summary>The number of training batches seen (a rank-0 int64 buffer).</summary>
    public Tensor NumBatchesTracked { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"{NumFeatures}, eps={Eps}, momentum={Momentum}, affine={Weight is not null}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input's rank or channel count is wrong, or training sees one value per channel.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (!_ranks.Contains(input.Rank) || input.Shape[1] != NumFeatures)
        {
            throw new ArgumentException(
                $"{GetType().Name}: expected input of rank {string.Join(" or ", _ranks)} with {NumFeatures} channels in dim 1, got shape {input.Shape}.", nameof(input));
        }

        var y = input.BatchNorm(RunningMean, RunningVar, Weight, Bias, IsTraining, Momentum, Eps);
        if (IsTraining)
        {
            using (Tensor.NoGrad())
            {
                NumBatchesTracked.MarkWritten("BatchNorm (batch count)");
                NumBatchesTracked.Span<long>()[0]++;
            }
        }

        return y;
    }
}

/// <summary>Batch normalisation of [N, C] or [N, C, L] input over N (and L), as PyTorch's <c>nn.BatchNorm1d</c>.</summary>
/// <param name="numFeatures">The number of channels C.</param>
/// <param name="eps">Added to the variance.</param>
/// <param name="momentum">The weight of each batch in the running statistics.</param>
/// <param name="affine">Whether the layer has a learnable per-channel scale and shift.</param>
/// <param name="dtype">The dtype of parameters and buffers.</param>
public sealed class BatchNorm1d(int numFeatures, double eps = 1e-5, double momentum = 0.1, bool affine = true, DType dtype = DType.Float64)
    : BatchNorm(numFeatures, eps, momentum, affine, dtype, [2, 3]);

/// <summary>Batch normalisation of [N, C, H, W] input over N, H and W, as PyTorch's <c>nn.BatchNorm2d</c>.</summary>
/// <param name="numFeatures">The number of channels C.</param>
/// <param name="eps">Added to the variance.</param>
/// <param name="momentum">The weight of each batch in the running statistics.</param>
/// <param name="affine">Whether the layer has a learnable per-channel scale and shift.</param>
/// <param name="dtype">The dtype of parameters and buffers.</param>
public sealed class BatchNorm2d(int numFeatures, double eps = 1e-5, double momentum = 0.1, bool affine = true, DType dtype = DType.Float64)
    : BatchNorm(numFeatures, eps, momentum, affine, dtype, [4]);
