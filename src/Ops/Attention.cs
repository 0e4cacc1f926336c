using System.Numerics;
using Autograd.Kernels;

namespace Autograd.Ops;

/// <summary>
/// Scaled dot-product attention, as <c>torch.nn.functional.scaled_dot_product_attention</c>, twice: a fused operator
/// with its own forward and backward kernels, and a composed form built from <c>MatMul</c>, a product by the scale,
/// <c>Where</c> and <c>Softmax</c>, differentiated by the tape.
/// </summary>
/// <remarks>
/// <para>
/// For q [..., Lq, d], k [..., Lk, d] and v [..., Lk, dv], the scores are S = q·kᵀ·scale [..., Lq, Lk], masked
/// positions get −∞, P = softmax(S) along the last dim, and the result is P·v [..., Lq, dv]. The batch dims of q, k
/// and v broadcast together.
/// </para>
/// <para>
/// A mask is read as a boolean: a nonzero element (NaN included) keeps the score, a zero masks it. It may be of any
/// dtype (a 0/1 float mask, a comparison result, an int64 tensor) and is never differentiated. It must broadcast to
/// the scores' shape [..., Lq, Lk] without enlarging it. <c>causal</c> masks key j for query i when j &gt; i (the
/// lower triangle aligned at the top left, as PyTorch's <c>is_causal</c>); both may be given.
/// </para>
/// <para>
/// A query whose keys are all masked has an all −∞ row of scores: its output row is NaN, as in PyTorch 1.13's
/// composed form (<c>masked_fill(−inf)</c> then <c>softmax</c>) and the fused softmax kernel. The gradients follow
/// that composition too: such a row gives q (and k) no gradient, and the NaN weights reach v's gradient in every
/// row of its batch. Keep at least one key per query (with <c>causal</c>, the diagonal always is) to avoid it.
/// </para>
/// <para>
/// When q, k and v have one batch shape (nothing broadcast), the fused operator works block by block of query rows of
/// each batch matrix (see <c>AttentionKernels</c>): the scores are formed in the weights' storage, scaled, masked and
/// normalised row by row, and multiplied by v, and every product takes only the keys up to the block's last kept one,
/// which skips about half of the work with <c>causal</c>. Its backward, without create-graph, is one kernel too
/// (dv = Pᵀ·g, dS = P ⊙ (dP − Σ dP⊙P)·scale with dP = g·vᵀ, dq = dS·k, dk = dSᵀ·q, over the same blocks), which
/// allocates nothing of the scores' size but the saved weights. With create-graph, and for broadcast batch dims, the
/// same formulas run as tensor operations.
/// </para>
/// </remarks>
public static class Attention
{
    extension(Tensor)
    {
        /// <summary>
        /// Fused scaled dot-product attention: softmax(mask(q·kᵀ·scale))·v along the last dim, the masked scores being
        /// −∞. The forward and the backward (dP = g·vᵀ, dS = P ⊙ (dP − Σ dP⊙P), dq = dS·k·scale, dk = dSᵀ·q·scale,
        /// dv = Pᵀ·g) are kernels working by blocks of query rows, which skip the keys after each block's last kept one
        /// (half of the products with <paramref name="causal"/>); with create-graph the backward is the same rule written
        /// with tensor operators, so second derivatives work.
        /// </summary>
        /// <param name="q">Queries [..., Lq, d].</param>
        /// <param name="k">Keys [..., Lk, d].</param>
        /// <param name="v">Values [..., Lk, dv].</param>
        /// <param name="mask">Optional mask broadcastable to [..., Lq, Lk]: nonzero keeps a score, zero masks it; any dtype, not differentiated.</param>
        /// <param name="causal">Masks key j for query i when j &gt; i.</param>
        /// <param name="scale">The factor of the scores; 1/√d when null.</param>
        /// <returns>The attention output [..., Lq, dv]. A query whose keys are all masked gives a NaN row (see <see cref="Attention"/>).</returns>
        /// <remarks>The backward rule is in docs/rules.md.</remarks>
        /// <exception cref="ArgumentException">
        /// q, k or v has rank &lt; 2, q and k differ in their last dim, k and v differ in their number of keys, the batch
        /// dims do not broadcast, the mask does not broadcast to the scores' shape, or q, k and v are not of one float dtype.
        /// </exception>
        public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false, double? scale = null)
        {
            var plan = Validate("ScaledDotProductAttention", q, k, v, mask, causal, scale);
            var layout = plan.Layout(q, k, v);
            Tensor p, y;
            bool fullyMasked;
            if (layout is not null)
            {
                p = Tensor.Uninitialized(plan.Scores, q.DType);
                y = Tensor.Uninitialized(new Shape([.. plan.Batch.Dims, plan.Lq, layout.Dv]), q.DType);
                var work = new FusedForwardWork(layout, plan.Scale, q, k, v, p, y);
                Dispatch.ByFloatType(q.DType, work);
                fullyMasked = work.FullyMasked[0];
            }
            else
            {
                using (GradMode.Override(false))
                {
                    (p, fullyMasked) = Weights(q, k, plan);
                    y = LinearAlgebra.MatMulT(p, v, false, false);
                }
            }

            if (Tensor.ShouldRecord([q, k, v]))
            {
                var keep = fullyMasked ? plan.KeepTensor(q.DType) : null;
                if (Tensor.ShouldRecord(q, k))
                {
                    p.SetGradFn(new WeightsNode(q, k, p, keep, plan.Scale));
                }

                y.SetGradFn(new AttentionNode(q, k, v, p, keep, plan.Scale, layout));
            }

            return y;
        }

