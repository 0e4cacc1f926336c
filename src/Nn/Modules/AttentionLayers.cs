using System.Globalization;

namespace Autograd.Nn;

/// <summary>
/// A lookup table of <see cref="NumEmbeddings"/> vectors of size <see cref="EmbeddingDim"/>, as PyTorch's
/// <c>nn.Embedding</c>: int64 indices of any shape give [..., EmbeddingDim]. The weight is initialised from N(0, 1), the
/// padding row (if any) to zeros; that row gets no gradient.
/// </summary>
public sealed class Embedding : Module
{
    /// <summary>Creates the table with weights drawn from a generator seeded by <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, or the padding index is outside [−num, num).</exception>
    public Embedding(int numEmbeddings, int embeddingDim, int seed, int? paddingIndex = null, DType dtype = DType.Float64)
    {
        RequireAtLeast(numEmbeddings, 1);
        RequireAtLeast(embeddingDim, 1);
        if (paddingIndex is { } p && (p < -numEmbeddings || p >= numEmbeddings))
        {
            throw new ArgumentOutOfRangeException(nameof(paddingIndex), p, $"Embedding: the padding index must be in [{-numEmbeddings}, {numEmbeddings}), got {p}.");
        }

        NumEmbeddings = numEmbeddings;
        EmbeddingDim = embeddingDim;
        PaddingIndex = paddingIndex is { } q && q < 0 ? q + numEmbeddings : paddingIndex;
        var w = Tensor.RandN(new Shape(numEmbeddings, embeddingDim), seed, dtype);
        if (PaddingIndex is { } row)
        {
            using (GradMode.Override(false))
            {
                for (var j = 0; j < embeddingDim; j++)
                {
                    w.SetFlat((row * embeddingDim) + j, 0);
                }
            }
        }

        Weight = RegisterParameter("weight", w);
    }

    /// <summary>The number of rows (the vocabulary size).</summary>
    public int NumEmbeddings { get; }

    /// <summary>The size of each vector.</summary>
    public int EmbeddingDim { get; }

    /// <summary>The row that stays zero and gets no gradient, or null.</summary>
    public int? PaddingIndex { get; }

    /// <summary>The table, [NumEmbeddings, EmbeddingDim].</summary>
    public Tensor Weight { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"{NumEmbeddings}, {EmbeddingDim}{(PaddingIndex is { } p ? $", padding_idx={p}" : string.Empty)}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The indices are not int64.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, NumEmbeddings); the message names it and its position.</exception>
    public override Tensor Forward(Tensor input) => Tensor.Embedding(input, Weight, PaddingIndex);
}

/// <summary>
/// Multi-head self-attention over [B, T, d] (or [T, d]) input: one Linear d → 3d gives queries, keys and values,
/// split into <see cref="Heads"/> heads of d/heads; each head runs the fused scaled dot-product attention (causal
/// when <see cref="Causal"/>); the heads are joined and projected by a Linear d → d. Children: <c>qkv</c>, <c>proj</c>.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    /// <summary>Creates the layer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="heads"/> does not divide <paramref name="dModel"/>.</exception>
    public MultiHeadAttention(int dModel, int heads, int seed, bool causal = false, DType dtype = DType.Float64)
    {
        RequireAtLeast(dModel, 1);
        RequireAtLeast(heads, 1);
        RequireHeadsDivide(dModel, heads);

        (DModel, Heads, Causal) = (dModel, heads, causal);
        Qkv = RegisterModule("qkv", new Linear(dModel, 3 * dModel, seed, dtype: dtype));
        Proj = RegisterModule("proj", new Linear(dModel, dModel, unchecked(seed + 1), dtype: dtype));
    }

    /// <summary>The model size d.</summary>
    public int DModel { get; }

    /// <summary>The number of heads.</summary>
    public int Heads { get; }

    /// <summary>Whether position i attends only to positions j ≤ i.</summary>
    public bool Causal { get; }

    /// <summary>The query-key-value projection, d → 3d.</summary>
    public Linear Qkv { get; }

    /// <summary>The output projection, d → d.</summary>
    public Linear Proj { get; }

