using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>
/// A catalogue of misuses of the public API, one row each: the call, the exact exception type, and what its message must
/// say (the API the user called, then the shapes, dtypes or values at fault). Every call runs under a tape observer and
/// must record no node; where it is cheap a row also checks that the objects it touched did not change.
/// </summary>
public class BadInputCatalogueTests(ITestOutputHelper output)
{
    private static readonly Type AE = typeof(ArgumentException);
    private static readonly Type AOOR = typeof(ArgumentOutOfRangeException);
    private static readonly Type IOE = typeof(InvalidOperationException);
    private static readonly Type IDE = typeof(InvalidDataException);
    private static readonly Type FNF = typeof(FileNotFoundException);
    private static readonly Type KNF = typeof(KeyNotFoundException);

    private static readonly Misuse[] Catalogue = Build();

    public static TheoryData<string> Names() => [.. Catalogue.Select(m => m.Name)];

    /// <summary>The misuse throws the exact exception type, names the API and the values at fault, and records nothing.</summary>
    [Theory]
    [MemberData(nameof(Names))]
    public void AMisuseIsRefusedByNameBeforeAnythingIsRecordedOrChanged(string name)
    {
        var misuse = Catalogue.Single(m => m.Name == name);
        var (act, unchanged) = misuse.Arrange();
        var recorder = new Recorder();
        Exception? e;
        using (TapeObserver.Attach(recorder))
        {
            e = Record.Exception(act);
        }

        Assert.True(e is not null, $"{name}: no exception was thrown.");
        Assert.True(e.GetType() == misuse.Exception, $"{name}: expected {misuse.Exception.Name}, got {e.GetType().Name}: {e.Message}");
        foreach (var part in misuse.Parts)
        {
            Assert.True(e.Message.Contains(part, StringComparison.Ordinal), $"{name}: the message does not contain '{part}': {e.Message}");
        }

        Assert.True(recorder.Recorded == 0, $"{name}: {recorder.Recorded} node(s) were recorded before the call was refused.");
        unchanged?.Invoke();
    }

    /// <summary>The catalogue is broad: enough rows, unique names, and many distinct APIs.</summary>
    [Fact]
    public void TheCatalogueIsBroad()
    {
        var apis = Catalogue.Select(m => m.Parts[0]).Distinct(StringComparer.Ordinal).Count();
        output.WriteLine($"Bad-input catalogue: {Catalogue.Length} rows covering {apis} distinct APIs.");
        Assert.Equal(Catalogue.Length, Catalogue.Select(m => m.Name).Distinct(StringComparer.Ordinal).Count());
        Assert.True(Catalogue.Length >= 220, $"{Catalogue.Length} rows");
        Assert.True(apis >= 80, $"{apis} APIs");
    }

    /// <summary>One misuse: the first part of the message is the API the user called.</summary>
    public sealed record Misuse(string Name, Type Exception, Func<(Func<object?> Act, Action? Unchanged)> Arrange, string[] Parts);

    private sealed class Recorder : TapeObserver
    {
        public int Recorded { get; private set; }

        protected override void OnRecorded(Node node, Tensor output) => Recorded++;
    }

    private static Tensor X(params int[] shape) => Tensor.RandN(new Shape(shape), 1).WithRequiresGrad();

    private static Tensor X32(params int[] shape) => Tensor.RandN(new Shape(shape), 2, DType.Float32).WithRequiresGrad();

    private static Tensor Ints(params int[] shape) => Tensor.Zeros(new Shape(shape), DType.Int64);

    private static Tensor Idx(params long[] values) => Tensor.FromArray(values, values.Length);

    private static Func<object?> V(Action a) => () =>
    {
        a();
        return null;
    };

    private static (Func<object?>, Action?) Same(Func<object?> act, params Tensor[] tensors)
    {
        var before = tensors.Select(t => t.ToArray()).ToArray();
        void Unchanged()
        {
            for (var i = 0; i < tensors.Length; i++)
            {
                Assert.Equal(before[i], tensors[i].ToArray());
            }
        }

        return (act, Unchanged);
    }

    private static string TempPath(string name) => Path.Combine(Path.GetTempPath(), $"autograd-catalogue-{Guid.NewGuid():N}-{name}");

