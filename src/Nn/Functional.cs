using System.Globalization;

namespace Autograd.Nn;

/// <summary>How a loss over a batch is reduced to what it returns.</summary>
public enum Reduction
{
    /// <summary>The mean over the batch (the default).</summary>
    Mean,

    /// <summary>The sum over the batch.</summary>
    Sum,

    /// <summary>One loss per element of the batch.</summary>
    None,
}

/// <summary>
/// Losses and activations as functions of tensors, built from the differentiable operators (so every one has a
/// gradient and a second derivative through the tape).
/// </summary>
public static class Functional
{
    private static readonly double InvSqrt2 = 1.0 / Math.Sqrt(2.0);

    /// <summary>The exact GELU: ½ x (1 + erf(x / √2)).</summary>
    /// <exception cref="ArgumentException">The input is not float32 or float64.</exception>
    public static Tensor Gelu(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (!x.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"Gelu: expected a float32 or float64 input, got {x.DType.Name()} of shape {x.Shape}.", nameof(x));
        }

        return x * 0.5 * (1.0 + (x * InvSqrt2).Erf());
    }

    /// <summary>Mean squared error ((prediction − target)², reduced).</summary>
    /// <exception cref="ArgumentException">The shapes differ, or the two are not of one float dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reduction"/> is not a defined <see cref="Reduction"/>.</exception>
    public static Tensor MseLoss(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape("MseLoss", prediction, target);
        CheckReduction("MseLoss", reduction);
        var d = prediction - target;
        return Reduce(d * d, reduction);
    }

    /// <summary>
    /// Binary cross-entropy on logits: softplus(x) − x·y, with softplus(x) = log(1 + e^x) = logsumexp(0, x) on the fused,
    /// max-subtracting logsumexp, which never overflows. Its gradient is σ(x) − y everywhere, x = 0 included (the
    /// form max(x, 0) + log(1 + e^(−|x|)) would give the subgradients of its two kinks there, not the derivative).
    /// </summary>
    /// <exception cref="ArgumentException">The shapes differ, or the two are not of one float dtype.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reduction"/> is not a defined <see cref="Reduction"/>.</exception>
    public static Tensor BinaryCrossEntropyWithLogits(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape("BinaryCrossEntropyWithLogits", logits, target);
        CheckReduction("BinaryCrossEntropyWithLogits", reduction);
        var softplus = Tensor.Stack([Tensor.ZerosLike(logits), logits], logits.Rank).LogSumExp(logits.Rank);
        var loss = softplus - (logits * target);
        return Reduce(loss, reduction);
    }

    /// <summary>
    /// Negative log-likelihood: −logProbabilities[i, target[i]] for log-probabilities [N, C] and int64 class indices [N].
    /// </summary>
    /// <exception cref="ArgumentException">The shapes or dtypes do not fit, or a target is outside [0, C).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reduction"/> is not a defined <see cref="Reduction"/>.</exception>
    public static Tensor NllLoss(Tensor logProbabilities, Tensor target, Reduction reduction = Reduction.Mean)
    {
        CheckClassTargets("NllLoss", logProbabilities, target);
        CheckReduction("NllLoss", reduction);
        var n = target.ElementCount;
        var picked = logProbabilities.Gather(1, target.Reshape(n, 1)).Reshape(n);
        return Reduce(picked.Neg(), reduction);
    }

    /// <summary>
    /// Cross-entropy from logits [N, C] and int64 class indices [N], on the fused log-softmax. With label smoothing ε
    /// the target distribution is (1 − ε)·onehot + ε/C: loss = (1 − ε)·nll + ε·mean_c(−log p_c). For the mean
    /// reduction without smoothing, d loss / d logits = (softmax(logits) − onehot(target)) / N.
    /// </summary>
    /// <exception cref="ArgumentException">The shapes or dtypes do not fit, a target is outside [0, C), or ε is outside [0, 1].</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="reduction"/> is not a defined <see cref="Reduction"/>.</exception>
    public static Tensor CrossEntropy(Tensor logits, Tensor target, Reduction reduction = Reduction.Mean, double labelSmoothing = 0.0)
    {
        CheckClassTargets("CrossEntropy", logits, target);
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"CrossEntropy: labelSmoothing must be in [0, 1], got {labelSmoothing} (scores {logits.Shape})."),
                nameof(labelSmoothing));
        }

        CheckReduction("CrossEntropy", reduction);

        var n = target.ElementCount;
        var logp = logits.LogSoftmax(1);
        var nll = logp.Gather(1, target.Reshape(n, 1)).Reshape(n).Neg();
        if (labelSmoothing > 0)
        {
            nll = (nll * (1 - labelSmoothing)) + (logp.Mean(1).Neg() * labelSmoothing);
        }

        return Reduce(nll, reduction);
    }

    private static Tensor Reduce(Tensor loss, Reduction reduction) => reduction switch
    {
        Reduction.Mean => loss.Mean(),
        Reduction.Sum => loss.Sum(),
        Reduction.None => loss,
        _ => throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "Unknown reduction."),
    };

    private static void CheckReduction(string op, Reduction reduction)
    {
        if (reduction is not (Reduction.Mean or Reduction.Sum or Reduction.None))
        {
            throw new ArgumentOutOfRangeException(nameof(reduction), reduction, $"{op}: unknown reduction {(int)reduction}; use Reduction.Mean, Sum or None.");
        }
    }

    private static void SameShape(string op, Tensor a, Tensor b)
    {
        if (!a.DType.IsFloatingPoint() || a.DType != b.DType)
        {
            throw new ArgumentException($"{op}: the prediction is {a.DType.Name()} (shape {a.Shape}) and the target is {b.DType.Name()} (shape {b.Shape}); both must be of one float dtype, float32 or float64.");
        }

        if (a.Shape != b.Shape)
        {
            throw new ArgumentException($"{op}: the prediction has shape {a.Shape} but the target has shape {b.Shape}; they must match.");
        }
    }

    private static void CheckClassTargets(string op, Tensor scores, Tensor target)
    {
        if (scores.Rank != 2)
        {
            throw new ArgumentException($"{op}: expected scores of shape [N, C], got {scores.Shape}.", nameof(scores));
        }

        if (!scores.DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: expected float32 or float64 scores, got {scores.DType.Name()} of shape {scores.Shape}.", nameof(scores));
        }

        if (target.DType != DType.Int64 || target.Rank != 1 || target.Shape[0] != scores.Shape[0])
        {
            throw new ArgumentException(
                $"{op}: expected int64 class indices of shape [{scores.Shape[0]}] for scores of shape {scores.Shape}, got {target.DType.Name()} of shape {target.Shape}.",
                nameof(target));
        }

        var classes = scores.Shape[1];
        var t = target.AsSpan<long>();
        for (var i = 0; i < t.Length; i++)
        {
            if (t[i] < 0 || t[i] >= classes)
            {
                throw new ArgumentException(
                    string.Create(CultureInfo.InvariantCulture, $"{op}: target {t[i]} at position {i} is not a class index in [0, {classes})."),
                    nameof(target));
            }
        }
    }
}
