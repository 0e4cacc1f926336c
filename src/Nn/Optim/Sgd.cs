using System.Globalization;

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

    /// <summary>A buffer of each parameter's shape for the direction d when it is not the gradient or the momentum buffer, so a step allocates nothing.</summary>
    private readonly Tensor?[] _scratch;

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
        _scratch = new Tensor?[Parameters.Count];
    }

    /// <summary>The momentum factor (0: plain gradient descent).</summary>
    public double Momentum { get; }

    /// <summary>The dampening of the gradient's contribution to the momentum buffer.</summary>
    public double Dampening { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <summary>The L2 penalty: weightDecay·p is added to the gradient.</summary>
    public double WeightDecay { get; }

    // PyTorch 1.13's _single_tensor_sgd, operation by operation: d = g.add(p, alpha=wd); buf = clone(d) on the first
    // step, else buf.mul_(momentum).add_(d, alpha=1 − dampening); d = d.add(buf, alpha=momentum) (Nesterov) or buf;
    // p.add_(d, alpha=−lr). The out-of-place results are written into a buffer kept per parameter (same values).
    private protected override void Update(int index, Tensor parameter, Tensor gradient, WriteSite site)
    {
        var d = gradient;
        if (WeightDecay != 0)
        {
            d = InPlace.Add(InPlace.CopyInto(_scratch[index] ??= Tensor.ZerosLike(parameter).LeaveScope(), gradient, site), parameter, WeightDecay, site);
        }

        if (Momentum != 0)
        {
            var buf = _momentumBuffers[index];
            if (buf is null)
            {
                buf = _momentumBuffers[index] = d.Clone().LeaveScope();
            }
            else
            {
                InPlace.Add(InPlace.Scale(buf, Momentum, site), d, 1 - Dampening, site);
            }

            if (Nesterov)
            {
                if (ReferenceEquals(d, gradient))
                {
                    d = InPlace.CopyInto(_scratch[index] ??= Tensor.ZerosLike(parameter).LeaveScope(), gradient, site);
                }

                d = InPlace.Add(d, buf, Momentum, site);
            }
            else
            {
                d = buf;
            }
        }

        InPlace.Add(parameter, d, -LearningRate, site);
    }
}
