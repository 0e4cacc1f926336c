using System.Globalization;
using MathNet.Numerics.Distributions;
using MathNet.Numerics.Random;

namespace Autograd;

/// <summary>The outcome of a gradient check: whether it passed and, if not, where the first mismatch is.</summary>
/// <param name="Passed">True when every analytic derivative matched its numeric estimate within tolerance.</param>
/// <param name="Message">A description of the first mismatch (input, element, analytic and numeric values), or a summary when it passed.</param>
/// <param name="MaxAbsError">The largest |analytic − numeric| seen.</param>
/// <param name="InputIndex">The input of the first mismatch, or −1.</param>
/// <param name="ElementIndex">The flat element of that input, or −1.</param>
/// <param name="Analytic">The analytic value at the mismatch (NaN when it passed).</param>
/// <param name="Numeric">The numeric value at the mismatch (NaN when it passed).</param>
public sealed record GradCheckResult(bool Passed, string Message, double MaxAbsError, int InputIndex, int ElementIndex, double Analytic, double Numeric);

/// <summary>
/// Checks backward rules against central finite differences computed in float64: <see cref="Check(Func{Tensor[], Tensor[]}, Tensor[], double, double, double, bool?, int)"/>
/// for first derivatives and <see cref="GradGradCheck"/> for second derivatives.
/// </summary>
/// <remarks>
/// For small problems the full Jacobian is compared entry by entry (one backward per output element, two forwards
/// per input element). For large ones (more than <see cref="FullJacobianLimit"/> entries) a random projection is used:
/// the analytic uᵀJ from one backward with a seeded random u is compared, element by element, with the numeric
/// (u·f(x+h) − u·f(x−h)) / 2h, which still names the input element at fault.
/// </remarks>
public static class GradCheck
{
    /// <summary>Jacobians with more entries than this are checked by random projection.</summary>
    public const long FullJacobianLimit = 1 << 18;

