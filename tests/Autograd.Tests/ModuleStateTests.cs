using Autograd.Nn;
using Autograd.Nn.Serialization;

namespace Autograd.Tests;

/// <summary>Buffers (state saved with a module but not trained), the state-dict order, and the Flatten module.</summary>
public class ModuleStateTests
{
    /// <summary>A module with a parameter, two buffers (one int64, as batch norm's num_batches_tracked) and a child.</summary>
    private sealed class Stats : Module
    {
        public Stats(Module? child = null)
        {
            Weight = RegisterParameter("weight", Tensor.From(1.0, 2.0));
            RunningMean = RegisterBuffer("running_mean", Tensor.From(0.5, -0.5));
            Count = RegisterBuffer("num_batches_tracked", Tensor.FromArray([3L]).Reshape());
            if (child is not null)
            {
                RegisterModule("child", child);
            }
        }

        public Tensor Weight { get; }

        public Tensor RunningMean { get; }

        public Tensor Count { get; }

        public Tensor AddBuffer(string name, Tensor t) => RegisterBuffer(name, t);

        public override Tensor Forward(Tensor input) => input * Weight + RunningMean;
    }

    [Fact]
    public void StateListsParametersThenBuffersThenChildrenAsPyTorchsStateDict()
    {
        var model = new Sequential(new Stats(new Stats()), new ReLU(), new Stats());
        Assert.Equal(
            ["0.weight", "0.running_mean", "0.num_batches_tracked", "0.child.weight", "0.child.running_mean", "0.child.num_batches_tracked",
             "2.weight", "2.running_mean", "2.num_batches_tracked"],
            model.NamedState().Select(s => s.Key).ToArray());
        Assert.Equal(["0.weight", "0.child.weight", "2.weight"], model.NamedParameters().Select(p => p.Key).ToArray());
        Assert.Equal(
            ["0.running_mean", "0.num_batches_tracked", "0.child.running_mean", "0.child.num_batches_tracked", "2.running_mean", "2.num_batches_tracked"],
            model.NamedBuffers().Select(b => b.Key).ToArray());

        // Buffers are not parameters: an optimiser never sees them, and they do not require grad.
        Assert.DoesNotContain(model.Parameters(), p => model.NamedBuffers().Any(b => ReferenceEquals(b.Value, p)));
        Assert.All(model.NamedBuffers(), b => Assert.False(b.Value.RequiresGrad));
        Assert.Equal(6, model.ParameterCount);
    }

    [Fact]
    public void ABufferNameMustBeFreeAndTheBufferMustNotRequireGrad()
    {
        var m = new Stats();
        var dup = Assert.Throws<ArgumentException>(() => m.AddBuffer("weight", Tensor.Zeros(2)));
        Assert.Contains("'weight'", dup.Message, StringComparison.Ordinal);
        Assert.Contains("already registered", dup.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => m.AddBuffer("running_mean", Tensor.Zeros(2)));
        Assert.Throws<ArgumentException>(() => m.AddBuffer("a.b", Tensor.Zeros(2)));

        var trained = Assert.Throws<ArgumentException>(() => m.AddBuffer("extra", Tensor.Zeros(3).WithRequiresGrad()));
        Assert.Contains("RegisterBuffer", trained.Message, StringComparison.Ordinal);
        Assert.Contains("'extra'", trained.Message, StringComparison.Ordinal);
        Assert.Contains("[3]", trained.Message, StringComparison.Ordinal);

        // The failed registrations left nothing behind.
        Assert.Equal(["running_mean", "num_batches_tracked"], m.NamedBuffers().Select(b => b.Key).ToArray());
    }

    [Fact]
    public void BuffersAreSavedAndLoadedWithTheParameters()
    {
        var path = Path.Combine(Path.GetTempPath(), $"autograd-buffers-{Guid.NewGuid():N}.safetensors");
        try
        {
            var source = new Sequential(new Stats(), new Stats());
            using (Tensor.NoGrad())
            {
                source.NamedState().Single(s => s.Key == "1.running_mean").Value.Span<double>()[1] = 7.25;
                source.NamedState().Single(s => s.Key == "1.num_batches_tracked").Value.Span<long>()[0] = 41;
            }

            source.SaveSafeTensors(path);
            var file = SafeTensors.Read(path);
            Assert.Equal(source.NamedState().Select(s => s.Key).Order(StringComparer.Ordinal), file.Tensors.Keys.Order(StringComparer.Ordinal));

            var target = new Sequential(new Stats(), new Stats());
            var result = target.LoadSafeTensors(path);
            Assert.Empty(result.MissingKeys);
            Assert.Empty(result.UnexpectedKeys);
            var loaded = (Stats)target.Layers[1];
            Assert.Equal(7.25, loaded.RunningMean.Span<double>()[1]);
            Assert.Equal(41L, loaded.Count.Span<long>()[0]);
            Assert.Equal(DType.Int64, loaded.Count.DType);

            // A file without the buffers does not fit strictly, and the module is unchanged.
            var paramsOnly = Path.ChangeExtension(path, ".params.safetensors");
            SafeTensors.Save(paramsOnly, source.NamedParameters());
            var fresh = new Sequential(new Stats(), new Stats());
            var ex = Assert.Throws<InvalidDataException>(() => fresh.LoadSafeTensors(paramsOnly));
            Assert.Contains("0.running_mean", ex.Message, StringComparison.Ordinal);
            Assert.Contains("1.num_batches_tracked", ex.Message, StringComparison.Ordinal);
            Assert.Equal(3L, ((Stats)fresh.Layers[1]).Count.Span<long>()[0]);
            var lenient = fresh.LoadSafeTensors(paramsOnly, strict: false);
            Assert.Contains("1.running_mean", lenient.MissingKeys);
            File.Delete(paramsOnly);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData(1, -1, new[] { 2, 60 })]
    [InlineData(0, -1, new[] { 120 })]
    [InlineData(1, 2, new[] { 2, 12, 5 })]
    [InlineData(-2, -1, new[] { 2, 3, 20 })]
    public void FlattenJoinsTheDimsAsPyTorchsFlatten(int start, int end, int[] expected)
    {
        var x = Tensor.Arange(0, 120).Reshape(2, 3, 4, 5).WithRequiresGrad();
        var y = new Flatten(start, end).Forward(x);
        Assert.Equal(expected, y.Shape.ToArray());
        Assert.Equal(x.ToArray<double>(), y.ToArray<double>());
        y.Sum().Backward();
        Assert.All(x.Grad!.ToArray<double>(), g => Assert.Equal(1.0, g));
    }

    [Fact]
    public void FlattenDefaultsKeepTheBatchDimAndBadDimsAreNamed()
    {
        var f = new Flatten();
        Assert.Equal([8, 3136], f.Forward(Tensor.Zeros(8, 64, 7, 7)).Shape.ToArray());
        Assert.Equal("Flatten(start_dim=1, end_dim=-1)", f.ToString());
        var ex = Assert.ThrowsAny<ArgumentException>(() => new Flatten(3).Forward(Tensor.Zeros(2, 3)));
        Assert.Contains("Flatten", ex.Message, StringComparison.Ordinal);
    }
}
