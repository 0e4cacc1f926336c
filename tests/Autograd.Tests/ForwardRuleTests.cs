using System.Reflection;

namespace Autograd.Tests;

/// <summary>
/// The forward rules (<see cref="Node.Jvp"/>) of every node class: each one exists and states its formula, and, for
/// every row of <see cref="OpTable"/>, the forward rules agree with the backward rules (⟨u, J v⟩ = ⟨Jᵀ u, v⟩), with
/// finite differences, and — run inside a backward walk — with reverse-over-reverse Hessian-vector products.
/// </summary>
public class ForwardRuleTests
{
    private static readonly Assembly[] Assemblies =
    [
        typeof(Tensor).Assembly,
        typeof(Autograd.Ops.SoftmaxOps).Assembly,
        typeof(Autograd.Nn.Module).Assembly,
        typeof(Autograd.Study.Anomaly).Assembly,
    ];

    /// <summary>Every row of the table: the operator and the row's name.</summary>
    public static TheoryData<string, string> Rows()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in OpTable.Cases)
        {
            data.Add(c.Op, c.Name);
        }

        return data;
    }

    /// <summary>The rows checked to second order.</summary>
    public static TheoryData<string, string> SecondOrderRows()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in OpTable.Cases.Where(c => c.Order >= 2))
        {
            data.Add(c.Op, c.Name);
        }

        return data;
    }

    [Fact]
    public void EveryNodeClassHasAForwardRuleAndStatesIt()
    {
        var missing = new List<string>();
        var nodes = Assemblies.SelectMany(a => a.GetTypes()).Where(t => t.IsSubclassOf(typeof(Node)) && !t.IsAbstract).ToList();
        foreach (var t in nodes)
        {
            var jvp = t.GetMethod("Jvp", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, [typeof(Tensor?[]), typeof(Tensor)]);
            if (jvp is null || jvp.DeclaringType == typeof(Node))
            {
                missing.Add($"{t.FullName}: does not override Jvp");
            }

            foreach (var rule in t.GetCustomAttributes<RuleAttribute>())
            {
                if (string.IsNullOrWhiteSpace(rule.Tangent))
                {
                    missing.Add($"{t.FullName}: the rule {rule.Op} {rule.Variant} has no Tangent formula");
                }
            }
        }

        Assert.True(nodes.Count > 40, $"only {nodes.Count} node classes found");
        Assert.True(missing.Count == 0, string.Join("\n", missing));
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void ForwardRulesAreTheAdjointsOfTheBackwardRules(string op, string name)
    {
        var c = OpTable.Find(op, name);
        var inputs = c.Inputs();
        var which = Differentiable(inputs);
        var v = Directions(inputs, which, 11);
        var jv = Jv(c, inputs, which, v);
        var u = Tensor.RandN(jv.Shape, 17, jv.DType);

        var y = c.F(inputs);
        var vjp = Autodiff.Grad([y], [.. which.Select(i => inputs[i])], [u], allowUnused: true);

        var lhs = Dot(u, jv);
        var scale = Math.Abs(lhs);
        var rhs = 0.0;
        for (var k = 0; k < which.Length; k++)
        {
            if (vjp[k] is { } g)
            {
                var term = Dot(g, v[k]);
                rhs += term;
                scale += Math.Abs(term);
            }
        }

        Assert.True(Math.Abs(lhs - rhs) <= Tolerance(c) * Math.Max(scale, 1e-300), $"{c}: ⟨u, Jv⟩ = {lhs:R} but Σ⟨Jᵀu, v⟩ = {rhs:R}");
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void ForwardRulesMatchFiniteDifferences(string op, string name)
    {
        var c = OpTable.Find(op, name);
        var inputs = c.Inputs();
        var which = Differentiable(inputs);
        var v = Directions(inputs, which, 23);
        var jv = Values(Jv(c, inputs, which, v));

        Tensor Shifted(double sign)
        {
            var xs = c.Inputs();
            using (GradMode.NoGrad())
            {
                for (var k = 0; k < which.Length; k++)
                {
                    xs[which[k]] = xs[which[k]] + (v[k] * (sign * c.Eps));
                }

                return c.F(xs);
            }
        }

        var plus = Values(Shifted(1));
        var minus = Values(Shifted(-1));
        Assert.Equal(plus.Length, jv.Length);
        for (var i = 0; i < jv.Length; i++)
        {
            var fd = (plus[i] - minus[i]) / (2 * c.Eps);
            Assert.True(Math.Abs(jv[i] - fd) <= c.Atol + (c.Rtol * Math.Abs(fd)), $"{c}: element {i}: forward rule {jv[i]:R}, finite difference {fd:R}");
        }
    }

    [Theory]
    [MemberData(nameof(SecondOrderRows))]
    public void ForwardOverReverseGivesTheHessianVectorProduct(string op, string name)
    {
        var c = OpTable.Find(op, name);
        var (hvp, reference) = HessianVectorProducts(c.F, c.Inputs, createGraph: true);
        for (var k = 0; k < hvp.Length; k++)
        {
            AssertClose(reference[k], hvp[k], $"{c}: input {k}", Tolerance(c));
        }
    }

    [Theory]
    [MemberData(nameof(SecondOrderRows))]
    public void ReverseOverForwardGivesTheHessianVectorProduct(string op, string name)
    {
        // With gradients recorded, a forward rule's tangent J(x)·v is itself on the tape (also through the output the rule
        // reads), so ∇x ⟨u, J(x)·v⟩ is the same Hessian-vector product as reverse-over-reverse gives.
        var c = OpTable.Find(op, name);
        var (_, reference) = HessianVectorProducts(c.F, c.Inputs, createGraph: true);
        var inputs = c.Inputs();
        var which = Differentiable(inputs);
        var v = Directions(inputs, which, 31);
        var u = Tensor.RandN(c.F(c.Inputs()).Shape, 37, c.F(c.Inputs()).DType);
        var jv = Jv(c, inputs, which, v);
        var leaves = which.Select(i => inputs[i]).ToArray();
        var grads = jv.RequiresGrad ? Autodiff.Grad([(jv * u).Sum()], leaves, allowUnused: true) : new Tensor?[which.Length];
        for (var k = 0; k < which.Length; k++)
        {
            AssertClose(reference[k], grads[k] ?? Tensor.Zeros(leaves[k].Shape, leaves[k].DType), $"{c}: input {k}", Tolerance(c));
        }
    }

    /// <summary>Small cases through the fast backward paths and the walk's gradient sums, which must step aside in a dual level.</summary>
    public static TheoryData<string> FastPathCases() => [.. FastPaths.Keys];

    private static readonly Dictionary<string, (Func<Tensor[], Tensor> F, Func<Tensor[]> Inputs)> FastPaths = new()
    {
        ["softmax"] = (t => t[0].Softmax(-1) * t[0], Leaves(new Shape(3, 5))),
        ["log-softmax"] = (t => t[0].LogSoftmax(0).Exp(), Leaves(new Shape(4, 3))),
        ["conv"] = (t => t[0].Conv2d(t[1], t[2], padding: 1).Tanh(), Leaves(new Shape(2, 2, 4, 4), new Shape(3, 2, 3, 3), new Shape(3))),
        ["layer norm"] = (t => t[0].LayerNorm([4], t[1], t[2]).Tanh(), Leaves(new Shape(3, 4), new Shape(4), new Shape(4))),
        ["attention"] = (t => Tensor.ScaledDotProductAttention(t[0], t[1], t[2]).Tanh(), Leaves(new Shape(2, 3, 4), new Shape(2, 5, 4), new Shape(2, 5, 3))),
        ["attention causal"] = (t => Tensor.ScaledDotProductAttention(t[0], t[1], t[2], null, true).Sigmoid(), Leaves(new Shape(1, 4, 3), new Shape(1, 4, 3), new Shape(1, 4, 2))),
        ["used twice"] = (t => (t[0] * t[0]).Tanh() + (t[0].Exp() * t[1]), Leaves(new Shape(6), new Shape(6))),
    };

    [Theory]
    [MemberData(nameof(FastPathCases))]
    public void ForwardOverReverseWithoutCreateGraphKeepsTheTangents(string name)
    {
        var (f, inputs) = FastPaths[name];
        var (hvp, reference) = HessianVectorProducts(f, inputs, createGraph: false);
        for (var k = 0; k < hvp.Length; k++)
        {
            AssertClose(reference[k], hvp[k], $"{name}: input {k}", 1e-10);
        }
    }

    private static Func<Tensor[]> Leaves(params Shape[] shapes)
        => () => [.. shapes.Select((s, i) => Tensor.RandN(s, 300 + i).WithRequiresGrad())];

    /// <summary>uᵀ∇²F·v by forward-over-reverse (the tangent of the gradient) and by reverse-over-reverse.</summary>
    private static (Tensor[] Hvp, Tensor[] Reference) HessianVectorProducts(Func<Tensor[], Tensor> f, Func<Tensor[]> makeInputs, bool createGraph)
    {
        var probe = makeInputs();
        var which = Differentiable(probe);
        var v = Directions(probe, which, 31);
        var y = f(probe);
        var u = Tensor.RandN(y.Shape, 37, y.DType);

        var hvp = new Tensor[which.Length];
        using (Autodiff.DualLevel())
        {
            var xs = makeInputs();
            for (var k = 0; k < which.Length; k++)
            {
                xs[which[k]].WithTangent(v[k]);
            }

            var g = Autodiff.Grad([f(xs)], [.. which.Select(i => xs[i])], [u], createGraph: createGraph, allowUnused: true);
            for (var k = 0; k < which.Length; k++)
            {
                hvp[k] = g[k]?.Tangent ?? Tensor.Zeros(xs[which[k]].Shape);
            }
        }

        var inputs = makeInputs();
        var leaves = which.Select(i => inputs[i]).ToArray();
        var grads = Autodiff.Grad([f(inputs)], leaves, [u], createGraph: true, allowUnused: true);
        Tensor? s = null;
        for (var k = 0; k < which.Length; k++)
        {
            if (grads[k] is { } g)
            {
                var term = (g * v[k]).Sum();
                s = s is null ? term : s + term;
            }
        }

        var reference = s is { RequiresGrad: true }
            ? Autodiff.Grad([s], leaves, allowUnused: true)
            : new Tensor?[which.Length];
        return (hvp, [.. reference.Select((r, k) => r ?? Tensor.Zeros(leaves[k].Shape))]);
    }

    /// <summary>Float64 rows agree to 1e-10; a row that rounds through float32 (<c>To</c>) only to float32 precision.</summary>
    private static double Tolerance(OpCase c) => c.Name.Contains("float32", StringComparison.OrdinalIgnoreCase) ? 1e-5 : 1e-10;

    private static double[] Values(Tensor t) => t.DType == DType.Float64 ? t.ToArray<double>() : t.To(DType.Float64).ToArray<double>();

    private static void AssertClose(Tensor expected, Tensor actual, string what, double tolerance)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = Values(expected);
        var a = Values(actual);
        var scale = e.Select(Math.Abs).DefaultIfEmpty().Max() + a.Select(Math.Abs).DefaultIfEmpty().Max();
        for (var i = 0; i < e.Length; i++)
        {
            Assert.True(Math.Abs(e[i] - a[i]) <= tolerance * Math.Max(scale, 1e-300), $"{what}: element {i}: forward-over-reverse {a[i]:R}, reverse-over-reverse {e[i]:R}");
        }
    }

    /// <summary>J v by the forward rules; the inputs not checked are held fixed.</summary>
    private static Tensor Jv(OpCase c, Tensor[] inputs, int[] which, Tensor[] v)
    {
        var (_, tangents) = Autodiff.Jvp(
            ps =>
            {
                var all = (Tensor[])inputs.Clone();
                for (var k = 0; k < which.Length; k++)
                {
                    all[which[k]] = ps[k];
                }

                return [c.F(all)];
            },
            [.. which.Select(i => inputs[i])],
            v);
        return tangents[0];
    }

    private static int[] Differentiable(Tensor[] inputs) => [.. Enumerable.Range(0, inputs.Length).Where(i => inputs[i].RequiresGrad)];

    private static Tensor[] Directions(Tensor[] inputs, int[] which, int seed) => [.. which.Select((i, k) => Tensor.RandN(inputs[i].Shape, seed + (7 * k)))];

    private static double Dot(Tensor a, Tensor b)
    {
        var x = Values(a);
        var y = Values(b);
        Assert.Equal(x.Length, y.Length);
        var s = 0.0;
        for (var i = 0; i < x.Length; i++)
        {
            s += x[i] * y[i];
        }

        return s;
    }
}
