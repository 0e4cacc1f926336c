using System.Globalization;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Normalisation operators, as PyTorch's functional forms: <c>LayerNorm</c>, fused (one forward kernel saving the
/// row statistics, one backward kernel exposed as the differentiable operator <c>LayerNormBackward</c>), its composed
/// form <c>LayerNormComposed</c> differentiated by the tape, and <c>BatchNorm</c> (composed), which in training mode
/// also updates the running statistics in place.
/// </summary>
public static class Normalization
{
    extension(Tensor x)
    {
        /// <summary>
        /// Fused layer normalisation over the trailing dims <paramref name="normalizedShape"/>, as
        /// <c>torch.nn.functional.layer_norm</c>: for each row of those dims, y = (x − mean) / √(var + eps) ⊙ weight + bias,
        /// with the biased variance. One pass per row forward; the backward is the one-pass kernel
        /// <see cref="LayerNormBackward"/>, whose own rule gives second derivatives.
        /// </summary>
        /// <param name="normalizedShape">The sizes of the trailing dims to normalise over (at least one dim).</param>
        /// <param name="weight">The scale, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="bias">The shift, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <remarks>Saves x and the mean and 1/√(var + eps) of each row; the backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">x is not float32/float64; the normalized shape is empty, longer than x's rank or not x's trailing dims; weight or bias has another shape or dtype.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="eps"/> is negative or not finite.</exception>
        public Tensor LayerNorm(int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
        {
            const string op = "LayerNorm";
            var size = CheckLayerNorm(op, x, normalizedShape, weight, bias);
            CheckEps(op, x, eps);
            var k = normalizedShape.Length;
            var statsShape = StatsShape(x.Shape, k);
            var y = Tensor.Uninitialized(x.Shape, x.DType);
            var mean = Tensor.Uninitialized(statsShape, x.DType);
            var rstd = Tensor.Uninitialized(statsShape, x.DType);
            Dispatch.ByFloatType(x.DType, new ForwardWork(x, y, mean, rstd, size, weight, bias, eps));

            if (weight is null && bias is null ? Tensor.ShouldRecord(x) : Tensor.ShouldRecord([x, weight ?? x, bias ?? x]))
            {
                y.SetGradFn(new LayerNormNode(x, mean, rstd, weight, bias, normalizedShape, eps));
            }

            return y;
        }

        /// <summary>Fused layer normalisation; see <see cref="LayerNorm(Tensor, int[], Tensor?, Tensor?, double)"/>.</summary>
        /// <param name="normalizedShape">The sizes of the trailing dims to normalise over.</param>
        /// <param name="weight">The scale, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="bias">The shift, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <exception cref="ArgumentException">As for the array overload.</exception>
        public Tensor LayerNorm(ReadOnlySpan<int> normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
            => x.LayerNorm(normalizedShape.ToArray(), weight, bias, eps);

        /// <summary>
        /// Layer normalisation composed from primitives and differentiated by the tape: m = mean(x), c = x − m,
        /// v = mean(c ⊙ c), y = c / √(v + eps) ⊙ weight + bias, the means over the trailing dims <paramref name="normalizedShape"/>.
        /// </summary>
        /// <param name="normalizedShape">The sizes of the trailing dims to normalise over.</param>
        /// <param name="weight">The scale, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="bias">The shift, of shape <paramref name="normalizedShape"/>; none when null.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <exception cref="ArgumentException">As for <see cref="LayerNorm(Tensor, int[], Tensor?, Tensor?, double)"/>.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="eps"/> is negative or not finite.</exception>
        public Tensor LayerNormComposed(int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
        {
            CheckLayerNorm("LayerNormComposed", x, normalizedShape, weight, bias);
            CheckEps("LayerNormComposed", x, eps);
            var dims = TrailingDims(normalizedShape.Length);
            var c = x - x.Mean(dims, keepDim: true);
            var y = c / ((c * c).Mean(dims, keepDim: true) + eps).Sqrt();
            if (weight is not null)
            {
                y *= weight;
            }

            if (bias is not null)
            {
                y += bias;
            }

            return y;
        }

        /// <summary>
        /// Batch normalisation over dim 1 (the channels) of an [N, C], [N, C, L] or [N, C, H, W] input, as
        /// <c>torch.nn.functional.batch_norm</c>: y = (x − mean) / √(var + eps) ⊙ weight + bias per channel. In training
        /// the mean and the biased variance are those of the batch (over every dim but 1), and the running statistics, if
        /// given, are updated in place without recording: running = (1 − momentum)·running + momentum·batch statistic,
        /// with the unbiased variance for <paramref name="runningVar"/>. In evaluation the running statistics are used.
        /// </summary>
        /// <param name="runningMean">The running mean, shape [C], updated in place in training; required in evaluation.</param>
        /// <param name="runningVar">The running variance, shape [C], updated in place in training; required in evaluation.</param>
        /// <param name="weight">The scale, shape [C]; none when null.</param>
        /// <param name="bias">The shift, shape [C]; none when null.</param>
        /// <param name="training">Use the batch statistics and update the running ones (true), or use the running ones.</param>
        /// <param name="momentum">The weight of the batch statistic in the running update.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <remarks>Composed from primitives, so it is differentiable to any order. Nothing is updated when the call throws.</remarks>
        /// <exception cref="ArgumentException">
        /// x is not float32/float64 or has rank below 2; a statistic, weight or bias is not of shape [C] and x's dtype;
        /// only one running statistic is given; evaluation without running statistics; training with one value per channel.
        /// </exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="eps"/> is negative or not finite, or <paramref name="momentum"/> is outside [0, 1].</exception>
        public Tensor BatchNorm(Tensor? runningMean, Tensor? runningVar, Tensor? weight = null, Tensor? bias = null, bool training = false, double momentum = 0.1, double eps = 1e-5)
        {
            const string op = "BatchNorm";
            Dispatch.RequireFloat(x, op);
            if (x.Rank < 2)
            {
                throw new ArgumentException($"{op}: expected an input of shape [N, C], [N, C, L] or [N, C, H, W], got shape {x.Shape} (rank {x.Rank}).");
            }

            var channels = x.Shape[1];
            CheckChannelTensor(op, x, runningMean, "runningMean", channels);
            CheckChannelTensor(op, x, runningVar, "runningVar", channels);
            CheckChannelTensor(op, x, weight, "weight", channels);
            CheckChannelTensor(op, x, bias, "bias", channels);
            if ((runningMean is null) != (runningVar is null))
            {
                throw new ArgumentException($"{op}: runningMean and runningVar must be given together or both be null (input {x.Shape}).", runningMean is null ? nameof(runningMean) : nameof(runningVar));
            }

            var count = channels == 0 ? 0 : x.ElementCount / channels;
            if (!training && runningMean is null)
            {
                throw new ArgumentException($"{op}: evaluation (training: false) needs runningMean and runningVar (input {x.Shape}).", nameof(runningMean));
            }

            if (training && count <= 1)
            {
                throw new ArgumentException($"{op}: expected more than 1 value per channel when training, got input of shape {x.Shape}.");
            }

            CheckEps(op, x, eps);
            if (!(momentum >= 0 && momentum <= 1))
            {
                throw new ArgumentOutOfRangeException(
                    nameof(momentum), momentum, string.Create(CultureInfo.InvariantCulture, $"{op}: momentum must be in [0, 1], got {momentum} (input {x.Shape})."));
            }

            var bshape = new int[x.Rank];
            Array.Fill(bshape, 1);
            bshape[1] = channels;
            Tensor y;
            if (training)
            {
                var dims = Enumerable.Range(0, x.Rank).Where(d => d != 1).ToArray();
                var mean = x.Mean(dims, keepDim: true);
                var c = x - mean;
                var variance = (c * c).Mean(dims, keepDim: true);
                y = c / (variance + eps).Sqrt();
                if (runningMean is not null && runningVar is not null)
                {
                    using (GradMode.Override(false))
                    {
                        UpdateRunning(runningMean, mean, momentum, 1.0);
                        UpdateRunning(runningVar, variance, momentum, count / (count - 1.0));
                    }
                }
            }
            else
            {
                y = (x - runningMean!.Reshape(bshape)) / (runningVar!.Reshape(bshape) + eps).Sqrt();
            }

            if (weight is not null)
            {
                y *= weight.Reshape(bshape);
            }

            if (bias is not null)
            {
                y += bias.Reshape(bshape);
            }

            return y;
        }
    }

    extension(Tensor)
    {
        /// <summary>
        /// The fused layer-norm backward kernel as an operator: for the gradient <paramref name="g"/> of
        /// x̂ = (x − mean) / √(var + eps) (normalised over the trailing dims <paramref name="normalizedShape"/>, no affine),
        /// dx = rstd ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) with rstd = 1/√(var + eps). Differentiable in g and x, which
        /// gives layer norm its second derivatives.
        /// </summary>
        /// <param name="g">The gradient of x̂, shaped like x.</param>
        /// <param name="x">The input of the normalisation.</param>
        /// <param name="normalizedShape">The sizes of the trailing dims normalised over.</param>
        /// <param name="eps">Added to the variance.</param>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">Mixed or non-float dtypes, g and x of different shapes, or a normalized shape that is not x's trailing dims.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="eps"/> is negative or not finite.</exception>
        public static Tensor LayerNormBackward(Tensor g, Tensor x, int[] normalizedShape, double eps = 1e-5)
        {
            const string op = "LayerNormBackward";
            Dispatch.RequireSameDType(g, x, op);
            if (g.Shape != x.Shape)
            {
                throw new ArgumentException($"{op}: the gradient has shape {g.Shape} but the input has shape {x.Shape}; they must match.", nameof(g));
            }

            var size = CheckLayerNorm(op, x, normalizedShape, null, null);
            CheckEps(op, x, eps);
            var statsShape = StatsShape(x.Shape, normalizedShape.Length);
            var mean = Tensor.Uninitialized(statsShape, x.DType);
            var rstd = Tensor.Uninitialized(statsShape, x.DType);
            Dispatch.ByFloatType(x.DType, new StatsWork(x, mean, rstd, size, eps));
            return BackwardCore(g, x, mean, rstd, normalizedShape, eps);
        }
    }

    private static int Size(int[] normalizedShape)
    {
        var size = 1;
        foreach (var d in normalizedShape)
        {
            size *= d;
        }

        return size;
    }

    private static Tensor BackwardCore(Tensor g, Tensor x, Tensor mean, Tensor rstd, int[] normalizedShape, double eps)
    {
        var size = Size(normalizedShape);
        var dx = Tensor.Uninitialized(x.Shape, x.DType);
        Dispatch.ByFloatType(x.DType, new BackwardWork(g, x, mean, rstd, dx, size));

        if (Tensor.ShouldRecord(g, x))
        {
            dx.SetGradFn(new LayerNormBackwardNode(g, x, mean, rstd, normalizedShape, eps));
        }

        return dx;
    }

    private static void CheckEps(string op, Tensor x, double eps)
    {
        if (!(eps >= 0 && double.IsFinite(eps)))
        {
            throw new ArgumentOutOfRangeException(
                nameof(eps), eps, string.Create(CultureInfo.InvariantCulture, $"{op}: eps must be a finite number ≥ 0, got {eps} (input {x.Shape})."));
        }
    }

    private static int CheckLayerNorm(string op, Tensor x, int[] normalizedShape, Tensor? weight, Tensor? bias)
    {
        ArgumentNullException.ThrowIfNull(normalizedShape);
        Dispatch.RequireFloat(x, op);
        var k = normalizedShape.Length;
        var shape = new Shape(normalizedShape);
        if (k == 0)
        {
            throw new ArgumentException($"{op}: normalizedShape must name at least one dim (input {x.Shape}).", nameof(normalizedShape));
        }

        var matches = k <= x.Rank;
        for (var i = 0; matches && i < k; i++)
        {
            matches = x.Shape[x.Rank - k + i] == normalizedShape[i];
        }

        if (!matches)
        {
            throw new ArgumentException(
                $"{op}: normalizedShape {shape} does not match the trailing dims of the input {x.Shape}; expected an input of shape [*, {string.Join(", ", normalizedShape)}].",
                nameof(normalizedShape));
        }

        foreach (var (t, name) in new[] { (weight, "weight"), (bias, "bias") })
        {
            if (t is null)
            {
                continue;
            }

            if (t.DType != x.DType)
            {
                throw new ArgumentException($"{op}: {name} is {t.DType.Name()} (shape {t.Shape}) but the input is {x.DType.Name()} (shape {x.Shape}); they must have the same dtype.", name);
            }

            if (t.Shape != shape)
            {
                throw new ArgumentException($"{op}: {name} has shape {t.Shape} but normalizedShape is {shape} (input {x.Shape}); they must match.", name);
            }
        }

        return shape.ElementCount;
    }

    private static void CheckChannelTensor(string op, Tensor x, Tensor? t, string name, int channels)
    {
        if (t is null)
        {
            return;
        }

        if (t.DType != x.DType)
        {
            throw new ArgumentException($"{op}: {name} is {t.DType.Name()} (shape {t.Shape}) but the input is {x.DType.Name()} (shape {x.Shape}); they must have the same dtype.", name);
        }

        if (t.Rank != 1 || t.Shape[0] != channels)
        {
            throw new ArgumentException($"{op}: {name} has shape {t.Shape} but the input {x.Shape} has {channels} channels (dim 1); expected shape [{channels}].", name);
        }
    }

    /// <summary>running ← (1 − momentum)·running + momentum·factor·batch, in place, for a [C] running statistic.</summary>
    private static void UpdateRunning(Tensor running, Tensor batch, double momentum, double factor)
    {
        var b = batch.ToArray();
        running.MarkWritten("BatchNorm (running statistics)");
        if (running.DType == DType.Float64)
        {
            var r = running.Span<double>();
            for (var i = 0; i < r.Length; i++)
            {
                r[i] = (momentum * (b[i] * factor)) + ((1 - momentum) * r[i]);
            }
        }
        else
        {
            var r = running.Span<float>();
            for (var i = 0; i < r.Length; i++)
            {
                r[i] = (float)((momentum * (b[i] * factor)) + ((1 - momentum) * r[i]));
            }
        }
    }

    private static int[] TrailingDims(int k) => [.. Enumerable.Range(-k, k)];

    private static Shape StatsShape(Shape shape, int k)
    {
        var dims = shape.ToArray();
        for (var i = dims.Length - k; i < dims.Length; i++)
        {
            dims[i] = 1;
        }

        return new Shape(dims);
    }

    private static Memory<T> Mem<T>(Tensor t) => new((T[])t.Storage, t.Offset, t.ElementCount);

    private readonly struct ForwardWork(Tensor x, Tensor y, Tensor mean, Tensor rstd, int size, Tensor? weight, Tensor? bias, double eps) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => NormKernels.LayerNormForward(
                Mem<T>(x), Mem<T>(y), Mem<T>(mean), Mem<T>(rstd), size,
                weight is null ? default : Mem<T>(weight), bias is null ? default : Mem<T>(bias), eps);
    }

    private readonly struct StatsWork(Tensor x, Tensor mean, Tensor rstd, int size, double eps) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => NormKernels.RowStats(x.AsSpan<T>(), mean.Span<T>(), rstd.Span<T>(), size, eps);
    }

