using Autograd.Nn;
using Autograd.Nn.Optim;

namespace Autograd.Tests;

/// <summary>
/// <see cref="TensorScope"/>: tensors made inside end with the scope and their arrays are lent to the next tensors of the
/// same size; kept tensors, gradients, modules and optimizer state outlive it; misuse is refused with nothing changed.
/// </summary>
/// <remarks>
/// Each test uses element counts of its own, so that tests running at the same time on other threads never borrow the
/// arrays it looks for.
/// </remarks>
public class TensorScopeTests
{
    private static Tensor Random(int seed, params int[] dims) => Tensor.RandN(new Shape(dims), seed);

    private static T OnAnotherThread<T>(Func<T> function, bool withContext = true)
    {
        T result = default!;
        var thread = new Thread(() => result = function());
        if (withContext)
        {
            thread.Start();
        }
        else
        {
            thread.UnsafeStart();
        }

        thread.Join();
        return result;
    }

    [Fact]
    public void ATensorMadeInsideEndsWithTheScopeAndOneMadeOutsideDoesNot()
    {
        var x = Random(1, 3, 4111);
        Tensor y;
        Tensor small;
        Tensor view;
        using (var scope = Tensor.NewScope())
        {
            y = x.Exp();
            view = y.Reshape(4111, 3);
            Assert.Equal(2, scope.Count);
            small = x.Sum();
            Assert.False(y.IsDisposed);
        }

        Assert.True(y.IsDisposed);
        Assert.True(small.IsDisposed);
        Assert.True(view.IsDisposed);
        Assert.False(x.IsDisposed);
        Assert.Equal(Random(1, 3, 4111).ToArray(), x.ToArray());
        var error = Assert.Throws<ObjectDisposedException>(() => y.ToArray());
        Assert.Contains("[3, 4111] float64", error.Message, StringComparison.Ordinal);
        Assert.Contains("TensorScope", error.Message, StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => _ = y + x);
        Assert.Throws<ObjectDisposedException>(() => view.Sum());
        Assert.Equal([3, 4111], y.Shape.Dims);
        Assert.Equal("tensor(disposed, shape=[3, 4111], dtype=float64)", y.ToString());
    }

    [Fact]
    public void TheNextScopeWorksInTheArraysTheLastOneGaveBack()
    {
        var x = Tensor.RandN(new Shape(2, 4127), 2, DType.Float32);
        var expected = x.Exp().ToArray<float>();
        Array first;
        Array dirty;
        using (Tensor.NewScope())
        {
            first = x.Exp().Storage;
        }

        using (Tensor.NewScope())
        {
            var again = x.Exp();
            Assert.Same(first, again.Storage);
            Assert.Equal(expected, again.ToArray<float>());

            dirty = x.Exp().Storage;
            Assert.NotSame(first, dirty);
        }

        // A zero-filled tensor borrows an array the scope before wrote, and clears it.
        using (Tensor.NewScope())
        {
            var zeros = Tensor.Zeros(new Shape(2, 4127), DType.Float32);
            Assert.True(ReferenceEquals(first, zeros.Storage) || ReferenceEquals(dirty, zeros.Storage));
            Assert.All(zeros.ToArray<float>(), v => Assert.Equal(0f, v));
        }

        // Outside a scope, tensors get arrays of their own.
        Assert.NotSame(first, x.Exp().Storage);
    }

    [Fact]
    public void AKeptTensorOutlivesTheScopeAndItsArrayIsNotLentAgain()
    {
        var x = Random(3, 4133);
        var expected = x.Exp().ToArray();
        Tensor kept;
        Tensor dropped;
        using (var scope = Tensor.NewScope())
        {
            kept = scope.Keep(x.Exp());
            dropped = x.Exp();
            Assert.Equal(1, scope.Count);
            Assert.Same(x, scope.Keep(x));
        }

        Assert.False(kept.IsDisposed);
        Assert.True(dropped.IsDisposed);
        using (Tensor.NewScope())
        {
            var a = x.Exp();
            var b = x.Exp();
            Assert.NotSame(kept.Storage, a.Storage);
            Assert.NotSame(kept.Storage, b.Storage);
            a.MulInPlace(0.0);
            b.MulInPlace(0.0);
        }

        Assert.Equal(expected, kept.ToArray());
    }

