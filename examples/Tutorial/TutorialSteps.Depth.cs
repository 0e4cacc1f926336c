using Autograd.Ops;
using Autograd.Study;
using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tutorial;

/// <summary>The sections past the basics: forward mode, hooks and checkpointing.</summary>
public static partial class TutorialSteps
{
    /// <summary>
    /// 8. Forward mode: dual numbers at the scale of tensors on the article's softmax (its JVP against J·v with the explicit
    /// Jacobian), and what a full Jacobian costs by each mode for ℝ¹⁰⁰⁰ → ℝ and ℝ → ℝ¹⁰⁰⁰.
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section8_ForwardMode(TextWriter w)
    {
        var x = Tensor.Arange(1, 10);
        var v = Tensor.Arange(11, 20);                           // the direction: the article's dL, now a tangent

        Tensor s, jv, jvComposed;
        using (var tape = new TapeListing())
        {
            using var level = Autodiff.DualLevel();
            var xd = tape.Name(x.Detach().WithTangent(v), "x");  // x carries ẋ = v
            var sc = xd.SoftmaxComposed(0);                       // every operation computes its result's tangent
            jvComposed = sc.Tangent!;
            s = xd.Softmax(0);                                    // the fused operator has its own forward rule
            jv = s.Tangent!;
            tape.ShowSaved = false;
            w.WriteLine("in a dual level, x carries the tangent ẋ = 11..19; the composed softmax, with each result's tangent:");
            tape.WriteTo(w);
        }

        var sv = Vector<double>.Build.DenseOfArray(s.ToArray());
        var jacobian = Matrix<double>.Build.DenseOfDiagonalVector(sv) - sv.OuterProduct(sv);
        var byJ = jacobian * Vector<double>.Build.DenseOfArray(v.ToArray());
        w.WriteLine();
        w.WriteLine($"ṡ (fused)    = {Row(jv.ToArray())}");
        w.WriteLine($"ṡ (composed) = {Row(jvComposed.ToArray())}");
        w.WriteLine($"J · v        = {Row(byJ)}");
        w.WriteLine($"max |ṡ − J·v| {Bound(jv.ToArray().Zip(byJ, (a, b) => Math.Abs(a - b)).Max(), 1e-14)} (fused), {Bound(jvComposed.ToArray().Zip(byJ, (a, b) => Math.Abs(a - b)).Max(), 1e-14)} (composed)");
        w.WriteLine("J is symmetric here, so J·v is also the article's dx = Jᵀ·dL:");
        w.WriteLine($"dx           = {Row(byJ)}");

        var fwd = Derivatives.Jacobian(t => t.Softmax(0), x, JacobianMode.Forward).ToArray();
        var rev = Derivatives.Jacobian(t => t.Softmax(0), x, JacobianMode.Reverse).ToArray();
        var explicitJ = jacobian.ToRowMajorArray();
        w.WriteLine();
        w.WriteLine("the whole Jacobian: 9 forward passes (a column each) or 9 backward walks (a row each)");
        w.WriteLine($"  forward mode vs diag(s) − s sᵀ: max |difference| {Bound(fwd.Zip(explicitJ, (a, b) => Math.Abs(a - b)).Max(), 1e-15)}");
        w.WriteLine($"  reverse mode vs diag(s) − s sᵀ: max |difference| {Bound(rev.Zip(explicitJ, (a, b) => Math.Abs(a - b)).Max(), 1e-15)}");

        // ℝ¹⁰⁰⁰ → ℝ: a loss. ℝ → ℝ¹⁰⁰⁰: a curve.
        const int n = 1000;
        var a = Tensor.Rand(new Shape(n), seed: 7, low: -1, high: 1);
        static Tensor Loss(Tensor t) => (t.Tanh() * t.Tanh()).Sum();
        Tensor Curve(Tensor t) => (t * a).Exp();
        w.WriteLine();
        w.WriteLine($"the cost of a full Jacobian, counted in operations run (forward ops, forward rules, backward rules):");
        w.WriteLine($"{"",-36}{"forward mode",-38}reverse mode");
        var (lossForward, lossReverse) = (Count(() => Derivatives.Jacobian(Loss, a, JacobianMode.Forward)), Count(() => Derivatives.Jacobian(Loss, a, JacobianMode.Reverse)));
        var t0 = Tensor.From(0.5);
        var (curveForward, curveReverse) = (Count(() => Derivatives.Jacobian(Curve, t0, JacobianMode.Forward)), Count(() => Derivatives.Jacobian(Curve, t0, JacobianMode.Reverse)));
        w.WriteLine($"{$"  loss  ℝ^{n} → ℝ  (J is 1 × {n})",-36}{lossForward,-38}{lossReverse}");
        w.WriteLine($"{$"  curve ℝ → ℝ^{n}  (J is {n} × 1)",-36}{curveForward,-38}{curveReverse}");
    }

