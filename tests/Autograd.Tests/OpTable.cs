using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>One gradient-check case: an operator, a function of float64 leaves built on it, and how to check it.</summary>
/// <param name="Op">
/// The operator under test, named as reflection names it (<c>Exp</c>, <c>op_Addition</c> for <c>a + b</c>,
/// <c>get_T</c> for <c>x.T</c>), or <see cref="OpTable.Composition"/> for a row that exercises several at once.
/// </param>
/// <param name="Name">The case name, unique in the table.</param>
/// <param name="F">The function under test.</param>
/// <param name="Inputs">Makes fresh inputs (float64 leaves; those to check require grad), the same values on every call.</param>
public sealed record OpCase(string Op, string Name, Func<Tensor[], Tensor> F, Func<Tensor[]> Inputs)
{
    /// <summary>The highest derivative checked: 1 runs <see cref="GradCheck.Check(Func{Tensor[], Tensor}, Tensor[], double, double, double, bool?, int)"/>, 2 runs <see cref="GradCheck.GradGradCheck"/> too.</summary>
    public int Order { get; init; } = 2;

    /// <summary>The finite-difference step.</summary>
    public double Eps { get; init; } = 1e-6;

    /// <summary>The absolute tolerance.</summary>
    public double Atol { get; init; } = 1e-5;

    /// <summary>The tolerance relative to the numeric derivative.</summary>
    public double Rtol { get; init; } = 1e-3;

    /// <summary>The seed of the output gradients v (and of the projection) of the second-order check.</summary>
    public int GradGradSeed { get; init; }

    /// <inheritdoc />
    public override string ToString() => $"{Op}: {Name}";
}

/// <summary>
/// Every gradient check of an operator, one table organised by operator family: each row is run through
/// <see cref="GradCheck.Check(Func{Tensor[], Tensor}, Tensor[], double, double, double, bool?, int)"/> and, up to its
/// <see cref="OpCase.Order"/>, <see cref="GradCheck.GradGradCheck"/> by <see cref="OpTableTests"/>, which also checks
/// that every public differentiable operator has a row. To test a new operator, add its rows to its family here.
/// </summary>
/// <remarks>
/// The rows cover shapes with broadcasting, keepDim on and off, negative dims, size-1 dims, rank-0 tensors and lengths
/// that are not multiples of the vector width (1, 7, 8, 9, 6·512+7). Inputs are drawn from a seed; most families
/// derive it from the row's name (<see cref="SeedRule"/>), so a row keeps its inputs wherever it sits in the table.
/// </remarks>
public static class OpTable
{
    /// <summary>The <see cref="OpCase.Op"/> of a row that exercises several operators together.</summary>
    public const string Composition = "composition";

    /// <summary>6·512 + 7: longer than any vector, and not a multiple of any vector width.</summary>
    public const int Long = (6 * 512) + 7;

    /// <summary>The lengths every elementwise kernel and reduction is checked at.</summary>
    public static readonly int[] Lengths = [1, 7, 8, 9, Long];

    private static readonly Lazy<Dictionary<(string Op, string Name), OpCase>> Table =
        new(() => Build().ToDictionary(c => (c.Op, c.Name)));

    /// <summary>Produces a float64 input of a shape from a seed.</summary>
    public delegate Tensor Generator(Shape shape, int seed);

    /// <summary>Every row, in table order.</summary>
    public static IEnumerable<OpCase> Cases => Table.Value.Values;

    /// <summary>The row of an operator with a name.</summary>
    public static OpCase Find(string op, string name) => Table.Value[(op, name)];

    private static IEnumerable<OpCase> Build() =>
    [
        .. ArithmeticRows(),
        .. UnaryRows(),
        .. ConversionRows(),
        .. ReductionRows(),
        .. MovementRows(),
        .. MatMulRows(),
        .. SoftmaxRows(),
        .. ComparisonRows(),
        .. IndexingRows(),
        .. ConvolutionRows(),
        .. PoolingRows(),
        .. NormalizationRows(),
        .. AttentionRows(),
        .. CompositionRows(),
        .. NnRows(),
        .. InPlaceRows(),
    ];

    // ---------------------------------------------------------------- inputs

    /// <summary>
    /// How a row's inputs are seeded: input i of the row named n gets seed <c>Base + Stride·i + n.Length</c>. Each
    /// family keeps the rule its rows were first written with, so the inputs stay the same values.
    /// </summary>
    private readonly record struct SeedRule(int Base, int Stride)
    {
        /// <summary>Elementwise, reductions, movement, matrix product, softmax.</summary>
        public static readonly SeedRule Core = new(1000, 17);

        /// <summary>Where, Maximum, Minimum, Clamp.</summary>
        public static readonly SeedRule Comparison = new(700, 13);

        /// <summary>Gather, ScatterAdd, IndexSelect, IndexAdd, Narrow, Slice, Concat, Stack.</summary>
        public static readonly SeedRule Indexing = new(500, 31);

        /// <summary>Embedding, ScaledDotProductAttention and its composed form, AttentionWeights.</summary>
        public static readonly SeedRule Attention = new(900, 23);

        /// <summary>Fresh leaves that require grad: input i of shape <paramref name="shapes"/>[i], drawn by <paramref name="gens"/>[i] (or by the only generator).</summary>
        public Func<Tensor[]> Leaves(string name, Shape[] shapes, Generator[] gens)
        {
            var (b, stride) = (Base, Stride);
            return () => [.. shapes.Select((s, i) => (gens.Length == 1 ? gens[0] : gens[i])(s, b + (stride * i) + name.Length).WithRequiresGrad())];
        }
    }

    /// <summary>A row of a core family: inputs drawn by <paramref name="gen"/> (standard normal when null) under <see cref="SeedRule.Core"/>.</summary>
    private static OpCase Row(string op, string name, Func<Tensor[], Tensor> f, Shape[] shapes, Generator? gen = null, int order = 2, double eps = 1e-6)
        => Row(op, name, f, shapes, [gen ?? Normal], order, eps);

    /// <summary>A row of a core family with one generator per input.</summary>
    private static OpCase Row(string op, string name, Func<Tensor[], Tensor> f, Shape[] shapes, Generator[] gens, int order = 2, double eps = 1e-6)
        => new(op, name, f, SeedRule.Core.Leaves(name, shapes, gens)) { Order = order, Eps = eps };

    /// <summary>Fixed leaves that require grad, as given (cloned on every call).</summary>
    private static Func<Tensor[]> Fixed(params Tensor[] values) => () => [.. values.Select(v => v.Clone().WithRequiresGrad())];

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

    /// <summary>A random permutation of the grid (k − ⌊n/2⌋)·0.1 + offset: inputs on grids of different offsets never tie.</summary>
    private static Generator Grid(double offset) => (shape, seed) =>
    {
        var keys = Tensor.Rand(shape, seed).ToArray();
        var order = Enumerable.Range(0, keys.Length).OrderBy(i => keys[i]).ToArray();
        var values = new double[keys.Length];
        for (var rank = 0; rank < order.Length; rank++)
        {
            values[order[rank]] = ((rank - (keys.Length / 2)) * 0.1) + offset;
        }

        return Tensor.FromArray(values, shape.ToArray());
    };

    /// <summary>A constant 0/1 mask, reproducible from the seed.</summary>
    private static Tensor RandMask(Shape shape, int seed) => Tensor.Rand(shape, seed).Gt(0.5);

    /// <summary>Random int64 indices in [0, high), reproducible from the seed.</summary>
    private static Tensor RandIndex(Shape shape, int high, int seed)
    {
        var rng = new Random(seed);
        var data = new long[shape.ElementCount];
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = rng.Next(high);
        }

