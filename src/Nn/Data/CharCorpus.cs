using System.Text;
using MathNet.Numerics.Random;

namespace Autograd.Nn.Data;

/// <summary>
/// A character-level corpus of words for small language models (one word per line, as Debian's <c>wamerican</c> word
/// list): the words are split by word into a training and a validation part with a seeded shuffle, each part is one
/// stream of characters with a newline after every word (the newline is the end-of-word token, and the context a new
/// word starts from), and characters are numbered by a <see cref="Vocabulary"/> of every character that occurs.
/// </summary>
public sealed class CharCorpus
{
    /// <summary>Where Debian's <c>wamerican</c> package puts its word list (<c>apt-get install -y wamerican</c>).</summary>
    public const string DefaultWordList = "/usr/share/dict/american-english";

    /// <summary>The end-of-word token.</summary>
    public const char EndOfWord = '\n';

    private CharCorpus(string[] train, string[] validation, string vocabulary)
    {
        TrainWords = train;
        ValidationWords = validation;
        Vocabulary = vocabulary;
        TrainStream = Encode(string.Concat(train.Select(w => w + EndOfWord)));
        ValidationStream = Encode(string.Concat(validation.Select(w => w + EndOfWord)));
    }

    /// <summary>The words of the training part, in shuffled order.</summary>
    public IReadOnlyList<string> TrainWords { get; }

    /// <summary>The words of the validation part, in shuffled order.</summary>
    public IReadOnlyList<string> ValidationWords { get; }

    /// <summary>Every character of the corpus, sorted by code point; a character's token id is its index. The newline comes first.</summary>
    public string Vocabulary { get; }

    /// <summary>The number of distinct tokens.</summary>
    public int VocabularySize => Vocabulary.Length;

    /// <summary>The training part as token ids: each word followed by the end-of-word token.</summary>
    public long[] TrainStream { get; }

    /// <summary>The validation part as token ids.</summary>
    public long[] ValidationStream { get; }

    /// <summary>
    /// Reads a word list (one word per line; blank lines and surrounding white space ignored) and splits it by word.
    /// </summary>
    /// <param name="path">The file, by default <see cref="DefaultWordList"/>.</param>
    /// <param name="validationFraction">The share of words in the validation part, in (0, 1).</param>
    /// <param name="seed">The seed of the shuffle that decides the split.</param>
    /// <exception cref="FileNotFoundException">The file does not exist; the message says which package provides the default one.</exception>
    /// <exception cref="InvalidDataException">The file holds fewer than two words.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="validationFraction"/> is not in (0, 1).</exception>
    public static CharCorpus Load(string path = DefaultWordList, double validationFraction = 0.1, int seed = 1)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"CharCorpus: the word list '{path}' does not exist.{(path == DefaultWordList ? " Install it with: apt-get install -y wamerican" : string.Empty)}", path);
        }

        return FromWords(File.ReadLines(path, Encoding.UTF8), validationFraction, seed, path);
    }

    /// <summary>Splits the given words (blank entries ignored) as <see cref="Load"/> does.</summary>
    /// <exception cref="InvalidDataException">Fewer than two words.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="validationFraction"/> is not in (0, 1).</exception>
    /// <exception cref="ArgumentException">A word contains a newline.</exception>
    public static CharCorpus FromWords(IEnumerable<string> words, double validationFraction = 0.1, int seed = 1)
        => FromWords(words, validationFraction, seed, "the word list");

    private static CharCorpus FromWords(IEnumerable<string> words, double validationFraction, int seed, string source)
    {
        ArgumentNullException.ThrowIfNull(words);
        if (!(validationFraction > 0 && validationFraction < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, $"CharCorpus: the validation fraction must be in (0, 1), not {validationFraction}.");
        }

        var list = new List<string>();
        foreach (var raw in words)
        {
            var w = raw.Trim();
            if (w.Length == 0)
            {
                continue;
            }

            if (w.Contains(EndOfWord, StringComparison.Ordinal))
            {
                throw new ArgumentException($"CharCorpus: word {list.Count} of {source} contains a newline, which is the end-of-word token.", nameof(words));
            }

            list.Add(w);
        }

        if (list.Count < 2)
        {
            throw new InvalidDataException($"CharCorpus: {source} holds {list.Count} word(s); at least two are needed for a training and a validation part.");
        }

        // Fisher–Yates with a seeded Mersenne Twister: the split depends only on the words and the seed.
        var rng = new MersenneTwister(seed);
        var all = list.ToArray();
        for (var i = all.Length - 1; i > 0; i--)
        {
            var j = rng.Next(i + 1);
            (all[i], all[j]) = (all[j], all[i]);
        }

        var nValidation = Math.Clamp((int)Math.Round(all.Length * validationFraction), 1, all.Length - 1);
        var vocabulary = new string([.. all.SelectMany(w => w).Append(EndOfWord).Distinct().Order()]);
        return new CharCorpus(all[nValidation..], all[..nValidation], vocabulary);
    }

    /// <summary>The token ids of <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">A character is not in the vocabulary (named with its position).</exception>
    public long[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new long[text.Length];
        for (var i = 0; i < text.Length; i++)
        {
            var id = Vocabulary.IndexOf(text[i], StringComparison.Ordinal);
            if (id < 0)
            {
                throw new ArgumentException($"CharCorpus.Encode: character '{text[i]}' (U+{(int)text[i]:X4}) at position {i} is not in the vocabulary of {VocabularySize} characters.", nameof(text));
            }

            ids[i] = id;
        }

        return ids;
    }

    /// <summary>The text of the token ids <paramref name="ids"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside [0, <see cref="VocabularySize"/>).</exception>
    public string Decode(ReadOnlySpan<long> ids)
    {
        var sb = new StringBuilder(ids.Length);
        for (var i = 0; i < ids.Length; i++)
        {
            if ((ulong)ids[i] >= (ulong)VocabularySize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), ids[i], $"CharCorpus.Decode: id {ids[i]} at position {i} is outside [0, {VocabularySize}).");
            }

            sb.Append(Vocabulary[(int)ids[i]]);
        }

        return sb.ToString();
    }

    /// <summary>
    /// A batch of <paramref name="batchSize"/> windows drawn at random from the training (or validation) stream: inputs
    /// x [batchSize, context] and targets y [batchSize, context], int64, where y is x shifted by one token (the next
    /// character after each position).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The batch size or context is less than 1, or the stream is not longer than the context.</exception>
    public (Tensor Inputs, Tensor Targets) SampleBatch(bool validation, int batchSize, int context, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (batchSize < 1 || context < 1)
        {
            var (name, value) = batchSize < 1 ? (nameof(batchSize), batchSize) : (nameof(context), context);
            throw new ArgumentOutOfRangeException(name, value, $"CharCorpus.SampleBatch: {name} must be at least 1, got {value}.");
        }
        var stream = validation ? ValidationStream : TrainStream;
        if (stream.Length <= context)
        {
            throw new ArgumentOutOfRangeException(nameof(context), context, $"CharCorpus.SampleBatch: the {(validation ? "validation" : "training")} stream has {stream.Length} tokens, not more than the context {context}.");
        }

        var x = new long[batchSize * context];
        var y = new long[batchSize * context];
        for (var b = 0; b < batchSize; b++)
        {
            var start = random.Next(stream.Length - context);
            stream.AsSpan(start, context).CopyTo(x.AsSpan(b * context, context));
            stream.AsSpan(start + 1, context).CopyTo(y.AsSpan(b * context, context));
        }

        return (Tensor.FromArray(x, batchSize, context), Tensor.FromArray(y, batchSize, context));
    }
}
