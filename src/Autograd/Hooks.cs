using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// A hook registered with <see cref="Tensor.RegisterHook"/> (or a module's hook in Autograd.Nn): <see cref="Dispose"/>
/// removes it. Removing twice does nothing.
/// </summary>
public sealed class HookHandle : IDisposable
{
    private Action? _remove;

    /// <summary>Makes a handle whose <see cref="Dispose"/> calls <paramref name="remove"/> once.</summary>
    /// <param name="remove">What removes the hook.</param>
    /// <exception cref="ArgumentNullException"><paramref name="remove"/> is null.</exception>
    public HookHandle(Action remove)
    {
        ArgumentNullException.ThrowIfNull(remove);
        _remove = remove;
    }

    /// <summary>True once the hook has been removed.</summary>
    public bool IsRemoved => Volatile.Read(ref _remove) is null;

    /// <summary>Removes the hook; later walks no longer call it.</summary>
    public void Dispose() => Interlocked.Exchange(ref _remove, null)?.Invoke();
}

public sealed partial class Tensor
{
    /// <summary>
    /// Registers <paramref name="hook"/> to be called with the gradient flowing into this tensor during every later
    /// backward walk (<see cref="Backward(Tensor?, bool?, bool)"/>, <see cref="Autodiff.Backward"/> and
    /// <see cref="Autodiff.Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor?}?, bool, bool?, bool)"/>),
    /// as PyTorch's <c>register_hook</c>. For a tensor made by an operation the hook sees the whole gradient (the sum over
    /// all its uses) before the operation's rule receives it; for a leaf, before it is added into <see cref="Grad"/>. A
    /// hook that returns a tensor replaces the gradient with it (same shape and dtype); one that returns null leaves it
    /// as it is. Hooks run in the order they were registered, under the walk's grad mode (recording when the walk
    /// creates the graph). A gradient a hook has seen or returned is never taken by a leaf as its Grad without a copy.
    /// </summary>
    /// <param name="hook">Called with the gradient; returns a replacement or null.</param>
    /// <returns>A handle whose <see cref="HookHandle.Dispose"/> removes the hook.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="hook"/> is null.</exception>
    /// <exception cref="InvalidOperationException">This tensor does not require grad, so no gradient flows to it.</exception>
    public HookHandle RegisterHook(Func<Tensor, Tensor?> hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        var node = HookNode(nameof(RegisterHook));
        return GradientHooks.Add(node, this, hook);
    }

    /// <summary>
    /// Makes later backward walks keep the gradient of this non-leaf tensor in <see cref="Grad"/> (accumulated over walks,
    /// as a leaf's), as PyTorch's <c>retain_grad</c>; it is stored after the tensor's other hooks have run. Does nothing
    /// for a leaf, whose gradient is kept anyway.
    /// </summary>
    /// <exception cref="InvalidOperationException">This tensor does not require grad.</exception>
    public void RetainGrad()
    {
        var node = HookNode(nameof(RetainGrad));
        if (!IsLeaf)
        {
            GradientHooks.Retain(node, this);
        }
    }

    /// <summary>True when backward walks keep this tensor's gradient in <see cref="Grad"/>: a leaf that requires grad, or a tensor given <see cref="RetainGrad"/>.</summary>
    public bool RetainsGrad => IsLeaf ? RequiresGrad : GradFn is { } node && GradientHooks.Retains(node);

    private Node HookNode(string api)
    {
        if (!RequiresGrad)
        {
            throw new InvalidOperationException(
                $"{api}: this {Shape} {DType.Name()} tensor does not require grad, so no gradient flows to it. Set RequiresGrad = true on a leaf (or on the inputs it is computed from) first.");
        }

        return Edge!;
    }
}

/// <summary>
/// The gradient hooks of tensors, kept beside their nodes (a node with hooks has <see cref="Node.HasHooks"/> set, so the
/// walk looks here only for those) and run by the walk when a node's gradient is complete.
/// </summary>
internal static class GradientHooks
{
    private static readonly ConditionalWeakTable<Node, Entry> s_entries = new();

    public static HookHandle Add(Node node, Tensor tensor, Func<Tensor, Tensor?> hook)
    {
        var entry = s_entries.GetValue(node, _ => new Entry(tensor));
        lock (entry)
        {
            entry.Hooks = [.. entry.Hooks, hook];
        }

        node.MarkHooked();
        return new HookHandle(() =>
        {
            lock (entry)
            {
                var index = Array.IndexOf(entry.Hooks, hook);
                if (index >= 0)
                {
                    entry.Hooks = [.. entry.Hooks[..index], .. entry.Hooks[(index + 1)..]];
                }
            }
        });
    }

    public static void Retain(Node node, Tensor tensor)
    {
        var entry = s_entries.GetValue(node, _ => new Entry(tensor));
        entry.Retain = true;
        node.MarkHooked();
    }

    public static bool Retains(Node node) => node.HasHooks && s_entries.TryGetValue(node, out var entry) && entry.Retain;

    /// <summary>
    /// Runs the hooks of <paramref name="node"/> on its complete gradient <paramref name="g"/> and returns the gradient to
    /// pass on (a hook's replacement, checked against the tensor's shape and dtype); then, when <paramref name="keep"/>
    /// (a walk that accumulates, not <c>Grad</c>), keeps it in the Grad of a tensor that retains its gradient.
    /// </summary>
    public static Tensor Run(Node node, Tensor g, string api, bool createGraph, bool keep)
    {
        if (!s_entries.TryGetValue(node, out var entry))
        {
            return g;
        }

        var tensor = entry.Tensor;
        foreach (var hook in entry.Hooks)
        {
            g.WalkBirth = 0;
            var replaced = hook(g);
            if (replaced is null)
            {
                continue;
            }

            if (replaced.Shape != g.Shape || replaced.DType != g.DType)
            {
                throw new InvalidOperationException(
                    $"{api}: a hook registered on the {tensor.Shape} {tensor.DType.Name()} tensor{(tensor.OpName is { } op ? $" made by '{op}'" : " (leaf)")} returned a gradient of shape {replaced.Shape} {replaced.DType.Name()}; it must return null or a tensor of shape {g.Shape} {g.DType.Name()}.");
            }

            g = replaced;
        }

        g.WalkBirth = entry.Hooks.Length > 0 ? 0 : g.WalkBirth;
        if (keep && entry.Retain)
        {
            Autodiff.KeepGradient(tensor, g, createGraph);
        }

        return g;
    }

    private sealed class Entry(Tensor tensor)
    {
        public Tensor Tensor { get; } = tensor;

        public Func<Tensor, Tensor?>[] Hooks { get; set; } = [];

        public bool Retain { get; set; }
    }
}
