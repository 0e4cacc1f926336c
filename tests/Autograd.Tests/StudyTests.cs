using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Autograd.Study;

namespace Autograd.Tests;

/// <summary>
/// The study tools on the article's example (softmax of x = 1..9, backward with dL = 11..19): graph pictures (DOT,
/// Mermaid, rendering), the tape listing and the explained backward walk, composed and fused. The listing and the
/// explanation are compared with the files in Expected/; set AUTOGRAD_UPDATE_EXPECTED=1 to rewrite them from the
/// current output (then read the diff before committing).
/// </summary>
public partial class StudyTests
{
    // The article's gradient at 8 decimals, as examples/SoftmaxArticle and CI print it.
    private const string ArticleGrad = "[-0.00157344 -0.00370057 -0.00849213 -0.01882428 -0.03959057 -0.07614301 -0.12141937 -0.09747922  0.36722258]";

    private static readonly string[] ComposedExpressions = ["t0 = Max(x)", "t1 = Sub(x, t0)", "t2 = Exp(t1)", "t3 = Sum(t2)", "t4 = Div(t2, t3)"];

    [Fact]
    public void DotIsWellFormedAndNamesEveryNode()
    {
        var (s, recorder) = ComposedWithRecorder(backward: true);
        var dot = Graph.ToDot(s, recorder: recorder);

        var (nodes, edges) = ParseDot(dot);
        Assert.Equal(6, nodes.Count); // x and five operations
        Assert.Equal(7, edges.Count); // x→Max, x→Sub, Max→Sub, Sub→Exp, Exp→Sum, Exp→Div, Sum→Div
        foreach (var expression in ComposedExpressions)
        {
            Assert.Single(nodes, n => n.Label.StartsWith(expression + "\\n", StringComparison.Ordinal));
        }

        var leaf = Assert.Single(nodes, n => n.Label.StartsWith("x\\n", StringComparison.Ordinal));
        Assert.Contains("leaf · requires grad", leaf.Label, StringComparison.Ordinal);
        Assert.Contains("shape=ellipse", leaf.Attributes, StringComparison.Ordinal);
        Assert.Contains("grad [-0.0016 -0.0037 -0.0085 -0.0188 -0.0396 -0.0761 -0.1214 -0.0975  0.3672]", leaf.Label, StringComparison.Ordinal);

        // Values and gradients of every operation come from the recorder; the root is outlined.
        var div = Assert.Single(nodes, n => n.Label.StartsWith("t4 = Div", StringComparison.Ordinal));
        Assert.Contains("value [0.0002 0.0006 0.0016 0.0043 0.0116 0.0315 0.0856 0.2326 0.6322]", div.Label, StringComparison.Ordinal);
        Assert.Contains("grad [11.0000 12.0000", div.Label, StringComparison.Ordinal);
        Assert.Contains("penwidth=2", div.Attributes, StringComparison.Ordinal);
        var exp = Assert.Single(nodes, n => n.Label.StartsWith("t2 = Exp", StringComparison.Ordinal));
        Assert.Contains("value [0.0003 0.0009 0.0025 0.0067 0.0183 0.0498 0.1353 0.3679 1.0000]", exp.Label, StringComparison.Ordinal);
        Assert.Contains("dx = g ⊙ y", exp.Label, StringComparison.Ordinal);

        // Edges go from an input to the operation that uses it.
        string Id(string prefix) => nodes.Single(n => n.Label.StartsWith(prefix, StringComparison.Ordinal)).Id;
        Assert.Contains((Id("x\\n"), Id("t0 = "), (string?)null), edges);
        Assert.Contains((Id("t2 = "), Id("t4 = "), "0"), edges);
        Assert.Contains((Id("t3 = "), Id("t4 = "), "1"), edges);
    }

    [Fact]
    public void DotWithoutRecorderNamesNodesInRecordingOrderAndShowsTheRootValue()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var s = x.SoftmaxComposed(0);
        var dot = Graph.ToDot(s, new GraphOptions { ShowSaved = true, Title = "a \"quoted\" title" });

