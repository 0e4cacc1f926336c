using System.Globalization;
using System.Numerics;

namespace Autograd.Nn.Optim;

/// <summary>
/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay, exactly as
/// PyTorch 1.13's <c>torch.optim.SGD</c>. For each parameter p with gradient g:
/// <code>
/// d = g + weightDecay·p
/// buf = d                                   (first step with a gradient)
/// buf = momentum·buf + (1 − dampening)·d    (after that)
/// d = d + momentum·buf  (Nesterov)   or   d = buf   (when momentum ≠ 0)
/// p = p − learningRate·d
/// </code>
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor?[] _momentumBuffers;

    /// <summary>Creates the optimiser. <paramref name="learningRate"/> has no default, as in PyTorch.</summary>
    /// <exception cref="ArgumentException">
    /// The parameter list is invalid (see <see cref="Optimizer"/>), or <paramref name="nesterov"/> is set without
    /// momentum &gt; 0 and zero dampening.
    /// </exception>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="learningRate"/>, <paramref name="momentum"/> or <paramref name="weightDecay"/> is negative or not
    /// finite, or <paramref name="dampening"/> is outside [0, 1].
    /// </exception>
    public Sgd(IEnumerable<Tensor> parameters, double learningRate, double momentum = 0, double dampening = 0, bool nesterov = false, double weightDecay = 0)
        : base(parameters, learningRate)
    {
        CheckNonNegative(momentum, nameof(momentum));
        CheckUnitInterval(dampening, nameof(dampening), closed: true);
        CheckNonNegative(weightDecay, nameof(weightDecay));
        if (nesterov && (momentum <= 0 || dampening != 0))
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"Sgd: Nesterov momentum requires momentum > 0 and dampening = 0, got momentum = {momentum}, dampening = {dampening}."),
                nameof(nesterov));
        }

        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
        WeightDecay = weightDecay;
        _momentumBuffers = new Tensor?[Parameters.Count];
    }

    /// <summary>The momentum factor (0: plain gradient descent).</summary>
    public double Momentum { get; }

    /// <summary>The dampening of the gradient's contribution to the momentum buffer.</summary>
    public double Dampening { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <summary>The L2 penalty: weightDecay·p is added to the gradient.</summary>
    public double WeightDecay { get; }

    private protected override void Update(int index, Tensor parameter, Tensor gradient)
    {
        if (parameter.DType == DType.Float32)
        {
            Update<float>(index, parameter, gradient);
        }
        else
        {
            Update<double>(index, parameter, gradient);
        }
    }

    private void Update<T>(int index, Tensor parameter, Tensor gradient)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var p = parameter.Span<T>();
        ReadOnlySpan<T> g = gradient.Span<T>();
        var negLr = T.CreateTruncating(-LearningRate);
        var decay = WeightDecay != 0;
        var wd = T.CreateTruncating(WeightDecay);
        if (Momentum == 0)
        {
            for (var i = 0; i < p.Length; i++)
            {
                var d = decay ? g[i] + (wd * p[i]) : g[i];
                p[i] += negLr * d;
            }

            return;
        }

        var first = _momentumBuffers[index] is null;
        var buf = (_momentumBuffers[index] ??= Tensor.ZerosLike(parameter)).Span<T>();
        var momentum = T.CreateTruncating(Momentum);
        var keep = T.CreateTruncating(1 - Dampening);
        for (var i = 0; i < p.Length; i++)
        {
            var d = decay ? g[i] + (wd * p[i]) : g[i];
            var b = first ? d : (buf[i] * momentum) + (keep * d);
            buf[i] = b;
            d = Nesterov ? d + (momentum * b) : b;
            p[i] += negLr * d;
        }
    }
}
