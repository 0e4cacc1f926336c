using System.Globalization;
using System.Reflection;
using System.Text.Json;

using Autograd.Nn;
using Autograd.Nn.Optim;

namespace Autograd.Tests;

/// <summary>
/// The optimisers, gradient clipping and learning-rate schedules of Autograd.Nn.Optim: PyTorch parity on every case of
/// tests/golden/optim/steps.json (written by tests/golden/generate.py with PyTorch 1.13), then validation, skipping,
/// no recording, ZeroGrad and convergence on small problems.
/// </summary>
public class OptimTests
{
    private const double Rtol64 = 1e-12, Atol64 = 1e-14, Rtol32 = 1e-5, Atol32 = 1e-6;

    private static readonly Lazy<JsonElement> Golden = new(() =>
    {
        var path = Path.Combine(AppContext.BaseDirectory, "golden", "optim", "steps.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.Clone();
    });

    public static TheoryData<string> OptimizerCases() => Names("optimizers");

    public static TheoryData<string> ClipCases() => Names("clipGradNorm");

    public static TheoryData<string> SchedulerCases() => Names("schedulers");

    // ---------------------------------------------------------------- PyTorch parity

    [Fact]
    public void TheGoldenFileCoversEveryOptimizerInBothDTypes()
    {
        var names = Golden.Value.GetProperty("optimizers").EnumerateArray().Select(c => c.GetProperty("name").GetString()!).ToList();
        foreach (var config in new[] { "Sgd/plain", "Sgd/momentum", "Sgd/nesterov", "Sgd/momentum_wd_dampening", "Adam/default", "Adam/weight_decay", "Adam/amsgrad", "AdamW/weight_decay" })
        {
            Assert.Contains(config + "/float64", names);
            Assert.Contains(config + "/float32", names);
        }

        var norms = Golden.Value.GetProperty("clipGradNorm").EnumerateArray().Select(c => Number(c.GetProperty("normType"))).ToHashSet();
        Assert.Contains(2.0, norms);
        Assert.Contains(double.PositiveInfinity, norms);
        var schedulers = Golden.Value.GetProperty("schedulers").EnumerateArray().Select(c => c.GetProperty("scheduler").GetString()).ToHashSet();
        Assert.Equal(["CosineAnnealingLR", "StepLR"], schedulers.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(OptimizerCases))]
    public void OptimizerMatchesPyTorch(string name)
    {
        var c = Find("optimizers", name);
        var ps = c.GetProperty("params").EnumerateArray().Select(t => ReadTensor(t).WithRequiresGrad()).ToArray();
        var optimizer = Create(c.GetProperty("optimizer").GetString()!, c.GetProperty("args"), ps);
        var grads = c.GetProperty("grads").EnumerateArray().ToArray();
        var steps = c.GetProperty("steps").EnumerateArray().ToArray();
        Assert.Equal(3, steps.Length);
        for (var k = 0; k < steps.Length; k++)
        {
            var g = grads[k].EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : ReadTensor(e)).ToArray();
            for (var j = 0; j < ps.Length; j++)
            {
                ps[j].Grad = g[j]?.Clone();
            }

            optimizer.Step();
            var expected = steps[k].EnumerateArray().ToArray();
            for (var j = 0; j < ps.Length; j++)
            {
                Compare(name, $"parameter {j} after step {k + 1}", expected[j], ps[j]);
                if (g[j] is not null)
                {
                    Assert.Equal(g[j]!.ToArray(), ps[j].Grad!.ToArray()); // the optimiser never writes to the gradient
                }
            }
        }

        Assert.Equal(3, optimizer.StepCount);
    }

    [Theory]
    [MemberData(nameof(ClipCases))]
    public void ClipGradNormMatchesPyTorch(string name)
    {
        var c = Find("clipGradNorm", name);
        var grads = c.GetProperty("grads").EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Null ? null : ReadTensor(e)).ToArray();
        var ps = grads.Select(g => g is null ? Tensor.Zeros(2).WithRequiresGrad() : Tensor.ZerosLike(g).WithRequiresGrad()).ToArray();
        for (var j = 0; j < ps.Length; j++)
        {
            ps[j].Grad = grads[j]?.Clone();
        }

