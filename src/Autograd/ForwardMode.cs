using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// Forward-mode automatic differentiation: inside a dual level each tensor may carry a <see cref="Tensor.Tangent"/>
/// (its directional derivative ẋ), and every operation computes the tangent of its result from the tangents of its
/// inputs by its node's forward rule (<see cref="Node.Jvp"/>), right after computing the result — dual numbers at the
/// scale of tensors, as PyTorch's <c>torch.autograd.forward_ad</c> and JAX's <c>jvp</c>.
/// </summary>
/// <remarks>
/// A tangent belongs to the dual level that was open when it was attached or computed, and is seen only while that level
/// is open on this thread: closing the level drops every tangent of it at once, without visiting the tensors. One level
/// may be open on a thread at a time. Tangents travel whether or not grad mode is on, so they also flow through a
/// backward walk whose rules are ordinary operators (forward-over-reverse: the Hessian-vector product).
/// </remarks>
internal static class ForwardMode
{
    /// <summary>The number of dual levels open on any thread: while it is 0, operations do not look for tangents.</summary>
    internal static int s_openLevels;

    private static int s_lastLevel;

    /// <summary>The dual level open on this thread, 0 when none (or while a forward rule runs).</summary>
    internal static int Level
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ThreadState.Current.Level;
        set => ThreadState.Current.Level = value;
    }

    // The tangents of the inputs of the node being created on this thread, from its constructor to SetGradFn.
    [ThreadStatic]
    private static Node? t_pendingNode;

    [ThreadStatic]
    private static Tensor?[]? t_pendingTangents;

    /// <summary>True when <paramref name="t"/> carries a tangent of the level open on this thread.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool HasTangent(Tensor t) => t.HoldsTangent && Level is var level && level != 0 && t.TangentAt(level) is not null;

    /// <summary>Opens a new dual level on this thread.</summary>
    internal static int Open(string api)
    {
        if (Level != 0)
        {
            throw new InvalidOperationException(
                $"{api}: a dual level is already open on this thread; forward mode does not nest (use forward-over-reverse, Autodiff.Hvp, for second derivatives).");
        }

        var level = Interlocked.Increment(ref s_lastLevel);
        Interlocked.Increment(ref s_openLevels);
        Level = level;
        t_pendingNode = null;
        t_pendingTangents = null;
        return level;
    }

    /// <summary>Closes <paramref name="level"/>: its tangents are no longer seen.</summary>
    internal static void Close(int level)
    {
        if (Level != level)
        {
            return;
        }

        Level = 0;
        t_pendingNode = null;
        t_pendingTangents = null;
        Interlocked.Decrement(ref s_openLevels);
    }

    /// <summary>Called by a node's constructor while a level is open: notes the tangents of its inputs, if any has one.</summary>
    internal static void Capture(Node node, ReadOnlySpan<Tensor> inputs)
    {
        if (Level == 0)
        {
            return;
        }

        Tensor?[]? tangents = null;
        for (var i = 0; i < inputs.Length; i++)
        {
            if (HasTangent(inputs[i]))
            {
                tangents ??= new Tensor?[inputs.Length];
                tangents[i] = inputs[i].TangentAt(Level);
            }
        }

        if (tangents is not null)
        {
            t_pendingNode = node;
            t_pendingTangents = tangents;
        }
    }

    /// <summary>The input tangents noted for <paramref name="node"/> by <see cref="Capture"/>, taken once; null when none.</summary>
    internal static Tensor?[]? Take(Node node)
    {
        if (!ReferenceEquals(t_pendingNode, node))
        {
            return null;
        }

        var tangents = t_pendingTangents;
        t_pendingNode = null;
        t_pendingTangents = null;
        return tangents;
    }

    /// <summary>
    /// The level open on this thread when an operation on <paramref name="a"/> (and <paramref name="b"/>, if not null)
    /// may compute its output's tangent without a node, else 0. That is so when an input carries a tangent of the open
    /// level, nothing is recorded (grad mode is off, or no input requires grad) and no tape observer watches. The
    /// operation then runs its forward rule with <see cref="AttachWithoutNode"/>, passing <paramref name="state"/> (this
    /// thread's state, read once here): no node, no captured tangent array, no saved-tensor list. Checked before
    /// <see cref="Tensor.ShouldRecord(Tensor, Tensor)"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int LevelWithoutNode(Tensor a, Tensor? b, out ThreadState? state)
    {
        state = null;
        if (!a.HoldsTangent && (b is null || !b.HoldsTangent))
        {
            return 0;
        }

        var st = ThreadState.Current;
        var level = st.Level;
        if (level == 0 || (a.TangentAt(level) is null && (b is null || b.TangentAt(level) is null)))
        {
            return 0;
        }

        if (((a.RequiresGrad || (b is not null && b.RequiresGrad)) && !st.GradDisabled) || TapeObserver.Current is not null)
        {
            return 0;
        }

        state = st;
        return level;
    }

    /// <summary>
    /// Runs <paramref name="rule"/> for <paramref name="output"/> of operation <paramref name="op"/> in
    /// <paramref name="level"/> (as <see cref="LevelWithoutNode"/> found it) and attaches the tangent it gives, without a
    /// node. The level is hidden while the rule runs, as in <see cref="RunRule"/>.
    /// </summary>
    internal static void AttachWithoutNode<TRule>(Tensor output, string op, ThreadState state, int level, in TRule rule)
        where TRule : struct, IForwardRule
        => output.AttachRuleTangent(op, Hidden(state, level, rule), level);

    /// <summary>
    /// What <paramref name="rule"/> gives for <paramref name="level"/>, run with the level hidden on this thread (whose
    /// state is <paramref name="state"/>), so that the rule's own operations, which read primal values that carry
    /// tangents, compute no tangents of tangents.
    /// </summary>
    private static Tensor? Hidden<TRule>(ThreadState state, int level, in TRule rule)
        where TRule : struct, IForwardRule
    {
        state.Level = 0;
        try
        {
            return rule.Tangent(level);
        }
        finally
        {
            state.Level = level;
        }
    }

    /// <summary>
    /// Runs <paramref name="node"/>'s forward rule for <paramref name="output"/> with the level hidden (so the rule's own
    /// operations, which read primal values that carry tangents, do not compute tangents of tangents), and checks what it gave.
    /// </summary>
    internal static Tensor? RunRule(Node node, Tensor?[] tangents, Tensor output)
    {
        var state = ThreadState.Current;
        var tangent = Hidden(state, state.Level, new NodeRule(node, tangents, output));

        if (tangent is not null && (tangent.Shape != output.Shape || tangent.DType != output.DType))
        {
            throw new InvalidOperationException(
                $"{node.Name}: its forward rule returned a tangent of shape {tangent.Shape} {tangent.DType.Name()} for an output of shape {output.Shape} {output.DType.Name()}.");
        }

        return tangent;
    }
}

