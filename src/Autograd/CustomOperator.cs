using System.Reflection;

namespace Autograd;

/// <summary>
/// The base of an operator defined outside the library, as <c>torch.autograd.Function</c>: <see cref="Forward"/> computes
/// the output from the inputs with any code (it runs with recording off, so it may use kernels, spans or other operators),
/// saves what the rule needs with <see cref="CustomContext.SaveForBackward"/>, and <see cref="Backward"/> turns the gradient
/// of the output into gradients of the inputs with Tensor operations, so that second derivatives work (<c>createGraph</c>).
/// <see cref="Jvp"/> is the optional forward rule (forward mode). <see cref="Apply"/> runs it and records a node named
/// <see cref="Name"/> like a built-in operator's.
/// </summary>
/// <remarks>
/// The formula shown by the study tools (graph, tape listing, explain mode) and by <see cref="Node.Formula"/> is the
/// <see cref="RuleAttribute"/> on the derived class whose <see cref="RuleAttribute.Op"/> is <see cref="Name"/>; without one,
/// the node shows the generic rule of custom operators. Constants of the operator (a scale, a dim) are fields of the
/// derived class; one instance may be applied any number of times, each application gets its own context.
/// </remarks>
/// <example>
/// <code>
/// [Rule("Softplus", Forward = "y = log(1 + eˣ)", Backward = "dx = g ⊙ σ(x)", Tangent = "ẏ = ẋ ⊙ σ(x)", Saves = "x")]
/// sealed class Softplus : CustomOperator
/// {
///     public override string Name => "Softplus";
///     protected override Tensor Forward(CustomContext ctx, Tensor[] x)
///     {
///         ctx.SaveForBackward(x[0]);
///         return x[0].Relu() + (-x[0].Abs()).Exp().Log1p(); // any code
///     }
///     protected override Tensor?[] Backward(CustomContext ctx, Tensor g) => [g * ctx.Saved(0).Sigmoid()];
/// }
/// var y = new Softplus().Apply(x);
/// </code>
/// </example>
public abstract class CustomOperator
{
    private RuleAttribute? _rule;
    private bool _ruleRead;

    /// <summary>The operator's name, shown on its nodes (<see cref="Node.Name"/>) and in error messages; the class name by default.</summary>
    public virtual string Name => GetType().Name;

    /// <summary>The rule shown for the operator's nodes: the class's <see cref="RuleAttribute"/> for <see cref="Name"/>, or null.</summary>
    public RuleAttribute? Rule
    {
        get
        {
            if (!_ruleRead)
            {
                _rule = GetType().GetCustomAttributes<RuleAttribute>(inherit: false).FirstOrDefault(r => r.Op == Name);
                _ruleRead = true;
            }

            return _rule;
        }
    }

    /// <summary>
    /// Computes the output from <paramref name="inputs"/> (recording is off and no dual level is visible while it runs) and
    /// saves, with <paramref name="context"/>, the tensors <see cref="Backward"/> and <see cref="Jvp"/> need.
    /// </summary>
    /// <param name="context">The context of this application: save tensors into it.</param>
    /// <param name="inputs">The inputs given to <see cref="Apply"/>.</param>
    /// <returns>The output: a float tensor.</returns>
    protected abstract Tensor Forward(CustomContext context, Tensor[] inputs);

    /// <summary>
    /// The backward rule: the gradient of each input (null for none, or for an input whose
    /// <see cref="CustomContext.NeedsInputGrad"/> is false), shaped like that input, written with Tensor operations.
    /// </summary>
    /// <param name="context">The context of the application, with the saved tensors.</param>
    /// <param name="grad">The gradient of the output, shaped like it.</param>
    /// <returns>One entry per input.</returns>
    protected abstract Tensor?[] Backward(CustomContext context, Tensor grad);

    /// <summary>
    /// The forward rule (forward mode): the tangent of the output from the tangents of the inputs (null entries are zero),
    /// or null for zero. The default has none and throws.
    /// </summary>
    /// <param name="context">The context of the application, with the saved tensors.</param>
    /// <param name="tangents">One entry per input.</param>
    /// <param name="output">The output of <see cref="Forward"/>.</param>
    /// <returns>The output's tangent, shaped like it, or null.</returns>
    /// <exception cref="NotSupportedException">The operator defines no forward rule.</exception>
    protected virtual Tensor? Jvp(CustomContext context, Tensor?[] tangents, Tensor output)
        => throw new NotSupportedException($"{Name}: this custom operator defines no forward rule (override Jvp), so forward mode (Autodiff.Jvp) cannot go through it.");

    /// <summary>Runs <see cref="Forward"/> and, when an input requires grad (or carries a tangent), records a node named <see cref="Name"/>.</summary>
    /// <param name="inputs">The input tensors.</param>
    /// <returns>The output.</returns>
    /// <exception cref="ArgumentException">No input, or a null input.</exception>
    /// <exception cref="InvalidOperationException">Forward returned null or a tensor that is not floating-point.</exception>
    public Tensor Apply(params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Length == 0 || Array.IndexOf(inputs, null) >= 0)
        {
            throw new ArgumentException($"{Name}: Apply needs at least one input and no null input (got {inputs.Length}).", nameof(inputs));
        }

        var context = new CustomContext(this, inputs.Length);
        Tensor output;
        var level = ForwardMode.Level;
        ForwardMode.Level = 0;
        try
        {
            using (GradMode.NoGrad())
            {
                output = Forward(context, [.. inputs]);
            }
        }
        finally
        {
            ForwardMode.Level = level;
        }

        if (output is null || !output.DType.IsFloatingPoint())
        {
            throw new InvalidOperationException($"{Name}: Forward must return a float64 or float32 tensor, got {(output is null ? "null" : output.DType.Name() + " " + output.Shape)}.");
        }

