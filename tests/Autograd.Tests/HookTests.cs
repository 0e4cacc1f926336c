namespace Autograd.Tests;

/// <summary>
/// Gradient hooks on tensors (<see cref="Tensor.RegisterHook"/>) and <see cref="Tensor.RetainGrad"/>, as PyTorch's
/// <c>register_hook</c> and <c>retain_grad</c>: what a hook sees, replacing a gradient, order, removal, higher order,
/// and the errors.
/// </summary>
public class HookTests
{
    private static Tensor Leaf(params double[] values) => Tensor.From(values).WithRequiresGrad();

    [Fact]
    public void AHookOnAnOperationsResultSeesTheSumOverAllItsUses()
    {
        var x = Leaf(1, 2, 3);
        var y = x * 2;
        Tensor? seen = null;
        y.RegisterHook(g =>
        {
            seen = g.Detach().Clone();
            return null;
        });
        ((y * y) + y).Sum().Backward();

        // d/dy (y² + y) = 2y + 1 = 4x + 1.
        Assert.Equal([5.0, 9.0, 13.0], seen!.ToArray<double>());
        Assert.Equal([10.0, 18.0, 26.0], x.Grad!.ToArray<double>());
    }

    [Fact]
    public void AHookCanReplaceTheGradientBeforeTheRuleAndBeforeTheLeaf()
    {
        var x = Leaf(1, 2);
        var y = x * x;
        y.RegisterHook(g => g * 3);
        y.Sum().Backward();
        Assert.Equal([6.0, 12.0], x.Grad!.ToArray<double>());

        var w = Leaf(1, 2);
        w.RegisterHook(g => g * 10);
        (w * w).Sum().Backward();
        Assert.Equal([20.0, 40.0], w.Grad!.ToArray<double>());
    }

    [Fact]
    public void HooksRunInOrderAndDisposeRemovesOne()
    {
        var x = Leaf(1);
        var calls = new List<string>();
        var first = x.RegisterHook(g =>
        {
            calls.Add($"first {g.ToArray<double>()[0]}");
            return g + 1;
        });
        x.RegisterHook(g =>
        {
            calls.Add($"second {g.ToArray<double>()[0]}");
            return null;
        });
        (x * 5).Sum().Backward();
        Assert.Equal(["first 5", "second 6"], calls);
        Assert.Equal(6.0, x.Grad!.ToArray<double>()[0]);

        first.Dispose();
        first.Dispose();
        Assert.True(first.IsRemoved);
        calls.Clear();
        x.Grad = null;
        (x * 5).Sum().Backward();
        Assert.Equal(["second 5"], calls);
        Assert.Equal(5.0, x.Grad!.ToArray<double>()[0]);
    }

    [Fact]
    public void HooksRunInGradAndRecordUnderCreateGraph()
    {
        var x = Leaf(1.5, -2);
        var y = x * x;
        var hook = y.RegisterHook(g => g * y);

        // With the hook, dL/dx = (g·y)·2x = 2x³ for L = Σ y; its derivative is 6x².
        var dx = Autodiff.Grad(y.Sum(), x, createGraph: true);
        Assert.Equal([2 * 1.5 * 1.5 * 1.5, 2 * -8.0], dx.ToArray<double>());

        // The hook stays on y, so the second walk, which passes through y again, runs it too: the gradient 2x reaching
        // y becomes 2x·y, and d/dx Σ 2x·y = 2y + (2x·y)·2x = 2x² + 4x⁴.
        var ddx = Autodiff.Grad(dx.Sum(), x, retainGraph: true);
        Assert.Equal([(2 * 2.25) + (4 * 2.25 * 2.25), (2 * 4.0) + (4 * 16.0)], ddx.ToArray<double>());
        hook.Dispose();
        ddx = Autodiff.Grad(dx.Sum(), x);
        Assert.Equal([6 * 1.5 * 1.5, 6 * 4.0], ddx.ToArray<double>());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void AGradientAHookKeptIsNotChangedByLaterAccumulation()
    {
        var x = Leaf(1, 2);
        var kept = new List<Tensor>();
        x.RegisterHook(g =>
        {
            kept.Add(g);
            return null;
        });
        (x * 3).Sum().Backward();
        (x * 3).Sum().Backward();
        Assert.Equal([6.0, 6.0], x.Grad!.ToArray<double>());
        Assert.Equal([3.0, 3.0], kept[0].ToArray<double>());
        Assert.Equal([3.0, 3.0], kept[1].ToArray<double>());
    }

    [Fact]
    public void RetainGradKeepsAndAccumulatesTheGradientOfAnIntermediate()
    {
        var x = Leaf(1, 2);
        var y = x * x;
        Assert.False(y.RetainsGrad);
        y.RetainGrad();
        Assert.True(y.RetainsGrad);
        var z = (y * 3).Sum();
        z.Backward(retainGraph: true);
        Assert.Equal([3.0, 3.0], y.Grad!.ToArray<double>());
        z.Backward();
        Assert.Equal([6.0, 6.0], y.Grad!.ToArray<double>());
        Assert.Equal([12.0, 24.0], x.Grad!.ToArray<double>());

        // A hook's replacement is what is kept; Grad (the function) leaves Grad (the property) alone.
        var u = x * 2;
        u.RetainGrad();
        u.RegisterHook(g => g * 0.5);
        u.Sum().Backward();
        Assert.Equal([0.5, 0.5], u.Grad!.ToArray<double>());
        var v = x * 2;
        v.RetainGrad();
        _ = Autodiff.Grad(v.Sum(), x);
        Assert.Null(v.Grad);

        // A leaf keeps its gradient anyway.
        x.RetainGrad();
        Assert.True(x.RetainsGrad);
    }

    [Fact]
    public void BadHooksAreRefusedWithTheTensorNamed()
    {
        var constant = Tensor.From([1.0, 2.0]);
        var ex = Assert.Throws<InvalidOperationException>(() => constant.RegisterHook(g => g));
        Assert.Contains("RegisterHook: this [2] float64 tensor does not require grad", ex.Message, StringComparison.Ordinal);
        ex = Assert.Throws<InvalidOperationException>(constant.RetainGrad);
        Assert.StartsWith("RetainGrad:", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => Leaf(1).RegisterHook(null!));

        var x = Leaf(1, 2);
        var y = x.Exp();
        y.RegisterHook(g => g.Sum());
        ex = Assert.Throws<InvalidOperationException>(() => y.Sum().Backward());
        Assert.Contains("a hook registered on the [2] float64 tensor made by 'Exp' returned a gradient of shape [] float64", ex.Message, StringComparison.Ordinal);
        Assert.Null(x.Grad);
    }
}
