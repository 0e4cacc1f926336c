// An application that uses the Autograd packages as a user would: it references only the Autograd.Nn package (which
// brings Autograd.Ops, Autograd and Autograd.Kernels), trains an MLP on the built-in two-moons set and prints its
// accuracy and the GC and JIT settings it runs with (the Autograd package carries them into the application).
// .ci/run builds it from the packages in a fresh folder and checks these lines.
using System.Globalization;
using Autograd;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Ops;

var data = SyntheticData.MakeMoons(200, noise: 0.1, seed: 1);
var x = data.Features;
var y = data.Labels.To(DType.Float64).Reshape(-1, 1);
var model = new Sequential(new Linear(2, 16, seed: 1), new ReLU(), new Linear(16, 16, seed: 2), new ReLU(), new Linear(16, 1, seed: 3));
var optimizer = new Adam(model.Parameters(), learningRate: 0.01);

for (var step = 0; step < 300; step++)
{
    optimizer.ZeroGrad();
    var loss = Functional.BinaryCrossEntropyWithLogits(model.Forward(x), y);
    loss.Backward();
    optimizer.Step();
}

double accuracy;
using (Tensor.NoGrad())
{
    var predicted = model.Forward(x).Gt(0.0).To(DType.Float64).Reshape(-1);
    accuracy = predicted.Eq(data.Labels.To(DType.Float64)).Mean().Item();
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy {accuracy:F4}"));
var gc = GC.GetConfigurationVariables();
Console.WriteLine($"gc RegionSize={AppContext.GetData("System.GC.RegionSize")} LOHThreshold={AppContext.GetData("System.GC.LOHThreshold")} RegionRange={gc["GCRegionRange"]} ConcurrentGC={gc["ConcurrentGC"]}");
Console.WriteLine($"jit QuickJitForLoops={AppContext.GetData("System.Runtime.TieredCompilation.QuickJitForLoops")}");
