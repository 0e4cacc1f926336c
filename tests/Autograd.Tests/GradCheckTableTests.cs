using System.Globalization;

namespace Autograd.Tests;

/// <summary>
/// Table-driven gradient checks: every differentiable operator is run through <see cref="GradCheck.Check(Func{Tensor[], Tensor}, Tensor[], double, double, double, bool?, int)"/>
/// and <see cref="GradCheck.GradGradCheck"/> over shapes with broadcasting, keepDim on and off, negative dims,
/// size-1 dims, rank-0 tensors and lengths that are not multiples of the vector width (1, 7, 8, 9, 6·512+7).
/// Zero-size shapes, the tie rule of Max/Min, and the checker's own ability to catch wrong gradients are tested
/// separately.
/// </summary>
public class GradCheckTableTests
{
    /// <summary>6·512 + 7: longer than any vector, and not a multiple of any vector width.</summary>
    private const int Long = (6 * 512) + 7;

    /// <summary>Produces a float64 input of a shape from a seed.</summary>
    public delegate Tensor Generator(Shape shape, int seed);

    /// <summary>One row of the table.</summary>
    /// <param name="Name">The unique test-case name.</param>
    /// <param name="F">The function under test.</param>
    /// <param name="Shapes">The shapes of its inputs.</param>
    /// <param name="Gens">One generator for every input, or one per input; standard normal when null.</param>
    /// <param name="SecondOrder">Whether GradGradCheck is run too.</param>
    /// <param name="Eps">The finite-difference step.</param>
    public sealed record OpSpec(string Name, Func<Tensor[], Tensor> F, Shape[] Shapes, Generator[]? Gens = null, bool SecondOrder = true, double Eps = 1e-6)
    {
        /// <summary>Fresh float64 leaves that require grad, seeded per input.</summary>
        public Tensor[] MakeInputs()
        {
            var inputs = new Tensor[Shapes.Length];
            for (var i = 0; i < Shapes.Length; i++)
            {
                var gen = Gens is null ? Normal : Gens.Length == 1 ? Gens[0] : Gens[i];
                inputs[i] = gen(Shapes[i], 1000 + (17 * i) + Name.Length).WithRequiresGrad();
            }

            return inputs;
        }

        /// <inheritdoc />
        public override string ToString() => Name;
    }

    // ---------------------------------------------------------------- generators

    private static Tensor Normal(Shape shape, int seed) => Tensor.RandN(shape, seed);

    /// <summary>Uniform in [0.5, 2): for Log, Sqrt, fractional powers and denominators.</summary>
    private static Tensor Positive(Shape shape, int seed) => Tensor.Rand(shape, seed, low: 0.5, high: 2.0);

    /// <summary>|x| in [0.25, 2) with a random sign: away from the kinks of Abs and Relu.</summary>
    private static Tensor AwayFromZero(Shape shape, int seed)
    {
        var mag = Tensor.Rand(shape, seed, low: 0.25, high: 2.0).ToArray();
        var sign = Tensor.Rand(shape, seed + 1).ToArray();
        for (var i = 0; i < mag.Length; i++)
        {
            mag[i] = sign[i] < 0.5 ? -mag[i] : mag[i];
        }

        return Tensor.FromArray(mag, shape.ToArray());
    }

    /// <summary>A random permutation of evenly spaced values (spacing 0.1): no ties, so Max/Min are differentiable.</summary>
    private static Tensor Distinct(Shape shape, int seed)
    {
        var keys = Tensor.Rand(shape, seed).ToArray();
        var order = Enumerable.Range(0, keys.Length).OrderBy(i => keys[i]).ToArray();
        var values = new double[keys.Length];
        for (var rank = 0; rank < order.Length; rank++)
        {
            values[order[rank]] = (rank - (keys.Length / 2.0)) * 0.1;
        }

        return Tensor.FromArray(values, shape.ToArray());
    }

    private static Shape S(params int[] dims) => new(dims);

    private static OpSpec Op(string name, Func<Tensor[], Tensor> f, Shape[] shapes, Generator? gen = null, bool secondOrder = true, double eps = 1e-6)
        => new(name, f, shapes, gen is null ? null : [gen], secondOrder, eps);

    // ---------------------------------------------------------------- the table

    private static readonly int[] Lengths = [1, 7, 8, 9, Long];

    private static readonly Dictionary<string, OpSpec> Table = BuildTable().ToDictionary(s => s.Name);

