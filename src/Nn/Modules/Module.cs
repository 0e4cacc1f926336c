using System.Runtime.CompilerServices;

namespace Autograd.Nn;

/// <summary>
/// The base of every network building block: it owns named parameters and child modules (registered in a stable
/// order), knows whether it is training or evaluating, and maps an input tensor to an output in <see cref="Forward"/>.
/// </summary>
public abstract class Module
{
    private readonly List<KeyValuePair<string, Tensor>> _parameters = [];
    private readonly List<KeyValuePair<string, Tensor>> _buffers = [];
    private readonly List<KeyValuePair<string, Module>> _children = [];
    private ModuleHooks? _hooks;

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>. Dropout is active only in training.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>
    /// Runs the module as PyTorch's <c>module(x)</c> does: the forward pre-hooks (each may replace the input), then
    /// <see cref="Forward"/>, then the forward hooks (each may replace the output), with the backward hooks attached to
    /// the input and the output on the tape. Without hooks it is <see cref="Forward"/>. Containers call their children
    /// this way, so hooks on a child run inside its parent; calling <see cref="Forward"/> directly runs no hook.
    /// </summary>
    /// <param name="input">The module's input.</param>
    /// <returns>The module's output, or a forward hook's replacement.</returns>
    public Tensor Call(Tensor input)
    {
        var hooks = _hooks;
        if (hooks is null)
        {
            return Forward(input);
        }

        foreach (var pre in hooks.Pre)
        {
            input = pre(this, input) ?? input;
        }

        var backward = hooks.Backward.Length > 0 && GradMode.IsEnabled ? new BackwardHookCall(this, hooks.Backward) : null;
        if (backward is not null)
        {
            input = backward.WrapInput(input);
        }

        var output = Forward(input);
        foreach (var post in hooks.Post)
        {
            output = post(this, input, output) ?? output;
        }

        return backward is null ? output : backward.WrapOutput(output);
    }

    /// <summary>
    /// Registers a hook that <see cref="Call"/> runs before <see cref="Forward"/> with (module, input), as PyTorch's
    /// <c>register_forward_pre_hook</c>; a hook that returns a tensor replaces the input.
    /// </summary>
    /// <param name="hook">Called with the module and its input; returns a replacement input or null.</param>
    /// <returns>A handle whose <see cref="HookHandle.Dispose"/> removes the hook.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hook"/> is null.</exception>
    public HookHandle RegisterForwardPreHook(Func<Module, Tensor, Tensor?> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        return Hooks.AddPre(hook);
    }

    /// <summary>
    /// Registers a hook that <see cref="Call"/> runs after <see cref="Forward"/> with (module, input, output), as
    /// PyTorch's <c>register_forward_hook</c>; a hook that returns a tensor replaces the output.
    /// </summary>
    /// <param name="hook">Called with the module, its input and its output; returns a replacement output or null.</param>
    /// <returns>A handle whose <see cref="HookHandle.Dispose"/> removes the hook.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hook"/> is null.</exception>
    public HookHandle RegisterForwardHook(Func<Module, Tensor, Tensor, Tensor?> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        return Hooks.AddPost(hook);
    }

    /// <summary>
    /// Registers a hook run during backward walks with (module, gradient with respect to the input, gradient with
    /// respect to the output) for every later <see cref="Call"/> recorded with grad mode on, as PyTorch's
    /// <c>register_full_backward_hook</c>. The input gradient is null when the input does not require grad (the hook then
    /// runs when the output gradient is known and must return null); otherwise a hook that returns a tensor replaces the
    /// input gradient. Hooks run in the order they were registered.
    /// </summary>
    /// <param name="hook">Called with the module, the input gradient (or null) and the output gradient.</param>
    /// <returns>A handle whose <see cref="HookHandle.Dispose"/> removes the hook (calls already recorded keep it).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hook"/> is null.</exception>
    public HookHandle RegisterFullBackwardHook(Func<Module, Tensor?, Tensor, Tensor?> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        return Hooks.AddBackward(hook);
    }

    private ModuleHooks Hooks
    {
        get
        {
            if (_hooks is { } hooks)
            {
                return hooks;
            }

            Interlocked.CompareExchange(ref _hooks, new ModuleHooks(), null);
            return _hooks;
        }
    }

    /// <summary>
    /// Every parameter of this module and its descendants with its dotted name (<c>0.weight</c>, <c>encoder.1.bias</c>):
    /// own parameters first in registration order, then each child's in registration order.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedParameters() => Named(static m => m._parameters);

    /// <summary>
    /// Every buffer (state that is saved with the module but not trained, such as batch norm's <c>running_mean</c>) of
    /// this module and its descendants with its dotted name, in the same order as <see cref="NamedParameters"/>.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedBuffers() => Named(static m => m._buffers);

    /// <summary>
    /// Everything saved with the module, named and ordered as PyTorch's <c>state_dict()</c>: this module's parameters,
    /// then its buffers, then each child's state in registration order.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> NamedState() => Named(static m => m._parameters.Concat(m._buffers));

    /// <summary>Every parameter, in the order of <see cref="NamedParameters"/>.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Value);

    /// <summary>The direct children with their names, in registration order.</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedChildren() => _children;

    /// <summary>The number of scalar parameters.</summary>
    public long ParameterCount => Parameters().Sum(p => (long)p.ElementCount);

