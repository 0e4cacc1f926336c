using System.Reflection;
using System.Text;

namespace Autograd.Tests;

/// <summary>
/// The backward rules (<see cref="RuleAttribute"/>) and the tensors nodes save for them: every node class declares a
/// rule for every operator it serves, what every recorded node saves agrees with what its rule declares, every rule is
/// reached by some operator, and docs/rules.md is the table generated from the rules. To regenerate that page after a
/// deliberate change, run the tests with <c>AUTOGRAD_WRITE_RULES=1</c> (it is written into the repository's docs folder).
/// </summary>
public class RuleTests
{
    private const string WriteRulesVariable = "AUTOGRAD_WRITE_RULES";

    // ---------------------------------------------------------------- the node classes

    /// <summary>Every concrete node class of the operators and of the engine, with the file its rules must name.</summary>
    private static IEnumerable<(Type Type, string Folder)> NodeClasses()
    {
        foreach (var (assembly, folder) in new[] { (typeof(Elementwise).Assembly, "src/Ops/"), (typeof(Node).Assembly, "src/Autograd/") })
        {
            foreach (var t in assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(Node)) && !t.IsAbstract).OrderBy(t => t.FullName, StringComparer.Ordinal))
            {
                yield return (t, folder);
            }
        }
    }

    private static RuleAttribute[] RulesOf(Type t) => [.. t.GetCustomAttributes<RuleAttribute>(inherit: false)];

    private static (Type Type, string Op, string? Variant) Key(Type t, RuleAttribute r) => (t, r.Op, r.Variant);

    [Fact]
    public void EveryNodeClassDeclaresWellFormedRulesInItsOwnFile()
    {
        var classes = NodeClasses().ToList();
        Assert.Contains(classes, c => c.Type == typeof(AccumulateGrad));
        Assert.Contains(classes, c => c.Type.Name == "GradSumNode");
        Assert.True(classes.Count >= 30, $"only {classes.Count} node classes found");

        var repository = FindRepository();
        foreach (var (type, folder) in classes)
        {
            var rules = RulesOf(type);
            Assert.True(rules.Length > 0, $"{type.FullName} declares no [Rule]");
            foreach (var rule in rules)
            {
                var what = $"{type.Name} rule {rule.DisplayName}";
                Assert.False(string.IsNullOrWhiteSpace(rule.Op), what);
                Assert.False(string.IsNullOrWhiteSpace(rule.Forward), $"{what}: no forward");
                Assert.False(string.IsNullOrWhiteSpace(rule.Backward), $"{what}: no backward formula");
                Assert.StartsWith(folder, rule.File, StringComparison.Ordinal);
                Assert.EndsWith(".cs", rule.File, StringComparison.Ordinal);
                Assert.True(rule.Line > 0, what);
                Assert.All(rule.SavedNames, n => Assert.Matches("^[a-z]+$", n));
                if (repository is not null)
                {
                    var path = Path.Combine(repository, rule.File);
                    Assert.True(File.Exists(path), $"{what}: {rule.File} does not exist");
                    Assert.Contains($"class {type.Name}", File.ReadAllText(path), StringComparison.Ordinal);
                }
            }

            var keys = rules.Select(r => (r.Op, r.Variant)).ToList();
            Assert.True(keys.Distinct().Count() == keys.Count, $"{type.Name} declares a rule twice for one operator and variant");
        }
    }

    // ---------------------------------------------------------------- every operator, recorded

    /// <summary>A float64 leaf that requires grad: standard normal, or uniform in [0.5, 2) when <paramref name="positive"/>.</summary>
    private static Tensor L(int seed, bool positive, params int[] shape)
        => (positive ? Tensor.Rand(new Shape(shape), seed, low: 0.5, high: 2.0) : Tensor.RandN(new Shape(shape), seed)).WithRequiresGrad();

    private static Tensor L(int seed, params int[] shape) => L(seed, false, shape);

    private static Tensor Index(long[] values, params int[] shape) => Tensor.FromArray(values, shape);

    /// <summary>One call of every operator (and of the internal transposed product), each a fresh set of leaves.</summary>
    public static TheoryData<string> Operators => [.. OperatorCases().Keys];

    private static Dictionary<string, Func<(Tensor[] Leaves, Func<Tensor> Run)>> OperatorCases()
    {
        var cases = new Dictionary<string, Func<(Tensor[], Func<Tensor>)>>();

        void Unary(string name, Func<Tensor, Tensor> f, bool positive = false, params int[] shape)
            => cases[name] = () =>
            {
                var x = L(1, positive, shape.Length == 0 ? [2, 3] : shape);
                return ([x], () => f(x));
            };

        void Binary(string name, Func<Tensor, Tensor, Tensor> f, bool positiveB = false, int[]? sa = null, int[]? sb = null)
            => cases[name] = () =>
            {
                var a = L(2, false, sa ?? [2, 3]);
                var b = L(3, positiveB, sb ?? [3]);
                return ([a, b], () => f(a, b));
            };

        Binary("a + b", (a, b) => a + b);
        Binary("a - b", (a, b) => a - b);
        Binary("a * b", (a, b) => a * b);
        Binary("a / b", (a, b) => a / b, positiveB: true);
        Unary("x + 2", x => x + 2.0);
        Unary("2 + x", x => 2.0 + x);
        Unary("x - 2", x => x - 2.0);
        Unary("2 - x", x => 2.0 - x);
        Unary("x * 2", x => x * 2.0);
        Unary("2 * x", x => 2.0 * x);
        Unary("x / 2", x => x / 2.0);
        Unary("2 / x", x => 2.0 / x, positive: true);
        Unary("x * x (gradients meet)", x => x * x);
        Unary("Neg", x => -x);
        Unary("Exp", x => x.Exp());
        Unary("Log", x => x.Log(), positive: true);
        Unary("Pow(3)", x => x.Pow(3.0));
        Unary("Pow(0.5)", x => x.Pow(0.5), positive: true);
        Unary("Sqrt", x => x.Sqrt(), positive: true);
        Unary("Abs", x => x.Abs());
        Unary("Tanh", x => x.Tanh());
        Unary("Sigmoid", x => x.Sigmoid());
        Unary("Relu", x => x.Relu());
        Unary("Erf", x => x.Erf());
        Unary("To", x => x.To(DType.Float32).To(DType.Float64));

        Unary("Sum", x => x.Sum(1));
        Unary("Mean", x => x.Mean());
        Unary("Max", x => x.Max(1));
        Unary("Min", x => x.Min());

        Unary("Softmax", x => x.Softmax(1));
        Unary("LogSoftmax", x => x.LogSoftmax(-1));
        Unary("LogSumExp", x => x.LogSumExp(1));
        Binary("SoftmaxBackward", (g, y) => Tensor.SoftmaxBackward(g, y.Softmax(1), 1), sb: [2, 3]);
        Binary("LogSoftmaxBackward", (g, y) => Tensor.LogSoftmaxBackward(g, y.LogSoftmax(1), 1), sb: [2, 3]);

        Unary("Reshape", x => x.Reshape(3, 2));
        Unary("View", x => x.View(6));
        Unary("Flatten", x => x.Flatten());
        Unary("Squeeze", x => x.Squeeze(), shape: [2, 1, 3]);
        Unary("Unsqueeze", x => x.Unsqueeze(0));
        Unary("Transpose", x => x.Transpose(0, 1));
        Unary("Transpose of a vector", x => x.Transpose(0, -1), shape: [7]);
        Unary("Permute", x => x.Permute(1, 0));
        Unary("Expand", x => x.Expand(4, 2, 3));

        Binary("MatMul", (a, b) => a.MatMul(b), sb: [3, 4]);
        Binary("MatMul batched", (a, b) => a.MatMul(b), sa: [2, 2, 3], sb: [3, 4]);
        Binary("MatMulT(aᵀ, bᵀ)", (a, b) => LinearAlgebra.MatMulT(a, b, transA: true, transB: true), sa: [3, 2], sb: [4, 3]);

        Binary("AddInPlace", (a, b) => (a * 1.0).AddInPlace(b, 0.5));
        Binary("SubInPlace", (a, b) => (a * 1.0).SubInPlace(b));
        Binary("MulInPlace", (a, b) => (a * 1.0).MulInPlace(b));
        Binary("MulInPlace of a constant", (a, b) => (a * 1.0).MulInPlace(b.Detach()));
        Binary("DivInPlace", (a, b) => (a * 1.0).DivInPlace(b), positiveB: true);
        Binary("DivInPlace of a constant", (a, b) => (a * 1.0).DivInPlace(b.Detach()), positiveB: true);
        Unary("AddInPlace number", x => (x * 1.0).AddInPlace(2.0));
        Unary("SubInPlace number", x => (x * 1.0).SubInPlace(2.0));
        Unary("MulInPlace number", x => (x * 1.0).MulInPlace(2.0));
        Unary("DivInPlace number", x => (x * 1.0).DivInPlace(2.0));
        Unary("ZeroInPlace", x => (x * 1.0).ZeroInPlace().AddInPlace(x));
        Unary("FillInPlace", x => (x * 1.0).FillInPlace(0.5).AddInPlace(x));
        Binary("CopyFrom", (a, b) => (a * 1.0).CopyFrom(b));
        Unary("SqrtInPlace", x => (x * 1.0).SqrtInPlace(), positive: true);
        cases["AddcmulInPlace"] = () =>
        {
            var (s, u, v) = (L(1, 2, 3), L(2, 3), L(3, 2, 1));
            return ([s, u, v], () => (s * 1.0).AddcmulInPlace(u, v, 0.5));
        };
        cases["AddcdivInPlace"] = () =>
        {
            var (s, u, v) = (L(1, 2, 3), L(2, 3), L(3, true, 2, 1));
            return ([s, u, v], () => (s * 1.0).AddcdivInPlace(u, v, -0.5));
        };

        Binary("CustomOperator", (a, b) => new Twice().Apply(a, b));

        Binary("Where", (a, b) => Tensor.Where(a.Gt(0.0), a, b));
        Binary("Maximum", (a, b) => a.Maximum(b));
        Binary("Minimum", (a, b) => a.Minimum(b));
        Unary("Clamp", x => x.Clamp(-0.5, 0.5));

        Unary("Gather", x => x.Gather(1, Index([0, 2, 1, 1], 2, 2)));
        Binary("ScatterAdd", (x, src) => x.ScatterAdd(1, Index([0, 2, 1, 1], 2, 2), src), sb: [2, 2]);
        Unary("IndexSelect", x => x.IndexSelect(1, Index([2, 0, 2], 3)));
        Binary("IndexAdd", (x, source) => x.IndexAdd(0, Index([1, 1, 0], 3), source), sb: [3, 3]);
        Unary("Narrow", x => x.Narrow(1, 1, 2));
        Unary("Slice", x => x.Slice(1, 0, 3, 2));
        Binary("Concat", (a, b) => Tensor.Concat([a, b], 0), sb: [1, 3]);
        Binary("Stack", (a, b) => Tensor.Stack([a, b], 1), sb: [2, 3]);

        Binary("Conv2d", (x, w) => x.Conv2d(w, padding: 1), sa: [1, 2, 4, 4], sb: [3, 2, 3, 3]);
        Binary("Conv1d", (x, w) => x.Conv1d(w, stride: 2), sa: [2, 2, 5], sb: [3, 2, 2]);
        cases["Conv2d with bias"] = () =>
        {
            var x = L(1, false, [2, 2, 3, 3]);
            var w = L(2, false, [4, 1, 2, 2]);
            var b = L(3, false, [4]);
            return ([x, w, b], () => x.Conv2d(w, b, stride: 1, groups: 2));
        };

        Unary("MaxPool2d", x => x.MaxPool2d(2), shape: [1, 2, 4, 4]);
        Unary("AvgPool2d", x => x.AvgPool2d(3, 1, 1), shape: [1, 2, 4, 4]);
        Unary("LayerNorm", x => x.LayerNorm([3]));
        Binary("LayerNorm with weight", (x, w) => x.LayerNorm([3], w), sb: [3]);
        Binary("LayerNorm with bias", (x, b) => x.LayerNorm([3], null, b), sb: [3]);
        Binary("LayerNormBackward", (g, x) => Tensor.LayerNormBackward(g, x, [3]), sb: [2, 3]);
        Unary("Embedding", w => Tensor.Embedding(Index([0, 2, 2, 1], 2, 2), w, paddingIndex: 1), shape: [4, 3]);
        cases["ScaledDotProductAttention"] = () =>
        {
            var (q, k, v) = (L(1, 2, 3), L(2, 4, 3), L(3, 4, 2));
            return ([q, k, v], () => Tensor.ScaledDotProductAttention(q, k, v, causal: true));
        };
        cases["ScaledDotProductAttention with a fully masked row"] = () =>
        {
            var (q, k, v) = (L(1, 2, 3), L(2, 4, 3), L(3, 4, 2));
            return ([q, k, v], () => Tensor.ScaledDotProductAttention(q, k, v, Index([1, 0, 1, 1, 0, 0, 0, 0], 2, 4)));
        };
        return cases;
    }

    /// <summary>
    /// Runs an operator, its gradient with <c>createGraph</c> (recording the rules' own nodes) and the gradient of that
    /// gradient, and checks every node as it is recorded: it has a rule, and what it saved is what the rule declares.
    /// </summary>
    private static (List<string> Problems, List<Node> Nodes) RunRecorded(string name)
    {
        var (leaves, run) = OperatorCases()[name]();
        var checker = new SaveChecker();
        using (TapeObserver.Attach(checker))
        {
            var y = run();
            var loss = (y * y).Sum();
            var grads = Autodiff.Grad([loss], leaves, createGraph: true, allowUnused: true);
            var differentiable = grads.Where(g => g.RequiresGrad).ToList();
            if (differentiable.Count > 0)
            {
                var total = differentiable.Select(g => g.Sum()).Aggregate((p, q) => p + q);
                Autodiff.Grad([total], leaves, allowUnused: true);
            }
        }

        return (checker.Problems, checker.Nodes);
    }

    [Theory]
    [MemberData(nameof(Operators))]
    public void EveryRecordedNodeSavesWhatItsRuleDeclares(string name)
    {
        var (problems, nodes) = RunRecorded(name);
        Assert.NotEmpty(nodes);
        Assert.True(problems.Count == 0, $"{name}:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void EveryRuleIsReachedByAnOperator()
    {
        var reached = new HashSet<(Type, string, string?)>();
        foreach (var name in OperatorCases().Keys)
        {
            var (_, nodes) = RunRecorded(name);
            foreach (var node in nodes)
            {
                if (node.Rule is { } rule)
                {
                    reached.Add(Key(node.GetType(), rule));
                }
            }
        }

        var declared = NodeClasses().SelectMany(c => RulesOf(c.Type).Select(r => Key(c.Type, r))).ToList();
        var missing = declared.Where(k => !reached.Contains(k)).Select(k => $"{k.Item1.Name} {k.Item2} {k.Item3}").ToList();
        Assert.True(missing.Count == 0, "rules no operator reached: " + string.Join(", ", missing));
    }

    /// <summary>A custom operator without a rule of its own, saving nothing: y = 2·a + b (b's shape broadcast).</summary>
    private sealed class Twice : CustomOperator
    {
        protected override Tensor Forward(CustomContext context, Tensor[] inputs) => (inputs[0] * 2.0) + inputs[1];

        protected override Tensor?[] Backward(CustomContext context, Tensor grad) => [grad * 2.0, grad.SumTo(new Shape(3))];
    }

    /// <summary>Checks each node when it is recorded (before any backward can release what it saved).</summary>
    private sealed class SaveChecker : TapeObserver
    {
        private readonly Dictionary<Node, Tensor[]> _inputs = [];

        public List<string> Problems { get; } = [];

        /// <summary>Every node recorded, and the leaves' accumulators they lead to.</summary>
        public List<Node> Nodes { get; } = [];

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs) => _inputs[node] = inputs.ToArray();

        protected override void OnRecorded(Node node, Tensor output)
        {
            Nodes.Add(node);
            foreach (var next in node.NextNodes)
            {
                if (next is AccumulateGrad acc && !Nodes.Contains(acc))
                {
                    Nodes.Add(acc);
                    Check(acc, [], acc.Leaf);
                }
            }

            Check(node, _inputs[node], output);
        }

        private void Check(Node node, Tensor[] inputs, Tensor output)
        {
            var what = $"{node.GetType().Name} '{node.Name}'";
            var rule = node.Rule;
            if (rule is null)
            {
                Problems.Add($"{what}: no rule for this operator");
                return;
            }

            if (node.Formula != rule.Backward)
            {
                Problems.Add($"{what}: formula '{node.Formula}' is not the rule's '{rule.Backward}'");
            }

            var saved = Enumerable.Range(0, node.SavedTensorCount).Select(node.SavedName).ToList();
            if (!saved.SequenceEqual(rule.SavedNames))
            {
                Problems.Add($"{what}: saved [{string.Join(", ", saved)}] but its rule {rule.DisplayName} declares [{string.Join(", ", rule.SavedNames)}]");
                return;
            }

            for (var i = 0; i < node.SavedTensorCount; i++)
            {
                if (node.SavedTensor(i) is not { } t)
                {
                    Problems.Add($"{what}: saved tensor '{saved[i]}' is missing when the node is recorded");
                }
                else if (!Means(saved[i], t, inputs, output))
                {
                    Problems.Add($"{what}: saved tensor '{saved[i]}' (shape {t.Shape}) is not what its name says");
                }
            }
        }

        /// <summary>
        /// What a saved name stands for: a, g the first input, x the first (or the second, after g), b and w the second,
        /// weight a later input, y and r the result, index an int64 index, c, mean and rstd a tensor the forward computed
        /// that is neither the first two inputs nor the result; for attention q, k, v its three inputs and p the weights
        /// [..., Lq, Lk] (the result of the weights operator).
        /// </summary>
        private static bool Means(string name, Tensor saved, Tensor[] inputs, Tensor output)
        {
            bool Input(int k) => k < inputs.Length && Same(saved, inputs[k]);
            return name switch
            {
                "a" or "g" => Input(0),
                "b" => Input(1),

                // The input, or the x input of a backward operator (g, x); a weight, the second input.
                "x" => Input(0) || Input(1),
                "w" => Input(1),
                "weight" => inputs.Skip(1).Any(i => Same(saved, i)),

                // The result, or the y input of a fused backward operator (g, y).
                "y" => Same(saved, output) || Input(1),
                "r" => Same(saved, output),
                "index" => saved.DType == DType.Int64,
                "c" or "mean" or "rstd" => !Input(0) && !Input(1) && !Same(saved, output),
                "u" => Input(1), // the first factor of addcmul/addcdiv (s, u, v); v is the third input, as in attention
                "q" => Input(0),
                "k" => Input(1),
                "v" => Input(2),
                "p" => Same(saved, output) || (inputs.Length >= 2 && saved.Rank >= 2 && saved.Shape[-2] == inputs[0].Shape[-2] && saved.Shape[-1] == inputs[1].Shape[-2]),
                _ => false,
            };
        }

        /// <summary>The same elements: the same tensor, or a view of its storage with as many elements.</summary>
        private static bool Same(Tensor a, Tensor b)
            => ReferenceEquals(a, b) || (ReferenceEquals(a.Storage, b.Storage) && a.Offset == b.Offset && a.ElementCount == b.ElementCount);
    }

    // ---------------------------------------------------------------- saved tensors owned by the node

    [Fact]
    public void ReadingATensorABackwardFreedNamesTheOperatorAndTheTensor()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = x.Exp();
        var node = y.GradFn!;
        Assert.Equal(1, node.SavedTensorCount);
        Assert.Equal("y", node.SavedName(0));
        Assert.Same(y, node.SavedTensor(0));

        y.Sum().Backward();
        Assert.True(node.IsReleased);
        Assert.Null(node.SavedTensor(0));
        Assert.Equal("y", node.SavedName(0));

        var e = Assert.Throws<InvalidOperationException>(() => node.Backward(Tensor.OnesLike(y), new Tensor?[1]));
        Assert.Equal("Exp: the saved tensor 'y' was freed by an earlier backward; pass retainGraph: true to the first Backward to walk the graph twice.", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => node.SavedName(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => node.SavedTensor(-1));
    }

    [Fact]
    public void ANodeThatSavesManyTensorsKeepsThemInOrderAndReleasesThemAll()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var parts = Enumerable.Range(0, 7).Select(i => Tensor.From(i, 10.0 * i)).ToArray();
        var y = Tensor.From(0.0, 0.0);
        var node = new ManySavingNode(x, parts);
        y.SetGradFn(node);

        Assert.Equal(7, node.SavedTensorCount);
        Assert.Equal(["p", "q", "r", "saved3", "saved4", "saved5", "saved6"], Enumerable.Range(0, 7).Select(node.SavedName));
        for (var i = 0; i < parts.Length; i++)
        {
            Assert.Same(parts[i], node.SavedTensor(i));
        }

        y.Backward(Tensor.From(1.0, 1.0), retainGraph: true);
        Assert.Equal([21.0, 210.0], x.Grad!.ToArray());
        y.Backward(Tensor.From(1.0, 1.0));
        Assert.Equal([42.0, 420.0], x.Grad!.ToArray());
        Assert.True(node.IsReleased);
        Assert.All(Enumerable.Range(0, 7), i => Assert.Null(node.SavedTensor(i)));
        Assert.Equal("q", node.SavedName(1));
    }

    [Fact]
    public void ANodeWithoutARuleHasNoFormulaAndNumberedSavedNames()
    {
        var x = Tensor.From(1.0).WithRequiresGrad();
        var node = new ManySavingNode(x, [Tensor.From(3.0)], "Custom");
        Assert.Null(node.Rule);
        Assert.Equal(string.Empty, node.Formula);
        Assert.Equal("saved0", node.SavedName(0));
    }

    /// <summary>A rule defined outside the library: dx = Σ of the saved tensors ⊙ g, whatever their number.</summary>
    [Rule("ManySaving", Forward = "y = 0", Backward = "dx = g ⊙ Σ p_i", Saves = "p, q, r")]
    internal sealed class ManySavingNode : Node
    {
        public ManySavingNode(Tensor x, Tensor[] parts, string name = "ManySaving")
            : base(name, x)
        {
            foreach (var p in parts)
            {
                Save(p);
            }
        }

        protected internal override void Backward(Tensor grad, Tensor?[] inputGrads)
        {
            var sum = Saved(0);
            for (var i = 1; i < SavedTensorCount; i++)
            {
                sum += Saved(i);
            }

            inputGrads[0] = grad * sum;
        }
    }

    // ---------------------------------------------------------------- docs/rules.md

    [Fact]
    public void TheRulesPageIsGeneratedFromTheRules()
    {
        var page = RulesPage();
        if (Environment.GetEnvironmentVariable(WriteRulesVariable) == "1")
        {
            var repository = FindRepository() ?? throw new InvalidOperationException("no Autograd.sln above " + AppContext.BaseDirectory);
            File.WriteAllText(Path.Combine(repository, "docs", "rules.md"), page);
            return;
        }

        var committed = ReadCommittedPage();
        Assert.True(
            committed is not null && Normalize(committed) == Normalize(page),
            $"docs/rules.md is {(committed is null ? "missing" : "out of date with the [Rule] attributes")}. Regenerate it with\n" +
            $"  {WriteRulesVariable}=1 dotnet test Autograd.sln -c Release --filter FullyQualifiedName~{nameof(RuleTests)}.{nameof(TheRulesPageIsGeneratedFromTheRules)}\n" +
            "and commit it.");
    }

    [Fact]
    public void TheRulesPageHasOneRowPerRuleSortedByFileThenOperator()
    {
        var rows = RulesPage().Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Skip(1).ToList();
        var rules = NodeClasses().SelectMany(c => RulesOf(c.Type)).ToList();
        Assert.Equal(rules.Count, rows.Count);
        Assert.Contains("| Exp | `y = exp(x)` | `dx = g ⊙ y` | `ẏ = ẋ ⊙ y` | y | [src/Ops/Elementwise.cs](../src/Ops/Elementwise.cs) |", rows);
        Assert.Contains("| Abs | `y = \\|x\\|` | `dx = g ⊙ sign(x)` | `ẏ = ẋ ⊙ sign(x)` | x | [src/Ops/Elementwise.cs](../src/Ops/Elementwise.cs) |", rows);
        // The operator without its variant: rows of one operator keep the order of their declarations.
        var keys = rows.Select(r => r.Split(" | ")).Select(c => (File: c[5], Op: c[0][2..].Split(" (")[0])).ToList();
        Assert.Equal(keys.OrderBy(k => k.File, StringComparer.Ordinal).ThenBy(k => k.Op, StringComparer.Ordinal), keys);
    }

    /// <summary>docs/rules.md as the rules give it.</summary>
    private static string RulesPage()
    {
        var rules = NodeClasses()
            .SelectMany(c => RulesOf(c.Type))
            .OrderBy(r => r.File, StringComparer.Ordinal)
            .ThenBy(r => r.Op, StringComparer.Ordinal)
            .ThenBy(r => r.Line);
        var sb = new StringBuilder();
        sb.Append("""
            # Backward and forward rules

            Every operator's backward rule and forward (tangent) rule, generated from the `[Rule]` attributes on the node classes (the one place each
            formula is written, next to the operator's kernel). Do not edit this page by hand: after changing a rule, run
            `AUTOGRAD_WRITE_RULES=1 dotnet test Autograd.sln -c Release --filter FullyQualifiedName~RuleTests` and commit the
            result; the tests fail while the page and the code disagree.

            Each row gives what the operator computes, how its node turns the gradient of the result into gradients of its
            inputs, and the tensors the node saves for that (the study tools show them as `saves: y=t2`); a node also keeps
            the shapes, dims and numbers its rule needs, which are not tensors. The tangent column is the node's forward rule
            (`Node.Jvp`, used by `Autodiff.Jvp` and inside a dual level): the tangent of the result from the tangents of the
            inputs, computed right after the forward with the same saved tensors.

            Notation:

            - `x`, `a`, `b`: the inputs (`x_i` the i-th of a list); `y` (`r` for logsumexp): the result; `c`: the condition of
              `where`; `p`: a permutation of the dims (`p⁻¹` its inverse), or the exponent of `Pow`.
            - `g`: the upstream gradient, the gradient of the loss with respect to `y`, shaped like `y`; `dx`, `da`, `db`:
              the gradients the rule sends to the inputs.
            - `gg`: the upstream gradient of an operator that is itself a backward rule (`SoftmaxBackward`,
              `SliceBackward`): its rule gives second derivatives.
            - `⊙`: elementwise product; `·`: matrix product, or a product with a number; `ᵀ`: transpose of the last two dims.
            - `Σ`: sum over the reduced dims (the softmax dim), kept with size 1 so that it broadcasts back.
            - `[cond]`: 1 where `cond` holds, else 0.
            - Broadcasting: the gradient of a broadcast input is summed back to that input's shape (`sumTo`, the adjoint of
              `expand`).
            - A number operand (`x * 2.0`) is an input with no gradient and no tensor: its node keeps the number.
            - `ẋ`, `ȧ`, `ḃ`, `ġ`: the tangent (directional derivative) of an input, 0 for an input without one; `ẏ`, `ḋx`:
              the tangent of the result. A tangent of a broadcast input is broadcast like the input.


            """);
        sb.Append("| Operator | Forward | Backward | Tangent | Saves | File |\n");
        sb.Append("|---|---|---|---|---|---|\n");
        foreach (var r in rules)
        {
            var saves = r.SavedNames.Count == 0 ? "—" : string.Join(", ", r.SavedNames);
            sb.Append($"| {Cell(r.DisplayName)} | `{Cell(r.Forward)}` | `{Cell(r.Backward)}` | `{Cell(r.Tangent)}` | {Cell(saves)} | [{r.File}](../{r.File}) |\n");
        }

        return sb.ToString();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n');

    /// <summary>The committed page: copied next to the tests by the csproj, else read from the repository.</summary>
    private static string? ReadCommittedPage()
    {
        var copied = Path.Combine(AppContext.BaseDirectory, "docs", "rules.md");
        if (File.Exists(copied))
        {
            return File.ReadAllText(copied);
        }

        var repository = FindRepository();
        var path = repository is null ? null : Path.Combine(repository, "docs", "rules.md");
        return path is not null && File.Exists(path) ? File.ReadAllText(path) : null;
    }

    /// <summary>The repository root: the first folder above the tests that holds Autograd.sln (null when there is none).</summary>
    private static string? FindRepository()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Autograd.sln")))
            {
                return dir.FullName;
            }
        }

        return null;
    }
}
