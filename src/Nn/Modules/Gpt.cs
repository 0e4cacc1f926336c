using System.Globalization;
using System.Text;
using Autograd.Nn.Data;

namespace Autograd.Nn;

/// <summary>
/// Token and learned position embeddings, pre-LayerNorm transformer blocks, a final LayerNorm and a linear head.
/// A character-level (or any token-level) GPT: the children are named <c>tok</c>, <c>pos</c>, <c>blocks</c> (a
/// <see cref="Sequential"/> of <see cref="TransformerBlock"/>s), <c>ln</c> and <c>head</c>, as the PyTorch model of
/// benchmarks/peers/char_gpt.py, so its weights load unchanged.
/// </summary>
public sealed class Gpt : Module
{
    /// <summary>Creates the model; parameters are drawn from generators seeded from <paramref name="seed"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive.</exception>
    /// <exception cref="ArgumentException"><paramref name="heads"/> does not divide <paramref name="dModel"/>.</exception>
    public Gpt(int vocabulary, int dModel, int context, int layers, int heads, int seed, DType dtype = DType.Float32)
    {
        RequireAtLeast(vocabulary, 1);
        RequireAtLeast(dModel, 1);
        RequireAtLeast(context, 1);
        RequireAtLeast(layers, 1);
        RequireAtLeast(heads, 1);
        RequireHeadsDivide(dModel, heads);
        Context = context;
        Tok = RegisterModule("tok", new Embedding(vocabulary, dModel, seed, dtype: dtype));
        Pos = RegisterModule("pos", new Embedding(context, dModel, seed + 1, dtype: dtype));
        Blocks = RegisterModule("blocks", new Sequential([.. Enumerable.Range(0, layers).Select(i => new TransformerBlock(dModel, heads, seed + 10 + (10 * i), causal: true, dtype))]));
        Ln = RegisterModule("ln", new LayerNorm(dModel, dtype: dtype));
        Head = RegisterModule("head", new Linear(dModel, vocabulary, seed + 2, dtype: dtype));
    }

    /// <summary>The longest input sequence (the number of position embeddings).</summary>
    public int Context { get; }

    /// <summary>The token embedding.</summary>
    public Embedding Tok { get; }

    /// <summary>The learned position embedding.</summary>
    public Embedding Pos { get; }

    /// <summary>The transformer blocks.</summary>
    public Sequential Blocks { get; }

    /// <summary>The final LayerNorm.</summary>
    public LayerNorm Ln { get; }

    /// <summary>The output projection to logits over the vocabulary.</summary>
    public Linear Head { get; }

    /// <summary>Logits [B, T, vocabulary] for int64 tokens [B, T].</summary>
    /// <exception cref="ArgumentException">The input is not int64 [B, T] with 1 ≤ T ≤ <see cref="Context"/>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token is outside [0, vocabulary).</exception>
    public override Tensor Forward(Tensor input)
    {
        CheckTokens(nameof(input), input);

        var t = input.Shape[1];
        var x = Tok.Call(input) + Pos.Weight.Narrow(0, 0, t);
        return Head.Call(Ln.Call(Blocks.Call(x)));
    }

    /// <summary>The mean cross-entropy of the next-token predictions <paramref name="x"/> → <paramref name="y"/> (both [B, T]).</summary>
    /// <exception cref="ArgumentException"><paramref name="x"/> is not valid input (see <see cref="Forward"/>), or <paramref name="y"/> is not int64 of the same shape.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token of <paramref name="x"/> or <paramref name="y"/> is outside [0, vocabulary).</exception>
    public Tensor Loss(Tensor x, Tensor y)
    {
        ArgumentNullException.ThrowIfNull(y);
        CheckTokens(nameof(x), x);
        if (y.Shape != x.Shape)
        {
            throw new ArgumentException($"Gpt.Loss: the targets have shape {y.Shape} but the inputs have shape {x.Shape}; they must match.", nameof(y));
        }

        CheckTokens(nameof(y), y);
        var logits = Forward(x);
        var (b, t) = (x.Shape[0], x.Shape[1]);
        return Functional.CrossEntropy(logits.Reshape(b * t, logits.Shape[2]), y.Reshape(b * t));
    }

    private void CheckTokens(string name, Tensor tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens, name);
        if (tokens.DType != DType.Int64)
        {
            throw new ArgumentException($"Gpt: expected int64 tokens, got {tokens.DType.Name()} of shape {tokens.Shape}.", name);
        }

        if (tokens.Rank != 2 || tokens.Shape[1] < 1 || tokens.Shape[1] > Context)
        {
            throw new ArgumentException($"Gpt: expected tokens [B, T] with 1 ≤ T ≤ {Context}, got shape {tokens.Shape}.", name);
        }

        var vocabulary = Tok.NumEmbeddings;
        var ids = tokens.AsSpan<long>();
        for (var i = 0; i < ids.Length; i++)
        {
            if (ids[i] < 0 || ids[i] >= vocabulary)
            {
                throw new ArgumentOutOfRangeException(
                    name,
                    ids[i],
                    $"Gpt: token {ids[i]} at flat position {i} of the tokens (shape {tokens.Shape}) is outside the vocabulary [0, {vocabulary}).");
            }
        }
    }

    /// <summary>One new word: characters drawn from softmax(logits / temperature), starting from the end-of-word token, until the next one (at most 40).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="temperature"/> is not a finite number &gt; 0.</exception>
    /// <exception cref="ArgumentException">The corpus's vocabulary is not the size of the model's.</exception>
    public string Sample(CharCorpus corpus, double temperature, Random random)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(random);
        if (!(temperature > 0 && double.IsFinite(temperature)))
        {
            throw new ArgumentOutOfRangeException(
                nameof(temperature), temperature, string.Create(CultureInfo.InvariantCulture, $"Gpt.Sample: the temperature must be a finite number > 0, got {temperature}."));
        }

        if (corpus.VocabularySize != Tok.NumEmbeddings)
        {
            throw new ArgumentException(
                $"Gpt.Sample: the corpus has {corpus.VocabularySize} characters but the model's vocabulary has {Tok.NumEmbeddings}; sample with the corpus the model was built for.",
                nameof(corpus));
        }

        Eval();
        using var _ = Tensor.NoGrad();
        var tokens = new List<long> { corpus.Encode(CharCorpus.EndOfWord.ToString())[0] };
        var word = new StringBuilder();
        while (word.Length < 40)
        {
            var window = tokens.Skip(Math.Max(0, tokens.Count - Context)).ToArray();
            var logits = Forward(Tensor.FromArray(window, 1, window.Length));
            var last = logits.Narrow(1, window.Length - 1, 1).Reshape(-1).To(DType.Float64) * (1.0 / temperature);
            var p = last.Softmax(0).ToArray<double>();
            var u = random.NextDouble();
            var next = 0;
            for (var acc = p[0]; acc < u && next < p.Length - 1; acc += p[++next])
            {
            }

            if (corpus.Vocabulary[next] == CharCorpus.EndOfWord)
            {
                break;
            }

            word.Append(corpus.Vocabulary[next]);
            tokens.Add(next);
        }

        Train();
        return word.ToString();
    }
}

