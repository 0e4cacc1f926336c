namespace Autograd.Tests;

/// <summary>Grad mode follows the logical flow of execution across awaits and threads.</summary>
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

        Assert.True(done.Wait(TimeSpan.FromSeconds(30)));
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
}
