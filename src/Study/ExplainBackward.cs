using System.Runtime.CompilerServices;

namespace Autograd.Study;

/// <summary>
/// A scope during which every backward walk on this thread explains itself: for each node, in the order the walk runs
/// it, the node (its name and operation), the upstream gradient with the gradients it was summed from where several
/// meet, the rule (<see cref="Node.Formula"/>), and the gradient sent to each input; for a leaf, the accumulation
/// <c>x.grad += g</c> and the result.
/// </summary>
/// <example>
/// <code>
/// using var tape = new TapeListing();
/// tape.Name(x, "x");
/// var s = x.Softmax(0);
/// using (new ExplainBackward(Console.Out, tape, precision: 8))
/// {
///     s.Backward(dL);
/// }
/// </code>
/// </example>
/// <remarks>
/// Tensors are named by <c>names</c> (a <see cref="GraphRecorder"/> or <see cref="TapeListing"/> that saw the forward
/// pass), else by the scope itself: if it is created before the forward pass it names results in execution order, and
/// nodes it first meets in the backward walk are named in recording order. Without <c>createGraph</c> the engine sums
/// the gradients that meet at a node without recording anything; with it the sum is a recorded <c>GradSum</c> node.
/// Steps are numbered from 1 for the whole life of the scope.
/// </remarks>
public sealed class ExplainBackward : TapeObserver, IDisposable
{
    private readonly TextWriter _writer;
    private readonly GraphRecorder? _own;
    private readonly ConditionalWeakTable<Node, List<Contribution>> _pending = [];
    private IDisposable? _scope;
    private int _step;
    private int _labelWidth;
    private int _elementWidth;
    private double[]? _leafBefore;

