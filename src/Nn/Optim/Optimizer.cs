using System.Globalization;
using System.Runtime.CompilerServices;

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

    // The writer named in the version of every parameter a step changes, e.g. "Sgd.Step" (made once, not per step).
    private readonly string _stepName;
    private readonly string _zeroGradName;

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
        _stepName = name + ".Step";
        _zeroGradName = name + ".ZeroGrad";
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
    /// Parameters whose gradient is null are skipped. The update is made with the in-place operators of
    /// <see cref="Autograd.Ops.InPlace"/> in PyTorch's order; each of them bumps the updated parameter's
    /// <see cref="Tensor.Version"/> once (one write per step for <see cref="Sgd"/> and <see cref="Adam"/>, two for
    /// <see cref="AdamW"/>: its decay and its update), with this optimiser's step and the caller recorded as the site of
    /// the write, so a graph that saved the parameter before the step fails in backward.
    /// </summary>
    /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
    /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
    /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
    public void Step([CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
    {
        using var _ = GradMode.NoGrad();
        StepCount++;
        for (var i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            if (p.Grad is { } g)
            {
                Update(i, p, g, new WriteSite(_stepName, callerMember, callerFile, callerLine));
            }
        }
    }

    /// <summary>
    /// Clears the gradient of every parameter: to null (the default), or to zeros in place when <paramref name="setToNull"/>
    /// is false (which bumps each gradient's <see cref="Tensor.Version"/>).
    /// </summary>
    /// <param name="setToNull">True (the default): set each gradient to null. False: fill it with zeros.</param>
    /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
    /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
    /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
    public void ZeroGrad(bool setToNull = true, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
    {
        foreach (var p in _parameters)
        {
            p.ClearGrad(setToNull, _zeroGradName, callerMember, callerFile, callerLine);
        }
    }

    /// <summary>
    /// Updates parameter <paramref name="index"/> from its gradient through the in-place operators, each write of the
    /// parameter or of the state recorded as <paramref name="site"/> (e.g. <c>Sgd.Step</c> at the caller's line). Called with
    /// grad mode off.
    /// </summary>
    private protected abstract void Update(int index, Tensor parameter, Tensor gradient, WriteSite site);

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
