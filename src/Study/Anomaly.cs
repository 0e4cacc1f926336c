using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;

namespace Autograd.Study;

/// <summary>Where an anomaly was found: in an operation's result or in a gradient computed by a backward rule.</summary>
public enum AnomalyPhase
{
    /// <summary>An operation recorded on the tape produced a non-finite value.</summary>
    Forward,

    /// <summary>A backward rule produced a non-finite input gradient, or a non-finite gradient arrived at a node.</summary>
    Backward,
}

/// <summary>
/// Anomaly detection, like PyTorch's <c>torch.autograd.detect_anomaly</c>: inside
/// <c>using (Anomaly.Detect()) { … }</c> the first NaN or ±Inf produced by a recorded operation, or by a backward
/// rule, throws an <see cref="AnomalyException"/> that names the operation, its place in the tape and the shapes of
/// its inputs.
/// </summary>
/// <remarks>
/// <para>
/// Checks, made through a <see cref="TapeObserver"/> on the calling thread only:
/// </para>
/// <list type="bullet">
/// <item><description>forward: the result of every operation recorded on the tape, when it is recorded (operations that
/// are not recorded — under <see cref="Tensor.NoGrad"/>, or on tensors that need no gradient — are not checked);</description></item>
/// <item><description>backward: the gradient arriving at each node (the seed, or the sum of the gradients from several
/// users) before its rule runs, and each input gradient the rule produces.</description></item>
/// </list>
/// <para>
/// The exception is thrown from inside the operator or the backward walk, so the operation that produced the value is
/// on the stack trace; the walk cleans up its state as it unwinds. Every element of every checked tensor is read, so
/// this mode is for debugging, not for training at speed. Leaving the scope detaches the observer, also when the scope
/// is left by the exception.
/// </para>
/// </remarks>
public static class Anomaly
{
    /// <summary>
    /// Turns anomaly detection on for this thread until the returned scope is disposed:
    /// <c>using (Anomaly.Detect()) { var loss = …; loss.Backward(); }</c>.
    /// </summary>
    /// <returns>The scope; dispose it to stop detecting.</returns>
    public static IDisposable Detect() => new AnomalyDetector();

    /// <summary>1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st, ….</summary>
    internal static string Ordinal(long n)
    {
        var suffix = (n % 100) is 11 or 12 or 13 ? "th" : (n % 10) switch
        {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        };
        return n.ToString(CultureInfo.InvariantCulture) + suffix;
    }

    /// <summary>The index of the first NaN or ±Inf element of a floating-point tensor, or −1.</summary>
    internal static int FirstNonFinite(Tensor t)
    {
        switch (t.DType)
        {
            case DType.Float64:
                {
                    var s = t.AsSpan<double>();
                    for (var i = 0; i < s.Length; i++)
                    {
                        if (!double.IsFinite(s[i]))
                        {
                            return i;
                        }
                    }

                    return -1;
                }

            case DType.Float32:
                {
                    var s = t.AsSpan<float>();
                    for (var i = 0; i < s.Length; i++)
                    {
                        if (!float.IsFinite(s[i]))
                        {
                            return i;
                        }
                    }

                    return -1;
                }

            default:
                return -1;
        }
    }

    private sealed class AnomalyDetector : TapeObserver, IDisposable
    {
        private readonly ConditionalWeakTable<Node, NodeInfo> _nodes = [];
        private readonly List<Node> _running = [];
        private readonly IDisposable _attachment;
        private long _recorded;
        private Node? _pendingNode;
        private Tensor[]? _pendingInputs;

        public AnomalyDetector() => _attachment = Attach(this);

        public void Dispose()
        {
            _attachment.Dispose();
            _pendingInputs = null;
            _pendingNode = null;
            _running.Clear();
        }

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
        {
            _pendingNode = node;
            _pendingInputs = inputs.ToArray();
        }

