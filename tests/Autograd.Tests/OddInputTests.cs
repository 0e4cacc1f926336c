using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>
/// Odd but possible inputs that once gave a wrong or unclear answer: shapes with no elements and huge sizes, ranges
/// with NaN bounds, float-to-int64 conversions of values that have no int64 value, and CSV tables whose first line is
/// ambiguous, whose numbers overflow or whose column names repeat.
/// </summary>
public class OddInputTests
{
    private static readonly (string Name, Action Call, string Message)[] Misuses = MakeMisuses();

    public static TheoryData<string> MisusedLossesAndLayers() => [.. Misuses.Select(m => m.Name)];

    /// <summary>A loss or layer given tensors of the wrong dtype names itself, not the operator inside it.</summary>
    [Theory]
    [MemberData(nameof(MisusedLossesAndLayers))]
    public void ALossOrLayerMisusedNamesItselfNotItsInnerOperator(string name)
    {
        var (_, call, message) = Misuses.Single(m => m.Name == name);
        var e = Assert.Throws<ArgumentException>(call);
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    private static (string Name, Action Call, string Message)[] MakeMisuses()
    {
        var f32 = Tensor.From(1.0, 2.0).To(DType.Float32);
        var f64 = Tensor.From(1.0, 2.0);
        var ints = Tensor.From(1.0, 2.0).To(DType.Int64);
        var labels = Tensor.FromArray(new long[] { 0, 1 }, 2);
        return
        [
            ("MseLoss float32 vs float64", () => Functional.MseLoss(f32, f64), "MseLoss: the prediction is float32 (shape [2]) and the target is float64 (shape [2]); both must be of one float dtype, float32 or float64."),
            ("MseLoss int64", () => Functional.MseLoss(ints, ints), "MseLoss: the prediction is int64 (shape [2]) and the target is int64 (shape [2]);"),
            ("BCE float64 vs float32", () => Functional.BinaryCrossEntropyWithLogits(f64, f32), "BinaryCrossEntropyWithLogits: the prediction is float64 (shape [2]) and the target is float32 (shape [2]);"),
            ("CrossEntropy int64 scores", () => Functional.CrossEntropy(Tensor.Zeros(2, 3).To(DType.Int64), labels), "CrossEntropy: expected float32 or float64 scores, got int64 of shape [2, 3]."),
            ("NllLoss int64 scores", () => Functional.NllLoss(Tensor.Zeros(2, 3).To(DType.Int64), labels), "NllLoss: expected float32 or float64 scores, got int64 of shape [2, 3]."),
            ("Linear float64 input to float32 layer", () => new Linear(2, 3, seed: 1, dtype: DType.Float32).Forward(f64), "Linear: the input is float64 (shape [2]) but the layer's weight is float32; convert the input with To(Float32)."),
            ("Dropout int64", () => new Dropout(0.5, seed: 1).Forward(ints), "Dropout: expected a float32 or float64 input, got int64 of shape [2]."),
        ];
    }

    [Fact]
    public void ASaveRemovesTheStaleTemporariesOfKilledSavesOfTheSameFileOnly()
    {
        var dir = Directory.CreateTempSubdirectory("autograd-orphans-").FullName;
        try
        {
            var target = Path.Combine(dir, "model.safetensors");
            string Temp(string file) => Path.Combine(dir, $".{file}.{Guid.NewGuid():N}.tmp");
            var stale = Temp("model.safetensors");
            var fresh = Temp("model.safetensors");
            var otherTarget = Temp("other.safetensors");
            var notOurs = Path.Combine(dir, ".model.safetensors.notes.tmp");
            var held = Temp("model.safetensors");
            foreach (var f in new[] { stale, fresh, otherTarget, notOurs, held })
            {
                File.WriteAllText(f, "partial");
            }

            foreach (var f in new[] { stale, otherTarget, notOurs, held })
            {
                File.SetLastWriteTimeUtc(f, DateTime.UtcNow.AddHours(-2));
            }

            using (new FileStream(held, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                SafeTensors.Save(target, new Dictionary<string, Tensor> { ["w"] = Tensor.From(1.0, 2.0) });
            }

            Assert.False(File.Exists(stale), "the stale temporary of a killed save of this file is removed");
            Assert.True(File.Exists(fresh), "a temporary written less than a minute ago may be a save in progress");
            Assert.True(File.Exists(held), "a temporary held open is a save in progress");
            Assert.True(File.Exists(otherTarget), "another file's temporaries are not this save's business");
            Assert.True(File.Exists(notOurs), "a file not named like a temporary of this save is left alone");
            Assert.Equal([1.0, 2.0], SafeTensors.Load(target)["w"].ToArray());
            Assert.Equal(5, Directory.GetFiles(dir).Length);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>float32 sums of a million normal values, along a row and down columns, against the float64 sum of the same values.</summary>
    [Theory]
    [InlineData(1_000_003, 1)]
    [InlineData(250_001, 4)]
    [InlineData(1_000_000, 1)]
    public void Float32SumsOfAMillionValuesStayWithinOnePartPerMillion(int rows, int columns)
    {
        var x64 = Tensor.RandN(new Shape(rows, columns), 5);
        var x32 = x64.To(DType.Float32);
        var exact = x32.To(DType.Float64).Sum([0]).ToArray();
        var got = x32.Sum([0]).ToArray();
        for (var c = 0; c < columns; c++)
        {
            var rel = Math.Abs(got[c] - exact[c]) / Math.Abs(exact[c]);
            Assert.True(rel <= 1e-6, $"column {c} of [{rows}, {columns}]: float32 sum {got[c]:R}, float64 sum {exact[c]:R}, relative error {rel:E2}");
        }

        if (columns == 1)
        {
            var all = x32.Sum().Item();
            Assert.True(Math.Abs(all - exact[0]) / Math.Abs(exact[0]) <= 1e-6, $"Sum() of [{rows}]: {all:R} against {exact[0]:R}");
        }
    }

    [Fact]
    public void ComposedLogSumExpOfInfiniteRowsIsInfiniteAsTheFusedOne()
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var inf = double.PositiveInfinity;
            var x = Tensor.FromArray(new[] { inf, inf, -inf, -inf, inf, 1.0, 2.0, 3.0 }, 4, 2).To(dtype);
            var composed = x.LogSumExpComposed(1).ToArray();
            var fused = x.LogSumExp(1).ToArray();
            Assert.Equal(inf, composed[0]);
            Assert.Equal(-inf, composed[1]);
            Assert.Equal(inf, composed[2]);
            Assert.Equal(fused[..3], composed[..3]);
            Assert.Equal(fused[3], composed[3], 5);
            var r = FusedCheck.Compare(t => t.LogSumExp(1), t => t.LogSumExpComposed(1), Tensor.RandN(new Shape(3, 5), 7, dtype));
            Assert.True(r.MaxAbs <= ForDType.Pick(dtype, float64: 1e-12, float32: 1e-5), $"{dtype}: {r}");
        }
    }

    [Fact]
    public void TheGradientOfAbsAtNegativeZeroIsPositiveZeroAsInPyTorch()
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var x = Tensor.From(-0.0, 0.0, -2.0, 3.0, double.NaN).To(dtype).WithRequiresGrad();
            var dx = Autodiff.Grad(x.Abs(), x, Tensor.From(1.0, 1.0, 1.0, 1.0, 1.0).To(dtype)).ToArray();
            Assert.Equal(0.0, dx[0]);
            Assert.False(double.IsNegative(dx[0]), $"{dtype}: d|x|/dx at −0 is {dx[0]}");
            Assert.False(double.IsNegative(dx[1]));
            Assert.Equal([-1.0, 1.0], dx[2..4]);
            Assert.True(double.IsNaN(dx[4]));
        }
    }

