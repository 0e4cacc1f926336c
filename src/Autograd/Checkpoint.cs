using System.Runtime.CompilerServices;

namespace Autograd;

public static partial class Autodiff
{
    /// <summary>
    /// Gradient checkpointing: runs <paramref name="function"/> on <paramref name="input"/> recorded as usual, then drops the
    /// intermediate results its operations saved for backward; the first backward rule of the region that needs one runs
    /// the function again and takes them from the recomputation. See
    /// <see cref="Checkpoint(Func{Tensor[], Tensor}, Tensor[])"/>.
    /// </summary>
    /// <param name="function">The part of the computation whose intermediates are not kept; it must compute the same way each time.</param>
    /// <param name="input">Its input.</param>
    /// <returns>The function's result, recorded on the tape.</returns>
    /// <exception cref="ArgumentNullException">The function or the input is null.</exception>
    public static Tensor Checkpoint(Func<Tensor, Tensor> function, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(input);
        return Checkpoint(inputs => function(inputs[0]), [input]);
    }

    /// <summary>
    /// Gradient checkpointing (trading compute for memory), as PyTorch's non-reentrant <c>checkpoint</c>: runs
    /// <paramref name="function"/> on <paramref name="inputs"/> recorded on the tape as usual, then drops every tensor its
    /// operations saved for backward except the inputs and leaves that require grad (parameters), so its intermediate
    /// results can be freed between forward and backward. When a backward rule of the region first needs a dropped tensor,
    /// the function runs again on the same inputs (recorded, outside the walk) and the region's nodes take their saved
    /// tensors from that run, matched operation by operation. The rules are the region's own, so the gradients (also with
    /// <c>Grad</c> and hooks) are bitwise those of the plain run when the function computes the same way each time; under
    /// create-graph, the second walk reaches the inputs through the recomputed operations as well, so its sums over paths
    /// may be added in another order (equal to the last bits). Without grad mode the function simply runs.
    /// </summary>
    /// <param name="function">The part of the computation whose intermediates are not kept; it must record the same operations each time (no randomness without a fixed seed).</param>
    /// <param name="inputs">Its inputs; they are kept, and must not be changed in place before the backward.</param>
    /// <returns>The function's result, recorded on the tape.</returns>
    /// <exception cref="ArgumentNullException">The function, the inputs or one of them is null.</exception>
    /// <exception cref="NotSupportedException">A dual level (forward mode) is open on this thread.</exception>
    /// <exception cref="InvalidOperationException">
    /// During backward: an input or a kept parameter was changed in place after the forward, or the function recorded
    /// different operations when run again.
    /// </exception>
    public static Tensor Checkpoint(Func<Tensor[], Tensor> function, params Tensor[] inputs)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(inputs);
        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputs[i] is null)
            {
                throw new ArgumentNullException(nameof(inputs), $"Checkpoint: input {i} is null.");
            }
        }

        if (ForwardMode.Level != 0)
        {
            throw new NotSupportedException(
                "Checkpoint: a dual level is open on this thread (forward mode); checkpointing inside it is not supported. Call the function directly there.");
        }

        if (!GradMode.IsEnabled)
        {
            return function((Tensor[])inputs.Clone());
        }

        var region = new CheckpointRegion(function, (Tensor[])inputs.Clone());
        var result = region.Run();
        region.Seal();
        return result;
    }
}

/// <summary>
/// The operations recorded by one <see cref="Autodiff.Checkpoint(Func{Tensor[], Tensor}, Tensor[])"/> call (those that
/// saved a tensor, in order), and what is needed to record them again.
/// </summary>
internal sealed class CheckpointRegion(Func<Tensor[], Tensor> function, Tensor[] inputs)
{
    private static readonly ConditionalWeakTable<Node, CheckpointRegion> s_regions = new();

    private readonly int[] _inputVersions = [.. inputs.Select(x => x.Version)];
    private readonly List<Node> _nodes = [];

    /// <summary>Called by <see cref="Node"/> when a node saves a tensor while this region records.</summary>
    public void Note(Node node)
    {
        if (_nodes.Count == 0 || !ReferenceEquals(_nodes[^1], node))
        {
            _nodes.Add(node);
        }
    }

    /// <summary>Runs the function with this region recording on this thread.</summary>
    public Tensor Run()
    {
        var outer = Node.t_checkpoint;
        Node.t_checkpoint = this;
        try
        {
            return function((Tensor[])inputs.Clone());
        }
        finally
        {
            Node.t_checkpoint = outer;
        }
    }

    /// <summary>Drops the region's saved intermediates, keeping the inputs and the leaves that require grad.</summary>
    public void Seal()
    {
        foreach (var node in _nodes)
        {
            s_regions.AddOrUpdate(node, this);
            node.DropSaved(t => Array.IndexOf(inputs, t) >= 0 || (t.IsLeaf && t.RequiresGrad));
        }
    }

    /// <summary>Refills the dropped saved tensors of the region that <paramref name="node"/> belongs to.</summary>
    public static void Restore(Node node)
    {
        if (s_regions.TryGetValue(node, out var region))
        {
            region.Recompute();
        }
    }

    private void Recompute()
    {
        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].Version != _inputVersions[i])
            {
                throw new InvalidOperationException(
                    $"Checkpoint: input {i} {inputs[i].Shape} {inputs[i].DType.Name()} was changed in place after the checkpointed forward (version {_inputVersions[i]} → {inputs[i].Version}, last by {inputs[i].LastWrite ?? "an unknown write"}), so its intermediate results cannot be recomputed. Clone the input before changing it.");
            }
        }

        foreach (var node in _nodes)
        {
            foreach (var (slot, t, version) in node.KeptSaved())
            {
                if (t.Version != version)
                {
                    throw new InvalidOperationException(
                        $"Checkpoint: the tensor '{node.SavedName(slot)}' {t.Shape} {t.DType.Name()} that '{node.Name}' saved in the checkpointed function was changed in place after the forward (version {version} → {t.Version}, last by {t.LastWrite ?? "an unknown write"}), so the function cannot be recomputed as it ran. Run the backward before changing it.");
                }
            }
        }

        var again = new CheckpointRegion(function, inputs);
        using (GradMode.Override(true))
        {
            Autodiff.OutsideWalk(again.Run);
        }

        if (again._nodes.Count != _nodes.Count || !again._nodes.Select(n => n.GetType()).SequenceEqual(_nodes.Select(n => n.GetType())))
        {
            throw new InvalidOperationException(
                $"Checkpoint: run again for the backward, the function recorded {again._nodes.Count} operations that save tensors ({Describe(again._nodes)}) where the forward recorded {_nodes.Count} ({Describe(_nodes)}); it must compute the same way each time.");
        }

        for (var k = 0; k < _nodes.Count; k++)
        {
            if (!_nodes[k].IsReleased)
            {
                _nodes[k].TakeSaved(again._nodes[k]);
            }

            s_regions.Remove(_nodes[k]);
        }
    }

    private static string Describe(List<Node> nodes)
        => nodes.Count <= 6 ? string.Join(", ", nodes.Select(n => n.Name)) : string.Join(", ", nodes.Take(6).Select(n => n.Name)) + ", …";
}
