namespace Autograd.Nn.Optim;

/// <summary>
/// Adam (Kingma and Ba), exactly as PyTorch 1.13's <c>torch.optim.Adam</c>, with L2 weight decay added to the gradient
/// and the optional AMSGrad variant. For each parameter p with gradient g, at its step t:
/// <code>
/// g = g + weightDecay·p
/// m = β1·m + (1 − β1)·g
/// v = β2·v + (1 − β2)·g²           (AMSGrad: v̂ = max(v̂, v), used below in place of v)
/// denom = √v / √(1 − β2^t) + ε
/// p = p − (learningRate / (1 − β1^t))·m / denom
/// </code>
/// </summary>
/// <remarks>t counts the steps on which the parameter had a gradient.</remarks>
public sealed class Adam : Optimizer
{
    private readonly AdamState _state;

    /// <summary>Creates the optimiser; the defaults are PyTorch's.</summary>
    /// <exception cref="ArgumentException">The parameter list is invalid (see <see cref="Optimizer"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="learningRate"/>, <paramref name="epsilon"/> or <paramref name="weightDecay"/> is negative or not
    /// finite, or a beta is outside [0, 1).
    /// </exception>
    public Adam(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool amsgrad = false)
        : base(parameters, learningRate)
        => _state = AdamState.Create(this, beta1, beta2, epsilon, weightDecay, amsgrad, decoupled: false);

    /// <summary>The decay rate of the first-moment (mean) estimate.</summary>
    public double Beta1 => _state.Beta1;

    /// <summary>The decay rate of the second-moment (uncentred variance) estimate.</summary>
    public double Beta2 => _state.Beta2;

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Epsilon => _state.Epsilon;

    /// <summary>The L2 penalty: weightDecay·p is added to the gradient.</summary>
    public double WeightDecay => _state.WeightDecay;

    /// <summary>Whether the AMSGrad variant (the running maximum of the second moment) is used.</summary>
    public bool Amsgrad => _state.Amsgrad;

    private protected override void Update(int index, Tensor parameter, Tensor gradient, WriteSite site) => _state.Update(index, parameter, gradient, LearningRate, site);
}

/// <summary>
/// AdamW (Loshchilov and Hutter), exactly as PyTorch 1.13's <c>torch.optim.AdamW</c>: Adam with decoupled weight decay,
/// <c>p = p·(1 − learningRate·weightDecay)</c> before the Adam update (which then sees the raw gradient).
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly AdamState _state;

    /// <summary>Creates the optimiser; the defaults are PyTorch's (weight decay 0.01).</summary>
    /// <exception cref="ArgumentException">The parameter list is invalid (see <see cref="Optimizer"/>).</exception>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="learningRate"/>, <paramref name="epsilon"/> or <paramref name="weightDecay"/> is negative or not
    /// finite, or a beta is outside [0, 1).
    /// </exception>
    public AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 1e-2, bool amsgrad = false)
        : base(parameters, learningRate)
        => _state = AdamState.Create(this, beta1, beta2, epsilon, weightDecay, amsgrad, decoupled: true);

    /// <summary>The decay rate of the first-moment (mean) estimate.</summary>
    public double Beta1 => _state.Beta1;

    /// <summary>The decay rate of the second-moment (uncentred variance) estimate.</summary>
    public double Beta2 => _state.Beta2;

    /// <summary>Added to the denominator for numerical stability.</summary>
    public double Epsilon => _state.Epsilon;

    /// <summary>The decoupled weight decay: each step multiplies p by 1 − learningRate·weightDecay.</summary>
    public double WeightDecay => _state.WeightDecay;

    /// <summary>Whether the AMSGrad variant (the running maximum of the second moment) is used.</summary>
    public bool Amsgrad => _state.Amsgrad;

    private protected override void Update(int index, Tensor parameter, Tensor gradient, WriteSite site) => _state.Update(index, parameter, gradient, LearningRate, site);
}

