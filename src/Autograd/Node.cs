using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Autograd;

/// <summary>
/// A recorded operation on the tape: it knows the nodes that produced its inputs (its edges) and the local
/// backward rule that turns the gradient of its output into gradients of its inputs.
/// </summary>
/// <remarks>
/// Operators derive from this class, declare their rule with a <see cref="RuleAttribute"/>, save the tensors their rule
/// needs with <see cref="Save(Tensor)"/> (other state, such as shapes and dims, in fields; no closures), and write the rule
/// with Tensor operations so that with <c>createGraph</c> the gradients are recorded too. The node owns what was saved:
/// the walk releases it after the rule ran (unless <c>retainGraph</c> is set), and the study tools read it with
/// <see cref="SavedTensorCount"/>, <see cref="SavedName"/> and <see cref="SavedTensor"/>.
/// </remarks>
public abstract class Node
{
    [ThreadStatic]
    private static long t_sequence;

    private static readonly ConcurrentDictionary<Type, RuleAttribute[]> s_rules = new();

    // The edges of a node with one or two inputs live inline (no array per node); a node with more inputs keeps an
    // array of all its edges in place 0. One field for both cases leaves room for the saved tensors below.
    private readonly EdgePair _edges;
    private readonly int _inputCount;

    // The saved tensors: the first two inline (no array per node); from the third on, place 1 holds an array of
    // tensors 1, 2, … with their versions (see Save). All are dropped by Release; the count stays, so names can still
    // be shown. The versions the first two had when saved are kept inline too.
    private SavedPair _saved;
    private VersionPair _savedVersions;
    private byte _savedCount;

    // IsReleased and HasHooks in one byte (a byte more would make every node 8 bytes larger), set atomically: a hook may be
    // registered on one thread while a walk on another releases the node.
    private const byte Released = 1;
    private const byte Hooked = 2;
    private const byte Checkpointed = 4;

    /// <summary>The checkpoint region recording on this thread, which notes every node that saves a tensor (see Checkpoint).</summary>
    [ThreadStatic]
    internal static CheckpointRegion? t_checkpoint;
    private byte _flags;

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
        if (ForwardMode.s_openLevels != 0)
        {
            ForwardMode.Capture(this, [input0]);
        }

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
        if (ForwardMode.s_openLevels != 0)
        {
            ForwardMode.Capture(this, [input0, input1]);
        }

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
            var edges = new Node?[inputs.Length];
            for (var i = 0; i < inputs.Length; i++)
            {
                edges[i] = inputs[i].Edge;
            }

