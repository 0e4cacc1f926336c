using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// A recorded operation on the tape: it knows the nodes that produced its inputs (its edges) and the local
/// backward rule that turns the gradient of its output into gradients of its inputs.
/// </summary>
/// <remarks>
/// Operators derive from this class, save what their rule needs in fields (no closures), and write the rule
/// with Tensor operations so that with <c>createGraph</c> the gradients are recorded too.
/// </remarks>
public abstract class Node
{
    [ThreadStatic]
    private static long t_sequence;

    // The edges of a node with one or two inputs live inline (no array per node); more inputs use _manyEdges.
    private readonly EdgePair _edges;
    private readonly Node?[]? _manyEdges;
    private readonly int _inputCount;

    // Walk state, owned by the engine during one backward walk and reset afterwards.
    internal int WalkDeps;
    internal int WalkStamp;
    internal bool WalkNeeded;

    /// <summary>True while <see cref="WalkGrad"/> is a sum the walk made itself, so later gradients can be added in place.</summary>
    internal bool WalkGradOwned;
    internal int WalkCapture = -1;
    internal Tensor? WalkGrad;

    /// <summary>Creates a node for an operation with one input.</summary>
    protected Node(string name, Tensor input0)
    {
        Name = name;
        _edges[0] = input0.Edge;
        _inputCount = 1;
        Sequence = ++t_sequence;
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseNodeCreated(this, [input0]);
        }
    }

    /// <summary>Creates a node for an operation with two inputs.</summary>
    protected Node(string name, Tensor input0, Tensor input1)
    {
        Name = name;
        _edges[0] = input0.Edge;
        _edges[1] = input1.Edge;
        _inputCount = 2;
        Sequence = ++t_sequence;
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseNodeCreated(this, [input0, input1]);
        }
    }

    /// <summary>Creates a node for an operation with any number of inputs.</summary>
    protected Node(string name, ReadOnlySpan<Tensor> inputs)
    {
        Name = name;
        _inputCount = inputs.Length;
        if (inputs.Length <= 2)
        {
            for (var i = 0; i < inputs.Length; i++)
            {
                _edges[i] = inputs[i].Edge;
            }
        }
        else
        {
            _manyEdges = new Node?[inputs.Length];
            for (var i = 0; i < inputs.Length; i++)
            {
                _manyEdges[i] = inputs[i].Edge;
            }
        }

        Sequence = ++t_sequence;
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseNodeCreated(this, inputs);
        }
    }

    /// <summary>
    /// Creates a node for a binary operation of a tensor and a number (<c>x * 2.0</c>, <c>1.0 - x</c>): two inputs, the
    /// number at <paramref name="constantIndex"/> with no edge, as PyTorch wraps a Python number. No tensor is made for
    /// the number unless an observer is attached (it is then shown as a rank-0 constant input).
    /// </summary>
    private protected Node(string name, Tensor input, int constantIndex, double constant)
    {
        Name = name;
        _edges[1 - constantIndex] = input.Edge;
        _inputCount = 2;
        Sequence = ++t_sequence;
        if (TapeObserver.Current is not null)
        {
            var c = Tensor.ScalarConstant(constant, input.DType);
            TapeObserver.RaiseNodeCreated(this, constantIndex == 0 ? [c, input] : [input, c]);
        }
    }

    /// <summary>Creates an edge-less node (the accumulator of a leaf).</summary>
    private protected Node(string name)
    {
        Name = name;
        Sequence = long.MaxValue;
    }

    /// <summary>The operation's name, e.g. <c>Exp</c> or <c>Softmax</c>.</summary>
    public string Name { get; }

    /// <summary>The backward formula in words, e.g. <c>dx = g ⊙ y</c>; shown by study tools.</summary>
    public virtual string Formula => string.Empty;

    /// <summary>The order in which nodes were recorded on this thread (later nodes have larger numbers).</summary>
    public long Sequence { get; }

    /// <summary>The number of inputs of the operation.</summary>
    public int InputCount => _inputCount;

    /// <summary>The nodes that produced the inputs (null for inputs that need no gradient).</summary>
    public ReadOnlySpan<Node?> NextNodes => _manyEdges ?? ((ReadOnlySpan<Node?>)_edges)[.._inputCount];

    /// <summary>The shape of the tensor this node produced.</summary>
    public Shape OutputShape { get; private set; } = Shape.Scalar;

    /// <summary>The dtype of the tensor this node produced.</summary>
    public DType OutputDType { get; private set; }

    /// <summary>True once a backward without <c>retainGraph</c> has run this node and freed what it saved.</summary>
    public bool IsReleased { get; private set; }

    /// <summary>True when the rule must compute the gradient of input <paramref name="i"/>.</summary>
    protected bool NeedsInputGrad(int i) => Next(i) is { WalkNeeded: true };

    /// <summary>
    /// The backward rule: given the gradient <paramref name="grad"/> of the output, writes the gradient of each input
    /// that needs one (see <see cref="NeedsInputGrad"/>) into <paramref name="inputGrads"/>, shaped like that input.
    /// Runs under grad mode on (create-graph) or off, so it is written with Tensor operations.
    /// </summary>
    protected internal abstract void Backward(Tensor grad, Tensor?[] inputGrads);

    /// <summary>Frees the tensors saved for backward. Overrides null their fields and call the base method.</summary>
    protected internal virtual void Release() => IsReleased = true;

    internal void AttachOutput(Tensor output)
    {
        OutputShape = output.Shape;
        OutputDType = output.DType;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Node? Next(int i) => _manyEdges is null ? _edges[i] : _manyEdges[i];

    internal bool IsAccumulator => this is AccumulateGrad;

    /// <summary>The name and the shape of the produced tensor, e.g. <c>Exp [9] float64</c>.</summary>
    public override string ToString() => $"{Name} {OutputShape} {OutputDType.Name()}";

    /// <summary>Throws if a saved tensor was released; used by rules that read saved state.</summary>
    protected static T Saved<T>(T? value, [CallerArgumentExpression(nameof(value))] string? what = null)
        where T : class
        => value ?? throw new InvalidOperationException($"Saved tensor '{what}' has been released.");

    /// <summary>Storage for one or two edges inside the node.</summary>
    [InlineArray(2)]
    private struct EdgePair
    {
        private Node? _element;
    }
}

/// <summary>The node that adds incoming gradients into a leaf tensor's <see cref="Tensor.Grad"/>.</summary>
public sealed class AccumulateGrad : Node
{
    internal AccumulateGrad(Tensor leaf)
        : base("AccumulateGrad")
    {
        Leaf = leaf;
        AttachOutput(leaf);
    }

    /// <summary>The leaf whose gradient this node accumulates.</summary>
    public Tensor Leaf { get; }

    /// <inheritdoc />
    public override string Formula => "x.grad += g";

    /// <inheritdoc />
    protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
    {
    }

    /// <inheritdoc />
    protected internal override void Release()
    {
        // A leaf's accumulator holds nothing to free and serves every later backward.
    }
}
