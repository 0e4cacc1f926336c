using System.Globalization;

namespace Autograd.Nn.Optim;

/// <summary>
/// A learning-rate schedule: a function of the epoch, applied to an optimiser's <see cref="Optimizer.LearningRate"/>.
/// Construction sets epoch 0 (the optimiser's learning rate at that moment is the base rate); each
/// <see cref="Step"/> advances one epoch and sets the optimiser's learning rate to <see cref="LearningRateAt"/>.
/// </summary>
/// <remarks>
/// The rate is computed in closed form from the base rate and the epoch (PyTorch's <c>_get_closed_form_lr</c>), so a
/// learning rate set on the optimiser by hand is overwritten by the next <see cref="Step"/>.
/// </remarks>
public abstract class LearningRateScheduler
{
    /// <summary>Attaches the schedule to <paramref name="optimizer"/>, taking its current learning rate as the base rate.</summary>
    private protected LearningRateScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        BaseLearningRate = optimizer.LearningRate;
    }

    /// <summary>The optimiser whose learning rate is scheduled.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The optimiser's learning rate when the schedule was created (epoch 0).</summary>
    public double BaseLearningRate { get; }

    /// <summary>The current epoch: 0 after construction, then the number of calls to <see cref="Step"/>.</summary>
    public int LastEpoch { get; private set; }

    /// <summary>Advances one epoch and sets the optimiser's learning rate for it.</summary>
    /// <exception cref="InvalidOperationException">
    /// The schedule's rate at the next epoch is not a finite number ≥ 0 (for example a <c>StepLR</c> whose gamma overflows);
    /// neither the epoch nor the optimiser's rate changes.
    /// </exception>
    public void Step()
    {
        var epoch = LastEpoch + 1;
        var rate = Compute(epoch);
        if (!(rate >= 0 && double.IsFinite(rate)))
        {
            throw new InvalidOperationException(string.Create(
                CultureInfo.InvariantCulture,
                $"{GetType().Name}: the learning rate at epoch {epoch} would be {rate} (base rate {BaseLearningRate}), which is not a finite number ≥ 0; the epoch stays {LastEpoch} and the optimiser's rate stays {Optimizer.LearningRate}."));
        }

        Optimizer.LearningRate = rate;
        LastEpoch = epoch;
    }

    /// <summary>The learning rate of the schedule at <paramref name="epoch"/> (≥ 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="epoch"/> is negative.</exception>
    public double LearningRateAt(int epoch)
    {
        if (epoch < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(epoch), epoch, $"{GetType().Name}.LearningRateAt: the epoch must be 0 or more, got {epoch}.");
        }

        return Compute(epoch);
    }

    /// <summary>The closed form of the schedule.</summary>
    private protected abstract double Compute(int epoch);

    private protected static ArgumentOutOfRangeException Invalid(string scheduler, string parameterName, object value, string requirement) =>
        new(parameterName, value, string.Create(CultureInfo.InvariantCulture, $"{scheduler}: {parameterName} must be {requirement}, got {value}."));
}

/// <summary>
/// Decays the learning rate by <see cref="Gamma"/> every <see cref="StepSize"/> epochs, as PyTorch's <c>StepLR</c>:
/// lr = base·γ^⌊epoch / stepSize⌋.
/// </summary>
public sealed class StepLR : LearningRateScheduler
{
    /// <summary>Creates the schedule on <paramref name="optimizer"/> (whose current learning rate is the base rate).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="stepSize"/> is not positive, or <paramref name="gamma"/> is negative or not finite.</exception>
    public StepLR(Optimizer optimizer, int stepSize, double gamma = 0.1)
        : base(optimizer)
    {
        if (stepSize <= 0)
        {
            throw Invalid(nameof(StepLR), nameof(stepSize), stepSize, "at least 1");
        }

        if (!(gamma >= 0 && double.IsFinite(gamma)))
        {
            throw Invalid(nameof(StepLR), nameof(gamma), gamma, "a finite number ≥ 0");
        }

        StepSize = stepSize;
        Gamma = gamma;
    }

    /// <summary>The number of epochs between decays.</summary>
    public int StepSize { get; }

    /// <summary>The factor applied at each decay.</summary>
    public double Gamma { get; }

    private protected override double Compute(int epoch) => BaseLearningRate * Math.Pow(Gamma, epoch / StepSize);
}

/// <summary>
/// Cosine annealing from the base rate down to <see cref="EtaMin"/> over <see cref="TMax"/> epochs, as PyTorch's
/// <c>CosineAnnealingLR</c> (without restarts): lr = ηmin + (base − ηmin)·(1 + cos(π·epoch / Tmax)) / 2. Past
/// <see cref="TMax"/> the cosine continues, so the rate rises again towards the base rate at 2·Tmax.
/// </summary>
public sealed class CosineAnnealingLR : LearningRateScheduler
{
    /// <summary>Creates the schedule on <paramref name="optimizer"/> (whose current learning rate is the base rate).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="tMax"/> is not positive, or <paramref name="etaMin"/> is negative or not finite.</exception>
    public CosineAnnealingLR(Optimizer optimizer, int tMax, double etaMin = 0)
        : base(optimizer)
    {
        if (tMax <= 0)
        {
            throw Invalid(nameof(CosineAnnealingLR), nameof(tMax), tMax, "at least 1");
        }

        if (!(etaMin >= 0 && double.IsFinite(etaMin)))
        {
            throw Invalid(nameof(CosineAnnealingLR), nameof(etaMin), etaMin, "a finite number ≥ 0");
        }

        TMax = tMax;
        EtaMin = etaMin;
    }

    /// <summary>The number of epochs from the base rate down to <see cref="EtaMin"/> (half a period).</summary>
    public int TMax { get; }

    /// <summary>The smallest learning rate.</summary>
    public double EtaMin { get; }

    private protected override double Compute(int epoch) =>
        EtaMin + ((BaseLearningRate - EtaMin) * (1 + Math.Cos(Math.PI * epoch / TMax)) / 2);
}
