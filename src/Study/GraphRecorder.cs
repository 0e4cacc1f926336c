using System.Runtime.CompilerServices;

namespace Autograd.Study;

/// <summary>
/// A recording scope for study tools: while it is attached it remembers, for every operation recorded on this thread,
/// the node, its inputs, the tensor it produced and what its backward rule saved, and during a backward walk the
/// gradient that reached each node. It also names tensors: outputs <c>t0</c>, <c>t1</c>, … in execution order, leaves
/// that require grad <c>x0</c>, <c>x1</c>, …, constants <c>c0</c>, …, or the names given with <see cref="Name"/>.
/// </summary>
/// <remarks>
/// <para>
/// The tape keeps no outputs (a node saves only what its rule needs), so <see cref="Graph.ToDot"/> can show the value
/// of a non-leaf tensor only through a recorder. Create it before the forward pass and keep it for as long as you want
/// to draw or list the graph:
/// <code>
/// using var recorder = new GraphRecorder();
/// recorder.Name(x, "x");
/// var s = x.SoftmaxComposed(0);
/// s.Backward(dL);
/// File.WriteAllText("softmax.dot", Graph.ToDot(s, recorder: recorder));
/// </code>
/// Disposing the recorder stops the recording (detaches it from the tape); what it recorded stays available.
/// </para>
/// <para>
/// By default tensors are held strongly for as long as the recorder lives. With <c>weakReferences</c> they are held
/// weakly: values and gradients are shown only while the program still holds the tensors.
/// </para>
/// <para>Nodes recorded before the recorder was attached are named on demand (in recording order) when first met.</para>
/// <para>A recorder belongs to the thread that created it, as tape observers do; it is not thread-safe.</para>
/// </remarks>
public class GraphRecorder : TapeObserver, IDisposable
{
    private readonly List<Entry> _entries = [];
    private readonly ConditionalWeakTable<Node, Entry> _byNode = [];
    private readonly ConditionalWeakTable<Tensor, string> _userNames = [];
    private readonly ConditionalWeakTable<Tensor, string> _leafNames = [];
    private readonly ConditionalWeakTable<Tensor, Tensor> _leafTangents = [];

    // Results of operations that ran their forward rule without being recorded (pure forward mode): they have no GradFn,
    // so this is how a later operation knows it reads another's result rather than a constant.
    private readonly ConditionalWeakTable<Tensor, Entry> _forwardOnly = [];
    private IDisposable? _scope;
    private int _nextOp, _nextLeaf, _nextConst;
    private Node? _running;

    /// <summary>Creates a recorder and attaches it to the tape on this thread until it is disposed.</summary>
    /// <param name="weakReferences">Hold recorded tensors weakly instead of keeping them alive.</param>
    public GraphRecorder(bool weakReferences = false)
        : this(weakReferences, attach: true)
    {
    }

    private protected GraphRecorder(bool weakReferences, bool attach)
    {
        WeakReferences = weakReferences;
        if (attach)
        {
            _scope = Attach(this);
        }
    }

    /// <summary>True when recorded tensors are held weakly.</summary>
    public bool WeakReferences { get; }

    /// <summary>True until the recorder is disposed (while it receives the tape's events).</summary>
    public bool IsRecording => _scope is not null;

    /// <summary>The nodes this recorder has seen, in execution order (nodes already collected are left out).</summary>
    public IReadOnlyList<Node> Nodes => [.. _entries.Select(e => e.Node.Get()).OfType<Node>()];

    /// <summary>Gives <paramref name="tensor"/> a name used instead of <c>x0</c>/<c>t3</c> in listings, traces and graphs.</summary>
    /// <param name="tensor">A leaf or a recorded result.</param>
    /// <param name="name">The name, e.g. <c>x</c> or <c>logits</c>.</param>
    /// <returns><paramref name="tensor"/>, for one-line use: <c>var x = rec.Name(Tensor.Arange(1, 10).WithRequiresGrad(), "x");</c></returns>
    public Tensor Name(Tensor tensor, string name)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _userNames.AddOrUpdate(tensor, name);
        if (tensor.GradFn is { } fn)
        {
            EntryFor(fn).UserName = name;
        }

