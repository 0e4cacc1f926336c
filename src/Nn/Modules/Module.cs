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

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>. Dropout is active only in training.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>Computes the module's output.</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>Same as <see cref="Forward"/>, so a module reads like a function: <c>model.Call(x)</c>.</summary>
    public Tensor Call(Tensor input) => Forward(input);

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