    private readonly struct BackwardWork(Tensor g, Tensor x, Tensor mean, Tensor rstd, Tensor dx, int size) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => NormKernels.LayerNormBackward(Mem<T>(g), Mem<T>(x), Mem<T>(mean), Mem<T>(rstd), default, Mem<T>(dx), default, default, size);
    }

    /// <summary>dx, dw and db of the affine layer norm in one kernel pass (the tensors not wanted are null).</summary>
    private readonly struct AffineBackwardWork(Tensor g, Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? dx, Tensor? dw, Tensor? db, int size) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
            => NormKernels.LayerNormBackward(
                Mem<T>(g), Mem<T>(x), Mem<T>(mean), Mem<T>(rstd), weight is null ? default : Mem<T>(weight),
                dx is null ? default : Mem<T>(dx), dw is null ? default : Mem<T>(dw), db is null ? default : Mem<T>(db), size);
    }

    [Rule("LayerNorm", Forward = "y = (x − mean) ⊙ rstd (+ b), rstd = 1/√(var + eps)", Backward = "dx = LayerNormBackward(g, x), db = Σ g", Saves = "x, mean, rstd", Tangent = "ẏ = LayerNormBackward(ẋ, x) + ḃ (the map is symmetric)")]
    [Rule("LayerNorm", Variant = "affine", Forward = "y = (x − mean) ⊙ rstd ⊙ w (+ b)", Backward = "dx = LayerNormBackward(g ⊙ w, x), dw = Σ g ⊙ x̂, db = Σ g", Saves = "x, mean, rstd, weight", Tangent = "ẏ = LayerNormBackward(ẋ, x) ⊙ w + x̂ ⊙ ẇ + ḃ")]
    private sealed class LayerNormNode : Node
    {
        private readonly int[] _normalizedShape;
        private readonly double _eps;
        private readonly bool _hasWeight;
        private readonly int _weightInput;
        private readonly int _biasInput;
        private readonly Shape? _biasShape;

        public LayerNormNode(Tensor x, Tensor mean, Tensor rstd, Tensor? weight, Tensor? bias, int[] normalizedShape, double eps)
            : base("LayerNorm", Inputs(x, weight, bias))
        {
            _normalizedShape = (int[])normalizedShape.Clone();
            _eps = eps;
            _hasWeight = weight is not null;
            _weightInput = weight is null ? -1 : 1;
            _biasInput = bias is null ? -1 : weight is null ? 1 : 2;
            _biasShape = bias?.Shape;
            Save(x);
            Save(mean, rstd);
            if (weight is not null)
            {
                Save(weight);
            }
        }

        protected override string? RuleVariant => _hasWeight ? "affine" : null;

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var x = Saved(0);
            var mean = Saved(1);
            var rstd = Saved(2);
            var w = _hasWeight ? Saved(3) : null;
            if (!GradMode.IsEnabled && ForwardMode.Level == 0)
            {
                // Nothing is recorded: one kernel pass gives every gradient wanted.
                var dx = NeedsInputGrad(0) ? Tensor.Uninitialized(x.Shape, x.DType) : null;
                var dw = w is not null && NeedsInputGrad(_weightInput) ? Tensor.Uninitialized(w.Shape, x.DType) : null;
                var db = _biasInput >= 0 && NeedsInputGrad(_biasInput) ? Tensor.Uninitialized(_biasShape!, x.DType) : null;
                Dispatch.ByFloatType(x.DType, new AffineBackwardWork(g, x, mean, rstd, w, dx, dw, db, Size(_normalizedShape)));
                grads[0] = dx;
                if (dw is not null)
                {
                    grads[_weightInput] = dw;
                }

                if (db is not null)
                {
                    grads[_biasInput] = db;
                }

                return;
            }

            if (NeedsInputGrad(0))
            {
                grads[0] = BackwardCore(w is null ? g : g * w, x, mean, rstd, _normalizedShape, _eps);
            }

            if (w is not null && NeedsInputGrad(_weightInput))
            {
                var xhat = GradMode.IsEnabled || ForwardMode.Level != 0 ? x.LayerNorm(_normalizedShape, eps: _eps) : (x - mean) * rstd;
                grads[_weightInput] = (g * xhat).SumTo(w.Shape);
            }

            if (_biasInput >= 0 && NeedsInputGrad(_biasInput))
            {
                grads[_biasInput] = g.SumTo(_biasShape!);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var x = Saved(0);
            var mean = Saved(1);
            var rstd = Saved(2);
            var w = _hasWeight ? Saved(3) : null;
            Tensor? result = null;
            if (t[0] is { } tx)
            {
                var dxhat = BackwardCore(tx, x, mean, rstd, _normalizedShape, _eps);
                result = w is null ? dxhat : dxhat * w;
            }

            if (w is not null && t[_weightInput] is { } tw)
            {
                var xhat = GradMode.IsEnabled ? x.LayerNorm(_normalizedShape, eps: _eps) : (x - mean) * rstd;
                result = Tangents.Sum(result, xhat * tw, y);
            }

            return _biasInput >= 0 && t[_biasInput] is { } tb ? Tangents.Sum(result, tb, y) : result;
        }

        private static Tensor[] Inputs(Tensor x, Tensor? weight, Tensor? bias)
            => (weight, bias) switch
            {
                (null, null) => [x],
                (not null, null) => [x, weight],
                (null, not null) => [x, bias],
                _ => [x, weight, bias],
            };
    }

    // With a = g, x̂ = (x − mean)·r, c = mean(a ⊙ x̂) and dx = r ⊙ (a − mean(a) − x̂ ⊙ c), the map a ↦ dx is symmetric, so
    // the gradient in g is the same kernel; the gradient in x is the derivative of ⟨gg, dx⟩ through r, x̂ and c.
    [Rule(
        "LayerNormBackward",
        Forward = "dx = r ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)), x̂ = (x − mean(x)) ⊙ r, r = 1/√(var(x) + eps)",
        Backward = "dg = LayerNormBackward(gg, x), dx = r² ⊙ (3·mean(g⊙x̂)·mean(gg⊙x̂)·x̂ − (mean(gg⊙g) − mean(gg)·mean(g))·x̂ − mean(gg⊙x̂)·(g − mean(g)) − mean(g⊙x̂)·(gg − mean(gg)))",
        Saves = "g, x, mean, rstd",
        Tangent = "ḋx = LayerNormBackward(ġ, x) + the x-part of the backward rule with gg = ẋ (a Hessian, so symmetric)")]
    private sealed class LayerNormBackwardNode : Node
    {
        private readonly int[] _normalizedShape;
        private readonly double _eps;

        public LayerNormBackwardNode(Tensor g, Tensor x, Tensor mean, Tensor rstd, int[] normalizedShape, double eps)
            : base("LayerNormBackward", g, x)
        {
            _normalizedShape = (int[])normalizedShape.Clone();
            _eps = eps;
            Save(g, x);
            Save(mean, rstd);
        }

        protected internal override void Backward(Tensor gg, Tensor?[] grads)
        {
            var g = Saved(0);
            var x = Saved(1);
            var mean = Saved(2);
            var rstd = Saved(3);
            if (NeedsInputGrad(0))
            {
                grads[0] = BackwardCore(gg, x, mean, rstd, _normalizedShape, _eps);
            }

            if (!NeedsInputGrad(1))
            {
                return;
            }

            grads[1] = SecondOrderInX(gg, g, x, mean, rstd);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var g = Saved(0);
            var x = Saved(1);
            var mean = Saved(2);
            var rstd = Saved(3);
            var fromG = t[0] is { } tg ? BackwardCore(tg, x, mean, rstd, _normalizedShape, _eps) : null;
            var fromX = t[1] is { } tx ? SecondOrderInX(tx, g, x, mean, rstd) : null;
            return Tangents.Sum(fromG, fromX, y);
        }

        // ∂/∂x ⟨v, dx(g, x)⟩: the Hessian of ⟨g, x̂(x)⟩ applied to v (symmetric, so it serves both rules).
        private Tensor SecondOrderInX(Tensor gg, Tensor g, Tensor x, Tensor mean, Tensor rstd)
        {
            var dims = TrailingDims(_normalizedShape.Length);
            Tensor xhat, r;
            if (GradMode.IsEnabled || ForwardMode.Level != 0)
            {
                // Recorded, so that x̂ and r stay functions of x for higher orders.
                xhat = x.LayerNorm(_normalizedShape, eps: _eps);
                var centred = x - x.Mean(dims, keepDim: true);
                r = ((centred * centred).Mean(dims, keepDim: true) + _eps).Pow(-0.5);
            }
            else
            {
                xhat = (x - mean) * rstd;
                r = rstd;
            }

            Tensor M(Tensor t) => t.Mean(dims, keepDim: true);
            var gMean = M(g);
            var ggMean = M(gg);
            var ad = M(gg * g) - (ggMean * gMean);
            var bd = M(gg * xhat);
            var c = M(g * xhat);
            return r * r * ((((3.0 * c * bd) - ad) * xhat) - (bd * (g - gMean)) - (c * (gg - ggMean)));
        }
    }
}