/// <summary>
/// The hyper-parameters and per-parameter state shared by <see cref="Adam"/> and <see cref="AdamW"/>: the step count,
/// the moment estimates (and their running maximum for AMSGrad), as tensors of the parameter's dtype.
/// </summary>
internal sealed class AdamState(int count, double beta1, double beta2, double epsilon, double weightDecay, bool amsgrad, bool decoupled)
{
    private readonly long[] _steps = new long[count];

    /// <summary>Checks the hyper-parameters in <paramref name="owner"/>'s name and makes the state for its parameters.</summary>
    public static AdamState Create(Optimizer owner, double beta1, double beta2, double epsilon, double weightDecay, bool amsgrad, bool decoupled)
    {
        owner.CheckUnitInterval(beta1, nameof(beta1));
        owner.CheckUnitInterval(beta2, nameof(beta2));
        owner.CheckNonNegative(epsilon, nameof(epsilon));
        owner.CheckNonNegative(weightDecay, nameof(weightDecay));
        return new AdamState(owner.Parameters.Count, beta1, beta2, epsilon, weightDecay, amsgrad, decoupled);
    }
    private readonly Tensor?[] _expAvg = new Tensor?[count];
    private readonly Tensor?[] _expAvgSq = new Tensor?[count];
    private readonly Tensor?[] _maxExpAvgSq = new Tensor?[count];

    /// <summary>A buffer of each parameter's shape for the decayed gradient and the denominator, so a step allocates nothing.</summary>
    private readonly Tensor?[] _scratch = new Tensor?[count];

    public double Beta1 { get; } = beta1;

    public double Beta2 { get; } = beta2;

    public double Epsilon { get; } = epsilon;

    public double WeightDecay { get; } = weightDecay;

    public bool Amsgrad { get; } = amsgrad;

    // PyTorch 1.13's _single_tensor_adam / _single_tensor_adamw, operation by operation (scalars combined in double,
    // converted to the dtype by each operator): p.mul_(1 − lr·wd) (AdamW) or g = g.add(p, alpha=wd) (Adam);
    // m.mul_(β1).add_(g, alpha=1 − β1); v.mul_(β2).addcmul_(g, g, value=1 − β2); v̂ = max(v̂, v) (AMSGrad);
    // denom = (√v / √(1 − β2^t)).add_(ε); p.addcdiv_(m, denom, value=−lr / (1 − β1^t)).
    public void Update(int index, Tensor parameter, Tensor gradient, double learningRate, WriteSite site)
    {
        var m = _expAvg[index] ??= Tensor.ZerosLike(parameter).LeaveScope();
        var v = _expAvgSq[index] ??= Tensor.ZerosLike(parameter).LeaveScope();
        var step = ++_steps[index];

        var scratch = _scratch[index] ??= Tensor.ZerosLike(parameter).LeaveScope();
        var g = gradient;
        if (decoupled)
        {
            InPlace.Scale(parameter, 1 - (learningRate * WeightDecay), site);
        }
        else if (WeightDecay != 0)
        {
            g = InPlace.Add(InPlace.CopyInto(scratch, gradient, site), parameter, WeightDecay, site);
        }

        InPlace.Add(InPlace.Scale(m, Beta1, site), g, 1 - Beta1, site);
        InPlace.Addcmul(InPlace.Scale(v, Beta2, site), g, g, 1 - Beta2, site);

        var biasCorrection1 = 1 - Math.Pow(Beta1, step);
        var biasCorrection2 = 1 - Math.Pow(Beta2, step);
        var second = v;
        if (Amsgrad)
        {
            var vMax = _maxExpAvgSq[index] ??= Tensor.ZerosLike(parameter).LeaveScope();
            second = InPlace.CopyInto(vMax, vMax.Maximum(v), site);
        }

        // denom = (√v / √(1 − β2^t)) + ε, written into the scratch buffer (the decayed gradient is no longer needed).
        var denom = InPlace.Shift(InPlace.Divide(InPlace.Sqrt(InPlace.CopyInto(scratch, second, site), site), Math.Sqrt(biasCorrection2), site), Epsilon, site);
        InPlace.Addcdiv(parameter, m, denom, -(learningRate / biasCorrection1), site);
    }
}