    [Fact]
    public void AScheduleWhoseRateOverflowsBlamesItselfAndChangesNothing()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var sgd = new Sgd([w], 0.1);
        var schedule = new StepLR(sgd, stepSize: 1, gamma: 1e200);
        schedule.Step();
        Assert.Equal(0.1 * 1e200, sgd.LearningRate, 1e185);
        var e = Assert.Throws<InvalidOperationException>(schedule.Step);
        Assert.StartsWith("StepLR: the learning rate at epoch 2 would be Infinity (base rate 0.1), which is not a finite number ≥ 0; the epoch stays 1", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, schedule.LastEpoch);
        Assert.Equal(0.1 * 1e200, sgd.LearningRate, 1e185);
    }

    [Fact]
    public void AFirstCsvLineMixingNumbersAndTextIsRefusedNotTakenAsTheHeader()
    {
        var e = Assert.Throws<InvalidDataException>(() => CsvReader.Parse("1.5,abc,3\n4,5,6\n", sourceName: "mixed"));
        Assert.Equal("CSV 'mixed' line 1: the first line mixes numbers (column 1: '1.5') and text (column 2: 'abc'), so it is neither clearly a header nor clearly data; set CsvOptions.HasHeader to say which.", e.Message);
        var forced = CsvReader.Parse("1.5,abc,3\n4,5,6\n", new CsvOptions { HasHeader = true });
        Assert.Equal(["1.5", "abc", "3"], forced.ColumnNames);
        Assert.Equal([4.0, 5, 6], forced.Data.ToArray());
        Assert.Equal(["a", "b"], CsvReader.Parse("a,b\n1,2\n").ColumnNames);
        Assert.Equal(["column1", "column2"], CsvReader.Parse("1,2\n3,4\n").ColumnNames);
    }

    [Theory]
    [InlineData("1e999", "'1e999' is beyond float64's range")]
    [InlineData("-2e308", "'-2e308' is beyond float64's range")]
    public void ACsvNumberBeyondFloat64IsRefusedNotReadAsInfinity(string cell, string message)
    {
        var e = Assert.Throws<InvalidDataException>(() => CsvReader.Parse($"a,b\n1,{cell}\n", sourceName: "big"));
        Assert.StartsWith($"CSV 'big' line 2, column 2 ('b'): {message}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ExplicitInfinityAndNaNInACsvAreValues()
    {
        var t = CsvReader.Parse("a,b,c,d\nInfinity,-Infinity,NaN,1e308\n").Data.ToArray();
        Assert.Equal(double.PositiveInfinity, t[0]);
        Assert.Equal(double.NegativeInfinity, t[1]);
        Assert.True(double.IsNaN(t[2]));
        Assert.Equal(1e308, t[3]);
    }

    [Fact]
    public void RepeatedCsvColumnNamesAreRefused()
    {
        var e = Assert.Throws<InvalidDataException>(() => CsvReader.Parse("x,y, x\n1,2,3\n", sourceName: "dup"));
        Assert.Equal("CSV 'dup' line 1: columns 1 and 3 are both named 'x'; column names must be distinct.", e.Message);
    }

    [Theory]
    [InlineData(new[] { int.MaxValue, 0 })]
    [InlineData(new[] { 0, 100_000, 100_000 })]
    [InlineData(new[] { 65_536, 65_536, 0, 65_536 })]
    public void AShapeWithAZeroSizeHasNoElementsWhateverItsOtherSizes(int[] dims)
    {
        var shape = new Shape(dims);
        Assert.Equal(0, shape.ElementCount);
        Assert.All(shape.Strides.ToArray(), s => Assert.True(s >= 1, $"stride {s} of {shape}"));
        var t = Tensor.Zeros(shape, DType.Float32);
        Assert.Equal(shape, t.Shape);
        Assert.Empty(t.ToArray());
        Assert.Equal(0, t.Sum().Item());
    }

    [Fact]
    public void AShapeWithTooManyElementsIsRefusedWithItsSizes()
    {
        var e = Assert.Throws<ArgumentException>(() => new Shape(65_536, 65_536));
        Assert.Contains("[65536, 65536]", e.Message, StringComparison.Ordinal);
        Assert.Contains("more elements than an array can hold", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(double.NaN, 5, 1, "start")]
    [InlineData(0, double.NaN, 1, "stop")]
    [InlineData(0, 5, double.NaN, "step")]
    [InlineData(double.NegativeInfinity, 5, 1, "start")]
    [InlineData(0, double.PositiveInfinity, 1, "stop")]
    [InlineData(0, 5, 0, "step")]
    public void ARangeWithANonFiniteBoundOrStepIsRefused(double start, double stop, double step, string parameter)
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Arange(start, stop, step));
        Assert.StartsWith("Arange:", e.Message, StringComparison.Ordinal);
        Assert.Equal(parameter, e.ParamName);
    }

    [Fact]
    public void ARangeOfMoreValuesThanATensorHoldsIsRefusedBeforeAllocating()
    {
        var e = Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 1e300, 1e-300));
        Assert.Contains("more than a tensor can hold", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FloatsBecomeInt64ByTruncationTowardZero()
    {
        var t = Tensor.From(-2.7, -0.5, 0.0, 3.9, 9.007199254740992e15).To(DType.Int64);
        Assert.Equal([-2L, 0L, 0L, 3L, 9_007_199_254_740_992L], t.ToArray<long>());
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    [InlineData(1e19)]
    [InlineData(-1e19)]
    [InlineData(9.3e18)]
    public void AFloatWithNoInt64ValueIsRefusedNamingItsPositionAndValue(double value)
    {
        foreach (var dtype in new[] { DType.Float64, DType.Float32 })
        {
            var t = Tensor.From(1.5, 2.5, value).To(dtype);
            var stored = t.ToArray()[2];
            var e = Assert.Throws<ArgumentException>(() => t.To(DType.Int64));
            Assert.StartsWith($"To: element 2 (flat index) of the {dtype.Name()} tensor of shape [3] is {stored.ToString(System.Globalization.CultureInfo.InvariantCulture)},", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TheLargestFloatsBelowTwoToTheSixtyThreeConvert()
    {
        var below = Math.BitDecrement(9.2233720368547758e18);
        Assert.Equal([(long)below, long.MinValue], Tensor.From(below, -9.2233720368547758e18).To(DType.Int64).ToArray<long>());
    }
}
