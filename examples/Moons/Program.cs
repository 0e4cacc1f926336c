// The micrograd classic: a small MLP learns the two-moons set (built-in data, no download) and the decision
// boundary is written to a PNG.
using System.Globalization;
using Autograd;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Ops;

var output = args.Length >= 2 && args[0] == "--out" ? args[1] : "moons.png";
const int Steps = 300;

var data = SyntheticData.MakeMoons(200, noise: 0.1, seed: 1);
var x = data.Features;
var y = data.Labels.To(DType.Float64).Reshape(-1, 1);

var model = new Sequential(new Linear(2, 16, seed: 1), new ReLU(), new Linear(16, 16, seed: 2), new ReLU(), new Linear(16, 1, seed: 3));
var optimizer = new Adam(model.Parameters(), learningRate: 0.01);
Console.WriteLine(model);
Console.WriteLine($"{model.ParameterCount} parameters, {x.Shape[0]} points");

double Accuracy()
{
    using var _ = Tensor.NoGrad();
    var logits = model.Forward(x).ToArray();
    var labels = y.ToArray();
    return logits.Zip(labels, (l, t) => (l > 0 ? 1.0 : 0.0) == t ? 1.0 : 0.0).Average();
}

for (var step = 1; step <= Steps; step++)
{
    optimizer.ZeroGrad();
    var loss = Functional.BinaryCrossEntropyWithLogits(model.Forward(x), y);
    loss.Backward();
    optimizer.Step();
    if (step % 50 == 0 || step == 1)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"step {step,4}  loss {loss.Item():F4}  accuracy {Accuracy():P1}"));
    }
}

// The decision boundary: the model's probability over a grid, with the points on top.
const int Grid = 160;
double x0 = -1.6, x1 = 2.6, y0 = -1.1, y1 = 1.6;
var gridPoints = new double[Grid * Grid * 2];
for (var i = 0; i < Grid; i++)
{
    for (var j = 0; j < Grid; j++)
    {
        gridPoints[((i * Grid) + j) * 2] = x0 + ((x1 - x0) * j / (Grid - 1));
        gridPoints[(((i * Grid) + j) * 2) + 1] = y1 - ((y1 - y0) * i / (Grid - 1));
    }
}

double[] probabilities;
using (Tensor.NoGrad())
{
    probabilities = model.Forward(Tensor.FromArray(gridPoints, Grid * Grid, 2)).Sigmoid().ToArray();
}

var heat = new double[Grid, Grid];
for (var i = 0; i < Grid; i++)
{
    for (var j = 0; j < Grid; j++)
    {
        heat[i, j] = probabilities[(i * Grid) + j];
    }
}

var plot = new ScottPlot.Plot();
var heatmap = plot.Add.Heatmap(heat);
heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
heatmap.Extent = new ScottPlot.CoordinateRect(x0, x1, y0, y1);
heatmap.Opacity = 0.6;
var points = x.ToArray();
var labelsArr = data.Labels.ToArray();
foreach (var cls in new[] { 0, 1 })
{
    var xs = Enumerable.Range(0, labelsArr.Length).Where(k => labelsArr[k] == cls).Select(k => points[k * 2]).ToArray();
    var ys = Enumerable.Range(0, labelsArr.Length).Where(k => labelsArr[k] == cls).Select(k => points[(k * 2) + 1]).ToArray();
    var scatter = plot.Add.ScatterPoints(xs, ys);
    scatter.Color = cls == 0 ? ScottPlot.Colors.OrangeRed : ScottPlot.Colors.RoyalBlue;
    scatter.MarkerSize = 7;
    scatter.LegendText = $"class {cls}";
}

plot.Title(string.Create(CultureInfo.InvariantCulture, $"Two moons: MLP 2-16-16-1, {Steps} Adam steps, accuracy {Accuracy():P1}"));
plot.Axes.SetLimits(x0, x1, y0, y1);
plot.SavePng(output, 800, 600);
Console.WriteLine($"decision boundary written to {Path.GetFullPath(output)}");