    [Fact]
    public void KeepingAViewKeepsTheElementsItShares()
    {
        var x = Random(4, 2, 4139);
        var expected = x.Exp().ToArray();
        Tensor view;
        Tensor baseTensor;
        using (var scope = Tensor.NewScope())
        {
            baseTensor = x.Exp();
            view = scope.Keep(baseTensor.Reshape(4139, 2));
        }

        Assert.True(baseTensor.IsDisposed);
        using (Tensor.NewScope())
        {
            x.Exp().MulInPlace(0.0);
            x.Exp().MulInPlace(0.0);
        }

        Assert.Equal(expected, view.ToArray());
    }

    [Fact]
    public void ScopesNestAndAKeptTensorEndsWithTheEnclosingScope()
    {
        var x = Random(5, 4153);
        Tensor inner;
        Tensor outerTensor;
        using (var outer = Tensor.NewScope())
        {
            outerTensor = x.Exp();
            using (var nested = Tensor.NewScope())
            {
                inner = nested.Keep(x.Exp() * 2.0);
                var error = Assert.Throws<InvalidOperationException>(() => outer.Keep(x.Exp()));
                Assert.Contains("nested in this one", error.Message, StringComparison.Ordinal);
            }

            Assert.False(inner.IsDisposed);
            Assert.Equal(2, outer.Count);
            Assert.Equal(x.Exp().ToArray().Select(v => v * 2).ToArray(), inner.ToArray());
        }

        Assert.True(inner.IsDisposed);
        Assert.True(outerTensor.IsDisposed);
    }

    [Fact]
    public void AGradientOutlivesTheScopeOfTheBackwardThatMadeIt()
    {
        var w = Random(6, 64, 67).WithRequiresGrad();
        var x = Random(7, 67, 65);
        var expected = Autodiff.Grad(w.MatMul(x).Tanh().Sum(), w).ToArray();
        for (var step = 0; step < 3; step++)
        {
            w.ZeroGrad();
            using (Tensor.NewScope())
            {
                w.MatMul(x).Tanh().Sum().Backward();
            }

            Assert.False(w.Grad!.IsDisposed);
            Assert.Equal(expected, w.Grad.ToArray());
        }

        // A leaf made inside a scope keeps its gradient in that scope; keeping the leaf keeps the gradient.
        Tensor leaf;
        Tensor dropped;
        using (var scope = Tensor.NewScope())
        {
            leaf = Random(6, 64, 67).WithRequiresGrad();
            leaf.MatMul(x).Tanh().Sum().Backward();
            dropped = Random(6, 64, 67).WithRequiresGrad();
            dropped.MatMul(x).Tanh().Sum().Backward();
            scope.Keep(leaf);
        }

        Assert.Equal(expected, leaf.Grad!.ToArray());
        Assert.True(dropped.IsDisposed);
        Assert.True(dropped.Grad!.IsDisposed);
    }

    [Fact]
    public void TrainingWithAScopePerStepGivesTheBitsOfTrainingWithout()
    {
        static (double[] Weights, double Loss) Train(bool scoped)
        {
            // The model and the optimizer are made inside a scope as well: their parameters and state leave it.
            Sequential model;
            Adam optimizer;
            using (Tensor.NewScope())
            {
                model = new Sequential(new Linear(96, 80, seed: 1), new Tanh(), new Linear(80, 3, seed: 2));
                optimizer = new Adam(model.Parameters(), 0.01);
            }

            var input = Tensor.RandN(new Shape(64, 96), 3);
            var target = Tensor.RandN(new Shape(64, 3), 4);
            var loss = 0.0;
            for (var step = 0; step < 5; step++)
            {
                var scope = scoped ? Tensor.NewScope() : null;
                optimizer.ZeroGrad();
                var l = Functional.MseLoss(model.Forward(input), target);
                l.Backward();
                optimizer.Step();
                loss = l.Item();
                scope?.Dispose();
            }

            return ([.. model.Parameters().SelectMany(static p => p.ToArray<double>())], loss);
        }

        var (plain, plainLoss) = Train(scoped: false);
        var (scoped, scopedLoss) = Train(scoped: true);
        Assert.Equal(plainLoss, scopedLoss);
        Assert.Equal(plain, scoped);
    }

