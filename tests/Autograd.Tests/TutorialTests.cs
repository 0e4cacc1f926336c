using System.Text.RegularExpressions;
using Autograd.Tutorial;

namespace Autograd.Tests;

/// <summary>
/// docs/tutorial.md shows the output of examples/Tutorial: every <c>&lt;!-- output: SECTION --&gt;</c> marker is followed by
/// a <c>```text</c> block holding exactly what <see cref="TutorialSteps.Run"/> prints for that section. These tests run
/// every section and compare (line endings and trailing whitespace aside), so the document cannot drift from the code.
/// To refresh the document after a deliberate change, run <c>dotnet run --project examples/Tutorial -c Release -- --section NAME</c>
/// and paste the output into the block.
/// </summary>
public partial class TutorialTests
{
    // The article's outputs, checked against PyTorch, to 8 decimals.
    private const string ArticleSoftmax = "0.00021208 0.00057649 0.00156706 0.00425972 0.01157912 0.03147531 0.08555877 0.23257286 0.63219858";
    private const string ArticleGrad = "-0.00157344 -0.00370057 -0.00849213 -0.01882428 -0.03959057 -0.07614301 -0.12141937 -0.09747922 0.36722258";

    public static TheoryData<string> Sections()
    {
        var data = new TheoryData<string>();
        foreach (var section in TutorialSteps.Sections)
        {
            data.Add(section);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Sections))]
    public void SectionPrintsWhatTheTutorialShows(string section)
    {
        var blocks = OutputBlocks(ReadTutorial());
        var shown = blocks.Where(b => b.Section == section).ToList();
        Assert.True(shown.Count == 1, $"docs/tutorial.md must have exactly one '<!-- output: {section} -->' block; it has {shown.Count}.");
        Assert.Equal(Normalize(shown[0].Text), Normalize(TutorialSteps.Output(section)));
    }

    [Fact]
    public void EveryOutputBlockIsASection()
    {
        var blocks = OutputBlocks(ReadTutorial());
        Assert.NotEmpty(blocks);
        foreach (var block in blocks)
        {
            Assert.Contains(block.Section, TutorialSteps.Sections);
        }

        // Every marker is followed by a text block: a marker the parser skipped would go unchecked.
        var markers = MarkerRegex().Count(ReadTutorial());
        Assert.Equal(markers, blocks.Count);
    }

    [Fact]
    public void TheArticlesNumbersAppearInTheTutorialAndInTheFirstSection()
    {
        var doc = ReadTutorial();
        Assert.Contains(ArticleSoftmax, doc, StringComparison.Ordinal);
        Assert.Contains(ArticleGrad, doc, StringComparison.Ordinal);

        var byHand = TutorialSteps.Output("by-hand");
        Assert.Contains("s  = " + ArticleSoftmax, byHand, StringComparison.Ordinal);
        Assert.Contains("dx = " + ArticleGrad, byHand, StringComparison.Ordinal);
        foreach (var section in new[] { "vjp", "backward", "fused", "second-derivative" })
        {
            Assert.Contains(ArticleGrad, TutorialSteps.Output(section), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void SectionsHaveTitlesAndUnknownSectionsAreRejected()
    {
        foreach (var section in TutorialSteps.Sections)
        {
            Assert.False(string.IsNullOrWhiteSpace(TutorialSteps.Title(section)));
        }

        Assert.Throws<ArgumentException>(() => TutorialSteps.Run("no-such-section", TextWriter.Null));
    }

    private static List<(string Section, string Text)> OutputBlocks(string doc)
        => BlockRegex().Matches(doc.Replace("\r\n", "\n", StringComparison.Ordinal))
            .Select(m => (m.Groups[1].Value, m.Groups[2].Value))
            .ToList();

    /// <summary>The tutorial: copied next to the tests by the csproj, else found by walking up to the repository root.</summary>
    private static string ReadTutorial()
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "docs", "tutorial.md");
        if (File.Exists(copied))
        {
            return File.ReadAllText(copied);
        }

        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Autograd.sln")))
            {
                return File.ReadAllText(Path.Combine(dir.FullName, "docs", "tutorial.md"));
            }
        }

        throw new FileNotFoundException("docs/tutorial.md: not next to the tests and no Autograd.sln above " + AppContext.BaseDirectory);
    }

    /// <summary>'\n' line endings, no trailing whitespace on any line, no leading or trailing blank lines.</summary>
    private static string Normalize(string text)
    {
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Split('\n').Select(l => l.TrimEnd());
        return string.Join("\n", lines).Trim('\n');
    }

    [GeneratedRegex(@"<!--\s*output:\s*([\w-]+)\s*-->[ \t]*\n(?:[ \t]*\n)*```text\n(.*?)\n```[ \t]*$", RegexOptions.Singleline | RegexOptions.Multiline)]
    private static partial Regex BlockRegex();

    [GeneratedRegex(@"<!--\s*output:")]
    private static partial Regex MarkerRegex();
}