    /// <summary>Starts explaining backward walks on this thread until the scope is disposed.</summary>
    /// <param name="writer">Where the explanation goes (default <see cref="Console.Out"/>).</param>
    /// <param name="names">A recorder that names the tensors (e.g. the <see cref="TapeListing"/> of the forward pass), or null.</param>
    /// <param name="precision">Digits after the decimal point of the numbers shown (0 to 17).</param>
    /// <param name="maxElements">Tensors with more elements are summarised (first and last three values).</param>
    public ExplainBackward(TextWriter? writer = null, GraphRecorder? names = null, int precision = 4, int maxElements = 20)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(precision);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(precision, 17);
        ArgumentOutOfRangeException.ThrowIfNegative(maxElements);
        _writer = writer ?? Console.Out;
        _own = names is null ? GraphRecorder.Detached(weakReferences: true) : null;
        Names = names ?? _own!;
        Precision = precision;
        MaxElements = maxElements;
        _scope = Attach(this);
    }

    /// <summary>The recorder that names tensors in the explanation.</summary>
    public GraphRecorder Names { get; }

    /// <summary>Digits after the decimal point of the numbers shown.</summary>
    public int Precision { get; }

    /// <summary>Tensors with more elements than this are summarised.</summary>
    public int MaxElements { get; }

    /// <summary>Stops explaining (detaches from the tape).</summary>
    public void Dispose()
    {
        _scope?.Dispose();
        _scope = null;
    }

    /// <inheritdoc />
    protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs) => _own?.HandleNodeCreated(node, inputs);

    /// <inheritdoc />
    protected override void OnRecorded(Node node, Tensor output) => _own?.HandleRecorded(node, output);

    /// <inheritdoc />
    protected override void OnBackwardStart(Node node, Tensor grad)
    {
        _own?.HandleBackwardStart(node, grad);
        _step++;
        var (arrived, seed) = Arrived(node, grad);
        _elementWidth = arrived.Select(c => Width(c.Grad)).Append(Width(grad)).Max();
        if (seed is not null)
        {
            _elementWidth = Math.Max(_elementWidth, StudyText.ElementWidth(seed, grad.DType, Precision, MaxElements));
        }
        if (node is AccumulateGrad acc)
        {
            var leaf = Names.NameOf(acc.Leaf);
            _labelWidth = Math.Max(6, leaf.Length + 5);
            _writer.WriteLine($"[{_step}] {leaf}.grad += g   AccumulateGrad of leaf {leaf}, {StudyText.ShapeAndType(node.OutputShape, node.OutputDType)}");
            WriteGradient(grad, arrived, seed);
            WriteTangent(grad);
            _leafBefore = acc.Leaf.Grad?.ToArray();
            return;
        }

        _labelWidth = 6;
        for (var i = 0; i < node.InputCount; i++)
        {
            _labelWidth = Math.Max(_labelWidth, Names.InputName(node, i).Length + 2);
        }

        _writer.WriteLine($"[{_step}] {Names.Expression(node)}   {StudyText.ShapeAndType(node.OutputShape, node.OutputDType)}");
        WriteGradient(grad, arrived, seed);
        WriteTangent(grad);
        Row("rule", " ", node.Formula.Length > 0 ? node.Formula : "(the node gives no formula)", string.Empty);

    }

    /// <inheritdoc />
    protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
    {
        _own?.HandleBackwardEnd();
        if (node is AccumulateGrad acc)
        {
            WriteLeaf(acc);
            _writer.WriteLine();
            return;
        }

        var next = node.NextNodes;
        var from = Names.NameOf(node);
        var sent = new List<(string Label, Tensor? Grad, string Note)>();
        for (var i = 0; i < next.Length; i++)
        {
            var label = "→ " + Names.InputName(node, i);
            var gi = i < inputGrads.Length ? inputGrads[i] : null;
            if (next[i] is null)
            {
                sent.Add((label, null, "no gradient: this input does not require grad"));
            }
            else if (gi is null)
            {
                sent.Add((label, null, "not computed: this walk does not need it"));
            }
            else
            {
                sent.Add((label, gi, next.Length > 1 ? $"input {i}" : string.Empty));
                _pending.GetOrCreateValue(next[i]!).Add(new Contribution(next.Length > 1 ? $"from {from} (input {i})" : $"from {from}", node, i, gi));
            }
        }

        _elementWidth = sent.Where(s => s.Grad is not null).Select(s => Width(s.Grad!)).Append(_elementWidth).Max();
        var values = sent.Select(s => s.Grad is null ? string.Empty : Values(s.Grad)).ToList();
        var w = values.Max(v => v.Length);
        for (var i = 0; i < sent.Count; i++)
        {
            var (label, g, note) = sent[i];
            if (g is null)
            {
                Row(label, " ", note, string.Empty);
            }
            else
            {
                Row(label, "=", values[i].PadRight(w), note);
            }
        }

        _writer.WriteLine();
    }

    /// <summary>Writes the upstream gradient: the seed, the one gradient that arrived, or the gradients that meet here and their sum.</summary>
    private void WriteGradient(Tensor grad, List<Contribution> arrived, double[]? seed)
    {
        var total = Values(grad);
        if (arrived.Count == 0)
        {
            Row("g", "=", total, "seed: the gradient given to the backward call");
            return;
        }

        if (arrived.Count == 1 && seed is null)
        {
            Row("g", "=", total, arrived[0].From);
            return;
        }

        var parts = arrived.Select(c => (Value: Values(c.Grad), c.From)).ToList();
        if (seed is not null)
        {
            parts.Add((StudyText.Values(seed, grad.Shape, grad.DType, Precision, MaxElements, _elementWidth), "the rest: the seed given to the backward call"));
        }

        var w = Math.Max(total.Length, parts.Max(p => p.Value.Length));
        for (var i = 0; i < parts.Count; i++)
        {
            Row(i == 0 ? "g" : string.Empty, i == 0 ? "=" : "+", parts[i].Value.PadRight(w), parts[i].From);
        }

        var how = grad.GradFn is { } sum
            ? $"GradSum: the gradients meeting here are added, recorded as {Names.Expression(sum)}"
            : "GradSum: the gradients meeting here are added";
        Row(string.Empty, "=", total.PadRight(w), how);
    }

    /// <summary>
    /// In a dual level (forward-over-reverse), the tangent the gradient carries: the walk's rules are operations with
    /// forward rules, so the gradient's tangent travels with it (at a leaf it is the Hessian-vector product H v).
    /// </summary>
    private void WriteTangent(Tensor grad)
    {
        if (grad.Tangent is { } tangent)
        {
            Row("ġ", "=", Values(tangent), "the tangent of g (forward mode)");
        }
    }

    private void WriteLeaf(AccumulateGrad acc)
    {
        var label = Names.NameOf(acc.Leaf) + ".grad";
        var leafGrad = acc.Leaf.Grad;
        if (leafGrad is not null)
        {
            _elementWidth = Math.Max(_elementWidth, Width(leafGrad));
        }

        var now = leafGrad is null ? "null" : Values(leafGrad);
        if (_leafBefore is null)
        {
            Row(label, "=", now, "was empty: now a copy of g");
            return;
        }

        _elementWidth = Math.Max(_elementWidth, StudyText.ElementWidth(_leafBefore, acc.Leaf.DType, Precision, MaxElements));
        now = leafGrad is null ? "null" : Values(leafGrad);
        var before = StudyText.Values(_leafBefore, acc.Leaf.Shape, acc.Leaf.DType, Precision, MaxElements, _elementWidth);
        var w = Math.Max(before.Length, now.Length);
        Row(label, "=", before.PadRight(w), "before");
        Row(string.Empty, "=", now.PadRight(w), "after adding g");
        _leafBefore = null;
    }

    private void Row(string label, string op, string value, string note)
    {
        var line = $"    {label.PadRight(_labelWidth)} {op} {value}";
        _writer.WriteLine(note.Length == 0 ? line.TrimEnd() : $"{line}   {note}");
    }

    private int Width(Tensor t) => StudyText.ElementWidth(t, Precision, MaxElements);

    private string Values(Tensor t) => StudyText.Values(t, Precision, MaxElements, _elementWidth);

    /// <summary>
    /// The gradients sent to <paramref name="node"/> in this walk. Gradients left over from an earlier walk (one that
    /// stopped early, as <see cref="Autodiff.Grad(Tensor, Tensor, Tensor?, bool, bool?, bool)"/> does at its inputs)
    /// are dropped: one consumer sends one gradient per input in a walk, and the gradients of this walk add up to
    /// <paramref name="grad"/>.
    /// </summary>
    /// <returns>The gradients of this walk, and, when they do not add up to <paramref name="grad"/> (an output that is also used by
    /// another output gets a seed too), the difference, else null.</returns>
    private (List<Contribution> Arrived, double[]? Seed) Arrived(Node node, Tensor grad)
    {
        if (!_pending.TryGetValue(node, out var all))
        {
            return ([], null);
        }

        _pending.Remove(node);
        var latest = new List<Contribution>();
        for (var i = 0; i < all.Count; i++)
        {
            var later = false;
            for (var j = i + 1; j < all.Count && !later; j++)
            {
                later = ReferenceEquals(all[j].Consumer, all[i].Consumer) && all[j].Input == all[i].Input;
            }

            if (!later)
            {
                latest.Add(all[i]);
            }
        }

        if (latest.Count > 0 && ReferenceEquals(latest[^1].Grad, grad))
        {
            return ([latest[^1]], null);
        }

        var target = grad.ToArray();
        var tolerance = grad.DType == DType.Float32 ? 1e-5 : 1e-12;
        for (var k = 0; k < latest.Count; k++)
        {
            var sum = new double[target.Length];
            var ok = true;
            for (var j = k; j < latest.Count && ok; j++)
            {
                var part = latest[j].Grad;
                if (part.ElementCount != sum.Length)
                {
                    ok = false;
                    break;
                }

                var values = part.ToArray();
                for (var e = 0; e < sum.Length; e++)
                {
                    sum[e] += values[e];
                }
            }

            for (var e = 0; e < sum.Length && ok; e++)
            {
                var scale = Math.Max(1, Math.Max(Math.Abs(sum[e]), Math.Abs(target[e])));
                ok = Math.Abs(sum[e] - target[e]) <= tolerance * scale || (double.IsNaN(sum[e]) && double.IsNaN(target[e])) || sum[e].Equals(target[e]);
            }

            if (ok)
            {
                return (latest.GetRange(k, latest.Count - k), null);
            }
        }

        var rest = (double[])target.Clone();
        foreach (var c in latest.Where(c => c.Grad.ElementCount == rest.Length))
        {
            var values = c.Grad.ToArray();
            for (var e = 0; e < rest.Length; e++)
            {
                rest[e] -= values[e];
            }
        }

        return (latest, rest);
    }

    private sealed record Contribution(string From, Node Consumer, int Input, Tensor Grad);
}
