using System.Globalization;

namespace Autograd.Ops;

/// <summary>The largest differences found by <see cref="FusedCheck.Compare"/> between a fused operator and its composed form.</summary>
/// <param name="ValueAbs">Largest |fused − composed| of the output values.</param>
/// <param name="ValueRel">Largest relative difference of the output values.</param>
/// <param name="GradAbs">Largest absolute difference of the input gradients.</param>
/// <param name="GradRel">Largest relative difference of the input gradients.</param>
/// <param name="GradGradAbs">Largest absolute difference of the gradients of ⟨gradient, v⟩.</param>
/// <param name="GradGradRel">Largest relative difference of the gradients of ⟨gradient, v⟩.</param>
public sealed record FusedCheckResult(double ValueAbs, double ValueRel, double GradAbs, double GradRel, double GradGradAbs, double GradGradRel)
{
    /// <summary>The largest of the relative differences.</summary>
    public double MaxRel => Math.Max(ValueRel, Math.Max(GradRel, GradGradRel));

    /// <summary>The largest of the absolute differences.</summary>
    public double MaxAbs => Math.Max(ValueAbs, Math.Max(GradAbs, GradGradAbs));

    /// <summary>A one-line report.</summary>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"value {ValueAbs:G3} (rel {ValueRel:G3}), gradient {GradAbs:G3} (rel {GradRel:G3}), gradient of gradient {GradGradAbs:G3} (rel {GradGradRel:G3})");
}

/// <summary>
/// Compares a fused operator with its composed form on the same input: the values, the gradients for a given output
/// gradient g, and the gradients of ⟨gradient, v⟩ for a given v (second order, through create-graph).
/// </summary>
public static class FusedCheck
{
    /// <summary>Runs both forms and reports the largest differences. NaN in the same place on both sides counts as equal.</summary>
    /// <param name="fused">The fused operator, e.g. <c>x =&gt; x.Softmax(1)</c>.</param>
    /// <param name="composed">The composed form, e.g. <c>x =&gt; x.SoftmaxComposed(1)</c>.</param>
    /// <param name="x">The input (its values are copied; it is not modified).</param>
    /// <param name="gradOutput">g, shaped like the output; a seeded normal sample when null.</param>
    /// <param name="v">v, shaped like x; a seeded normal sample when null.</param>
    /// <param name="seed">Seed for the samples.</param>
    /// <param name="relativeFloor">Denominator floor for relative differences.</param>
    public static FusedCheckResult Compare(Func<Tensor, Tensor> fused, Func<Tensor, Tensor> composed, Tensor x, Tensor? gradOutput = null, Tensor? v = null, int seed = 0, double relativeFloor = 1e-6)
    {
        var xf = x.Detach().Clone().WithRequiresGrad();
        var xc = x.Detach().Clone().WithRequiresGrad();
        var yf = fused(xf);
        var yc = composed(xc);
        if (yf.Shape != yc.Shape)
        {
            throw new ArgumentException($"FusedCheck: the fused output has shape {yf.Shape} but the composed one has {yc.Shape}.", nameof(composed));
        }

        var g = gradOutput ?? Tensor.RandN(yf.Shape, seed + 1, yf.DType);
        var vv = v ?? Tensor.RandN(x.Shape, seed + 2, x.DType);
        var (valueAbs, valueRel) = Diff(yf, yc, relativeFloor);
        var gf = Autodiff.Grad(yf, xf, g, createGraph: true);
        var gc = Autodiff.Grad(yc, xc, g, createGraph: true);
        var (gradAbs, gradRel) = Diff(gf, gc, relativeFloor);
        var hf = gf.RequiresGrad ? Autodiff.Grad(gf, xf, vv, allowUnused: true) : Tensor.ZerosLike(xf);
        var hc = gc.RequiresGrad ? Autodiff.Grad(gc, xc, vv, allowUnused: true) : Tensor.ZerosLike(xc);
        var (ggAbs, ggRel) = Diff(hf, hc, relativeFloor);
        return new FusedCheckResult(valueAbs, valueRel, gradAbs, gradRel, ggAbs, ggRel);
    }

    private static (double Abs, double Rel) Diff(Tensor a, Tensor b, double floor)
    {
        var x = a.ToArray();
        var y = b.ToArray();
        double maxAbs = 0, maxRel = 0;
        for (var i = 0; i < x.Length; i++)
        {
            if (double.IsNaN(x[i]) && double.IsNaN(y[i]))
            {
                continue;
            }

            if (x[i] == y[i])
            {
                continue;
            }

            var d = Math.Abs(x[i] - y[i]);
            if (double.IsNaN(d))
            {
                d = double.PositiveInfinity;
            }

            maxAbs = Math.Max(maxAbs, d);
            maxRel = Math.Max(maxRel, d / Math.Max(floor, Math.Max(Math.Abs(x[i]), Math.Abs(y[i]))));
        }

        return (maxAbs, maxRel);
    }
}