        var total = GradClip.ClipGradNorm(ps, c.GetProperty("maxNorm").GetDouble(), Number(c.GetProperty("normType")));
        var dtype = grads.First(g => g is not null)!.DType;
        var expectedTotal = Number(c.GetProperty("totalNorm"));
        var rtol = ForDType.Pick(dtype, float64: Rtol64, float32: Rtol32);
        Assert.True(Math.Abs(total - expectedTotal) <= rtol * expectedTotal, $"{name}: total norm {total:R}, PyTorch {expectedTotal:R}");
        var clipped = c.GetProperty("clipped").EnumerateArray().ToArray();
        for (var j = 0; j < ps.Length; j++)
        {
            if (clipped[j].ValueKind == JsonValueKind.Null)
            {
                Assert.Null(ps[j].Grad);
            }
            else
            {
                Compare(name, $"gradient {j} after clipping", clipped[j], ps[j].Grad!);
            }
        }
    }

    [Theory]
    [MemberData(nameof(SchedulerCases))]
    public void SchedulerMatchesPyTorch(string name)
    {
        var c = Find("schedulers", name);
        var args = c.GetProperty("args");
        var optimizer = new Sgd([Tensor.Zeros(1).WithRequiresGrad()], c.GetProperty("baseLr").GetDouble());
        LearningRateScheduler scheduler = c.GetProperty("scheduler").GetString() switch
        {
            "StepLR" => new StepLR(optimizer, args.GetProperty("stepSize").GetInt32(), args.GetProperty("gamma").GetDouble()),
            "CosineAnnealingLR" => new CosineAnnealingLR(optimizer, args.GetProperty("tMax").GetInt32(), args.GetProperty("etaMin").GetDouble()),
            var s => throw new InvalidDataException($"unknown scheduler {s}"),
        };
        var lrs = c.GetProperty("lrs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var closed = c.GetProperty("closedForm").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (var epoch = 0; epoch < lrs.Length; epoch++)
        {
            if (epoch > 0)
            {
                scheduler.Step();
            }

            Assert.Equal(epoch, scheduler.LastEpoch);
            var lr = optimizer.LearningRate;
            var floor = 1e-15 * scheduler.BaseLearningRate;
            // PyTorch's step() uses a recursive form that equals its closed form up to rounding.
            Assert.True(Math.Abs(lr - lrs[epoch]) <= (Rtol64 * Math.Abs(lrs[epoch])) + floor, $"{name}: epoch {epoch}: lr {lr:R}, PyTorch's step() gives {lrs[epoch]:R}");
            Assert.True(Math.Abs(lr - closed[epoch]) <= (1e-15 * Math.Abs(closed[epoch])) + floor, $"{name}: epoch {epoch}: lr {lr:R}, PyTorch's closed form gives {closed[epoch]:R}");
            Assert.Equal(lr, scheduler.LearningRateAt(epoch));
        }
    }

    // ---------------------------------------------------------------- validation

    public static TheoryData<string, string, double> InvalidHyperParameters() => new()
    {
        { "Sgd", "learningRate", -0.1 },
        { "Sgd", "learningRate", double.NaN },
        { "Sgd", "learningRate", double.PositiveInfinity },
        { "Sgd", "momentum", -0.5 },
        { "Sgd", "dampening", 1.5 },
        { "Sgd", "weightDecay", -1e-4 },
        { "Adam", "learningRate", -1 },
        { "Adam", "beta1", 1.0 },
        { "Adam", "beta1", -0.1 },
        { "Adam", "beta2", 1.5 },
        { "Adam", "beta2", double.NaN },
        { "Adam", "epsilon", -1e-8 },
        { "Adam", "weightDecay", -0.01 },
        { "AdamW", "learningRate", -1e-3 },
        { "AdamW", "beta1", 1.0 },
        { "AdamW", "beta2", -0.5 },
        { "AdamW", "epsilon", -1 },
        { "AdamW", "weightDecay", -0.01 },
    };

    [Theory]
    [MemberData(nameof(InvalidHyperParameters))]
    public void InvalidHyperParametersThrowNamingTheParameterAndValue(string optimizer, string parameter, double value)
    {
        var p = Tensor.Zeros(3).WithRequiresGrad();
        var args = JsonDocument.Parse(optimizer == "Sgd" ? "{\"learningRate\": 0.1}" : "{}").RootElement;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Create(optimizer, args, [p], (parameter, value)));
        Assert.Equal(parameter, ex.ParamName);
        Assert.Equal(value, (double)ex.ActualValue!);
        Assert.Contains($"{optimizer}: {parameter} must be", ex.Message, StringComparison.Ordinal);
        Assert.Contains(value.ToString(CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheLearningRateSetterValidatesToo()
    {
        var sgd = new Sgd([Tensor.Zeros(3).WithRequiresGrad()], 0.1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => sgd.LearningRate = -2);
        Assert.Equal("LearningRate", ex.ParamName);
        Assert.Contains("-2", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0.1, sgd.LearningRate);
        sgd.LearningRate = 0;
        Assert.Equal(0, sgd.LearningRate);
    }

    [Fact]
    public void NesterovRequiresMomentumAndNoDampening()
    {
        var p = Tensor.Zeros(3).WithRequiresGrad();
        var ex = Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1, nesterov: true));
        Assert.Equal("nesterov", ex.ParamName);
        Assert.Contains("momentum > 0 and dampening = 0", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1, momentum: 0.9, dampening: 0.1, nesterov: true));
        Assert.Contains("dampening = 0.1", ex.Message, StringComparison.Ordinal);
        Assert.True(new Sgd([p], 0.1, momentum: 0.9, nesterov: true).Nesterov);
    }

    [Fact]
    public void TheParameterListIsValidated()
    {
        var ok = Tensor.Zeros(2).WithRequiresGrad();
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => new Adam([])).Message, StringComparison.Ordinal);
        Assert.Contains("not a leaf", Assert.Throws<ArgumentException>(() => new Adam([ok, ok * 2.0])).Message, StringComparison.Ordinal);
        Assert.Contains("does not require grad", Assert.Throws<ArgumentException>(() => new Sgd([Tensor.Zeros(2)], 0.1)).Message, StringComparison.Ordinal);
        Assert.Contains("more than once", Assert.Throws<ArgumentException>(() => new AdamW([ok, ok])).Message, StringComparison.Ordinal);
        Assert.Contains("parameter 1 is null", Assert.Throws<ArgumentException>(() => new AdamW([ok, null!])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => new Sgd(null!, 0.1));
    }

    [Fact]
    public void SchedulerAndClipArgumentsAreValidated()
    {
        var sgd = new Sgd([Tensor.Zeros(2).WithRequiresGrad()], 0.1);
        Assert.Equal("stepSize", Assert.Throws<ArgumentOutOfRangeException>(() => new StepLR(sgd, 0, 0.5)).ParamName);
        Assert.Equal("gamma", Assert.Throws<ArgumentOutOfRangeException>(() => new StepLR(sgd, 2, -0.5)).ParamName);
        Assert.Equal("tMax", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineAnnealingLR(sgd, 0)).ParamName);
        Assert.Equal("etaMin", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineAnnealingLR(sgd, 10, -1e-3)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => new StepLR(sgd, 2).LearningRateAt(-1));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm(sgd.Parameters, -1));
        Assert.Equal("maxNorm", ex.ParamName);
        Assert.Contains("-1", ex.Message, StringComparison.Ordinal);
        Assert.Equal("normType", Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm(sgd.Parameters, 1, 0)).ParamName);
        Assert.Equal("normType", Assert.Throws<ArgumentOutOfRangeException>(() => GradClip.ClipGradNorm(sgd.Parameters, 1, double.NaN)).ParamName);
    }

    // ---------------------------------------------------------------- behaviour

    public static TheoryData<string> OptimizerKinds() => ["Sgd", "SgdNesterov", "Adam", "AdamAmsgrad", "AdamW"];

    private static Optimizer Make(string kind, IEnumerable<Tensor> ps, double lr) => kind switch
    {
        "Sgd" => new Sgd(ps, lr, weightDecay: 0.01),
        "SgdNesterov" => new Sgd(ps, lr, momentum: 0.9, nesterov: true, weightDecay: 0.01),
        "Adam" => new Adam(ps, lr, weightDecay: 0.01),
        "AdamAmsgrad" => new Adam(ps, lr, amsgrad: true),
        "AdamW" => new AdamW(ps, lr, weightDecay: 0.01),
        _ => throw new ArgumentException(kind, nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(OptimizerKinds))]
    public void ParametersWithoutAGradientAreSkipped(string kind)
    {
        var a = Tensor.From(1.0, -2.0, 3.0).WithRequiresGrad();
        var b = Tensor.From(0.5f, 1.5f).WithRequiresGrad();
        var optimizer = Make(kind, [a, b], 0.1);
        a.Grad = Tensor.From(0.3, -0.2, 0.1);
        optimizer.Step();
        optimizer.Step();
        Assert.NotEqual(new[] { 1.0, -2.0, 3.0 }, a.ToArray());
        Assert.Equal(new[] { 0.5f, 1.5f }, b.ToArray<float>()); // untouched, not even by weight decay

        // b's state starts on its first gradient: an Adam step there is a first step (|Δ| ≈ lr), whatever a's count.
        b.Grad = Tensor.From(2f, -0.1f);
        a.Grad = null;
        var before = a.ToArray();
        optimizer.Step();
        Assert.Equal(before, a.ToArray());
        if (kind.StartsWith("Adam", StringComparison.Ordinal))
        {
            var delta = b.ToArray().Zip(new[] { 0.5, 1.5 }, (x, y) => x - y).ToArray();
            var decay = kind == "AdamW" ? new[] { 0.5 * 0.1 * 0.01, 1.5 * 0.1 * 0.01 } : [0, 0];
            Assert.Equal(-0.1 - decay[0], delta[0], 5);
            Assert.Equal(0.1 - decay[1], delta[1], 5);
        }
    }

    [Theory]
    [MemberData(nameof(OptimizerKinds))]
    public void AStepAfterTheFirstAllocatesNoBuffers(string kind)
    {
        // The update runs through the in-place operators, with the state and a scratch buffer made on the first step; the
        // following steps allocate no tensor (only AMSGrad's running maximum, an out-of-place Maximum, does).
        var w = Tensor.RandN(new Shape(64, 64), 1, DType.Float32).WithRequiresGrad();
        var b = Tensor.RandN(new Shape(64), 2).WithRequiresGrad();
        var optimizer = Make(kind, [w, b], 0.01);
        w.Grad = Tensor.RandN(w.Shape, 3, DType.Float32);
        b.Grad = Tensor.RandN(b.Shape, 4);
        optimizer.Step();
        optimizer.Step();
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10; i++)
        {
            optimizer.Step();
        }

        var perStep = (GC.GetAllocatedBytesForCurrentThread() - before) / 10;
        var buffer = (64 * 64 * sizeof(float)) + (64 * sizeof(double));
        Assert.True(kind == "AdamAmsgrad" ? perStep < 2 * buffer : perStep < 1024, $"{kind}: {perStep} bytes per step");
    }

    [Theory]
    [MemberData(nameof(OptimizerKinds))]
    public void StepsDoNotRecordOnTheTape(string kind)
    {
        var w = Tensor.From(1.0, 2.0, -1.0).WithRequiresGrad();
        var optimizer = Make(kind, [w], 0.05);
        for (var i = 0; i < 3; i++)
        {
            optimizer.ZeroGrad();
            var loss = (w * w).Sum();
            loss.Backward();
            var grad = w.Grad!.ToArray();
            optimizer.Step();
            Assert.True(w.IsLeaf);
            Assert.Null(w.GradFn);
            Assert.True(w.RequiresGrad);
            Assert.True(GradMode.IsEnabled);
            Assert.Equal(grad, w.Grad!.ToArray()); // weight decay is added to a copy, never to the gradient
        }

        // The parameter still works on the tape: a new backward accumulates into it as before.
        optimizer.ZeroGrad();
        (w * 3.0).Sum().Backward();
        Assert.Equal(new double[] { 3, 3, 3 }, w.Grad!.ToArray());
        Assert.Equal(3, optimizer.StepCount);
    }

    [Fact]
    public void StepInsideNoGradLeavesGradModeAsItWas()
    {
        var w = Tensor.From(1.0).WithRequiresGrad();
        w.Grad = Tensor.From(1.0);
        var optimizer = new Sgd([w], 0.5);
        using (GradMode.NoGrad())
        {
            optimizer.Step();
            Assert.False(GradMode.IsEnabled);
        }

        Assert.True(GradMode.IsEnabled);
        Assert.Equal(0.5, w.Item());
    }

    [Fact]
    public void ZeroGradClearsOrZeroesEveryGradient()
    {
        var a = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var b = Tensor.From(new float[,] { { 1, 2 }, { 3, 4 } }).WithRequiresGrad();
        var c = Tensor.From(5.0).WithRequiresGrad();
        var optimizer = new Adam([a, b, c]);
        ((a * a).Sum() + (b * b).Sum().To(DType.Float64)).Backward();
        Assert.NotNull(a.Grad);
        Assert.NotNull(b.Grad);

        optimizer.ZeroGrad(setToNull: false);
        Assert.Equal(new double[] { 0, 0 }, a.Grad!.ToArray());
        Assert.Equal(b.Shape, b.Grad!.Shape);
        Assert.Equal(DType.Float32, b.Grad.DType);
        Assert.All(b.Grad.ToArray(), v => Assert.Equal(0, v));
        Assert.Null(c.Grad);

        optimizer.ZeroGrad();
        Assert.Null(a.Grad);
        Assert.Null(b.Grad);
    }

    [Fact]
    public void StepCountAndTheLearningRateInUse()
    {
        var w = Tensor.From(1.0, 1.0).WithRequiresGrad();
        var optimizer = new Sgd([w], 0.1);
        optimizer.Step(); // no gradient: counted, nothing moves
        Assert.Equal(1, optimizer.StepCount);
        Assert.Equal(new double[] { 1, 1 }, w.ToArray());

        w.Grad = Tensor.From(1.0, -2.0);
        optimizer.LearningRate = 0.5;
        optimizer.Step();
        Assert.Equal(new[] { 0.5, 2.0 }, w.ToArray());
        optimizer.LearningRate = 0;
        optimizer.Step();
        Assert.Equal(new[] { 0.5, 2.0 }, w.ToArray());
        Assert.Equal(3, optimizer.StepCount);
        Assert.Same(w, Assert.Single(optimizer.Parameters));
    }

    [Fact]
    public void ClipGradNormBelowTheLimitAndWithoutGradients()
    {
        var a = Tensor.From(3.0).WithRequiresGrad();
        var b = Tensor.From(0f, 0f).WithRequiresGrad();
        Assert.Equal(0, GradClip.ClipGradNorm([a, b], 1.0));

        a.Grad = Tensor.From(3.0);
        b.Grad = Tensor.From(4f, 0f);
        Assert.Equal(5, GradClip.ClipGradNorm([a, b], 10.0), 6);
        Assert.Equal(3.0, a.Grad.Item()); // below the limit: unchanged
        Assert.Equal(5, GradClip.ClipGradNorm([a, b], 1.0), 6);
        Assert.Equal(3.0 / 5, a.Grad.Item(), 6);
        Assert.Equal(4.0 / 5, b.Grad[0], 6);
        Assert.Equal(0.8, GradClip.ClipGradNorm([a, b], 0.5, double.PositiveInfinity), 6);
        Assert.Equal(0.6 * 0.5 / 0.8, a.Grad.Item(), 6);
    }

    [Fact]
    public void SchedulesFollowTheirClosedForms()
    {
        var sgd = new Sgd([Tensor.Zeros(1).WithRequiresGrad()], 1.0);
        var step = new StepLR(sgd, 3, 0.5);
        Assert.Equal([1, 1, 1, 0.5, 0.5, 0.5, 0.25], Enumerable.Range(0, 7).Select(step.LearningRateAt));
        var cosine = new CosineAnnealingLR(new Sgd([Tensor.Zeros(1).WithRequiresGrad()], 0.2), 8, 0.02);
        Assert.Equal(0.2, cosine.LearningRateAt(0), 15);
        Assert.Equal(0.11, cosine.LearningRateAt(4), 15);
        Assert.Equal(0.02, cosine.LearningRateAt(8), 15);
        Assert.Equal(0.2, cosine.LearningRateAt(16), 15);

        // The closed form is a function of the epoch: a rate set by hand lasts until the next Step.
        step.Step();
        sgd.LearningRate = 7;
        step.Step();
        Assert.Equal(1, sgd.LearningRate);
        step.Step();
        Assert.Equal(0.5, sgd.LearningRate);
        Assert.Same(sgd, step.Optimizer);
    }

    // ---------------------------------------------------------------- convergence

    public static TheoryData<string, string> ConvergenceCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var kind in new[] { "Sgd", "SgdMomentum", "SgdNesterov", "Adam", "AdamAmsgrad", "AdamW" })
        {
            data.Add(kind, "float64");
            data.Add(kind, "float32");
        }

        return data;
    }

    /// <summary>Minimises Σ cᵢ (wᵢ − tᵢ)² from w = 0, with a cosine schedule and gradient clipping in the loop.</summary>
    [Theory]
    [MemberData(nameof(ConvergenceCases))]
    public void MinimisesAQuadratic(string kind, string dtypeName)
    {
        var dtype = dtypeName == "float32" ? DType.Float32 : DType.Float64;
        var target = Tensor.From(1.0, -2.0, 3.0, 0.5, -0.25).To(dtype);
        var curvature = Tensor.From(0.5, 1.0, 2.0, 3.0, 1.5).To(dtype);
        var w = Tensor.Zeros(new Shape(5), dtype).WithRequiresGrad();
        const int Steps = 300;
        Optimizer optimizer = kind switch
        {
            "Sgd" => new Sgd([w], 0.1),
            "SgdMomentum" => new Sgd([w], 0.05, momentum: 0.9, dampening: 0.1),
            "SgdNesterov" => new Sgd([w], 0.05, momentum: 0.9, nesterov: true),
            "Adam" => new Adam([w], 0.1),
            "AdamAmsgrad" => new Adam([w], 0.1, amsgrad: true),
            "AdamW" => new AdamW([w], 0.1, weightDecay: 1e-4),
            _ => throw new ArgumentException(kind, nameof(kind)),
        };
        var schedule = new CosineAnnealingLR(optimizer, Steps);
        var first = 0.0;
        for (var i = 0; i < Steps; i++)
        {
            optimizer.ZeroGrad();
            var d = w - target;
            var loss = (curvature * d * d).Sum();
            first = i == 0 ? loss.Item() : first;
            loss.Backward();
            GradClip.ClipGradNorm([w], 10.0);
            optimizer.Step();
            schedule.Step();
        }

        var error = w.ToArray().Zip(target.ToArray(), (x, t) => Math.Abs(x - t)).Max();
        Assert.True(error < 1e-3, $"{kind} {dtypeName}: max |w − target| = {error:G3} after {Steps} steps (initial loss {first:G3})");
    }

    [Fact]
    public void TrainsALinearModelThroughItsParameters()
    {
        var x = Tensor.RandN(new Shape(64, 3), 1);
        var y = x.MatMul(Tensor.From(new double[,] { { 2.0 }, { -1.0 }, { 0.5 } })) + 0.3;
        var model = new Linear(3, 1, seed: 7);
        var optimizer = new Sgd(model.Parameters(), 0.1, momentum: 0.9, nesterov: true);
        var schedule = new StepLR(optimizer, 100, 0.3);
        double loss = 0;
        for (var i = 0; i < 400; i++)
        {
            optimizer.ZeroGrad();
            var l = Functional.MseLoss(model.Forward(x), y);
            l.Backward();
            GradClip.ClipGradNorm(model.Parameters(), 5.0);
            optimizer.Step();
            schedule.Step();
            loss = l.Item();
        }

        Assert.True(loss < 1e-16, $"final loss {loss:G3}");
        Assert.Equal(2.0, model.Weight[0, 0], 10);
        Assert.Equal(-1.0, model.Weight[0, 1], 10);
        Assert.Equal(0.3, model.Bias![0], 10);
        Assert.Equal(0.1 * 0.3 * 0.3 * 0.3 * 0.3, optimizer.LearningRate, 15);
    }

    // ---------------------------------------------------------------- helpers

    private static TheoryData<string> Names(string family)
    {
        var data = new TheoryData<string>();
        foreach (var c in Golden.Value.GetProperty(family).EnumerateArray())
        {
            data.Add(c.GetProperty("name").GetString()!);
        }

        return data;
    }

    private static JsonElement Find(string family, string name) =>
        Golden.Value.GetProperty(family).EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    /// <summary>
    /// Calls the optimiser's constructor with the case's args by parameter name, leaving every other parameter at its
    /// C# default (so the golden cases that omit an argument check Autograd's defaults against PyTorch's).
    /// </summary>
    private static Optimizer Create(string kind, JsonElement args, Tensor[] ps, (string Name, double Value)? overrideArg = null)
    {
        var type = typeof(Optimizer).Assembly.GetType("Autograd.Nn.Optim." + kind) ?? throw new InvalidDataException($"unknown optimizer {kind}");
        var ctor = type.GetConstructors().Single();
        var parameters = ctor.GetParameters();
        foreach (var arg in args.EnumerateObject())
        {
            Assert.True(parameters.Any(p => p.Name == arg.Name), $"{kind} has no constructor parameter '{arg.Name}'");
        }

        var values = parameters.Select(p =>
        {
            if (p.Name == "parameters")
            {
                return ps;
            }

            if (overrideArg is { } o && o.Name == p.Name)
            {
                return o.Value;
            }

            if (args.TryGetProperty(p.Name!, out var v))
            {
                return p.ParameterType == typeof(bool) ? v.GetBoolean() : (object)v.GetDouble();
            }

            return p.HasDefaultValue ? p.DefaultValue : throw new InvalidDataException($"{kind}: no value for '{p.Name}'");
        }).ToArray();
        try
        {
            return (Optimizer)ctor.Invoke(values);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    private static double Number(JsonElement e) => e.ValueKind == JsonValueKind.String
        ? e.GetString() switch
        {
            "nan" => double.NaN,
            "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            var s => throw new InvalidDataException($"golden: unknown number '{s}'"),
        }
        : e.GetDouble();

    private static Tensor ReadTensor(JsonElement t)
    {
        var shape = t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        var values = t.GetProperty("data").EnumerateArray().Select(Number).ToArray();
        return t.GetProperty("dtype").GetString() switch
        {
            "float64" => Tensor.FromArray(values, shape),
            "float32" => Tensor.FromArray(values.Select(v => (float)v).ToArray(), shape),
            var d => throw new InvalidDataException($"golden: unknown dtype '{d}'"),
        };
    }

    private static void Compare(string name, string what, JsonElement expected, Tensor actual)
    {
        var e = ReadTensor(expected);
        Assert.True(e.Shape == actual.Shape, $"{name}: {what} has shape {actual.Shape}, PyTorch gives {e.Shape}");
        Assert.True(e.DType == actual.DType, $"{name}: {what} has dtype {actual.DType.Name()}, PyTorch gives {e.DType.Name()}");
        var ev = e.ToArray();
        var av = actual.ToArray();
        var scale = Math.Max(1.0, ev.Select(Math.Abs).Max());
        var (rtol, atol) = ForDType.Pick(e.DType, float64: (Rtol64, Atol64 * scale), float32: (Rtol32, Atol32 * scale));
        for (var i = 0; i < ev.Length; i++)
        {
            var err = Math.Abs(ev[i] - av[i]);
            Assert.True(
                err <= atol + (rtol * Math.Abs(ev[i])),
                string.Create(CultureInfo.InvariantCulture, $"{name}: {what} differs from PyTorch at element {i}: Autograd {av[i]:R}, PyTorch {ev[i]:R} (|Δ| = {err:G3})"));
        }
    }
}