/// <summary>
/// A dual level opened by <see cref="Autodiff.DualLevel"/>: while it is open, tangents attached with
/// <see cref="Tensor.WithTangent"/> travel forward through every operation. Disposing it closes the level and drops its
/// tangents.
/// </summary>
public sealed class DualLevelScope : IDisposable
{
    private readonly int _level;
    private bool _closed;

    internal DualLevelScope(int level) => _level = level;

    /// <summary>Closes the level on this thread: no tangent of it is seen any more.</summary>
    public void Dispose()
    {
        if (!_closed)
        {
            _closed = true;
            ForwardMode.Close(_level);
        }
    }
}

public sealed partial class Tensor
{
    /// <summary>The tangent this tensor carries in dual level <paramref name="level"/>, or null.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Tensor? TangentAt(int level) => _tangentLevel == level ? _tangent : null;

    /// <summary>True when this tensor holds a tangent of some level, open or not (a quick test before the level's).</summary>
    internal bool HoldsTangent => _tangent is not null;

    /// <summary>The tangent and its level as stored (whatever the level open now), to put back later with <see cref="SetTangent"/>.</summary>
    internal (Tensor? Tangent, int Level) StoredTangent => (_tangent, _tangentLevel);

    /// <summary>Stores <paramref name="tangent"/> for <paramref name="level"/> (null and 0: none).</summary>
    internal void SetTangent(Tensor? tangent, int level)
    {
        _tangent = tangent;
        _tangentLevel = level;
    }

    /// <summary>
    /// Attaches the tangent that operation <paramref name="op"/>'s forward rule computed for this output without a node (see
    /// <see cref="ForwardMode.LevelWithoutNode"/>), after the check <see cref="ForwardMode.RunRule"/> makes.
    /// </summary>
    internal void AttachRuleTangent(string op, Tensor? tangent, int level)
    {
        if (tangent is null)
        {
            return;
        }

        // The built-in rules that run here give the tangent their node's rule gives (a test holds them to it bit for bit),
        // and through the node RunRule checks its shape; this is the same check for debug builds only.
        Debug.Assert(tangent.Shape == Shape && tangent.DType == DType, $"{op}: its forward rule returned a tangent of shape {tangent.Shape} {tangent.DType} for an output of shape {Shape} {DType}.");

        // The output was made by this thread's operation a moment ago and nothing else has seen it.
        _tangent = tangent;
        _tangentLevel = level;
    }