    [Fact]
    public void WalkingBackAGraphAfterItsScopeEndedThrows()
    {
        var x = Random(8, 4157).WithRequiresGrad();
        Tensor y;
        using (var scope = Tensor.NewScope())
        {
            y = scope.Keep(x.Exp().Softmax(-1));
        }

        var error = Assert.Throws<ObjectDisposedException>(() => y.Sum().Backward());
        Assert.Contains("TensorScope", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MisuseIsRefusedAndChangesNothing()
    {
        var x = Random(9, 4159);
        var outer = Tensor.NewScope();
        var a = x.Exp();
        var inner = Tensor.NewScope();
        var b = x.Exp();

        var error = Assert.Throws<InvalidOperationException>(outer.Dispose);
        Assert.Contains("dispose the inner one first", error.Message, StringComparison.Ordinal);
        Assert.False(outer.IsDisposed);
        Assert.False(a.IsDisposed);
        Assert.False(b.IsDisposed);

        // The inner scope is still the innermost: a new tensor belongs to it.
        var c = x.Exp();
        Assert.Equal(2, inner.Count);

        var otherThread = OnAnotherThread(() => Assert.Throws<InvalidOperationException>(inner.Dispose), withContext: false);
        Assert.Contains("another flow of execution", otherThread.Message, StringComparison.Ordinal);
        Assert.False(inner.IsDisposed);

        inner.Dispose();
        inner.Dispose();
        Assert.True(b.IsDisposed);
        Assert.True(c.IsDisposed);
        Assert.False(a.IsDisposed);
        Assert.Throws<ObjectDisposedException>(() => inner.Keep(a));
        Assert.Throws<ObjectDisposedException>(() => outer.Keep(b));
        Assert.Throws<ObjectDisposedException>(() => b.LeaveScope());
        Assert.Throws<ArgumentNullException>(() => outer.Keep(null!));
        outer.Dispose();
        Assert.True(a.IsDisposed);
    }

    [Fact]
    public void AScopeBelongsToTheFlowOfExecutionAsGradModeDoes()
    {
        var x = Random(10, 4177);
        using var scope = Tensor.NewScope();
        var mine = x.Exp();

        // A thread started inside the scope inherits it; one started without the flow's context (UnsafeStart) does not.
        var inherited = OnAnotherThread(x.Exp);
        var unrelated = OnAnotherThread(x.Exp, withContext: false);

        // A view made on an unrelated thread of a tensor of this scope ends with the scope, as the elements it reads do.
        var view = OnAnotherThread(() => mine.Reshape(4177, 1), withContext: false);
        scope.Dispose();
        Assert.True(mine.IsDisposed);
        Assert.True(inherited.IsDisposed);
        Assert.True(view.IsDisposed);
        Assert.False(unrelated.IsDisposed);
    }

    [Fact]
    public async Task AScopeHoldsAcrossAnAwait()
    {
        var x = Random(12, 4211);
        Tensor before;
        Tensor after;
        using (var scope = Tensor.NewScope())
        {
            before = x.Exp();
            await Task.Yield();
            after = x.Exp();
            await Task.Delay(1, TestContext.Current.CancellationToken);
            Assert.Equal(2, scope.Count);
        }

        Assert.True(before.IsDisposed);
        Assert.True(after.IsDisposed);
        Assert.False(x.Exp().IsDisposed);
    }

    [Fact]
    public void LeaveScopeTakesATensorOutOfEveryScope()
    {
        var x = Random(11, 4201);
        var expected = x.Exp().ToArray();
        Tensor left;
        using (Tensor.NewScope())
        {
            using (Tensor.NewScope())
            {
                left = x.Exp().LeaveScope();
            }
        }

        using (Tensor.NewScope())
        {
            x.Exp().MulInPlace(0.0);
        }

        Assert.False(left.IsDisposed);
        Assert.Equal(expected, left.ToArray());
    }
}
