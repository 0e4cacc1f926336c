using Autograd.Nn.Data;

namespace Autograd.Tests;

public class CharCorpusTests
{
    private static readonly string[] Words = [.. Enumerable.Range(0, 200).Select(i => $"w{i % 7}ord{(char)('a' + (i % 26))}{i}")];

    [Fact]
    public void TheSplitIsByWordSeededAndCoversEveryWordOnce()
    {
        var a = CharCorpus.FromWords(Words, validationFraction: 0.1, seed: 1);
        var b = CharCorpus.FromWords(Words, validationFraction: 0.1, seed: 1);
        var c = CharCorpus.FromWords(Words, validationFraction: 0.1, seed: 2);

        Assert.Equal(20, a.ValidationWords.Count);
        Assert.Equal(180, a.TrainWords.Count);
        Assert.Empty(a.TrainWords.Intersect(a.ValidationWords));
        Assert.Equal(Words.Order(StringComparer.Ordinal), a.TrainWords.Concat(a.ValidationWords).Order(StringComparer.Ordinal));
        Assert.Equal(a.ValidationWords, b.ValidationWords);
        Assert.NotEqual(a.ValidationWords, c.ValidationWords);
    }

    [Fact]
    public void StreamsAreTheWordsEachFollowedByTheEndToken()
    {
        var corpus = CharCorpus.FromWords(["ab", "", "  ba ", "c"], validationFraction: 0.4, seed: 3);
        Assert.Equal("\nabc", corpus.Vocabulary);
        Assert.Equal(4, corpus.VocabularySize);
        Assert.Equal(string.Concat(corpus.TrainWords.Select(w => w + "\n")), corpus.Decode(corpus.TrainStream));
        Assert.Equal(string.Concat(corpus.ValidationWords.Select(w => w + "\n")), corpus.Decode(corpus.ValidationStream));
        Assert.Equal([1L, 2, 0], corpus.Encode("ab\n"));
    }

    [Fact]
    public void BatchTargetsAreTheInputsShiftedByOneToken()
    {
        var corpus = CharCorpus.FromWords(Words, seed: 1);
        var (x, y) = corpus.SampleBatch(validation: false, batchSize: 8, context: 16, new Random(5));
        Assert.Equal([8, 16], x.Shape.ToArray());
        Assert.Equal(DType.Int64, x.DType);
        var xs = x.ToArray<long>();
        var ys = y.ToArray<long>();
        var stream = corpus.Decode(corpus.TrainStream);
        for (var b = 0; b < 8; b++)
        {
            var window = corpus.Decode(xs.AsSpan(b * 16, 16));
            Assert.Contains(window, stream, StringComparison.Ordinal);
            Assert.Equal(window[1..], corpus.Decode(ys.AsSpan(b * 16, 15)));
            Assert.Contains(window + corpus.Decode(ys.AsSpan((b * 16) + 15, 1)), stream, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void BadInputIsNamed()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CharCorpus.FromWords(Words, validationFraction: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => CharCorpus.FromWords(Words, validationFraction: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => CharCorpus.FromWords(Words, validationFraction: double.NaN));
        var few = Assert.Throws<InvalidDataException>(() => CharCorpus.FromWords(["only", " "]));
        Assert.Contains("1 word", few.Message, StringComparison.Ordinal);
        var corpus = CharCorpus.FromWords(["ab", "cd"], validationFraction: 0.5);
        var unknown = Assert.Throws<ArgumentException>(() => corpus.Encode("abz"));
        Assert.Contains("'z'", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("position 2", unknown.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => corpus.Decode([0L, 9]));
        Assert.Throws<ArgumentOutOfRangeException>(() => corpus.SampleBatch(false, 2, 3, new Random(1)));
        var missing = Assert.Throws<FileNotFoundException>(() => CharCorpus.Load("/nonexistent/words"));
        Assert.Contains("/nonexistent/words", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheDebianWordListLoadsWhenInstalled()
    {
        if (!File.Exists(CharCorpus.DefaultWordList))
        {
            Assert.Throws<FileNotFoundException>(() => CharCorpus.Load());
            return;
        }

        var corpus = CharCorpus.Load();
        var total = File.ReadLines(CharCorpus.DefaultWordList).Count(l => l.Trim().Length > 0);
        Assert.Equal(total, corpus.TrainWords.Count + corpus.ValidationWords.Count);
        Assert.Equal((int)Math.Round(total * 0.1), corpus.ValidationWords.Count);
        Assert.Equal('\n', corpus.Vocabulary[0]);
    }
}
