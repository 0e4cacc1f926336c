using System.Runtime.CompilerServices;

using Autograd.Nn;
using Autograd.Nn.Optim;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>
/// Tensor versions: every in-place write to an existing tensor bumps the version of its storage (shared by its views),
/// and a backward rule that reads a saved tensor changed since it was saved fails, naming the operator, the tensor, both
/// versions and the write; writes that do not touch a saved tensor, and new graphs, are unaffected.
/// </summary>
public class VersionTests
{
    private const string ThisFile = "VersionTests.cs";

    public static TheoryData<string> Optimizers() => ["Sgd", "SgdMomentum", "Adam", "AdamW"];

    // ---------------------------------------------------------------- the reproduction

    [Fact]
    public void AStepAfterTheForwardMakesBackwardFailInsteadOfUsingTheNewValues()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (w * w).Sum();
        w.Grad = Tensor.From(10.0, 10.0);
        var line = Here() + 1;
        new Sgd([w], 0.1).Step();
        w.Grad = null;

        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.StartsWith("Backward of Mul: its saved tensor '", e.Message, StringComparison.Ordinal);
        Assert.Contains("[2] float64 (leaf)", e.Message, StringComparison.Ordinal);
        Assert.Contains("(version 0 → 1, by Sgd.Step in " + nameof(AStepAfterTheForwardMakesBackwardFailInsteadOfUsingTheNewValues) + $" at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);
        Assert.EndsWith("Recompute the forward after changing it, or clone it before the change.", e.Message, StringComparison.Ordinal);
        Close([0.0, 1.0], w.ToArray());
        Assert.Null(w.Grad);
    }