        protected override void OnRecorded(Node node, Tensor output)
        {
            var position = ++_recorded;
            Tensor[]? inputs = null;
            if (ReferenceEquals(node, _pendingNode))
            {
                inputs = _pendingInputs;
                _pendingNode = null;
                _pendingInputs = null;
            }

            var info = new NodeInfo(position, inputs is null ? ShapesFromEdges(node) : [.. inputs.Select(t => (Shape?)t.Shape)]);
            _nodes.AddOrUpdate(node, info);
            var bad = FirstNonFinite(output);
            if (bad < 0)
            {
                return;
            }

            var value = output.GetFlat(bad);
            var text = new StringBuilder();
            text.Append(CultureInfo.InvariantCulture, $"Anomaly detected in forward: '{node.Name}', {Where(node, info)}, produced {Describe(value)} at element {bad} of its output {output.Shape} {output.DType.Name()}.");
            text.Append(CultureInfo.InvariantCulture, $" Inputs: {FormatShapes(info.InputShapes)}");
            if (inputs is not null)
            {
                var badInputs = Enumerable.Range(0, inputs.Length).Where(i => FirstNonFinite(inputs[i]) >= 0).ToArray();
                text.Append(badInputs.Length == 0
                    ? " (all finite: this operation created the non-finite value)."
                    : $" (input {string.Join(", ", badInputs)} already contained NaN or Inf: look at where it came from).");
            }
            else
            {
                text.Append('.');
            }

            AppendRunning(text);
            throw new AnomalyException(text.ToString(), AnomalyPhase.Forward, node, info.Position, info.InputShapes, -1, bad, value, RunningName);
        }

        protected override void OnBackwardStart(Node node, Tensor grad)
        {
            var bad = FirstNonFinite(grad);
            if (bad < 0)
            {
                _running.Add(node);
                return;
            }

            var info = Info(node);
            var value = grad.GetFlat(bad);
            var message = string.Create(
                CultureInfo.InvariantCulture,
                $"Anomaly detected in backward: the gradient arriving at '{node.Name}' ({Where(node, info)}) holds {Describe(value)} at element {bad} of shape {grad.Shape}, before its rule ran. It is the output gradient passed to the walk, or the sum of the gradients from several uses of the output of '{node.Name}' (e.g. +Inf + −Inf). Inputs: {FormatShapes(info.InputShapes)}.");
            throw new AnomalyException(message, AnomalyPhase.Backward, node, info.Position, info.InputShapes, -1, bad, value, null);
        }

        protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
        {
            var index = _running.LastIndexOf(node);
            if (index >= 0)
            {
                _running.RemoveAt(index);
            }

            for (var i = 0; i < inputGrads.Length; i++)
            {
                var gi = inputGrads[i];
                var bad = gi is null ? -1 : FirstNonFinite(gi);
                if (bad < 0)
                {
                    continue;
                }

                var info = Info(node);
                var value = gi!.GetFlat(bad);
                var formula = node.Formula.Length > 0 ? $" (rule: {node.Formula})" : string.Empty;
                var upstream = FirstNonFinite(grad) < 0 ? "the gradient it received was finite" : "the gradient it received was not finite";
                var message = string.Create(
                    CultureInfo.InvariantCulture,
                    $"Anomaly detected in backward: the backward rule of '{node.Name}'{formula}, {Where(node, info)}, produced {Describe(value)} at element {bad} of the gradient for input {i} (shape {gi.Shape} {gi.DType.Name()}); {upstream}. Inputs: {FormatShapes(info.InputShapes)}.");
                throw new AnomalyException(message, AnomalyPhase.Backward, node, info.Position, info.InputShapes, i, bad, value, null);
            }
        }

        private string? RunningName => _running.Count > 0 ? _running[^1].Name : null;

        private void AppendRunning(StringBuilder text)
        {
            if (RunningName is { } running)
            {
                text.Append(CultureInfo.InvariantCulture, $" It was recorded while the backward rule of '{running}' ran (a create-graph walk).");
            }
        }

