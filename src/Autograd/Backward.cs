using System.Reflection;
using System.Runtime.CompilerServices;
using Autograd.Kernels;

// The engine's own rule (GradSum) passes on the gradient it is given and keeps nothing.
[assembly: Autograd.RulesKeepNoGradients]

namespace Autograd;

/// <summary>
/// The backward walk: reverse-mode differentiation over the tape, and the functional <c>Grad</c> API.
/// </summary>
/// <remarks>
/// The walk is iterative (no recursion), so graphs of any depth work. It checks its arguments before anything changes,
/// visits the nodes reachable from the outputs, keeps only those that lead to a leaf (or to a requested input), runs
/// each backward rule once all gradients for its output have arrived, sums gradients that meet at the same node, and
/// releases what the rules saved unless <c>retainGraph</c> is set.
/// </remarks>
public static partial class Autodiff
{
    // Global (not per thread): a graph built on one thread may be walked on another.
    private static int s_stamp;

    // The walk running on this thread (0 when none): tensors allocated while it runs are stamped with it.
    [ThreadStatic]
    private static int t_currentWalk;

    // Walks keep their state on the nodes they visit, and graphs walked on different threads may share nodes (a parameter's
    // accumulator, a shared trunk) and leaves whose Grad they add to: walks on different threads take turns. Forward
    // computation, and the kernels a rule runs on the worker threads, still run in parallel. The lock is re-entrant, so a
    // rule may start a walk of its own.
    private static readonly Lock s_walkLock = new();

    // The working arrays of the walk, reused from one walk to the next on this thread.
    [ThreadStatic]
    private static WalkState? t_state;

    // Whether an assembly declares RulesKeepNoGradients, read once per assembly (weakly held: an assembly that defines
    // nodes may be unloaded).
    private static readonly ConditionalWeakTable<Assembly, StrongBox<bool>> s_rulesKeepNoGradients = new();

    // Walks running on any thread: while 0, CurrentWalk needs no thread-local read (one per tensor made saved).
    private static int s_walks;

    /// <summary>The stamp of the backward walk running on this thread, or 0.</summary>
    internal static int CurrentWalk => Volatile.Read(ref s_walks) == 0 ? 0 : t_currentWalk;

    /// <summary>Runs <paramref name="function"/> as outside any walk: tensors it allocates are not owned by the walk in progress.</summary>
    internal static T OutsideWalk<T>(Func<T> function)
    {
        var walk = t_currentWalk;
        t_currentWalk = 0;
        try
        {
            return function();
        }
        finally
        {
            t_currentWalk = walk;
        }
    }

    /// <summary>
    /// Accumulates the gradients of <paramref name="outputs"/> into the <see cref="Tensor.Grad"/> of every leaf that
    /// requires grad. <paramref name="gradOutputs"/> gives d(loss)/d(output) for each output; it may be omitted only for
    /// one-element outputs (then it is 1).
    /// </summary>
    /// <param name="outputs">The tensors to differentiate.</param>
    /// <param name="gradOutputs">One gradient per output, shaped like it, or null.</param>
    /// <param name="retainGraph">Keep the saved tensors so that the graph can be walked again. Defaults to <paramref name="createGraph"/>.</param>
    /// <param name="createGraph">Record the backward computation itself, so that the gradients can be differentiated again.</param>
    public static void Backward(IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor?>? gradOutputs = null, bool? retainGraph = null, bool createGraph = false)
    {
        var (outs, grads) = Lists("Backward", outputs, gradOutputs);
        Run(new WalkRequest { Api = "Backward", Outputs = outs, GradOutputs = grads, RetainGraph = retainGraph ?? createGraph, CreateGraph = createGraph });
    }

    /// <summary>
    /// Computes and returns the gradients of <paramref name="outputs"/> with respect to <paramref name="inputs"/>,
    /// without touching any <see cref="Tensor.Grad"/>.
    /// </summary>
    /// <param name="outputs">The tensors to differentiate.</param>
    /// <param name="inputs">The tensors to differentiate with respect to (leaves or intermediate results).</param>
    /// <param name="gradOutputs">One gradient per output, shaped like it; may be omitted for one-element outputs.</param>
    /// <param name="createGraph">Record the gradient computation so that the returned gradients can be differentiated again (higher-order gradients).</param>
    /// <param name="retainGraph">Keep the graph for another walk. Defaults to <paramref name="createGraph"/>.</param>
    /// <param name="allowUnused">Return zeros for an input the outputs do not depend on, instead of throwing.</param>
    /// <returns>One gradient per input, shaped like it.</returns>
    /// <exception cref="InvalidOperationException">An input is not used by the outputs and <paramref name="allowUnused"/> is false.</exception>
    public static Tensor[] Grad(
        IReadOnlyList<Tensor> outputs,
        IReadOnlyList<Tensor> inputs,
        IReadOnlyList<Tensor?>? gradOutputs = null,
        bool createGraph = false,
        bool? retainGraph = null,
        bool allowUnused = false)
    {
        var (outs, grads) = Lists("Grad", outputs, gradOutputs);
        var captured = new Tensor?[inputs.Count];
        Run(new WalkRequest
        {
            Api = "Grad",
            Outputs = outs,
            GradOutputs = grads,
            RetainGraph = retainGraph ?? createGraph,
            CreateGraph = createGraph,
            Inputs = inputs,
            AllowUnused = allowUnused,
            Captured = captured,
        });
        var result = new Tensor[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            result[i] = captured[i] ?? Tensor.Zeros(inputs[i].Shape, inputs[i].DType);
        }

        return result;
    }