    [Fact]
    public void WithoutTheStepTheRecordedGraphGivesItsGradient()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (w * w).Sum();
        y.Backward();
        Assert.Equal([2.0, 4.0], w.Grad!.ToArray());
        Assert.Equal(0, w.Version);
    }

    // ---------------------------------------------------------------- every writer

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void EveryOptimizerStepBumpsTheParameterAndTripsAGraphThatSavedIt(string name)
    {
        var w = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var untouched = Tensor.From(1.0).WithRequiresGrad();
        Optimizer opt = name switch
        {
            "Sgd" => new Sgd([w, untouched], 0.1),
            "SgdMomentum" => new Sgd([w, untouched], 0.1, momentum: 0.9),
            "Adam" => new Adam([w, untouched]),
            _ => new AdamW([w, untouched]),
        };
        var y = (w.Exp() * w).Sum();
        w.Grad = Tensor.Ones(3);
        var line = Here() + 1;
        opt.Step();

        // One bump per in-place write of the parameter, as PyTorch: AdamW decays it (mul_) and then updates it (addcdiv_).
        var writes = name == "AdamW" ? 2 : 1;
        Assert.Equal(writes, w.Version);
        Assert.Equal(0, untouched.Version); // no gradient: skipped, not written
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward(retainGraph: true));
        var type = opt.GetType().Name;
        Assert.Contains("Backward of Mul", e.Message, StringComparison.Ordinal);
        Assert.Contains($"by {type}.Step in {nameof(EveryOptimizerStepBumpsTheParameterAndTripsAGraphThatSavedIt)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        opt.Step();
        Assert.Equal(2 * writes, w.Version);
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"(version 0 → {2 * writes}, last by " + type + ".Step", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZeroGradToZerosBumpsTheGradientAndNamesWhichZeroGrad()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var model = new Linear(2, 1, seed: 3);
        var opt = new Sgd([w], 0.1);
        var x = Tensor.From(3.0, 4.0).WithRequiresGrad();

        (w * w).Sum().Backward();
        var y = (x * w.Grad!).Sum();
        var line = Here() + 1;
        w.ZeroGrad(setToNull: false);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by Tensor.ZeroGrad in {nameof(ZeroGradToZerosBumpsTheGradientAndNamesWhichZeroGrad)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        y = (x * w.Grad!).Sum();
        line = Here() + 1;
        opt.ZeroGrad(setToNull: false);
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by Sgd.ZeroGrad in {nameof(ZeroGradToZerosBumpsTheGradientAndNamesWhichZeroGrad)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        model.Forward(Tensor.Ones(1, 2)).Sum().Backward();
        var wg = model.Weight.Grad!;
        y = (x * wg.Reshape(2)).Sum();
        line = Here() + 1;
        model.ZeroGrad(setToNull: false);
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by Module.ZeroGrad in {nameof(ZeroGradToZerosBumpsTheGradientAndNamesWhichZeroGrad)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        // Setting the gradient to null writes nothing.
        var before = w.Grad!.Version;
        var kept = w.Grad;
        w.ZeroGrad();
        Assert.Equal(before, kept.Version);
    }

    [Fact]
    public void GradientClippingBumpsTheGradientsItScales()
    {
        var w = Tensor.From(3.0, 4.0).WithRequiresGrad();
        w.Grad = Tensor.From(30.0, 40.0);
        var x = Tensor.From(1.0, 1.0).WithRequiresGrad();
        var y = (x * w.Grad).Sum();
        var line = Here() + 1;
        GradClip.ClipGradNorm([w], 1.0);
        Assert.Equal(1, w.Grad.Version);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by GradClip.ClipGradNorm in {nameof(GradientClippingBumpsTheGradientsItScales)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        // Under the limit nothing is scaled and nothing is written.
        GradClip.ClipGradNorm([w], 100.0);
        Assert.Equal(1, w.Grad.Version);
    }

    [Fact]
    public void LoadingSafeTensorsBumpsEveryLoadedParameterAndBuffer()
    {
        var source = new Sequential(new Linear(2, 2, seed: 1), new BatchNorm1d(2));
        var model = new Sequential(new Linear(2, 2, seed: 2), new BatchNorm1d(2));
        using var file = new MemoryStream();
        source.SaveSafeTensors(file);

        var weight = model.NamedState().First(p => p.Key == "0.weight").Value;
        var mean = model.NamedState().First(p => p.Key == "1.running_mean").Value;
        var x = Tensor.Ones(2).WithRequiresGrad();
        var y = (weight * weight).Sum() + (x * mean).Sum();
        file.Position = 0;
        var line = Here() + 1;
        model.LoadSafeTensors(file);

        Assert.All(model.NamedState(), p => Assert.Equal(1, p.Value.Version));
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by Module.LoadSafeTensors in {nameof(LoadingSafeTensorsBumpsEveryLoadedParameterAndBuffer)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        // A graph recorded after the load is fine.
        ((weight * weight).Sum() + (x * mean).Sum()).Backward();
        Assert.NotNull(weight.Grad);
    }

    [Fact]
    public void BatchNormInTrainingBumpsItsRunningStatisticsAndInEvaluationDoesNot()
    {
        var bn = new BatchNorm1d(2);
        var x = Tensor.RandN(new Shape(4, 2), seed: 5);
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (w * bn.RunningMean).Sum() + (w * bn.RunningVar).Sum();
        bn.Forward(x);
        Assert.Equal(1, bn.RunningMean.Version);
        Assert.Equal(1, bn.RunningVar.Version);
        Assert.Equal(1, bn.NumBatchesTracked.Version);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("[2] float64 (leaf) was changed in place", e.Message, StringComparison.Ordinal);
        Assert.Contains("by BatchNorm (running statistics) in UpdateRunning at Normalization.cs:", e.Message, StringComparison.Ordinal);

        bn.Eval();
        y = (w * bn.RunningMean).Sum();
        bn.Forward(x);
        Assert.Equal(1, bn.RunningMean.Version);
        y.Backward();
        Assert.Equal(bn.RunningMean.ToArray(), w.Grad!.ToArray());
    }

    [Fact]
    public void IndexerFillAndCopyFromBumpTheVersion()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var x = Tensor.From(3.0, 4.0);
        var y = (w * x).Sum();
        x[1] = 5;
        Assert.Equal(1, x.Version);
        Assert.Equal([3.0, 5.0], x.ToArray());
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("by the Tensor indexer at Tensor.Factories.cs:", e.Message, StringComparison.Ordinal);

        y = (w * x).Sum();
        var line = Here() + 1;
        x.FillInPlace(7);
        Assert.Equal([7.0, 7.0], x.ToArray());
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"(version 1 → 2, by FillInPlace in {nameof(IndexerFillAndCopyFromBumpTheVersion)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        y = (w * x).Sum();
        line = Here() + 1;
        x.CopyFrom(Tensor.From(8.0f, 9.0f));
        Assert.Equal([8.0, 9.0], x.ToArray());
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"(version 2 → 3, by CopyFrom in {nameof(IndexerFillAndCopyFromBumpTheVersion)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ARecordedFillOrCopyOfASavedTensorNamesTheWriteInBackward()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var s = x * 2.0;
        var y = (s.Exp() * s).Sum(); // Mul saves s
        var line = Here() + 1;
        s.FillInPlace(0.5);
        Assert.Equal("FillInPlace", s.OpName);
        Assert.Equal(1, s.Version);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"(version 0 → 1, by FillInPlace in {nameof(ARecordedFillOrCopyOfASavedTensorNamesTheWriteInBackward)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        s = x * 2.0;
        y = (s.Exp() * s).Sum();
        line = Here() + 1;
        s.CopyFrom(Tensor.From(4f, 5f, 6f));
        Assert.Equal("CopyFrom", s.OpName);
        e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"(version 0 → 1, by CopyFrom in {nameof(ARecordedFillOrCopyOfASavedTensorNamesTheWriteInBackward)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        // The write itself is on the tape: its gradient to the old values is zero, the source's is g.
        var src = Tensor.From(4.0, 5.0, 6.0).WithRequiresGrad();
        var t = (x * 2.0).CopyFrom(src);
        (t * t).Sum().Backward();
        Assert.Equal([8.0, 10.0, 12.0], src.Grad!.ToArray());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void AViewSharesTheCounterSoWritingADetachedViewTripsTheOriginal()
    {
        var w = Tensor.From(1.0, 2.0, 3.0, 4.0).WithRequiresGrad();
        var y = (w * w).Sum();
        var d = w.Detach();
        var line = Here() + 1;
        d.FillInPlace(0);
        Assert.Equal(1, w.Version);
        Assert.Equal(1, d.Version);
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains($"by FillInPlace in {nameof(AViewSharesTheCounterSoWritingADetachedViewTripsTheOriginal)} at {ThisFile}:{line})", e.Message, StringComparison.Ordinal);

        // A reshape is a view too, both ways, and a view of a view shares the same counter.
        var r = d.Reshape(2, 2).Reshape(4);
        using (Tensor.NoGrad())
        {
            w.Reshape(2, 2).FillInPlace(1);
        }

        Assert.Equal(2, r.Version);
        r[0] = 5;
        Assert.Equal(3, w.Version);
        Assert.Equal(5.0, w.ToArray()[0]);

        // A view made before the leaf's accumulator exists still shares the counter with it.
        var p = Tensor.From(1.0, 2.0);
        var early = p.Detach();
        p.RequiresGrad = true;
        var z = (p * p).Sum();
        early[1] = 0;
        Assert.Equal(1, p.Version);
        Assert.Throws<InvalidOperationException>(() => z.Backward());

        // A clone does not share it.
        var c = w.Clone();
        c.FillInPlace(2);
        Assert.Equal(3, w.Version);
        Assert.Equal(1, c.Version);
    }

    [Fact]
    public void ASavedResultChangedInPlaceNamesItsProducer()
    {
        var x = Tensor.From(new[,] { { 0.5f, 1f, 1.5f }, { 2f, 2.5f, 3f } }).WithRequiresGrad();
        var e1 = x.Exp();
        var y = e1.Sum();
        using (Tensor.NoGrad())
        {
            e1.FillInPlace(0);
            e1.FillInPlace(1);
        }

        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.StartsWith("Backward of Exp: its saved tensor 'y' [2, 3] float32 (produced by Exp) was changed in place after it was recorded (version 0 → 2, last by FillInPlace in " + nameof(ASavedResultChangedInPlaceNamesItsProducer) + " at " + ThisFile + ":", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ANodeWithMoreThanTwoSavedTensorsChecksEverySlot()
    {
        var x = Tensor.From(1.0).WithRequiresGrad();
        var parts = new[] { Tensor.From(1.0), Tensor.From(2.0), Tensor.From(3.0), Tensor.From(4.0), Tensor.From(5.0), Tensor.From(6.0) };
        parts[3][0] = 10; // before it is saved: recorded as version 1
        for (var k = 0; k < parts.Length; k++)
        {
            var y = Tensor.Zeros(1);
            y.SetGradFn(new RuleTests.ManySavingNode(x, parts, "Saving"));
            y.Backward(retainGraph: true);
            Assert.Equal(parts.Sum(p => p.Item()), x.Grad!.Item(), 1e-12);
            x.Grad = null;

            parts[k][0] = parts[k][0] + 7;
            var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
            Assert.Contains($"Backward of Saving: its saved tensor 'saved{k}' [1] float64 (leaf)", e.Message, StringComparison.Ordinal);
            Assert.Contains(k == 3 ? "(version 1 → 2, by the Tensor indexer" : "(version 0 → 1, by the Tensor indexer", e.Message, StringComparison.Ordinal);
            parts[k] = parts[k].Clone();
        }
    }

    // ---------------------------------------------------------------- writes that must not trip

    [Fact]
    public void AWriteToATensorNoNodeSavedDoesNotTrip()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var b = Tensor.From(3.0, 4.0);
        var y = ((w + b) * 2.0).Sum(); // Add and Mul by a number save no tensor
        b.FillInPlace(0);
        w.Grad = Tensor.Ones(2);
        new Sgd([w], 0.5).Step();
        w.Grad = null;
        y.Backward();
        Assert.Equal([2.0, 2.0], w.Grad!.ToArray());
    }

    [Fact]
    public void ANewGraphAfterTheWriteIsFine()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var opt = new Sgd([w], 0.1);
        for (var step = 0; step < 3; step++)
        {
            opt.ZeroGrad();
            var y = (w * w).Sum();
            y.Backward();
            Close([.. w.ToArray().Select(v => 2 * v)], w.Grad!.ToArray());
            opt.Step();
            Assert.Equal(step + 1, w.Version);
        }
    }

    [Fact]
    public void TheAccumulatorWritingGradDoesNotTripAndBumpsOnlyTheGradient()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (w * w).Sum();
        y.Backward(retainGraph: true);
        var grad = w.Grad!;
        Assert.Equal(0, grad.Version);
        y.Backward(retainGraph: true);
        y.Backward();
        Assert.Same(grad, w.Grad);
        Assert.Equal([6.0, 12.0], grad.ToArray());
        Assert.Equal(2, grad.Version);
        Assert.Equal(0, w.Version);

        // A graph that saved the gradient sees the accumulation as a write.
        var x = Tensor.From(1.0, 1.0).WithRequiresGrad();
        var z = (x * grad).Sum();
        (w * w).Sum().Backward();
        var e = Assert.Throws<InvalidOperationException>(() => z.Backward());
        Assert.Contains("(version 2 → 3, by AccumulateGrad", e.Message, StringComparison.Ordinal);
        Assert.Contains("at Backward.cs:", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ATensorWrittenBeforeItWasSavedIsFine()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var x = Tensor.From(1.0, 1.0);
        x.FillInPlace(3);
        x[0] = 4;
        var y = (w * x).Sum();
        y.Backward();
        Assert.Equal([4.0, 3.0], w.Grad!.ToArray());
    }

    [Fact]
    public void CreateGraphStillGivesSecondDerivativesAndItsGraphIsChecked()
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var y = (w * w * w).Sum();
        var g = Autodiff.Grad(y, w, createGraph: true);
        Assert.Equal([3.0, 12.0], g.ToArray());
        g.Sum().Backward(retainGraph: true);
        Assert.Equal([6.0, 12.0], w.Grad!.ToArray());

        // The recorded gradient graph saved w; a step after it makes its backward fail too.
        new Sgd([w], 0.1).Step();
        w.Grad = null;
        var e = Assert.Throws<InvalidOperationException>(() => g.Sum().Backward());
        Assert.Contains("[2] float64 (leaf) was changed in place", e.Message, StringComparison.Ordinal);
        Assert.Contains("by Sgd.Step", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GradCheckLeavesTheVersionAlone()
    {
        var x = Tensor.From(0.5, 1.5).WithRequiresGrad();
        var result = GradCheck.Check(xs => [xs[0].Exp() * xs[0]], [x]);
        Assert.True(result.Passed, result.Message);
        Assert.Equal(0, x.Version);
    }

    // ---------------------------------------------------------------- the public writes' own checks

    public static TheoryData<string, string> BadWrites() => new()
    {
        { "fill-leaf", "FillInPlace: a leaf tensor that requires grad ([2] float64) cannot be changed in place while gradients are recorded; do it under Tensor.NoGrad() or on a clone." },
        { "copy-leaf", "CopyFrom: a leaf tensor that requires grad ([2] float64) cannot be changed in place while gradients are recorded; do it under Tensor.NoGrad() or on a clone." },
        { "index-leaf", "Indexer: this [2] float64 tensor is a leaf that requires grad, so an in-place write would bypass the tape; write it inside Tensor.NoGrad(), as an optimiser does." },
        { "fill-view", "FillInPlace: this [1, 2] float64 tensor shares its storage with another tensor on the tape (shapes [2] and [1, 2]: a view made by Reshape/View of a tensor that requires grad); an in-place write through a view is not recorded for the other tensor. Clone it first, or write under Tensor.NoGrad()." },
        { "copy-view", "CopyFrom: this [1, 2] float64 tensor shares its storage with another tensor on the tape (shapes [2] and [1, 2]: a view made by Reshape/View of a tensor that requires grad); an in-place write through a view is not recorded for the other tensor. Clone it first, or write under Tensor.NoGrad()." },
        { "copy-shape", "CopyFrom: the source of shape [3] float64 cannot be broadcast to the shape [2] float64 of the tensor written (an in-place result keeps that shape). (Parameter 'source')" },
        { "copy-int", "CopyFrom: the source [2] float64 requires grad but the tensor written is int64 [2], which cannot carry a gradient; copy into a float tensor, or detach the source. (Parameter 'source')" },
        { "copy-int-nan", "CopyFrom: element 1 (flat index) of the float64 source of shape [2] is Infinity, which has no int64 value for the int64 tensor written [2] (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused). (Parameter 'source')" },
        { "fill-int", "FillInPlace: the value NaN has no int64 value for the int64 tensor of shape [2] (NaN, ±∞ and values outside [−2⁶³, 2⁶³) are refused). (Parameter 'value')" },
        { "index-range", "Indexer: index 2 is out of range for dimension 0 of size 2 (shape [2]). (Parameter 'index')" },
        { "index-rank", "Indexer: 2 indices for a tensor of rank 1 and shape [2]. (Parameter 'index')" },
    };

    [Theory]
    [MemberData(nameof(BadWrites))]
    public void ABadWriteThrowsBeforeWriting(string what, string message)
    {
        var w = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var x = Tensor.From(1.0, 2.0);
        var target = what switch
        {
            "fill-view" or "copy-view" => w.Exp().Reshape(1, 2),
            "copy-int" or "copy-int-nan" or "fill-int" => Tensor.FromArray(new long[] { 1, 2 }, 2),
            _ when what.EndsWith("-leaf", StringComparison.Ordinal) => w,
            _ => x,
        };
        var before = target.ToArray();
        Action act = what switch
        {
            "fill-leaf" or "fill-view" => () => target.FillInPlace(0),
            "fill-int" => () => target.FillInPlace(double.NaN),
            "copy-leaf" or "copy-view" => () => target.CopyFrom(x),
            "copy-int" => () => target.CopyFrom(w),
            "copy-int-nan" => () => target.CopyFrom(Tensor.From(1.0, double.PositiveInfinity)),
            "copy-shape" => () => target.CopyFrom(Tensor.From(1.0, 2.0, 3.0)),
            "index-rank" => () => target[0, 0] = 1,
            "index-range" => () => target[2] = 1,
            _ => () => target[0] = 1,
        };
        var e = Assert.ThrowsAny<Exception>(act);
        Assert.True(e is ArgumentException or InvalidOperationException, e.GetType().Name);
        Assert.Equal(message, e.Message);
        Assert.Equal(0, target.Version);
        Assert.Equal(before, target.ToArray());
    }

    [Fact]
    public void AFreshTensorHasVersionZeroAndAnOperatorResultIsNotAWrite()
    {
        var a = Tensor.RandN(new Shape(3, 4), seed: 1);
        var b = (a * 2.0).Reshape(12).Exp();
        Assert.Equal(0, a.Version);
        Assert.Equal(0, b.Version);
        Assert.Equal(0, Tensor.Zeros(3).Version);
    }

    private static int Here([CallerLineNumber] int line = 0) => line;

    private static void Close(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 1e-12);
        }
    }
}
