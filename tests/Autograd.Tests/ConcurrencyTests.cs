using Autograd.Nn;
using Autograd.Nn.Optim;

namespace Autograd.Tests;

/// <summary>Backward from many threads into shared leaves, and grad mode across awaits and threads.</summary>
public class ConcurrencyTests
{
    [Fact]
    public async Task ANoGradScopeThatSpansAnAwaitNeitherLeaksOntoPoolThreadsNorEndsEarly()
    {
        // Many flows each open NoGrad, await (resuming on some pool thread), check the mode and close the scope there.
        var flows = Enumerable.Range(0, 200).Select(async i =>
        {
            using (Tensor.NoGrad())
            {
                await Task.Yield();
                Assert.False(GradMode.IsEnabled);
                await Task.Delay(i % 3);
                Assert.False(GradMode.IsEnabled);
                var x = Tensor.From(1.0, 2.0).WithRequiresGrad();
                Assert.Null((x * x).GradFn);
            }

            Assert.True(GradMode.IsEnabled);
        });
        await Task.WhenAll(flows);

        // Work that does not carry the execution context sees each pool thread's own mode: it must be on everywhere.
        var off = 0;
        using var done = new CountdownEvent(2000);
        for (var i = 0; i < 2000; i++)
        {
            ThreadPool.UnsafeQueueUserWorkItem(
                _ =>
                {
                    if (!GradMode.IsEnabled)
                    {
                        Interlocked.Increment(ref off);
                    }

                    done.Signal();
                },
                null);
        }

        Assert.True(done.Wait(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        Assert.Equal(0, off);
        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public async Task TasksStartedInsideNoGradInheritItAndUnsafeThreadsStartEnabled()
    {
        bool inTask;
        bool? inThread = null;
        using (Tensor.NoGrad())
        {
            inTask = await Task.Run(() => GradMode.IsEnabled);
            var thread = new Thread(() => inThread = GradMode.IsEnabled);
            thread.UnsafeStart();
            thread.Join();
        }

        Assert.False(inTask);
        Assert.True(inThread);
    }

    [Fact]
    public void ScopesNestAndRestoreTheModeOfTheFlow()
    {
        Assert.True(GradMode.IsEnabled);
        using (Tensor.NoGrad())
        {
            Assert.False(GradMode.IsEnabled);
            using (Tensor.EnableGrad())
            {
                Assert.True(GradMode.IsEnabled);
                using (GradMode.Override(false))
                {
                    // A public scope inside the library's own override gives the override back when closed.
                    Assert.False(GradMode.IsEnabled);
                    using (Tensor.EnableGrad())
                    {
                        Assert.True(GradMode.IsEnabled);
                    }

                    Assert.False(GradMode.IsEnabled);
                }

                Assert.True(GradMode.IsEnabled);
            }

            Assert.False(GradMode.IsEnabled);
        }

        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public async Task ABackwardWalkAfterAnAwaitRecordsNothingAndLeavesTheModeAsItWas()
    {
        var w = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var y = (w * w).Sum();
        await Task.Yield();
        y.Backward();
        Assert.True(GradMode.IsEnabled);
        Assert.Equal(new[] { 2.0, 4.0, 6.0 }, w.Grad!.ToArray());
        var z = (w * w * w).Sum();
        using (Tensor.NoGrad())
        {
            await Task.Yield();
            var grads = Autodiff.Grad([z], [w]);
            Assert.Equal(new[] { 3.0, 12.0, 27.0 }, grads[0].ToArray());
            Assert.Null(grads[0].GradFn);
            Assert.False(GradMode.IsEnabled);
        }

        Assert.True(GradMode.IsEnabled);
    }

    [Fact]
    public void ManyThreadsBackpropagatingIntoSharedLeavesGiveTheSequentialSum()
    {
        // Every thread adds into w.Grad through the same accumulator, and through a shared trunk h = w·w whose node each
        // walk visits; integer-valued data keep every sum exact, so the result must equal the sequential one exactly.
        const int threads = 8;
        const int steps = 100;
        var w = Tensor.Arange(1, 33).WithRequiresGrad();
        var h = w * w;
        var expected = new double[32];
        for (var t = 0; t < threads; t++)
        {
            for (var i = 0; i < 32; i++)
            {
                expected[i] += steps * (((t % 5) + 1) + (2 * w.ToArray()[i] * (t + 1)));
            }
        }

        var start = new Barrier(threads);
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            var c = Tensor.Full(new Shape(32), (t % 5) + 1);
            var d = Tensor.Full(new Shape(32), t + 1);
            start.SignalAndWait();
            for (var s = 0; s < steps; s++)
            {
                ((w * c).Sum() + (h * d).Sum()).Backward(retainGraph: true);
            }
        })).ToArray();
        foreach (var worker in workers)
        {
            worker.Start();
        }

        foreach (var worker in workers)
        {
            worker.Join();
        }

        Assert.Equal(expected, w.Grad!.ToArray());
    }

    [Fact]
    public void ModelsTrainedOnTwoThreadsAtOnceEndAsWhenTrainedOneAfterTheOther()
    {
        static double[] Train(int seed)
        {
            var model = new Sequential(new Linear(4, 8, seed), new Tanh(), new Linear(8, 1, seed + 1));
            var opt = new Sgd(model.Parameters(), 0.05);
            var x = Tensor.RandN(new Shape(32, 4), seed + 2);
            var y = Tensor.RandN(new Shape(32, 1), seed + 3);
            for (var step = 0; step < 50; step++)
            {
                opt.ZeroGrad();
                Functional.MseLoss(model.Forward(x), y).Backward();
                opt.Step();
            }

            return model.Parameters().SelectMany(p => p.ToArray()).ToArray();
        }

        var sequential = new[] { Train(1), Train(2) };
        var parallel = new double[2][];
        var a = new Thread(() => parallel[0] = Train(1));
        var b = new Thread(() => parallel[1] = Train(2));
        a.Start();
        b.Start();
        a.Join();
        b.Join();
        Assert.Equal(sequential[0], parallel[0]);
        Assert.Equal(sequential[1], parallel[1]);
    }
}