    /// <summary>
    /// The tangent ẋ this tensor carries in the dual level open on this thread (forward mode): attached by
    /// <see cref="WithTangent"/>, or computed by the forward rule of the operation that produced this tensor from the
    /// tangents of its inputs. Null outside a dual level, and for a tensor that depends on no tensor with a tangent.
    /// </summary>
    public Tensor? Tangent => ForwardMode.Level == 0 ? null : TangentAt(ForwardMode.Level);

    /// <summary>
    /// Attaches <paramref name="tangent"/> as this tensor's tangent (the direction ẋ of a directional derivative) in the
    /// dual level open on this thread, replacing any it had there, and returns this tensor. Every operation on it inside the
    /// level computes the tangent of its result, as PyTorch's <c>forward_ad.make_dual</c>.
    /// </summary>
    /// <param name="tangent">The tangent: same shape and dtype as this tensor.</param>
    /// <returns>This tensor.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tangent"/> is null.</exception>
    /// <exception cref="InvalidOperationException">No dual level is open on this thread (see <see cref="Autodiff.DualLevel"/>).</exception>
    /// <exception cref="ArgumentException">This tensor is not floating-point, or the tangent's shape or dtype differs from this tensor's.</exception>
    public Tensor WithTangent(Tensor tangent)
    {
        ArgumentNullException.ThrowIfNull(tangent);
        if (ForwardMode.Level == 0)
        {
            throw new InvalidOperationException(
                $"WithTangent: no dual level is open on this thread; open one with 'using var level = Autodiff.DualLevel();' (or use Autodiff.Jvp).");
        }

        if (!DType.IsFloatingPoint())
        {
            throw new ArgumentException($"WithTangent: only floating-point tensors carry tangents; this tensor is {DType.Name()} of shape {Shape}.", nameof(tangent));
        }

        if (tangent.Shape != Shape || tangent.DType != DType)
        {
            throw new ArgumentException(
                $"WithTangent: the tangent of shape {tangent.Shape} {tangent.DType.Name()} does not match the tensor of shape {Shape} {DType.Name()}.",
                nameof(tangent));
        }

        SetTangent(tangent, ForwardMode.Level);
        return this;
    }
}

public static partial class Autodiff
{
    /// <summary>
    /// Opens a dual level on this thread for forward-mode differentiation, until the returned scope is disposed:
    /// <c>using var level = Autodiff.DualLevel(); var y = f(x.WithTangent(v)); var jv = y.Tangent;</c>.
    /// </summary>
    /// <returns>The scope; disposing it drops every tangent of the level.</returns>
    /// <exception cref="InvalidOperationException">A dual level is already open on this thread (levels do not nest).</exception>
    public static DualLevelScope DualLevel() => new(ForwardMode.Open(nameof(DualLevel)));