    /// <summary>Runs <paramref name="action"/> and counts the operations it ran, the forward rules and the backward rules.</summary>
    private static string Count(Action action)
    {
        var counter = new OperationCounter();
        using (TapeObserver.Attach(counter))
        {
            action();
        }

        return $"{counter.Operations:N0} ops, {counter.ForwardRules:N0} fwd rules, {counter.BackwardRules:N0} bwd";
    }

    /// <summary>Counts what the tape sees: operations created, forward rules run, backward rules run (leaves' accumulators aside).</summary>
    private sealed class OperationCounter : TapeObserver
    {
        public int Operations { get; private set; }

        public int ForwardRules { get; private set; }

        public int BackwardRules { get; private set; }

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs) => Operations++;

        protected override void OnTangent(Node node, Tensor output, Tensor? tangent) => ForwardRules++;

        protected override void OnBackwardStart(Node node, Tensor grad)
        {
            if (node is not AccumulateGrad)
            {
                BackwardRules++;
            }
        }
    }

    /// <summary>
    /// 9. Hooks: see the gradient flowing into a tensor, replace it, keep an intermediate's gradient with RetainGrad.
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section9_Hooks(TextWriter w)
    {
        var dL = Tensor.Arange(11, 20);
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var m = x.Max(0, keepDim: true);
        var e = (x - m).Exp();
        var s = e / e.Sum(0, keepDim: true);

        Tensor? seen = null;
        using (s.RegisterHook(g =>
        {
            seen = g.Detach().Clone();
            return null;                                          // null: leave the gradient as it is
        }))
        {
            e.RetainGrad();                                       // keep de, as a leaf keeps its Grad
            s.Backward(dL, retainGraph: true);
        }

        w.WriteLine("a hook on s sees the gradient flowing into s: the article's dL");
        w.WriteLine($"ds (hook)       = {Row(seen!.ToArray(), 0)}");
        w.WriteLine($"de (RetainGrad) = {Row(e.Grad!.ToArray())}");
        w.WriteLine($"dx              = {Row(x.Grad!.ToArray())}");

        x.ZeroGrad();
        using (x.RegisterHook(g => g.Clamp(-0.05, 0.05)))         // replace: clip the gradient reaching the leaf
        {
            s.Backward(dL);
        }

        w.WriteLine();
        w.WriteLine("a hook on the leaf x that returns a tensor replaces the gradient before it is accumulated (here clipped to ±0.05):");
        w.WriteLine($"dx              = {Row(x.Grad!.ToArray())}");
    }

    /// <summary>
    /// 10. Checkpointing: a deep chain keeps fewer saved tensors between forward and backward, and its gradients are
    /// bitwise those of the plain run.
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section10_Checkpointing(TextWriter w)
    {
        const int layers = 16, width = 64;
        var weights = Enumerable.Range(0, layers).Select(i => (Tensor.Rand(new Shape(width, width), seed: 100 + i, low: -0.2, high: 0.2)).WithRequiresGrad()).ToArray();
        var input = Tensor.Rand(new Shape(8, width), seed: 1);

        Tensor Block(Tensor h, int from) => Enumerable.Range(from, 4).Aggregate(h, (acc, i) => acc.MatMul(weights[i]).Tanh());

        (long Bytes, int Tensors, double[] Grad) Run(bool checkpoint)
        {
            foreach (var p in weights)
            {
                p.ZeroGrad();
            }

            var h = input;
            for (var b = 0; b < layers; b += 4)
            {
                var from = b;
                h = checkpoint ? Autodiff.Checkpoint(t => Block(t, from), h) : Block(h, from);
            }

            var loss = h.Sum();
            var (bytes, count) = SavedBy(loss);
            loss.Backward();
            return (bytes, count, weights[0].Grad!.ToArray());
        }

        var plain = Run(checkpoint: false);
        var kept = Run(checkpoint: true);
        w.WriteLine($"{layers} layers h = tanh(h · Wᵢ), [8, {width}] float64; what the tape keeps between forward and backward:");
        w.WriteLine($"  plain:                        {plain.Tensors,3} saved tensors, {Bytes(plain.Bytes)} (besides the weights and the input)");
        w.WriteLine($"  Checkpoint every 4 layers:    {kept.Tensors,3} saved tensors, {Bytes(kept.Bytes)}");
        w.WriteLine($"gradient of W0 bitwise equal: {plain.Grad.SequenceEqual(kept.Grad)}");
    }

    /// <summary>The distinct tensors the nodes behind <paramref name="root"/> still hold for backward, besides leaves (weights, input).</summary>
    private static (long Bytes, int Count) SavedBy(Tensor root)
    {
        var seen = new HashSet<Node>();
        var tensors = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Node>();
        if (root.GradFn is { } fn)
        {
            stack.Push(fn);
        }

        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (!seen.Add(node))
            {
                continue;
            }

            for (var i = 0; i < node.SavedTensorCount; i++)
            {
                if (node.SavedTensor(i) is { IsLeaf: false } t)
                {
                    tensors.Add(t);
                }
            }

            foreach (var next in node.NextNodes)
            {
                if (next is not null)
                {
                    stack.Push(next);
                }
            }
        }

        return (tensors.Sum(t => (long)t.ElementCount * 8), tensors.Count);
    }

    /// <summary>11. A custom operator written from scratch (a stable softplus) and checked three ways.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section11_CustomOperator(TextWriter w)
    {
        var x = Tensor.FromArray([-30.0, -2, -0.5, 0, 0.5, 2, 30], 7).WithRequiresGrad();
        var softplus = new Softplus();
        using (var tape = new TapeListing())
        {
            var y = softplus.Apply(x);
            tape.Name(x, "x");
            tape.WriteTo(w);
            w.WriteLine($"y = {Row(y.ToArray(), 6)}");
            w.WriteLine($"rule: {y.GradFn!.Rule}");
        }

        var composed = (1.0 + x.Detach().Exp()).Log();
        w.WriteLine($"composed log(1 + eˣ) = {Row(composed.ToArray(), 6)}");
        var big = softplus.Apply(Tensor.From(800.0));
        w.WriteLine($"at x = 800: softplus {F(big.Item(), 1)}, composed {(1.0 + Tensor.From(800.0).Exp()).Log().Item()} (exp overflows)");

        var check = GradCheck.Check(a => softplus.Apply(a[0]), [x]);
        var checkTwo = GradCheck.GradGradCheck(a => [softplus.Apply(a[0])], [x]);
        var fused = FusedCheck.Compare(t => softplus.Apply(t), t => (1.0 + t.Exp()).Log(), x.Detach());
        var (_, jv) = Autodiff.Jvp(t => softplus.Apply(t), x.Detach(), Tensor.Ones(7));
        var (_, jvComposed) = Autodiff.Jvp(t => (1.0 + t.Exp()).Log(), x.Detach(), Tensor.Ones(7));
        w.WriteLine();
        w.WriteLine($"GradCheck: passed {check.Passed}; GradGradCheck: passed {checkTwo.Passed}");
        w.WriteLine($"against the composed form: values, gradients, gradients of gradients within {Bound(fused.MaxAbs, 1e-12)}");
        w.WriteLine($"forward rule vs forward mode through the composed form: max |difference| {Bound(jv.ToArray().Zip(jvComposed.ToArray(), (a, b) => Math.Abs(a - b)).Max(), 1e-15)}");
    }

    /// <summary>
    /// The stable softplus y = log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|)), defined outside the library: the forward with
    /// any code, the backward and forward rules with tensor operations.
    /// </summary>
    [Rule("Softplus", Forward = "y = log(1 + eˣ) = max(x, 0) + log(1 + e^(−|x|))", Backward = "dx = g ⊙ σ(x)", Tangent = "ẏ = ẋ ⊙ σ(x)", Saves = "x")]
    private sealed class Softplus : CustomOperator
    {
        protected override Tensor Forward(CustomContext context, Tensor[] inputs)
        {
            var x = inputs[0];
            context.SaveForBackward(x);
            return x.Relu() + (1.0 + (-x.Abs()).Exp()).Log();
        }

        protected override Tensor?[] Backward(CustomContext context, Tensor grad) => [grad * context.Saved(0).Sigmoid()];

        protected override Tensor? Jvp(CustomContext context, Tensor?[] tangents, Tensor output)
            => tangents[0] is { } dx ? dx * context.Saved(0).Sigmoid() : null;
    }

    /// <summary>12. In-place operations on the tape, and the error when a tensor a rule saved was changed in place.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section12_InPlace(TextWriter w)
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var h = x * 2.0;
        h.AddInPlace(1.0);                                        // recorded: h's history is now Add(Mul(x, 2), 1)
        h.MulInPlace(x);                                          // h = (2x + 1) ⊙ x, in h's own storage
        h.Sum().Backward();
        w.WriteLine($"h = (2x + 1) ⊙ x computed in place: {Row(h.ToArray(), 1)}, version {h.Version}, produced by {h.OpName}");
        w.WriteLine($"dh/dx = 4x + 1 = {Row(x.Grad!.ToArray(), 1)}");

        var y = x * 3.0;
        var z = y * y;                                            // Mul saves y for its backward rule
        y.AddInPlace(1.0);                                        // ... which is changed here
        try
        {
            z.Sum().Backward();
        }
        catch (InvalidOperationException e)
        {
            w.WriteLine();
            w.WriteLine("changing a tensor that a rule saved, then calling Backward:");
            w.WriteLine(e.Message);
        }

        try
        {
            x.AddInPlace(1.0);
        }
        catch (InvalidOperationException e)
        {
            w.WriteLine();
            w.WriteLine("changing a leaf that requires grad while recording:");
            w.WriteLine(e.Message);
        }

        using (Tensor.NoGrad())
        {
            x.AddInPlace(x.Grad!, alpha: -0.1);                   // an optimiser's step: under NoGrad
        }

        w.WriteLine();
        w.WriteLine($"under Tensor.NoGrad(), x − 0.1 · grad = {Row(x.ToArray(), 1)}, version {x.Version}");
    }
}