        var (nodes, edges) = ParseDot(dot);
        Assert.Equal(6, nodes.Count);
        Assert.Equal(7, edges.Count);
        string[] expressions = ["t0 = Max(x0)", "t1 = Sub(x0, t0)", "t2 = Exp(t1)", "t3 = Sum(t2)", "t4 = Div(t2, t3)"];
        foreach (var expression in expressions)
        {
            Assert.Single(nodes, n => n.Label.StartsWith(expression + "\\n", StringComparison.Ordinal));
        }

        Assert.Contains("saves: a=t2, b=t3", dot, StringComparison.Ordinal);
        Assert.Contains("label=\"a \\\"quoted\\\" title\"", dot, StringComparison.Ordinal);
        var root = Assert.Single(nodes, n => n.Label.StartsWith("t4 = ", StringComparison.Ordinal));
        Assert.Contains("value [0.0002", root.Label, StringComparison.Ordinal);
        var sub = Assert.Single(nodes, n => n.Label.StartsWith("t1 = ", StringComparison.Ordinal));
        Assert.DoesNotContain("value", sub.Label, StringComparison.Ordinal); // the tape keeps no outputs
    }

    [Fact]
    public void ToSvgDrawsTheGraphWithGraphvizOrSaysHowToInstallIt()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = x.Softmax(0);
        if (Graph.FindDot() is null)
        {
            var e = Assert.Throws<InvalidOperationException>(() => Graph.ToSvg(y));
            Assert.Contains("apt-get install -y graphviz", e.Message, StringComparison.Ordinal);
            return;
        }

        var svg = Graph.ToSvg(y);
        Assert.Contains("<svg", svg, StringComparison.Ordinal);
        Assert.Contains("Softmax", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void AModelsParametersAreNamedByTheirParameterNamesInTheGraphAndTheListing()
    {
        var model = new Autograd.Nn.Sequential(new Autograd.Nn.Linear(3, 4, seed: 1), new Autograd.Nn.ReLU(), new Autograd.Nn.Linear(4, 2, seed: 2));
        var batch = Tensor.Rand(new Shape(5, 3), seed: 3);
        using var tape = new TapeListing();
        tape.NameParameters(model.NamedParameters());
        tape.Name(batch, "input");
        var loss = model.Forward(batch).Sum();
        loss.Backward();

        var (nodes, _) = ParseDot(Graph.ToDot(loss, recorder: tape));
        foreach (var name in new[] { "0.weight", "0.bias", "2.weight", "2.bias", "input" })
        {
            Assert.Single(nodes, n => n.Label.StartsWith(name + "\\n", StringComparison.Ordinal));
        }

        Assert.DoesNotContain(nodes, n => n.Label.StartsWith("x0", StringComparison.Ordinal) || n.Label.StartsWith("c0", StringComparison.Ordinal));
        var listing = tape.ToString();
        Assert.Contains("0.weight", listing, StringComparison.Ordinal);
        Assert.Contains("2.bias", listing, StringComparison.Ordinal);
    }

    [Fact]
    public void InForwardModeTheGraphAndTheListingShowTangents()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        using var tape = new TapeListing();
        tape.Name(x, "x");
        Tensor y;
        using (Autodiff.DualLevel())
        {
            x.WithTangent(Tensor.From(1.0, 0.0));
            y = (x * x.Exp()).Sum();
        }

        // d/dx (x eˣ) = (1 + x) eˣ; the tangent e₀ picks the first element: 2e.
        var (nodes, _) = ParseDot(Graph.ToDot(y, recorder: tape));
        Assert.Single(nodes, n => n.Label.StartsWith("x\\n", StringComparison.Ordinal) && n.Label.Contains("tangent [1.0000 0.0000]", StringComparison.Ordinal));
        Assert.Single(nodes, n => n.Label.Contains("= Sum(", StringComparison.Ordinal) && n.Label.Contains($"tangent {2 * Math.E:F4}", StringComparison.Ordinal));
        Assert.Contains("tangent [2.7183 0.0000]", tape.ToString(), StringComparison.Ordinal);

        // Pure forward mode records nothing, but the listing still shows each operation with its tangent.
        using var pure = new TapeListing();
        using (Autodiff.DualLevel())
        {
            var z = Tensor.From(0.0).WithTangent(Tensor.From(1.0));
            _ = z.Exp() * 3.0;
        }

        Assert.Contains("tangent [3.0000]", pure.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void ExplainShowsTheTangentOfEachGradientInForwardOverReverse()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var text = new StringWriter();
        using (Autodiff.DualLevel())
        {
            x.WithTangent(Tensor.From(1.0, 0.0));
            var f = (x * x * x).Sum();
            using (new ExplainBackward(text, precision: 4))
            {
                _ = Autodiff.Grad(f, x, createGraph: true);
            }
        }

        // The gradient reaching t0 = x ⊙ x is g ⊙ x = x (the seed 1 times the other factor), whose tangent is v = [1, 0];
        // the seed itself carries none.
        var output = text.ToString();
        Assert.Contains("ġ      = [1.0000 0.0000]   the tangent of g (forward mode)", output, StringComparison.Ordinal);
        Assert.Equal(1, output.Split('ġ').Length - 1);
    }

    [Fact]
    public void DotMarksParametersAndConstants()
    {
        var w = Tensor.From(0.5, -0.25).WithRequiresGrad();
        var input = Tensor.From(2.0, 4.0);
        using var recorder = new GraphRecorder();
        var loss = ((w * input) + 1.0).Sum();
        loss.Backward();

        var dot = Graph.ToDot(loss, new GraphOptions { Parameters = [new("layer.weight", w)] }, recorder);
        var (nodes, edges) = ParseDot(dot);
        var param = Assert.Single(nodes, n => n.Label.StartsWith("layer.weight\\n", StringComparison.Ordinal));
        Assert.Contains("parameter · requires grad", param.Label, StringComparison.Ordinal);
        Assert.Contains("grad [2.0000 4.0000]", param.Label, StringComparison.Ordinal);
        Assert.Contains("#fff2b3", param.Attributes, StringComparison.Ordinal);
        Assert.Single(nodes, n => n.Label.StartsWith("t0 = Mul(layer.weight, c0)\\n", StringComparison.Ordinal));
        var constants = nodes.Where(n => n.Label.Contains("\\nconstant\\n", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, constants.Count); // the input and the number 1
        Assert.All(constants, c => Assert.Contains("dashed", c.Attributes, StringComparison.Ordinal));
        Assert.Equal(5, edges.Count); // w→Mul, input→Mul, Mul→Add, 1→Add, Add→Sum
    }

    [Fact]
    public void MermaidIsWellFormedAndNamesEveryNode()
    {
        var (s, recorder) = ComposedWithRecorder(backward: true);
        var mermaid = Graph.ToMermaid(s, recorder: recorder);
        var lines = mermaid.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("flowchart TD", lines[0]);

        var declared = new Dictionary<string, string>();
        var edges = new List<(string From, string To)>();
        foreach (var line in lines.Skip(1))
        {
            if (MermaidNode().Match(line) is { Success: true } n)
            {
                Assert.True(declared.TryAdd(n.Groups["id"].Value, n.Groups["label"].Value), $"node {n.Groups["id"].Value} declared twice");
                Assert.DoesNotContain("\"", n.Groups["label"].Value, StringComparison.Ordinal);
            }
            else if (MermaidEdge().Match(line) is { Success: true } e)
            {
                edges.Add((e.Groups["from"].Value, e.Groups["to"].Value));
            }
            else if (MermaidClass().Match(line) is { Success: true } c)
            {
                Assert.All(c.Groups["ids"].Value.Split(','), id => Assert.Contains(id, declared.Keys));
            }
            else
            {
                Assert.Matches(@"^  classDef \w+ [\w#:,\- ]+$", line);
            }
        }

        Assert.Equal(6, declared.Count);
        Assert.Equal(7, edges.Count);
        Assert.All(edges, e =>
        {
            Assert.Contains(e.From, declared.Keys);
            Assert.Contains(e.To, declared.Keys);
        });
        foreach (var expression in ComposedExpressions)
        {
            Assert.Single(declared.Values, l => l.StartsWith(expression + "<br/>", StringComparison.Ordinal));
        }

        Assert.Single(declared.Values, l => l.StartsWith("x<br/>leaf · requires grad", StringComparison.Ordinal));
    }

    [Fact]
    public void RenderWritesTheDotFileAndSaysHowToRenderItWhenGraphvizIsMissing()
    {
        var (s, recorder) = ComposedWithRecorder(backward: false);
        var dir = TempDir();
        var svg = Path.Combine(dir, "graph.svg");
        var result = Graph.Render(s, svg, new GraphOptions { DotCommand = Path.Combine(dir, "no-such-dot") }, recorder);

        Assert.False(result.Rendered);
        Assert.Null(result.ImagePath);
        Assert.Equal(Path.Combine(dir, "graph.dot"), result.DotPath);
        Assert.True(File.Exists(result.DotPath));
        Assert.False(File.Exists(svg));
        Assert.Equal(Graph.ToDot(s, recorder: recorder), File.ReadAllText(result.DotPath));
        Assert.Contains("was not found", result.Message, StringComparison.Ordinal);
        Assert.Contains($"dot -Tsvg {result.DotPath} -o {svg}", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RenderProducesAnSvgWhenGraphvizIsInstalledAndTheDotFileOtherwise()
    {
        var (s, recorder) = ComposedWithRecorder(backward: true);
        var dir = TempDir();
        var svg = Path.Combine(dir, "softmax.svg");
        var result = Graph.Render(s, svg, recorder: recorder);

        Assert.True(File.Exists(Path.Combine(dir, "softmax.dot")));
        if (Graph.FindDot() is null)
        {
            // No Graphviz on this machine: the fallback.
            Assert.False(result.Rendered);
            Assert.Contains("dot -Tsvg", result.Message, StringComparison.Ordinal);
            Assert.False(File.Exists(svg));
            return;
        }

        Assert.True(result.Rendered, result.Message);
        Assert.Equal(svg, result.ImagePath);
        var text = File.ReadAllText(svg);
        Assert.Contains("<svg", text, StringComparison.Ordinal);
        foreach (var expression in ComposedExpressions)
        {
            Assert.Contains(expression, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void RenderRejectsAnUnknownExtension()
    {
        var x = Tensor.From(1.0).WithRequiresGrad();
        var ex = Assert.Throws<ArgumentException>(() => Graph.Render(x.Exp(), Path.Combine(TempDir(), "graph.jpeg")));
        Assert.Contains(".svg", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ListingOfTheComposedSoftmaxMatchesTheExpectedText()
        => AssertExpected("listing-composed.txt", Article(fused: false).Listing);

    [Fact]
    public void ListingOfTheFusedSoftmaxMatchesTheExpectedText()
        => AssertExpected("listing-fused.txt", Article(fused: true).Listing);

    [Fact]
    public void ExplainedBackwardOfTheComposedSoftmaxMatchesTheExpectedText()
    {
        var explain = Article(fused: false).Explain;
        AssertExpected("explain-composed.txt", explain);
        Assert.Contains("x.grad = " + ArticleGrad, explain, StringComparison.Ordinal);
        Assert.Contains("GradSum", explain, StringComparison.Ordinal);
    }

    [Fact]
    public void ExplainedBackwardOfTheFusedSoftmaxMatchesTheExpectedText()
    {
        var explain = Article(fused: true).Explain;
        AssertExpected("explain-fused.txt", explain);
        Assert.Contains("x.grad = " + ArticleGrad, explain, StringComparison.Ordinal);
    }

    [Fact]
    public void ListingShowsWhatEachRuleSavedAndWhenBackwardFreedIt()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        using var tape = new TapeListing();
        var y = x.Exp();
        var z = (y * x).Sum();
        Assert.Equal(
            """
            x0 = leaf          [2] f64  requires grad
            t0 = Exp(x0)       [2] f64  saves: y=t0
            t1 = Mul(t0, x0)   [2] f64  saves: a=t0, b=x0
            t2 = Sum(t1)       [] f64

            """,
            tape.ToString());

        z.Backward();
        Assert.Contains("t0 = Exp(x0)       [2] f64  saves: y=t0 (freed by backward)", tape.ToString(), StringComparison.Ordinal);
        Assert.Equal([new KeyValuePair<string, string>("a", "t0 (freed)"), new("b", "x0 (freed)")], tape.SavedBy(z.GradFn!.NextNodes[0]!));
        Assert.Same(y, tape.OutputOf(y.GradFn!));
        Assert.Equal(3, tape.Nodes.Count);
    }

    [Fact]
    public void ExplainShowsTheRecordedGradSumUnderCreateGraph()
    {
        var x = Tensor.From(0.5, -1.0).WithRequiresGrad();
        var y = (x * x).Sum();
        var w = new StringWriter();
        using (new ExplainBackward(w))
        {
            y.Backward(createGraph: true);
        }

        var text = w.ToString();
        Assert.Contains("x0.grad += g", text, StringComparison.Ordinal);
        Assert.Contains("from t0 (input 0)", text, StringComparison.Ordinal);
        Assert.Contains("from t0 (input 1)", text, StringComparison.Ordinal);
        Assert.Matches(@"recorded as t\d+ = GradSum\(t\d+, t\d+\)", text);
        Assert.Contains("x0.grad = [ 1.0000 -2.0000]", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ExplainNamesConstantsAndDropsGradientsLeftByAnEarlierGradCall()
    {
        var x = Tensor.From(0.5, -1.0).WithRequiresGrad();
        var w = new StringWriter();
        using var tape = new TapeListing();
        tape.Name(x, "x");
        var y = (x * 2.0).Tanh().Sum();
        var z = (x * x).Sum();
        using (new ExplainBackward(w, tape))
        {
            _ = Autodiff.Grad(y, x, retainGraph: true); // stops at x: its accumulator never runs
            Autodiff.Backward([z]);
        }

        var text = w.ToString();
        Assert.Contains("→ c0     no gradient: this input does not require grad", text, StringComparison.Ordinal);
        var lastStep = text[text.LastIndexOf("x.grad += g", StringComparison.Ordinal)..];
        Assert.Equal(2, Regex.Count(lastStep, "from t")); // the two inputs of x * x, not the gradient of the Grad call
        Assert.Contains("x.grad = [ 1.0000 -2.0000]", lastStep, StringComparison.Ordinal);
    }

    [Fact]
    public void ExplainShowsTheSeedOfAnOutputThatAnotherOutputAlsoUses()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = x * 3.0;
        var z = y.Sum();
        var w = new StringWriter();
        using (new ExplainBackward(w))
        {
            Autodiff.Backward([y, z], [Tensor.From(10.0, 20.0), null]);
        }

        var text = Normalize(w.ToString());
        Assert.Contains(
            """
            [2] t0 = Mul(x0, const)   [2] f64
                g       = [ 1.0000  1.0000]   from t1
                        + [10.0000 20.0000]   the rest: the seed given to the backward call
                        = [11.0000 21.0000]   GradSum: the gradients meeting here are added
            """,
            text,
            StringComparison.Ordinal);
        Assert.Contains("x0.grad = [33.0000 63.0000]", text, StringComparison.Ordinal);
    }

    [Fact]
    public void NodesRecordedBeforeTheRecorderAreNamedWhenFirstMet()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = x.Exp();
        using var tape = new TapeListing();
        var z = y.Sum();
        Assert.Equal("t1 = Sum(t0)", tape.Expression(z.GradFn!));
        Assert.Equal("t0 = Exp(x0)", tape.Expression(y.GradFn!));
        Assert.Contains("recorded before the listing started", tape.Lines()[1], StringComparison.Ordinal);
        Assert.Equal("x0", tape.NameOf(x));
        tape.Name(y, "e");
        Assert.Equal("t1 = Sum(e)", tape.Expression(z.GradFn!));
    }

    private static (Tensor Root, GraphRecorder Recorder) ComposedWithRecorder(bool backward)
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var recorder = new GraphRecorder();
        recorder.Name(x, "x");
        var s = x.SoftmaxComposed(0);
        if (backward)
        {
            s.Backward(Tensor.Arange(11, 20));
        }

        recorder.Dispose();
        return (s, recorder);
    }

    /// <summary>The listing of the forward pass and the explained backward walk (8 decimals) of the article's example.</summary>
    private static (string Listing, string Explain) Article(bool fused)
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var dL = Tensor.Arange(11, 20);
        using var tape = new TapeListing();
        tape.Name(x, "x");
        var s = fused ? x.Softmax(0) : x.SoftmaxComposed(0);
        var listing = tape.ToString();
        var w = new StringWriter();
        using (new ExplainBackward(w, tape, precision: 8))
        {
            s.Backward(dL);
        }

        return (listing, w.ToString());
    }

    private static void AssertExpected(string file, string actual, [CallerFilePath] string source = "")
    {
        actual = Normalize(actual);
        if (Environment.GetEnvironmentVariable("AUTOGRAD_UPDATE_EXPECTED") == "1")
        {
            File.WriteAllText(Path.Combine(Path.GetDirectoryName(source)!, "Expected", file), actual);
        }

        var expected = Normalize(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Expected", file)));
        Assert.Equal(expected, actual);
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');

    private static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "autograd-study-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Checks that DOT text is well formed (balanced braces and quotes, ids declared once, edges between declared ids) and returns its nodes and edges.</summary>
    private static (List<(string Id, string Label, string Attributes)> Nodes, List<(string From, string To, string? Label)> Edges) ParseDot(string dot)
    {
        var depth = 0;
        var inString = false;
        for (var i = 0; i < dot.Length; i++)
        {
            var c = dot[i];
            if (inString)
            {
                if (c == '\\')
                {
                    i++;
                }
                else if (c == '"')
                {
                    inString = false;
                }

                continue;
            }

            switch (c)
            {
                case '"':
                    inString = true;
                    break;
                case '{':
                    depth++;
                    break;
                case '}':
                    depth--;
                    Assert.True(depth >= 0, "a '}' closes nothing");
                    break;
            }
        }

        Assert.False(inString, "an unterminated string");
        Assert.Equal(0, depth);
        var lines = dot.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("digraph autograd {", lines[0]);
        Assert.Equal("}", lines[^1]);

        var nodes = new List<(string, string, string)>();
        var edges = new List<(string, string, string?)>();
        foreach (var line in lines[1..^1])
        {
            if (DotEdge().Match(line) is { Success: true } e)
            {
                edges.Add((e.Groups["from"].Value, e.Groups["to"].Value, e.Groups["label"].Success ? e.Groups["label"].Value : null));
            }
            else if (DotNode().Match(line) is { Success: true } n)
            {
                nodes.Add((n.Groups["id"].Value, n.Groups["label"].Value, n.Groups["attrs"].Value));
            }
            else
            {
                Assert.Matches(@"^  (graph|node|edge) \[.*\];$", line);
            }
        }

        Assert.Equal(nodes.Count, nodes.Select(n => n.Item1).Distinct().Count());
        var ids = nodes.Select(n => n.Item1).ToHashSet();
        Assert.All(edges, e =>
        {
            Assert.Contains(e.Item1, ids);
            Assert.Contains(e.Item2, ids);
        });
        return (nodes, edges);
    }

    [GeneratedRegex("""^  (?<id>[A-Za-z_]\w*) \[label="(?<label>(?:[^"\\]|\\.)*)"(?<attrs>.*)\];$""")]
    private static partial Regex DotNode();

    [GeneratedRegex("""^  (?<from>[A-Za-z_]\w*) -> (?<to>[A-Za-z_]\w*)(?: \[label="(?<label>[^"]*)"\])?;$""")]
    private static partial Regex DotEdge();

    [GeneratedRegex("""^  (?<id>[A-Za-z_]\w*)(?:\["(?<label>[^"]*)"\]|\("(?<label>[^"]*)"\))$""")]
    private static partial Regex MermaidNode();

    [GeneratedRegex("""^  (?<from>[A-Za-z_]\w*) -->(?:\|[^|]*\|)? (?<to>[A-Za-z_]\w*)$""")]
    private static partial Regex MermaidEdge();

    [GeneratedRegex("""^  class (?<ids>[\w,]+) \w+$""")]
    private static partial Regex MermaidClass();
}