    /// <summary>The gradient of one output with respect to one input; see <see cref="Grad(IReadOnlyList{Tensor}, IReadOnlyList{Tensor}, IReadOnlyList{Tensor?}?, bool, bool?, bool)"/>.</summary>
    public static Tensor Grad(Tensor output, Tensor input, Tensor? gradOutput = null, bool createGraph = false, bool? retainGraph = null, bool allowUnused = false)
    {
        var captured = new Tensor?[1];
        Run(new WalkRequest
        {
            Api = "Grad",
            Outputs = new ReadOnlySpan<Tensor>(in output),
            GradOutputs = new ReadOnlySpan<Tensor?>(in gradOutput),
            RetainGraph = retainGraph ?? createGraph,
            CreateGraph = createGraph,
            Inputs = [input],
            AllowUnused = allowUnused,
            Captured = captured,
        });
        return captured[0] ?? Tensor.Zeros(input.Shape, input.DType);
    }

    /// <summary>The backward of one output (<see cref="Tensor.Backward(Tensor?, bool?, bool)"/>), without list allocations.</summary>
    internal static void BackwardOne(Tensor output, Tensor? gradient, bool retainGraph, bool createGraph)
        => Run(new WalkRequest
        {
            Api = "Backward",
            Outputs = new ReadOnlySpan<Tensor>(in output),
            GradOutputs = new ReadOnlySpan<Tensor?>(in gradient),
            RetainGraph = retainGraph,
            CreateGraph = createGraph,
        });

    private static (Tensor[] Outputs, Tensor?[] Grads) Lists(string api, IReadOnlyList<Tensor> outputs, IReadOnlyList<Tensor?>? gradOutputs)
    {
        if (outputs.Count == 0)
        {
            throw new ArgumentException($"{api}: no outputs to differentiate.", nameof(outputs));
        }

        if (gradOutputs is not null && gradOutputs.Count != outputs.Count)
        {
            throw new ArgumentException($"{api}: {outputs.Count} outputs but {gradOutputs.Count} gradients.", nameof(gradOutputs));
        }

        var outs = new Tensor[outputs.Count];
        var grads = new Tensor?[outputs.Count];
        for (var i = 0; i < outs.Length; i++)
        {
            outs[i] = outputs[i];
            grads[i] = gradOutputs?[i];
        }

        return (outs, grads);
    }

    /// <summary>
    /// One backward walk on this thread's reused working arrays, phase by phase as docs/design.md ("The backward walk")
    /// describes them: <see cref="Validate"/>, <see cref="Collect"/>, <see cref="Mark"/>, <see cref="Seed"/>,
    /// <see cref="Execute"/> and <see cref="Release"/>, phases 1 to 6.
    /// The phases share <paramref name="request"/> and the state <see cref="WalkState"/> carries from one to the next.
    /// </summary>
    private static void Run(in WalkRequest request)
    {
        using var turn = s_walkLock.EnterScope();
        var st = WalkState.Rent();
        var previousWalk = t_currentWalk;
        Interlocked.Increment(ref s_walks);
        try
        {
            Validate(st, in request);
            Collect(st, request.Outputs);
            Mark(st, in request);
            Seed(st, in request);
            Execute(st, in request);
        }
        finally
        {
            Release(st, previousWalk);
            Interlocked.Decrement(ref s_walks);
            st.Return();
        }
    }