        /// <summary>
        /// Scaled dot-product attention composed from primitives, differentiated by the tape:
        /// s = q.MatMul(kᵀ) · scale; s = Where(mask, s, −∞) (and the causal mask likewise); y = Softmax(s, −1).MatMul(v).
        /// Same arguments, results and exceptions as <see cref="ScaledDotProductAttention"/>.
        /// </summary>
        /// <param name="q">Queries [..., Lq, d].</param>
        /// <param name="k">Keys [..., Lk, d].</param>
        /// <param name="v">Values [..., Lk, dv].</param>
        /// <param name="mask">Optional mask broadcastable to [..., Lq, Lk]: nonzero keeps a score, zero masks it.</param>
        /// <param name="causal">Masks key j for query i when j &gt; i.</param>
        /// <param name="scale">The factor of the scores; 1/√d when null.</param>
        /// <exception cref="ArgumentException">As for <see cref="ScaledDotProductAttention"/>.</exception>
        public static Tensor ScaledDotProductAttentionComposed(Tensor q, Tensor k, Tensor v, Tensor? mask = null, bool causal = false, double? scale = null)
        {
            var plan = Validate("ScaledDotProductAttentionComposed", q, k, v, mask, causal, scale);
            var s = q.MatMul(k.Transpose(-1, -2)) * plan.Scale;
            if (mask is not null)
            {
                s = Tensor.Where(mask, s, double.NegativeInfinity);
            }

            if (causal)
            {
                s = Tensor.Where(CausalKeep(plan.Lq, plan.Lk), s, double.NegativeInfinity);
            }

            return s.Softmax(-1).MatMul(v);
        }
    }

    /// <summary>
    /// The attention weights P = softmax(mask(q·kᵀ·scale)) [..., Lq, Lk] as an operator, differentiable in q and k to
    /// any order; the fused attention's saved weights carry its node, which gives the fused operator its second derivatives.
    /// </summary>
    internal static Tensor AttentionWeights(Tensor q, Tensor k, Tensor? mask = null, bool causal = false, double? scale = null)
    {
        var plan = Validate("AttentionWeights", q, k, null, mask, causal, scale);
        Tensor p;
        bool fullyMasked;
        using (GradMode.Override(false))
        {
            (p, fullyMasked) = Weights(q, k, plan);
        }

        if (Tensor.ShouldRecord(q, k))
        {
            p.SetGradFn(new WeightsNode(q, k, p, fullyMasked ? plan.KeepTensor(q.DType) : null, plan.Scale));
        }

        return p;
    }

    // ---------------------------------------------------------------- checks and the mask

    /// <summary>What a validated call computes: the batch shape of the result, the sizes, the scale and the mask.</summary>
    private sealed class Plan(Shape batch, int lq, int lk, double scale, Tensor? mask, bool causal)
    {
        public Shape Batch { get; } = batch;

        public int Lq { get; } = lq;

        public int Lk { get; } = lk;

        public double Scale { get; } = scale;

        public Tensor? Mask { get; } = mask;

        public bool Causal { get; } = causal;

        /// <summary>The scores' shape [..batch, Lq, Lk].</summary>
        public Shape Scores => new([.. Batch.Dims, Lq, Lk]);

        /// <summary>The mask as booleans, with its strides broadcast to the scores' shape.</summary>
        public MaskReader Reader()
        {
            if (Mask is null)
            {
                return new MaskReader(null, [], 0, 0, Causal);
            }

            var keep = new bool[Mask.ElementCount];
            for (var i = 0; i < keep.Length; i++)
            {
                keep[i] = Mask.GetFlat(i) != 0;
            }

            var scores = Scores;
            var strides = Mask.Shape.BroadcastStrides(scores);
            var rank = scores.Rank;
            var batchCount = Batch.ElementCount;
            var offsets = new int[batchCount];
            var idx = new int[rank - 2];
            for (var b = 0; b < batchCount; b++)
            {
                var off = 0;
                for (var d = 0; d < idx.Length; d++)
                {
                    off += idx[d] * strides[d];
                }

                offsets[b] = off;
                for (var d = idx.Length - 1; d >= 0; d--)
                {
                    if (++idx[d] < scores[d])
                    {
                        break;
                    }

                    idx[d] = 0;
                }
            }

            return new MaskReader(keep, offsets, strides[rank - 2], strides[rank - 1], Causal);
        }

        /// <summary>
        /// The layout of the fused kernels when they apply: q, k and v of one batch shape (nothing broadcast) and no
        /// empty dim; null otherwise (the operator then uses tensor operations).
        /// </summary>
        public AttentionLayout? Layout(Tensor q, Tensor k, Tensor v)
        {
            var rank = q.Rank;
            if (k.Rank != rank || v.Rank != rank || Scores.ElementCount == 0 || q.Shape[-1] == 0 || v.Shape[-1] == 0)
            {
                return null;
            }

            for (var d = 0; d < rank - 2; d++)
            {
                if (k.Shape[d] != q.Shape[d] || v.Shape[d] != q.Shape[d])
                {
                    return null;
                }
            }

            var reader = Reader();
            return new AttentionLayout(
                Batch.ElementCount, Lq, Lk, q.Shape[-1], v.Shape[-1], Causal, reader.Keep, reader.BatchOffsets, reader.StrideI, reader.StrideJ);
        }

        /// <summary>1 where a score is kept and 0 where it is masked, of the scores' shape; a constant.</summary>
        public Tensor KeepTensor(DType dtype)
        {
            var reader = Reader();
            var values = new double[Scores.ElementCount];
            var batchCount = Batch.ElementCount;
            for (var b = 0; b < batchCount; b++)
            {
                for (var i = 0; i < Lq; i++)
                {
                    var row = ((b * Lq) + i) * Lk;
                    for (var j = 0; j < Lk; j++)
                    {
                        values[row + j] = reader.Keeps(b, i, j) ? 1 : 0;
                    }
                }
            }

            var t = Tensor.FromArray(values, Scores.ToArray());
            return dtype == DType.Float64 ? t : t.To(dtype);
        }
    }

    /// <summary>A boolean mask broadcast to the scores (score (b, i, j) at <c>BatchOffsets[b] + i·StrideI + j·StrideJ</c>) and the causal rule.</summary>
    private sealed class MaskReader(bool[]? keep, int[] batchOffsets, int strideI, int strideJ, bool causal)
    {
        public bool[]? Keep => keep;

        public int[] BatchOffsets => batchOffsets;

        public int StrideI => strideI;

        public int StrideJ => strideJ;

        public bool Keeps(int b, int i, int j)
            => (!causal || j <= i) && (keep is null || keep[batchOffsets[b] + (i * strideI) + (j * strideJ)]);
    }

    private static Plan Validate(string op, Tensor q, Tensor k, Tensor? v, Tensor? mask, bool causal, double? scale)
    {
        ArgumentNullException.ThrowIfNull(q);
        ArgumentNullException.ThrowIfNull(k);
        (Tensor T, string Name)[] operands = v is null ? [(q, "q"), (k, "k")] : [(q, "q"), (k, "k"), (v, "v")];
        foreach (var (t, name) in operands)
        {
            if (t.Rank < 2)
            {
                throw new ArgumentException($"{op}: {name} has shape {t.Shape} (rank {t.Rank}); q, k and v need at least two dims ([..., L, d]).", name);
            }

            if (!t.DType.IsFloatingPoint())
            {
                throw new ArgumentException($"{op}: {name} is {t.DType.Name()} (shape {t.Shape}); q, k and v must be float64 or float32.", name);
            }
        }

        if (k.DType != q.DType || (v is not null && v.DType != q.DType))
        {
            var vText = v is null ? string.Empty : $", v is {v.DType.Name()} (shape {v.Shape})";
            throw new ArgumentException(
                $"{op}: mixed dtypes: q is {q.DType.Name()} (shape {q.Shape}), k is {k.DType.Name()} (shape {k.Shape}){vText}; convert them to one dtype with To.");
        }

        if (q.Shape[-1] != k.Shape[-1])
        {
            throw new ArgumentException(
                $"{op}: q has shape {q.Shape} and k has shape {k.Shape}: their last dims (the feature size d) are {q.Shape[-1]} and {k.Shape[-1]}; they must match.", nameof(k));
        }

        if (v is not null && k.Shape[-2] != v.Shape[-2])
        {
            throw new ArgumentException(
                $"{op}: k has shape {k.Shape} with {k.Shape[-2]} keys but v has shape {v.Shape} with {v.Shape[-2]} values; the second-to-last dims of k and v must match.", nameof(v));
        }

        var qb = new Shape(q.Shape.Dims[..^2]);
        var kb = new Shape(k.Shape.Dims[..^2]);
        var vb = v is null ? Shape.Scalar : new Shape(v.Shape.Dims[..^2]);
        Shape batch;
        try
        {
            batch = Shape.Broadcast(Shape.Broadcast(qb, kb, op), vb, op);
        }
        catch (ArgumentException e)
        {
            var vText = v is null ? string.Empty : $" and v {v.Shape}";
            throw new ArgumentException(
                $"{op}: the batch dims of q {q.Shape}, k {k.Shape}{vText} cannot be broadcast together (all but the last two dims; sizes must match or one must be 1). {e.Message}", e);
        }

        var lq = q.Shape[-2];
        var lk = k.Shape[-2];
        var scores = new Shape([.. batch.Dims, lq, lk]);
        if (mask is not null && !mask.Shape.CanBroadcastTo(scores))
        {
            throw new ArgumentException(
                $"{op}: the mask has shape {mask.Shape}, which does not broadcast to the scores' shape {scores} ([..., Lq, Lk] for q {q.Shape} and k {k.Shape}).", nameof(mask));
        }

        var s = scale ?? (1.0 / Math.Sqrt(q.Shape[-1]));
        if (double.IsNaN(s) || double.IsInfinity(s))
        {
            throw new ArgumentException($"{op}: the scale must be finite, got {s} (q shape {q.Shape}).", nameof(scale));
        }

        return new Plan(batch, lq, lk, s, mask, causal);
    }

    /// <summary>The causal mask [Lq, Lk]: 1 where j ≤ i.</summary>
    private static Tensor CausalKeep(int lq, int lk)
    {
        var values = new double[lq * lk];
        for (var i = 0; i < lq; i++)
        {
            for (var j = 0; j <= Math.Min(i, lk - 1); j++)
            {
                values[(i * lk) + j] = 1;
            }
        }

        return Tensor.FromArray(values, lq, lk);
    }

    // ---------------------------------------------------------------- forward

    /// <summary>P = softmax(mask(q·kᵀ·scale)), not recorded, and whether a row had all its scores masked.</summary>
    private static (Tensor P, bool FullyMasked) Weights(Tensor q, Tensor k, Plan plan)
    {
        var scoresShape = plan.Scores;
        var qb = q.Shape.Dims[..^2];
        var kb = k.Shape.Dims[..^2];

        // One product per batch matrix of the result: an operand broadcast along the batch only in the other is
        // read in place by the batched product; one broadcast where q and k both are (v's batch is larger) is expanded.
        var full = new Shape(scoresShape.Dims[..^2]);
        var qe = Broadcasts(qb, kb, full) ? q.Expand([.. full.Dims, q.Shape[-2], q.Shape[-1]]) : q;
        var s = LinearAlgebra.MatMulT(qe, k, false, true);

        var fully = false;
        if (s.ElementCount > 0)
        {
            var work = new ScaleMaskWork(s, plan);
            Dispatch.ByFloatType(s.DType, work);
            fully = work.FullyMasked[0];
        }

        return (s.Softmax(-1), fully);
    }

    /// <summary>True when the batch of q and k together is smaller than the full batch (v's batch enlarges it).</summary>
    private static bool Broadcasts(ReadOnlySpan<int> qb, ReadOnlySpan<int> kb, Shape full)
    {
        var both = Shape.Broadcast(new Shape(qb), new Shape(kb), "ScaledDotProductAttention");
        return both != full;
    }

    private readonly struct ScaleMaskWork(Tensor s, Plan plan) : IFloatWork
    {
        private readonly MaskReader _reader = plan.Reader();

        public bool[] FullyMasked { get; } = new bool[1];

        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
            => FullyMasked[0] = AttentionKernels.ScaleAndMask(
                s.Span<T>(), T.CreateChecked(plan.Scale), plan.Batch.ElementCount, plan.Lq, plan.Lk, plan.Causal, _reader.Keep is not null,
                _reader.Keep, _reader.BatchOffsets, _reader.StrideI, _reader.StrideJ);
    }

    /// <summary>The fused forward kernel: P and y written whole, and whether a row had all its keys masked.</summary>
    private readonly struct FusedForwardWork(AttentionLayout layout, double scale, Tensor q, Tensor k, Tensor v, Tensor p, Tensor y) : IFloatWork
    {
        public bool[] FullyMasked { get; } = new bool[1];

        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
            => FullyMasked[0] = AttentionKernels.Forward(
                layout, T.CreateChecked(scale), (T[])q.Storage, q.Offset, (T[])k.Storage, k.Offset, (T[])v.Storage, v.Offset, (T[])p.Storage, (T[])y.Storage);
    }

    /// <summary>The fused backward kernel: each gradient that is not null written whole.</summary>
    private readonly struct FusedBackwardWork(AttentionLayout layout, double scale, Tensor q, Tensor k, Tensor v, Tensor p, Tensor g, Tensor? dq, Tensor? dk, Tensor? dv) : IFloatWork
    {
        public void Run<T>()
            where T : unmanaged, IFloatingPointIeee754<T>
            => AttentionKernels.Backward(
                layout, T.CreateChecked(scale), (T[])q.Storage, q.Offset, (T[])k.Storage, k.Offset, (T[])v.Storage, v.Offset, (T[])p.Storage, p.Offset,
                (T[])g.Storage, g.Offset, (T[]?)dq?.Storage, (T[]?)dk?.Storage, (T[]?)dv?.Storage);
    }

    // ---------------------------------------------------------------- backward rules

    /// <summary>dS = P ⊙ (dP − Σ dP⊙P), with the masked scores' gradient zeroed when a row was all masked, times the scale.</summary>
    private static Tensor ScoresGradient(Tensor dp, Tensor p, Tensor? keep, double scale)
    {
        var ds = Tensor.SoftmaxBackward(dp, p, -1);
        if (keep is not null)
        {
            ds = Tensor.Where(keep, ds, 0.0);
        }

        return ds * scale;
    }

    /// <summary>dq = dS · k and dk = dSᵀ · q (the scale is already in dS), each summed back to its input's shape, into slots 0 and 1.</summary>
    private static Tensor WeightsTangent(Tensor? tq, Tensor? tk, Tensor q, Tensor k, Tensor p, Tensor? keep, double scale)
    {
        var fromQ = tq is null ? null : LinearAlgebra.MatMulT(tq, k, false, true);
        var fromK = tk is null ? null : LinearAlgebra.MatMulT(q, tk, false, true);
        var ds = (fromQ is null ? fromK! : fromK is null ? fromQ : fromQ + fromK) * scale;
        if (keep is not null)
        {
            ds = Tensor.Where(keep, ds, 0.0);
        }

        return Tensor.SoftmaxBackward(Tangents.To(ds, p.Shape)!, p, -1);
    }

    private static void QueryKeyGradients(Tensor ds, Tensor q, Tensor k, bool needQ, bool needK, Tensor?[] grads)
    {
        if (needQ)
        {
            grads[0] = LinearAlgebra.MatMulT(ds, k, false, false).SumTo(q.Shape);
        }

        if (needK)
        {
            grads[1] = LinearAlgebra.MatMulT(ds, q, true, false).SumTo(k.Shape);
        }
    }

    // A row whose scores are all masked has NaN weights; its scores' gradient is zeroed at the masked positions (the
    // rule of the −∞ fill), so q and k get no gradient from it, as in the composed form.
    [Rule(
        "ScaledDotProductAttention",
        Forward = "S = mask(q · kᵀ · scale), P = softmax(S), y = P · v",
        Backward = "dP = g · vᵀ, dS = P ⊙ (dP − Σ dP⊙P) masked, dq = dS · k · scale, dk = dSᵀ · q · scale, dv = Pᵀ · g",
        Saves = "q, k, v, p",
        Tangent = "Ṡ = mask((q̇ · kᵀ + q · k̇ᵀ) · scale), Ṗ = P ⊙ (Ṡ − Σ Ṡ⊙P), ẏ = Ṗ · v + P · v̇")]
    private sealed class AttentionNode : Node
    {
        private readonly Tensor? _keep;
        private readonly double _scale;
        private readonly AttentionLayout? _layout;

        public AttentionNode(Tensor q, Tensor k, Tensor v, Tensor p, Tensor? keep, double scale, AttentionLayout? layout)
            : base("ScaledDotProductAttention", [q, k, v])
        {
            _keep = keep;
            _scale = scale;
            _layout = layout;
            Save(q, k);
            Save(v, p);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var q = Saved(0);
            var k = Saved(1);
            var v = Saved(2);
            var p = Saved(3);

            // Without create-graph nothing needs to be differentiable: one kernel per batch matrix, no temporary of
            // the scores' size. With it, the rule below is recorded, differentiable in q and k through P's node.
            if (_layout is not null && !GradMode.IsEnabled && ForwardMode.Level == 0 && g.DType == q.DType && g.ElementCount == _layout.Batch * _layout.Lq * _layout.Dv)
            {
                var dq = NeedsInputGrad(0) ? Tensor.Uninitialized(q.Shape, q.DType) : null;
                var dk = NeedsInputGrad(1) ? Tensor.Uninitialized(k.Shape, k.DType) : null;
                var dv = NeedsInputGrad(2) ? Tensor.Uninitialized(v.Shape, v.DType) : null;
                Dispatch.ByFloatType(q.DType, new FusedBackwardWork(_layout, _scale, q, k, v, p, g, dq, dk, dv));
                (grads[0], grads[1], grads[2]) = (dq, dk, dv);
                return;
            }

            if (NeedsInputGrad(2))
            {
                grads[2] = LinearAlgebra.MatMulT(p, g, true, false).SumTo(v.Shape);
            }

            if (NeedsInputGrad(0) || NeedsInputGrad(1))
            {
                var dp = LinearAlgebra.MatMulT(g, v, false, true);
                QueryKeyGradients(ScoresGradient(dp, p, _keep, _scale), q, k, NeedsInputGrad(0), NeedsInputGrad(1), grads);
            }
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
        {
            var p = Saved(3);
            var fromP = t[0] is null && t[1] is null
                ? null
                : LinearAlgebra.MatMulT(WeightsTangent(t[0], t[1], Saved(0), Saved(1), p, _keep, _scale), Saved(2), false, false);
            var fromV = t[2] is { } tv ? LinearAlgebra.MatMulT(p, tv, false, false) : null;
            return Tangents.Sum(fromP, fromV, y);
        }
    }

    // The weights saved by the fused attention carry this node, so that the rule above, run with create-graph,
    // is differentiable in q and k through P.
    [Rule(
        "AttentionWeights",
        Forward = "P = softmax(mask(q · kᵀ · scale))",
        Backward = "dS = P ⊙ (g − Σ g⊙P) masked, dq = dS · k · scale, dk = dSᵀ · q · scale",
        Saves = "q, k, p",
        Tangent = "Ṡ = mask((q̇ · kᵀ + q · k̇ᵀ) · scale), Ṗ = P ⊙ (Ṡ − Σ Ṡ⊙P)")]
    private sealed class WeightsNode : Node
    {
        private readonly Tensor? _keep;
        private readonly double _scale;

        public WeightsNode(Tensor q, Tensor k, Tensor p, Tensor? keep, double scale)
            : base("AttentionWeights", q, k)
        {
            _keep = keep;
            _scale = scale;
            Save(q, k);
            Save(p);
        }

        protected internal override void Backward(Tensor g, Tensor?[] grads)
        {
            var q = Saved(0);
            var k = Saved(1);
            QueryKeyGradients(ScoresGradient(g, Saved(2), _keep, _scale), q, k, NeedsInputGrad(0), NeedsInputGrad(1), grads);
        }

        protected internal override Tensor? Jvp(Tensor?[] t, Tensor y)
            => WeightsTangent(t[0], t[1], Saved(0), Saved(1), Saved(2), _keep, _scale);
    }
}
