// Fashion-MNIST: an MLP 784-256-128-10 with ReLU, Adam (lr 1e-3), batch 64, float32, trained for 10 epochs.
// Reports test accuracy after every epoch, then writes a loss/accuracy plot and prints the confusion matrix.
using System.Diagnostics;
using System.Globalization;
using Autograd;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Ops;
using Spectre.Console;

var options = Options.Parse(args);
FashionMnistData data;
try
{
    data = FashionMnist.Load(options.DataDir);
}
catch (FileNotFoundException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine("Install the data set with:  apt-get install -y dataset-fashion-mnist   (or pass --data DIR)");
    return 2;
}
catch (DirectoryNotFoundException e)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine("Install the data set with:  apt-get install -y dataset-fashion-mnist   (or pass --data DIR)");
    return 2;
}

Console.WriteLine($"Fashion-MNIST from {data.Directory}: {data.Train.Count} training and {data.Test.Count} test images");
var model = new Sequential(
    new Linear(784, 256, seed: options.Seed, dtype: DType.Float32),
    new ReLU(),
    new Linear(256, 128, seed: options.Seed + 1, dtype: DType.Float32),
    new ReLU(),
    new Linear(128, 10, seed: options.Seed + 2, dtype: DType.Float32));
var optimizer = new Adam(model.Parameters(), learningRate: 1e-3);
var loader = new DataLoader(data.Train, batchSize: 64, shuffle: true, seed: options.Seed);
Console.WriteLine(model);
Console.WriteLine($"{model.ParameterCount:N0} parameters, {loader.BatchCount} batches of 64 per epoch, seed {options.Seed}");

var history = new List<(int Epoch, double Loss, double Accuracy, double Seconds)>();
for (var epoch = 1; epoch <= options.Epochs; epoch++)
{
    model.Train();
    double lossSum = 0;
    var batches = 0;
    var clock = Stopwatch.StartNew();
    AnsiConsole.Progress()
        .AutoClear(true)
        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
        .Start(ctx =>
        {
            var task = ctx.AddTask($"epoch {epoch}/{options.Epochs}", maxValue: loader.BatchCount);
            foreach (var batch in loader.Epoch(epoch))
            {
                optimizer.ZeroGrad();
                var loss = Functional.CrossEntropy(model.Forward(batch.Features), batch.Labels);
                loss.Backward();
                optimizer.Step();
                lossSum += loss.Item();
                batches++;
                task.Increment(1);
            }
        });
    var seconds = clock.Elapsed.TotalSeconds;
    var (accuracy, _) = Evaluate(model, data.Test);
    history.Add((epoch, lossSum / batches, accuracy, seconds));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,2}  train loss {lossSum / batches:F4}  test accuracy {accuracy:F4}  {seconds:F1} s"));
}

var (finalAccuracy, confusion) = Evaluate(model, data.Test);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"final test accuracy {finalAccuracy:F4}; mean epoch time {history.Average(h => h.Seconds):F1} s"));
PrintConfusion(confusion);
WritePlot(history, Path.Combine(options.OutDir, "fashion-mnist-training.png"));
return 0;

static (double Accuracy, int[,] Confusion) Evaluate(Module model, TensorDataset test)
{
    model.Eval();
    var confusion = new int[10, 10];
    var correct = 0;
    using var _ = Tensor.NoGrad();
    for (var start = 0; start < test.Count; start += 1000)
    {
        var part = test.Slice(start, Math.Min(1000, test.Count - start));
        var predicted = model.Forward(part.Features).ArgMax(1).ToArray<long>();
        var truth = part.Labels.ToArray<long>();
        for (var i = 0; i < truth.Length; i++)
        {
            confusion[truth[i], predicted[i]]++;
            correct += truth[i] == predicted[i] ? 1 : 0;
        }
    }

    return ((double)correct / test.Count, confusion);
}

static void PrintConfusion(int[,] confusion)
{
    var table = new Table().Title("confusion matrix (rows: true class, columns: predicted)");
    table.AddColumn("true \\ predicted");
    for (var j = 0; j < 10; j++)
    {
        table.AddColumn(new TableColumn(j.ToString(CultureInfo.InvariantCulture)).RightAligned());
    }

    for (var i = 0; i < 10; i++)
    {
        var row = new List<string> { $"{i} {FashionMnist.ClassNames[i]}" };
        for (var j = 0; j < 10; j++)
        {
            row.Add(i == j ? $"[green]{confusion[i, j]}[/]" : confusion[i, j].ToString(CultureInfo.InvariantCulture));
        }

        table.AddRow(row.ToArray());
    }

    AnsiConsole.Write(table);
}

static void WritePlot(List<(int Epoch, double Loss, double Accuracy, double Seconds)> history, string path)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    var epochs = history.Select(h => (double)h.Epoch).ToArray();
    var plot = new ScottPlot.Plot();
    var loss = plot.Add.Scatter(epochs, history.Select(h => h.Loss).ToArray());
    loss.LegendText = "training loss (left)";
    var accuracy = plot.Add.Scatter(epochs, history.Select(h => h.Accuracy).ToArray());
    accuracy.LegendText = "test accuracy (right)";
    accuracy.Axes.YAxis = plot.Axes.Right;
    plot.Axes.Left.Label.Text = "cross-entropy";
    plot.Axes.Right.Label.Text = "accuracy";
    plot.XLabel("epoch");
    plot.Title("Fashion-MNIST, MLP 784-256-128-10, Adam 1e-3, batch 64");
    plot.ShowLegend(ScottPlot.Alignment.MiddleRight);
    plot.SavePng(path, 900, 600);
    Console.WriteLine($"training curves written to {Path.GetFullPath(path)}");
}

internal sealed record Options(string? DataDir, int Epochs, int Seed, string OutDir)
{
    public static Options Parse(string[] args)
    {
        string? dir = null;
        var epochs = 10;
        var seed = 1;
        var outDir = ".";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--data": dir = args[++i]; break;
                case "--epochs": epochs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--out": outDir = args[++i]; break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'; use --data DIR, --epochs N, --seed N, --out DIR");
            }
        }

        return new Options(dir, epochs, seed, outDir);
    }
}
