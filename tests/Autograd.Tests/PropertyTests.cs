using System.Globalization;
using CsCheck;

namespace Autograd.Tests;

/// <summary>
/// Property tests on random expression graphs (CsCheck): a generated genome — an input shape, a list of steps and a
/// seed — is read as a chain of differentiable operators (elementwise unary and binary with broadcasting, scalar
/// arithmetic, reductions with keepDim, matmul, softmax, log-softmax and logsumexp both fused and composed,
/// reshape, transpose, indexing, where, expand), every genome giving a valid graph whose inputs lie where each operator
/// is smooth. Each graph's gradients are checked against finite differences (first order, and second order for a
/// share of them); a failure is shrunk by CsCheck to a minimal graph, printed as an expression. The same graphs in
/// float32 are compared with float64. <c>AUTOGRAD_PROPERTY_ITERATIONS</c> sets the number of graphs (default 6 000).
/// </summary>
public class PropertyTests(ITestOutputHelper output)
{
    /// <summary>The number of graphs checked to first order; a third as many are checked to second order and compared in float32.</summary>
    private static int Iterations
        => int.TryParse(Environment.GetEnvironmentVariable("AUTOGRAD_PROPERTY_ITERATIONS"), out var n) && n > 0 ? n : 6_000;

    private static readonly Gen<Graph> Graphs =
        Gen.Select(
            Gen.Int[1, 4].Array[1, 3],
            Gen.Select(Gen.Int[0, Graph.OpCount - 1], Gen.Int[0, 7], Gen.Int[0, 7]).Array[1, 6],
            Gen.Int[0, 1_000_000],
            static (shape, steps, seed) => Graph.Build(shape, steps, seed));

    [Fact]
    public void RandomGraphsHaveTheirFiniteDifferenceGradients()
    {
        var count = 0;
        Graphs.Sample(
            g =>
            {
                var inputs = g.Inputs(DType.Float64, requiresGrad: true);
                var r = GradCheck.Check(g.Evaluate, inputs, atol: 1e-6, rtol: 1e-4);
                Assert.True(r.Passed, $"{g}: {r.Message}");
                Interlocked.Increment(ref count);
            },
            iter: Iterations,
            print: g => g.ToString());
        output.WriteLine($"{count} graphs checked to first order");
    }

    [Fact]
    public void RandomGraphsHaveTheirFiniteDifferenceSecondDerivatives()
    {
        var count = 0;
        Graphs.Sample(
            g =>
            {
                var inputs = g.Inputs(DType.Float64, requiresGrad: true);
                var r = GradCheck.GradGradCheck(x => [g.Evaluate(x)], inputs, atol: 1e-5, rtol: 1e-3);
                Assert.True(r.Passed, $"{g}: {r.Message}");
                Interlocked.Increment(ref count);
            },
            iter: Math.Max(1, Iterations / 3),
            print: g => g.ToString());
        output.WriteLine($"{count} graphs checked to second order");
    }

    /// <summary>
    /// The same graphs evaluated in float32 and in float64: the relative error (largest difference over the largest
    /// float64 magnitude) of the values and of the gradients of ⟨y, v⟩. The bound is asserted on well-conditioned
    /// graphs: those with no saturated tanh, sigmoid or softmax, whose float64 values and gradients move by at most
    /// 1 000 times a relative perturbation of 1e-7 of the inputs and of every intermediate result.
    /// </summary>
    [Fact]
    public void Float32FollowsFloat64OnWellConditionedGraphs()
    {
        var valueErrors = new List<double>();
        var gradientErrors = new List<double>();
        var skipped = 0;
        var gate = new object();
        Graphs.Sample(
            g =>
            {
                var (value, gradient, condition) = g.Float32Error();
                lock (gate)
                {
                    if (g.Saturated || condition > 1_000 || double.IsNaN(condition))
                    {
                        skipped++;
                        return;
                    }

                    valueErrors.Add(value);
                    gradientErrors.Add(gradient);
                }

                Assert.True(value <= 1e-3, $"{g}: float32 values differ from float64 by {value:E2} relative (condition {condition:F1})");
                Assert.True(gradient <= 1e-3, $"{g}: float32 gradients differ from float64 by {gradient:E2} relative (condition {condition:F1})");
            },
            iter: Math.Max(1, Iterations / 3),
            print: g => g.ToString());

        valueErrors.Sort();
        gradientErrors.Sort();
        output.WriteLine($"{valueErrors.Count} well-conditioned graphs ({skipped} skipped): values max {valueErrors[^1]:E2}, median {valueErrors[valueErrors.Count / 2]:E2}; gradients max {gradientErrors[^1]:E2}, median {gradientErrors[gradientErrors.Count / 2]:E2}");
    }