        return Tensor.FromArray(data, shape.ToArray());
    }

    private static Tensor I(params long[] values) => Tensor.FromArray(values, values.Length);

    private static Shape S(params int[] dims) => new(dims);

    // ---------------------------------------------------------------- Add, Sub, Mul, Div and the operators

    private static IEnumerable<OpCase> ArithmeticRows()
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
                Generator[] gens = rhs is null ? [Normal] : [Normal, rhs];
                yield return Row(name, $"{name} {tag}", t => f(t[0], t[1]), [sa, sb], gens, order: sa.ElementCount + sb.ElementCount < 1000 ? 2 : 1);
            }
        }

        // Broadcast runs of the long length on either side (the strided kernel's vectorised inner loops).
        yield return Row("op_Multiply", $"Mul [2,{Long}]x[2,1]", t => t[0] * t[1], [S(2, Long), S(2, 1)], order: 1);
        yield return Row("op_Division", $"Div [2,1]x[2,{Long}]", t => t[0] / t[1], [S(2, 1), S(2, Long)], [Normal, Positive], order: 1);

        yield return Row("op_Addition", "operator+ tensor", t => t[0] + t[1], [S(2, 3), S(3)]);
        yield return Row("op_Subtraction", "operator- tensor", t => t[0] - t[1], [S(2, 3), S(2, 1)]);
        yield return Row("op_Multiply", "operator* tensor", t => t[0] * t[1], [S(3), S(2, 3)]);
        yield return Row("op_Division", "operator/ tensor", t => t[0] / t[1], [S(2, 3), S(3)], [Normal, Positive]);

        // Scalar overloads on either side.
        yield return Row("op_Addition", "x + 2.0", t => t[0] + 2.0, [S(7)]);
        yield return Row("op_Addition", "2.0 + x", t => 2.0 + t[0], [S(7)]);
        yield return Row("op_Subtraction", "x - 2.0", t => t[0] - 2.0, [S(8)]);
        yield return Row("op_Subtraction", "1.0 - x", t => 1.0 - t[0], [S(8)]);
        yield return Row("op_Multiply", "2.0 * x", t => 2.0 * t[0], [S(9)]);
        yield return Row("op_Multiply", "x * 2.0", t => t[0] * 2.0, [S(9)]);
        yield return Row("op_Division", "x / 3.0", t => t[0] / 3.0, [S(2, 3)]);
        yield return Row("op_Division", "3.0 / x", t => 3.0 / t[0], [S(2, 3)], Positive);
    }

    // ---------------------------------------------------------------- unary elementwise

    /// <summary>
    /// The in-place operators on a non-leaf (a leaf that requires grad cannot be written while recording): the written
    /// tensor is <c>x · 1.5</c>, so the gradient reaches x through the rebased history; operands broadcast and numbers.
    /// </summary>
    private static IEnumerable<OpCase> InPlaceRows()
    {
        yield return Row("AddInPlace", "AddInPlace [2,3] += [3]", t => (t[0] * 1.5).AddInPlace(t[1]), [S(2, 3), S(3)]);
        yield return Row("AddInPlace", "AddInPlace [2,3] += 0.5·[2,1]", t => (t[0] * 1.5).AddInPlace(t[1], 0.5), [S(2, 3), S(2, 1)]);
        yield return Row("AddInPlace", "AddInPlace [7] += 2", t => (t[0] * 1.5).AddInPlace(2.0), [S(7)]);
        yield return Row("SubInPlace", "SubInPlace [2,3] -= [2,3]", t => (t[0] * 1.5).SubInPlace(t[1]), [S(2, 3), S(2, 3)]);
        yield return Row("SubInPlace", "SubInPlace [5] -= 2", t => (t[0] * 1.5).SubInPlace(2.0), [S(5)]);
        yield return Row("MulInPlace", "MulInPlace [2,3] *= [3]", t => (t[0] * 1.5).MulInPlace(t[1]), [S(2, 3), S(3)]);
        yield return Row("MulInPlace", "MulInPlace [4,1,3] *= [] then Exp", t => (t[0] * 1.5).MulInPlace(t[1]).Exp(), [S(4, 1, 3), S()]);
        yield return Row("MulInPlace", "MulInPlace [6] *= 3", t => (t[0] * 1.5).MulInPlace(3.0), [S(6)]);
        yield return Row("DivInPlace", "DivInPlace [2,3] /= [2,1]", t => (t[0] * 1.5).DivInPlace(t[1]), [S(2, 3), S(2, 1)], [Normal, Positive]);
        yield return Row("DivInPlace", "DivInPlace [2,3] /= [2,3] twice", t => (t[0] * 1.5).DivInPlace(t[1]).MulInPlace(t[1]).DivInPlace(t[1]), [S(2, 3), S(2, 3)], [Normal, Positive]);
        yield return Row("DivInPlace", "DivInPlace [6] /= 4", t => (t[0] * 1.5).DivInPlace(4.0), [S(6)]);
        yield return Row("ZeroInPlace", "ZeroInPlace then += x", t => (t[0] * 1.5).ZeroInPlace().AddInPlace(t[0].Exp()), [S(2, 3)]);
        yield return Row("FillInPlace", "FillInPlace then += x", t => (t[0] * 1.5).FillInPlace(0.25).AddInPlace(t[0].Exp()), [S(2, 3)]);
        yield return Row("FillInPlace", "FillInPlace then *= b", t => (t[0] * 1.5).FillInPlace(-2.0).MulInPlace(t[1]), [S(7), S(7)]);
        yield return Row("CopyFrom", "CopyFrom [2,3] ← [2,3] then Exp", t => (t[0] * 1.5).CopyFrom(t[1]).Exp(), [S(2, 3), S(2, 3)]);
        yield return Row("CopyFrom", "CopyFrom [4,3] ← [3] then ⊙ x", t => (t[0] * 1.5).CopyFrom(t[1]).MulInPlace(t[0]), [S(4, 3), S(3)]);
        yield return Row("CopyFrom", "CopyFrom [2,3] ← [2,1]", t => (t[0] * 1.5).CopyFrom(t[1] * t[1]), [S(2, 3), S(2, 1)]);
        yield return Row("CopyFrom", "CopyFrom [5] ← []", t => (t[0] * 1.5).CopyFrom(t[1].Tanh()), [S(5), S()]);
        yield return Row("AddcmulInPlace", "AddcmulInPlace [2,3] += 0.5·[3]⊙[2,1]", t => (t[0] * 1.5).AddcmulInPlace(t[1], t[2], 0.5), [S(2, 3), S(3), S(2, 1)]);
        yield return Row("AddcmulInPlace", "AddcmulInPlace [9] += x⊙x", t => (t[0] * 1.5).AddcmulInPlace(t[0], t[0]), [S(9)]);
        yield return Row("AddcmulInPlace", "AddcmulInPlace [2,3] += −2·[2,3]⊙[] then Tanh", t => (t[0] * 1.5).AddcmulInPlace(t[1], t[2], -2.0).Tanh(), [S(2, 3), S(2, 3), S()]);
        yield return Row("AddcdivInPlace", "AddcdivInPlace [2,3] += 0.5·[3]/[2,1]", t => (t[0] * 1.5).AddcdivInPlace(t[1], t[2], 0.5), [S(2, 3), S(3), S(2, 1)], [Normal, Normal, Positive]);
        yield return Row("AddcdivInPlace", "AddcdivInPlace [8] −= x/b", t => (t[0] * 1.5).AddcdivInPlace(t[0], t[1], -1.0), [S(8), S(8)], [Normal, Positive]);
        yield return Row("SqrtInPlace", "SqrtInPlace [2,3]", t => (t[0] * 1.5).SqrtInPlace(), [S(2, 3)], Positive);
        yield return Row("SqrtInPlace", "SqrtInPlace [7] then ⊙ x", t => (t[0] * 1.5).SqrtInPlace().MulInPlace(t[0]), [S(7)], Positive);
    }

    private static IEnumerable<OpCase> UnaryRows()
    {
        // Every length; the name is the row's, the operator the one it calls.
        var unary = new (string Name, string Op, Func<Tensor, Tensor> F, Generator Gen)[]
        {
            ("-x", "op_UnaryNegation", x => -x, Normal),
            ("Neg", "Neg", x => x.Neg(), Normal),
            ("Exp", "Exp", x => x.Exp(), Normal),
            ("Log", "Log", x => x.Log(), Positive),
            ("Pow(2)", "Pow", x => x.Pow(2.0), Normal),
            ("Pow(3)", "Pow", x => x.Pow(3.0), Normal),
            ("Pow(0.5)", "Pow", x => x.Pow(0.5), Positive),
            ("Pow(-1.5)", "Pow", x => x.Pow(-1.5), Positive),
            ("Pow(1)", "Pow", x => x.Pow(1.0), Normal),
            ("Pow(0)", "Pow", x => x.Pow(0.0), Normal),
            ("Sqrt", "Sqrt", x => x.Sqrt(), Positive),
            ("Abs", "Abs", x => x.Abs(), AwayFromZero),
            ("Tanh", "Tanh", x => x.Tanh(), Normal),
            ("Sigmoid", "Sigmoid", x => x.Sigmoid(), Normal),
            ("Relu", "Relu", x => x.Relu(), AwayFromZero),
        };
        foreach (var (name, op, f, gen) in unary)
        {
            foreach (var n in Lengths)
            {
                // At the long length the first order is checked for every kernel (the exponents share one Pow kernel,
                // so two of them suffice); second order there only once, the small lengths cover the rules.
                if (n == Long && name is "-x" or "Pow(1)" or "Pow(0)" or "Pow(2)" or "Pow(-1.5)")
                {
                    continue;
                }

                yield return Row(op, $"{name} [{n}]", t => f(t[0]), [S(n)], gen, order: n < Long ? 2 : 1);
            }

            yield return Row(op, $"{name} []", t => f(t[0]), [S()], gen);
            yield return Row(op, $"{name} [2,1,3]", t => f(t[0]), [S(2, 1, 3)], gen);
        }

        // The error function at fixed points, the origin included.
        yield return new("Erf", "Erf at -3, -1.2, -0.5, -1e-3, 0, 0.3, 1, 2.5", t => t[0].Erf(), Fixed(Tensor.From(-3.0, -1.2, -0.5, -1e-3, 0.0, 0.3, 1.0, 2.5)));
    }

    // ---------------------------------------------------------------- dtype conversion

    private static IEnumerable<OpCase> ConversionRows()
    {
        // float64 → float32 → float64 is exact up to float32 rounding, so a larger step is used (the rounding error of
        // about 1e-7 divided by 2·1e-3 stays far inside the tolerance).
        yield return Row("To", "To(Float32).To(Float64) [7]", t => t[0].To(DType.Float32).To(DType.Float64), [S(7)], eps: 1e-3);
        yield return Row("To", "To(Float32).Exp().To(Float64) [9]", t => (t[0].To(DType.Float32).Exp() * 2.0).To(DType.Float64), [S(9)], eps: 1e-3);
        yield return Row("To", "To(Float32) float32 output [8]", t => t[0].To(DType.Float32) * 2.0, [S(8)], order: 1, eps: 1e-3);
        yield return Row("To", "To(Float64) identity then Exp [8]", t => t[0].To(DType.Float64).Exp(), [S(8)]);
    }

    // ---------------------------------------------------------------- reductions

    private static IEnumerable<OpCase> ReductionRows()
    {
        // All elements, one dim, several dims, keepDim on and off, negative dims, size-1 dims.
        var reductions = new (string Name, Func<Tensor, Tensor> All, Func<Tensor, int, bool, Tensor> Dim, Func<Tensor, int[], bool, Tensor> Dims, Generator Gen)[]
        {
            ("Sum", x => x.Sum(), (x, d, k) => x.Sum(d, k), (x, d, k) => x.Sum(d, k), Normal),
            ("Mean", x => x.Mean(), (x, d, k) => x.Mean(d, k), (x, d, k) => x.Mean(d, k), Normal),
            ("Max", x => x.Max(), (x, d, k) => x.Max(d, k), (x, d, k) => x.Max(d, k), Distinct),
            ("Min", x => x.Min(), (x, d, k) => x.Min(d, k), (x, d, k) => x.Min(d, k), Distinct),
        };
        foreach (var (name, all, dim, dims, gen) in reductions)
        {
            yield return Row(name, $"{name}() [2,3,4]", t => all(t[0]), [S(2, 3, 4)], gen);
            yield return Row(name, $"{name}() []", t => all(t[0]), [S()], gen);
            foreach (var n in Lengths)
            {
                yield return Row(name, $"{name}() [{n}]", t => all(t[0]), [S(n)], gen, order: n < Long ? 2 : 1);
            }

            foreach (var keep in new[] { false, true })
            {
                foreach (var d in new[] { 0, 1, 2, -1, -2, -3 })
                {
                    yield return Row(name, $"{name}({d}, keepDim: {keep}) [2,3,4]", t => dim(t[0], d, keep), [S(2, 3, 4)], gen);
                }

                yield return Row(name, $"{name}([0, 2], keepDim: {keep}) [2,3,4]", t => dims(t[0], [0, 2], keep), [S(2, 3, 4)], gen);
                yield return Row(name, $"{name}([-1, -2], keepDim: {keep}) [2,3,4]", t => dims(t[0], [-1, -2], keep), [S(2, 3, 4)], gen);
                yield return Row(name, $"{name}([2, 0, 1], keepDim: {keep}) [2,3,4]", t => dims(t[0], [2, 0, 1], keep), [S(2, 3, 4)], gen);
                yield return Row(name, $"{name}([], keepDim: {keep}) [3,2]", t => dims(t[0], [], keep), [S(3, 2)], gen);
                yield return Row(name, $"{name}(1, keepDim: {keep}) [3,1,4]", t => dim(t[0], 1, keep), [S(3, 1, 4)], gen);
                yield return Row(name, $"{name}(0, keepDim: {keep}) []", t => dim(t[0], 0, keep), [S()], gen);
                yield return Row(name, $"{name}(-1, keepDim: {keep}) [2,{Long}]", t => dim(t[0], -1, keep), [S(2, Long)], gen, order: 1);
                if (!keep)
                {
                    yield return Row(name, $"{name}(0) [2,{Long}]", t => dim(t[0], 0, false), [S(2, Long)], gen, order: 1);
                }

                yield return Row(name, $"{name}(0, keepDim: {keep}) [9,7]", t => dim(t[0], 0, keep), [S(9, 7)], gen);
                yield return Row(name, $"{name}(-2, keepDim: {keep}) [3,9,8]", t => dim(t[0], -2, keep), [S(3, 9, 8)], gen, order: 1);
            }
        }

        yield return Row("SumTo", "SumTo [2,3,4]->[3,1]", t => t[0].SumTo(S(3, 1)), [S(2, 3, 4)]);
        yield return Row("SumTo", "SumTo [2,3,4]->[4]", t => t[0].SumTo(S(4)), [S(2, 3, 4)]);
        yield return Row("SumTo", "SumTo [2,3,4]->[1,3,1]", t => t[0].SumTo(S(1, 3, 1)), [S(2, 3, 4)]);
        yield return Row("SumTo", "SumTo [2,3,4]->[2,1,4]", t => t[0].SumTo(S(2, 1, 4)), [S(2, 3, 4)]);
        yield return Row("SumTo", "SumTo [2,3]->[]", t => t[0].SumTo(S()), [S(2, 3)]);
        yield return Row("SumTo", "SumTo [2,3]->[2,3] (identity)", t => t[0].SumTo(S(2, 3)) * 1.0, [S(2, 3)]);
        yield return Row("SumTo", $"SumTo [2,{Long}]->[1,{Long}]", t => t[0].SumTo(S(1, Long)), [S(2, Long)], order: 1);
    }

    // ---------------------------------------------------------------- movement

    private static IEnumerable<OpCase> MovementRows()
    {
        yield return Row("Reshape", "Reshape(4,-1) [2,3,4]", t => t[0].Reshape(4, -1), [S(2, 3, 4)]);
        yield return Row("Reshape", "Reshape() [1,1]", t => t[0].Reshape(), [S(1, 1)]);
        yield return Row("Reshape", "Reshape(-1) []", t => t[0].Reshape(-1), [S()]);
        yield return Row("View", "View(6,4) [2,3,4]", t => t[0].View(6, 4), [S(2, 3, 4)]);
        yield return Row("View", "View(1,-1,1) [9]", t => t[0].View(1, -1, 1), [S(9)]);
        yield return Row("Flatten", "Flatten() [2,3,4]", t => t[0].Flatten(), [S(2, 3, 4)]);
        yield return Row("Flatten", "Flatten(1) [2,3,4]", t => t[0].Flatten(1), [S(2, 3, 4)]);
        yield return Row("Flatten", "Flatten(0,-2) [2,3,4]", t => t[0].Flatten(0, -2), [S(2, 3, 4)]);
        yield return Row("Flatten", "Flatten() []", t => t[0].Flatten(), [S()]);
        yield return Row("Squeeze", "Squeeze() [2,1,3,1]", t => t[0].Squeeze(), [S(2, 1, 3, 1)]);
        yield return Row("Squeeze", "Squeeze(1) [2,1,3,1]", t => t[0].Squeeze(1), [S(2, 1, 3, 1)]);
        yield return Row("Squeeze", "Squeeze(-1) [2,1,3,1]", t => t[0].Squeeze(-1), [S(2, 1, 3, 1)]);
        yield return Row("Squeeze", "Squeeze(0) [2,1,3] (no-op)", t => t[0].Squeeze(0), [S(2, 1, 3)]);
        yield return Row("Squeeze", "Squeeze() [1,1]", t => t[0].Squeeze(), [S(1, 1)]);
        yield return Row("Unsqueeze", "Unsqueeze(0) [2,3]", t => t[0].Unsqueeze(0), [S(2, 3)]);
        yield return Row("Unsqueeze", "Unsqueeze(1) [2,3]", t => t[0].Unsqueeze(1), [S(2, 3)]);
        yield return Row("Unsqueeze", "Unsqueeze(-1) [2,3]", t => t[0].Unsqueeze(-1), [S(2, 3)]);
        yield return Row("Unsqueeze", "Unsqueeze(-3) [2,3]", t => t[0].Unsqueeze(-3), [S(2, 3)]);
        yield return Row("Unsqueeze", "Unsqueeze(0) []", t => t[0].Unsqueeze(0), [S()]);
        yield return Row("Transpose", "Transpose(0,2) [2,3,4]", t => t[0].Transpose(0, 2), [S(2, 3, 4)]);
        yield return Row("Transpose", "Transpose(-1,-2) [2,3,4]", t => t[0].Transpose(-1, -2), [S(2, 3, 4)]);
        yield return Row("Transpose", "Transpose(0,0) [2,3]", t => t[0].Transpose(0, 0), [S(2, 3)]);
        yield return Row("Transpose", "Transpose(0,-1) [7]", t => t[0].Transpose(0, -1), [S(7)]);
        yield return Row("Permute", "Permute(2,0,1) [2,3,4]", t => t[0].Permute(2, 0, 1), [S(2, 3, 4)]);
        yield return Row("Permute", "Permute(-1,0,-2) [2,3,4]", t => t[0].Permute(-1, 0, -2), [S(2, 3, 4)]);
        yield return Row("Permute", "Permute(1,0,2) [3,1,2]", t => t[0].Permute(1, 0, 2), [S(3, 1, 2)]);
        yield return Row("Permute", "Permute(1,0) [9,8]", t => t[0].Permute(1, 0), [S(9, 8)], order: 1);
        yield return Row("get_T", "T [3,5]", t => t[0].T, [S(3, 5)]);
        yield return Row("get_T", "T [1,7]", t => t[0].T, [S(1, 7)]);
        yield return Row("get_T", "T [7] (identity)", t => t[0].T, [S(7)]);
        yield return Row("Expand", "Expand(2,3,4) [3,1]", t => t[0].Expand(2, 3, 4), [S(3, 1)]);
        yield return Row("Expand", "Expand(-1,5) [3,1]", t => t[0].Expand(-1, 5), [S(3, 1)]);
        yield return Row("Expand", "Expand(4,3) []", t => t[0].Expand(4, 3), [S()]);
        yield return Row("Expand", "Expand(2,1,3) [1,1,3]", t => t[0].Expand(2, 1, 3), [S(1, 1, 3)]);
        yield return Row("Expand", $"Expand(2,{Long}) [1]", t => t[0].Expand(2, Long), [S(1)], order: 1);
        yield return Row("BroadcastTo", "BroadcastTo(3,4) [4]", t => t[0].BroadcastTo(3, 4), [S(4)]);
        yield return Row("BroadcastTo", "BroadcastTo(2,9,7) [9,1]", t => t[0].BroadcastTo(2, 9, 7), [S(9, 1)]);
    }

    // ---------------------------------------------------------------- matrix product

    private static IEnumerable<OpCase> MatMulRows()
    {
        // 2-D, batched with broadcast batch dims, 1-D on either side, size-1 and vector-width sizes.
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
            yield return Row("MatMul", $"MatMul {sa}x{sb}", t => t[0].MatMul(t[1]), [sa, sb], order: sb.ElementCount < 1000 ? 2 : 1);
        }

        // The internal product that reads either operand transposed without copying it, as the backward rules of MatMul record it.
        foreach (var (transA, transB) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            foreach (var (sa, sb) in new[]
            {
                (transA ? S(4, 3) : S(3, 4), transB ? S(5, 4) : S(4, 5)),
                (transA ? S(2, 1, 4, 3) : S(2, 1, 3, 4), transB ? S(3, 5, 4) : S(3, 4, 5)),
                (transA ? S(2, 4, 3) : S(2, 3, 4), transB ? S(5, 4) : S(4, 5)),
                (transA ? S(4, 3) : S(3, 4), transB ? S(2, 5, 4) : S(2, 4, 5)),
            })
            {
                yield return new(
                    "MatMulT",
                    $"MatMulT {sa}{(transA ? "ᵀ" : "")} · {sb}{(transB ? "ᵀ" : "")}",
                    t => LinearAlgebra.MatMulT(t[0], t[1], transA, transB),
                    Fixed(Tensor.RandN(sa, 3), Tensor.RandN(sb, 4)));
            }
        }
    }

    // ---------------------------------------------------------------- softmax, log-softmax, logsumexp

    private static IEnumerable<OpCase> SoftmaxRows()
    {
        // Fused and composed, over any dim.
        var softmax = new (string Name, string Op, Func<Tensor, int, Tensor> F)[]
        {
            ("Softmax", "Softmax", (x, d) => x.Softmax(d)),
            ("LogSoftmax", "LogSoftmax", (x, d) => x.LogSoftmax(d)),
            ("SoftmaxComposed", "SoftmaxComposed", (x, d) => x.SoftmaxComposed(d)),
            ("LogSoftmaxComposed", "LogSoftmaxComposed", (x, d) => x.LogSoftmaxComposed(d)),
            ("LogSumExp", "LogSumExp", (x, d) => x.LogSumExp(d)),
            ("LogSumExp keepDim", "LogSumExp", (x, d) => x.LogSumExp(d, keepDim: true)),
            ("LogSumExpComposed", "LogSumExpComposed", (x, d) => x.LogSumExpComposed(d)),
            ("LogSumExpComposed keepDim", "LogSumExpComposed", (x, d) => x.LogSumExpComposed(d, keepDim: true)),
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
        foreach (var (name, op, f) in softmax)
        {
            foreach (var (shape, d) in softmaxShapes)
            {
                yield return Row(op, $"{name}({d}) {shape}", t => f(t[0], d), [shape]);
            }

            // Long rows: the contiguous kernels (inner = 1) and the strided ones (a long inner run). The composed forms
            // are built from kernels checked at the long length above, so one long shape suffices for them; second
            // order at the long length is checked for the fused softmax and log-softmax, whose backward is a kernel too.
            var composed = name.Contains("Composed", StringComparison.Ordinal);
            yield return Row(op, $"{name}(0) [{Long}]", t => f(t[0], 0), [S(Long)], order: name is "Softmax" or "LogSoftmax" ? 2 : 1);
            if (!composed)
            {
                yield return Row(op, $"{name}(0) [2,{Long}]", t => f(t[0], 0), [S(2, Long)], order: 1);
            }
        }

        // The fused operators on inputs of scale 1.5 (rank 1: [5], rank 2: [3,4], rank 3: [2,3,4]), every dim.
        var fused = new (string Op, string Args, Func<Tensor, int, Tensor> F)[]
        {
            ("Softmax", string.Empty, (x, d) => x.Softmax(d)),
            ("LogSoftmax", string.Empty, (x, d) => x.LogSoftmax(d)),
            ("LogSumExp", ", keepDim: true", (x, d) => x.LogSumExp(d, keepDim: true)),
            ("LogSumExp", string.Empty, (x, d) => x.LogSumExp(d)),
        };
        foreach (var (op, args, f) in fused)
        {
            foreach (var (rank, dim) in new[] { (1, 0), (1, -1), (2, 0), (2, 1), (2, -2), (3, 1), (3, -1), (3, -3) })
            {
                var shape = rank switch { 1 => S(5), 2 => S(3, 4), _ => S(2, 3, 4) };
                var seed = 10 + rank + dim;
                yield return new OpCase(op, $"{op}({dim}{args}) {shape}, std 1.5, seed {seed}", t => f(t[0], dim), Fixed(Tensor.RandN(shape, seed, std: 1.5))) { GradGradSeed = 3 };
            }
        }

        // The fused backward operators, differentiable in both the gradient and the output.
        var fusedBackward = new (string Name, Func<Tensor, Tensor, int, Tensor> F, Func<Tensor, int, Tensor> Forward)[]
        {
            ("SoftmaxBackward", Tensor.SoftmaxBackward, (x, d) => x.Softmax(d)),
            ("LogSoftmaxBackward", Tensor.LogSoftmaxBackward, (x, d) => x.LogSoftmax(d)),
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
        foreach (var (name, f, forward) in fusedBackward)
        {
            foreach (var (shape, d) in fusedShapes)
            {
                yield return Row(name, $"{name}(g, y, {d}) {shape}", t => f(t[0], t[1], d), [shape, shape], order: shape.ElementCount < 1000 ? 2 : 1);
            }

            // y a real softmax / log-softmax output, as in use.
            yield return Row(name, $"{name}(g, y(x), 1) of x [3,5]", t => f(t[0], forward(t[1], 1), 1), [S(3, 5), S(3, 5)]);

            // y a leaf holding the output of the forward operator on an input of scale 1.5.
            foreach (var (rank, dim) in new[] { (2, 1), (2, 0), (3, -2), (1, 0) })
            {
                var shape = rank switch { 1 => S(5), 2 => S(3, 4), _ => S(2, 3, 4) };
                var y = forward(Tensor.RandN(shape, 20 + rank, std: 1.5), dim);
                var g = Tensor.RandN(shape, 30 + rank);
                yield return new OpCase(name, $"{name}(g, y, {dim}) {shape}, y the forward's output, seeds {30 + rank}, {20 + rank}", t => f(t[0], t[1], dim), Fixed(g, y)) { GradGradSeed = 5 };
            }
        }
    }

    // ---------------------------------------------------------------- Where, Maximum, Minimum, Clamp, comparisons

    private static IEnumerable<OpCase> ComparisonRows()
    {
        // Inputs standard normal, or on a grid (see Grid) with one offset per input, so no two inputs tie.
        static OpCase Cmp(string op, string name, Func<Tensor[], Tensor> f, Shape[] shapes, double[]? offsets = null)
            => new(op, name, f, SeedRule.Comparison.Leaves(name, shapes, offsets is null ? [Normal] : [.. offsets.Select(Grid)]));

        // Where: broadcasting of all three, rank-0 and size-1 operands.
        var wheres = new (Shape C, Shape A, Shape B)[]
        {
            (S(7), S(7), S(7)),
            (S(2, 3), S(3), S(2, 1)),
            (S(2, 1, 3), S(1, 4, 1), S(3)),
            (S(), S(2, 2), S()),
            (S(2, 2), S(), S()),
            (S(1), S(1), S(1)),
            (S(4, 1), S(1), S(1, 5)),
            (S(3), S(2, 1, 3), S(2, 3, 1)),
        };
        var seed = 0;
        foreach (var (sc, sa, sb) in wheres)
        {
            var cond = RandMask(sc, ++seed);
            yield return Cmp("Where", $"Where c{sc} a{sa} b{sb}", t => Tensor.Where(cond, t[0], t[1]), [sa, sb]);
        }

        yield return Cmp("Where", "Where(c, a, 0.5)", t => Tensor.Where(RandMask(S(2, 3), 41), t[0], 0.5), [S(2, 3)]);
        yield return Cmp("Where", "Where(c, -2.0, b)", t => Tensor.Where(RandMask(S(2, 3), 42), -2.0, t[0]), [S(3)]);
        yield return Cmp("Where", "Where(x > 0, x², y)", t => Tensor.Where(t[0].Gt(0), t[0] * t[0], t[1]), [S(2, 4), S(4)], [0.03, 0.07]);
        yield return Cmp("Where", "masked softmax: Softmax(Where(mask, x, -1e9))", t => Tensor.Where(RandMask(S(3, 5), 43).Add(Tensor.From(1.0, 0, 0, 0, 0)), t[0], -1e9).Softmax(-1), [S(3, 5)]);

        // Maximum and Minimum: inputs on different grids, so no ties.
        var extrema = new (Shape A, Shape B)[]
        {
            (S(7), S(7)),
            (S(2, 3), S(3)),
            (S(2, 1), S(1, 3)),
            (S(), S(4)),
            (S(2, 1, 3), S(1)),
            (S(1, 1), S(2, 1, 1)),
        };
        foreach (var (sa, sb) in extrema)
        {
            yield return Cmp("Maximum", $"Maximum a{sa} b{sb}", t => t[0].Maximum(t[1]), [sa, sb], [0.03, 0.07]);
            yield return Cmp("Minimum", $"Minimum a{sa} b{sb}", t => t[0].Minimum(t[1]), [sa, sb], [0.03, 0.07]);
        }

        yield return Cmp("Maximum", "Maximum(0.05) [2,3]", t => t[0].Maximum(0.05), [S(2, 3)], [0.03]);
        yield return Cmp("Minimum", "Minimum(-0.05) [2,3]", t => t[0].Minimum(-0.05), [S(2, 3)], [0.03]);
        yield return Cmp("Maximum", "leaky relu: Maximum(x, 0.1x) [9]", t => t[0].Maximum(0.1 * t[0]), [S(9)], [0.03]);
        yield return Cmp("Maximum", "Maximum(x², y) [5]", t => (t[0] * t[0]).Maximum(t[1]), [S(5), S(5)], [0.03, 0.0]);

        // Clamp: grid values stay at least 0.02 from every bound.
        yield return Cmp("Clamp", "Clamp(-0.45, 0.35) [9]", t => t[0].Clamp(-0.45, 0.35), [S(9)], [0.03]);
        yield return Cmp("Clamp", "Clamp(-0.45, 0.35) [2,1,4]", t => t[0].Clamp(-0.45, 0.35), [S(2, 1, 4)], [0.03]);
        yield return Cmp("Clamp", "Clamp(min: -0.25) [3,3]", t => t[0].Clamp(min: -0.25), [S(3, 3)], [0.03]);
        yield return Cmp("Clamp", "Clamp(max: 0.15) [3,3]", t => t[0].Clamp(max: 0.15), [S(3, 3)], [0.03]);
        yield return Cmp("Clamp", "Clamp(-1, 1) []", t => t[0].Clamp(-1, 1), [S()], [0.03]);
        yield return Cmp("Clamp", "clipped square: Clamp(x, -0.35, 0.35)·x [8]", t => t[0].Clamp(-0.35, 0.35) * t[0], [S(8)], [0.03]);

        // A mask times its input: the comparison is a constant away from its jump.
        yield return Cmp("Gt", "x ⊙ [x > 0] [8]", t => t[0] * t[0].Gt(0), [S(8)], [0.03]);
    }

    // ---------------------------------------------------------------- indexing

    private static IEnumerable<OpCase> IndexingRows()
    {
        // Standard-normal inputs.
        static OpCase Idx(string op, string name, Func<Tensor[], Tensor> f, Shape[] shapes)
            => new(op, name, f, SeedRule.Indexing.Leaves(name, shapes, [Normal]));

        // Gather: index shapes equal to, longer than and shorter than x; negative dims; size-1 dims; repeated indices.
        var gathers = new (Shape X, int Dim, Shape Index)[]
        {
            (S(5), 0, S(7)),
            (S(3, 4), 0, S(3, 4)),
            (S(3, 4), 1, S(3, 6)),
            (S(3, 4), -1, S(2, 2)),
            (S(3, 4), -2, S(5, 1)),
            (S(2, 3, 4), 1, S(2, 5, 4)),
            (S(2, 3, 4), -3, S(1, 3, 2)),
            (S(2, 1, 3), 1, S(2, 4, 3)),
            (S(1, 1), -1, S(1, 3)),
            (S(), 0, S()),
        };
        var seed = 0;
        foreach (var (sx, dim, si) in gathers)
        {
            var high = sx.Rank == 0 ? 1 : sx[dim];
            var index = RandIndex(si, high, ++seed);
            yield return Idx("Gather", $"Gather({dim}) x{sx} index{si}", t => t[0].Gather(dim, index), [sx]);
        }

        // ScatterAdd, differentiable in the base and the source.
        var scatters = new (Shape X, int Dim, Shape Index)[]
        {
            (S(5), 0, S(8)),
            (S(3, 4), 0, S(2, 4)),
            (S(3, 4), -1, S(3, 7)),
            (S(2, 3, 4), 1, S(2, 2, 3)),
            (S(2, 1, 3), -2, S(2, 3, 3)),
            (S(), -1, S()),
        };
        foreach (var (sx, dim, si) in scatters)
        {
            var high = sx.Rank == 0 ? 1 : sx[dim];
            var index = RandIndex(si, high, ++seed);
            yield return Idx("ScatterAdd", $"ScatterAdd({dim}) x{sx} src{si}", t => t[0].ScatterAdd(dim, index, t[1]), [sx, si]);
        }

        yield return Idx("ScatterAdd", "Zeros.ScatterAdd(1) src[3,5] (as Gather's backward)", t => Tensor.Zeros(3, 2).ScatterAdd(1, RandIndex(S(3, 5), 2, 77), t[0]), [S(3, 5)]);

        // IndexSelect and IndexAdd.
        var selects = new (Shape X, int Dim, long[] Index)[]
        {
            (S(6), 0, [5, 0, 5, 2]),
            (S(3, 4), 0, [2, 0, 2]),
            (S(3, 4), -1, [3, 1]),
            (S(2, 3, 4), 1, [1, 1, 0, 2, 1]),
            (S(2, 3, 4), -3, [1]),
            (S(2, 1, 3), 1, [0, 0]),
            (S(3, 4), 1, []),
        };
        foreach (var (sx, dim, idx) in selects)
        {
            var index = I(idx);
            yield return Idx("IndexSelect", $"IndexSelect({dim}, [{string.Join(",", idx)}]) x{sx}", t => t[0].IndexSelect(dim, index), [sx]);

            var dims = sx.ToArray();
            dims[dim < 0 ? dim + sx.Rank : dim] = idx.Length;
            yield return Idx("IndexAdd", $"IndexAdd({dim}, [{string.Join(",", idx)}]) x{sx}", t => t[0].IndexAdd(dim, index, t[1]), [sx, S(dims)]);
        }

        yield return Idx("IndexSelect", "IndexSelect(0, rank-0 index) x[3,2]", t => t[0].IndexSelect(0, Tensor.FromArray([2L], [])), [S(3, 2)]);

        // Narrow and Slice.
        yield return Idx("Narrow", "Narrow(0, 2, 3) x[7]", t => t[0].Narrow(0, 2, 3), [S(7)]);
        yield return Idx("Narrow", "Narrow(0, -3, 3) x[7]", t => t[0].Narrow(0, -3, 3), [S(7)]);
        yield return Idx("Narrow", "Narrow(1, 1, 2) x[3,4]", t => t[0].Narrow(1, 1, 2), [S(3, 4)]);
        yield return Idx("Narrow", "Narrow(-1, 0, 1) x[2,3,4]", t => t[0].Narrow(-1, 0, 1), [S(2, 3, 4)]);
        yield return Idx("Narrow", "Narrow(-2, 0, 1) x[2,1,3]", t => t[0].Narrow(-2, 0, 1), [S(2, 1, 3)]);
        yield return Idx("Narrow", "Narrow(0, 3, 0) x[3,2] (empty)", t => t[0].Narrow(0, 3, 0), [S(3, 2)]);
        yield return Idx("Slice", "Slice(0, 1, 8, 3) x[9]", t => t[0].Slice(0, 1, 8, 3), [S(9)]);
        yield return Idx("Slice", "Slice(0, -4, MaxValue) x[9]", t => t[0].Slice(0, -4, int.MaxValue), [S(9)]);
        yield return Idx("Slice", "Slice(1, 0, 4, 2) x[3,4]", t => t[0].Slice(1, 0, 4, 2), [S(3, 4)]);
        yield return Idx("Slice", "Slice(-2, -100, 100, 2) x[2,5,3]", t => t[0].Slice(-2, -100, 100, 2), [S(2, 5, 3)]);
        yield return Idx("Slice", "Slice(-1, 1, -1) x[2,3,4]", t => t[0].Slice(-1, 1, -1), [S(2, 3, 4)]);
        yield return Idx("Slice", "Slice(1, 0, 1, 5) x[2,1,3]", t => t[0].Slice(1, 0, 1, 5), [S(2, 1, 3)]);

        // The padding operator of their backward, differentiated in turn (third order of Slice and Narrow).
        yield return Idx("SliceBackward", "SliceBackward(g[3] into [9], 0, start 1, step 3)", t => Indexing.SliceBackward(t[0], S(9), 0, 1, 3), [S(3)]);
        yield return Idx("SliceBackward", "SliceBackward(g[2,2] into [2,5], 1, start 0, step 3)", t => Indexing.SliceBackward(t[0], S(2, 5), 1, 0, 3), [S(2, 2)]);
        yield return Idx("SliceBackward", "SliceBackward(g[2,1,3] into [2,4,3], 1, start 2, step 1)", t => Indexing.SliceBackward(t[0], S(2, 4, 3), 1, 2, 1), [S(2, 1, 3)]);

        // Concat and Stack: one to three inputs, every dim, negative dims, size-1 and empty parts.
        yield return Idx("Concat", "Concat([a], 0) [3]", t => Tensor.Concat([t[0]], 0), [S(3)]);
        yield return Idx("Concat", "Concat([a, b], 0) [2],[3]", t => Tensor.Concat([t[0], t[1]], 0), [S(2), S(3)]);
        yield return Idx("Concat", "Concat([a, b], 0) [1,3],[2,3]", t => Tensor.Concat([t[0], t[1]], 0), [S(1, 3), S(2, 3)]);
        yield return Idx("Concat", "Concat([a, b, c], 1) [2,1],[2,3],[2,2]", t => Tensor.Concat([t[0], t[1], t[2]], 1), [S(2, 1), S(2, 3), S(2, 2)]);
        yield return Idx("Concat", "Concat([a, b], -1) [2,3,1],[2,3,2]", t => Tensor.Concat([t[0], t[1]], -1), [S(2, 3, 1), S(2, 3, 2)]);
        yield return Idx("Concat", "Concat([a, b], -2) [2,1,4],[2,2,4]", t => Tensor.Concat([t[0], t[1]], -2), [S(2, 1, 4), S(2, 2, 4)]);
        yield return Idx("Concat", "Concat([a, b, a], -3) [1,2,2],[2,2,2]", t => Tensor.Concat([t[0], t[1], t[0]], -3), [S(1, 2, 2), S(2, 2, 2)]);
        yield return Idx("Concat", "Concat([a, empty, b], 0) [2,2],[0,2],[1,2]", t => Tensor.Concat([t[0], t[1], t[2]], 0), [S(2, 2), S(0, 2), S(1, 2)]);
        yield return Idx("Concat", "Concat([a, const], 1) [2,2]", t => Tensor.Concat([t[0], Tensor.Ones(2, 3)], 1), [S(2, 2)]);
        yield return Idx("Stack", "Stack([a], 0) [3]", t => Tensor.Stack([t[0]], 0), [S(3)]);
        yield return Idx("Stack", "Stack([a, b], 0) [3],[3]", t => Tensor.Stack([t[0], t[1]], 0), [S(3), S(3)]);
        yield return Idx("Stack", "Stack([a, b, c], 1) [2,3]", t => Tensor.Stack([t[0], t[1], t[2]], 1), [S(2, 3), S(2, 3), S(2, 3)]);
        yield return Idx("Stack", "Stack([a, b], -1) [2,1]", t => Tensor.Stack([t[0], t[1]], -1), [S(2, 1), S(2, 1)]);
        yield return Idx("Stack", "Stack([a, b], -3) [2,3]", t => Tensor.Stack([t[0], t[1]], -3), [S(2, 3), S(2, 3)]);
        yield return Idx("Stack", "Stack([a, b, a], 0) []", t => Tensor.Stack([t[0], t[1], t[0]], 0), [S(), S()]);
        yield return Idx("Stack", "Stack([a, a·b], 2) [2,2]", t => Tensor.Stack([t[0], t[0] * t[1]], 2), [S(2, 2), S(2, 2)]);
    }

    // ---------------------------------------------------------------- convolutions

    private static IEnumerable<OpCase> ConvolutionRows()
    {
        // Conv2d: stride 1 and 2, padding, dilation 2, groups 2 and depthwise, bias or none, odd sizes, 1×1 kernels.
        yield return Row("Conv2d", "Conv2d x[2,2,5,5] w[3,2,3,3] bias", t => t[0].Conv2d(t[1], t[2]), [S(2, 2, 5, 5), S(3, 2, 3, 3), S(3)]);
        yield return Row("Conv2d", "Conv2d x[2,2,4,5] w[3,2,3,3] no bias", t => t[0].Conv2d(t[1]), [S(2, 2, 4, 5), S(3, 2, 3, 3)]);
        yield return Row("Conv2d", "Conv2d stride 2 padding 1 x[1,2,6,5] w[2,2,3,3] bias", t => t[0].Conv2d(t[1], t[2], stride: 2, padding: 1), [S(1, 2, 6, 5), S(2, 2, 3, 3), S(2)]);
        yield return Row("Conv2d", "Conv2d dilation 2 x[1,2,7,7] w[2,2,3,3]", t => t[0].Conv2d(t[1], dilation: 2), [S(1, 2, 7, 7), S(2, 2, 3, 3)]);
        yield return Row("Conv2d", "Conv2d stride (2,1) padding (1,2) dilation (1,2) x[1,2,6,5] w[2,2,3,2] bias", t => t[0].Conv2d(t[1], t[2], (2, 1), (1, 2), (1, 2)), [S(1, 2, 6, 5), S(2, 2, 3, 2), S(2)]);
        yield return Row("Conv2d", "Conv2d groups 2 padding 1 x[1,4,4,4] w[4,2,3,3] bias", t => t[0].Conv2d(t[1], t[2], padding: 1, groups: 2), [S(1, 4, 4, 4), S(4, 2, 3, 3), S(4)]);
        yield return Row("Conv2d", "Conv2d depthwise groups 3 padding 1 x[2,3,4,4] w[3,1,3,3]", t => t[0].Conv2d(t[1], padding: 1, groups: 3), [S(2, 3, 4, 4), S(3, 1, 3, 3)]);
        yield return Row("Conv2d", "Conv2d depthwise ×2 groups 2 stride 2 x[1,2,5,5] w[4,1,2,2] bias", t => t[0].Conv2d(t[1], t[2], stride: 2, groups: 2), [S(1, 2, 5, 5), S(4, 1, 2, 2), S(4)]);
        yield return Row("Conv2d", "Conv2d odd sizes stride (2,3) padding (1,0) x[3,1,5,4] w[2,1,2,3] bias", t => t[0].Conv2d(t[1], t[2], (2, 3), (1, 0)), [S(3, 1, 5, 4), S(2, 1, 2, 3), S(2)]);
        yield return Row("Conv2d", "Conv2d 1×1 x[2,3,3,4] w[2,3,1,1] bias", t => t[0].Conv2d(t[1], t[2]), [S(2, 3, 3, 4), S(2, 3, 1, 1), S(2)]);
        yield return Row("Conv2d", "Conv2d 1×1 stride 2 x[1,3,5,4] w[2,3,1,1]", t => t[0].Conv2d(t[1], stride: 2), [S(1, 3, 5, 4), S(2, 3, 1, 1)]);
        yield return Row("Conv2d", "Conv2d kernel as large as the padded input x[1,2,2,3] w[2,2,4,3] padding (1,0)", t => t[0].Conv2d(t[1], null, (1, 1), (1, 0)), [S(1, 2, 2, 3), S(2, 2, 4, 3)]);
        yield return Row("Conv2d", "Conv2d then Tanh then Conv2d x[1,1,6,6] w1[2,1,3,3] w2[2,2,2,2]", t => t[0].Conv2d(t[1], t[2], padding: 1).Tanh().Conv2d(t[3], stride: 2), [S(1, 1, 6, 6), S(2, 1, 3, 3), S(2), S(2, 2, 2, 2)]);

        // Conv1d, through Conv2d of height 1.
        yield return Row("Conv1d", "Conv1d x[2,3,7] w[2,3,3] bias", t => t[0].Conv1d(t[1], t[2]), [S(2, 3, 7), S(2, 3, 3), S(2)]);
        yield return Row("Conv1d", "Conv1d stride 2 padding 1 x[2,2,8] w[3,2,3]", t => t[0].Conv1d(t[1], stride: 2, padding: 1), [S(2, 2, 8), S(3, 2, 3)]);
        yield return Row("Conv1d", "Conv1d dilation 2 x[1,2,9] w[2,2,3] bias", t => t[0].Conv1d(t[1], t[2], dilation: 2), [S(1, 2, 9), S(2, 2, 3), S(2)]);
        yield return Row("Conv1d", "Conv1d depthwise groups 4 padding 1 x[1,4,5] w[4,1,3]", t => t[0].Conv1d(t[1], padding: 1, groups: 4), [S(1, 4, 5), S(4, 1, 3)]);

        // The two backward operators, differentiated in turn (third derivatives of Conv2d).
        yield return Row("Conv2dBackwardInput", "Conv2dBackwardInput g[1,2,3,3] w[2,2,3,3] into [1,2,5,5]", t => Convolution.Conv2dBackwardInput(t[0], t[1], S(1, 2, 5, 5), (1, 1), (0, 0), (1, 1), 1), [S(1, 2, 3, 3), S(2, 2, 3, 3)]);
        yield return Row("Conv2dBackwardInput", "Conv2dBackwardInput stride 2 padding 1 g[1,2,3,3] w[2,2,3,3] into [1,2,6,5]", t => Convolution.Conv2dBackwardInput(t[0], t[1], S(1, 2, 6, 5), (2, 2), (1, 1), (1, 1), 1), [S(1, 2, 3, 3), S(2, 2, 3, 3)]);
        yield return Row("Conv2dBackwardInput", "Conv2dBackwardInput groups 2 dilation 2 g[1,4,1,3] w[4,2,2,2] into [1,4,3,5]", t => Convolution.Conv2dBackwardInput(t[0], t[1], S(1, 4, 3, 5), (1, 1), (0, 0), (2, 2), 2), [S(1, 4, 1, 3), S(4, 2, 2, 2)]);
        yield return Row("Conv2dBackwardWeight", "Conv2dBackwardWeight g[1,2,3,3] x[1,2,5,5] into [2,2,3,3]", t => Convolution.Conv2dBackwardWeight(t[0], t[1], S(2, 2, 3, 3), (1, 1), (0, 0), (1, 1), 1), [S(1, 2, 3, 3), S(1, 2, 5, 5)]);
        yield return Row("Conv2dBackwardWeight", "Conv2dBackwardWeight stride 2 padding 1 g[2,2,3,3] x[2,2,6,5] into [2,2,3,3]", t => Convolution.Conv2dBackwardWeight(t[0], t[1], S(2, 2, 3, 3), (2, 2), (1, 1), (1, 1), 1), [S(2, 2, 3, 3), S(2, 2, 6, 5)]);
        yield return Row("Conv2dBackwardWeight", "Conv2dBackwardWeight groups 2 dilation 2 g[1,4,1,3] x[1,4,3,5] into [4,2,2,2]", t => Convolution.Conv2dBackwardWeight(t[0], t[1], S(4, 2, 2, 2), (1, 1), (0, 0), (2, 2), 2), [S(1, 4, 1, 3), S(1, 4, 3, 5)]);
    }

    // ---------------------------------------------------------------- pooling

    private static IEnumerable<OpCase> PoolingRows()
    {
        // Distinct inputs (no ties, so max pooling is differentiable); kernels, strides and paddings of both shapes.
        var geometries = new (Shape X, (int, int) K, (int, int)? S, (int, int) P)[]
        {
            (S(1, 1, 4, 4), (2, 2), null, (0, 0)),
            (S(2, 3, 5, 5), (3, 3), (2, 2), (1, 1)),
            (S(2, 4, 5), (2, 3), (1, 2), (1, 1)),
            (S(1, 2, 3, 6), (3, 2), (1, 1), (0, 1)),
            (S(1, 1, 2, 2), (2, 2), (1, 1), (1, 1)),
        };
        foreach (var (sx, k, s, p) in geometries)
        {
            var args = $"k{k} s{s?.ToString() ?? "null"} p{p}";
            yield return Row("MaxPool2d", $"MaxPool2d {args} x{sx}", t => t[0].MaxPool2d(k, s, p), [sx], Distinct);
            yield return Row("AvgPool2d", $"AvgPool2d {args} x{sx}", t => t[0].AvgPool2d(k, s, p), [sx]);
            yield return Row("AvgPool2d", $"AvgPool2d {args} countIncludePad false x{sx}", t => t[0].AvgPool2d(k, s, p, countIncludePad: false), [sx]);
        }

        yield return Row("MaxPool2d", "MaxPool2d(3, 2, 1) x[1,2,7,7]", t => t[0].MaxPool2d(3, 2, 1), [S(1, 2, 7, 7)], Distinct);
        yield return Row("AvgPool2d", "AvgPool2d(2) x[3,4,4]", t => t[0].AvgPool2d(2), [S(3, 4, 4)]);

        // Ties built on purpose: one leaf value appears twice in a window, so moving it moves both copies and the
        // derivative is 1 whichever copy takes the gradient; a rule that gave it to every tied copy would give 2.
        yield return Row("MaxPool2d", "MaxPool2d(2, 1) ties: Concat([x, x], -1) x[1,1,4,1]", t => Tensor.Concat([t[0], t[0]], -1).MaxPool2d(2, 1), [S(1, 1, 4, 1)], Distinct);
        yield return Row("MaxPool2d", "MaxPool2d(2, 1, 1) ties: Concat([x, x], -2) x[2,1,1,3]", t => Tensor.Concat([t[0], t[0]], -2).MaxPool2d(2, 1, 1), [S(2, 1, 1, 3)], Distinct);

        yield return Row("AdaptiveAvgPool2d", "AdaptiveAvgPool2d(1) x[2,3,4,5]", t => t[0].AdaptiveAvgPool2d(1), [S(2, 3, 4, 5)]);
        yield return Row("AdaptiveAvgPool2d", "AdaptiveAvgPool2d(1) x[3,2,2]", t => t[0].AdaptiveAvgPool2d(1), [S(3, 2, 2)]);
        yield return Row("AdaptiveAvgPool2d", "AdaptiveAvgPool2d((2, 3)) x[1,2,4,6]", t => t[0].AdaptiveAvgPool2d((2, 3)), [S(1, 2, 4, 6)]);
    }

    // ---------------------------------------------------------------- layer norm, batch norm

    private static IEnumerable<OpCase> NormalizationRows()
    {
        var layerNorms = new (string Op, Func<Tensor, int[], Tensor?, Tensor?, double, Tensor> F)[]
        {
            ("LayerNorm", (x, n, w, b, eps) => x.LayerNorm(n, w, b, eps)),
            ("LayerNormComposed", (x, n, w, b, eps) => x.LayerNormComposed(n, w, b, eps)),
        };
        var shapes = new (Shape X, int[] Normalized)[]
        {
            (S(3, 5), [5]),
            (S(2, 3, 4), [4]),
            (S(2, 3, 4), [3, 4]),
            (S(6), [6]),
            (S(4, 1), [1]),
        };
        foreach (var (op, f) in layerNorms)
        {
            foreach (var (sx, n) in shapes)
            {
                var ns = new Shape(n);
                var args = $"[{string.Join(",", n)}]";
                yield return Row(op, $"{op}({args}) x{sx}", t => f(t[0], n, null, null, 1e-5), [sx]);
                yield return Row(op, $"{op}({args}, w, b) x{sx}", t => f(t[0], n, t[1], t[2], 1e-5), [sx, ns, ns]);
                yield return Row(op, $"{op}({args}, w) x{sx}", t => f(t[0], n, t[1], null, 1e-5), [sx, ns]);
                yield return Row(op, $"{op}({args}, null, b, eps 0.5) x{sx}", t => f(t[0], n, null, t[1], 0.5), [sx, ns]);
            }
        }

        // The fused backward operator, differentiable in the gradient and the input.
        foreach (var (sx, n) in shapes)
        {
            yield return Row("LayerNormBackward", $"LayerNormBackward(g, x, [{string.Join(",", n)}]) x{sx}", t => Tensor.LayerNormBackward(t[0], t[1], n), [sx, sx]);
        }

        yield return Row("LayerNormBackward", "LayerNormBackward(g, x, [7], eps 0.3) x[2,7]", t => Tensor.LayerNormBackward(t[0], t[1], [7], 0.3), [S(2, 7), S(2, 7)]);

        // Batch norm: batch statistics (the running ones, fresh on every call, are updated as a side effect) and running ones.
        var batchShapes = new[] { S(4, 3), S(3, 2, 5), S(2, 3, 2, 2) };
        foreach (var sx in batchShapes)
        {
            var c = sx[1];
            Tensor Mean() => Tensor.RandN(S(c), 5) * 0.3;
            Tensor Var() => Tensor.Rand(S(c), 6, low: 0.5, high: 2.0);
            yield return Row("BatchNorm", $"BatchNorm training x{sx}", t => t[0].BatchNorm(Mean(), Var(), training: true), [sx]);
            yield return Row("BatchNorm", $"BatchNorm training, no running stats, w, b x{sx}", t => t[0].BatchNorm(null, null, t[1], t[2], training: true), [sx, S(c), S(c)]);
            yield return Row("BatchNorm", $"BatchNorm eval w, b x{sx}", t => t[0].BatchNorm(Mean(), Var(), t[1], t[2]), [sx, S(c), S(c)]);
        }
    }

    // ---------------------------------------------------------------- embedding and attention

    private static IEnumerable<OpCase> AttentionRows()
    {
        static OpCase Att(string op, string name, Func<Tensor[], Tensor> f, Shape[] shapes)
            => new(op, name, f, SeedRule.Attention.Leaves(name, shapes, [Normal]));

        // Embedding: repeated indices, every rank of index, a padding row named and not named.
        var tokens = Tensor.FromArray(new long[] { 1, 3, 1, 0, 4, 1 }, 2, 3);
        yield return Att("Embedding", "Embedding(tokens[2,3] with repeats) W[5,3]", t => Tensor.Embedding(tokens, t[0]), [S(5, 3)]);
        yield return Att("Embedding", "Embedding(rank-0 index) W[4,2]", t => Tensor.Embedding(Tensor.FromArray([2L], []), t[0]), [S(4, 2)]);
        yield return Att("Embedding", "Embedding(tokens[7]) W[4,1]·Tanh", t => Tensor.Embedding(I(0, 3, 3, 2, 1, 0, 3), t[0]).Tanh(), [S(4, 1)]);

        // The padding row is looked up but takes no gradient, so finite differences see it only when its value does
        // not depend on the input: the table passed in holds a constant there (Where), and the rows check the others.
        static Tensor PadRow(Tensor w, int pad) => Tensor.Where(Tensor.OneHot(I(pad < 0 ? pad + w.Shape[0] : pad), w.Shape[0]).Reshape(w.Shape[0], 1), 0.5, w);
        yield return Att("Embedding", "Embedding(tokens[2,3], padding 1) W[5,3]", t => Tensor.Embedding(tokens, PadRow(t[0], 1), paddingIndex: 1), [S(5, 3)]);
        yield return Att("Embedding", "Embedding(tokens[2,3], padding -1) W[5,3]", t => Tensor.Embedding(tokens, PadRow(t[0], -1), paddingIndex: -1), [S(5, 3)]);
        yield return Att("Embedding", "Embedding(tokens[2,3], padding 2, not named) W[5,3]", t => Tensor.Embedding(tokens, t[0], paddingIndex: 2), [S(5, 3)]);
        yield return Att("Embedding", "Embedding(tokens[2,2,2], padding 0)·v", t => Tensor.Embedding(I(0, 1, 2, 0, 2, 2, 1, 0).Reshape(2, 2, 2), PadRow(t[0], 0), 0).MatMul(t[1]).Tanh(), [S(3, 4), S(4, 2)]);

        // Attention, fused and composed, differentiated in q, k and v.
        var mask = Tensor.FromArray(new long[] { 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0 }, 3, 5);
        var floatMask = Tensor.FromArray(new double[] { 1, 1, 0, 1, 1, 0, 1, 0 }, 1, 2, 1, 4);
        var attention = new (string Name, Shape Q, Shape K, Shape V, Tensor? Mask, bool Causal, double? Scale)[]
        {
            ("[2,3,4]·[2,5,4]·[2,5,2]", S(2, 3, 4), S(2, 5, 4), S(2, 5, 2), null, false, null),
            ("mask [3,5]", S(2, 3, 4), S(2, 5, 4), S(2, 5, 2), mask, false, null),
            ("causal [4,4]", S(4, 3), S(4, 3), S(4, 2), null, true, null),
            ("causal Lq 5 > Lk 3, scale 0.8", S(5, 2), S(3, 2), S(3, 3), null, true, 0.8),
            ("mask [1,2,1,4] and causal, heads", S(2, 2, 3, 2), S(2, 2, 4, 2), S(2, 2, 4, 2), floatMask, true, null),
            ("broadcast batch q[2,1,3,2] k[2,4,2] v[4,3]", S(2, 1, 3, 2), S(2, 4, 2), S(4, 3), null, false, 0.5),
            ("v's batch the largest: q[3,2] k[1,4,2] v[2,4,3], mask [2,1,4]", S(3, 2), S(1, 4, 2), S(2, 4, 3), Tensor.FromArray(new double[] { 1, 1, 0, 1, 1, 0, 1, 1 }, 2, 1, 4), false, null),
        };
        foreach (var (name, sq, sk, sv, m, causal, scale) in attention)
        {
            yield return Att("ScaledDotProductAttention", $"ScaledDotProductAttention {name}", t => Tensor.ScaledDotProductAttention(t[0], t[1], t[2], m, causal, scale), [sq, sk, sv]);
            yield return Att("ScaledDotProductAttentionComposed", $"ScaledDotProductAttentionComposed {name}", t => Tensor.ScaledDotProductAttentionComposed(t[0], t[1], t[2], m, causal, scale), [sq, sk, sv]);
        }

        // The weights operator whose node gives the fused attention its second derivatives.
        yield return Att("AttentionWeights", "AttentionWeights [2,3,4]·[2,5,4]", t => Attention.AttentionWeights(t[0], t[1]), [S(2, 3, 4), S(2, 5, 4)]);
        yield return Att("AttentionWeights", "AttentionWeights mask [3,5], causal", t => Attention.AttentionWeights(t[0], t[1], mask, true, 0.9), [S(3, 4), S(5, 4)]);

        // Fused attention inside a larger function: the output used twice, q = k = v.
        yield return Att(Composition, "self-attention: ScaledDotProductAttention(x, x, x)·x", t => Tensor.ScaledDotProductAttention(t[0], t[0], t[0], causal: true) * t[0], [S(4, 3)]);
    }

    // ---------------------------------------------------------------- compositions

    private static IEnumerable<OpCase> CompositionRows()
    {
        // Scalar operators chained on a rank-0 tensor, an input used twice (gradients summed by the engine), a small
        // layer with a loss, attention, normalisation.
        yield return Row(Composition, "scalar ops on rank-0", t => (3.0 / ((2.0 * t[0]) + 4.0)) - 1.0, [S()], Positive);
        yield return Row(Composition, "x used twice: x*x + Exp(x)", t => (t[0] * t[0]) + t[0].Exp(), [S(7)]);
        yield return Row(Composition, "layer: Mean(LogSoftmax(Tanh(x·W + b)))", t => (t[0].MatMul(t[1]) + t[2]).Tanh().LogSoftmax(-1).Mean(), [S(4, 3), S(3, 5), S(5)]);
        yield return Row(Composition, "attention-like: Softmax(q·kᵀ/2)·v", t => (t[0].MatMul(t[1].Transpose(-1, -2)) / 2.0).Softmax(-1).MatMul(t[2]), [S(2, 3, 4), S(2, 5, 4), S(2, 5, 2)]);
        yield return Row(Composition, "normalise: (x - Mean) / Sqrt(Var + 1)", t =>
        {
            var c = t[0] - t[0].Mean(-1, keepDim: true);
            return c / ((c * c).Mean(-1, keepDim: true) + 1.0).Sqrt();
        }, [S(3, 9)]);

        // Indexing as networks use it.
        static OpCase Idx(string name, Func<Tensor[], Tensor> f, Shape[] shapes)
            => new(Composition, name, f, SeedRule.Indexing.Leaves(name, shapes, [Normal]));

        yield return Idx("Slice then Narrow x[4,6]", t => t[0].Slice(1, 1, 6, 2).Narrow(0, 1, 2) * t[0].Narrow(0, 0, 2).Slice(1, 0, 3), [S(4, 6)]);
        var targets = I(2, 0, 3);
        yield return Idx("cross-entropy: -Mean(Gather(LogSoftmax(x), targets))", t => -t[0].LogSoftmax(1).Gather(1, targets.Reshape(3, 1)).Mean(), [S(3, 4)]);
        yield return Idx("embedding: IndexSelect(W, tokens)·v", t => t[0].IndexSelect(0, I(1, 3, 1, 0)).MatMul(t[1]).Tanh(), [S(4, 3), S(3, 2)]);
        yield return Idx("split heads: Stack(Narrow(x)) then Concat", t =>
        {
            var h0 = t[0].Narrow(-1, 0, 2);
            var h1 = t[0].Narrow(-1, 2, 2);
            var heads = Tensor.Stack([h0, h1], 0).Exp();
            return Tensor.Concat([heads.Narrow(0, 1, 1), heads.Narrow(0, 0, 1)], -1) * t[0].Sum();
        }, [S(3, 4)]);
    }

    // ---------------------------------------------------------------- the functions of Autograd.Nn

    private static IEnumerable<OpCase> NnRows()
    {
        // Every reduction; the targets of a binary cross-entropy are differentiated too.
        var t = I(2, 0, 3);
        foreach (var r in new[] { Reduction.Mean, Reduction.Sum, Reduction.None })
        {
            yield return new("MseLoss", $"MseLoss {r}", a => Functional.MseLoss(a[0], a[1], r), Fixed(Tensor.RandN(S(3, 2), seed: 1), Tensor.RandN(S(3, 2), seed: 2)));
            yield return new("BinaryCrossEntropyWithLogits", $"BinaryCrossEntropyWithLogits {r}", a => Functional.BinaryCrossEntropyWithLogits(a[0], a[1], r), Fixed(Tensor.RandN(S(3, 2), seed: 3, std: 2), Tensor.Rand(S(3, 2), seed: 4)));
            yield return new("NllLoss", $"NllLoss {r}", a => Functional.NllLoss(a[0], t, r), Fixed(Tensor.RandN(S(3, 4), seed: 5)));
            yield return new("NllLoss", $"NllLoss∘LogSoftmax {r}", a => Functional.NllLoss(a[0].LogSoftmax(1), t, r), Fixed(Tensor.RandN(S(3, 4), seed: 5)));
            foreach (var eps in new[] { 0.0, 0.1, 1.0 })
            {
                yield return new("CrossEntropy", $"CrossEntropy {r} ε={eps}", a => Functional.CrossEntropy(a[0], t, r, eps), Fixed(Tensor.RandN(S(3, 4), seed: 6, std: 2)));
            }

            // Logits at 0, targets at 0, 1 and between.
            yield return new(
                "BinaryCrossEntropyWithLogits",
                $"BinaryCrossEntropyWithLogits at 0, {r}",
                a => Functional.BinaryCrossEntropyWithLogits(a[0], a[1], r),
                Fixed(Tensor.From(0.0, 0.0, 0.0, -0.7, 1.3), Tensor.From(0.0, 1.0, 0.4, 0.0, 1.0)));
        }

        // The exact GELU at fixed points, the origin included.
        yield return new("Gelu", "Gelu at -3, -1.2, -0.5, -1e-3, 0, 0.3, 1, 2.5", a => Functional.Gelu(a[0]), Fixed(Tensor.From(-3.0, -1.2, -0.5, -1e-3, 0.0, 0.3, 1.0, 2.5)));
    }
}