    /// <summary>
    /// Forward mode: f(x) and the Jacobian-vector product J·v in one forward pass, the tangent <paramref name="tangent"/>
    /// travelling with the computation through each operation's forward rule (no backward walk).
    /// </summary>
    /// <param name="function">The function.</param>
    /// <param name="primal">The point x; it is used as it is (if it requires grad, the results are recorded on the tape).</param>
    /// <param name="tangent">The direction v, shaped like <paramref name="primal"/>.</param>
    /// <returns>f(x) and J·v (zeros when f(x) does not depend on x), shaped like f(x).</returns>
    /// <exception cref="ArgumentNullException">An argument is null, or the function returned null.</exception>
    /// <exception cref="ArgumentException">The tangent does not match the primal, or the primal is not floating-point.</exception>
    /// <exception cref="InvalidOperationException">A dual level is already open on this thread.</exception>
    public static (Tensor Output, Tensor Tangent) Jvp(Func<Tensor, Tensor> function, Tensor primal, Tensor tangent)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(primal);
        ArgumentNullException.ThrowIfNull(tangent);
        var (outputs, tangents) = Jvp(x => [function(x[0])], [primal], [tangent]);
        return (outputs[0], tangents[0]);
    }

    /// <summary>
    /// Forward mode for a function of several tensors with several results: f(x₁, …, xₙ) and the Jacobian-vector products
    /// Σⱼ ∂fᵢ/∂xⱼ · vⱼ, in one forward pass (see <see cref="Jvp(Func{Tensor, Tensor}, Tensor, Tensor)"/>).
    /// </summary>
    /// <param name="function">The function.</param>
    /// <param name="primals">The points; distinct tensors.</param>
    /// <param name="tangents">One direction per primal, each shaped like it.</param>
    /// <returns>The results and their tangents (zeros for a result that depends on no primal).</returns>
    /// <exception cref="ArgumentNullException">An argument or an element is null, or the function returned null.</exception>
    /// <exception cref="ArgumentException">The counts differ, a primal appears twice, or a tangent does not match its primal.</exception>
    /// <exception cref="InvalidOperationException">A dual level is already open on this thread.</exception>
    public static (Tensor[] Outputs, Tensor[] Tangents) Jvp(Func<Tensor[], Tensor[]> function, Tensor[] primals, Tensor[] tangents)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(primals);
        ArgumentNullException.ThrowIfNull(tangents);
        if (primals.Length != tangents.Length)
        {
            throw new ArgumentException($"Jvp: {primals.Length} primals but {tangents.Length} tangents; give one tangent per primal.", nameof(tangents));
        }

        for (var i = 0; i < primals.Length; i++)
        {
            if (primals[i] is null)
            {
                throw new ArgumentNullException(nameof(primals), $"Jvp: primal {i} is null.");
            }

            if (tangents[i] is null)
            {
                throw new ArgumentNullException(nameof(tangents), $"Jvp: tangent {i} is null.");
            }

            if (!primals[i].DType.IsFloatingPoint())
            {
                throw new ArgumentException($"Jvp: primal {i} is {primals[i].DType.Name()} of shape {primals[i].Shape}; only floating-point tensors carry tangents.", nameof(primals));
            }

            if (tangents[i].Shape != primals[i].Shape || tangents[i].DType != primals[i].DType)
            {
                throw new ArgumentException(
                    $"Jvp: tangent {i} of shape {tangents[i].Shape} {tangents[i].DType.Name()} does not match primal {i} of shape {primals[i].Shape} {primals[i].DType.Name()}.",
                    nameof(tangents));
            }

            for (var j = 0; j < i; j++)
            {
                if (ReferenceEquals(primals[i], primals[j]))
                {
                    throw new ArgumentException($"Jvp: primals {j} and {i} are the same tensor; each primal takes one tangent.", nameof(primals));
                }
            }
        }

        var saved = new (Tensor? Tangent, int Level)[primals.Length];
        using var level = new DualLevelScope(ForwardMode.Open(nameof(Jvp)));
        try
        {
            for (var i = 0; i < primals.Length; i++)
            {
                saved[i] = primals[i].StoredTangent;
                primals[i].WithTangent(tangents[i]);
            }

            var outputs = function((Tensor[])primals.Clone()) ?? throw new ArgumentNullException(nameof(function), "Jvp: the function returned null.");
            var result = new Tensor[outputs.Length];
            for (var i = 0; i < outputs.Length; i++)
            {
                var y = outputs[i] ?? throw new ArgumentNullException(nameof(function), $"Jvp: the function returned null as result {i}.");
                result[i] = y.Tangent ?? Tensor.Zeros(y.Shape, y.DType);
            }

            for (var i = 0; i < outputs.Length; i++)
            {
                outputs[i].SetTangent(null, 0);
            }

            return (outputs, result);
        }
        finally
        {
            for (var i = 0; i < primals.Length; i++)
            {
                primals[i].SetTangent(saved[i].Tangent, saved[i].Level);
            }
        }
    }
}

/// <summary>
/// A forward rule ready to run: the operation's inputs, output and rule, bound without allocating (a struct, passed by
/// reference to a generic method, so no delegate or closure is made per operation).
/// </summary>
internal interface IForwardRule
{
    /// <summary>The output's tangent from the inputs' tangents in <paramref name="level"/> (null when it is zero).</summary>
    Tensor? Tangent(int level);
}

/// <summary>A node's forward rule (<see cref="Node.Jvp"/>) with the input tangents captured for it.</summary>
internal readonly struct NodeRule(Node node, Tensor?[] tangents, Tensor output) : IForwardRule
{
    public Tensor? Tangent(int level) => node.Jvp(tangents, output);
}
