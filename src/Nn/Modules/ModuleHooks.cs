namespace Autograd.Nn;

/// <summary>
/// The hooks of one module (see <see cref="Module.RegisterForwardPreHook"/>, <see cref="Module.RegisterForwardHook"/> and
/// <see cref="Module.RegisterFullBackwardHook"/>), each list replaced as a whole when a hook is added or removed, so a
/// call in progress runs the hooks it started with.
/// </summary>
internal sealed class ModuleHooks
{
    private readonly Lock _lock = new();

    public Func<Module, Tensor, Tensor?>[] Pre { get; private set; } = [];

    public Func<Module, Tensor, Tensor, Tensor?>[] Post { get; private set; } = [];

    public Func<Module, Tensor?, Tensor, Tensor?>[] Backward { get; private set; } = [];

    public HookHandle AddPre(Func<Module, Tensor, Tensor?> hook) => Add(hook, () => Pre, v => Pre = v);

    public HookHandle AddPost(Func<Module, Tensor, Tensor, Tensor?> hook) => Add(hook, () => Post, v => Post = v);

    public HookHandle AddBackward(Func<Module, Tensor?, Tensor, Tensor?> hook) => Add(hook, () => Backward, v => Backward = v);

    private HookHandle Add<THook>(THook hook, Func<THook[]> get, Action<THook[]> set)
        where THook : class
    {
        lock (_lock)
        {
            set([.. get(), hook]);
        }

        return new HookHandle(() =>
        {
            lock (_lock)
            {
                var list = get();
                var index = Array.IndexOf(list, hook);
                if (index >= 0)
                {
                    set([.. list[..index], .. list[(index + 1)..]]);
                }
            }
        });
    }
}

/// <summary>
/// One call of a module with backward hooks: the gradient with respect to its output, noted when it passes the output's
/// identity node, and the hooks to run when the gradient with respect to its input passes the input's identity node.
/// </summary>
internal sealed class BackwardHookCall(Module module, Func<Module, Tensor?, Tensor, Tensor?>[] hooks)
{
    private Tensor? _gradOutput;
    private bool _inputTracked;

    /// <summary>The input as the module's forward sees it: an identity view on the tape when the input requires grad.</summary>
    public Tensor WrapInput(Tensor input)
    {
        if (!input.RequiresGrad)
        {
            return input;
        }

        _inputTracked = true;
        var view = new Tensor(input.Shape, input);
        view.SetGradFn(new ModuleInputHookNode(input, this));
        return view;
    }

    /// <summary>The output as the caller sees it: an identity view on the tape when the output requires grad.</summary>
    public Tensor WrapOutput(Tensor output)
    {
        if (!output.RequiresGrad)
        {
            return output;
        }

        var view = new Tensor(output.Shape, output);
        view.SetGradFn(new ModuleOutputHookNode(output, this));
        return view;
    }

    /// <summary>The gradient with respect to the output has arrived; without a tracked input the hooks run now, with no input gradient.</summary>
    public void OutputGradient(Tensor g)
    {
        _gradOutput = g;
        if (!_inputTracked)
        {
            foreach (var hook in hooks)
            {
                if (hook(module, null, g) is not null)
                {
                    throw new InvalidOperationException(
                        $"{module.GetType().Name} backward hook: the module's input does not require grad, so there is no input gradient to replace; the hook must return null.");
                }
            }
        }
    }

    /// <summary>Runs the hooks on the gradient with respect to the input and returns the one to pass on.</summary>
    public Tensor InputGradient(Tensor g)
    {
        var gradOutput = _gradOutput ?? throw new InvalidOperationException(
            $"{module.GetType().Name} backward hook: a gradient reached the module's input without passing its output.");
        foreach (var hook in hooks)
        {
            var replaced = hook(module, g, gradOutput);
            if (replaced is null)
            {
                continue;
            }

            if (replaced.Shape != g.Shape || replaced.DType != g.DType)
            {
                throw new InvalidOperationException(
                    $"{module.GetType().Name} backward hook returned an input gradient of shape {replaced.Shape} {replaced.DType.Name()}; it must return null or a tensor of shape {g.Shape} {g.DType.Name()}.");
            }

            g = replaced;
        }

        return g;
    }
}

/// <summary>Identity on the tape at a hooked module's input: its rule hands the input gradient to the module's backward hooks.</summary>
[Rule("ModuleInputHook", Forward = "y = x", Backward = "dx = hooks(g)", Tangent = "ẏ = ẋ")]
internal sealed class ModuleInputHookNode : Node
{
    private readonly BackwardHookCall _call;

    public ModuleInputHookNode(Tensor input, BackwardHookCall call)
        : base("ModuleInputHook", input)
    {
        _call = call;
    }

    protected internal override void Backward(Tensor grad, Tensor?[] inputGrads) => inputGrads[0] = _call.InputGradient(grad);

    /// <inheritdoc/>
    protected internal override Tensor? Jvp(Tensor?[] tangents, Tensor output) => tangents[0];
}

/// <summary>Identity on the tape at a hooked module's output: its rule notes the output gradient for the module's backward hooks.</summary>
[Rule("ModuleOutputHook", Forward = "y = x", Backward = "dx = g", Tangent = "ẏ = ẋ")]
internal sealed class ModuleOutputHookNode : Node
{
    private readonly BackwardHookCall _call;

    public ModuleOutputHookNode(Tensor output, BackwardHookCall call)
        : base("ModuleOutputHook", output)
    {
        _call = call;
    }

    protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
    {
        _call.OutputGradient(grad);
        inputGrads[0] = grad;
    }

    /// <inheritdoc/>
    protected internal override Tensor? Jvp(Tensor?[] tangents, Tensor output) => tangents[0];
}