    private static IEnumerable<OpSpec> BuildTable()
    {
        // Binary elementwise with broadcasting (both sides, rank-0, size-1 dims, new leading dims).
        var binary = new (string Name, Func<Tensor, Tensor, Tensor> F, Generator? Rhs)[]
        {
            ("Add", (a, b) => a.Add(b), null),
            ("Sub", (a, b) => a.Sub(b), null),
            ("Mul", (a, b) => a.Mul(b), null),
            ("Div", (a, b) => a.Div(b), Positive),
        };
        var binaryShapes = new (string Tag, Shape A, Shape B)[]
        {
            ("same[7]", S(7), S(7)),
            ("same[2,3]", S(2, 3), S(2, 3)),
            ("[2,3,4]x[3,1]", S(2, 3, 4), S(3, 1)),
            ("[3]x[4,1]", S(3), S(4, 1)),
            ("[4,1]x[1,5]", S(4, 1), S(1, 5)),
            ("[9]x[]", S(9), S()),
            ("[]x[2,2]", S(), S(2, 2)),
            ("[1]x[8]", S(1), S(8)),
            ("[2,1,3]x[1,1,1]", S(2, 1, 3), S(1, 1, 1)),
            ($"[{Long}]x[1]", S(Long), S(1)),
            ($"same[{Long}]", S(Long), S(Long)),
        };
        foreach (var (name, f, rhs) in binary)
        {
            foreach (var (tag, sa, sb) in binaryShapes)
            {
                var gens = rhs is null ? null : new Generator[] { Normal, rhs };
                yield return new OpSpec($"{name} {tag}", t => f(t[0], t[1]), [sa, sb], gens, SecondOrder: sa.ElementCount + sb.ElementCount < 1000);
            }
        }

        // Broadcast runs of the long length on either side (the strided kernel's vectorised inner loops).
        yield return Op($"Mul [2,{Long}]x[2,1]", t => t[0] * t[1], [S(2, Long), S(2, 1)], secondOrder: false);
        yield return new OpSpec($"Div [2,1]x[2,{Long}]", t => t[0] / t[1], [S(2, 1), S(2, Long)], [Normal, Positive], SecondOrder: false);

        yield return Op("operator+ tensor", t => t[0] + t[1], [S(2, 3), S(3)]);
        yield return Op("operator- tensor", t => t[0] - t[1], [S(2, 3), S(2, 1)]);
        yield return Op("operator* tensor", t => t[0] * t[1], [S(3), S(2, 3)]);
        yield return new OpSpec("operator/ tensor", t => t[0] / t[1], [S(2, 3), S(3)], [Normal, Positive]);

        // Scalar overloads on either side.
        yield return Op("x + 2.0", t => t[0] + 2.0, [S(7)]);
        yield return Op("2.0 + x", t => 2.0 + t[0], [S(7)]);
        yield return Op("x - 2.0", t => t[0] - 2.0, [S(8)]);
        yield return Op("1.0 - x", t => 1.0 - t[0], [S(8)]);
        yield return Op("2.0 * x", t => 2.0 * t[0], [S(9)]);
        yield return Op("x * 2.0", t => t[0] * 2.0, [S(9)]);
        yield return Op("x / 3.0", t => t[0] / 3.0, [S(2, 3)]);
        yield return Op("3.0 / x", t => 3.0 / t[0], [S(2, 3)], Positive);
        yield return Op("scalar ops on rank-0", t => (3.0 / ((2.0 * t[0]) + 4.0)) - 1.0, [S()], Positive);

        // Unary elementwise over every length.
        var unary = new (string Name, Func<Tensor, Tensor> F, Generator Gen)[]
        {
            ("-x", x => -x, Normal),
            ("Neg", x => x.Neg(), Normal),
            ("Exp", x => x.Exp(), Normal),
            ("Log", x => x.Log(), Positive),
            ("Pow(2)", x => x.Pow(2.0), Normal),
            ("Pow(3)", x => x.Pow(3.0), Normal),
            ("Pow(0.5)", x => x.Pow(0.5), Positive),
            ("Pow(-1.5)", x => x.Pow(-1.5), Positive),
            ("Pow(1)", x => x.Pow(1.0), Normal),
            ("Pow(0)", x => x.Pow(0.0), Normal),
            ("Sqrt", x => x.Sqrt(), Positive),
            ("Abs", x => x.Abs(), AwayFromZero),
            ("Tanh", x => x.Tanh(), Normal),
            ("Sigmoid", x => x.Sigmoid(), Normal),
            ("Relu", x => x.Relu(), AwayFromZero),
        };
        foreach (var (name, f, gen) in unary)
        {
            foreach (var n in Lengths)
            {
                // At the long length the first order is checked for every kernel (the exponents share one Pow kernel,
                // so two of them suffice); second order there only once, the small lengths cover the rules.
                if (n == Long && name is "-x" or "Pow(1)" or "Pow(0)" or "Pow(2)" or "Pow(-1.5)")
                {
                    continue;
                }

                yield return Op($"{name} [{n}]", t => f(t[0]), [S(n)], gen, secondOrder: n < Long);
            }

            yield return Op($"{name} []", t => f(t[0]), [S()], gen);
            yield return Op($"{name} [2,1,3]", t => f(t[0]), [S(2, 1, 3)], gen);
        }

        // dtype conversion: float64 → float32 → float64 is exact up to float32 rounding, so a larger step is used
        // (the rounding error of about 1e-7 divided by 2·1e-3 stays far inside the tolerance).
        yield return Op("To(Float32).To(Float64) [7]", t => t[0].To(DType.Float32).To(DType.Float64), [S(7)], eps: 1e-3);
        yield return Op("To(Float32).Exp().To(Float64) [9]", t => (t[0].To(DType.Float32).Exp() * 2.0).To(DType.Float64), [S(9)], eps: 1e-3);
        yield return Op("To(Float32) float32 output [8]", t => t[0].To(DType.Float32) * 2.0, [S(8)], secondOrder: false, eps: 1e-3);
        yield return Op("To(Float64) identity then Exp [8]", t => t[0].To(DType.Float64).Exp(), [S(8)]);

        // Reductions: all elements, one dim, several dims, keepDim on and off, negative dims, size-1 dims.
        var reductions = new (string Name, Func<Tensor, Tensor> All, Func<Tensor, int, bool, Tensor> Dim, Func<Tensor, int[], bool, Tensor> Dims, Generator Gen)[]
        {
            ("Sum", x => x.Sum(), (x, d, k) => x.Sum(d, k), (x, d, k) => x.Sum(d, k), Normal),
            ("Mean", x => x.Mean(), (x, d, k) => x.Mean(d, k), (x, d, k) => x.Mean(d, k), Normal),
            ("Max", x => x.Max(), (x, d, k) => x.Max(d, k), (x, d, k) => x.Max(d, k), Distinct),
            ("Min", x => x.Min(), (x, d, k) => x.Min(d, k), (x, d, k) => x.Min(d, k), Distinct),
        };
        foreach (var (name, all, dim, dims, gen) in reductions)
        {
            yield return Op($"{name}() [2,3,4]", t => all(t[0]), [S(2, 3, 4)], gen);
            yield return Op($"{name}() []", t => all(t[0]), [S()], gen);
            foreach (var n in Lengths)
            {
                yield return Op($"{name}() [{n}]", t => all(t[0]), [S(n)], gen, secondOrder: n < Long);
            }

            foreach (var keep in new[] { false, true })
            {
                foreach (var d in new[] { 0, 1, 2, -1, -2, -3 })
                {
                    yield return Op($"{name}({d}, keepDim: {keep}) [2,3,4]", t => dim(t[0], d, keep), [S(2, 3, 4)], gen);
                }

                yield return Op($"{name}([0, 2], keepDim: {keep}) [2,3,4]", t => dims(t[0], [0, 2], keep), [S(2, 3, 4)], gen);
                yield return Op($"{name}([-1, -2], keepDim: {keep}) [2,3,4]", t => dims(t[0], [-1, -2], keep), [S(2, 3, 4)], gen);
                yield return Op($"{name}([2, 0, 1], keepDim: {keep}) [2,3,4]", t => dims(t[0], [2, 0, 1], keep), [S(2, 3, 4)], gen);
                yield return Op($"{name}([], keepDim: {keep}) [3,2]", t => dims(t[0], [], keep), [S(3, 2)], gen);
                yield return Op($"{name}(1, keepDim: {keep}) [3,1,4]", t => dim(t[0], 1, keep), [S(3, 1, 4)], gen);
                yield return Op($"{name}(0, keepDim: {keep}) []", t => dim(t[0], 0, keep), [S()], gen);
                yield return Op($"{name}(-1, keepDim: {keep}) [2,{Long}]", t => dim(t[0], -1, keep), [S(2, Long)], gen, secondOrder: false);
                if (!keep)
                {
                    yield return Op($"{name}(0) [2,{Long}]", t => dim(t[0], 0, false), [S(2, Long)], gen, secondOrder: false);
                }

                yield return Op($"{name}(0, keepDim: {keep}) [9,7]", t => dim(t[0], 0, keep), [S(9, 7)], gen);
                yield return Op($"{name}(-2, keepDim: {keep}) [3,9,8]", t => dim(t[0], -2, keep), [S(3, 9, 8)], gen, secondOrder: false);
            }
        }

        yield return Op("SumTo [2,3,4]->[3,1]", t => t[0].SumTo(S(3, 1)), [S(2, 3, 4)]);
        yield return Op("SumTo [2,3,4]->[4]", t => t[0].SumTo(S(4)), [S(2, 3, 4)]);
        yield return Op("SumTo [2,3,4]->[1,3,1]", t => t[0].SumTo(S(1, 3, 1)), [S(2, 3, 4)]);
        yield return Op("SumTo [2,3,4]->[2,1,4]", t => t[0].SumTo(S(2, 1, 4)), [S(2, 3, 4)]);
        yield return Op("SumTo [2,3]->[]", t => t[0].SumTo(S()), [S(2, 3)]);
        yield return Op("SumTo [2,3]->[2,3] (identity)", t => t[0].SumTo(S(2, 3)) * 1.0, [S(2, 3)]);
        yield return Op($"SumTo [2,{Long}]->[1,{Long}]", t => t[0].SumTo(S(1, Long)), [S(2, Long)], secondOrder: false);

        // Movement.
        yield return Op("Reshape(4,-1) [2,3,4]", t => t[0].Reshape(4, -1), [S(2, 3, 4)]);
        yield return Op("Reshape() [1,1]", t => t[0].Reshape(), [S(1, 1)]);
        yield return Op("Reshape(-1) []", t => t[0].Reshape(-1), [S()]);
        yield return Op("View(6,4) [2,3,4]", t => t[0].View(6, 4), [S(2, 3, 4)]);
        yield return Op("View(1,-1,1) [9]", t => t[0].View(1, -1, 1), [S(9)]);
        yield return Op("Flatten() [2,3,4]", t => t[0].Flatten(), [S(2, 3, 4)]);
        yield return Op("Flatten(1) [2,3,4]", t => t[0].Flatten(1), [S(2, 3, 4)]);
        yield return Op("Flatten(0,-2) [2,3,4]", t => t[0].Flatten(0, -2), [S(2, 3, 4)]);
        yield return Op("Flatten() []", t => t[0].Flatten(), [S()]);
        yield return Op("Squeeze() [2,1,3,1]", t => t[0].Squeeze(), [S(2, 1, 3, 1)]);
        yield return Op("Squeeze(1) [2,1,3,1]", t => t[0].Squeeze(1), [S(2, 1, 3, 1)]);
        yield return Op("Squeeze(-1) [2,1,3,1]", t => t[0].Squeeze(-1), [S(2, 1, 3, 1)]);
        yield return Op("Squeeze(0) [2,1,3] (no-op)", t => t[0].Squeeze(0), [S(2, 1, 3)]);
        yield return Op("Squeeze() [1,1]", t => t[0].Squeeze(), [S(1, 1)]);
        yield return Op("Unsqueeze(0) [2,3]", t => t[0].Unsqueeze(0), [S(2, 3)]);
        yield return Op("Unsqueeze(1) [2,3]", t => t[0].Unsqueeze(1), [S(2, 3)]);
        yield return Op("Unsqueeze(-1) [2,3]", t => t[0].Unsqueeze(-1), [S(2, 3)]);
        yield return Op("Unsqueeze(-3) [2,3]", t => t[0].Unsqueeze(-3), [S(2, 3)]);
        yield return Op("Unsqueeze(0) []", t => t[0].Unsqueeze(0), [S()]);
        yield return Op("Transpose(0,2) [2,3,4]", t => t[0].Transpose(0, 2), [S(2, 3, 4)]);
        yield return Op("Transpose(-1,-2) [2,3,4]", t => t[0].Transpose(-1, -2), [S(2, 3, 4)]);
        yield return Op("Transpose(0,0) [2,3]", t => t[0].Transpose(0, 0), [S(2, 3)]);
        yield return Op("Transpose(0,-1) [7]", t => t[0].Transpose(0, -1), [S(7)]);
        yield return Op("Permute(2,0,1) [2,3,4]", t => t[0].Permute(2, 0, 1), [S(2, 3, 4)]);
        yield return Op("Permute(-1,0,-2) [2,3,4]", t => t[0].Permute(-1, 0, -2), [S(2, 3, 4)]);
        yield return Op("Permute(1,0,2) [3,1,2]", t => t[0].Permute(1, 0, 2), [S(3, 1, 2)]);
        yield return Op("Permute(1,0) [9,8]", t => t[0].Permute(1, 0), [S(9, 8)], secondOrder: false);
        yield return Op("T [3,5]", t => t[0].T, [S(3, 5)]);
        yield return Op("T [1,7]", t => t[0].T, [S(1, 7)]);
        yield return Op("T [7] (identity)", t => t[0].T, [S(7)]);
        yield return Op("Expand(2,3,4) [3,1]", t => t[0].Expand(2, 3, 4), [S(3, 1)]);
        yield return Op("Expand(-1,5) [3,1]", t => t[0].Expand(-1, 5), [S(3, 1)]);
        yield return Op("Expand(4,3) []", t => t[0].Expand(4, 3), [S()]);
        yield return Op("Expand(2,1,3) [1,1,3]", t => t[0].Expand(2, 1, 3), [S(1, 1, 3)]);
        yield return Op($"Expand(2,{Long}) [1]", t => t[0].Expand(2, Long), [S(1)], secondOrder: false);
        yield return Op("BroadcastTo(3,4) [4]", t => t[0].BroadcastTo(3, 4), [S(4)]);
        yield return Op("BroadcastTo(2,9,7) [9,1]", t => t[0].BroadcastTo(2, 9, 7), [S(9, 1)]);

        // Matrix product: 2-D, batched with broadcast batch dims, 1-D on either side, size-1 and vector-width sizes.
        var matmul = new (Shape A, Shape B)[]
        {
            (S(3, 4), S(4, 5)),
            (S(1, 1), S(1, 1)),
            (S(3, 1), S(1, 4)),
            (S(2, 3), S(3, 1)),
            (S(2, 3), S(3, 7)),
            (S(2, 3), S(3, 8)),
            (S(2, 3), S(3, 9)),
            (S(1, 9), S(9, 2)),
            (S(2, 3, 4), S(4, 2)),
            (S(3, 4), S(2, 4, 2)),
            (S(2, 3, 4), S(2, 4, 5)),
            (S(2, 1, 3, 4), S(5, 4, 2)),
            (S(1, 2, 3), S(4, 1, 3, 2)),
            (S(4), S(4)),
            (S(1), S(1)),
            (S(4), S(4, 3)),
            (S(3, 4), S(4)),
            (S(4), S(2, 4, 3)),
            (S(2, 3, 4), S(4)),
            (S(1, 2), S(2, Long)),
        };
        foreach (var (sa, sb) in matmul)
        {
            yield return Op($"MatMul {sa}x{sb}", t => t[0].MatMul(t[1]), [sa, sb], secondOrder: sb.ElementCount < 1000);
        }

        // Softmax family, fused and composed, over any dim.
        var softmax = new (string Name, Func<Tensor, int, Tensor> F)[]
        {
            ("Softmax", (x, d) => x.Softmax(d)),
            ("LogSoftmax", (x, d) => x.LogSoftmax(d)),
            ("SoftmaxComposed", (x, d) => x.SoftmaxComposed(d)),
            ("LogSoftmaxComposed", (x, d) => x.LogSoftmaxComposed(d)),
            ("LogSumExp", (x, d) => x.LogSumExp(d)),
            ("LogSumExp keepDim", (x, d) => x.LogSumExp(d, keepDim: true)),
            ("LogSumExpComposed", (x, d) => x.LogSumExpComposed(d)),
            ("LogSumExpComposed keepDim", (x, d) => x.LogSumExpComposed(d, keepDim: true)),
        };
        var softmaxShapes = new (Shape Shape, int Dim)[]
        {
            (S(3, 5), 1),
            (S(3, 5), 0),
            (S(3, 5), -1),
            (S(3, 5), -2),
            (S(2, 3, 4), 1),
            (S(2, 3, 4), -3),
            (S(2, 1, 3), 1),
            (S(1), 0),
            (S(7), 0),
            (S(8), -1),
            (S(9), 0),
            (S(), 0),
            (S(), -1),
        };
        foreach (var (name, f) in softmax)
        {
            foreach (var (shape, d) in softmaxShapes)
            {
                yield return Op($"{name}({d}) {shape}", t => f(t[0], d), [shape]);
            }

            // Long rows: the contiguous kernels (inner = 1) and the strided ones (a long inner run). The composed forms
            // are built from kernels checked at the long length above, so one long shape suffices for them; second
            // order at the long length is checked for the fused softmax and log-softmax, whose backward is a kernel too.
            var composed = name.Contains("Composed", StringComparison.Ordinal);
            yield return Op($"{name}(0) [{Long}]", t => f(t[0], 0), [S(Long)], secondOrder: name is "Softmax" or "LogSoftmax");
            if (!composed)
            {
                yield return Op($"{name}(0) [2,{Long}]", t => f(t[0], 0), [S(2, Long)], secondOrder: false);
            }
        }

        // The fused backward operators, differentiable in both the gradient and the output.
        var fusedBackward = new (string Name, Func<Tensor, Tensor, int, Tensor> F)[]
        {
            ("SoftmaxBackward", Tensor.SoftmaxBackward),
            ("LogSoftmaxBackward", Tensor.LogSoftmaxBackward),
        };
        var fusedShapes = new (Shape Shape, int Dim)[]
        {
            (S(3, 5), 1),
            (S(3, 5), 0),
            (S(2, 3, 4), 1),
            (S(2, 3, 4), -1),
            (S(2, 1, 3), -2),
            (S(9), 0),
            (S(), 0),
            (S(Long), 0),
        };
        foreach (var (name, f) in fusedBackward)
        {
            foreach (var (shape, d) in fusedShapes)
            {
                yield return Op($"{name}(g, y, {d}) {shape}", t => f(t[0], t[1], d), [shape, shape], secondOrder: shape.ElementCount < 1000);
            }

            // y a real softmax / log-softmax output, as in use.
            yield return Op($"{name}(g, y(x), 1) of x [3,5]", t => f(t[0], name == "SoftmaxBackward" ? t[1].Softmax(1) : t[1].LogSoftmax(1), 1), [S(3, 5), S(3, 5)]);
        }

        // Compositions: an input used twice (gradients summed by the engine), a small layer with a loss.
        yield return Op("x used twice: x*x + Exp(x)", t => (t[0] * t[0]) + t[0].Exp(), [S(7)]);
        yield return Op("layer: Mean(LogSoftmax(Tanh(x·W + b)))", t => (t[0].MatMul(t[1]) + t[2]).Tanh().LogSoftmax(-1).Mean(), [S(4, 3), S(3, 5), S(5)]);
        yield return Op("attention-like: Softmax(q·kᵀ/2)·v", t => (t[0].MatMul(t[1].Transpose(-1, -2)) / 2.0).Softmax(-1).MatMul(t[2]), [S(2, 3, 4), S(2, 5, 4), S(2, 5, 2)]);
        yield return Op("normalise: (x - Mean) / Sqrt(Var + 1)", t =>
        {
            var c = t[0] - t[0].Mean(-1, keepDim: true);
            return c / ((c * c).Mean(-1, keepDim: true) + 1.0).Sqrt();
        }, [S(3, 9)]);
    }

