using System.Globalization;

namespace Autograd.Nn.Optim;

/// <summary>
/// The base of the optimisers: it holds the parameters (leaves that require grad, such as <c>model.Parameters()</c>),
/// a learning rate that schedules may change between steps, and updates every parameter that has a gradient in
/// <see cref="Step"/>, in place and without recording on the tape.
/// </summary>
/// <remarks>
/// A parameter whose <see cref="Tensor.Grad"/> is null is skipped by <see cref="Step"/>, as in PyTorch: its state
/// (momentum, moments, step count) is neither created nor advanced. The update is written on the parameter's
/// elements in the parameter's own dtype (float64 or float32), with state buffers of the same dtype.
/// </remarks>
public abstract class Optimizer
{
    private readonly Tensor[] _parameters;

    /// <summary>Takes the parameters to optimise and the initial learning rate.</summary>
    /// <exception cref="ArgumentException">
    /// There are no parameters, one is null, not a leaf, does not require grad, or appears twice.
    /// </exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="learningRate"/> is negative or not finite.</exception>
    private protected Optimizer(IEnumerable<Tensor> parameters, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _parameters = [.. parameters];
        var name = GetType().Name;
        if (_parameters.Length == 0)
        {
            throw new ArgumentException($"{name}: the parameter list is empty; pass the tensors to optimise, e.g. model.Parameters().", nameof(parameters));
        }

        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (var i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i] ?? throw new ArgumentException($"{name}: parameter {i} is null.", nameof(parameters));
            if (!p.IsLeaf)
            {
                throw new ArgumentException(
                    $"{name}: parameter {i} (shape {p.Shape}) is not a leaf: it was produced by '{p.OpName}'. Optimise leaves (Detach() one, then set RequiresGrad).",
                    nameof(parameters));
            }

            if (!p.RequiresGrad)
            {
                throw new ArgumentException(
                    $"{name}: parameter {i} (shape {p.Shape} {p.DType.Name()}) does not require grad, so it would never receive a gradient; set RequiresGrad = true.",
                    nameof(parameters));
            }

            if (!seen.Add(p))
            {
                throw new ArgumentException($"{name}: parameter {i} (shape {p.Shape}) appears more than once in the parameter list.", nameof(parameters));
            }
        }

        CheckNonNegative(learningRate, nameof(learningRate));
        LearningRate = learningRate;
    }

    /// <summary>The parameters, in the order given at construction.</summary>
    public IReadOnlyList<Tensor> Parameters => _parameters;

    /// <summary>The learning rate used by the next <see cref="Step"/>; learning-rate schedules set it.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a negative or non-finite value.</exception>
    public double LearningRate
    {
        get;
        set
        {
            CheckNonNegative(value, nameof(LearningRate));
            field = value;
        }
    }

    /// <summary>The number of times <see cref="Step"/> has been called.</summary>
    public long StepCount { get; private set; }

    /// <summary>
    /// Updates every parameter that has a gradient, in place and with recording off, so the parameters stay leaves.
    /// Parameters whose gradient is null are skipped.
    /// </summary>
    public void Step()
    {
        using var _ = GradMode.NoGrad();
        StepCount++;
        for (var i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            if (p.Grad is { } g)
            {
                Update(i, p, g);
            }
        }
    }

    /// <summary>Clears the gradient of every parameter: to null (the default), or to zeros when <paramref name="setToNull"/> is false.</summary>
    public void ZeroGrad(bool setToNull = true)
    {
        foreach (var p in _parameters)
        {
            p.ZeroGrad(setToNull);
        }
    }

    /// <summary>Updates parameter <paramref name="index"/> from its gradient. Called with grad mode off.</summary>
    private protected abstract void Update(int index, Tensor parameter, Tensor gradient);

    /// <summary>Throws unless <paramref name="value"/> is finite and at least zero.</summary>
    internal void CheckNonNegative(double value, string parameterName)
    {
        if (!(value >= 0 && double.IsFinite(value)))
        {
            throw new ArgumentOutOfRangeException(
                parameterName,
                value,
                string.Create(CultureInfo.InvariantCulture, $"{GetType().Name}: {parameterName} must be a finite number ≥ 0, got {value}."));
        }
    }

    /// <summary>Throws unless <paramref name="value"/> is in [0, 1) (a beta) or, with <paramref name="closed"/>, in [0, 1].</summary>
    internal void CheckUnitInterval(double value, string parameterName, bool closed = false)
    {
        if (!(value >= 0 && (closed ? value <= 1 : value < 1)))
        {
            throw new ArgumentOutOfRangeException(
                parameterName,
                value,
                string.Create(CultureInfo.InvariantCulture, $"{GetType().Name}: {parameterName} must be in [0, 1{(closed ? "]" : ")")}, got {value}."));
        }
    }
}