    /// <inheritdoc />
    protected override string ExtraDescription => string.Create(CultureInfo.InvariantCulture, $"d_model={DModel}, heads={Heads}, causal={Causal}");

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not [B, T, d] or [T, d] with d = <see cref="DModel"/>.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Rank is not (2 or 3) || input.Shape[-1] != DModel)
        {
            throw new ArgumentException($"MultiHeadAttention: expected input [B, T, {DModel}] or [T, {DModel}], got shape {input.Shape}.", nameof(input));
        }

        if (input.DType != Qkv.Weight.DType)
        {
            throw new ArgumentException(
                $"MultiHeadAttention: the input is {input.DType.Name()} (shape {input.Shape}) but the layer's weights are {Qkv.Weight.DType.Name()}; convert the input with To({Qkv.Weight.DType}).",
                nameof(input));
        }

        var x = input.Rank == 2 ? input.Unsqueeze(0) : input;
        int b = x.Shape[0], t = x.Shape[1], d = DModel, dh = d / Heads;
        var qkv = Qkv.Call(x);
        Tensor Head(int part) => qkv.Narrow(2, part * d, d).Reshape(b, t, Heads, dh).Transpose(1, 2);
        var y = Tensor.ScaledDotProductAttention(Head(0), Head(1), Head(2), causal: Causal);
        var joined = Proj.Call(y.Transpose(1, 2).Reshape(b, t, d));
        return input.Rank == 2 ? joined.Squeeze(0) : joined;
    }
}

/// <summary>
/// A pre-LayerNorm transformer block: x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x)) with the MLP
/// Linear d → 4d, GELU, Linear 4d → d. Children: <c>ln1</c>, <c>attn</c>, <c>ln2</c>, <c>mlp</c>.
/// </summary>
public sealed class TransformerBlock : Module
{
    /// <summary>Creates the block.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="heads"/> does not divide <paramref name="dModel"/>.</exception>
    public TransformerBlock(int dModel, int heads, int seed, bool causal = true, DType dtype = DType.Float64)
    {
        RequireAtLeast(dModel, 1);
        RequireAtLeast(heads, 1);
        RequireHeadsDivide(dModel, heads);
        Ln1 = RegisterModule("ln1", new LayerNorm(dModel, dtype: dtype));
        Attention = RegisterModule("attn", new MultiHeadAttention(dModel, heads, seed, causal, dtype));
        Ln2 = RegisterModule("ln2", new LayerNorm(dModel, dtype: dtype));
        Mlp = RegisterModule("mlp", new Sequential(
            new Linear(dModel, 4 * dModel, unchecked(seed + 2), dtype: dtype), new GELU(), new Linear(4 * dModel, dModel, unchecked(seed + 3), dtype: dtype)));
    }

    /// <summary>The LayerNorm before attention.</summary>
    public LayerNorm Ln1 { get; }

    /// <summary>The self-attention.</summary>
    public MultiHeadAttention Attention { get; }

    /// <summary>The LayerNorm before the MLP.</summary>
    public LayerNorm Ln2 { get; }

    /// <summary>The MLP: Linear d → 4d, GELU, Linear 4d → d.</summary>
    public Sequential Mlp { get; }

    /// <inheritdoc />
    /// <exception cref="ArgumentException">The input is not float [B, T, d] or [T, d] of the block's dtype with d its model size.</exception>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var d = Attention.DModel;
        if (input.Rank is not (2 or 3) || input.Shape[-1] != d)
        {
            throw new ArgumentException($"TransformerBlock: expected input [B, T, {d}] or [T, {d}], got shape {input.Shape}.", nameof(input));
        }

        var weight = Attention.Qkv.Weight;
        if (input.DType != weight.DType)
        {
            throw new ArgumentException(
                $"TransformerBlock: the input is {input.DType.Name()} (shape {input.Shape}) but the block's weights are {weight.DType.Name()}; convert the input with To({weight.DType}).",
                nameof(input));
        }

        var x = input + Attention.Call(Ln1.Call(input));
        return x + Mlp.Call(Ln2.Call(x));
    }
}