    [Fact]
    public void AGraphPrintsAsAnExpression()
    {
        var g = Graph.Build([2, 3], [(0, 0, 0), (8, 0, 1), (9, 1, 1)], 7);
        Assert.Equal("Sum(Exp(x0[2,3]) + x1[3], dim 1)", g.ToString());
        var r = GradCheck.Check(g.Evaluate, g.Inputs(DType.Float64, requiresGrad: true));
        Assert.True(r.Passed, r.Message);
    }

    /// <summary>An input of a graph: its shape and float64 values (converted to the dtype under test).</summary>
    private sealed record Leaf(int[] Shape, double[] Values);

    /// <summary>
    /// One operator of the chain: how it prints around its operand, how it applies to (operand, leaves), and whether it
    /// saturates for a given operand (a derivative computed from a result near its limit, as 1 − tanh², which float32
    /// cannot give to a small relative error).
    /// </summary>
    private sealed record Step(Func<string, string> Print, Func<Tensor, Tensor[], Tensor> Apply, Func<Tensor, bool>? Saturates = null);

    /// <summary>A random expression graph: leaves x0, x1, … and a chain of steps from x0, with a readable form.</summary>
    public sealed class Graph
    {
        /// <summary>The number of step kinds a genome chooses from.</summary>
        public const int OpCount = 17;

        private const int MaxElements = 48;

        private readonly List<Leaf> _leaves = [];
        private readonly List<Step> _steps = [];
        private readonly Random _random;

        private Graph(int seed) => _random = new Random(seed);

        /// <summary>Whether a tanh, a sigmoid or a softmax of the graph saturates on its inputs (see <see cref="Step"/>).</summary>
        public bool Saturated { get; private set; }

        /// <summary>Reads a genome: the shape of x0, then (kind, a, b) per step, each kind adapting a and b to the current shape.</summary>
        public static Graph Build(int[] shape, (int Kind, int A, int B)[] steps, int seed)
        {
            var g = new Graph(seed);
            g.AddLeaf(shape, 1.5);
            var current = g.Evaluate(g.Inputs(DType.Float64, requiresGrad: false));
            foreach (var (kind, a, b) in steps)
            {
                var step = g.Choose(kind, a, b, current);
                g._steps.Add(step);
                g.Saturated |= step.Saturates?.Invoke(current) ?? false;
                using (Tensor.NoGrad())
                {
                    current = step.Apply(current, g.Inputs(DType.Float64, requiresGrad: false));
                }
            }

            return g;
        }

        /// <summary>New leaf tensors of the graph in <paramref name="dtype"/>.</summary>
        public Tensor[] Inputs(DType dtype, bool requiresGrad)
            => [.. _leaves.Select(l => Tensor.FromArray(l.Values, l.Shape).To(dtype).Detach().WithRequiresGrad(requiresGrad))];

        /// <summary>The graph's output for the given leaves.</summary>
        public Tensor Evaluate(Tensor[] leaves)
        {
            var x = leaves[0];
            foreach (var step in _steps)
            {
                x = step.Apply(x, leaves);
            }

            return x;
        }

        public override string ToString()
        {
            var s = $"x0{ShapeText(_leaves[0].Shape)}";
            foreach (var step in _steps)
            {
                s = step.Print(s);
            }

            return s;
        }