    /// <summary>
    /// Phase 1, validate: checks the outputs, their gradients and the requested inputs before any state changes. Fills
    /// the walk's seeds (an implied gradient of 1 is made here for a one-element output) and its target nodes.
    /// </summary>
    private static void Validate(WalkState st, in WalkRequest request)
    {
        var outputs = request.Outputs;
        var seeds = st.SeedBuffer(outputs.Length);
        var implied = 0UL;
        for (var i = 0; i < outputs.Length; i++)
        {
            var y = outputs[i];
            if (!y.RequiresGrad)
            {
                throw new InvalidOperationException(
                    $"{request.Api}: output {i} (shape {y.Shape}) does not require grad and has no GradFn; nothing on the tape leads to it. Set RequiresGrad = true on the inputs before computing it (and not inside NoGrad).");
            }

            var g = request.GradOutputs[i];
            if (g is null)
            {
                if (y.ElementCount != 1)
                {
                    throw new InvalidOperationException(
                        $"{request.Api}: output {i} has shape {y.Shape} ({y.ElementCount} elements); a gradient can be implied only for a one-element output. Pass a gradient of shape {y.Shape}, or reduce the output first (e.g. Sum()).");
                }

                g = Tensor.Ones(y.Shape, y.DType);
                if (i < 64)
                {
                    implied |= 1UL << i;
                }
            }
            else if (g.Shape != y.Shape || g.DType != y.DType)
            {
                throw new ArgumentException(
                    $"{request.Api}: the gradient for output {i} has shape {g.Shape} {g.DType.Name()}, but the output has shape {y.Shape} {y.DType.Name()}; they must match.");
            }

            seeds[i] = g;
        }

        st.Implied = implied;
        st.Targets = request.Inputs is null ? null : TargetNodes(in request);
    }

    /// <summary>Part of phase 1 (validate) for <c>Grad</c>: the node of each requested input, which must require grad.</summary>
    private static Node?[] TargetNodes(in WalkRequest request)
    {
        var inputs = request.Inputs!;
        var targets = new Node?[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            var x = inputs[i];
            if (!x.RequiresGrad)
            {
                throw new InvalidOperationException($"{request.Api}: input {i} (shape {x.Shape}) does not require grad, so no gradient can be computed for it.");
            }

            targets[i] = x.Edge;
        }

        return targets;
    }

    /// <summary>
    /// Phase 2, collect: stamps this walk and gathers the nodes reachable from the outputs in post-order (inputs before
    /// the nodes that use them) with an explicit stack, so a graph of any depth needs no recursion.
    /// </summary>
    private static void Collect(WalkState st, ReadOnlySpan<Tensor> outputs)
    {
        var stamp = Interlocked.Increment(ref s_stamp);
        st.Stamp = stamp;
        foreach (var y in outputs)
        {
            var root = y.Edge!;
            if (root.WalkStamp == stamp)
            {
                continue;
            }

            root.WalkStamp = stamp;
            st.Push(root);
            while (st.StackCount > 0)
            {
                ref var top = ref st.Top;
                var node = top.Node;
                if (top.NextIndex < node.InputCount)
                {
                    var child = node.Next(top.NextIndex++);
                    if (child is not null && child.WalkStamp != stamp)
                    {
                        child.WalkStamp = stamp;
                        st.Push(child);
                    }
                }
                else
                {
                    st.StackCount--;
                    st.AddOrder(node);
                }
            }
        }
    }

    /// <summary>
    /// Phase 3, mark: marks the targets, then the nodes that lead to a target (a leaf's accumulator for <c>Backward</c>,
    /// a requested input for <c>Grad</c>), and counts, for each such node, the needed users it waits for. A needed node
    /// whose saved tensors were released makes the walk fail here, before any rule runs.
    /// </summary>
    private static void Mark(WalkState st, in WalkRequest request)
    {
        var targets = st.Targets;
        if (targets is not null)
        {
            MarkTargets(st.Stamp, targets, in request);
        }

        // One pass: post-order puts every input before its users, so a node's inputs are marked when it is reached.
        foreach (var node in st.Collected)
        {
            var needed = targets is null ? node.IsAccumulator : node.WalkCapture >= 0;
            for (var i = 0; i < node.InputCount && !needed; i++)
            {
                needed = node.Next(i) is { WalkNeeded: true };
            }

            node.WalkNeeded = needed;
            if (!needed)
            {
                continue;
            }

            if (node.IsReleased)
            {
                throw new InvalidOperationException(
                    $"{request.Api}: trying to backward through the graph a second time: the saved tensors of '{node.Name}' (output {node.OutputShape}) were freed by an earlier backward. Pass retainGraph: true to the first backward if you need to walk the graph again.");
            }

            for (var i = 0; i < node.InputCount; i++)
            {
                if (node.Next(i) is { WalkNeeded: true } child)
                {
                    child.WalkDeps++;
                }
            }
        }
    }

    /// <summary>Part of phase 3 (mark) for <c>Grad</c>: gives each requested input's node the index its gradient is captured at.</summary>
    private static void MarkTargets(int stamp, Node?[] targets, in WalkRequest request)
    {
        for (var i = 0; i < targets.Length; i++)
        {
            var t = targets[i]!;
            if (t.WalkStamp != stamp)
            {
                if (!request.AllowUnused)
                {
                    throw new InvalidOperationException(
                        $"{request.Api}: input {i} (shape {request.Inputs![i].Shape}) was not used to compute the outputs; pass allowUnused: true to get zeros for it.");
                }

                continue;
            }

            t.WalkCapture = i;
        }
    }