        return tensor;
    }

    /// <summary>
    /// Names every tensor of <paramref name="named"/> by its name, e.g. a model's <c>NamedParameters()</c>, so that the
    /// graph, the tape listing and the explanations call the parameters <c>0.weight</c>, <c>2.bias</c>, … (as torchviz does
    /// with <c>named_parameters</c>) instead of <c>x0</c>, <c>x1</c>, ….
    /// </summary>
    /// <param name="named">Pairs of a name and a tensor.</param>
    /// <exception cref="ArgumentException">A name is empty or white space.</exception>
    public void NameParameters(IEnumerable<KeyValuePair<string, Tensor>> named)
    {
        ArgumentNullException.ThrowIfNull(named);
        foreach (var (name, tensor) in named)
        {
            Name(tensor, name);
        }
    }

    /// <summary>
    /// The tangent (forward mode) of the tensor <paramref name="node"/> produced, as its forward rule computed it inside a
    /// dual level while this recorder was attached; null when none was computed (or, with weak references, it was collected).
    /// For an <see cref="AccumulateGrad"/>, the tangent its leaf carried when first used.
    /// </summary>
    public Tensor? TangentOf(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is AccumulateGrad acc)
        {
            return TangentOf(acc.Leaf);
        }

        return _byNode.TryGetValue(node, out var e) ? e.Tangent.Get() : null;
    }

    /// <summary>The tangent of <paramref name="tensor"/>: of its operation (see <see cref="TangentOf(Node)"/>), or for a leaf the one it carried when first used.</summary>
    public Tensor? TangentOf(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.GradFn is { } fn)
        {
            return TangentOf(fn);
        }

        return _leafTangents.TryGetValue(tensor, out var t) ? t : null;
    }

    /// <summary>The name of <paramref name="tensor"/>: given with <see cref="Name"/>, else <c>tN</c> for a recorded result, <c>xN</c> for a leaf that requires grad, <c>cN</c> for a constant.</summary>
    public string NameOf(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_userNames.TryGetValue(tensor, out var n))
        {
            return n;
        }

        return tensor.GradFn is { } fn ? EntryFor(fn).DisplayName : LeafName(tensor);
    }

    /// <summary>The name of the tensor <paramref name="node"/> produced (for an <see cref="AccumulateGrad"/>, the name of its leaf).</summary>
    public string NameOf(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node is AccumulateGrad acc ? NameOf(acc.Leaf) : EntryFor(node).DisplayName;
    }

    /// <summary>The operation as one line of a Wengert list, e.g. <c>t3 = Exp(t2)</c> (for an accumulator, <c>x = leaf</c>).</summary>
    public string Expression(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return node is AccumulateGrad acc ? $"{NameOf(acc.Leaf)} = leaf" : $"{EntryFor(node).DisplayName} = {RightHandSide(EntryFor(node))}";
    }

    /// <summary>What the backward rule of <paramref name="node"/> saved, by field, e.g. <c>y=t3</c>; empty when it saved no tensor.</summary>
    /// <returns>Pairs of the field name (without its underscore) and the saved tensor's name, with <c> (freed)</c> once a backward released it.</returns>
    public IReadOnlyList<KeyValuePair<string, string>> SavedBy(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is AccumulateGrad)
        {
            return [];
        }

        var e = EntryFor(node);
        var freed = e.Node.Get()?.IsReleased == true ? " (freed)" : string.Empty;
        return [.. e.Saved.Select(s => new KeyValuePair<string, string>(s.Field, SavedName(s) + freed))];
    }

    /// <summary>The tensor <paramref name="node"/> produced, if this recorder saw it (and, with weak references, it is still alive).</summary>
    public Tensor? OutputOf(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        if (node is AccumulateGrad acc)
        {
            return acc.Leaf;
        }

        return _byNode.TryGetValue(node, out var e) ? e.Output.Get() : null;
    }

    /// <summary>The gradient of the output of <paramref name="node"/> in the last backward walk this recorder saw (the upstream gradient its rule ran with).</summary>
    public Tensor? GradientOf(Node node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return _byNode.TryGetValue(node, out var e) ? e.Grad.Get() : null;
    }

    /// <summary>Stops recording; what was recorded stays available.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Detaches the recorder from the tape when <paramref name="disposing"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _scope?.Dispose();
            _scope = null;
        }
    }

    /// <inheritdoc />
    protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs) => HandleNodeCreated(node, inputs);

    /// <inheritdoc />
    protected override void OnRecorded(Node node, Tensor output) => HandleRecorded(node, output);

    /// <inheritdoc />
    protected override void OnTangent(Node node, Tensor output, Tensor? tangent)
    {
        // A node that went on the tape was noted by OnRecorded just before; only one run for its forward rule alone is
        // noted here (the same condition as Tensor.SetGradFn's).
        if (!(GradMode.IsEnabled && node.HasEdges))
        {
            HandleRecorded(node, output);
            _forwardOnly.AddOrUpdate(output, EntryFor(node));
        }

        if (tangent is not null)
        {
            EntryFor(node).Tangent = new Held<Tensor>(tangent, WeakReferences);
        }
    }

    /// <inheritdoc />
    protected override void OnBackwardStart(Node node, Tensor grad) => HandleBackwardStart(node, grad);

    /// <inheritdoc />
    protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads) => HandleBackwardEnd();

    /// <summary>A recorder that is not attached: it names the nodes it is asked about (for tools given no recorder).</summary>
    internal static GraphRecorder Detached(bool weakReferences) => new(weakReferences, attach: false);

    /// <summary>The entries in execution order.</summary>
    internal IReadOnlyList<Entry> Entries => _entries;

    internal void HandleNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
    {
        if (_byNode.TryGetValue(node, out _))
        {
            return;
        }

        var refs = new InputRef[inputs.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            refs[i] = MakeInput(inputs[i]);
        }

        Add(node, refs, adopted: false);
    }

    internal void HandleRecorded(Node node, Tensor output)
    {
        var e = EntryFor(node);
        e.Output = new Held<Tensor>(output, WeakReferences);
        e.Shape = output.Shape;
        e.DType = output.DType;
        e.HasOutput = true;
        e.Saved = FindSaved(node, e, output, released: false);
    }

    internal void HandleBackwardStart(Node node, Tensor grad)
    {
        _running = node;
        if (node is not AccumulateGrad)
        {
            EntryFor(node).Grad = new Held<Tensor>(grad, WeakReferences);
        }
    }

    internal void HandleBackwardEnd() => _running = null;

    /// <summary>The entry of <paramref name="node"/>, naming it (and the unseen part of the graph behind it) on first use.</summary>
    internal Entry EntryFor(Node node) => _byNode.TryGetValue(node, out var e) ? e : Adopt(node);

    /// <summary>True when <paramref name="tensor"/> was named with <see cref="Name"/>.</summary>
    internal bool HasUserName(Tensor tensor) => _userNames.TryGetValue(tensor, out _);

    /// <summary>The name of input <paramref name="i"/> of <paramref name="node"/>.</summary>
    internal string InputName(Node node, int i) => InputName(EntryFor(node).Inputs[i]);

    /// <summary>The name of an input; <paramref name="fallback"/> names leaves that were not given a name with <see cref="Name"/>.</summary>
    internal string InputName(InputRef r, IReadOnlyDictionary<Tensor, string>? fallback = null)
    {
        if (r.Producer is not null)
        {
            return r.Producer.DisplayName;
        }

        if (r.Tensor.Get() is { } t)
        {
            if (_userNames.TryGetValue(t, out var n))
            {
                return n;
            }

            if (fallback is not null && fallback.TryGetValue(t, out var f))
            {
                return f;
            }
        }

        return r.Name;
    }

    /// <summary><c>Exp(t2)</c>: the operation applied to the names of its inputs.</summary>
    internal string RightHandSide(Entry e, IReadOnlyDictionary<Tensor, string>? fallback = null)
        => $"{e.Op}({string.Join(", ", e.Inputs.Select(r => InputName(r, fallback)))})";

    internal string SavedName(SavedRef s)
    {
        string name;
        if (s.Producer is not null)
        {
            name = s.Producer.DisplayName;
        }
        else if (s.Tensor.Get() is { } t && _userNames.TryGetValue(t, out var n))
        {
            name = n;
        }
        else
        {
            name = s.Name;
        }

        return s.View is null ? name : $"{name} as {s.View}";
    }

    private string LeafName(Tensor t)
    {
        if (_userNames.TryGetValue(t, out var user))
        {
            return user;
        }

        if (!_leafNames.TryGetValue(t, out var name))
        {
            name = t.RequiresGrad ? $"x{_nextLeaf++}" : $"c{_nextConst++}";
            _leafNames.Add(t, name);
        }

        return name;
    }

    private InputRef MakeInput(Tensor t)
    {
        if (t.GradFn is { } fn)
        {
            return new InputRef(InputKind.Op, EntryFor(fn), new Held<Tensor>(t, WeakReferences), string.Empty, t.Shape, t.DType, null);
        }

        if (_forwardOnly.TryGetValue(t, out var producer))
        {
            return new InputRef(InputKind.Op, producer, new Held<Tensor>(t, WeakReferences), string.Empty, t.Shape, t.DType, null);
        }

        var tangent = t.Tangent;
        if (tangent is not null)
        {
            _leafTangents.AddOrUpdate(t, tangent);
        }

        var kind = t.RequiresGrad || tangent is not null ? InputKind.Leaf : InputKind.Constant;
        var value = kind == InputKind.Constant && t.ElementCount <= 4 ? StudyText.Values(t, 4, 4) : null;
        return new InputRef(kind, null, new Held<Tensor>(t, WeakReferences), LeafName(t), t.Shape, t.DType, value);
    }

    private Entry Add(Node node, InputRef[] inputs, bool adopted)
    {
        var e = new Entry
        {
            Node = new Held<Node>(node, WeakReferences),
            Op = node.Name,
            AutoName = $"t{_nextOp++}",
            Inputs = inputs,
            Shape = node.OutputShape,
            DType = node.OutputDType,
            Adopted = adopted,
            RecordedDuring = adopted || _running is null ? null : NameOf(_running),
        };
        _entries.Add(e);
        _byNode.Add(node, e);
        return e;
    }

    /// <summary>Names the nodes behind <paramref name="root"/> that this recorder has not seen, in recording order.</summary>
    private Entry Adopt(Node root)
    {
        var unseen = new List<Node>();
        var visited = new HashSet<Node>(ReferenceEqualityComparer.Instance) { root };
        var stack = new Stack<Node>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var n = stack.Pop();
            if (n is AccumulateGrad || _byNode.TryGetValue(n, out _))
            {
                continue;
            }

            unseen.Add(n);
            foreach (var next in n.NextNodes)
            {
                if (next is not null && visited.Add(next))
                {
                    stack.Push(next);
                }
            }
        }

        foreach (var n in unseen.OrderBy(n => n.Sequence))
        {
            if (_byNode.TryGetValue(n, out _))
            {
                continue;
            }

            var next = n.NextNodes;
            var refs = new InputRef[next.Length];
            for (var i = 0; i < next.Length; i++)
            {
                refs[i] = next[i] switch
                {
                    null => new InputRef(InputKind.Unknown, null, default, "const", Shape.Scalar, DType.Float64, null),
                    AccumulateGrad acc => MakeInput(acc.Leaf),
                    var producer => new InputRef(InputKind.Op, EntryFor(producer), default, string.Empty, producer.OutputShape, producer.OutputDType, null),
                };
            }

            var e = Add(n, refs, adopted: true);
            e.HasOutput = true;
            e.Saved = FindSaved(n, e, null, n.IsReleased);
        }

        return _byNode.TryGetValue(root, out var found) ? found : Add(root, [], adopted: true);
    }

    /// <summary>
    /// What the rule of <paramref name="node"/> saved, named as its rule names them. A node that was already
    /// <paramref name="released"/> when first met no longer holds its tensors: what they were is unknown.
    /// </summary>
    private SavedRef[] FindSaved(Node node, Entry e, Tensor? output, bool released)
    {
        var saved = new List<SavedRef>(node.SavedTensorCount);
        for (var i = 0; i < node.SavedTensorCount; i++)
        {
            var name = node.SavedName(i);
            if (node.SavedTensor(i) is { } t)
            {
                saved.Add(ResolveSaved(name, t, e, output));
            }
            else if (released)
            {
                saved.Add(new SavedRef(name, default, null, "?", null));
            }
        }

        return [.. saved];
    }

    private SavedRef ResolveSaved(string field, Tensor t, Entry e, Tensor? output)
    {
        var held = new Held<Tensor>(t, WeakReferences);
        if (t.GradFn is { } fn)
        {
            return new SavedRef(field, held, EntryFor(fn), string.Empty, null);
        }

        if (output is not null && SavedTensors.SameData(t, output))
        {
            return new SavedRef(field, held, e, string.Empty, t.Shape == output.Shape ? null : t.Shape);
        }

        foreach (var input in e.Inputs)
        {
            if (input.Tensor.Get() is { } it && SavedTensors.SameData(t, it))
            {
                var view = t.Shape == it.Shape ? null : t.Shape;
                return input.Producer is not null
                    ? new SavedRef(field, held, input.Producer, string.Empty, view)
                    : new SavedRef(field, new Held<Tensor>(it, WeakReferences), null, input.Name, view);
            }
        }

        if (_userNames.TryGetValue(t, out _) || _leafNames.TryGetValue(t, out _) || t.RequiresGrad)
        {
            return new SavedRef(field, held, null, LeafName(t), null);
        }

        return new SavedRef(field, held, null, $"‹{StudyText.ShapeAndType(t.Shape, t.DType)}›", null);
    }

    /// <summary>What the recorder knows about one node.</summary>
    internal sealed class Entry
    {
        public Held<Node> Node { get; init; }

        public required string Op { get; init; }

        public required string AutoName { get; init; }

        public string? UserName { get; set; }

        public string DisplayName => UserName ?? AutoName;

        public required InputRef[] Inputs { get; init; }

        public Shape Shape { get; set; } = Shape.Scalar;

        public DType DType { get; set; }

        public bool HasOutput { get; set; }

        public Held<Tensor> Output { get; set; }

        public Held<Tensor> Grad { get; set; }

        public Held<Tensor> Tangent { get; set; }

        public SavedRef[] Saved { get; set; } = [];

        /// <summary>True for a node recorded before this recorder was attached and named when first met.</summary>
        public bool Adopted { get; init; }

        /// <summary>The name of the node whose backward rule recorded this node (create-graph), or null.</summary>
        public string? RecordedDuring { get; init; }
    }

    /// <summary>One input of a recorded operation: another operation's result (<see cref="Producer"/>), a leaf or a constant.</summary>
    internal sealed record InputRef(InputKind Kind, Entry? Producer, Held<Tensor> Tensor, string Name, Shape Shape, DType DType, string? ConstantValue);

    /// <summary>A saved tensor: a recorded result (<see cref="Producer"/>, possibly as a view of another shape) or a named leaf.</summary>
    internal sealed record SavedRef(string Field, Held<Tensor> Tensor, Entry? Producer, string Name, Shape? View);

    internal enum InputKind
    {
        Op,
        Leaf,
        Constant,
        Unknown,
    }
}
