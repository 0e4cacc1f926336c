namespace Autograd.Tests;

/// <summary>
/// <see cref="Autodiff.Checkpoint(Func{Tensor[], Tensor}, Tensor[])"/>: intermediates dropped after the forward and
/// recomputed in the backward, gradients bitwise those of the plain run (Backward, Grad; second order to the last bits), and the errors
/// for a changed input or parameter and for a function that records differently when run again.
/// </summary>
public class CheckpointTests
{
    private sealed record Mlp(Tensor[] Weights, Tensor[] Biases)
    {
        public static Mlp Create(int layers, int width, int seed) => new(
            [.. Enumerable.Range(0, layers).Select(i => Tensor.RandN(new Shape(width, width), seed + i, std: 0.4).WithRequiresGrad())],
            [.. Enumerable.Range(0, layers).Select(i => Tensor.RandN(new Shape(width), seed + 100 + i, std: 0.1).WithRequiresGrad())]);

        public Tensor Layers(Tensor x, int from, int to)
        {
            for (var i = from; i < to; i++)
            {
                x = (x.MatMul(Weights[i]) + Biases[i]).Tanh();
            }

            return x;
        }

        public Tensor Forward(Tensor x, int every)
        {
            if (every == 0)
            {
                return Layers(x, 0, Weights.Length);
            }

            for (var i = 0; i < Weights.Length; i += every)
            {
                var from = i;
                x = Autodiff.Checkpoint(h => Layers(h, from, Math.Min(from + every, Weights.Length)), x);
            }

            return x;
        }

        public IEnumerable<Tensor> Parameters => Weights.Concat(Biases);
    }

    private static Tensor Squares(Tensor t) => (t * t).Sum();

    private static double[][] Grads(IEnumerable<Tensor> tensors) => [.. tensors.Select(t => t.Grad!.ToArray<double>())];

    [Fact]
    public void GradientsAreBitwiseThoseOfThePlainRun()
    {
        foreach (var every in new[] { 1, 2, 3, 8 })
        {
            var plain = Mlp.Create(8, 6, seed: 40);
            var checkpointed = Mlp.Create(8, 6, seed: 40);
            var x1 = Tensor.RandN(new Shape(5, 6), 1).WithRequiresGrad();
            var x2 = x1.Detach().Clone().WithRequiresGrad();
            Squares(plain.Forward(x1, 0)).Backward();
            Squares(checkpointed.Forward(x2, every)).Backward();
            Assert.Equal(x1.Grad!.ToArray<double>(), x2.Grad!.ToArray<double>());
            Assert.Equal(Grads(plain.Parameters), Grads(checkpointed.Parameters));
        }
    }

    [Fact]
    public void GradIsBitwiseAndSecondOrderMatchesThePlainRun()
    {
        var model = Mlp.Create(4, 3, seed: 7);
        var x = Tensor.RandN(new Shape(2, 3), 2).WithRequiresGrad();
        Tensor[] Run(int every)
        {
            var dx = Autodiff.Grad(Squares(model.Forward(x, every)), x, createGraph: true);
            return Autodiff.Grad([Squares(dx)], [x, model.Weights[0]]);
        }

        // The first-order gradient is bitwise the plain one. In the second walk the recomputed intermediates reach x and W
        // through the operations that recorded them again, so sums over paths are added in another order: equal to the
        // last bits.
        var plainDx = Autodiff.Grad(Squares(model.Forward(x, 0)), x);
        Assert.Equal(plainDx.ToArray<double>(), Autodiff.Grad(Squares(model.Forward(x, 2)), x).ToArray<double>());
        var plain = Run(0);
        var checkpointed = Run(2);
        for (var i = 0; i < 2; i++)
        {
            var expected = plain[i].ToArray<double>();
            var actual = checkpointed[i].ToArray<double>();
            for (var j = 0; j < expected.Length; j++)
            {
                Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-14 * Math.Max(1, Math.Abs(expected[j])), $"second order {i}[{j}]: {actual[j]:R} vs {expected[j]:R}");
            }
        }

        Assert.All(model.Parameters, p => Assert.Null(p.Grad));

        var check = GradCheck.Check(xs => Autodiff.Checkpoint(h => (h * h).Exp().Sum(-1), xs[0]), [Tensor.RandN(new Shape(3, 2), 3).WithRequiresGrad()]);
        Assert.True(check.Passed, check.ToString());
    }

    [Fact]
    public void TheIntermediatesAreDroppedAfterTheForwardAndRecomputedForTheBackward()
    {
        var model = Mlp.Create(2, 4, seed: 11);
        var x = Tensor.RandN(new Shape(3, 4), 4).WithRequiresGrad();
        var y = model.Forward(x, 2);

        // The last Tanh saved its output, an intermediate of the region: dropped.
        Assert.Equal("Tanh", y.GradFn!.Name);
        Assert.Null(y.GradFn.SavedTensor(0));
        var calls = 0;
        var z = Autodiff.Checkpoint(h =>
        {
            calls++;
            return model.Layers(h, 0, 2);
        }, x);
        Assert.Equal(1, calls);
        z.Sum().Backward(retainGraph: true);
        Assert.Equal(2, calls);
        Assert.NotNull(z.GradFn!.SavedTensor(0));
        z.Sum().Backward();
        Assert.Equal(2, calls);

        using (Tensor.NoGrad())
        {
            Assert.Null(Autodiff.Checkpoint(h => h.Exp(), x).GradFn);
        }
    }

    [Fact]
    public void AChangedInputOrParameterOrADifferentRecordingIsAnError()
    {
        var x = Tensor.RandN(new Shape(2, 3), 5).WithRequiresGrad();
        var h = x * 1;
        var y = Autodiff.Checkpoint(t => t.Exp().Exp(), h);
        using (Tensor.NoGrad())
        {
            h.FillInPlace(0);
        }

        var ex = Assert.Throws<InvalidOperationException>(() => y.Sum().Backward());
        Assert.StartsWith("Checkpoint: input 0 [2, 3] float64 was changed in place after the checkpointed forward (version 0 → 1, last by ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("FillInPlace", ex.Message, StringComparison.Ordinal);

        var w = Tensor.RandN(new Shape(3, 3), 6).WithRequiresGrad();
        var z = Autodiff.Checkpoint(t => t.MatMul(w).Tanh(), x);
        using (Tensor.NoGrad())
        {
            w.CopyFrom(Tensor.Zeros(new Shape(3, 3)));
        }

        ex = Assert.Throws<InvalidOperationException>(() => z.Sum().Backward());
        Assert.Contains("that 'MatMul' saved in the checkpointed function was changed in place after the forward", ex.Message, StringComparison.Ordinal);

        var runs = 0;
        var u = Autodiff.Checkpoint(t => ++runs == 1 ? t.Exp().Tanh() : t.Exp(), x);
        ex = Assert.Throws<InvalidOperationException>(() => u.Sum().Backward());
        Assert.Contains("the function recorded 1 operations that save tensors (Exp) where the forward recorded 2 (Exp, Tanh)", ex.Message, StringComparison.Ordinal);

        Assert.Throws<ArgumentNullException>(() => Autodiff.Checkpoint((Func<Tensor, Tensor>)null!, x));
        Assert.Throws<ArgumentNullException>(() => Autodiff.Checkpoint(t => t[0], [x, null!]));
    }
}