            _edges[0] = edges;
        }

        Sequence = ++t_sequence;
        if (ForwardMode.s_openLevels != 0)
        {
            ForwardMode.Capture(this, inputs);
        }

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
        if (ForwardMode.s_openLevels != 0)
        {
            // The number has no tangent: the input's goes in its place, the number's place stays null.
            ForwardMode.Capture(this, constantIndex == 0 ? [Tensor.NoTangent, input] : [input, Tensor.NoTangent]);
        }

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

    /// <summary>The rule of this node: the <see cref="RuleAttribute"/> of its class for its <see cref="Name"/> (null when the class declares none).</summary>
    public RuleAttribute? Rule
    {
        get
        {
            if (this is CustomOperatorNode custom)
            {
                return custom.OperatorRule;
            }

            var variant = RuleVariant;
            foreach (var rule in s_rules.GetOrAdd(GetType(), static t => [.. t.GetCustomAttributes<RuleAttribute>(inherit: false)]))
            {
                if (rule.Op == Name && rule.Variant == variant)
                {
                    return rule;
                }
            }

            return null;
        }
    }

    /// <summary>The backward formula, e.g. <c>dx = g ⊙ y</c>, from the node's <see cref="Rule"/>; shown by study tools.</summary>
    public string Formula => Rule?.Backward ?? string.Empty;

    /// <summary>The number of tensors the node saved for its rule (they stay counted after <see cref="IsReleased"/>).</summary>
    public int SavedTensorCount => _savedCount;

    /// <summary>The order in which nodes were recorded on this thread (later nodes have larger numbers).</summary>
    public long Sequence { get; }

    /// <summary>The number of inputs of the operation.</summary>
    public int InputCount => _inputCount;

    /// <summary>The nodes that produced the inputs (null for inputs that need no gradient).</summary>
    public ReadOnlySpan<Node?> NextNodes => _inputCount <= 2
        ? MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<object?, Node?>(ref MemoryMarshal.GetReference((ReadOnlySpan<object?>)_edges)), _inputCount)
        : Unsafe.As<Node?[]>(_edges[0])!;

    /// <summary>The shape of the tensor this node produced.</summary>
    public Shape OutputShape { get; private set; } = Shape.Scalar;

    /// <summary>The dtype of the tensor this node produced.</summary>
    public DType OutputDType { get; private set; }

    /// <summary>True once a backward without <c>retainGraph</c> has run this node and freed what it saved.</summary>
    public bool IsReleased => (Volatile.Read(ref _flags) & Released) != 0;

    /// <summary>True once a hook or RetainGrad was registered for this node's output (see GradientHooks).</summary>
    internal bool HasHooks => (Volatile.Read(ref _flags) & Hooked) != 0;

    /// <summary>
    /// Selects among rows of the class's rules that share the operator's name (<see cref="RuleAttribute.Variant"/>);
    /// null, the default, selects the row without a variant.
    /// </summary>
    protected virtual string? RuleVariant => null;

    /// <summary>True when the rule must compute the gradient of input <paramref name="i"/>.</summary>
    protected bool NeedsInputGrad(int i) => Next(i) is { WalkNeeded: true };

    /// <summary>
    /// The name of saved tensor <paramref name="slot"/>: the name its rule gives it in <see cref="RuleAttribute.Saves"/>,
    /// e.g. <c>y</c>, or <c>saved0</c>, <c>saved1</c>, … for a node whose class declares no names.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="slot"/> is outside [0, <see cref="SavedTensorCount"/>).</exception>
    public string SavedName(int slot)
    {
        CheckSlot(slot);
        var names = Rule?.SavedNames;
        return names is not null && slot < names.Count ? names[slot] : $"saved{slot}";
    }

    /// <summary>Saved tensor <paramref name="slot"/>, or null once a backward released it (see <see cref="IsReleased"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="slot"/> is outside [0, <see cref="SavedTensorCount"/>).</exception>
    public Tensor? SavedTensor(int slot)
    {
        CheckSlot(slot);
        return Slot(slot);
    }

    /// <summary>
    /// Saves <paramref name="tensor"/> for the backward rule, in the next slot (0 for the first tensor saved, then 1, …);
    /// the rule reads it back with <see cref="Saved"/>. The slots are named by <see cref="RuleAttribute.Saves"/>, in order.
    /// Call it from the constructor. The first two tensors are kept inside the node; more take an array. The tensor's
    /// <see cref="Tensor.Version"/> is recorded with it, so that <see cref="Saved"/> fails if it is changed in place later.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="tensor"/> is null.</exception>
    protected void Save(Tensor tensor)
        => SaveTensor(tensor);

    /// <summary>Saves <paramref name="tensor"/> in the next slot (see <see cref="Save(Tensor)"/>).</summary>
    private protected void SaveTensor(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        var n = _savedCount;
        if (n == byte.MaxValue)
        {
            throw new InvalidOperationException($"{Name}: a node can save at most {byte.MaxValue} tensors.");
        }

        var version = tensor.Version;
        if (n < 2)
        {
            _saved[n] = tensor;
            _savedVersions[n] = version;
        }
        else if (n == 2)
        {
            var more = new SavedEntry[4];
            more[0] = new SavedEntry((Tensor?)_saved[1], _savedVersions[1]);
            more[1] = new SavedEntry(tensor, version);
            _saved[1] = more;
        }
        else
        {
            var more = (SavedEntry[])_saved[1]!;
            if (n - 1 == more.Length)
            {
                Array.Resize(ref more, more.Length * 2);
                _saved[1] = more;
            }

            more[n - 1] = new SavedEntry(tensor, version);
        }

        _savedCount = (byte)(n + 1);
        if (t_checkpoint is { } region)
        {
            region.Note(this);
        }
    }

    /// <summary>Saves two tensors for the backward rule, in the next two slots (see <see cref="Save(Tensor)"/>).</summary>
    /// <exception cref="ArgumentNullException">A tensor is null.</exception>
    protected void Save(Tensor first, Tensor second)
    {
        Save(first);
        Save(second);
    }

    /// <summary>Saved tensor <paramref name="slot"/> (see <see cref="Save(Tensor)"/>), for the backward rule.</summary>
    /// <exception cref="InvalidOperationException">
    /// A backward without <c>retainGraph</c> released it, or it was changed in place after it was saved (its
    /// <see cref="Tensor.Version"/> moved on); the message names the operator and the tensor, and for a change the versions
    /// and the write that made it.
    /// </exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    protected Tensor Saved(int slot)
        => (uint)slot < _savedCount && Slot(slot) is { } t && t.Version == SlotVersion(slot) ? t : SavedSlow(slot);

    /// <summary>A saved tensor that is not there: recomputed when a checkpoint dropped it, else the error.</summary>
    private Tensor SavedSlow(int slot)
    {
        if (IsCheckpointed && !IsReleased && (uint)slot < _savedCount && Slot(slot) is null)
        {
            CheckpointRegion.Restore(this);
            if (Slot(slot) is { } t && t.Version == SlotVersion(slot))
            {
                return t;
            }
        }

        throw SavedError(slot);
    }

    /// <summary>True while a checkpoint has dropped some of this node's saved tensors, to be recomputed when a rule reads one.</summary>
    internal bool IsCheckpointed => (Volatile.Read(ref _flags) & Checkpointed) != 0;

    /// <summary>Drops the saved tensors that <paramref name="keep"/> refuses (their versions stay) and marks the node checkpointed.</summary>
    internal void DropSaved(Func<Tensor, bool> keep)
    {
        for (var i = 0; i < _savedCount; i++)
        {
            if (Slot(i) is { } t && !keep(t))
            {
                SetSlot(i, null, SlotVersion(i));
            }
        }

        SetFlag(Checkpointed);
    }

    /// <summary>Fills each dropped slot from the same slot of <paramref name="recomputed"/> (a node of the same operation recorded again).</summary>
    internal void TakeSaved(Node recomputed)
    {
        for (var i = 0; i < _savedCount; i++)
        {
            if (Slot(i) is null)
            {
                SetSlot(i, recomputed.Slot(i), recomputed.SlotVersion(i));
            }
        }

        byte old;
        do
        {
            old = _flags;
        }
        while (Interlocked.CompareExchange(ref _flags, (byte)(old & ~Checkpointed), old) != old);
    }

    /// <summary>The tensors a checkpoint kept (not dropped) with the versions they were saved at.</summary>
    internal IEnumerable<(int Slot, Tensor Tensor, int Version)> KeptSaved()
    {
        for (var i = 0; i < _savedCount; i++)
        {
            if (Slot(i) is { } t)
            {
                yield return (i, t, SlotVersion(i));
            }
        }
    }

    private void SetSlot(int slot, Tensor? tensor, int version)
    {
        if (_savedCount <= 2 || slot == 0)
        {
            _saved[slot] = tensor;
            _savedVersions[slot] = version;
        }
        else
        {
            Unsafe.As<SavedEntry[]>(_saved[1])![slot - 1] = new SavedEntry(tensor, version);
        }
    }

    /// <summary>
    /// The backward rule: given the gradient <paramref name="grad"/> of the output, writes the gradient of each input
    /// that needs one (see <see cref="NeedsInputGrad"/>) into <paramref name="inputGrads"/>, shaped like that input.
    /// Runs under grad mode on (create-graph) or off, so it is written with Tensor operations.
    /// </summary>
    protected internal abstract void Backward(Tensor grad, Tensor?[] inputGrads);

    /// <summary>
    /// The forward rule (forward mode): given the tangents of the inputs (null for an input without one, and for the number
    /// of an operation with a number), returns the tangent of <paramref name="output"/>, shaped like it — the
    /// Jacobian-vector product of the operation, ẏ = Σᵢ ∂y/∂xᵢ · ẋᵢ — or null when it is zero. Runs right after the
    /// forward, before any backward, with the saved tensors in place; written with Tensor operations (the dual level is
    /// hidden while it runs, so they compute no tangents of their own, and they are recorded when grad mode is on and a
    /// tensor requires grad). The formula is <see cref="RuleAttribute.Tangent"/>.
    /// </summary>
    /// <param name="tangents">One entry per input, in the order of the node's inputs.</param>
    /// <param name="output">The operation's result.</param>
    /// <returns>The output's tangent, or null for zero.</returns>
    /// <exception cref="NotSupportedException">The operator has no forward rule (the default).</exception>
    protected internal virtual Tensor? Jvp(Tensor?[] tangents, Tensor output)
        => throw new NotSupportedException($"{Name}: this operator has no forward rule, so forward mode (Autodiff.Jvp) cannot go through it.");

    /// <summary>Frees the tensors saved for backward; a leaf's accumulator holds nothing and serves every later backward.</summary>
    internal void Release()
    {
        if (IsAccumulator)
        {
            return;
        }

        _saved = default;
        SetFlag(Released);
    }

    /// <summary>Notes that the node's output has hooks (see GradientHooks); never cleared.</summary>
    internal void MarkHooked() => SetFlag(Hooked);

    private void SetFlag(byte bit)
    {
        byte old;
        do
        {
            old = _flags;
        }
        while (Interlocked.CompareExchange(ref _flags, (byte)(old | bit), old) != old);
    }

    internal void AttachOutput(Tensor output)
    {
        OutputShape = output.Shape;
        OutputDType = output.DType;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Node? Next(int i) => _inputCount <= 2 ? Unsafe.As<Node>(_edges[i]) : Unsafe.As<Node?[]>(_edges[0])![i];

    internal bool IsAccumulator => this is AccumulateGrad;

    /// <summary>True when some input needs a gradient (has an edge), so the node belongs on the tape.</summary>
    internal bool HasEdges
    {
        get
        {
            for (var i = 0; i < _inputCount; i++)
            {
                if (Next(i) is not null)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The name and the shape of the produced tensor, e.g. <c>Exp [9] float64</c>.</summary>
    public override string ToString() => $"{Name} {OutputShape} {OutputDType.Name()}";

    private Tensor? Slot(int slot)
        => _savedCount <= 2 || slot == 0 ? (Tensor?)_saved[slot] : _saved[1] is SavedEntry[] more ? more[slot - 1].Tensor : null;

    // Read only after Slot found the tensor, so the array of a node with more than two is there.
    private int SlotVersion(int slot)
        => _savedCount <= 2 || slot == 0 ? _savedVersions[slot] : Unsafe.As<SavedEntry[]>(_saved[1])![slot - 1].Version;

    private void CheckSlot(int slot)
    {
        if ((uint)slot >= _savedCount)
        {
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"{Name}: saved tensor {slot} does not exist; the node saved {_savedCount}.");
        }
    }

    private InvalidOperationException SavedError(int slot)
    {
        if ((uint)slot >= _savedCount)
        {
            return new InvalidOperationException($"{Name}: the rule reads saved tensor {slot}, but the node saved only {_savedCount}.");
        }

        if (Slot(slot) is not { } t)
        {
            return new InvalidOperationException(
                $"{Name}: the saved tensor '{SavedName(slot)}' was freed by an earlier backward; pass retainGraph: true to the first Backward to walk the graph twice.");
        }

        var saved = SlotVersion(slot);
        var now = t.Version;
        var producer = t.GradFn is { } fn ? $"produced by {fn.Name}" : "leaf";
        var by = now - saved == 1 ? "by" : "last by";
        return new InvalidOperationException(
            $"Backward of {Name}: its saved tensor '{SavedName(slot)}' {t.Shape} {t.DType.Name()} ({producer}) was changed in place after it was recorded " +
            $"(version {saved} → {now}, {by} {t.LastWrite ?? "an unknown write"}). Recompute the forward after changing it, or clone it before the change.");
    }

    /// <summary>Storage for the edges inside the node: one or two nodes, or an array of nodes.</summary>
    [InlineArray(2)]
    private struct EdgePair
    {
        private object? _element;
    }

    /// <summary>The versions of the first two saved tensors, when they were saved.</summary>
    [InlineArray(2)]
    private struct VersionPair
    {
        private int _element;
    }

    /// <summary>A saved tensor from the second on, of a node that saved more than two, with its version when saved.</summary>
    private readonly record struct SavedEntry(Tensor? Tensor, int Version);

    /// <summary>Storage for the saved tensors inside the node: two tensors, or a tensor and an array of the others.</summary>
    [InlineArray(2)]
    private struct SavedPair
    {
        private object? _element;
    }
}

/// <summary>The node that adds incoming gradients into a leaf tensor's <see cref="Tensor.Grad"/>.</summary>
[Rule("AccumulateGrad", Forward = "the leaf x", Backward = "x.grad += g", Tangent = "the leaf's own ẋ (WithTangent)")]
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

    /// <summary>The version counter of the leaf's storage, kept here because the leaf's one field for both holds this node.</summary>
    internal StorageVersion? StorageVersion;

    /// <inheritdoc />
    protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
    {
    }

    /// <inheritdoc />
    /// <remarks>A leaf has no inputs: its tangent is the one attached to it, so this rule is never asked.</remarks>
    protected internal override Tensor? Jvp(Tensor?[] tangents, Tensor output) => null;
}