    /// <summary>
    /// Phase 4, seed: delivers each output's gradient to the output's node and queues the nodes that wait for no user.
    /// From here on tensors allocated on this thread are stamped with this walk: a leaf may take such a gradient as its
    /// Grad without copying it, unless the graph is being recorded or an observer (which may keep the tensors it is
    /// shown) is attached.
    /// </summary>
    private static void Seed(WalkState st, in WalkRequest request)
    {
        var stamp = st.Stamp;
        t_currentWalk = stamp;
        st.OwnedStamp = !request.CreateGraph && TapeObserver.Current is null ? stamp : 0;
        st.ExclusiveStamp = ForwardMode.Level == 0 ? st.OwnedStamp : 0;
        var outputs = request.Outputs;
        var seeds = st.Seeds;
        for (var i = 0; i < outputs.Length; i++)
        {
            var root = outputs[i].Edge!;
            if (!root.WalkNeeded)
            {
                continue;
            }

            var seed = seeds[i];
            if (i < 64 && (st.Implied & (1UL << i)) != 0)
            {
                seed.WalkBirth = stamp;
            }

            Deliver(root, seed, request.CreateGraph);
        }

        // Only the outputs' nodes hold a gradient yet; those that wait for no user start the walk (each once).
        for (var i = 0; i < outputs.Length; i++)
        {
            var root = outputs[i].Edge!;
            if (root.WalkNeeded && root.WalkDeps == 0 && root.WalkGrad is not null && !SeenBefore(outputs, i, root))
            {
                st.Enqueue(root);
            }
        }
    }

    /// <summary>
    /// Phase 5, execute: runs the rules in order of readiness (a node runs once all its needed users have run; ties go to
    /// the latest recorded), under grad mode on for <c>createGraph</c> and off otherwise. Each rule's gradients are
    /// passed on to its inputs' nodes and, for <c>Grad</c>, captured at the requested inputs; a leaf's accumulator adds
    /// its gradient into the leaf's Grad.
    /// </summary>
    private static void Execute(WalkState st, in WalkRequest request)
    {
        var byTarget = st.Targets is not null;
        using var mode = GradMode.Override(request.CreateGraph);
        while (st.HeapCount > 0)
        {
            var node = st.Dequeue();
            var g = node.WalkGrad;
            node.WalkGrad = null;
            node.WalkGradOwned = false;
            if (g is not null && node.HasHooks)
            {
                g = GradientHooks.Run(node, g, request.Api, request.CreateGraph, keep: !byTarget);
            }

            if (g is not null && node.WalkCapture >= 0)
            {
                request.Captured![node.WalkCapture] = g;
            }

            if (node is AccumulateGrad acc)
            {
                if (!byTarget && g is not null)
                {
                    AccumulateLeaf(acc, g, request.CreateGraph, st.OwnedStamp);
                }

                continue;
            }

            if (byTarget && !AnyNeeded(node))
            {
                continue;
            }

            var grads = st.GradBuffer(node.InputCount);
            if (g is not null)
            {
                RunRule(node, g, grads);
            }

            PassOn(st, in request, node, g, grads);

            // Phase 5, execute (release per node): what the rule saved is freed as soon as it has run, not after the walk.
            if (!request.RetainGraph)
            {
                node.Release();
            }
        }
    }