        /// <summary>
        /// The float32 result against float64: relative errors of the values and of the gradients of ⟨y, v⟩ for every
        /// leaf, and a condition estimate: the relative change of the float64 values and gradients when the inputs and
        /// every intermediate result are multiplied by 1 + δ, |δ| ≤ 1e-7 (about a float32 rounding each), divided by 1e-7.
        /// </summary>
        public (double Value, double Gradient, double Condition) Float32Error()
        {
            var (y64, g64) = ValueAndGradients(DType.Float64, null);
            var (y32, g32) = ValueAndGradients(DType.Float32, null);
            var (yNoisy, gNoisy) = ValueAndGradients(DType.Float64, new Random(11));
            var value = Relative(y32, y64);
            var gradient = 0.0;
            var moved = Relative(yNoisy, y64);
            for (var i = 0; i < g64.Length; i++)
            {
                gradient = Math.Max(gradient, Relative(g32[i], g64[i]));
                moved = Math.Max(moved, Relative(gNoisy[i], g64[i]));
            }

            return (value, gradient, moved / 1e-7);
        }

        /// <summary>The output and the gradients of ⟨y, v⟩ (zeros for an unused leaf), with rounding-sized noise when <paramref name="noise"/> is given.</summary>
        private (double[] Value, double[][] Gradients) ValueAndGradients(DType dtype, Random? noise)
        {
            Tensor Jitter(Tensor t)
                => noise is null ? t : t * Tensor.FromArray([.. Enumerable.Range(0, t.ElementCount).Select(_ => 1 + (1e-7 * ((2 * noise.NextDouble()) - 1)))], [.. t.Shape.Dims]).To(t.DType);

            var leaves = Inputs(dtype, requiresGrad: noise is null);
            if (noise is not null)
            {
                leaves = [.. leaves.Select(l => Jitter(l).Detach().WithRequiresGrad())];
            }

            var x = leaves[0];
            foreach (var step in _steps)
            {
                x = Jitter(step.Apply(x, leaves));
            }

            var v = Tensor.RandN(x.Shape, 5).To(dtype);
            var grads = Autodiff.Grad([(x * v).Sum()], leaves, allowUnused: true);
            return (Doubles(x), [.. grads.Select((g, i) => g is null ? new double[leaves[i].ElementCount] : Doubles(g))]);
        }

        private static double Relative(double[] approximate, double[] exact)
        {
            double diff = 0, scale = 0;
            for (var i = 0; i < exact.Length; i++)
            {
                diff = Math.Max(diff, Math.Abs(approximate[i] - exact[i]));
                scale = Math.Max(scale, Math.Abs(exact[i]));
            }

            return diff == 0 ? 0 : diff / Math.Max(scale, 1e-300);
        }

        private static double[] Doubles(Tensor t)
            => t.DType == DType.Float32 ? [.. t.AsSpan<float>().ToArray().Select(f => (double)f)] : t.AsSpan<double>().ToArray();

        private static string ShapeText(int[] shape) => $"[{string.Join(',', shape)}]";

        private static string Num(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);

        private int AddLeaf(int[] shape, double range)
        {
            var n = shape.Aggregate(1, (p, d) => p * d);
            var values = new double[n];
            for (var i = 0; i < n; i++)
            {
                values[i] = range * ((2 * _random.NextDouble()) - 1);
            }

            _leaves.Add(new Leaf(shape, values));
            return _leaves.Count - 1;
        }

