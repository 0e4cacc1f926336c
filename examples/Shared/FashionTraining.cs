// Shared by the Fashion-MNIST examples: command-line options, data loading, one training epoch with a progress bar,
// evaluation with a confusion matrix, and the plot of the training curves.
using System.Diagnostics;
using System.Globalization;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Ops;
using Spectre.Console;

namespace Autograd.Examples;

internal sealed record FashionOptions(string? DataDir, int Epochs, int Seed, string OutDir)
{
    public static FashionOptions Parse(string[] args, int defaultEpochs)
    {
        string? dir = null;
        var epochs = defaultEpochs;
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

        return new FashionOptions(dir, epochs, seed, outDir);
    }
}

internal static class FashionTraining
{
    /// <summary>
    /// The images per evaluation batch: few enough that the CNN's largest activation, [250, 32, 28, 28] float32 (25 MB),
    /// stays below the package's 32 MB large-object threshold, so its memory is reused from batch to batch instead of
    /// being mapped anew (at 1000 images the test set's evaluation took most of the time outside the epochs).
    /// </summary>
    private const int EvalBatch = 250;

    /// <summary>
    /// Trains <paramref name="model"/> with Adam (1e-3) on batches of 64 for the options' epochs, printing the loss, test
    /// accuracy and time of each epoch, then the confusion matrix, and writes the training curves to <paramref name="png"/>.
    /// </summary>
    public static void Train(Module model, Func<Tensor, Tensor> shape, FashionMnistData data, FashionOptions options, string title, string png)
    {
        var optimizer = new Adam(model.Parameters(), learningRate: 1e-3);
        var loader = new DataLoader(data.Train, batchSize: 64, shuffle: true, seed: options.Seed);
        Console.WriteLine(model);
        Console.WriteLine($"{model.ParameterCount:N0} parameters, {loader.BatchCount} batches of 64 per epoch, seed {options.Seed}");
        var history = new List<(int Epoch, double Loss, double Accuracy, double Seconds)>();
        for (var epoch = 1; epoch <= options.Epochs; epoch++)
        {
            var (loss, seconds) = Epoch(model, shape, optimizer, loader, epoch, options.Epochs);
            var (accuracy, _) = Evaluate(model, shape, data.Test);
            history.Add((epoch, loss, accuracy, seconds));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,2}  train loss {loss:F4}  test accuracy {accuracy:F4}  {seconds:F1} s"));
        }

        var (finalAccuracy, confusion) = Evaluate(model, shape, data.Test);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"final test accuracy {finalAccuracy:F4}; mean epoch time {history.Average(h => h.Seconds):F1} s"));
        PrintConfusion(confusion);
        WritePlot(history, title, Path.Combine(options.OutDir, png));
    }

    /// <summary>Loads the data set, or prints how to install it and returns null.</summary>
    public static FashionMnistData? Load(string? dir)
    {
        try
        {
            var data = FashionMnist.Load(dir);
            Console.WriteLine($"Fashion-MNIST from {data.Directory}: {data.Train.Count} training and {data.Test.Count} test images");
            return data;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine("Install the data set with:  apt-get install -y dataset-fashion-mnist   (or pass --data DIR)");
            return null;
        }
    }

    /// <summary>One epoch of Adam steps with a progress bar; returns the mean loss and the seconds it took.</summary>
    private static (double Loss, double Seconds) Epoch(Module model, Func<Tensor, Tensor> shape, Optimizer optimizer, DataLoader loader, int epoch, int epochs)
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
                var task = ctx.AddTask($"epoch {epoch}/{epochs}", maxValue: loader.BatchCount);
                foreach (var batch in loader.Epoch(epoch))
                {
                    // The step's tensors end with the scope; the next step works in their memory (docs/design.md).
                    using (Tensor.NewScope())
                    {
                        optimizer.ZeroGrad();
                        var loss = Functional.CrossEntropy(model.Forward(shape(batch.Features)), batch.Labels);
                        loss.Backward();
                        optimizer.Step();
                        lossSum += loss.Item();
                    }

                    batches++;
                    task.Increment(1);
                }
            });
        return (lossSum / batches, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Test accuracy and the confusion matrix, in evaluation mode and batches of 250.</summary>
    public static (double Accuracy, int[,] Confusion) Evaluate(Module model, Func<Tensor, Tensor> shape, TensorDataset test)
    {
        model.Eval();
        var confusion = new int[10, 10];
        var correct = 0;
        using var _ = Tensor.NoGrad();
        for (var start = 0; start < test.Count; start += EvalBatch)
        {
            long[] predicted, truth;
            using (Tensor.NewScope())
            {
                var part = test.Slice(start, Math.Min(EvalBatch, test.Count - start));
                predicted = model.Forward(shape(part.Features)).ArgMax(1).ToArray<long>();
                truth = part.Labels.ToArray<long>();
            }

            for (var i = 0; i < truth.Length; i++)
            {
                confusion[truth[i], predicted[i]]++;
                correct += truth[i] == predicted[i] ? 1 : 0;
            }
        }

        return ((double)correct / test.Count, confusion);
    }

    private static void PrintConfusion(int[,] confusion)
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

    private static void WritePlot(List<(int Epoch, double Loss, double Accuracy, double Seconds)> history, string title, string path)
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
        plot.Title(title);
        plot.ShowLegend(ScottPlot.Alignment.MiddleRight);
        plot.SavePng(path, 900, 600);
        Console.WriteLine($"training curves written to {Path.GetFullPath(path)}");
    }
}
