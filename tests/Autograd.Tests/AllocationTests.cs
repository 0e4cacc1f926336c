namespace Autograd.Tests;

/// <summary>
/// What the tape allocates, counted with <see cref="GC.GetAllocatedBytesForCurrentThread"/> (deterministic: no timing).
/// A recorded operation on a one-element tensor costs its result (a <see cref="Tensor"/> and a one-element array) and its
/// node, with no closure, no edge array and no tensor for a number operand; the backward walk reuses its working arrays;
/// and a gradient a rule made is taken by the leaf as it is, while any other gradient is copied.
/// </summary>
/// <remarks>
/// The bounds are the sizes measured on x64 (.NET 10) with about 15% to spare: a result is 120 bytes (88 for the tensor, of
/// which 16 hold a tangent and its dual level, and 32 for a one-element float64 array) and a node about 110. They fail if, for example, a node gets an edge array again, a
/// number operand becomes a tensor again, or the walk allocates per node.
/// </remarks>
public class AllocationTests
{
    private const int Chain = 1000;

    /// <summary>Bytes allocated on this thread by <paramref name="action"/>, after two warm-up runs (JIT, first-use state).</summary>
    private static long Allocated(Action action)
    {
        action();
        action();
        var before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void ProgramsGetTheGcSettingsForLargeTensors()
    {
        // The test host is a program built here, so it imports src/Autograd/buildTransitive/Autograd.targets (the file the
        // package carries into its users' applications): a 4 MB tensor is then an ordinary young object.
        Assert.Equal(67108864L, Convert.ToInt64(AppContext.GetData("System.GC.RegionSize"), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(33554432L, Convert.ToInt64(AppContext.GetData("System.GC.LOHThreshold"), System.Globalization.CultureInfo.InvariantCulture));

        // The region range that keeps 64 MB regions usable under a memory limit, and the GC without background collections
        // (whose young generation is capped at 6 MB), as the GC itself reports them in effect.
        var gc = GC.GetConfigurationVariables();
        Assert.Equal(274877906944L, Convert.ToInt64(gc["GCRegionRange"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.False((bool)gc["ConcurrentGC"]);
        Assert.Equal(System.Runtime.GCLatencyMode.Batch, System.Runtime.GCSettings.LatencyMode);

        // A large object is always in the oldest generation; a young one may get there too if other tests' collections
        // promote it twice before it is looked at, so one young sighting in a few tries is the proof.
        var generations = new List<int>();
        for (var i = 0; i < 3 && (generations.Count == 0 || generations[^1] == GC.MaxGeneration); i++)
        {
            generations.Add(GC.GetGeneration(Tensor.Zeros(new Shape(1024, 1024), DType.Float32).Storage));
        }

        Assert.True(generations[^1] < GC.MaxGeneration, $"a 4 MB tensor's storage was in generations {string.Join(", ", generations)}");
    }

    private static Tensor ScalarChain(Tensor x)
    {
        var y = x;
        for (var i = 0; i < Chain; i++)
        {
            y = (y * 1.0000001) + x;
        }

        return y;
    }

    private static Tensor UnaryChain(Tensor x)
    {
        var y = x;
        for (var i = 0; i < Chain; i++)
        {
            y = y.Tanh().Exp() * x;
        }

        return y;
    }

    [Fact]
    public void ARecordedOperationOnAOneElementTensorAllocatesItsResultAndItsNodeOnly()
    {
        var x = Tensor.From(0.5).WithRequiresGrad();
        var perOp = Allocated(() => ScalarChain(x)) / (2.0 * Chain);

        // Mul by a number and Add: result 120 + node ≈ 112–136 bytes each, measured 244 per operation.
        Assert.True(perOp <= 280, $"forward: {perOp:F1} bytes per recorded operation (bound 280)");
    }

    [Fact]
    public void AChainOfOneElementOperationsForwardAndBackwardStaysUnderItsByteBudget()
    {
        var x = Tensor.From(0.5).WithRequiresGrad();
        var perOp = Allocated(() =>
        {
            ScalarChain(x).Backward();
            x.Grad = null;
        }) / (2.0 * Chain);

        // Measured 304: the forward's 244, plus the Mul rule's g·c (120 per Mul); the Add rule passes g on, and the 1000
        // gradients reaching x are summed in place into one tensor the walk owns.
        Assert.True(perOp <= 350, $"forward + backward: {perOp:F1} bytes per recorded operation (bound 350)");

        // The gradient is still right: d(y_{k+1})/dx = c·d(y_k)/dx + 1.
        ScalarChain(x).Backward();
        var expected = 1.0;
        for (var i = 0; i < Chain; i++)
        {
            expected = (1.0000001 * expected) + 1;
        }

        Assert.Equal(expected, x.Grad!.Item(), 9);
    }

    [Fact]
    public void AChainOfUnaryOperationsForwardAndBackwardStaysUnderItsByteBudget()
    {
        var x = Tensor.From(0.7).WithRequiresGrad();
        var perOp = Allocated(() =>
        {
            UnaryChain(x).Backward();
            x.Grad = null;
        }) / (3.0 * Chain);

        // Measured 392: per Tanh, Exp and Mul their result and node (≈ 240), and their rules' tensors: g ⊙ (1 − y²) three,
        // g ⊙ y one, the Mul two.
        Assert.True(perOp <= 480, $"forward + backward: {perOp:F1} bytes per recorded operation (bound 480)");
    }

    [Fact]
    public void WithoutRecordingAnOperationAllocatesOnlyItsResult()
    {
        var x = Tensor.From(0.7).WithRequiresGrad();
        var perOp = Allocated(() =>
        {
            using (Tensor.NoGrad())
            {
                UnaryChain(x);
            }
        }) / (3.0 * Chain);

        Assert.True(perOp <= 128, $"no-grad: {perOp:F1} bytes per operation (bound 128; a float64 [1] result is 120)");
    }

    [Fact]
    public void AForwardModeOperationThatRecordsNothingMakesNoNode()
    {
        // The chain the report times for forward mode: y·a + b, tanh, − c, with a, b, c requiring grad but grad mode off.
        var a = Tensor.From(0.9).WithRequiresGrad();
        var b = Tensor.From(0.1).WithRequiresGrad();
        var c = Tensor.From(0.05).WithRequiresGrad();
        Tensor Turns(Tensor x)
        {
            var y = x;
            for (var i = 0; i < Chain; i++)
            {
                y = ((y * a) + b).Tanh() - c;
            }

            return y;
        }

        var x = Tensor.From(0.5);
        var v = Tensor.From(1.0);
        var perOp = Allocated(() =>
        {
            using (Tensor.NoGrad())
            {
                _ = Autodiff.Jvp(Turns, x, v);
            }
        }) / (4.0 * Chain);

        // Measured 180: per turn four results (120 each) and the tangents of the Mul (ȧ·b) and the Tanh (ẋ ⊙ (1 − y²));
        // the Add's and the Sub's tangents are passed on, and a tangent is held in its tensor's own fields. With a 32-byte
        // box per tangent it was 196, with a node per operation (its forward rule run through it) 354.
        Assert.True(perOp <= 190, $"forward mode: {perOp:F1} bytes per operation (bound 190)");
    }

    [Fact]
    public void ANumberOperandMakesNoTensor()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var counter = new AllocationCounter();
        using (TapeObserver.Attach(counter))
        {
            _ = x * 2.0;
            _ = 1.0 - x;
            _ = x / 4.0;
        }

        // One result each; the numbers are shown to observers as rank-0 constant inputs, without an allocation event.
        Assert.Equal(3, counter.Allocations);
        Assert.Equal(["Mul inputs 2", "Sub inputs 2", "Div inputs 2"], counter.Nodes);
    }

    [Fact]
    public void TheFusedSoftmaxOnTheArticlesVectorAllocatesItsTwoResultsAndOneNode()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var dL = Tensor.Arange(11, 20);
        var bytes = Allocated(() =>
        {
            x.Softmax(0).Backward(dL);
            x.Grad = null;
        });

        // y and dx (168 bytes each) and the node; the walk itself allocates nothing, and dx becomes x.Grad uncopied.
        Assert.True(bytes <= 520, $"softmax [9] forward + backward: {bytes} bytes (bound 520)");
    }

    [Fact]
    public void ALeafTakesTheGradientARuleMadeWithoutCopyingIt()
    {
        var x = Tensor.RandN(new Shape(64, 1024), seed: 1, DType.Float32).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(64, 1024), seed: 2, DType.Float32);
        const long Storage = 64 * 1024 * 4;
        var bytes = Allocated(() =>
        {
            x.Softmax(1).Backward(g);
            x.Grad = null;
        });

        // y and dx; a copy of dx into x.Grad would be a third [64, 1024] array.
        Assert.True(bytes < (2 * Storage) + 4096, $"softmax [64, 1024] forward + backward: {bytes} bytes (two results are {2 * Storage})");
    }

    [Fact]
    public void TheGradientOfABroadcastSubtrahendOrDivisorIsSummedBeforeItIsNegated()
    {
        var a = Tensor.RandN(new Shape(64, 1024), seed: 1, DType.Float32);
        var b = (Tensor.Rand(new Shape(64, 1), seed: 2, DType.Float32) + 1.0).WithRequiresGrad();
        var full = Tensor.Rand(new Shape(64, 1024), seed: 3, DType.Float32) + 1.0;
        var fullB = full.Detach().WithRequiresGrad();
        var g = Tensor.RandN(new Shape(64, 1024), seed: 4, DType.Float32);
        const long Storage = 64 * 1024 * 4;
        var difference = a - b;
        var quotient = a / b;
        var numberQuotient = 2.0 / fullB;

        // −Σ g: the sum is [64, 1]; negating g first made a [64, 1024] copy.
        var sub = Allocated(() => Autodiff.Grad(difference, b, g, retainGraph: true));
        Assert.True(sub < Storage / 2, $"d(a − b)/db, b [64, 1]: {sub} bytes (one [64, 1024] array is {Storage})");

        // −Σ g ⊙ a / b²: g ⊙ a and its quotient are [64, 1024]; −g was a third.
        var div = Allocated(() => Autodiff.Grad(quotient, b, g, retainGraph: true));
        Assert.True(div < 2.5 * Storage, $"d(a / b)/db, b [64, 1]: {div} bytes (one [64, 1024] array is {Storage})");

        // g ⊙ (−c) / b²: g ⊙ (−c), b² and the quotient; −g was a fourth.
        var number = Allocated(() => Autodiff.Grad(numberQuotient, fullB, g, retainGraph: true));
        Assert.True(number < 3.5 * Storage, $"d(2 / b)/db, b [64, 1024]: {number} bytes (one [64, 1024] array is {Storage})");

        // The values are those of the rules as written: −Σ g, −Σ g ⊙ a / b², −2 g / b².
        var bv = b.Detach();
        Assert.Equal((-g).Sum([1], keepDim: true).ToArray(), Autodiff.Grad(difference, b, g, retainGraph: true).ToArray());
        Assert.Equal((-g * a / (bv * bv)).Sum([1], keepDim: true).ToArray(), Autodiff.Grad(quotient, b, g, retainGraph: true).ToArray());
        Assert.Equal((-g * 2.0 / (full * full)).ToArray(), Autodiff.Grad(numberQuotient, fullB, g, retainGraph: true).ToArray());
    }

    [Fact]
    public void TheComposedSoftmaxBackwardAddsGradientsIntoTheOnesItMade()
    {
        var x = Tensor.RandN(new Shape(64, 1024), seed: 1, DType.Float32).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(64, 1024), seed: 2, DType.Float32);
        var y = x.SoftmaxComposed(-1);
        const long Storage = 64 * 1024 * 4;
        var bytes = Allocated(() => Autodiff.Grad(y, x, g, retainGraph: true));

        // g / Σ, g ⊙ e and its quotient (the divisor's gradient), the expanded Σ's gradient, e's gradient ⊙ e, the max's
        // mask and its gradient: seven [64, 1024] arrays. The two gradients meeting at e and the two meeting at x are added
        // into the one a rule made in this walk (a new sum for each was nine arrays; a negated copy of g, eleven).
        Assert.True(bytes < 7.5 * Storage, $"composed softmax [64, 1024] backward: {bytes} bytes (one [64, 1024] array is {Storage})");
    }

    [Fact]
    public void AGradientIsAddedIntoInPlaceOnlyWhereNoOtherNodeHoldsIt()
    {
        // y = h + w hands the same gradient to h and to w, y = h + 1 hands y's own (returned to the caller) on to h; h also
        // gets a gradient a rule made (from h ⊙ 2). Adding that into the passed-on one in place would give w's rule, or
        // the caller's dz/dy, 5 instead of 3.
        double[] xs = [0.3, -1.2, 2.0];
        foreach (var (hFirst, number) in new[] { (false, false), (true, false), (false, true) })
        {
            foreach (var productFirst in new[] { false, true })
            {
                var x = Tensor.From(xs).WithRequiresGrad();
                var h = x.Exp();
                var w = x.Tanh();

                // Recorded before y, h ⊙ 2 runs after y's rule (ties go to the latest recorded), so the passed-on gradient
                // reaches h first.
                var p = h * 2.0;
                var y = number ? h + 1.0 : hFirst ? h + w : w + h;
                var z = productFirst ? p + (y * 3.0) : (y * 3.0) + p;
                var seed = Tensor.From(1.0, 1.0, 1.0);
                var grads = Autodiff.Grad([z], [h, number ? y : w, x], [seed], retainGraph: true);
                Assert.Equal([5.0, 5.0, 5.0], grads[0].ToArray());
                Assert.Equal([3.0, 3.0, 3.0], grads[1].ToArray());
                var expected = xs.Select(v => (5 * Math.Exp(v)) + (number ? 0 : 3 * (1 - (Math.Tanh(v) * Math.Tanh(v))))).ToArray();
                var dx = grads[2].ToArray();
                for (var i = 0; i < xs.Length; i++)
                {
                    Assert.True(Math.Abs(dx[i] - expected[i]) <= 1e-12 * Math.Abs(expected[i]), $"dz/dx[{i}] = {dx[i]}, expected {expected[i]} (h first: {hFirst}, product first: {productFirst})");
                }

                z.Backward(seed);
                Assert.Equal(grads[2].ToArray(), x.Grad!.ToArray());
            }
        }
    }

    /// <summary>y = 3x whose Backward keeps the gradient it returns, with a copy of its values then.</summary>
    private sealed class KeepsItsGradient : CustomOperator
    {
        public List<(Tensor Kept, double[] Then)> Kept { get; } = [];

        protected override Tensor Forward(CustomContext context, Tensor[] inputs) => inputs[0] * 3.0;

        protected override Tensor?[] Backward(CustomContext context, Tensor grad)
        {
            var dx = grad * 3.0;
            Kept.Add((dx, dx.ToArray()));
            return [dx];
        }
    }

    [Fact]
    public void AGradientACustomOperatorReturnedIsCopiedNeverTakenOrWrittenInto()
    {
        // The Backward of a custom operator is the application's code and may keep what it returns: a leaf copies it, and
        // neither a later accumulation nor a gradient meeting it at the leaf is added into it.
        var op = new KeepsItsGradient();
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var seed = Tensor.From(1.0, -1.0);
        op.Apply(x).Backward(seed);
        (op.Apply(x) + (x * 2.0)).Backward(seed);
        Assert.Equal(2, op.Kept.Count);
        foreach (var (kept, then) in op.Kept)
        {
            Assert.NotSame(kept.Storage, x.Grad!.Storage);
            Assert.Equal(then, kept.ToArray());
        }

        Assert.Equal([8.0, -8.0], x.Grad!.ToArray());
    }

    [Fact]
    public void ACallersGradientIsCopiedNeverTakenOrWrittenInto()
    {
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var g = Tensor.From(10.0, 20.0);

        // x + 1's rule passes the caller's gradient on unchanged: x.Grad must be a copy of it.
        (x + 1.0).Backward(g);
        Assert.NotSame(g.Storage, x.Grad!.Storage);
        (x + 1.0).Backward(g);
        Assert.Equal([20.0, 40.0], x.Grad.ToArray());
        Assert.Equal([10.0, 20.0], g.ToArray());
    }

    [Fact]
    public void TwoLeavesGivenTheSameFreshGradientDoNotShareIt()
    {
        var a = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var b = Tensor.From(3.0, 4.0).WithRequiresGrad();

        // Sum's rule makes one fresh tensor; Add's rule hands that same tensor to both leaves: one takes it, one copies.
        (a + b).Sum().Backward();
        Assert.NotSame(a.Grad!.Storage, b.Grad!.Storage);
        (a + b).Sum().Backward();
        Assert.Equal([2.0, 2.0], a.Grad.ToArray());
        Assert.Equal([2.0, 2.0], b.Grad.ToArray());
    }

    [Fact]
    public void GradientsMeetingAtANodeAreSummedWithoutChangingWhatTheRulesReturned()
    {
        // x feeds four products; the second gradient makes a sum the walk owns, the third and fourth are added into it.
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var k = Tensor.From(3.0, 5.0);
        var y = (x * k) + (x * k) + (x * k) + (x * 2.0);
        var seen = new GradientLog();
        using (TapeObserver.Attach(seen))
        {
            y.Backward(Tensor.From(1.0, 1.0));
        }

        Assert.Equal([11.0, 17.0], x.Grad!.ToArray());

        // Every gradient an observer was shown still holds what the rule produced.
        Assert.All(seen.Products, p => Assert.Equal(p.Values, p.Tensor.ToArray()));
    }

    [Fact]
    public void AGradientFromARuleDefinedOutsideTheLibraryIsCopied()
    {
        // A rule written elsewhere may keep the tensor it returns; the leaf must not take it.
        var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
        var node = new KeepingNode(x);
        var y = Tensor.From(5.0, 6.0);
        y.SetGradFn(node);
        y.Backward(Tensor.From(1.0, 1.0), retainGraph: true);
        var kept = node.Kept!;
        Assert.NotSame(kept.Storage, x.Grad!.Storage);
        y.Backward(Tensor.From(1.0, 1.0));
        Assert.Equal([4.0, 4.0], x.Grad.ToArray());
        Assert.Equal([2.0, 2.0], kept.ToArray());
    }

    private sealed class KeepingNode(Tensor x) : Node("Keeping", x)
    {
        public Tensor? Kept { get; private set; }

        protected internal override void Backward(Tensor grad, Tensor?[] inputGrads) => inputGrads[0] = Kept = grad * 2.0;
    }

    private sealed class AllocationCounter : TapeObserver
    {
        public int Allocations { get; private set; }

        public List<string> Nodes { get; } = [];

        protected override void OnOutputAllocated(Tensor output) => Allocations++;

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs)
            => Nodes.Add($"{node.Name} inputs {inputs.Length}");
    }

    private sealed class GradientLog : TapeObserver
    {
        public List<(Tensor Tensor, double[] Values)> Products { get; } = [];

        protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads)
        {
            foreach (var g in inputGrads)
            {
                if (g is not null)
                {
                    Products.Add((g, g.ToArray()));
                }
            }
        }
    }
}
