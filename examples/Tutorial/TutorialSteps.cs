using System.Globalization;
using System.Text.RegularExpressions;
using Autograd.Ops;
using Autograd.Study;
using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tutorial;

/// <summary>
/// The sections of <c>docs/tutorial.md</c>, each a method that writes what the tutorial shows after it: from the article's
/// hand-written softmax (x = 1..9, upstream gradient dL = 11..19) to the tape, the fused operator, gradient checking and
/// a second derivative. Numbers are printed to at most 8 decimals, and differences as bounds, so that the output is the
/// same on every machine; <c>TutorialTests</c> checks that the document shows exactly this output.
/// </summary>
public static partial class TutorialSteps
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The section names, in the tutorial's order.</summary>
    public static IReadOnlyList<string> Sections { get; } = ["by-hand", "vjp", "tape", "backward", "fused", "gradcheck", "second-derivative", "forward-mode", "hooks", "checkpointing", "custom-operator", "in-place"];

    /// <summary>The heading of a section.</summary>
    /// <param name="section">One of <see cref="Sections"/>.</param>
    /// <returns>A short title.</returns>
    /// <exception cref="ArgumentException">The section does not exist.</exception>
    public static string Title(string section) => section switch
    {
        "by-hand" => "the article by hand: softmax and the explicit Jacobian",
        "vjp" => "the vector-Jacobian product, without J",
        "tape" => "the composed softmax on the tape",
        "backward" => "the backward walk, step by step",
        "fused" => "the fused operator",
        "gradcheck" => "gradient checking",
        "second-derivative" => "a second derivative",
        "forward-mode" => "forward mode: dual numbers, and when each mode wins",
        "hooks" => "hooks on gradients",
        "checkpointing" => "checkpointing: recompute instead of keeping",
        "custom-operator" => "writing your own operator",
        "in-place" => "in-place operations and the saved-tensor check",
        _ => throw new ArgumentException($"no section '{section}'; the sections are {string.Join(", ", Sections)}.", nameof(section)),
    };

    /// <summary>Runs one section.</summary>
    /// <param name="section">One of <see cref="Sections"/>.</param>
    /// <param name="w">Where the section writes.</param>
    /// <exception cref="ArgumentException">The section does not exist.</exception>
    public static void Run(string section, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = Inv;   // numbers in interpolated strings print the same everywhere
        try
        {
            Step(section)(w);
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    private static Action<TextWriter> Step(string section) => section switch
    {
        "by-hand" => Section1_ByHand,
        "vjp" => Section2_VectorJacobianProduct,
        "tape" => Section3_Tape,
        "backward" => Section4_Backward,
        "fused" => Section5_Fused,
        "gradcheck" => Section6_GradCheck,
        "second-derivative" => Section7_SecondDerivative,
        "forward-mode" => Section8_ForwardMode,
        "hooks" => Section9_Hooks,
        "checkpointing" => Section10_Checkpointing,
        "custom-operator" => Section11_CustomOperator,
        "in-place" => Section12_InPlace,
        _ => throw new ArgumentException($"no section '{section}'; the sections are {string.Join(", ", Sections)}.", nameof(section)),
    };

    /// <summary>Runs one section and returns what it wrote, with '\n' line endings.</summary>
    /// <param name="section">One of <see cref="Sections"/>.</param>
    /// <returns>The section's output.</returns>
    public static string Output(string section)
    {
        using var w = new StringWriter(Inv) { NewLine = "\n" };
        Run(section, w);
        return w.ToString();
    }

    /// <summary>
    /// 1. The article by hand, with MathNet.Numerics: s = softmax(x), the explicit Jacobian J = diag(s) − s sᵀ (n² entries)
    /// and dx = J·dL (n² multiply-adds).
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section1_ByHand(TextWriter w)
    {
        var x = Vector<double>.Build.Dense(9, i => i + 1.0);    // 1..9
        var dL = Vector<double>.Build.Dense(9, i => i + 11.0);  // 11..19

        var e = (x - x.Maximum()).PointwiseExp();                // subtract the maximum: exp cannot overflow
        var s = e / e.Sum();

        var jacobian = Matrix<double>.Build.DenseOfDiagonalVector(s) - s.OuterProduct(s);
        var dx = jacobian * dL;

        var n = x.Count;
        w.WriteLine($"x  = {Row(x, 0)}");
        w.WriteLine($"dL = {Row(dL, 0)}");
        w.WriteLine();
        w.WriteLine("s = softmax(x) = exp(x − max x) / Σ exp(x − max x)");
        w.WriteLine($"s  = {Row(s)}");
        w.WriteLine($"Σ s = {F(s.Sum())}");
        w.WriteLine();
        w.WriteLine($"J = diag(s) − s sᵀ: {n} × {n} = {n * n} entries");
        for (var i = 0; i < n; i++)
        {
            w.WriteLine("  " + string.Join(" ", jacobian.Row(i).Select(v => v.ToString("0.00e+00", Inv).PadLeft(9))));
        }

        w.WriteLine($"J[0,0] = s0 (1 − s0) = {F(jacobian[0, 0])}");
        w.WriteLine($"J[8,8] = s8 (1 − s8) = {F(jacobian[8, 8])}");
        w.WriteLine($"J[0,8] = −s0 s8      = {F(jacobian[0, 8])}");
        w.WriteLine($"J is symmetric: max |J − Jᵀ| {Bound((jacobian - jacobian.Transpose()).Enumerate().Max(Math.Abs), 1e-15)}");
        w.WriteLine($"every row of J sums to 0: max |Σⱼ J[i,j]| {Bound(jacobian.RowSums().AbsoluteMaximum(), 1e-15)}");
        w.WriteLine();
        w.WriteLine($"dx = J · dL ({n * n} multiply-adds)");
        w.WriteLine($"dx = {Row(dx)}");
    }

    /// <summary>
    /// 2. The vector-Jacobian product dx = s ⊙ (dL − ⟨dL, s⟩): the same numbers in O(n) time and memory, without J.
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section2_VectorJacobianProduct(TextWriter w)
    {
        double[] x = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        double[] dL = [11, 12, 13, 14, 15, 16, 17, 18, 19];
        var n = x.Length;

        // Forward: softmax, keeping only s for the backward pass.
        var max = x.Max();
        var s = x.Select(v => Math.Exp(v - max)).ToArray();
        var total = s.Sum();
        for (var i = 0; i < n; i++)
        {
            s[i] /= total;
        }

        // Backward: (J·dL)ᵢ = sᵢ dLᵢ − sᵢ Σⱼ sⱼ dLⱼ = sᵢ (dLᵢ − ⟨dL, s⟩).
        var dot = 0.0;
        for (var i = 0; i < n; i++)
        {
            dot += dL[i] * s[i];
        }

        var dx = new double[n];
        for (var i = 0; i < n; i++)
        {
            dx[i] = s[i] * (dL[i] - dot);
        }

        // The explicit Jacobian of section 1, to compare.
        var sv = Vector<double>.Build.DenseOfArray(s);
        var viaJ = (Matrix<double>.Build.DenseOfDiagonalVector(sv) - sv.OuterProduct(sv)) * Vector<double>.Build.DenseOfArray(dL);

        w.WriteLine($"s            = {Row(s)}");
        w.WriteLine($"⟨dL, s⟩      = {F(dot)}   (dL averaged with the weights s)");
        w.WriteLine($"dL − ⟨dL, s⟩ = {Row(dL.Select(v => v - dot))}");
        w.WriteLine($"dx = s ⊙ (dL − ⟨dL, s⟩)");
        w.WriteLine($"dx           = {Row(dx)}");
        w.WriteLine($"same as J · dL: max |difference| {Bound(dx.Zip(viaJ, (a, b) => Math.Abs(a - b)).Max(), 1e-15)}");
        w.WriteLine();
        w.WriteLine("what each way keeps and computes, float64:");
        w.WriteLine("          n          J: entries   J: bytes   VJP: keeps s   VJP: multiply-adds");
        foreach (var size in new long[] { 9, 1_000, 1_000_000 })
        {
            w.WriteLine($"{size,11:N0} {size * size,19:N0} {Bytes(size * size * 8),10} {Bytes(size * 8),14} {2 * size,20:N0}");
        }
    }

    /// <summary>3. Softmax composed from primitives, recorded on the tape: the Wengert list and what each node saves.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section3_Tape(TextWriter w)
    {
        using (var tape = new TapeListing())
        {
            var x = tape.Name(Tensor.Arange(1, 10).WithRequiresGrad(), "x");
            var s = x.SoftmaxComposed(0);   // m = max(x); e = exp(x − m); s = e / Σ e
            tape.WriteTo(w);
            w.WriteLine();
            w.WriteLine($"s = {Row(s.ToArray())}");
        }

        w.WriteLine();
        w.WriteLine("why the Max node: for x = 1001..1009, exp overflows without it");
        var big = Tensor.Arange(1001, 1010);
        var naive = big.Exp() / big.Exp().Sum(0, keepDim: true);
        w.WriteLine($"exp(x) / Σ exp(x)         = {Row(naive.ToArray())}");
        w.WriteLine($"x.SoftmaxComposed(0)      = {Row(big.SoftmaxComposed(0).ToArray())}");
    }

    /// <summary>4. The backward walk through the composed softmax, explained node by node, ending in the article's x.grad.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section4_Backward(TextWriter w)
    {
        var dL = Tensor.Arange(11, 20);
        using var tape = new TapeListing();
        var x = tape.Name(Tensor.Arange(1, 10).WithRequiresGrad(), "x");
        var s = x.SoftmaxComposed(0);
        using (new ExplainBackward(w, tape, precision: 8))
        {
            s.Backward(dL);
        }

        w.WriteLine($"x.grad = {Row(x.Grad!.ToArray())}");
        w.WriteLine();
        w.WriteLine("after the walk, the saved tensors are released:");
        tape.WriteTo(w);
    }

    /// <summary>5. The fused softmax: one node that saves only its output, one kernel each way, checked against the composed form.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section5_Fused(TextWriter w)
    {
        var dL = Tensor.Arange(11, 20);
        using (var tape = new TapeListing())
        {
            var x = tape.Name(Tensor.Arange(1, 10).WithRequiresGrad(), "x");
            var s = x.Softmax(0);
            tape.WriteTo(w);
            w.WriteLine();
            using (new ExplainBackward(w, tape, precision: 8))
            {
                s.Backward(dL);
            }

            w.WriteLine($"x.grad = {Row(x.Grad!.ToArray())}");
        }

        w.WriteLine();
        var v = Tensor.Arange(1, 10);
        var r = FusedCheck.Compare(x => x.Softmax(0), x => x.SoftmaxComposed(0), Tensor.Arange(1, 10), gradOutput: dL, v: v);
        w.WriteLine("FusedCheck.Compare(fused, composed, x = 1..9, g = dL, v = 1..9), largest |fused − composed|:");
        w.WriteLine($"  values s                        {Bound(r.ValueAbs, 1e-12)}");
        w.WriteLine($"  gradients x.grad                {Bound(r.GradAbs, 1e-12)}");
        w.WriteLine($"  gradients of ⟨x.grad, v⟩        {Bound(r.GradGradAbs, 1e-12)}");
    }

    /// <summary>6. Gradient checking: central differences by hand, <see cref="GradCheck.Check(Func{Tensor[], Tensor}, Tensor[], double, double, double, bool?, int)"/> on both softmaxes, and two broken functions.</summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section6_GradCheck(TextWriter w)
    {
        // One entry by hand: ∂s0/∂x0 ≈ (s0(x + h e0) − s0(x − h e0)) / 2h.
        const double h = 1e-6;
        var xp = Tensor.From(1 + h, 2, 3, 4, 5, 6, 7, 8, 9);
        var xm = Tensor.From(1 - h, 2, 3, 4, 5, 6, 7, 8, 9);
        var numeric = (xp.Softmax(0).ToArray()[0] - xm.Softmax(0).ToArray()[0]) / (2 * h);
        var s0 = Tensor.Arange(1, 10).Softmax(0).ToArray()[0];
        w.WriteLine("one entry by hand, h = 1e-6:");
        w.WriteLine($"  (s0(x + h e0) − s0(x − h e0)) / 2h = {F(numeric)}");
        w.WriteLine($"  J[0,0] = s0 (1 − s0)               = {F(s0 * (1 - s0))}");
        w.WriteLine();

        foreach (var (name, f) in new (string, Func<Tensor[], Tensor>)[]
        {
            ("x => x.SoftmaxComposed(0)", a => a[0].SoftmaxComposed(0)),
            ("x => x.Softmax(0)", a => a[0].Softmax(0)),
        })
        {
            var x = Tensor.Arange(1, 10).WithRequiresGrad();
            var r = GradCheck.Check(f, [x]);
            w.WriteLine($"GradCheck.Check({name}, [x]):");
            w.WriteLine($"  passed: {r.Passed}, full Jacobian 9×9, max |analytic − numeric| {Bound(r.MaxAbsError, 1e-8)}");
        }

        w.WriteLine();
        w.WriteLine("a broken function: x * x.Detach(), whose tape sees x ⊙ c with c constant");
        var xb = Tensor.Arange(1, 10).WithRequiresGrad();
        var broken = GradCheck.Check(a => a[0] * a[0].Detach(), [xb]);
        w.WriteLine($"  passed: {broken.Passed}");
        w.WriteLine($"  {broken.Message}");
        w.WriteLine();

        w.WriteLine("a broken softmax: e / e.Sum(0, keepDim: true).Detach(), which forgets that Σ e depends on x");
        var xs = Tensor.Arange(1, 10).WithRequiresGrad();
        var bad = GradCheck.Check(
            a =>
            {
                var e = (a[0] - a[0].Max(0, keepDim: true)).Exp();
                return e / e.Sum(0, keepDim: true).Detach();
            },
            [xs]);
        var row = int.Parse(OutputElement().Match(bad.Message).Groups[1].Value, Inv);
        var col = bad.ElementIndex;
        var s = Tensor.Arange(1, 10).Softmax(0).ToArray();
        w.WriteLine($"  passed: {bad.Passed}, first mismatch: output element {row}, input element {col} (J[{row},{col}])");
        w.WriteLine($"  analytic {F(bad.Analytic)}, numeric {F(bad.Numeric)}; the term the detached sum drops: −s{row} s{col} = {F(-s[row] * s[col])}");
    }

    /// <summary>
    /// 7. A second derivative: the gradient of f(x) = ⟨dL, softmax(x)⟩ computed with <c>createGraph</c> is itself on the
    /// tape, so it can be differentiated again: a Hessian-vector product, checked by hand, and the whole Jacobian and Hessian.
    /// </summary>
    /// <param name="w">Where the section writes.</param>
    public static void Section7_SecondDerivative(TextWriter w)
    {
        var dL = Tensor.Arange(11, 20);
        var v = Tensor.From(0.0, 0, 0, 0, 0, 0, 0, 0, 1);   // e8: H v is the last column of the Hessian

        Tensor x, g, hv;
        using (var tape = new TapeListing())
        {
            x = tape.Name(Tensor.Arange(1, 10).WithRequiresGrad(), "x");
            tape.Name(dL, "dL");
            var f = (x.Softmax(0) * dL).Sum();                   // f(x) = ⟨dL, s⟩, a scalar
            g = Autodiff.Grad(f, x, createGraph: true);          // ∇f = Jᵀ dL = J dL: the article's dx, recorded
            tape.Name(g, "g");
            w.WriteLine("f = (x.Softmax(0) * dL).Sum(); g = Autodiff.Grad(f, x, createGraph: true)");
            w.WriteLine($"g = {Row(g.ToArray())}");
            w.WriteLine($"g.RequiresGrad = {g.RequiresGrad}, produced by {g.OpName}");
            w.WriteLine();
            w.WriteLine("the tape, forward pass and backward walk:");
            tape.WriteTo(w);
            hv = Autodiff.Grad(g, x, v);                          // H v = ∇⟨g, v⟩
        }

        // By hand: with s = softmax(x), a = dL − ⟨dL, s⟩ and u = v − ⟨v, s⟩,
        // H v = (s ⊙ u) ⊙ a − s ⟨dL, s ⊙ u⟩.
        var s = Tensor.Arange(1, 10).Softmax(0).ToArray();
        var w8 = dL.ToArray();
        var vv = v.ToArray();
        var sw = s.Zip(w8, (p, q) => p * q).Sum();
        var sv = s.Zip(vv, (p, q) => p * q).Sum();
        var su = s.Zip(vv, (p, q) => p * (q - sv)).ToArray();
        var wsu = su.Zip(w8, (p, q) => p * q).Sum();
        var byHand = Enumerable.Range(0, 9).Select(i => (su[i] * (w8[i] - sw)) - (s[i] * wsu)).ToArray();

        w.WriteLine();
        w.WriteLine("Hessian-vector product, v = e8: Autodiff.Grad(g, x, v)");
        w.WriteLine($"H v (tape)    = {Row(hv.ToArray())}");
        w.WriteLine($"H v (by hand) = {Row(byHand)}");
        w.WriteLine($"max |difference| {Bound(hv.ToArray().Zip(byHand, (p, q) => Math.Abs(p - q)).Max(), 1e-12)}");
        w.WriteLine();

        var x0 = Tensor.Arange(1, 10);
        var hessian = Derivatives.Hessian(t => (t.Softmax(0) * dL).Sum(), x0).ToArray();
        var (_, hOnes) = Derivatives.Hvp(t => (t.Softmax(0) * dL).Sum(), x0, Tensor.Ones(9));
        double asym = 0, column = 0;
        for (var i = 0; i < 9; i++)
        {
            column = Math.Max(column, Math.Abs(hessian[(i * 9) + 8] - byHand[i]));
            for (var j = 0; j < 9; j++)
            {
                asym = Math.Max(asym, Math.Abs(hessian[(i * 9) + j] - hessian[(j * 9) + i]));
            }
        }

        w.WriteLine("Derivatives.Hessian(f, x): 9 × 9, a column per forward-over-reverse pass (section 8)");
        w.WriteLine($"  symmetric: max |H − Hᵀ| {Bound(asym, 1e-12)}");
        w.WriteLine($"  its last column is H e8 above: max |difference| {Bound(column, 1e-12)}");
        w.WriteLine($"  H 1 = 0 (a shift of x does not change softmax): max |H 1| {Bound(hOnes.ToArray().Max(Math.Abs), 1e-12)}");

        var jac = Derivatives.Jacobian(t => t.Softmax(0), x0).ToArray();
        double jdiff = 0;
        for (var i = 0; i < 9; i++)
        {
            for (var j = 0; j < 9; j++)
            {
                var expected = (i == j ? s[i] : 0) - (s[i] * s[j]);
                jdiff = Math.Max(jdiff, Math.Abs(jac[(i * 9) + j] - expected));
            }
        }

        w.WriteLine($"Derivatives.Jacobian(x => x.Softmax(0), x) = diag(s) − s sᵀ: max |difference| {Bound(jdiff, 1e-12)}");

        var xg = Tensor.Arange(1, 10).WithRequiresGrad();
        var gg = GradCheck.GradGradCheck(a => [a[0].Softmax(0)], [xg]);
        w.WriteLine($"GradCheck.GradGradCheck(x => x.Softmax(0)): passed: {gg.Passed}, max |analytic − numeric| {Bound(gg.MaxAbsError, 1e-8)}");
    }

    /// <summary>A number to 8 (or <paramref name="decimals"/>) decimals, invariant culture, with no negative zero.</summary>
    private static string F(double v, int decimals = 8)
    {
        var text = v.ToString("F" + decimals.ToString(Inv), Inv);
        return text.StartsWith('-') && text.Trim('-', '0', '.').Length == 0 ? text[1..] : text;
    }

    private static string Row(IEnumerable<double> values, int decimals = 8) => string.Join(" ", values.Select(v => F(v, decimals)));

    /// <summary>"&lt; bound" when <paramref name="value"/> is below it, else the value itself (so a change shows in the output).</summary>
    private static string Bound(double value, double bound)
        => value < bound ? "< " + bound.ToString("0e0", Inv) : "= " + value.ToString("0.00e+00", Inv);

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1_000_000_000_000 => (bytes / 1e12).ToString("0.0", Inv) + " TB",
        >= 1_000_000_000 => (bytes / 1e9).ToString("0.0", Inv) + " GB",
        >= 1_000_000 => (bytes / 1e6).ToString("0.0", Inv) + " MB",
        >= 1_000 => (bytes / 1e3).ToString("0.0", Inv) + " kB",
        _ => bytes.ToString(Inv) + " B",
    };

    [GeneratedRegex(@"d\(output element (\d+)\)")]
    private static partial Regex OutputElement();
}