        /// <summary>
        /// The step of the given kind for the current value: operators with a restricted domain get a positive operand
        /// (x² + ½), and those that grow fast a scaled one, so every graph stays smooth and of moderate size.
        /// </summary>
        private Step Choose(int kind, int a, int b, Tensor current)
        {
            var shape = current.Shape.Dims.ToArray();
            var rank = shape.Length;
            var n = current.ElementCount;
            var max = current.Abs().Max().Item();

            // A power of two that brings the operand within ±2.
            var s = max > 2 ? Math.ScaleB(1.0, -(int)Math.Ceiling(Math.Log2(max / 2))) : 1.0;
            var scaled = s == 1 ? "{0}" : $"{Num(s)}·{{0}}";
            string Scaled(string x) => string.Format(CultureInfo.InvariantCulture, scaled, x);
            string Positive(string x) => s == 1 ? $"({x})² + 0.5" : $"({Num(s)}·{x})² + 0.5";
            Tensor Pos(Tensor x) => ((x * s) * (x * s)) + 0.5;

            switch (kind)
            {
                case 0:
                    return new(x => $"Exp({Scaled(x)})", (x, _) => (x * s).Exp());
                case 1:
                    return new(x => $"Log({Positive(x)})", (x, _) => Pos(x).Log());
                case 2:
                    return new(x => $"Sqrt({Positive(x)})", (x, _) => Pos(x).Sqrt());
                case 3:
                    return new(x => $"Tanh({x})", (x, _) => x.Tanh(), _ => max > 4);
                case 4:
                    return new(x => $"Sigmoid({x})", (x, _) => x.Sigmoid(), _ => max > 7);
                case 5:
                    return new(x => $"Erf({Scaled(x)})", (x, _) => (x * s).Erf());
                case 6:
                    {
                        double[] powers = [2, 3, 0.5, -1.5];
                        var p = powers[a % 4];
                        return p is 2 or 3
                            ? new(x => $"Pow({Scaled(x)}, {Num(p)})", (x, _) => (x * s).Pow(p))
                            : new(x => $"Pow({Positive(x)}, {Num(p)})", (x, _) => Pos(x).Pow(p));
                    }

                case 7:
                    {
                        var c = 0.5 + (b / 4.0);
                        return (a % 4) switch
                        {
                            0 => new(x => $"{x} * {Num(c)}", (x, _) => x * c),
                            1 => new(x => $"{x} + {Num(c)}", (x, _) => x + c),
                            2 => new(x => $"{Num(c)} - {x}", (x, _) => c - x),
                            _ => new(x => $"{x} / {Num(c)}", (x, _) => x / c),
                        };
                    }

                case 8:
                    {
                        // A new leaf whose shape broadcasts against the current one: some leading dims dropped, some set to 1.
                        var drop = rank == 0 ? 0 : b % (rank + 1);
                        var other = shape[drop..].Select((d, i) => ((a >> 2) & (1 << i)) != 0 ? 1 : d).ToArray();
                        var leaf = AddLeaf(other, 1.0);
                        var name = $"x{leaf}{ShapeText(other)}";
                        return (a % 4) switch
                        {
                            0 => new(x => $"{x} + {name}", (x, l) => x + l[leaf]),
                            1 => new(x => $"{x} - {name}", (x, l) => x - l[leaf]),
                            2 => new(x => $"{x} * {name}", (x, l) => x * l[leaf]),
                            _ => new(x => $"{x} / ({name}² + 0.5)", (x, l) => x / ((l[leaf] * l[leaf]) + 0.5)),
                        };
                    }

                case 9:
                    {
                        if (rank == 0)
                        {
                            return new(x => $"Tanh({x})", (x, _) => x.Tanh(), _ => max > 4);
                        }

                        var dim = b % rank;
                        var keep = a % 2 == 0;
                        var k = keep ? ", keepDim" : string.Empty;
                        return (a / 2) % 2 == 0
                            ? new(x => $"Sum({x}, dim {dim}{k})", (x, _) => x.Sum(dim, keep))
                            : new(x => $"Mean({x}, dim {dim}{k})", (x, _) => x.Mean(dim, keep));
                    }

                case 10:
                    {
                        if (rank == 0)
                        {
                            return new(x => $"Sigmoid({x})", (x, _) => x.Sigmoid(), _ => max > 7);
                        }

                        var dim = b % rank;
                        var keep = b % 2 == 0;
                        var k = keep ? ", keepDim" : string.Empty;
                        Func<Tensor, bool> saturates = x => (x.Max() - x.Min()).Item() > 7;
                        return (a % 6) switch
                        {
                            0 => new(x => $"Softmax({x}, {dim})", (x, _) => x.Softmax(dim), saturates),
                            1 => new(x => $"SoftmaxComposed({x}, {dim})", (x, _) => x.SoftmaxComposed(dim), saturates),
                            2 => new(x => $"LogSoftmax({x}, {dim})", (x, _) => x.LogSoftmax(dim), saturates),
                            3 => new(x => $"LogSoftmaxComposed({x}, {dim})", (x, _) => x.LogSoftmaxComposed(dim), saturates),
                            4 => new(x => $"LogSumExp({x}, {dim}{k})", (x, _) => x.LogSumExp(dim, keep), saturates),
                            _ => new(x => $"LogSumExpComposed({x}, {dim}{k})", (x, _) => x.LogSumExpComposed(dim, keep), saturates),
                        };
                    }

                case 11:
                    {
                        if (rank == 0)
                        {
                            return new(x => $"Erf({Scaled(x)})", (x, _) => (x * s).Erf());
                        }

                        var columns = 1 + (b % 3);
                        var w = AddLeaf([shape[^1], columns], 0.8);
                        var name = $"x{w}[{shape[^1]},{columns}]";
                        return new(x => $"MatMul({x}, {name})", (x, l) => x.MatMul(l[w]));
                    }

                case 12:
                    {
                        if (rank >= 2 && a % 2 == 0)
                        {
                            return new(x => $"Transpose({x}, {rank - 2}, {rank - 1})", (x, _) => x.Transpose(rank - 2, rank - 1));
                        }

                        if (rank == 1 && n % 2 == 0 && n > 2)
                        {
                            return new(x => $"Reshape({x}, [2,{n / 2}])", (x, _) => x.Reshape(2, n / 2));
                        }

                        return new(x => $"Reshape({x}, [-1])", (x, _) => x.Reshape(-1));
                    }

                case 13:
                    {
                        if (rank == 0)
                        {
                            return new(x => $"-{x}", (x, _) => -x);
                        }

                        var dim = b % rank;
                        var size = shape[dim];
                        if (a % 2 == 0)
                        {
                            // Indices with repeats, so gradients add up.
                            var count = 1 + (a / 2 % 3);
                            var index = Enumerable.Range(0, count).Select(i => (long)((b + (i * (a + 1))) % size)).ToArray();
                            return new(x => $"IndexSelect({x}, {dim}, [{string.Join(',', index)}])", (x, _) => x.IndexSelect(dim, Tensor.FromArray(index, index.Length)));
                        }

                        var start = a / 2 % size;
                        var length = 1 + (b % (size - start));
                        return new(x => $"Narrow({x}, {dim}, {start}, {length})", (x, _) => x.Narrow(dim, start, length));
                    }

                case 14:
                    {
                        // A constant mask: where is then smooth in both branches.
                        var mask = Enumerable.Range(0, n).Select(_ => _random.Next(2) * 1.0).ToArray();
                        var c = Num(0.5 + (b / 4.0));
                        return new(
                            x => $"Where(mask{ShapeText(shape)}, {x}, {c}·Tanh({x}))",
                            (x, _) => Tensor.Where(Tensor.FromArray(mask, shape).To(x.DType), x, (0.5 + (b / 4.0)) * x.Tanh()),
                            _ => max > 4);
                    }

                case 15:
                    {
                        if (n * 2 > MaxElements)
                        {
                            return new(x => $"Tanh({x})", (x, _) => x.Tanh(), _ => max > 4);
                        }

                        int[] expanded = [2, .. shape];
                        return new(x => $"Expand(Unsqueeze({x}, 0), {ShapeText(expanded)})", (x, _) => x.Unsqueeze(0).Expand(expanded));
                    }

                default:
                    // The operand used twice: the gradients of both uses meet at one node.
                    return a % 2 == 0
                        ? new(x => $"{x} * Tanh({x})", (x, _) => x * x.Tanh(), _ => max > 4)
                        : new(x => $"Sigmoid({x}) + {x}", (x, _) => x.Sigmoid() + x, _ => max > 7);
            }
        }
    }
}