    /// <summary>Checks the first derivatives of a single-output function. See the multi-output overload.</summary>
    public static GradCheckResult Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool? projection = null, int seed = 0)
        => Check(x => [f(x)], inputs, eps, atol, rtol, projection, seed);

    /// <summary>
    /// Compares the gradients computed by the tape for <paramref name="f"/> with central differences. Inputs that
    /// require grad are checked and must be float64; the others are held constant.
    /// </summary>
    /// <param name="f">The function; it must be deterministic.</param>
    /// <param name="inputs">The inputs, perturbed in place (and restored) for the numeric derivative.</param>
    /// <param name="eps">The finite-difference step.</param>
    /// <param name="atol">Absolute tolerance.</param>
    /// <param name="rtol">Tolerance relative to the numeric value.</param>
    /// <param name="projection">Force (true) or forbid (false) the random-projection mode; null chooses by size.</param>
    /// <param name="seed">The seed of the random projection.</param>
    /// <exception cref="ArgumentException">No input requires grad, or one that does is not float64.</exception>
    public static GradCheckResult Check(Func<Tensor[], Tensor[]> f, Tensor[] inputs, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool? projection = null, int seed = 0)
    {
        var diff = new List<int>();
        for (var i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].RequiresGrad)
            {
                if (inputs[i].DType != DType.Float64 || !inputs[i].IsLeaf)
                {
                    throw new ArgumentException(
                        $"GradCheck: input {i} must be a float64 leaf to be checked (it is {inputs[i].DType.Name()}{(inputs[i].IsLeaf ? string.Empty : $", produced by {inputs[i].OpName}")}); finite differences in float32 are too coarse.",
                        nameof(inputs));
                }

                diff.Add(i);
            }
        }

        if (diff.Count == 0)
        {
            throw new ArgumentException("GradCheck: no input requires grad; set RequiresGrad on the inputs to check.", nameof(inputs));
        }

        var outputs = f(inputs);
        var outSizes = outputs.Select(o => o.ElementCount).ToArray();
        var m = outSizes.Sum();
        long n = diff.Sum(i => (long)inputs[i].ElementCount);
        var useProjection = projection ?? (m * n > FullJacobianLimit);
        var diffInputs = diff.Select(i => inputs[i]).ToArray();
        var recorded = Enumerable.Range(0, outputs.Length).Where(k => outputs[k].RequiresGrad).ToArray();

        double[][] Vjp(Func<int, Tensor> gradFor)
        {
            if (recorded.Length == 0)
            {
                return diffInputs.Select(x => new double[x.ElementCount]).ToArray();
            }

            var grads = Autodiff.Grad(
                recorded.Select(k => outputs[k]).ToArray(),
                diffInputs,
                recorded.Select(k => (Tensor?)gradFor(k)).ToArray(),
                retainGraph: true,
                allowUnused: true);
            return grads.Select(g => g.ToArray()).ToArray();
        }

        double[] Evaluate()
        {
            using var _ = GradMode.NoGrad();
            var ys = f(inputs);
            return ys.SelectMany(y => y.ToArray()).ToArray();
        }

        double maxErr = 0;
        if (useProjection)
        {
            var rng = new Normal(0, 1, new MersenneTwister(seed));
            var u = new double[m];
            for (var j = 0; j < m; j++)
            {
                u[j] = rng.Sample();
            }

            var uT = SplitLike(u, outputs);
            var analytic = Vjp(k => uT[k]);
            for (var d = 0; d < diff.Count; d++)
            {
                var x = inputs[diff[d]];
                for (var e = 0; e < x.ElementCount; e++)
                {
                    var numeric = Numeric(x, e, eps, () => Dot(u, Evaluate()));
                    var a = analytic[d][e];
                    var err = Math.Abs(a - numeric);
                    maxErr = Math.Max(maxErr, double.IsNaN(err) ? double.PositiveInfinity : err);
                    if (!(err <= atol + (rtol * Math.Abs(numeric))) && !(double.IsNaN(a) && double.IsNaN(numeric)))
                    {
                        return Fail(diff[d], x, e, a, numeric, maxErr, "the projection uᵀJ (random u)");
                    }
                }
            }

            return new GradCheckResult(true, string.Create(CultureInfo.InvariantCulture, $"GradCheck passed (projection, {n} input elements, max |error| {maxErr:G3})."), maxErr, -1, -1, double.NaN, double.NaN);
        }

        // Full Jacobian: rows by backward with one-hot output gradients.
        var jac = new double[diff.Count][][];
        for (var d = 0; d < diff.Count; d++)
        {
            jac[d] = new double[m][];
        }

        for (var row = 0; row < m; row++)
        {
            var oneHot = new double[m];
            oneHot[row] = 1;
            var parts = SplitLike(oneHot, outputs);
            var grads = Vjp(k => parts[k]);
            for (var d = 0; d < diff.Count; d++)
            {
                jac[d][row] = grads[d];
            }
        }

        for (var d = 0; d < diff.Count; d++)
        {
            var x = inputs[diff[d]];
            for (var e = 0; e < x.ElementCount; e++)
            {
                var column = NumericColumn(x, e, eps, Evaluate);
                for (var row = 0; row < m; row++)
                {
                    var a = jac[d][row][e];
                    var numeric = column[row];
                    var err = Math.Abs(a - numeric);
                    maxErr = Math.Max(maxErr, double.IsNaN(err) ? double.PositiveInfinity : err);
                    if (!(err <= atol + (rtol * Math.Abs(numeric))) && !(double.IsNaN(a) && double.IsNaN(numeric)))
                    {
                        return Fail(diff[d], x, e, a, numeric, maxErr, $"d(output element {row})");
                    }
                }
            }
        }

        return new GradCheckResult(true, string.Create(CultureInfo.InvariantCulture, $"GradCheck passed (full Jacobian {m}×{n}, max |error| {maxErr:G3})."), maxErr, -1, -1, double.NaN, double.NaN);
    }

    /// <summary>
    /// Checks second derivatives: the gradients of <paramref name="f"/>, computed with <c>createGraph</c> for fixed
    /// output gradients v, are themselves checked by <see cref="Check(Func{Tensor[], Tensor[]}, Tensor[], double, double, double, bool?, int)"/>
    /// with respect to the inputs and to v.
    /// </summary>
    /// <param name="f">The function.</param>
    /// <param name="inputs">The inputs (float64 leaves for those that require grad).</param>
    /// <param name="gradOutputs">The output gradients v; null draws them from a normal distribution seeded by <paramref name="seed"/>.</param>
    /// <param name="eps">The finite-difference step.</param>
    /// <param name="atol">Absolute tolerance.</param>
    /// <param name="rtol">Relative tolerance.</param>
    /// <param name="projection">Force or forbid the random-projection mode; null chooses by size.</param>
    /// <param name="seed">Seed for v and for the projection.</param>
    public static GradCheckResult GradGradCheck(Func<Tensor[], Tensor[]> f, Tensor[] inputs, Tensor[]? gradOutputs = null, double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3, bool? projection = null, int seed = 0)
    {
        var diff = inputs.Where(x => x.RequiresGrad).ToArray();
        // The outputs' shapes and dtypes only: nothing is recorded until the arguments are known to fit.
        Tensor[] probe;
        using (GradMode.Override(false))
        {
            probe = f(inputs);
        }

        var vs = gradOutputs ?? probe.Select((y, k) => Tensor.RandN(y.Shape, seed + 1 + k, y.DType.IsFloatingPoint() ? y.DType : DType.Float64)).ToArray();
        if (vs.Length != probe.Length)
        {
            throw new ArgumentException($"GradGradCheck: {probe.Length} outputs but {vs.Length} output gradients.", nameof(gradOutputs));
        }

        // v is checked too where it is float64; an output gradient of another dtype is held constant.
        var vLeaves = vs.Select(v => v.Detach().Clone().WithRequiresGrad(v.DType == DType.Float64)).ToArray();
        var all = inputs.Concat(vLeaves).ToArray();
        var nIn = inputs.Length;

        Tensor[] FirstGrads(Tensor[] args)
        {
            using var _ = GradMode.EnableGrad();
            var xs = args[..nIn];
            var ys = f(xs);
            var keep = Enumerable.Range(0, ys.Length).Where(k => ys[k].RequiresGrad).ToArray();
            if (keep.Length == 0)
            {
                return diff.Select(x => Tensor.Zeros(x.Shape, x.DType)).ToArray();
            }

            return Autodiff.Grad(
                keep.Select(k => ys[k]).ToArray(),
                xs.Where(x => x.RequiresGrad).ToArray(),
                keep.Select(k => (Tensor?)args[nIn + k]).ToArray(),
                createGraph: true,
                allowUnused: true);
        }

        var result = Check(FirstGrads, all, eps, atol, rtol, projection, seed);
        if (result.Passed || result.InputIndex < 0)
        {
            return result;
        }

        var what = result.InputIndex < nIn ? $"input {result.InputIndex}" : $"output gradient v{result.InputIndex - nIn}";
        return result with { Message = "GradGradCheck (second derivatives), w.r.t. " + what + ": " + result.Message };
    }

    private static GradCheckResult Fail(int input, Tensor x, int element, double analytic, double numeric, double maxErr, string what)
    {
        var msg = string.Create(
            CultureInfo.InvariantCulture,
            $"GradCheck failed for input {input} (shape {x.Shape}) at element {element} (index {Shape.Format(Unravel(element, x.Shape))}), {what}: analytic {analytic:R}, numeric {numeric:R}, |difference| {Math.Abs(analytic - numeric):G4}.");
        return new GradCheckResult(false, msg, maxErr, input, element, analytic, numeric);
    }

    private static int[] Unravel(int flat, Shape shape)
    {
        var idx = new int[shape.Rank];
        for (var d = shape.Rank - 1; d >= 0; d--)
        {
            idx[d] = shape[d] == 0 ? 0 : flat % shape[d];
            flat = shape[d] == 0 ? 0 : flat / shape[d];
        }

        return idx;
    }

    private static double Numeric(Tensor x, int e, double eps, Func<double> eval)
    {
        var (plus, minus) = Perturb(x, e, eps, eval);
        return (plus - minus) / (2 * eps);
    }

    private static double[] NumericColumn(Tensor x, int e, double eps, Func<double[]> eval)
    {
        var (plus, minus) = Perturb(x, e, eps, eval);
        for (var j = 0; j < plus.Length; j++)
        {
            plus[j] = (plus[j] - minus[j]) / (2 * eps);
        }

        return plus;
    }

    /// <summary>
    /// Evaluates with element <paramref name="e"/> of x moved by +eps and by −eps, then restores it exactly. The version of
    /// x is not bumped: every graph recorded on the moved values is walked inside <paramref name="eval"/>, and afterwards
    /// the elements are bit for bit what they were.
    /// </summary>
    private static (T Plus, T Minus) Perturb<T>(Tensor x, int e, double eps, Func<T> eval)
    {
        var data = (double[])x.Storage;
        var k = x.Offset + e;
        var orig = data[k];
        try
        {
            data[k] = orig + eps;
            var plus = eval();
            data[k] = orig - eps;
            return (plus, eval());
        }
        finally
        {
            data[k] = orig;
        }
    }

    private static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (var i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }

    private static Tensor[] SplitLike(double[] flat, Tensor[] outputs)
    {
        var parts = new Tensor[outputs.Length];
        var pos = 0;
        for (var k = 0; k < outputs.Length; k++)
        {
            var t = Tensor.Zeros(outputs[k].Shape, outputs[k].DType);
            for (var i = 0; i < t.ElementCount; i++)
            {
                t.SetFlat(i, flat[pos++]);
            }

            parts[k] = t;
        }

        return parts;
    }
}
