using Autograd.Nn;

namespace Autograd.Tests;

/// <summary>
/// Forward pre-hooks, forward hooks and full backward hooks on modules, as PyTorch's: what they see, what they may
/// replace, that containers run their children's hooks, removal, and the errors.
/// </summary>
public class ModuleHookTests
{
    private static Tensor Input(bool requiresGrad = true)
    {
        var x = Tensor.RandN(new Shape(3, 4), 7);
        return requiresGrad ? x.WithRequiresGrad() : x;
    }

    [Fact]
    public void ForwardHooksSeeAndMayReplaceTheInputAndTheOutputInsideAContainer()
    {
        var inner = new Linear(4, 2, seed: 1);
        var model = new Sequential(inner, new ReLU());
        var x = Input(requiresGrad: false);
        var calls = new List<string>();
        var pre = inner.RegisterForwardPreHook((m, input) =>
        {
            calls.Add($"pre {m.GetType().Name} {input.Shape}");
            return input * 2;
        });
        inner.RegisterForwardHook((m, input, output) =>
        {
            calls.Add($"post {input.Shape} {output.Shape}");
            return output + 100;
        });

        var y = model.Call(x);
        Assert.Equal(["pre Linear [3, 4]", "post [3, 4] [3, 2]"], calls);
        var expected = inner.Forward(x * 2) + 100;
        Assert.Equal(expected.Relu().ToArray<double>(), y.ToArray<double>());

        // Forward of a container calls its children through Call too; Forward of the hooked module itself runs no hook.
        calls.Clear();
        model.Forward(x);
        Assert.Equal(2, calls.Count);
        calls.Clear();
        inner.Forward(x);
        Assert.Empty(calls);

        pre.Dispose();
        calls.Clear();
        Assert.Equal((inner.Forward(x) + 100).ToArray<double>(), inner.Call(x).ToArray<double>());
        Assert.Equal(["post [3, 4] [3, 2]"], calls);
    }

    [Fact]
    public void ABackwardHookSeesTheGradientsOfInputAndOutputAndMayReplaceTheInputs()
    {
        var layer = new Linear(4, 2, seed: 3);
        var x = Input();
        var g = Tensor.RandN(new Shape(3, 2), 11);
        var plain = Autodiff.Grad([layer.Forward(x)], [x, layer.Weight], [g]);

        Tensor? seenIn = null, seenOut = null;
        using (layer.RegisterFullBackwardHook((m, gradIn, gradOut) =>
        {
            Assert.Same(layer, m);
            seenIn = gradIn!.Detach().Clone();
            seenOut = gradOut.Detach().Clone();
            return gradIn * 0;
        }))
        {
            var hooked = Autodiff.Grad([layer.Call(x)], [x, layer.Weight], [g]);
            Assert.Equal(plain[0].ToArray<double>(), seenIn!.ToArray<double>());
            Assert.Equal(g.ToArray<double>(), seenOut!.ToArray<double>());
            Assert.All(hooked[0].ToArray<double>(), v => Assert.Equal(0.0, v));
            Assert.Equal(plain[1].ToArray<double>(), hooked[1].ToArray<double>());
        }

        // Removed: the same call gives the plain gradients again.
        var again = Autodiff.Grad([layer.Call(x)], [x], [g]);
        Assert.Equal(plain[0].ToArray<double>(), again[0].ToArray<double>());
    }

    [Fact]
    public void WithoutAnInputGradientTheBackwardHookGetsNullAtTheOutput()
    {
        var layer = new Linear(4, 2, seed: 5);
        var x = Input(requiresGrad: false);
        var g = Tensor.RandN(new Shape(3, 2), 12);
        var seen = new List<(Tensor? In, Tensor Out)>();
        var handle = layer.RegisterFullBackwardHook((m, gradIn, gradOut) =>
        {
            seen.Add((gradIn, gradOut));
            return null;
        });
        Autodiff.Backward([layer.Call(x)], [g]);
        Assert.Single(seen);
        Assert.Null(seen[0].In);
        Assert.Equal(g.ToArray<double>(), seen[0].Out.ToArray<double>());
        Assert.NotNull(layer.Weight.Grad);

        // Under NoGrad nothing is recorded, so nothing is hooked.
        using (Tensor.NoGrad())
        {
            Assert.Null(layer.Call(x).GradFn);
        }

        handle.Dispose();
        layer.RegisterFullBackwardHook((m, gradIn, gradOut) => gradOut);
        var ex = Assert.Throws<InvalidOperationException>(() => Autodiff.Backward([layer.Call(x)], [g]));
        Assert.Contains("Linear backward hook: the module's input does not require grad", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadModuleHooksAreRefused()
    {
        var layer = new Linear(4, 2, seed: 9);
        Assert.Throws<ArgumentNullException>(() => layer.RegisterForwardPreHook(null!));
        Assert.Throws<ArgumentNullException>(() => layer.RegisterForwardHook(null!));
        Assert.Throws<ArgumentNullException>(() => layer.RegisterFullBackwardHook(null!));

        layer.RegisterFullBackwardHook((m, gradIn, gradOut) => gradOut);
        var x = Input();
        var ex = Assert.Throws<InvalidOperationException>(() => layer.Call(x).Sum().Backward());
        Assert.Contains("Linear backward hook returned an input gradient of shape [3, 2] float64; it must return null or a tensor of shape [3, 4] float64", ex.Message, StringComparison.Ordinal);
    }
}