        if (Array.Exists(inputs, i => ReferenceEquals(i, output)) || output.GradFn is not null || output.RequiresGrad)
        {
            output = output.Detach().Clone();
        }

        if (Tensor.ShouldRecord(inputs))
        {
            var node = new CustomOperatorNode(this, context, inputs);
            output.SetGradFn(node);
        }

        return output;
    }

    internal Tensor?[] RunBackward(CustomContext context, Tensor grad) => Backward(context, grad);

    internal Tensor? RunJvp(CustomContext context, Tensor?[] tangents, Tensor output) => Jvp(context, tangents, output);
}

/// <summary>
/// The context of one application of a <see cref="CustomOperator"/>: the tensors its <c>Forward</c> saved for the rules,
/// and which inputs need gradients.
/// </summary>
public sealed class CustomContext
{
    private readonly CustomOperator _operator;
    private readonly List<Tensor> _pending = [];
    private CustomOperatorNode? _node;

    internal CustomContext(CustomOperator op, int inputCount)
    {
        _operator = op;
        InputCount = inputCount;
    }

    /// <summary>The number of inputs of the application.</summary>
    public int InputCount { get; }

    /// <summary>The number of tensors saved.</summary>
    public int SavedCount => _pending.Count;

    /// <summary>
    /// Saves tensors for the rules (in order); call it from <c>Forward</c>. Each is checked when read back: one changed in
    /// place since fails with the version error naming the operator.
    /// </summary>
    /// <param name="tensors">The tensors, e.g. an input or the output.</param>
    /// <exception cref="InvalidOperationException">Called after <c>Forward</c>.</exception>
    public void SaveForBackward(params Tensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (_node is not null)
        {
            throw new InvalidOperationException($"{_operator.Name}: SaveForBackward can only be called from Forward.");
        }

        foreach (var t in tensors)
        {
            ArgumentNullException.ThrowIfNull(t, nameof(tensors));
            _pending.Add(t);
        }
    }

    /// <summary>Saved tensor <paramref name="index"/>, in the order saved.</summary>
    /// <param name="index">The index in the order of <see cref="SaveForBackward"/>.</param>
    /// <returns>The tensor.</returns>
    /// <exception cref="ArgumentOutOfRangeException">No tensor was saved at <paramref name="index"/>.</exception>
    /// <exception cref="InvalidOperationException">It was released by an earlier backward, or changed in place since it was saved.</exception>
    public Tensor Saved(int index)
    {
        if ((uint)index >= (uint)_pending.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"{_operator.Name}: saved tensor {index} does not exist; Forward saved {_pending.Count}.");
        }

        return _node is null ? _pending[index] : _node.ReadSaved(index);
    }

    /// <summary>True when the backward rule must compute the gradient of input <paramref name="index"/> (always true outside a backward walk).</summary>
    /// <param name="index">The input's index.</param>
    /// <returns>Whether the gradient is needed.</returns>
    public bool NeedsInputGrad(int index) => _node is null || _node.InputNeedsGrad(index);

    internal IReadOnlyList<Tensor> Pending => _pending;

    internal void Bind(CustomOperatorNode node) => _node = node;
}

/// <summary>The node of one application of a <see cref="CustomOperator"/>: it runs the operator's rules and checks what they return.</summary>
[Rule("CustomOperator", Forward = "y = the operator's Forward(x…)", Backward = "dxᵢ = the operator's Backward(g)", Tangent = "ẏ = the operator's Jvp(ẋ…)")]
public sealed class CustomOperatorNode : Node
{
    private static readonly RuleAttribute s_generic = typeof(CustomOperatorNode).GetCustomAttribute<RuleAttribute>()!;
    private readonly CustomContext _context;
    private readonly Shape[] _shapes;
    private readonly DType[] _dtypes;

    internal CustomOperatorNode(CustomOperator op, CustomContext context, Tensor[] inputs)
        : base(op.Name, inputs)
    {
        Operator = op;
        _context = context;
        _shapes = [.. inputs.Select(i => i.Shape)];
        _dtypes = [.. inputs.Select(i => i.DType)];
        foreach (var t in context.Pending)
        {
            SaveTensor(t);
        }

        context.Bind(this);
    }

    /// <summary>The operator this node applied.</summary>
    public CustomOperator Operator { get; }

    /// <summary>The operator's rule, or the generic rule of custom operators when its class declares none.</summary>
    internal RuleAttribute OperatorRule => Operator.Rule ?? s_generic;

    internal Tensor ReadSaved(int index) => Saved(index);

    internal bool InputNeedsGrad(int index) => NeedsInputGrad(index);

    /// <inheritdoc />
    protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
    {
        var grads = Operator.RunBackward(_context, grad);
        if (grads is null || grads.Length != _shapes.Length)
        {
            throw new InvalidOperationException(
                $"{Name}: Backward returned {(grads is null ? "null" : grads.Length + " gradients")} for {_shapes.Length} inputs; it must return one entry (a tensor or null) per input.");
        }

        for (var i = 0; i < grads.Length; i++)
        {
            if (grads[i] is { } g && (g.Shape != _shapes[i] || g.DType != _dtypes[i]))
            {
                throw new InvalidOperationException(
                    $"{Name}: Backward returned a gradient of shape {g.Shape} {g.DType.Name()} for input {i} of shape {_shapes[i]} {_dtypes[i].Name()}; it must have the input's shape and dtype.");
            }

            if (NeedsInputGrad(i))
            {
                inputGrads[i] = grads[i];
            }
        }
    }

    /// <inheritdoc />
    protected internal override Tensor? Jvp(Tensor?[] tangents, Tensor output) => Operator.RunJvp(_context, tangents, output);
}