        private NodeInfo Info(Node node)
            => _nodes.TryGetValue(node, out var info) ? info : new NodeInfo(0, ShapesFromEdges(node));

        private static string Where(Node node, NodeInfo info) => info.Position > 0
            ? $"the {Ordinal(info.Position)} operation recorded in this scope (tape sequence #{node.Sequence})"
            : node.Sequence == long.MaxValue
                ? "the gradient accumulator of a leaf"
                : $"recorded before this scope (tape sequence #{node.Sequence})";

        private static Shape?[] ShapesFromEdges(Node node)
        {
            var shapes = new Shape?[node.InputCount];
            var next = node.NextNodes;
            for (var i = 0; i < shapes.Length; i++)
            {
                shapes[i] = next[i]?.OutputShape;
            }

            return shapes;
        }

        private static string FormatShapes(Shape?[] shapes)
            => shapes.Length == 0 ? "none" : string.Join(", ", shapes.Select(s => s?.ToString() ?? "(unknown: needs no gradient)"));

        private static string Describe(double value)
            => double.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "−Inf";
    }

    private sealed record NodeInfo(long Position, Shape?[] InputShapes);
}

/// <summary>
/// Thrown in an <see cref="Anomaly.Detect"/> scope when an operation or a backward rule produces NaN or ±Inf. The
/// message names the operation, its place in the tape and its inputs' shapes; the properties give the same facts.
/// </summary>
public sealed class AnomalyException : Exception
{
    /// <summary>Creates an exception with a generic message.</summary>
    public AnomalyException()
        : this("Anomaly detected: a NaN or Inf was produced.")
    {
    }

    /// <summary>Creates an exception with <paramref name="message"/>.</summary>
    public AnomalyException(string message)
        : base(message)
    {
        InputShapes = [];
        OperationName = string.Empty;
    }

    /// <summary>Creates an exception with <paramref name="message"/> and the exception that caused it.</summary>
    public AnomalyException(string message, Exception innerException)
        : base(message, innerException)
    {
        InputShapes = [];
        OperationName = string.Empty;
    }

    internal AnomalyException(string message, AnomalyPhase phase, Node node, long position, IReadOnlyList<Shape?> inputShapes, int inputIndex, int elementIndex, double value, string? duringBackwardOf)
        : base(message)
    {
        Phase = phase;
        Node = node;
        OperationName = node.Name;
        Sequence = node.Sequence;
        Position = position;
        InputShapes = inputShapes;
        InputIndex = inputIndex;
        ElementIndex = elementIndex;
        Value = value;
        DuringBackwardOf = duringBackwardOf;
    }

    /// <summary>Whether the value was produced by an operation (forward) or by a backward rule.</summary>
    public AnomalyPhase Phase { get; }

    /// <summary>The node of the operation (null only for the public constructors).</summary>
    public Node? Node { get; }

    /// <summary>The operation's name, e.g. <c>Log</c>.</summary>
    public string OperationName { get; }

    /// <summary>The node's <see cref="Autograd.Node.Sequence"/>: its recording order on its thread.</summary>
    public long Sequence { get; }

    /// <summary>The operation's position among those recorded in the detection scope (1 for the first), or 0 when it was recorded before the scope.</summary>
    public long Position { get; }

    /// <summary>The shapes of the operation's inputs (null where it is unknown: an input needing no gradient of a node recorded before the scope).</summary>
    public IReadOnlyList<Shape?> InputShapes { get; }

    /// <summary>In backward, the input whose gradient is not finite; −1 in forward, or when the gradient arriving at the node is not finite.</summary>
    public int InputIndex { get; }

    /// <summary>The flat index of the first non-finite element.</summary>
    public int ElementIndex { get; }

    /// <summary>The offending value: NaN, +Inf or −Inf.</summary>
    public double Value { get; }

    /// <summary>For an operation recorded by a backward rule (a create-graph walk), the name of that rule's node; otherwise null.</summary>
    public string? DuringBackwardOf { get; }
}