    private static Misuse[] Build()
    {
        var rows = new List<Misuse>();
        void Add(string name, Type type, Func<object?> act, params string[] parts) => rows.Add(new(name, type, () => (act, null), parts));
        void AddS(string name, Type type, Func<(Func<object?>, Action?)> arrange, params string[] parts) => rows.Add(new(name, type, arrange, parts));

        // ------------------------------------------------------------ factories and tensors
        Add("Zeros with a negative size", AE, () => Tensor.Zeros(2, -3), "Zeros", "[2, -3]", "-3");
        Add("Ones with a negative size", AE, () => Tensor.Ones(-1, 4), "Ones", "[-1, 4]", "-1");
        Add("Shape with a negative size", AE, () => new Shape(3, -2), "Shape", "[3, -2]", "-2");
        Add("Shape too large", AE, () => new Shape(65536, 65536), "Shape", "[65536, 65536]");
        Add("FromArray with a negative size", AE, () => Tensor.FromArray(new double[] { 1, 2 }, 2, -1), "FromArray", "[2, -1]", "-1");
        Add("FromArray with too few elements", AE, () => Tensor.FromArray(new double[] { 1, 2, 3 }, 2, 2), "FromArray", "[2, 2]", "4", "3");
        Add("FromArray float32 with too many elements", AE, () => Tensor.FromArray(new float[] { 1, 2, 3 }, 2), "FromArray", "[2]", "3");
        Add("FromArray int64 with a wrong shape", AE, () => Tensor.FromArray(new long[] { 1, 2, 3, 4, 5 }, 2, 3), "FromArray", "[2, 3]", "5");
        Add("From with a ragged array", AE, () => Tensor.From(new[] { new[] { 1.0, 2.0 }, new[] { 3.0 } }), "From", "length 1", "2");
        Add("From with an empty jagged array", AE, () => Tensor.From(Array.Empty<double[]>()), "From", "no rows");
        Add("From with strings", AE, () => Tensor.From(new[] { "a", "b" }), "From", "String");
        Add("Full with a negative size", AE, () => Tensor.Full(new[] { -4 }, 1.0), "Shape", "[-4]", "-4");
        Add("Full int64 with NaN", AE, () => Tensor.Full(new[] { 2 }, double.NaN, DType.Int64), "Full", "NaN", "int64");
        Add("Arange with step 0", AE, () => Tensor.Arange(0, 5, 0), "Arange", "step=0");
        Add("Arange with a NaN bound", AE, () => Tensor.Arange(double.NaN, 5), "Arange", "start=NaN");
        Add("Arange with an infinite stop", AE, () => Tensor.Arange(0, double.PositiveInfinity), "Arange", "stop=Infinity");
        Add("Arange stepping away", AE, () => Tensor.Arange(0, 5, -1), "Arange", "step -1", "stop 5");
        Add("Arange with a negative stop", AE, () => Tensor.Arange(-3), "Arange", "stop -3");
        Add("Arange with too many values", AE, () => Tensor.Arange(0, 1e12, 1), "Arange", "more than a tensor can hold");
        Add("RandN int64", AE, () => Tensor.RandN(new Shape(2), 0, DType.Int64), "RandN", "int64");
        Add("RandN with a negative std", AE, () => Tensor.RandN(new Shape(2), 0, std: -0.5), "RandN", "-0.5");
        Add("RandN with a NaN mean", AE, () => Tensor.RandN(new Shape(2), 0, mean: double.NaN), "RandN", "NaN");
        Add("Rand int64", AE, () => Tensor.Rand(new Shape(2), 0, DType.Int64), "Rand", "int64");
        Add("Rand with an empty range", AE, () => Tensor.Rand(new Shape(2), 0, low: 1, high: 1), "Rand", "[1, 1)");
        Add("Rand with an infinite bound", AE, () => Tensor.Rand(new Shape(2), 0, low: 0, high: double.PositiveInfinity), "Rand", "Infinity");
        Add("Indexer with too few indices", AE, () => X(2, 3)[1], "Indexer", "1 indices", "[2, 3]");
        Add("Indexer out of range", AOOR, () => X(2, 3)[1, 3], "Indexer", "index 3", "dimension 1", "[2, 3]");
        Add("Indexer with a negative index", AOOR, () => X(2, 3)[-3, 0], "Indexer", "index -3", "[2, 3]");
        Add("Item on a two-element tensor", IOE, () => X(2).Item(), "Item", "[2]", "2 elements");
        Add("AsSpan with the wrong element type", IOE, () => X(2).AsSpan<long>().Length, "AsSpan", "float64", "[2]");
        Add("ToArray<long> of a float tensor", IOE, () => X(2).ToArray<long>(), "ToArray", "float64", "[2]");
        Add("RequiresGrad on an int64 tensor", IOE, V(() => Ints(2).RequiresGrad = true), "RequiresGrad", "int64", "[2]");
        Add("WithRequiresGrad on an int64 tensor", IOE, () => Ints(3).WithRequiresGrad(), "WithRequiresGrad", "int64", "[3]");
        AddS("RequiresGrad on a non-leaf", IOE, () => Graph(y => V(() => y.RequiresGrad = false)), "RequiresGrad", "[2, 3]", "Mul");
        AddS("Grad of the wrong shape", AE, () =>
        {
            var x = X(2, 3);
            return (V(() => x.Grad = Tensor.Zeros(3, 2)), () => Assert.Null(x.Grad));
        }, "Grad", "[3, 2]", "[2, 3]");
        AddS("Grad of the wrong dtype", AE, () =>
        {
            var x = X(2);
            return (V(() => x.Grad = Tensor.Zeros(new Shape(2), DType.Float32)), () => Assert.Null(x.Grad));
        }, "Grad", "float32", "float64");
        Add("To int64 from NaN", AE, () => Tensor.From(1.0, double.NaN).To(DType.Int64), "To", "NaN", "element 1");

        // ------------------------------------------------------------ movement
        Add("Reshape to a wrong element count", AE, () => X(2, 3).Reshape(4, 2), "Reshape", "[2, 3]", "[4, 2]");
        Add("Reshape with two -1", AE, () => X(2, 3).Reshape(-1, -1), "Reshape", "only one size can be −1");
        Add("Reshape with a negative size", AE, () => X(2, 3).Reshape(-2, 3), "Reshape", "invalid size -2");
        Add("Reshape with an -1 that cannot be inferred", AE, () => X(2, 3).Reshape(4, -1), "Reshape", "[2, 3]", "[4, -1]");
        Add("View to a wrong element count", AE, () => X(2, 3).View(5), "View", "[2, 3]", "[5]");
        Add("Flatten startDim after endDim", AE, () => X(2, 3, 4).Flatten(2, 1), "Flatten", "startDim 2", "endDim 1", "[2, 3, 4]");
        Add("Flatten dim out of range", AOOR, () => X(2, 3).Flatten(0, 5), "Flatten", "dim 5", "[2, 3]");
        Add("Squeeze dim out of range", AOOR, () => X(2, 1).Squeeze(2), "Squeeze", "dim 2", "[2, 1]");
        Add("Squeeze negative dim out of range", AOOR, () => X(2, 1).Squeeze(-3), "Squeeze", "dim -3", "[2, 1]");
        Add("Unsqueeze dim out of range", AOOR, () => X(2, 3).Unsqueeze(3), "Unsqueeze", "dim 3", "[2, 3]");
        Add("Unsqueeze negative dim out of range", AOOR, () => X(2, 3).Unsqueeze(-4), "Unsqueeze", "dim -4", "[2, 3]");
        Add("Transpose dim out of range", AOOR, () => X(2, 3).Transpose(0, 2), "Transpose", "dim 2", "[2, 3]");
        Add("Transpose negative dim out of range", AOOR, () => X(2, 3).Transpose(-3, 0), "Transpose", "dim -3", "[2, 3]");
        Add("T of a rank-3 tensor", IOE, () => X(2, 3, 4).T, "T", "[2, 3, 4]");
        Add("Permute with too few dims", AE, () => X(2, 3, 4).Permute(1, 0), "Permute", "2 dims", "[2, 3, 4]");
        Add("Permute with a repeated dim", AE, () => X(2, 3).Permute(1, 1), "Permute", "dim 1", "more than once");
        Add("Permute with a dim out of range", AOOR, () => X(2, 3).Permute(0, 2), "Permute", "dim 2", "[2, 3]");
        Add("Expand to an incompatible size", AE, () => X(2, 3).Expand(2, 4), "Expand", "[2, 3]", "[2, 4]");
        Add("Expand to fewer dims", AE, () => X(2, 3).Expand(3), "Expand", "[2, 3]", "[3]");
        Add("Expand with -1 on a new dim", AE, () => X(2, 3).Expand(-1, 2, 3), "Expand", "−1", "dim 0");
        Add("BroadcastTo an incompatible shape", AE, () => X(3).BroadcastTo(2, 4), "Expand", "[3]", "[2, 4]");

        // ------------------------------------------------------------ indexing
        Add("Narrow start out of range", AOOR, () => X(4, 3).Narrow(0, 5, 1), "Narrow", "start 5", "size 4", "[4, 3]");
        Add("Narrow length too long", AOOR, () => X(4, 3).Narrow(1, 1, 3), "Narrow", "length 3", "size 3", "[4, 3]");
        Add("Narrow negative length", AOOR, () => X(4, 3).Narrow(0, 0, -1), "Narrow", "length -1");
        Add("Narrow dim out of range", AOOR, () => X(4, 3).Narrow(2, 0, 1), "Narrow", "dim 2", "[4, 3]");
        Add("Narrow of a rank-0 tensor", AE, () => Tensor.Scalar(1.0).Narrow(0, 0, 1), "Narrow", "rank-0");
        Add("Slice with step 0", AOOR, () => X(4).Slice(0, 0, 4, 0), "Slice", "step must be positive, got 0", "[4]");
        Add("Slice with a negative step", AOOR, () => X(4).Slice(0, 0, 4, -1), "Slice", "got -1");
        Add("Slice dim out of range", AOOR, () => X(4).Slice(1, 0, 4), "Slice", "dim 1", "[4]");
        Add("Gather with a float index", AE, () => X(2, 3).Gather(1, Tensor.Zeros(2, 1)), "Gather", "int64", "float64", "[2, 1]");
        Add("Gather with an index out of range", AOOR, () => X(2, 3).Gather(1, Tensor.FromArray(new long[] { 0, 3 }, 2, 1)), "Gather", "3", "[2, 3]");
        Add("Gather with a negative index", AOOR, () => X(2, 3).Gather(1, Tensor.FromArray(new long[] { 0, -1 }, 2, 1)), "Gather", "-1", "[2, 3]");
        Add("Gather with an index of another rank", AE, () => X(2, 3).Gather(1, Idx(0, 1)), "Gather", "rank 1", "[2, 3]");
        Add("Gather with an index too large off dim", AE, () => X(2, 3).Gather(1, Ints(3, 1)), "Gather", "[3, 1]", "[2, 3]");
        Add("Gather dim out of range", AOOR, () => X(2, 3).Gather(2, Ints(2, 1)), "Gather", "dim 2", "[2, 3]");
        Add("ScatterAdd with mixed dtypes", AE, () => X(2, 3).ScatterAdd(1, Ints(2, 1), X32(2, 1)), "ScatterAdd", "float64", "float32");
        Add("ScatterAdd with src and index of different shapes", AE, () => X(2, 3).ScatterAdd(1, Ints(2, 1), X(2, 2)), "ScatterAdd", "[2, 2]", "[2, 1]");
        Add("ScatterAdd with an index out of range", AOOR, () => X(2, 3).ScatterAdd(1, Tensor.FromArray(new long[] { 4, 0 }, 2, 1), X(2, 1)), "ScatterAdd", "4", "[2, 3]");
        Add("ScatterAdd with a float index", AE, () => X(2, 3).ScatterAdd(1, Tensor.Zeros(2, 1), X(2, 1)), "ScatterAdd", "int64", "float64");
        Add("IndexSelect with a float index", AE, () => X(4, 2).IndexSelect(0, Tensor.From(0.0, 1.0)), "IndexSelect", "int64", "float64", "[2]");
        Add("IndexSelect with an index out of range", AOOR, () => X(4, 2).IndexSelect(0, Idx(0, 4)), "IndexSelect", "4", "[4, 2]");
        Add("IndexSelect with a two-dimensional index", AE, () => X(4, 2).IndexSelect(0, Ints(2, 2)), "IndexSelect", "rank 2", "[2, 2]");
        Add("IndexSelect dim out of range", AOOR, () => X(4, 2).IndexSelect(-3, Idx(0)), "IndexSelect", "dim -3", "[4, 2]");
        Add("IndexAdd with a wrong source shape", AE, () => X(4, 2).IndexAdd(0, Idx(0, 1), X(3, 2)), "IndexAdd", "[3, 2]", "[2, 2]");
        Add("IndexAdd with mixed dtypes", AE, () => X(4, 2).IndexAdd(0, Idx(0, 1), X32(2, 2)), "IndexAdd", "float64", "float32");
        Add("IndexAdd with an index out of range", AOOR, () => X(4, 2).IndexAdd(0, Idx(0, 9), X(2, 2)), "IndexAdd", "9", "[4, 2]");
        Add("Concat of an empty list", AE, () => Tensor.Concat([]), "Concat", "empty");
        Add("Concat of tensors of different ranks", AE, () => Tensor.Concat([X(2, 3), X(3)]), "Concat", "[3]", "[2, 3]");
        Add("Concat of tensors of different sizes", AE, () => Tensor.Concat([X(2, 3), X(2, 4)]), "Concat", "[2, 4]", "[2, 3]", "dim 0");
        Add("Concat dim out of range", AOOR, () => Tensor.Concat([X(2, 3), X(2, 3)], 2), "Concat", "dim 2", "[2, 3]");
        Add("Concat of rank-0 tensors", AE, () => Tensor.Concat([Tensor.Scalar(1.0), Tensor.Scalar(2.0)]), "Concat", "rank-0");
        Add("Concat of mixed dtypes", AE, () => Tensor.Concat([X(2), X32(2)]), "Concat", "float64", "float32");
        Add("Concat with a null tensor", typeof(ArgumentNullException), () => Tensor.Concat([X(2), null!]), "Concat", "tensor 1");
        Add("Stack of an empty list", AE, () => Tensor.Stack([]), "Stack", "empty");
        Add("Stack of different shapes", AE, () => Tensor.Stack([X(2, 3), X(3, 2)]), "Stack", "[3, 2]", "[2, 3]");
        Add("Stack dim out of range", AOOR, () => Tensor.Stack([X(2), X(2)], 2), "Stack", "dim 2", "[2]");
        Add("Stack of mixed dtypes", AE, () => Tensor.Stack([X(2), X32(2)]), "Stack", "float64", "float32");
        Add("OneHot of float indices", AE, () => Tensor.OneHot(Tensor.From(0.0, 1.0), 3), "OneHot", "int64", "float64");
        Add("OneHot with an index out of range", AOOR, () => Tensor.OneHot(Idx(0, 3), 3), "OneHot", "3");
        Add("OneHot with zero classes", AE, () => Tensor.OneHot(Idx(0), 0), "OneHot", "numClasses", "0");
        Add("OneHot inferring classes from nothing", AE, () => Tensor.OneHot(Ints(0), -1), "OneHot", "empty");
        Add("OneHot with a negative index", AOOR, () => Tensor.OneHot(Idx(-1, 0), 2), "OneHot", "-1");
        Add("Embedding with float indices", AE, () => Tensor.Embedding(Tensor.From(0.0), X(3, 2)), "Embedding", "int64", "float64");
        Add("Embedding with an index out of range", AOOR, () => Tensor.Embedding(Idx(0, 3), X(3, 2)), "Embedding", "index 3", "[3, 2]");
        Add("Embedding with a rank-1 weight", AE, () => Tensor.Embedding(Idx(0), X(3)), "Embedding", "[3]");
        Add("Embedding with an int64 weight", AE, () => Tensor.Embedding(Idx(0), Ints(3, 2)), "Embedding", "int64", "[3, 2]");
        Add("Embedding with a padding index out of range", AOOR, () => Tensor.Embedding(Idx(0), X(3, 2), paddingIndex: 3), "Embedding", "padding index 3", "[3, 2]");

        // ------------------------------------------------------------ elementwise
        Add("Add of non-broadcastable shapes", AE, () => X(2, 3) + X(2, 4), "Add", "[2, 3]", "[2, 4]");
        Add("Sub of non-broadcastable shapes", AE, () => X(3) - X(4), "Sub", "[3]", "[4]");
        Add("Mul of non-broadcastable shapes", AE, () => X(2, 3) * X(3, 2), "Mul", "[2, 3]", "[3, 2]");
        Add("Div of non-broadcastable shapes", AE, () => X(5) / X(2), "Div", "[5]", "[2]");
        Add("Add of mixed dtypes", AE, () => X(2) + X32(2), "Add", "float64", "float32");
        Add("Sub of mixed dtypes", AE, () => X32(2).Sub(X(2)), "Sub", "float32", "float64");
        Add("Mul of mixed dtypes", AE, () => X(2).Mul(X32(2)), "Mul", "float64", "float32");
        Add("Div of mixed dtypes", AE, () => X(2).Div(X32(2)), "Div", "float64", "float32");
        Add("Add of int64 tensors", AE, () => Ints(2) + Ints(2), "Add", "int64", "[2]");
        Add("Neg of an int64 tensor", AE, () => Ints(2).Neg(), "Neg", "int64", "[2]");
        Add("Exp of an int64 tensor", AE, () => Ints(2).Exp(), "Exp", "int64", "[2]");
        Add("Log of an int64 tensor", AE, () => Ints(2).Log(), "Log", "int64", "[2]");
        Add("Sqrt of an int64 tensor", AE, () => Ints(2).Sqrt(), "Sqrt", "int64", "[2]");
        Add("Abs of an int64 tensor", AE, () => Ints(2).Abs(), "Abs", "int64", "[2]");
        Add("Tanh of an int64 tensor", AE, () => Ints(2).Tanh(), "Tanh", "int64", "[2]");
        Add("Sigmoid of an int64 tensor", AE, () => Ints(2).Sigmoid(), "Sigmoid", "int64", "[2]");
        Add("Relu of an int64 tensor", AE, () => Ints(2).Relu(), "Relu", "int64", "[2]");
        Add("Erf of an int64 tensor", AE, () => Ints(2).Erf(), "Erf", "int64", "[2]");
        Add("Pow of an int64 tensor", AE, () => Ints(2).Pow(2), "Pow", "int64", "[2]");
        Add("Gelu of an int64 tensor", AE, () => Functional.Gelu(Ints(2)), "Gelu", "int64", "[2]");

        // ------------------------------------------------------------ comparison
        Add("Eq of non-broadcastable shapes", AE, () => X(2).Eq(X(3)), "Eq", "[2]", "[3]");
        Add("Lt of mixed dtypes", AE, () => X(2).Lt(X32(2)), "Lt", "float64", "float32");
        Add("Gt of an int64 tensor and a number", AE, () => Ints(2).Gt(0.0), "Gt", "int64");
        Add("Ge of non-broadcastable shapes", AE, () => X(2, 2).Ge(X(3)), "Ge", "[2, 2]", "[3]");
        Add("Le of mixed dtypes", AE, () => X32(2).Le(X(2)), "Le", "float32", "float64");
        Add("Ne of non-broadcastable shapes", AE, () => X(4).Ne(X(2)), "Ne", "[4]", "[2]");
        Add("Maximum of non-broadcastable shapes", AE, () => X(2).Maximum(X(3)), "Maximum", "[2]", "[3]");
        Add("Minimum of mixed dtypes", AE, () => X(2).Minimum(X32(2)), "Minimum", "float64", "float32");
        Add("Maximum of an int64 tensor and a number", AE, () => Ints(2).Maximum(0.0), "Maximum", "int64");
        Add("Clamp with neither bound", AE, () => X(2).Clamp(), "Clamp", "[2]");
        Add("Clamp with min above max", AE, () => X(2).Clamp(2, 1), "Clamp", "min 2", "max 1");
        Add("Clamp with a NaN min", AE, () => X(2).Clamp(double.NaN, 1), "Clamp", "NaN");
        Add("Clamp of an int64 tensor", AE, () => Ints(2).Clamp(0, 1), "Clamp", "int64");
        Add("Where with non-broadcastable shapes", AE, () => Tensor.Where(X(2).Gt(0.0), X(3), X(3)), "Where", "[2]", "[3]");
        Add("Where with mixed dtypes", AE, () => Tensor.Where(X(2).Gt(0.0), X(2), X32(2)), "Where", "float64", "float32");
        Add("Where with int64 branches", AE, () => Tensor.Where(Ints(2), Ints(2), Ints(2)), "Where", "int64");
        Add("Where with a number and an int64 tensor", AE, () => Tensor.Where(Ints(2), Ints(2), 0.0), "Where", "int64");

        // ------------------------------------------------------------ reductions
        Add("Sum dim out of range", AOOR, () => X(2, 3).Sum(2), "Sum", "dim 2", "[2, 3]");
        Add("Sum negative dim out of range", AOOR, () => X(2, 3).Sum(-3), "Sum", "dim -3", "[2, 3]");
        Add("Sum with a repeated dim", AE, () => X(2, 3).Sum([1, -1]), "Sum", "dim 1", "more than once", "[2, 3]");
        Add("Sum of an int64 tensor", AE, () => Ints(2).Sum(), "Sum", "int64", "[2]");
        Add("Mean dim out of range", AOOR, () => X(2, 3).Mean(5), "Mean", "dim 5", "[2, 3]");
        Add("Mean with a repeated dim", AE, () => X(2, 3).Mean([0, 0]), "Mean", "dim 0", "more than once");
        Add("Mean of an int64 tensor", AE, () => Ints(2).Mean(), "Mean", "int64");
        Add("Max dim out of range", AOOR, () => X(2, 3).Max(2), "Max", "dim 2", "[2, 3]");
        Add("Max with a repeated dim", AE, () => X(2, 3).Max([1, 1]), "Max", "dim 1", "more than once");
        Add("Max over an empty dim", AE, () => X(2, 0).Max(1), "Max", "size 0", "[2, 0]");
        Add("Max of an empty tensor", AE, () => X(0).Max(), "Max", "size 0", "[0]");
        Add("Min negative dim out of range", AOOR, () => X(2, 3).Min(-3), "Min", "dim -3", "[2, 3]");
        Add("Min over an empty dim", AE, () => X(0, 3).Min(0), "Min", "size 0", "[0, 3]");
        Add("ArgMax dim out of range", AOOR, () => X(2, 3).ArgMax(2), "ArgMax", "dim 2", "[2, 3]");
        Add("ArgMax over an empty dim", AE, () => X(2, 0).ArgMax(1), "ArgMax", "size 0", "[2, 0]");
        Add("ArgMin dim out of range", AOOR, () => X(2, 3).ArgMin(-3), "ArgMin", "dim -3", "[2, 3]");
        Add("SumTo a non-broadcastable shape", AE, () => X(2, 3).SumTo(new Shape(4)), "SumTo", "[4]", "[2, 3]");

        // ------------------------------------------------------------ matmul
        Add("MatMul of mismatched inner dims", AE, () => X(2, 3).MatMul(X(4, 5)), "MatMul", "[2, 3]", "[4, 5]");
        Add("MatMul of a rank-0 operand", AE, () => Tensor.Scalar(1.0).WithRequiresGrad().MatMul(X(2)), "MatMul", "[]", "[2]");
        Add("MatMul of mismatched vectors", AE, () => X(3).MatMul(X(4)), "MatMul", "[3]", "[4]");
        Add("MatMul of a vector and a mismatched matrix", AE, () => X(3).MatMul(X(2, 5)), "MatMul", "[3]", "[2, 5]");
        Add("MatMul of non-broadcastable batches", AE, () => X(2, 3, 4).MatMul(X(3, 4, 5)), "MatMul", "[2, 3, 4]", "[3, 4, 5]");
        Add("MatMul of batches with mismatched inner dims", AE, () => X(2, 3, 4).MatMul(X(2, 3, 5)), "MatMul", "[2, 3, 4]", "[2, 3, 5]");
        Add("MatMul of mixed dtypes", AE, () => X(2, 3).MatMul(X32(3, 2)), "MatMul", "float64", "float32");
        Add("MatMul of int64 tensors", AE, () => Ints(2, 3).MatMul(Ints(3, 2)), "MatMul", "int64");

        // ------------------------------------------------------------ softmax family
        Add("Softmax dim out of range", AOOR, () => X(2, 3).Softmax(2), "Softmax", "dim 2", "[2, 3]");
        Add("Softmax negative dim out of range", AOOR, () => X(2, 3).Softmax(-3), "Softmax", "dim -3", "[2, 3]");
        Add("Softmax of an int64 tensor", AE, () => Ints(2, 3).Softmax(1), "Softmax", "int64", "[2, 3]");
        Add("LogSoftmax dim out of range", AOOR, () => X(2, 3).LogSoftmax(3), "LogSoftmax", "dim 3", "[2, 3]");
        Add("LogSoftmax of an int64 tensor", AE, () => Ints(2, 3).LogSoftmax(1), "LogSoftmax", "int64");
        Add("LogSumExp dim out of range", AOOR, () => X(2, 3).LogSumExp(2), "LogSumExp", "dim 2", "[2, 3]");
        Add("LogSumExp of an int64 tensor", AE, () => Ints(2, 3).LogSumExp(1), "LogSumExp", "int64");
        Add("SoftmaxBackward with a gradient of the wrong shape", AE, () => Tensor.SoftmaxBackward(X(2, 2), X(2, 3), 1), "SoftmaxBackward", "[2, 2]", "[2, 3]");
        Add("LogSoftmaxBackward dim out of range", AOOR, () => Tensor.LogSoftmaxBackward(X(2, 3), X(2, 3), 2), "LogSoftmaxBackward", "dim 2", "[2, 3]");

        // ------------------------------------------------------------ pooling
        Add("MaxPool2d kernel larger than the input", AE, () => X(1, 1, 2, 2).MaxPool2d(3), "MaxPool2d", "(3, 3)", "[1, 1, 2, 2]");
        Add("MaxPool2d with stride 0", AOOR, () => X(1, 1, 4, 4).MaxPool2d(2, 0), "MaxPool2d", "stride", "(0, 0)");
        Add("MaxPool2d with padding above half the kernel", AOOR, () => X(1, 1, 4, 4).MaxPool2d(2, 2, 2), "MaxPool2d", "padding (2, 2)", "kernel (2, 2)");
        Add("MaxPool2d with a negative padding", AOOR, () => X(1, 1, 4, 4).MaxPool2d(2, 2, -1), "MaxPool2d", "padding (-1, -1)");
        Add("MaxPool2d with kernel 0", AOOR, () => X(1, 1, 4, 4).MaxPool2d(0), "MaxPool2d", "kernel", "(0, 0)");
        Add("MaxPool2d of a rank-2 input", AE, () => X(4, 4).MaxPool2d(2), "MaxPool2d", "[4, 4]", "rank 2");
        Add("MaxPool2d of an int64 input", AE, () => Ints(1, 1, 4, 4).MaxPool2d(2), "MaxPool2d", "int64", "[1, 1, 4, 4]");
        Add("AvgPool2d kernel larger than the input", AE, () => X(1, 1, 2, 3).AvgPool2d((3, 2)), "AvgPool2d", "(3, 2)", "[1, 1, 2, 3]");
        Add("AvgPool2d with a negative stride", AOOR, () => X(1, 1, 4, 4).AvgPool2d(2, -1), "AvgPool2d", "stride", "(-1, -1)");
        Add("AvgPool2d of a rank-5 input", AE, () => X(1, 1, 1, 4, 4).AvgPool2d(2), "AvgPool2d", "[1, 1, 1, 4, 4]");
        Add("AdaptiveAvgPool2d with output size 0", AOOR, () => X(1, 2, 4, 4).AdaptiveAvgPool2d(0), "AdaptiveAvgPool2d", "(0, 0)", "[1, 2, 4, 4]");
        Add("AdaptiveAvgPool2d of a rank-2 input", AE, () => X(4, 4).AdaptiveAvgPool2d(2), "AdaptiveAvgPool2d", "[4, 4]");
        Add("MaxPool2d module with a too small input", AE, () => new MaxPool2d(3).Forward(X(1, 1, 2, 2)), "MaxPool2d", "(3, 3)", "[1, 1, 2, 2]");
        Add("AvgPool2d module with stride 0", AOOR, () => new AvgPool2d(2, 0).Forward(X(1, 1, 4, 4)), "AvgPool2d", "stride", "(0, 0)");

        // ------------------------------------------------------------ convolution
        Add("Conv2d with mismatched channels", AE, () => X(1, 3, 5, 5).Conv2d(X(8, 4, 3, 3)), "Conv2d", "3 channels", "[8, 4, 3, 3]", "4");
        Add("Conv2d with a rank-3 input", AE, () => X(3, 5, 5).Conv2d(X(8, 3, 3, 3)), "Conv2d", "[3, 5, 5]");
        Add("Conv2d with a rank-3 weight", AE, () => X(1, 3, 5, 5).Conv2d(X(8, 3, 3)), "Conv2d", "[8, 3, 3]");
        Add("Conv2d with a bias of the wrong shape", AE, () => X(1, 3, 5, 5).Conv2d(X(8, 3, 3, 3), X(4)), "Conv2d", "[8]", "[4]");
        Add("Conv2d with a kernel larger than the input", AE, () => X(1, 3, 2, 2).Conv2d(X(8, 3, 3, 3)), "Conv2d", "(3, 3)", "[1, 3, 2, 2]");
        Add("Conv2d with groups not dividing the channels", AE, () => X(1, 3, 5, 5).Conv2d(X(4, 1, 3, 3), groups: 2), "Conv2d", "groups 2", "[1, 3, 5, 5]");
        Add("Conv2d with groups 0", AOOR, () => X(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3), groups: 0), "Conv2d", "groups", "0");
        Add("Conv2d with stride 0", AOOR, () => X(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3), stride: 0), "Conv2d", "stride", "(0, 0)");
        Add("Conv2d with a negative padding", AOOR, () => X(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3), padding: -1), "Conv2d", "padding", "(-1, -1)");
        Add("Conv2d with dilation 0", AOOR, () => X(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3), dilation: 0), "Conv2d", "dilation", "(0, 0)");
        Add("Conv2d of mixed dtypes", AE, () => X(1, 3, 5, 5).Conv2d(X32(4, 3, 3, 3)), "Conv2d", "float64", "float32");
        Add("Conv2d of an int64 input", AE, () => Ints(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3)), "Conv2d", "int64");
        Add("Conv1d with mismatched channels", AE, () => X(1, 3, 8).Conv1d(X(4, 2, 3)), "Conv1d", "3 channels", "[4, 2, 3]");
        Add("Conv1d with a rank-4 input", AE, () => X(1, 3, 8, 8).Conv1d(X(4, 3, 3)), "Conv1d", "[1, 3, 8, 8]");

        // ------------------------------------------------------------ normalization
        Add("LayerNorm with a mismatched normalized shape", AE, () => X(2, 3).LayerNorm([4]), "LayerNorm", "[4]", "[2, 3]");
        Add("LayerNorm with an empty normalized shape", AE, () => X(2, 3).LayerNorm(Array.Empty<int>()), "LayerNorm", "at least one dim", "[2, 3]");
        Add("LayerNorm with a normalized shape longer than the input", AE, () => X(3).LayerNorm([2, 3]), "LayerNorm", "[2, 3]", "[3]");
        Add("LayerNorm with a weight of the wrong shape", AE, () => X(2, 3).LayerNorm([3], X(4)), "LayerNorm", "weight", "[4]", "[3]");
        Add("LayerNorm with a bias of the wrong dtype", AE, () => X(2, 3).LayerNorm([3], X(3), X32(3)), "LayerNorm", "bias", "float32", "float64");
        Add("LayerNorm of an int64 input", AE, () => Ints(2, 3).LayerNorm([3]), "LayerNorm", "int64", "[2, 3]");
        Add("LayerNorm with a negative eps", AOOR, () => X(2, 3).LayerNorm([3], eps: -1e-5), "LayerNorm", "eps", "-1E-05");
        Add("LayerNormBackward with a gradient of the wrong shape", AE, () => Tensor.LayerNormBackward(X(2, 2), X(2, 3), [3]), "LayerNormBackward", "[2, 2]", "[2, 3]");
        Add("BatchNorm with a rank-1 input", AE, () => X(3).BatchNorm(null, null, training: true), "BatchNorm", "[3]", "rank 1");
        Add("BatchNorm with one running statistic", AE, () => X(4, 3).BatchNorm(Tensor.Zeros(3), null, training: true), "BatchNorm", "runningMean and runningVar", "[4, 3]");
        Add("BatchNorm evaluation without statistics", AE, () => X(4, 3).BatchNorm(null, null, training: false), "BatchNorm", "runningMean", "[4, 3]");
        Add("BatchNorm training on one value per channel", AE, () => X(1, 3).BatchNorm(null, null, training: true), "BatchNorm", "more than 1 value per channel", "[1, 3]");
        Add("BatchNorm with running statistics of the wrong size", AE, () => X(4, 3).BatchNorm(Tensor.Zeros(4), Tensor.Ones(4), training: false), "BatchNorm", "[4]", "3 channels");
        Add("BatchNorm with a weight of the wrong dtype", AE, () => X(4, 3).BatchNorm(null, null, X32(3), training: true), "BatchNorm", "weight", "float32", "float64");
        Add("BatchNorm with a momentum above 1", AOOR, () => X(4, 3).BatchNorm(Tensor.Zeros(3), Tensor.Ones(3), training: true, momentum: 1.5), "BatchNorm", "momentum", "1.5");

        // ------------------------------------------------------------ attention
        Add("ScaledDotProductAttention with mismatched feature sizes", AE, () => Tensor.ScaledDotProductAttention(X(2, 4, 8), X(2, 5, 6), X(2, 5, 8)), "ScaledDotProductAttention", "[2, 4, 8]", "[2, 5, 6]");
        Add("ScaledDotProductAttention with mismatched key and value counts", AE, () => Tensor.ScaledDotProductAttention(X(2, 4, 8), X(2, 5, 8), X(2, 6, 8)), "ScaledDotProductAttention", "[2, 5, 8]", "[2, 6, 8]");
        Add("ScaledDotProductAttention with a rank-1 query", AE, () => Tensor.ScaledDotProductAttention(X(8), X(5, 8), X(5, 8)), "ScaledDotProductAttention", "[8]", "rank 1");
        Add("ScaledDotProductAttention with mixed dtypes", AE, () => Tensor.ScaledDotProductAttention(X(4, 8), X32(5, 8), X(5, 8)), "ScaledDotProductAttention", "float64", "float32");
        Add("ScaledDotProductAttention with int64 values", AE, () => Tensor.ScaledDotProductAttention(X(4, 8), X(5, 8), Ints(5, 8)), "ScaledDotProductAttention", "int64", "[5, 8]");
        Add("ScaledDotProductAttention with non-broadcastable batches", AE, () => Tensor.ScaledDotProductAttention(X(2, 4, 8), X(3, 5, 8), X(3, 5, 8)), "ScaledDotProductAttention", "[2, 4, 8]", "[3, 5, 8]");
        Add("ScaledDotProductAttention with a mask of the wrong shape", AE, () => Tensor.ScaledDotProductAttention(X(4, 8), X(5, 8), X(5, 8), mask: Tensor.Ones(4, 4)), "ScaledDotProductAttention", "mask", "[4, 4]", "[4, 5]");
        Add("ScaledDotProductAttention with a NaN scale", AE, () => Tensor.ScaledDotProductAttention(X(4, 8), X(5, 8), X(5, 8), scale: double.NaN), "ScaledDotProductAttention", "scale", "NaN");

        // ------------------------------------------------------------ losses
        Add("MseLoss with mismatched shapes", AE, () => Functional.MseLoss(X(4, 2), X(4, 3)), "MseLoss", "[4, 2]", "[4, 3]");
        Add("MseLoss with broadcastable but different shapes", AE, () => Functional.MseLoss(X(4, 1), X(4)), "MseLoss", "[4, 1]", "[4]");
        Add("MseLoss with mixed dtypes", AE, () => Functional.MseLoss(X(2), X32(2)), "MseLoss", "float64", "float32");
        Add("MseLoss with int64 tensors", AE, () => Functional.MseLoss(Ints(2), Ints(2)), "MseLoss", "int64", "[2]");
        Add("MseLoss with an unknown reduction", AOOR, () => Functional.MseLoss(X(2), X(2), (Reduction)7), "MseLoss", "reduction", "7");
        Add("BinaryCrossEntropyWithLogits with mismatched shapes", AE, () => Functional.BinaryCrossEntropyWithLogits(X(4), X(5)), "BinaryCrossEntropyWithLogits", "[4]", "[5]");
        Add("BinaryCrossEntropyWithLogits with mixed dtypes", AE, () => Functional.BinaryCrossEntropyWithLogits(X32(3), X(3)), "BinaryCrossEntropyWithLogits", "float32", "float64");
        Add("BinaryCrossEntropyWithLogits with an int64 target", AE, () => Functional.BinaryCrossEntropyWithLogits(X(3), Ints(3)), "BinaryCrossEntropyWithLogits", "int64", "[3]");
        Add("BinaryCrossEntropyWithLogits with an unknown reduction", AOOR, () => Functional.BinaryCrossEntropyWithLogits(X(2), Tensor.From(0.0, 1.0), (Reduction)(-1)), "BinaryCrossEntropyWithLogits", "reduction", "-1");
        Add("CrossEntropy with a class index out of range", AE, () => Functional.CrossEntropy(X(2, 3), Idx(0, 3)), "CrossEntropy", "target 3", "[0, 3)");
        Add("CrossEntropy with a negative class index", AE, () => Functional.CrossEntropy(X(2, 3), Idx(-1, 0)), "CrossEntropy", "target -1", "position 0");
        Add("CrossEntropy with float targets", AE, () => Functional.CrossEntropy(X(2, 3), Tensor.From(0.0, 1.0)), "CrossEntropy", "int64", "float64", "[2]");
        Add("CrossEntropy with too many targets", AE, () => Functional.CrossEntropy(X(2, 3), Idx(0, 1, 2)), "CrossEntropy", "[2]", "[3]");
        Add("CrossEntropy with rank-3 scores", AE, () => Functional.CrossEntropy(X(2, 3, 4), Idx(0, 1)), "CrossEntropy", "[N, C]", "[2, 3, 4]");
        Add("CrossEntropy with int64 scores", AE, () => Functional.CrossEntropy(Ints(2, 3), Idx(0, 1)), "CrossEntropy", "int64", "[2, 3]");
        Add("CrossEntropy with label smoothing above 1", AE, () => Functional.CrossEntropy(X(2, 3), Idx(0, 1), labelSmoothing: 1.5), "CrossEntropy", "labelSmoothing", "1.5");
        Add("CrossEntropy with NaN label smoothing", AE, () => Functional.CrossEntropy(X(2, 3), Idx(0, 1), labelSmoothing: double.NaN), "CrossEntropy", "labelSmoothing", "NaN");
        Add("CrossEntropy with an unknown reduction", AOOR, () => Functional.CrossEntropy(X(2, 3), Idx(0, 1), (Reduction)3), "CrossEntropy", "reduction", "3");
        Add("NllLoss with a class index out of range", AE, () => Functional.NllLoss(X(2, 3), Idx(5, 0)), "NllLoss", "target 5", "[0, 3)");
        Add("NllLoss with float targets", AE, () => Functional.NllLoss(X(2, 3), Tensor.From(0.0, 1.0)), "NllLoss", "int64", "float64");
        Add("NllLoss with rank-1 scores", AE, () => Functional.NllLoss(X(3), Idx(0)), "NllLoss", "[N, C]", "[3]");
        Add("NllLoss with a rank-2 target", AE, () => Functional.NllLoss(X(2, 3), Ints(2, 1)), "NllLoss", "[2]", "[2, 1]");
        Add("NllLoss with an unknown reduction", AOOR, () => Functional.NllLoss(X(2, 3), Idx(0, 1), (Reduction)9), "NllLoss", "reduction", "9");

        // ------------------------------------------------------------ modules
        Add("Linear with zero input features", AOOR, () => new Linear(0, 3, seed: 1), "Linear", "inFeatures", "0");
        Add("Linear with negative output features", AOOR, () => new Linear(3, -2, seed: 1), "Linear", "outFeatures", "-2");
        Add("Linear with a wrong input size", AE, () => new Linear(3, 2, seed: 1).Forward(X(4, 5)), "Linear", "3", "[4, 5]");
        Add("Linear with a rank-0 input", AE, () => new Linear(3, 2, seed: 1).Forward(Tensor.Scalar(1.0)), "Linear", "[]");
        Add("Linear with a float32 input", AE, () => new Linear(3, 2, seed: 1).Forward(X32(4, 3)), "Linear", "float32", "float64", "[4, 3]");
        Add("Linear with an int64 input", AE, () => new Linear(3, 2, seed: 1).Forward(Ints(4, 3)), "Linear", "int64", "[4, 3]");
        AddS("Sequential passing a wrong shape to its Linear (inference)", AE, () =>
        {
            var model = new Sequential(new Linear(3, 4, seed: 1), new ReLU(), new Linear(5, 2, seed: 2));
            var before = model.Parameters().Select(p => p.ToArray()).ToArray();
            return (() =>
            {
                using (Tensor.NoGrad())
                {
                    return model.Forward(X(2, 3));
                }
            }, () => Assert.Equal(before, model.Parameters().Select(p => p.ToArray()).ToArray()));
        }, "Linear", "5", "[2, 4]");
        Add("Conv2d module with zero input channels", AOOR, () => new Conv2d(0, 4, 3, seed: 1), "Conv2d", "inChannels", "0");
        Add("Conv2d module with kernel 0", AOOR, () => new Conv2d(3, 4, 0, seed: 1), "Conv2d", "kernelSize", "0");
        Add("Conv2d module with stride 0", AOOR, () => new Conv2d(3, 4, 3, seed: 1, stride: 0), "Conv2d", "stride", "0");
        Add("Conv2d module with a negative padding", AOOR, () => new Conv2d(3, 4, 3, seed: 1, padding: -1), "Conv2d", "padding", "-1");
        Add("Conv2d module with groups not dividing the channels", AE, () => new Conv2d(3, 4, 3, seed: 1, groups: 2), "Conv2d", "groups 2", "3", "4");
        Add("Conv2d module with wrong input channels", AE, () => new Conv2d(3, 4, 3, seed: 1).Forward(X(1, 2, 5, 5)), "Conv2d", "2 channels", "[4, 3, 3, 3]");
        Add("Conv2d module with a rank-3 input", AE, () => new Conv2d(3, 4, 3, seed: 1).Forward(X(3, 5, 5)), "Conv2d", "[3, 5, 5]");
        Add("Conv2d module with a too small input", AE, () => new Conv2d(3, 4, 3, seed: 1).Forward(X(1, 3, 2, 2)), "Conv2d", "[1, 3, 2, 2]");
        Add("Embedding module with zero entries", AOOR, () => new Embedding(0, 4, seed: 1), "Embedding", "numEmbeddings", "0");
        Add("Embedding module with a padding index out of range", AOOR, () => new Embedding(5, 4, seed: 1, paddingIndex: 5), "Embedding", "padding index", "5");
        Add("Embedding module with an index out of range", AOOR, () => new Embedding(5, 4, seed: 1).Forward(Idx(1, 7)), "Embedding", "index 7", "[5, 4]");
        Add("Embedding module with float indices", AE, () => new Embedding(5, 4, seed: 1).Forward(Tensor.From(1.0)), "Embedding", "int64", "float64");
        Add("LayerNorm module with a wrong last dim", AE, () => new LayerNorm(4).Forward(X(2, 3)), "LayerNorm", "[4]", "[2, 3]");
        Add("LayerNorm module with a float32 input", AE, () => new LayerNorm(3).Forward(X32(2, 3)), "LayerNorm", "float32", "float64");
        Add("LayerNorm module with a zero size", AE, () => new LayerNorm(0), "LayerNorm", "[0]");
        Add("LayerNorm module with a negative eps", AOOR, () => new LayerNorm(3, eps: -1), "LayerNorm", "eps", "-1");
        Add("BatchNorm1d with wrong channels", AE, () => new BatchNorm1d(3).Forward(X(4, 5)), "BatchNorm1d", "[4, 5]", "3");
        Add("BatchNorm1d training on a batch of one", AE, () => new BatchNorm1d(3).Forward(X(1, 3)), "BatchNorm", "[1, 3]");
        Add("BatchNorm2d with a rank-2 input", AE, () => new BatchNorm2d(3).Forward(X(4, 3)), "BatchNorm2d", "[4, 3]");
        Add("BatchNorm2d with a momentum above 1", AOOR, () => new BatchNorm2d(3, momentum: 2), "BatchNorm2d", "momentum", "2");
        Add("MultiHeadAttention with heads not dividing the size", AE, () => new MultiHeadAttention(10, 3, seed: 1), "MultiHeadAttention", "3 heads", "10");
        Add("MultiHeadAttention with zero heads", AOOR, () => new MultiHeadAttention(8, 0, seed: 1), "MultiHeadAttention", "heads", "0");
        Add("MultiHeadAttention with a wrong model size", AE, () => new MultiHeadAttention(8, 2, seed: 1).Forward(X(2, 5, 6)), "MultiHeadAttention", "8", "[2, 5, 6]");
        Add("MultiHeadAttention with a rank-4 input", AE, () => new MultiHeadAttention(8, 2, seed: 1).Forward(X(1, 2, 5, 8)), "MultiHeadAttention", "[1, 2, 5, 8]");
        Add("MultiHeadAttention with a float32 input", AE, () => new MultiHeadAttention(8, 2, seed: 1).Forward(X32(2, 5, 8)), "MultiHeadAttention", "float32", "float64");
        Add("TransformerBlock with a wrong model size", AE, () => new TransformerBlock(8, 2, seed: 1).Forward(X(2, 5, 6)), "TransformerBlock", "8", "[2, 5, 6]");
        Add("TransformerBlock with a rank-1 input", AE, () => new TransformerBlock(8, 2, seed: 1).Forward(X(8)), "TransformerBlock", "[8]");
        Add("TransformerBlock with a float32 input", AE, () => new TransformerBlock(8, 2, seed: 1).Forward(X32(5, 8)), "TransformerBlock", "float32", "float64");
        Add("TransformerBlock with heads not dividing the size", AE, () => new TransformerBlock(10, 4, seed: 1), "TransformerBlock", "4 heads", "10");
        Add("Gpt with a too long context", AE, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Forward(Ints(1, 6)), "Gpt", "4", "[1, 6]");
        Add("Gpt with float tokens", AE, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Forward(Tensor.Zeros(1, 3)), "Gpt", "int64", "float64", "[1, 3]");
        Add("Gpt with a token out of the vocabulary", AOOR, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Forward(Tensor.FromArray(new long[] { 0, 9 }, 1, 2)), "Gpt", "9", "5");
        Add("Gpt with zero layers", AOOR, () => new Gpt(5, 8, 4, 0, 2, seed: 1), "Gpt", "layers", "0");
        Add("Gpt loss with targets of another shape", AE, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Loss(Ints(1, 3), Ints(1, 2)), "Gpt", "[1, 3]", "[1, 2]");
        Add("Flatten module with a dim out of range", AOOR, () => new Flatten(3).Forward(X(2, 3)), "Flatten", "dim 3", "[2, 3]");
        Add("Flatten module with start after end", AE, () => new Flatten(2, 1).Forward(X(2, 3, 4)), "Flatten", "startDim 2", "endDim 1");
        Add("Dropout with p 1", AOOR, () => new Dropout(1.0, seed: 1), "Dropout", "p", "1");
        Add("Dropout with a negative p", AOOR, () => new Dropout(-0.1, seed: 1), "Dropout", "p", "-0.1");
        Add("Dropout with NaN p", AOOR, () => new Dropout(double.NaN, seed: 1), "Dropout", "p", "NaN");
        Add("Dropout of an int64 input", AE, () => new Dropout(0.5, seed: 1).Forward(Ints(2)), "Dropout", "int64", "[2]");
        Add("ReLU module of an int64 input", AE, () => new ReLU().Forward(Ints(2)), "Relu", "int64");
        Add("GELU module of an int64 input", AE, () => new GELU().Forward(Ints(2)), "Gelu", "int64");
        Add("Module name with a dot", AE, () => new DottedModule(), "DottedModule", "'a.b'");

        // ------------------------------------------------------------ optimizers and schedules
        AddS("Sgd with a negative learning rate", AOOR, () => Params(p => new Sgd([p], -0.1)), "Sgd", "learningRate", "-0.1");
        AddS("Sgd with a NaN learning rate", AOOR, () => Params(p => new Sgd([p], double.NaN)), "Sgd", "learningRate", "NaN");
        AddS("Sgd with a negative momentum", AOOR, () => Params(p => new Sgd([p], 0.1, momentum: -0.9)), "Sgd", "momentum", "-0.9");
        AddS("Sgd with a negative weight decay", AOOR, () => Params(p => new Sgd([p], 0.1, weightDecay: -1e-4)), "Sgd", "weightDecay", "-0.0001");
        AddS("Sgd with dampening above 1", AOOR, () => Params(p => new Sgd([p], 0.1, momentum: 0.9, dampening: 1.5)), "Sgd", "dampening", "1.5");
        AddS("Sgd with Nesterov and no momentum", AE, () => Params(p => new Sgd([p], 0.1, nesterov: true)), "Sgd", "Nesterov", "momentum = 0");
        Add("Sgd with no parameters", AE, () => new Sgd([], 0.1), "Sgd", "empty");
        Add("Sgd with a parameter that does not require grad", AE, () => new Sgd([Tensor.Zeros(2, 2)], 0.1), "Sgd", "parameter 0", "[2, 2]");
        AddS("Sgd with a non-leaf parameter", AE, () =>
        {
            var y = X(2) * 2.0;
            return (() => new Sgd([y], 0.1), null);
        }, "Sgd", "parameter 0", "not a leaf");
        AddS("Sgd with a repeated parameter", AE, () => Params(p => new Sgd([p, p], 0.1)), "Sgd", "parameter 1", "more than once");
        Add("Sgd with a null parameter", AE, () => new Sgd([X(2), null!], 0.1), "Sgd", "parameter 1", "null");
        AddS("Sgd learning rate set negative", AOOR, () =>
        {
            var p = X(2);
            var sgd = new Sgd([p], 0.1);
            return (V(() => sgd.LearningRate = -1), () => Assert.Equal(0.1, sgd.LearningRate));
        }, "Sgd", "LearningRate", "-1");
        AddS("Adam with a negative learning rate", AOOR, () => Params(p => new Adam([p], -1e-3)), "Adam", "learningRate", "-0.001");
        AddS("Adam with beta1 of 1", AOOR, () => Params(p => new Adam([p], beta1: 1.0)), "Adam", "beta1", "1");
        AddS("Adam with a negative beta2", AOOR, () => Params(p => new Adam([p], beta2: -0.5)), "Adam", "beta2", "-0.5");
        AddS("Adam with a negative epsilon", AOOR, () => Params(p => new Adam([p], epsilon: -1e-8)), "Adam", "epsilon", "-1E-08");
        AddS("Adam with a negative weight decay", AOOR, () => Params(p => new Adam([p], weightDecay: -0.01)), "Adam", "weightDecay", "-0.01");
        Add("Adam with no parameters", AE, () => new Adam([]), "Adam", "empty");
        AddS("AdamW with NaN beta1", AOOR, () => Params(p => new AdamW([p], beta1: double.NaN)), "AdamW", "beta1", "NaN");
        AddS("AdamW with an infinite learning rate", AOOR, () => Params(p => new AdamW([p], double.PositiveInfinity)), "AdamW", "learningRate", "Infinity");
        Add("AdamW with an int64 parameter", AE, () => new AdamW([Ints(2)]), "AdamW", "parameter 0", "int64");
        Add("StepLR.LearningRateAt a negative epoch", AOOR, () => new StepLR(new Sgd([X(2)], 0.5), 2).LearningRateAt(-1), "StepLR.LearningRateAt", "-1");
        Add("BatchNorm1d with no features", AOOR, () => new BatchNorm1d(0), "BatchNorm1d", "numFeatures", "0");
        Add("BatchNorm2d with negative features", AOOR, () => new BatchNorm2d(-3), "BatchNorm2d", "numFeatures", "-3");
        Add("an int64 tensor plus a number", AE, () => Ints(2, 3) + 1.0, "Add", "int64", "[2, 3]");
        Add("a number times an int64 tensor", AE, () => 2.0 * Ints(4), "Mul", "int64", "[4]");
        Add("an int64 tensor minus a number", AE, () => Ints(3) - 0.5, "Sub", "int64", "[3]");
        Add("an int64 tensor divided by a number", AE, () => Ints(3) / 2.0, "Div", "int64", "[3]");
        AddS("StepLR with step size 0", AOOR, () => Schedule(o => new StepLR(o, 0)), "StepLR", "stepSize", "0");
        AddS("StepLR with a negative gamma", AOOR, () => Schedule(o => new StepLR(o, 2, -0.5)), "StepLR", "gamma", "-0.5");
        AddS("StepLR with a NaN gamma", AOOR, () => Schedule(o => new StepLR(o, 2, double.NaN)), "StepLR", "gamma", "NaN");
        AddS("StepLR whose rate overflows", IOE, () =>
        {
            var p = X(2);
            var sgd = new Sgd([p], 1);
            var schedule = new StepLR(sgd, 1, 1e300);
            schedule.Step();
            void Unchanged()
            {
                Assert.Equal(1, schedule.LastEpoch);
                Assert.Equal(1e300, sgd.LearningRate);
            }

            return (V(schedule.Step), Unchanged);
        }, "StepLR", "epoch 2", "Infinity");
        AddS("CosineAnnealingLR with tMax 0", AOOR, () => Schedule(o => new CosineAnnealingLR(o, 0)), "CosineAnnealingLR", "tMax", "0");
        AddS("CosineAnnealingLR with a negative eta min", AOOR, () => Schedule(o => new CosineAnnealingLR(o, 5, -0.1)), "CosineAnnealingLR", "etaMin", "-0.1");
        AddS("ClipGradNorm with a negative max norm", AOOR, () => Params(p => GradClip.ClipGradNorm([p], -1)), "ClipGradNorm", "maxNorm", "-1");
        AddS("ClipGradNorm with norm type 0", AOOR, () => Params(p => GradClip.ClipGradNorm([p], 1, 0)), "ClipGradNorm", "normType", "0");

        // ------------------------------------------------------------ data
        Add("DataLoader with batch size 0", AOOR, () => new DataLoader(Tensor.Zeros(4, 2), Tensor.Zeros(4), 0), "DataLoader", "batch size", "0");
        Add("DataLoader with a negative batch size", AOOR, () => new DataLoader(Tensor.Zeros(4, 2), Tensor.Zeros(4), -2), "DataLoader", "-2");
        Add("DataLoader with mismatched lengths", AE, () => new DataLoader(Tensor.Zeros(4, 2), Tensor.Zeros(3), 2), "DataLoader", "[4, 2]", "[3]");
        Add("DataLoader with rank-0 labels", AE, () => new DataLoader(Tensor.Zeros(4, 2), Tensor.Scalar(1.0), 2), "DataLoader", "[4, 2]", "[]");
        Add("TensorDataset with mismatched lengths", AE, () => new TensorDataset(Tensor.Zeros(4, 2), Tensor.Zeros(5)), "TensorDataset", "4 rows", "5", "[5]");
        Add("TensorDataset with rank-0 labels", AE, () => new TensorDataset(Tensor.Zeros(4, 2), Tensor.Scalar(1.0)), "TensorDataset", "[4, 2]", "[]");
        Add("TensorDataset slice out of range", AOOR, () => new TensorDataset(Tensor.Zeros(4, 2), Tensor.Zeros(4)).Slice(3, 2), "Slice", "[3, 3 + 2)", "4 rows");
        Add("TensorDataset gather out of range", AOOR, () => new TensorDataset(Tensor.Zeros(4, 2), Tensor.Zeros(4)).Gather([0, 4]), "GatherRows", "4", "[4, 2]");
        Add("GatherRows of a rank-0 tensor", AE, () => TensorDataset.GatherRows(Tensor.Scalar(1.0), [0]), "GatherRows", "rank-0");
        Add("CsvReader on a missing file", FNF, () => CsvReader.Read(TempPath("missing.csv")), "CSV", "missing.csv");
        Add("CsvReader with ragged rows", IDE, () => CsvReader.Parse("a,b\n1,2\n3\n"), "CSV", "<text>");
        Add("CsvReader with a non-number", IDE, () => CsvReader.Parse("a,b\n1,x\n"), "CSV", "'x'");
        Add("CsvReader of empty text", IDE, () => CsvReader.Parse("  \n"), "CSV", "no header and no rows");
        Add("CsvReader with a digit delimiter", AE, () => CsvReader.Parse("a\n1\n", new CsvOptions { Delimiter = '1' }), "CsvOptions", "'1'");
        Add("CsvTable with an unknown column", KNF, () => CsvReader.Parse("a,b\n1,2\n").Column("c"), "CsvTable", "'c'", "'a', 'b'");
        Add("IdxFile on a missing file", FNF, () => IdxFile.Read(TempPath("missing.idx")), "IDX", "missing.idx");
        AddS("IdxFile with a bad magic number", IDE, () =>
        {
            var path = TempPath("bad.idx");
            File.WriteAllBytes(path, [1, 2, 3, 4, 0, 0, 0, 0]);
            return (() => IdxFile.Read(path), () => File.Delete(path));
        }, "IDX", "bad.idx");
        AddS("IdxFile truncated", IDE, () =>
        {
            var path = TempPath("short.idx");
            File.WriteAllBytes(path, [0, 0, 8, 1, 0, 0, 0, 5, 1, 2]);
            return (() => IdxFile.Read(path), () => File.Delete(path));
        }, "IDX", "short.idx", "truncated");
        Add("IdxFile images as int64", AE, () => IdxFile.ReadImages(TempPath("x.idx"), dtype: DType.Int64), "ReadImages", "int64");
        Add("FashionMnist from a missing directory", FNF, () => FashionMnist.Load(TempPath("nofolder")), "Fashion-MNIST", "nofolder");
        Add("CharCorpus from a missing file", FNF, () => CharCorpus.Load(TempPath("words.txt")), "CharCorpus", "words.txt");
        Add("CharCorpus with a validation fraction of 1", AOOR, () => CharCorpus.FromWords(["ab", "cd"], 1.0), "CharCorpus", "validation fraction", "1");
        Add("CharCorpus with one word", IDE, () => CharCorpus.FromWords(["ab"]), "CharCorpus", "1 word");
        Add("CharCorpus with a word holding a newline", AE, () => CharCorpus.FromWords(["ab", "c\nd", "ef"]), "CharCorpus", "word 1");
        Add("CharCorpus encoding an unknown character", AE, () => CharCorpus.FromWords(["ab", "cd", "ef"]).Encode("az"), "CharCorpus.Encode", "'z'", "position 1");
        Add("CharCorpus decoding an id out of range", AOOR, () => CharCorpus.FromWords(["ab", "cd", "ef"]).Decode([1, 99]), "CharCorpus.Decode", "id 99", "position 1");
        Add("CharCorpus sampling a context too long", AOOR, () => CharCorpus.FromWords(["ab", "cd", "ef"]).SampleBatch(false, 2, 100, new Random(1)), "CharCorpus.SampleBatch", "100");
        Add("MakeMoons with a negative count", AOOR, () => SyntheticData.MakeMoons(-5), "MakeMoons", "-5");
        Add("MakeMoons with a negative noise", AOOR, () => SyntheticData.MakeMoons(10, noise: -0.1), "MakeMoons", "noise", "-0.1");
        Add("MakeSpirals with zero classes", AOOR, () => SyntheticData.MakeSpirals(0, 10), "MakeSpirals", "0");
        Add("MakeSpirals with infinite turns", AOOR, () => SyntheticData.MakeSpirals(2, 10, turns: double.PositiveInfinity), "MakeSpirals", "turns", "Infinity");

        // ------------------------------------------------------------ backward and gradients
        AddS("Backward of a non-scalar output without a gradient", IOE, () => Graph(y => V(() => y.Backward())), "Backward", "[2, 3]", "6 elements");
        AddS("Backward with a gradient of the wrong shape", AE, () => Graph(y => V(() => y.Backward(Tensor.Ones(3, 2)))), "Backward", "[3, 2]", "[2, 3]");
        AddS("Backward with a gradient of the wrong dtype", AE, () => Graph(y => V(() => y.Backward(Tensor.Ones(new Shape(2, 3), DType.Float32)))), "Backward", "float32", "float64");
        Add("Backward of a tensor that does not require grad", IOE, V(() => Tensor.Zeros(2).Sum().Backward()), "Backward", "does not require grad", "[]");
        AddS("Backward twice without retainGraph", IOE, () =>
        {
            var x = X(3);
            var y = x.Exp().Sum();
            y.Backward();
            var grad = x.Grad!.ToArray();
            return (V(() => y.Backward()), () => Assert.Equal(grad, x.Grad!.ToArray()));
        }, "Backward", "second time", "retainGraph");
        AddS("Autodiff.Backward with more gradients than outputs", AE, () => Graph(y => V(() => Autodiff.Backward([y], [null, null]))), "Backward", "1 outputs but 2 gradients");
        Add("Autodiff.Backward of no outputs", AE, V(() => Autodiff.Backward([])), "Backward", "no outputs");
        AddS("Grad for an input that does not require grad", IOE, () => Graph(y => () => Autodiff.Grad(y, Tensor.Zeros(2)), sum: true), "Grad", "input 0", "[2]");
        AddS("Grad for an unused input", IOE, () => Graph(y => () => Autodiff.Grad(y, X(3)), sum: true), "Grad", "input 0", "[3]", "allowUnused");
        AddS("Grad of a non-scalar output without a gradient", IOE, () =>
        {
            var x = X(2);
            var y = x * 2.0;
            return (() => Autodiff.Grad(y, x), () => Assert.Null(x.Grad));
        }, "Grad", "[2]", "2 elements");
        AddS("Grad with a gradient of the wrong shape", AE, () =>
        {
            var x = X(2);
            var y = x * 2.0;
            return (() => Autodiff.Grad(y, x, Tensor.Ones(3)), () => Assert.Null(x.Grad));
        }, "Grad", "[3]", "[2]");
        AddS("Grad with more gradients than outputs", AE, () => Graph(y => () => Autodiff.Grad([y], [X(2)], [null, null]), sum: true), "Grad", "1 outputs but 2 gradients");
        Add("GradCheck with a float32 input", AE, () => GradCheck.Check(xs => xs[0].Sum(), [X32(2)]), "GradCheck", "input 0", "float32");
        AddS("GradCheck with a non-leaf input", AE, () =>
        {
            var y = X(2) * 2.0;
            return (() => GradCheck.Check(xs => xs[0].Sum(), [y]), null);
        }, "GradCheck", "input 0", "Mul");
        Add("GradCheck with no input requiring grad", AE, () => GradCheck.Check(xs => xs[0].Sum(), [Tensor.Zeros(2)]), "GradCheck", "no input requires grad");
        Add("GradGradCheck of a recorded function with too many output gradients", AE, () => GradCheck.GradGradCheck(xs => [(xs[0] * xs[0]).Sum()], [Tensor.Zeros(2).WithRequiresGrad()], [Tensor.Scalar(1.0), Tensor.Scalar(1.0)]), "GradGradCheck", "1 outputs but 2 output gradients");
        Add("GradGradCheck with too many output gradients", AE, () => GradCheck.GradGradCheck(xs => [xs[0].Sum()], [Tensor.Zeros(2)], [Tensor.Scalar(1.0), Tensor.Scalar(1.0)]), "GradGradCheck", "1 outputs but 2 output gradients");

        // ------------------------------------------------------------ more of the same families
        Add("PrintPrecision above 17", AOOR, V(() => Tensor.PrintPrecision = 18), "PrintPrecision", "18");
        Add("ToString with a negative precision", AOOR, () => X(2).ToString(-1), "ToString", "-1");
        Add("FormatValues with a precision above 17", AOOR, () => X(2).FormatValues(20), "FormatValues", "20");
        Add("Narrow with a negative start out of range", AOOR, () => X(4, 3).Narrow(0, -5, 1), "Narrow", "start -5", "[4, 3]");
        Add("Concat negative dim out of range", AOOR, () => Tensor.Concat([X(2, 3), X(2, 3)], -3), "Concat", "dim -3", "[2, 3]");
        Add("Stack negative dim out of range", AOOR, () => Tensor.Stack([X(2), X(2)], -3), "Stack", "dim -3", "[2]");
        Add("OneHot with numClasses -2", AE, () => Tensor.OneHot(Idx(0), -2), "OneHot", "-2");
        Add("Clamp with a NaN max", AE, () => X(2).Clamp(0, double.NaN), "Clamp", "max is NaN");
        Add("Where with a number and an int64 branch", AE, () => Tensor.Where(Ints(2), 1.0, Ints(2)), "Where", "int64");
        Add("Sum with one dim out of range in a list", AOOR, () => X(2, 3).Sum([0, 5]), "Sum", "dim 5", "[2, 3]");
        Add("Mean with a dim repeated as negative and positive", AE, () => X(2, 3).Mean([-1, 1]), "Mean", "dim 1", "more than once", "[2, 3]");
        Add("Max of an int64 tensor", AE, () => Ints(2, 3).Max(1), "Max", "int64", "[2, 3]");
        Add("MatMul of a vector and a mismatched batch", AE, () => X(3).MatMul(X(2, 4, 5)), "MatMul", "[3]", "[2, 4, 5]");
        Add("Softmax of a float32 tensor with dim out of range", AOOR, () => X32(4).Softmax(1), "Softmax", "dim 1", "[4]");
        Add("AvgPool2d with padding above half the kernel", AOOR, () => X(1, 1, 4, 4).AvgPool2d(2, 1, 2), "AvgPool2d", "padding (2, 2)", "kernel (2, 2)");
        Add("AdaptiveAvgPool2d of an int64 input", AE, () => Ints(1, 1, 4, 4).AdaptiveAvgPool2d(2), "AdaptiveAvgPool2d", "int64", "[1, 1, 4, 4]");
        Add("MaxPool2d module with kernel 0", AOOR, () => new MaxPool2d(0).Forward(X(1, 1, 4, 4)), "MaxPool2d", "kernel", "(0, 0)");
        Add("Conv2d with a tuple stride of 0", AOOR, () => X(1, 3, 5, 5).Conv2d(X(4, 3, 3, 3), null, (1, 0)), "Conv2d", "stride", "(1, 0)");
        Add("Sigmoid module of an int64 input", AE, () => new Sigmoid().Forward(Ints(2)), "Sigmoid", "int64");
        Add("Tanh module of an int64 input", AE, () => new Tanh().Forward(Ints(2)), "Tanh", "int64");
        Add("Embedding module with a negative index", AOOR, () => new Embedding(5, 4, seed: 1).Forward(Idx(-1)), "Embedding", "index -1", "[5, 4]");
        Add("Embedding module with a zero dim", AOOR, () => new Embedding(5, 0, seed: 1), "Embedding", "embeddingDim", "0");
        Add("Conv2d module with dilation 0", AOOR, () => new Conv2d(3, 4, 3, seed: 1, dilation: 0), "Conv2d", "dilation", "0");
        Add("Conv2d module with groups 0", AOOR, () => new Conv2d(3, 4, 3, seed: 1, groups: 0), "Conv2d", "groups", "0");
        Add("TransformerBlock with a zero size", AOOR, () => new TransformerBlock(0, 1, seed: 1), "TransformerBlock", "dModel", "0");
        Add("Gpt with heads not dividing the size", AE, () => new Gpt(5, 10, 4, 1, 4, seed: 1), "Gpt", "4 heads", "10");
        Add("Gpt with a zero context", AOOR, () => new Gpt(5, 8, 0, 1, 2, seed: 1), "Gpt", "context", "0");
        Add("Gpt with a rank-1 input", AE, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Forward(Idx(0, 1)), "Gpt", "[2]");
        Add("Gpt loss with a target out of the vocabulary", AOOR, () => new Gpt(5, 8, 4, 1, 2, seed: 1).Loss(Ints(1, 2), Tensor.FromArray(new long[] { 1, 5 }, 1, 2)), "Gpt", "token 5", "[1, 2]");
        AddS("Module registering a non-leaf parameter", AE, () =>
        {
            var y = X(2) * 2.0;
            return (() => new NonLeafModule(y), null);
        }, "RegisterParameter", "'w'", "Mul");
        Add("Module registering a buffer that requires grad", AE, () => new GradBufferModule(), "RegisterBuffer", "'b'", "[2]");
        Add("Module registering a name twice", AE, () => new TwiceModule(), "TwiceModule", "'w'", "already registered");
        AddS("LoadSafeTensors with a shape that does not fit", IDE, () =>
        {
            var stream = new MemoryStream();
            new Linear(2, 3, seed: 1).SaveSafeTensors(stream);
            stream.Position = 0;
            var target = new Linear(3, 2, seed: 2);
            var before = target.Parameters().Select(p => p.ToArray()).ToArray();
            return (() => target.LoadSafeTensors(stream), () => Assert.Equal(before, target.Parameters().Select(p => p.ToArray()).ToArray()));
        }, "LoadSafeTensors", "safetensors", "Linear", "[3, 2]", "[2, 3]");
        AddS("LoadSafeTensors with a dtype that does not fit", IDE, () =>
        {
            var stream = new MemoryStream();
            new Linear(2, 3, seed: 1, dtype: DType.Float32).SaveSafeTensors(stream);
            stream.Position = 0;
            var target = new Linear(2, 3, seed: 2);
            var before = target.Parameters().Select(p => p.ToArray()).ToArray();
            return (() => target.LoadSafeTensors(stream), () => Assert.Equal(before, target.Parameters().Select(p => p.ToArray()).ToArray()));
        }, "safetensors", "Linear", "F32", "F64");
        Add("SafeTensors.Save with a reserved name", AE, V(() => SafeTensors.Save(new MemoryStream(), new Dictionary<string, Tensor> { ["__metadata__"] = X(2) })), "SafeTensors.Save", "__metadata__");
        Add("SafeTensors.Load of a truncated stream", IDE, () => SafeTensors.Load(new MemoryStream([8, 0, 0, 0, 0, 0, 0, 0, (byte)'{'])), "safetensors", "<stream>");
        Add("FashionMnist.LoadSplit with missing files", FNF, () => FashionMnist.LoadSplit(TempPath("img"), TempPath("lbl")), "IDX", "img");
        Add("CharCorpus sampling a batch of 0", AOOR, () => CharCorpus.FromWords(["ab", "cd", "ef"]).SampleBatch(false, 0, 2, new Random(1)), "CharCorpus.SampleBatch", "batchSize", "0");
        Add("CharCorpus sampling a context of 0", AOOR, () => CharCorpus.FromWords(["ab", "cd", "ef"]).SampleBatch(false, 2, 0, new Random(1)), "CharCorpus.SampleBatch", "context", "0");
        Add("MakeSpirals with a negative count per class", AOOR, () => SyntheticData.MakeSpirals(2, -1), "MakeSpirals", "-1");
        Add("MakeSpirals with a NaN noise", AOOR, () => SyntheticData.MakeSpirals(2, 10, noise: double.NaN), "MakeSpirals", "noise", "NaN");
        AddS("Sgd step leaves the parameters as they are after a rejected learning rate", AOOR, () =>
        {
            var p = X(2);
            var sgd = new Sgd([p], 0.1, momentum: 0.9);
            p.Grad = Tensor.Ones(2);
            sgd.Step();
            var (value, grad, steps) = (p.ToArray(), p.Grad.ToArray(), sgd.StepCount);
            void Unchanged()
            {
                Assert.Equal(value, p.ToArray());
                Assert.Equal(grad, p.Grad!.ToArray());
                Assert.Equal(steps, sgd.StepCount);
                Assert.Equal(0.1, sgd.LearningRate);
            }

            return (V(() => sgd.LearningRate = double.NaN), Unchanged);
        }, "Sgd", "LearningRate", "NaN");
        AddS("Adam learning rate set negative", AOOR, () =>
        {
            var p = X(2);
            var adam = new Adam([p], 0.01);
            return (V(() => adam.LearningRate = -0.5), () => Assert.Equal(0.01, adam.LearningRate));
        }, "Adam", "LearningRate", "-0.5");
        AddS("Backward into a tensor made under NoGrad", IOE, () =>
        {
            var x = X(2);
            Tensor y;
            using (Tensor.NoGrad())
            {
                y = (x * 2.0).Sum();
            }

            return (V(() => y.Backward()), () => Assert.Null(x.Grad));
        }, "Backward", "output 0", "NoGrad");
        AddS("Grad twice without retainGraph", IOE, () =>
        {
            var x = X(3);
            var y = x.Exp().Sum();
            Autodiff.Grad(y, x);
            return (() => Autodiff.Grad(y, x), () => Assert.Null(x.Grad));
        }, "Grad", "second time", "retainGraph");
        AddS("Gpt sampling at temperature 0", AOOR, () =>
        {
            var gpt = new Gpt(7, 8, 4, 1, 2, seed: 1);
            return (() => gpt.Sample(CharCorpus.FromWords(["ab", "cd", "ef"]), 0, new Random(1)), () => Assert.True(gpt.IsTraining));
        }, "Gpt.Sample", "temperature", "0");
        AddS("Gpt sampling with a corpus of another vocabulary", AE, () =>
        {
            var gpt = new Gpt(5, 8, 4, 1, 2, seed: 1);
            return (() => gpt.Sample(CharCorpus.FromWords(["ab", "cd", "ef"]), 1, new Random(1)), () => Assert.True(gpt.IsTraining));
        }, "Gpt.Sample", "7 characters", "5");

        Add("SoftmaxComposed dim out of range", AOOR, () => X(2, 3).SoftmaxComposed(2), "SoftmaxComposed", "dim 2", "[2, 3]");
        Add("SoftmaxComposed of an int64 tensor", AE, () => Ints(2, 3).SoftmaxComposed(1), "SoftmaxComposed", "int64", "[2, 3]");
        Add("LogSoftmaxComposed negative dim out of range", AOOR, () => X(2, 3).LogSoftmaxComposed(-3), "LogSoftmaxComposed", "dim -3", "[2, 3]");
        Add("LogSumExpComposed dim out of range", AOOR, () => X(2, 3).LogSumExpComposed(4), "LogSumExpComposed", "dim 4", "[2, 3]");
        Add("LayerNormComposed with a mismatched normalized shape", AE, () => X(2, 3).LayerNormComposed([2]), "LayerNormComposed", "[2]", "[2, 3]");
        Add("LayerNormComposed with a NaN eps", AOOR, () => X(2, 3).LayerNormComposed([3], eps: double.NaN), "LayerNormComposed", "eps", "NaN");
        Add("ScaledDotProductAttentionComposed with mismatched feature sizes", AE, () => Tensor.ScaledDotProductAttentionComposed(X(4, 8), X(5, 6), X(5, 8)), "ScaledDotProductAttentionComposed", "[4, 8]", "[5, 6]");
        Add("ScaledDotProductAttentionComposed with a mask of the wrong shape", AE, () => Tensor.ScaledDotProductAttentionComposed(X(4, 8), X(5, 8), X(5, 8), mask: Tensor.Ones(3, 5)), "ScaledDotProductAttentionComposed", "[3, 5]", "[4, 5]");
        Add("BatchNorm with a negative eps", AOOR, () => X(4, 3).BatchNorm(null, null, training: true, eps: -1), "BatchNorm", "eps", "-1");

        Add("From as int64 with a NaN", AE, () => Tensor.From(new[] { 1.0, double.NaN }, DType.Int64), "From", "element 1", "NaN", "[2]");
        Add("From as int64 with an infinity", AE, () => Tensor.From(new[,] { { 1.0, 2.0 }, { double.NegativeInfinity, 0.0 } }, DType.Int64), "From", "element 2", "-Infinity", "[2, 2]");

        return [.. rows];
    }

    private static (Func<object?>, Action?) Params(Func<Tensor, object?> make)
    {
        var p = X(2, 2);
        return Same(() => make(p), p);
    }

    /// <summary>y = 2x for a fresh leaf x [2, 3] (or its sum), built outside the observed call; afterwards x has no gradient.</summary>
    private static (Func<object?>, Action?) Graph(Func<Tensor, Func<object?>> act, bool sum = false)
    {
        var x = X(2, 3);
        var y = x * 2.0;
        return (act(sum ? y.Sum() : y), () => Assert.Null(x.Grad));
    }

    private static (Func<object?>, Action?) Schedule(Func<Optimizer, object?> make)
    {
        var sgd = new Sgd([X(2)], 0.5);
        return (() => make(sgd), () => Assert.Equal(0.5, sgd.LearningRate));
    }

    private sealed class NonLeafModule : Module
    {
        public NonLeafModule(Tensor w) => RegisterParameter("w", w);

        public override Tensor Forward(Tensor input) => input;
    }

    private sealed class GradBufferModule : Module
    {
        public GradBufferModule() => RegisterBuffer("b", X(2));

        public override Tensor Forward(Tensor input) => input;
    }

    private sealed class TwiceModule : Module
    {
        public TwiceModule()
        {
            RegisterParameter("w", X(2));
            RegisterParameter("w", X(2));
        }

        public override Tensor Forward(Tensor input) => input;
    }

    private sealed class DottedModule : Module
    {
        public DottedModule() => RegisterParameter("a.b", Tensor.Zeros(2).WithRequiresGrad());

        public override Tensor Forward(Tensor input) => input;
    }
}
