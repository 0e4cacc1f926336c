using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Autograd.Nn.Optim;

/// <summary>Gradient clipping, applied between <c>Backward</c> and <see cref="Optimizer.Step"/>.</summary>
public static class GradClip
{
    /// <summary>
    /// Scales the gradients of <paramref name="parameters"/> in place so that their global norm (the norm of all
    /// gradients together, as one vector) is at most <paramref name="maxNorm"/>, as PyTorch 1.13's
    /// <c>torch.nn.utils.clip_grad_norm_</c>: with total the norm before clipping, every gradient is multiplied by
    /// maxNorm / (total + 1e-6) when that is below 1. Parameters whose gradient is null are ignored.
    /// </summary>
    /// <param name="parameters">The parameters whose gradients are clipped, e.g. <c>model.Parameters()</c>.</param>
    /// <param name="maxNorm">The largest allowed norm.</param>
    /// <param name="normType">The p of the p-norm (2 by default), or <see cref="double.PositiveInfinity"/> for the largest magnitude.</param>
    /// <param name="callerMember">Filled in by the compiler: the calling member, recorded as the site of the write in each clipped gradient's <see cref="Tensor.Version"/>.</param>
    /// <param name="callerFile">Filled in by the compiler: the calling source file.</param>
    /// <param name="callerLine">Filled in by the compiler: the calling line.</param>
    /// <returns>
    /// The total norm before clipping (0 when no parameter has a gradient). As in PyTorch, a non-finite total is
    /// returned as is and makes the clipped gradients non-finite.
    /// </returns>
    /// <exception cref="ArgumentOutOfRangeException">
    /// <paramref name="maxNorm"/> is negative or not finite, or <paramref name="normType"/> is not positive.
    /// </exception>
    public static double ClipGradNorm(
        IEnumerable<Tensor> parameters,
        double maxNorm,
        double normType = 2,
        [CallerMemberName] string callerMember = "",
        [CallerFilePath] string callerFile = "",
        [CallerLineNumber] int callerLine = 0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0 && double.IsFinite(maxNorm)))
        {
            throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, string.Create(CultureInfo.InvariantCulture, $"ClipGradNorm: maxNorm must be a finite number ≥ 0, got {maxNorm}."));
        }

        if (!(normType > 0))
        {
            throw new ArgumentOutOfRangeException(nameof(normType), normType, string.Create(CultureInfo.InvariantCulture, $"ClipGradNorm: normType must be > 0 (or +∞), got {normType}."));
        }

        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().ToList();
        if (grads.Count == 0)
        {
            return 0;
        }

        // As PyTorch: the norm of each gradient, then the norm of those norms.
        var infinity = double.IsPositiveInfinity(normType);
        var total = 0.0;
        foreach (var g in grads)
        {
            var n = g.DType == DType.Float32 ? Norm(g.AsSpan<float>(), normType) : Norm(g.AsSpan<double>(), normType);
            total = infinity ? Math.Max(total, n) : total + PowAbs(n, normType);
        }

        if (!infinity)
        {
            total = Root(total, normType);
        }

        var coef = maxNorm / (total + 1e-6);
        if (!(coef >= 1))
        {
            using var _ = GradMode.NoGrad();
            var site = new WriteSite("GradClip.ClipGradNorm", callerMember, callerFile, callerLine);
            foreach (var g in grads)
            {
                // As PyTorch's g.mul_(clip_coef): the factor converted to the gradient's dtype.
                InPlace.Scale(g, coef, site);
            }
        }

        return total;
    }

    private static double Norm<T>(ReadOnlySpan<T> g, double p)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var acc = 0.0;
        if (double.IsPositiveInfinity(p))
        {
            foreach (var x in g)
            {
                acc = Math.Max(acc, Math.Abs(double.CreateTruncating(x)));
            }

            return acc;
        }

        foreach (var x in g)
        {
            acc += PowAbs(double.CreateTruncating(x), p);
        }

        return Root(acc, p);
    }

    private static double PowAbs(double x, double p) => p switch
    {
        1 => Math.Abs(x),
        2 => x * x,
        _ => Math.Pow(Math.Abs(x), p),
    };

    private static double Root(double s, double p) => p switch
    {
        1 => s,
        2 => Math.Sqrt(s),
        _ => Math.Pow(s, 1 / p),
    };
}