    /// <summary>Part of phase 4 (execute): runs the backward rule of <paramref name="node"/>, shown to any observer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RunRule(Node node, Tensor g, Tensor?[] grads)
    {
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseBackwardStart(node, g);
            node.Backward(g, grads);
            TapeObserver.RaiseBackwardEnd(node, g, grads);
        }
        else
        {
            node.Backward(g, grads);
        }
    }

    /// <summary>
    /// Part of phase 4 (execute): checks each input gradient the rule of <paramref name="node"/> wrote (given
    /// <paramref name="incoming"/>), delivers it to the node that produced that input, and queues that node once it has
    /// heard from all its needed users. Clears <paramref name="grads"/> for the next rule.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PassOn(WalkState st, in WalkRequest request, Node node, Tensor? incoming, Tensor?[] grads)
    {
        for (var i = 0; i < grads.Length; i++)
        {
            var gi = grads[i];
            var child = node.Next(i);
            if (child is null || !child.WalkNeeded)
            {
                continue;
            }

            if (gi is not null)
            {
                if (gi.Shape != child.OutputShape || gi.DType != child.OutputDType)
                {
                    throw WrongGradientShape(request.Api, node, i, gi, child);
                }

                if (gi.WalkBirth != 0 && !st.RulesAreTrusted(node))
                {
                    // A rule from elsewhere may keep the tensor it made: never let a leaf take it.
                    gi.WalkBirth = 0;
                }

                // Whether the walk owns gi matters only where gradients meet: a child that has one or will get another.
                var meets = child.WalkGrad is not null || child.WalkDeps > 1;
                Deliver(child, gi, request.CreateGraph, meets && Exclusive(st, gi, i, incoming, grads));
            }

            if (--child.WalkDeps == 0)
            {
                st.Enqueue(child);
            }
        }

        for (var i = 0; i < grads.Length; i++)
        {
            grads[i] = null;
        }
    }

    /// <summary>
    /// Part of phase 4 (execute): whether input gradient <paramref name="i"/> of a rule is the child's alone, so that
    /// later gradients arriving at the child may be added into it in place. It is when the rule made it in this walk (a
    /// trusted rule keeps nothing it made) and nothing else the rule handed on or received shares its storage: not the
    /// same tensor given to two inputs, not a view of it, not the incoming gradient passed through.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Exclusive(WalkState st, Tensor gi, int i, Tensor? incoming, Tensor?[] grads)
    {
        if (gi.WalkBirth != st.ExclusiveStamp || st.ExclusiveStamp == 0 || ReferenceEquals(incoming?.Storage, gi.Storage))
        {
            return false;
        }

        for (var j = 0; j < grads.Length; j++)
        {
            if (j != i && ReferenceEquals(grads[j]?.Storage, gi.Storage))
            {
                return false;
            }
        }

        return true;
    }

    private static InvalidOperationException WrongGradientShape(string api, Node node, int i, Tensor gi, Node child)
        => new($"{api}: the backward rule of '{node.Name}' produced a gradient of shape {gi.Shape} {gi.DType.Name()} for input {i}, which has shape {child.OutputShape} {child.OutputDType.Name()}.");

    /// <summary>Part of phase 4 (execute): a leaf's accumulator adds <paramref name="g"/> into the leaf's Grad, shown to any observer.</summary>
    private static void AccumulateLeaf(AccumulateGrad acc, Tensor g, bool createGraph, int ownedStamp)
    {
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseBackwardStart(acc, g);
        }

        AccumulateInto(acc.Leaf, g, createGraph, ownedStamp);
        if (TapeObserver.Current is not null)
        {
            TapeObserver.RaiseBackwardEnd(acc, g, []);
        }
    }

    /// <summary>
    /// Phase 6, release (at the end of every walk, also one that failed): what each rule saved was freed as it ran (see
    /// <see cref="Execute"/>); this restores the enclosing walk's stamp and clears the walk fields of every collected node.
    /// </summary>
    private static void Release(WalkState st, int previousWalk)
    {
        t_currentWalk = previousWalk;
        foreach (var node in st.Collected)
        {
            node.WalkDeps = 0;
            node.WalkNeeded = false;
            node.WalkCapture = -1;
            node.WalkGrad = null;
            node.WalkGradOwned = false;
        }
    }

    /// <summary>
    /// Adds a gradient arriving at <paramref name="node"/>: the first is kept as it is, the second makes a new sum that the
    /// walk owns, and later ones are added into that sum in place (a create-graph walk records every sum instead). A
    /// gradient that is <paramref name="exclusive"/> (see <see cref="Exclusive"/>) is owned already: arriving first, the
    /// second is added into it; arriving second, the first is.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deliver(Node node, Tensor g, bool createGraph, bool exclusive = false)
    {
        if (node.WalkGrad is null)
        {
            node.WalkGrad = g;
            node.WalkGradOwned = exclusive;
        }
        else
        {
            Accumulate(node, g, createGraph, exclusive);
        }
    }

    /// <summary>Part of <see cref="Deliver"/>: a gradient arriving at a node that holds one already.</summary>
    private static void Accumulate(Node node, Tensor g, bool createGraph, bool exclusive)
    {
        var current = node.WalkGrad!;
        if (node.WalkGradOwned)
        {
            AddInPlace(current, g);
        }
        else if (exclusive)
        {
            // The first is not the walk's to write, the second is: the sum goes into the second (a + b and b + a are
            // the same number), which the walk owns from now on.
            AddInPlace(g, current);
            node.WalkGrad = g;
            node.WalkGradOwned = true;
        }
        else
        {
            // Inside a dual level a sum is a recorded node too, so that it carries the tangents of its terms.
            node.WalkGrad = AddGradients(current, g, createGraph);
            node.WalkGradOwned = !createGraph && ForwardMode.Level == 0;
        }
    }


    /// <summary>
    /// Whether the rules of nodes of <paramref name="type"/> keep no reference to the tensors they return: its assembly
    /// declares <see cref="RulesKeepNoGradientsAttribute"/>, and it is not <see cref="CustomOperatorNode"/> (defined in
    /// the engine, but running the application's Backward). Read once per assembly; the walk caches trusted types per thread.
    /// </summary>
    private static bool RulesAreTrusted(Type type)
    {
        if (type == typeof(CustomOperatorNode))
        {
            // Its rules are the application's Backward (through CustomOperator), which may keep what it returns.
            return false;
        }

        var assembly = type.Assembly;
        if (!s_rulesKeepNoGradients.TryGetValue(assembly, out var declared))
        {
            declared = new StrongBox<bool>(assembly.IsDefined(typeof(RulesKeepNoGradientsAttribute), inherit: false));
            s_rulesKeepNoGradients.AddOrUpdate(assembly, declared);
        }

        return declared.Value;
    }

    /// <summary>True when an output before <paramref name="i"/> has the same node.</summary>
    private static bool SeenBefore(ReadOnlySpan<Tensor> outputs, int i, Node root)
    {
        for (var j = 0; j < i; j++)
        {
            if (ReferenceEquals(outputs[j].Edge, root))
            {
                return true;
            }
        }

        return false;
    }

    private static bool AnyNeeded(Node node)
    {
        for (var i = 0; i < node.InputCount; i++)
        {
            if (node.Next(i) is { WalkNeeded: true })
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Keeps <paramref name="g"/> in the Grad of a tensor that retains its gradient (accumulated, as a leaf's).</summary>
    internal static void KeepGradient(Tensor tensor, Tensor g, bool createGraph) => AccumulateInto(tensor, g, createGraph, ownedStamp: 0);

    private static void AccumulateInto(Tensor leaf, Tensor g, bool createGraph, int ownedStamp)
    {
        AccumulateGradient(leaf, g, createGraph, ownedStamp);

        // The Grad lives as long as the tensor: it belongs to the tensor's scope (or to none), not the walk's.
        if (leaf.Grad is { } kept)
        {
            TensorScope.Adopt(kept, leaf);
        }
    }

    private static void AccumulateGradient(Tensor leaf, Tensor g, bool createGraph, int ownedStamp)
    {
        // A gradient that is not on the tape is copied, so that the leaf owns its Grad: accumulating into it in
        // place (and ZeroGrad) must never write into the caller's gradOutput or a tensor shared with the graph.
        // A gradient allocated by this walk (a rule's fresh result) is referenced by nothing else, so it is taken
        // as it is, once (a second leaf given the same tensor copies it).
        var current = leaf.Grad;
        if (current is null)
        {
            if (createGraph && g.RequiresGrad)
            {
                leaf.Grad = g;
            }
            else if (ownedStamp != 0 && g.WalkBirth == ownedStamp && !g.RequiresGrad)
            {
                g.WalkBirth = 0;
                leaf.Grad = g;
            }
            else
            {
                leaf.Grad = g.Clone();
            }
        }
        else if (!createGraph && !current.RequiresGrad && !g.RequiresGrad && ForwardMode.Level == 0)
        {
            current.MarkWritten("AccumulateGrad");
            AddInPlace(current, g);
        }
        else
        {
            leaf.Grad = AddGradients(current, g, createGraph);
        }
    }

    /// <summary>
    /// a + b for two gradients of one shape; recorded (differentiable) when <paramref name="createGraph"/> is set, and
    /// inside a dual level when a term carries a tangent (the node's forward rule gives the sum's tangent).
    /// </summary>
    private static Tensor AddGradients(Tensor a, Tensor b, bool createGraph)
    {
        var sum = Tensor.Uninitialized(a.Shape, a.DType);
        Add(a, b, sum);
        if ((createGraph || ForwardMode.Level != 0) && Tensor.ShouldRecord(a, b))
        {
            sum.SetGradFn(new GradSumNode(a, b));
        }

        return sum;
    }

    private static void AddInPlace(Tensor acc, Tensor g) => Add(acc, g, acc);

    /// <summary>dst = a + b elementwise (all three of one shape; dst may be a), on two threads or more for large tensors.</summary>
    private static void Add(Tensor a, Tensor b, Tensor dst)
    {
        var n = dst.ElementCount;
        var chunks = Workers.Chunks(n, Workers.ElementwiseThreshold / 4);
        if (a.DType == DType.Float64)
        {
            Workers.For(n, chunks, new AddJob<double>((double[])a.Storage, a.Offset, (double[])b.Storage, b.Offset, (double[])dst.Storage, dst.Offset));
        }
        else
        {
            Workers.For(n, chunks, new AddJob<float>((float[])a.Storage, a.Offset, (float[])b.Storage, b.Offset, (float[])dst.Storage, dst.Offset));
        }
    }

    /// <summary>
    /// What one walk was asked to do, made once by the public entry points and passed by reference (<c>in</c>) to every
    /// phase of the walk.
    /// </summary>
    private readonly ref struct WalkRequest
    {
        /// <summary>The operation that started the walk (<c>Backward</c> or <c>Grad</c>), named in every error.</summary>
        public required string Api { get; init; }

        /// <summary>The tensors to differentiate.</summary>
        public required ReadOnlySpan<Tensor> Outputs { get; init; }

        /// <summary>One gradient per output, or null where it is implied (1, for a one-element output).</summary>
        public required ReadOnlySpan<Tensor?> GradOutputs { get; init; }

        /// <summary>Keep what the rules saved, so the graph can be walked again.</summary>
        public bool RetainGraph { get; init; }

        /// <summary>Record the rules as they run, so the gradients can be differentiated again.</summary>
        public bool CreateGraph { get; init; }

        /// <summary>For <c>Grad</c>, the tensors to differentiate with respect to; null for <c>Backward</c>, which accumulates into the leaves.</summary>
        public IReadOnlyList<Tensor>? Inputs { get; init; }

        /// <summary>For <c>Grad</c>, leave the gradient of an input the outputs do not depend on null instead of throwing.</summary>
        public bool AllowUnused { get; init; }

        /// <summary>For <c>Grad</c>, receives the gradient of each input (null where none arrived).</summary>
        public Tensor?[]? Captured { get; init; }
    }

    /// <summary>
    /// The working arrays of one walk (the post-order, the explicit DFS stack, the ready heap and the rule buffers) and
    /// what its phases hand on to the next: the stamp, the seeds and the target nodes.
    /// </summary>
    private sealed class WalkState
    {
        private const int KeepLimit = 1 << 20;

        private bool _inUse;
        private (Node Node, int NextIndex)[] _stack = new (Node, int)[32];
        private Node[] _heap = new Node[16];
        private Tensor?[]?[] _gradBuffers = new Tensor?[]?[4];
        private Tensor[] _seeds = new Tensor[1];
        private readonly Type?[] _trustedTypes = new Type?[8];
        private int _nextTrusted;

        public Node[] Order { get; private set; } = new Node[32];

        public int OrderCount { get; private set; }

        public int StackCount { get; set; }

        public int HeapCount { get; private set; }

        public ref (Node Node, int NextIndex) Top => ref _stack[StackCount - 1];

        /// <summary>The nodes collected by this walk, in post-order.</summary>
        public ReadOnlySpan<Node> Collected => Order.AsSpan(0, OrderCount);

        /// <summary>This walk's stamp, given in phase 2 (collect) to every node it reaches.</summary>
        public int Stamp { get; set; }

        /// <summary>The seed of each output (its gradient, or an implied 1), from phase 1 (validate).</summary>
        public Tensor[] Seeds => _seeds;

        /// <summary>Bit i set when the seed of output i (below 64) is an implied 1 that the walk made.</summary>
        public ulong Implied { get; set; }

        /// <summary>For <c>Grad</c>, the node of each requested input; null for <c>Backward</c>.</summary>
        public Node?[]? Targets { get; set; }

        /// <summary>The stamp a gradient must carry for a leaf to take it uncopied, or 0 when every gradient is copied.</summary>
        public int OwnedStamp { get; set; }

        /// <summary>
        /// The stamp a gradient must carry for a node to add later gradients into it in place (see <c>Exclusive</c>): the
        /// owned stamp outside a dual level, where sums are not recorded; 0 inside one.
        /// </summary>
        public int ExclusiveStamp { get; set; }

        /// <summary>This thread's state, or a fresh one when it is in use (a walk started from inside a rule).</summary>
        public static WalkState Rent()
        {
            var st = t_state;
            if (st is null || st._inUse)
            {
                st = new WalkState();
                t_state ??= st;
            }

            st._inUse = true;
            return st;
        }

        public void Return()
        {
            Array.Clear(Order, 0, OrderCount);
            Array.Clear(_stack, 0, StackCount);
            Array.Clear(_heap, 0, HeapCount);
            Array.Clear(_seeds);
            foreach (var buffer in _gradBuffers)
            {
                if (buffer is not null)
                {
                    Array.Clear(buffer);
                }
            }

            OrderCount = StackCount = HeapCount = 0;
            Stamp = OwnedStamp = ExclusiveStamp = 0;
            Implied = 0;
            Targets = null;
            if (Order.Length > KeepLimit)
            {
                Order = new Node[32];
                _stack = new (Node, int)[32];
                _heap = new Node[16];
            }

            _inUse = false;
        }

        /// <summary>Whether the rules of <paramref name="node"/>'s type keep nothing they return; recent trusted types are cached.</summary>
        public bool RulesAreTrusted(Node node)
        {
            var type = node.GetType();
            foreach (var t in _trustedTypes)
            {
                if (ReferenceEquals(t, type))
                {
                    return true;
                }
            }

            if (!Autodiff.RulesAreTrusted(type))
            {
                return false;
            }

            _trustedTypes[_nextTrusted++ & (_trustedTypes.Length - 1)] = type;
            return true;
        }

        public Tensor[] SeedBuffer(int count)
        {
            if (_seeds.Length < count)
            {
                _seeds = new Tensor[count];
            }

            return _seeds;
        }

        /// <summary>A cleared array of exactly <paramref name="count"/> entries for a rule's input gradients.</summary>
        public Tensor?[] GradBuffer(int count)
        {
            if (count >= _gradBuffers.Length)
            {
                Array.Resize(ref _gradBuffers, Math.Max(count + 1, _gradBuffers.Length * 2));
            }

            return _gradBuffers[count] ??= new Tensor?[count];
        }

        public void Push(Node node)
        {
            if (StackCount == _stack.Length)
            {
                Array.Resize(ref _stack, _stack.Length * 2);
            }

            _stack[StackCount++] = (node, 0);
        }

        public void AddOrder(Node node)
        {
            if (OrderCount == Order.Length)
            {
                var grown = Order;
                Array.Resize(ref grown, grown.Length * 2);
                Order = grown;
            }

            Order[OrderCount++] = node;
        }

        /// <summary>Adds a ready node; the latest recorded (largest <see cref="Node.Sequence"/>) comes out first.</summary>
        public void Enqueue(Node node)
        {
            if (HeapCount == _heap.Length)
            {
                Array.Resize(ref _heap, _heap.Length * 2);
            }

            var i = HeapCount++;
            var seq = node.Sequence;
            while (i > 0)
            {
                var parent = (i - 1) >> 1;
                if (_heap[parent].Sequence >= seq)
                {
                    break;
                }

                _heap[i] = _heap[parent];
                i = parent;
            }

            _heap[i] = node;
        }

        public Node Dequeue()
        {
            var top = _heap[0];
            var last = _heap[--HeapCount];
            _heap[HeapCount] = null!;
            if (HeapCount > 0)
            {
                var seq = last.Sequence;
                var i = 0;
                while (true)
                {
                    var c = (2 * i) + 1;
                    if (c >= HeapCount)
                    {
                        break;
                    }

                    if (c + 1 < HeapCount && _heap[c + 1].Sequence > _heap[c].Sequence)
                    {
                        c++;
                    }

                    if (_heap[c].Sequence <= seq)
                    {
                        break;
                    }

                    _heap[i] = _heap[c];
                    i = c;
                }

                _heap[i] = last;
            }

            return top;
        }
    }

    [Rule("GradSum", Forward = "y = a + b, two gradients meeting at one node (recorded with createGraph)", Backward = "da = g, db = g", Tangent = "ẏ = ȧ + ḃ")]
    private sealed class GradSumNode(Tensor a, Tensor b) : Node("GradSum", a, b)
    {
        protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
        {
            inputGrads[0] = grad;
            inputGrads[1] = grad;
        }

        protected internal override Tensor? Jvp(Tensor?[] tangents, Tensor output)
            => tangents[0] is not { } a ? tangents[1] : tangents[1] is not { } b ? a : AddGradients(a, b, createGraph: true);
    }
}

/// <summary>dst = a + b on a range of elements.</summary>
internal readonly struct AddJob<T>(T[] a, int aOffset, T[] b, int bOffset, T[] dst, int dstOffset) : IRangeJob
    where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
{
    public void Run(int start, int end)
        => AddKernel<T>.Run(a.AsSpan(aOffset + start, end - start), b.AsSpan(bOffset + start, end - start), dst.AsSpan(dstOffset + start, end - start));
}

/// <content>Backward entry points on the tensor itself.</content>
public sealed partial class Tensor
{
    /// <summary>
    /// Computes the gradient of this tensor with respect to every leaf that requires grad and adds it into their
    /// <see cref="Grad"/>. Without <paramref name="gradient"/> this tensor must have one element.
    /// </summary>
    /// <param name="gradient">d(loss)/d(this), shaped like this tensor (as in the article: <c>s.Backward(dL)</c>).</param>
    /// <param name="retainGraph">Keep the saved tensors so the graph can be walked again (defaults to <paramref name="createGraph"/>).</param>
    /// <param name="createGraph">Record the backward pass so the gradients can be differentiated again.</param>
    public void Backward(Tensor? gradient = null, bool? retainGraph = null, bool createGraph = false)
        => Autodiff.BackwardOne(this, gradient, retainGraph ?? createGraph, createGraph);
}