    /// <summary>Sets training (true) or evaluation (false) mode on this module and every descendant. Returns this module.</summary>
    public Module Train(bool training = true)
    {
        IsTraining = training;
        foreach (var (_, child) in _children)
        {
            child.Train(training);
        }

        return this;
    }

    /// <summary>Switches to evaluation mode (same as <c>Train(false)</c>).</summary>
    public Module Eval() => Train(false);

    /// <summary>
    /// Clears the gradient of every parameter (to null, or to zeros in place when <paramref name="setToNull"/> is false,
    /// which bumps each gradient's <see cref="Tensor.Version"/>).
    /// </summary>
    /// <param name="setToNull">True (the default): set each gradient to null. False: fill it with zeros.</param>
    /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write.</param>
    /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
    /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
    public void ZeroGrad(bool setToNull = true, [CallerMemberName] string callerMember = "", [CallerFilePath] string callerFile = "", [CallerLineNumber] int callerLine = 0)
    {
        foreach (var p in Parameters())
        {
            p.ClearGrad(setToNull, "Module.ZeroGrad", callerMember, callerFile, callerLine);
        }
    }

    /// <summary>Registers a parameter under <paramref name="name"/>; it becomes a leaf that requires grad.</summary>
    /// <exception cref="ArgumentException">The name is empty, contains a dot, or is already taken.</exception>
    protected Tensor RegisterParameter(string name, Tensor parameter)
    {
        CheckName(name);
        if (!parameter.IsLeaf)
        {
            throw new ArgumentException($"RegisterParameter: parameter '{name}' must be a leaf tensor; it was produced by '{parameter.OpName}'. Use Detach().", nameof(parameter));
        }

        parameter.RequiresGrad = true;
        parameter.LeaveScope();
        _parameters.Add(new(name, parameter));
        return parameter;
    }

    /// <summary>
    /// Registers a buffer under <paramref name="name"/>: a tensor saved and loaded with the module (see
    /// <see cref="NamedState"/>) that is not a parameter and does not require grad. The module updates it in place.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, contains a dot, or is already taken; or the tensor requires grad.</exception>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        CheckName(name);
        if (buffer.RequiresGrad)
        {
            throw new ArgumentException($"RegisterBuffer: buffer '{name}' (shape {buffer.Shape}) requires grad; a buffer is not trained. Pass a tensor without RequiresGrad, or register it as a parameter.", nameof(buffer));
        }

        buffer.LeaveScope();
        _buffers.Add(new(name, buffer));
        return buffer;
    }

    /// <summary>Registers a child module under <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">The name is empty, contains a dot, or is already taken.</exception>
    protected T RegisterModule<T>(string name, T module)
        where T : Module
    {
        CheckName(name);
        _children.Add(new(name, module));
        return module;
    }

    /// <summary>Throws, naming this module, unless <paramref name="value"/> is at least <paramref name="minimum"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="value"/> is less than <paramref name="minimum"/>.</exception>
    private protected void RequireAtLeast(int value, int minimum, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(value))] string name = "")
    {
        if (value < minimum)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{GetType().Name}: {name} must be at least {minimum}, got {value}.");
        }
    }

    /// <summary>Throws, naming this module, unless <paramref name="heads"/> divides <paramref name="dModel"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="heads"/> does not divide <paramref name="dModel"/>.</exception>
    private protected void RequireHeadsDivide(int dModel, int heads)
    {
        if (dModel % heads != 0)
        {
            throw new ArgumentException($"{GetType().Name}: {heads} heads do not divide the model size {dModel}.", nameof(heads));
        }
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.', StringComparison.Ordinal))
        {
            throw new ArgumentException($"{GetType().Name}: invalid name '{name}'; names must be non-empty and contain no '.'.", nameof(name));
        }

        if (_parameters.Any(p => p.Key == name) || _buffers.Any(b => b.Key == name) || _children.Any(c => c.Key == name))
        {
            throw new ArgumentException($"{GetType().Name}: the name '{name}' is already registered.", nameof(name));
        }
    }

    /// <summary>The tensors <paramref name="own"/> picks from this module, then from each descendant, with dotted names.</summary>
    private IEnumerable<KeyValuePair<string, Tensor>> Named(Func<Module, IEnumerable<KeyValuePair<string, Tensor>>> own)
    {
        foreach (var t in own(this))
        {
            yield return t;
        }

        foreach (var (name, child) in _children)
        {
            foreach (var (tn, t) in child.Named(own))
            {
                yield return new(name + "." + tn, t);
            }
        }
    }

    /// <summary>The module's type and its children, one per line, indented.</summary>
    public override string ToString() => Describe(0);

    /// <summary>A one-line description of this module's own configuration, e.g. <c>in=784, out=256</c>.</summary>
    protected virtual string ExtraDescription => string.Empty;

    private string Describe(int indent)
    {
        var head = $"{GetType().Name}({ExtraDescription})";
        if (_children.Count == 0)
        {
            return head;
        }

        var pad = new string(' ', (indent + 1) * 2);
        var lines = _children.Select(c => $"{pad}({c.Key}): {c.Value.Describe(indent + 1)}");
        return $"{GetType().Name}(\n{string.Join("\n", lines)}\n{new string(' ', indent * 2)})";
    }
}