    /// <summary>Every row of the table, by name.</summary>
    public static TheoryData<string> FirstOrderCases => [.. Table.Keys];

    /// <summary>The rows whose second derivatives are checked too.</summary>
    public static TheoryData<string> SecondOrderCases => [.. Table.Values.Where(s => s.SecondOrder).Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(FirstOrderCases))]
    public void GradCheckPasses(string name)
    {
        var spec = Table[name];
        var result = GradCheck.Check(spec.F, spec.MakeInputs(), eps: spec.Eps);
        Assert.True(result.Passed, $"{name}: {result.Message}");
    }

    [Theory]
    [MemberData(nameof(SecondOrderCases))]
    public void GradGradCheckPasses(string name)
    {
        var spec = Table[name];
        var result = GradCheck.GradGradCheck(x => [spec.F(x)], spec.MakeInputs(), eps: spec.Eps);
        Assert.True(result.Passed, $"{name}: {result.Message}");
    }

    [Fact]
    public void TableCoversTheRequiredLengths()
    {
        foreach (var n in Lengths)
        {
            Assert.Contains(Table.Values, s => s.Shapes.Any(shape => shape.Dims.Contains(n)));
        }

        Assert.Contains(Table.Values, s => s.Shapes.Any(shape => shape.Rank == 0));
        Assert.True(Table.Count > 400, $"only {Table.Count} cases");
    }

    [Fact]
    public void LongInputsAreCheckedByProjectionAndShortOnesByFullJacobian()
    {
        var big = Tensor.RandN(S(Long), 1).WithRequiresGrad();
        var r = GradCheck.Check(t => t[0].Tanh(), [big]);
        Assert.True(r.Passed, r.Message);
        Assert.Contains("projection", r.Message, StringComparison.Ordinal);

        var small = Tensor.RandN(S(9), 1).WithRequiresGrad();
        r = GradCheck.Check(t => t[0].Tanh(), [small]);
        Assert.True(r.Passed, r.Message);
        Assert.Contains("full Jacobian 9×9", r.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MultiOutputFunctionsAreCheckedToFirstAndSecondOrder()
    {
        // Several outputs of different shapes sharing one input, plus an output that needs no gradient at all.
        Tensor[] F(Tensor[] t) =>
        [
            t[0].Softmax(-1),
            t[0].LogSumExp(0, keepDim: true),
            (t[0] * t[1]).Sum(1),
            Tensor.Ones(2),
        ];

        Tensor[] Inputs() => [Tensor.RandN(S(3, 4), 11).WithRequiresGrad(), Tensor.RandN(S(4), 12).WithRequiresGrad()];

        var first = GradCheck.Check(F, Inputs());
        Assert.True(first.Passed, first.Message);
        var second = GradCheck.GradGradCheck(F, Inputs());
        Assert.True(second.Passed, second.Message);
    }

    [Fact]
    public void AbsAndReluHaveAZeroGradientAtTheKink()
    {
        // Not checkable by finite differences (not differentiable there); the convention is PyTorch's.
        var x = Tensor.From(-2.0, 0.0, 3.0).WithRequiresGrad();
        (x.Abs() + x.Relu()).Sum().Backward();
        AssertGrad([-1, 0, 2], x);
    }

    // ---------------------------------------------------------------- dtype conversion

    [Fact]
    public void ToSameDTypeIsTheIdentity()
    {
        var x = Tensor.RandN(S(3), 2).WithRequiresGrad();
        Assert.Same(x, x.To(DType.Float64));
        var x32 = Tensor.RandN(S(3), 2, DType.Float32).WithRequiresGrad();
        Assert.Same(x32, x32.To(DType.Float32));
    }

    [Fact]
    public void GradientOfAConversionHasTheDTypeOfTheInput()
    {
        var x = Tensor.RandN(S(7), 3).WithRequiresGrad();
        var y = x.To(DType.Float32);
        Assert.Equal(DType.Float32, y.DType);
        Assert.Equal("To", y.OpName);
        (y * 3.0).Sum().Backward();
        Assert.Equal(DType.Float64, x.Grad!.DType);
        Assert.Equal(Enumerable.Repeat(3.0, 7), x.Grad.ToArray());

        var x32 = Tensor.RandN(S(2, 3), 4, DType.Float32).WithRequiresGrad();
        x32.To(DType.Float64).Exp().Sum().Backward();
        Assert.Equal(DType.Float32, x32.Grad!.DType);
        Assert.Equal(S(2, 3), x32.Grad.Shape);
        var expected = x32.ToArray().Select(v => Math.Exp(v)).ToArray();
        var actual = x32.Grad.ToArray();
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-6 * expected[i]);
        }
    }

    // ---------------------------------------------------------------- ties of Max and Min

    private static void AssertGrad(double[] expected, Tensor x)
    {
        Assert.NotNull(x.Grad);
        Assert.Equal(x.Shape, x.Grad.Shape);
        var actual = x.Grad.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            if (!(Math.Abs(expected[i] - actual[i]) < 1e-12))
            {
                Assert.Fail($"element {i}: expected {expected[i]}, got {actual[i]} (all: {string.Join(", ", actual)})");
            }
        }
    }

    [Fact]
    public void MaxOverAllSplitsTheGradientAmongTies()
    {
        var x = Tensor.From(1.0, 3.0, 3.0).WithRequiresGrad();
        var y = x.Max();
        Assert.Equal(3.0, y.Item());
        y.Backward();
        AssertGrad([0, 0.5, 0.5], x);
    }

    [Fact]
    public void MinOverAllSplitsTheGradientAmongTies()
    {
        var x = Tensor.From(2.0, 1.0, 1.0, 1.0).WithRequiresGrad();
        var y = x.Min();
        Assert.Equal(1.0, y.Item());
        (y * 3.0).Backward();
        AssertGrad([0, 1, 1, 1], x);
    }

    [Fact]
    public void MaxOverAllOfEqualElementsSplitsEvenlyOverEveryElement()
    {
        var x = Tensor.Full(S(Long), 2.5).WithRequiresGrad();
        x.Max().Backward();
        AssertGrad(Enumerable.Repeat(1.0 / Long, Long).ToArray(), x);

        var m = Tensor.Full(S(2, 2), -1.0).WithRequiresGrad();
        m.Min([0, 1]).Backward();
        AssertGrad([0.25, 0.25, 0.25, 0.25], m);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverADimSplitsTheGradientAmongTiesPerRow(bool keepDim)
    {
        var x = Tensor.From(new double[,] { { 1, 3, 3 }, { 2, 2, 0 }, { 5, 4, 4 } }).WithRequiresGrad();
        var y = x.Max(1, keepDim);
        Assert.Equal(keepDim ? S(3, 1) : S(3), y.Shape);
        Assert.Equal([3.0, 2.0, 5.0], y.ToArray());
        var g = Tensor.FromArray([1.0, 2.0, 4.0], y.Shape.ToArray());
        y.Backward(g);
        AssertGrad([0, 0.5, 0.5, 1, 1, 0, 4, 0, 0], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverTheLeadingDimSplitsTheGradientAmongTiesPerColumn(bool keepDim)
    {
        // Reducing dim 0 runs the strided (inner > 1) path.
        var x = Tensor.From(new double[,] { { 1, 5, 7 }, { 1, 2, 7 }, { 0, 5, 7 } }).WithRequiresGrad();
        var y = x.Max(-2, keepDim);
        Assert.Equal(keepDim ? S(1, 3) : S(3), y.Shape);
        Assert.Equal([1.0, 5.0, 7.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0.5, 0.5, third, 0.5, 0, third, 0, 0.5, third], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MinOverADimSplitsTheGradientAmongTies(bool keepDim)
    {
        var x = Tensor.From(new double[,] { { 4, -1, -1, 0 }, { 2, 2, 2, 3 } }).WithRequiresGrad();
        var y = x.Min(-1, keepDim);
        Assert.Equal([-1.0, 2.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0, 0.5, 0.5, 0, third, third, third, 0], x);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MaxOverSeveralDimsSplitsTheGradientAmongTies(bool keepDim)
    {
        // [2, 2, 2]: reduce dims 0 and 2; for each j the maximum over the four elements x[:, j, :].
        var x = Tensor.FromArray([9.0, 1, 3, 3, 9, 0, 3, 2], 2, 2, 2).WithRequiresGrad();
        var y = x.Max([0, -1], keepDim);
        Assert.Equal(keepDim ? S(1, 2, 1) : S(2), y.Shape);
        Assert.Equal([9.0, 3.0], y.ToArray());
        y.Sum().Backward();
        var third = 1.0 / 3;
        AssertGrad([0.5, 0, third, third, 0.5, 0, third, 0], x);
    }

    [Fact]
    public void TieRuleHoldsForSecondOrderToo()
    {
        // The gradient of Max is g / count ⊙ mask, linear in g: differentiating ⟨∇x, v⟩ w.r.t. g gives v at the ties, split.
        var x = Tensor.From(1.0, 3.0, 3.0).WithRequiresGrad();
        var g = Tensor.Scalar(2.0).WithRequiresGrad();
        var y = x.Max();
        var dx = Autodiff.Grad(y, x, g, createGraph: true);
        AssertTensor([0, 1, 1], dx);
        var dg = Autodiff.Grad(dx, g, Tensor.From(1.0, 10.0, 100.0));
        Assert.Equal(55.0, dg.Item(), 12);
    }

    private static void AssertTensor(double[] expected, Tensor t)
    {
        var actual = t.ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-12, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    // ---------------------------------------------------------------- zero-size dims

    /// <summary>An operator on inputs with a zero-size dim: nothing to perturb, so the shapes are checked instead.</summary>
    /// <param name="Name">The test-case name.</param>
    /// <param name="F">The function.</param>
    /// <param name="Shapes">The input shapes.</param>
    /// <param name="Expected">The expected output shape.</param>
    public sealed record EmptySpec(string Name, Func<Tensor[], Tensor> F, Shape[] Shapes, Shape Expected);

    private static readonly Dictionary<string, EmptySpec> EmptyTable = BuildEmptyTable().ToDictionary(s => s.Name);

    private static IEnumerable<EmptySpec> BuildEmptyTable()
    {
        EmptySpec E(string name, Func<Tensor[], Tensor> f, Shape[] shapes, Shape expected) => new(name, f, shapes, expected);

        yield return E("Exp [0,3]", t => t[0].Exp(), [S(0, 3)], S(0, 3));
        yield return E("Tanh [0]", t => t[0].Tanh(), [S(0)], S(0));
        yield return E("Pow(2) [3,0]", t => t[0].Pow(2), [S(3, 0)], S(3, 0));
        yield return E("Add [0,3]+[3]", t => t[0] + t[1], [S(0, 3), S(3)], S(0, 3));
        yield return E("Mul [0,1]*[1,4]", t => t[0] * t[1], [S(0, 1), S(1, 4)], S(0, 4));
        yield return E("Div [2,0]/[]", t => t[0] / t[1], [S(2, 0), S()], S(2, 0));
        yield return E("x * 2.0 [0]", t => t[0] * 2.0, [S(0)], S(0));
        yield return E("Sum() [0,3]", t => t[0].Sum(), [S(0, 3)], S());
        yield return E("Sum(0) [0,3]", t => t[0].Sum(0), [S(0, 3)], S(3));
        yield return E("Sum(-2, keepDim) [0,3]", t => t[0].Sum(-2, keepDim: true), [S(0, 3)], S(1, 3));
        yield return E("Sum(1) [0,3]", t => t[0].Sum(1), [S(0, 3)], S(0));
        yield return E("Mean(1) [0,3]", t => t[0].Mean(1), [S(0, 3)], S(0));
        yield return E("Max(1) [0,3]", t => t[0].Max(1), [S(0, 3)], S(0));
        yield return E("Min(-1, keepDim) [0,3]", t => t[0].Min(-1, keepDim: true), [S(0, 3)], S(0, 1));
        yield return E("SumTo [0,3]->[3]", t => t[0].SumTo(S(3)), [S(0, 3)], S(3));
        yield return E("SumTo [0,3]->[1,3]", t => t[0].SumTo(S(1, 3)), [S(0, 3)], S(1, 3));
        yield return E("Reshape(3,0) [0,3]", t => t[0].Reshape(3, 0), [S(0, 3)], S(3, 0));
        yield return E("Flatten [2,0,3]", t => t[0].Flatten(), [S(2, 0, 3)], S(0));
        yield return E("Unsqueeze(1) [0,3]", t => t[0].Unsqueeze(1), [S(0, 3)], S(0, 1, 3));
        yield return E("Squeeze() [0,1]", t => t[0].Squeeze(), [S(0, 1)], S(0));
        yield return E("Transpose(0,1) [0,3]", t => t[0].Transpose(0, 1), [S(0, 3)], S(3, 0));
        yield return E("Permute(2,0,1) [2,0,3]", t => t[0].Permute(2, 0, 1), [S(2, 0, 3)], S(3, 2, 0));
        yield return E("Expand(0,4) [1,4]", t => t[0].Expand(0, 4), [S(1, 4)], S(0, 4));
        yield return E("Expand(2,0) [2,1]", t => t[0].Expand(2, 0), [S(2, 1)], S(2, 0));
        yield return E("MatMul [0,3]x[3,4]", t => t[0].MatMul(t[1]), [S(0, 3), S(3, 4)], S(0, 4));
        yield return E("MatMul [2,0]x[0,3]", t => t[0].MatMul(t[1]), [S(2, 0), S(0, 3)], S(2, 3));
        yield return E("MatMul [0,2,3]x[3,4]", t => t[0].MatMul(t[1]), [S(0, 2, 3), S(3, 4)], S(0, 2, 4));
        yield return E("MatMul [0]x[0]", t => t[0].MatMul(t[1]), [S(0), S(0)], S());
        yield return E("Softmax(1) [0,3]", t => t[0].Softmax(1), [S(0, 3)], S(0, 3));
        yield return E("Softmax(0) [0,3]", t => t[0].Softmax(0), [S(0, 3)], S(0, 3));
        yield return E("LogSoftmax(-1) [3,0]", t => t[0].LogSoftmax(-1), [S(3, 0)], S(3, 0));
        yield return E("SoftmaxComposed(1) [0,3]", t => t[0].SoftmaxComposed(1), [S(0, 3)], S(0, 3));
        yield return E("LogSumExp(1) [0,3]", t => t[0].LogSumExp(1), [S(0, 3)], S(0));
        yield return E("LogSumExp(0) [0,3]", t => t[0].LogSumExp(0), [S(0, 3)], S(3));
        yield return E("LogSumExp(0, keepDim) [0,3]", t => t[0].LogSumExp(0, keepDim: true), [S(0, 3)], S(1, 3));
        yield return E("SoftmaxBackward [0,3]", t => Tensor.SoftmaxBackward(t[0], t[1], 1), [S(0, 3), S(0, 3)], S(0, 3));
        yield return E("LogSoftmaxBackward [2,0]", t => Tensor.LogSoftmaxBackward(t[0], t[1], 0), [S(2, 0), S(2, 0)], S(2, 0));
    }

    /// <summary>Every row of the zero-size table, by name.</summary>
    public static TheoryData<string> EmptyCases => [.. EmptyTable.Keys];

    [Theory]
    [MemberData(nameof(EmptyCases))]
    public void ZeroSizeShapesGiveCorrectlyShapedGradients(string name)
    {
        var spec = EmptyTable[name];
        var inputs = spec.Shapes.Select((s, i) => Tensor.RandN(s, 50 + i).WithRequiresGrad()).ToArray();
        var y = spec.F(inputs);
        Assert.Equal(spec.Expected, y.Shape);
        Assert.Equal(DType.Float64, y.DType);
        Assert.True(y.RequiresGrad);

        // Backward with an explicit output gradient, then check every input got a gradient of its shape and that
        // inputs broadcast over an empty dim receive zeros (a sum of nothing).
        y.Backward(Tensor.Ones(y.Shape));
        foreach (var x in inputs)
        {
            Assert.NotNull(x.Grad);
            Assert.Equal(x.Shape, x.Grad.Shape);
            Assert.Equal(DType.Float64, x.Grad.DType);
            if (y.ElementCount == 0)
            {
                Assert.All(x.Grad.ToArray(), v => Assert.Equal(0.0, v));
            }
        }

        // The checker has nothing (or only the non-empty broadcast partners) to perturb, and must not fail.
        var fresh = spec.Shapes.Select((s, i) => Tensor.RandN(s, 50 + i).WithRequiresGrad()).ToArray();
        var result = GradCheck.Check(spec.F, fresh);
        Assert.True(result.Passed, result.Message);
    }

    [Fact]
    public void SumOverAnEmptyDimIsZeroWithAGradientOfTheInputShape()
    {
        var x = Tensor.Zeros(0, 3).WithRequiresGrad();
        var y = x.Sum(0);
        Assert.Equal(S(3), y.Shape);
        Assert.Equal([0.0, 0.0, 0.0], y.ToArray());
        y.Backward(Tensor.From(1.0, 2.0, 3.0));
        Assert.Equal(S(0, 3), x.Grad!.Shape);

        var all = Tensor.Zeros(2, 0).WithRequiresGrad();
        var s = all.Sum();
        Assert.Equal(S(), s.Shape);
        Assert.Equal(0.0, s.Item());
        s.Backward();
        Assert.Equal(S(2, 0), all.Grad!.Shape);

        var m = Tensor.Zeros(0, 3).WithRequiresGrad().Mean(0);
        Assert.All(m.ToArray(), v => Assert.True(double.IsNaN(v)));
    }

    [Fact]
    public void MaxAndMinOverAnEmptyDimThrow()
    {
        var x = Tensor.Zeros(0, 3).WithRequiresGrad();
        Assert.Throws<ArgumentException>(() => x.Max(0));
        Assert.Throws<ArgumentException>(() => x.Min(-2, keepDim: true));
        Assert.Throws<ArgumentException>(() => x.Max());
        Assert.Throws<ArgumentException>(() => x.Min([0, 1]));
    }

    // ---------------------------------------------------------------- the checker catches errors

    [Fact]
    public void GradCheckFailsAndNamesTheInputElementAndValuesWhenAPathIsCut()
    {
        // f(a, b) = Σa + Σ b ⊙ detach(b ⊙ mask): the tape sees b ⊙ mask as a constant, so the analytic derivative
        // w.r.t. b is b ⊙ mask while the true one is 2·b ⊙ mask. Elements 0 and 1 of b are masked out (both 0), so
        // the first mismatch is input 1, element 2 (index [1, 0]).
        var a = Tensor.RandN(S(3), 7).WithRequiresGrad();
        var b = Tensor.FromArray([0.5, -1.5, 1.25, -0.75], 2, 2).WithRequiresGrad();
        var mask = Tensor.FromArray([0.0, 0.0, 1.0, 1.0], 2, 2);
        var result = GradCheck.Check(t => t[0].Sum() + (t[1] * (t[1] * mask).Detach()).Sum(), [a, b]);

        Assert.False(result.Passed);
        Assert.Equal(1, result.InputIndex);
        Assert.Equal(2, result.ElementIndex);
        Assert.Equal(1.25, result.Analytic, 12);
        Assert.Equal(2.5, result.Numeric, 6);
        Assert.Contains("input 1", result.Message, StringComparison.Ordinal);
        Assert.Contains("element 2", result.Message, StringComparison.Ordinal);
        Assert.Contains("[1, 0]", result.Message, StringComparison.Ordinal);
        Assert.Contains("analytic " + result.Analytic.ToString("R", CultureInfo.InvariantCulture), result.Message, StringComparison.Ordinal);
        Assert.Contains("numeric " + result.Numeric.ToString("R", CultureInfo.InvariantCulture), result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradCheckCatchesXTimesDetachedX()
    {
        // f(x) = x ⊙ detach(x): the detached tensor shares x's storage, so the finite differences see 2x, the tape x.
        var x = Tensor.From(0.75, -2.0, 1.5).WithRequiresGrad();
        var result = GradCheck.Check(t => t[0] * t[0].Detach(), [x]);
        Assert.False(result.Passed);
        Assert.Equal(0, result.InputIndex);
        Assert.Equal(0, result.ElementIndex);
        Assert.Equal(0.75, result.Analytic, 12);
        Assert.Equal(1.5, result.Numeric, 6);
        Assert.Contains("input 0", result.Message, StringComparison.Ordinal);
        Assert.Contains("element 0", result.Message, StringComparison.Ordinal);
        Assert.Contains("analytic 0.75", result.Message, StringComparison.Ordinal);
        Assert.Contains("numeric 1.5", result.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradCheckInProjectionModeCatchesTheErrorToo()
    {
        var x = Tensor.Rand(S(Long), 8, low: 0.5, high: 2.0).WithRequiresGrad();
        var result = GradCheck.Check(t => t[0] * t[0].Detach(), [x]);
        Assert.False(result.Passed);
        Assert.Contains("projection", result.Message, StringComparison.Ordinal);
        Assert.Equal(0, result.InputIndex);
        Assert.InRange(result.ElementIndex, 0, Long - 1);
        Assert.Contains($"element {result.ElementIndex}", result.Message, StringComparison.Ordinal);
        Assert.Equal(2 * result.Analytic, result.Numeric, 5);
    }

    [Fact]
    public void GradGradCheckCatchesAWrongSecondDerivativeThatGradCheckMisses()
    {
        // f(x) = x ⊙ detach(x) − ½ detach(x)² = ½x² in value; the tape's gradient detach(x) has the right value, but it
        // is recorded as a constant in x, so its derivative (0) is wrong (the true one is 1).
        Tensor F(Tensor[] t) => (t[0] * t[0].Detach()) - (0.5 * t[0].Detach() * t[0].Detach());
        var x = Tensor.RandN(S(4), 9).WithRequiresGrad();

        var first = GradCheck.Check(F, [x]);
        Assert.True(first.Passed, first.Message);

        var second = GradCheck.GradGradCheck(t => [F(t)], [x]);
        Assert.False(second.Passed);
        Assert.Equal(0, second.InputIndex);
        Assert.StartsWith("GradGradCheck (second derivatives), w.r.t. input 0:", second.Message, StringComparison.Ordinal);
        Assert.Equal(0.0, second.Analytic);
    }

    [Fact]
    public void GradCheckRejectsInputsItCannotCheck()
    {
        var x32 = Tensor.RandN(S(3), 1, DType.Float32).WithRequiresGrad();
        var e = Assert.Throws<ArgumentException>(() => GradCheck.Check(t => t[0].Exp(), [x32]));
        Assert.Contains("float64", e.Message, StringComparison.Ordinal);

        var constant = Tensor.RandN(S(3), 1);
        Assert.Throws<ArgumentException>(() => GradCheck.Check(t => t[0].Exp(), [constant]));
    }

    [Fact]
    public void GradCheckHoldsInputsThatDoNotRequireGradConstantAndRestoresValues()
    {
        var x = Tensor.RandN(S(5), 3).WithRequiresGrad();
        var w = Tensor.RandN(S(5), 4);
        var before = x.ToArray();
        var result = GradCheck.Check(t => (t[0] * t[1]).Exp(), [x, w]);
        Assert.True(result.Passed, result.Message);
        Assert.Equal(before, x.ToArray());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void GradGradCheckHandlesAFloat32OutputWithAConstantOutputGradient()
    {
        var x = Tensor.RandN(S(4), 5).WithRequiresGrad();
        var result = GradCheck.GradGradCheck(t => [(t[0] * t[0]).To(DType.Float32)], [x]);
        Assert.True(result.Passed, result.Message);

        var broken = GradCheck.GradGradCheck(t => [(t[0] * t[0].Detach()).To(DType.Float32)], [x]);
        Assert.False(broken.Passed);
    }
}
