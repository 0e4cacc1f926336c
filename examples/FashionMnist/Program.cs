// Fashion-MNIST: an MLP 784-256-128-10 with ReLU, Adam (lr 1e-3), batch 64, float32, trained for 10 epochs.
// Reports test accuracy after every epoch, then writes a loss/accuracy plot and prints the confusion matrix.
using System.Globalization;
using Autograd;
using Autograd.Examples;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;

var options = FashionOptions.Parse(args, defaultEpochs: 10);
if (FashionTraining.Load(options.DataDir) is not { } data)
{
    return 2;
}

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

static Tensor Flat(Tensor images) => images;
var history = new List<(int Epoch, double Loss, double Accuracy, double Seconds)>();
for (var epoch = 1; epoch <= options.Epochs; epoch++)
{
    var (loss, seconds) = FashionTraining.Epoch(model, Flat, optimizer, loader, epoch, options.Epochs);
    var (accuracy, _) = FashionTraining.Evaluate(model, Flat, data.Test);
    history.Add((epoch, loss, accuracy, seconds));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"epoch {epoch,2}  train loss {loss:F4}  test accuracy {accuracy:F4}  {seconds:F1} s"));
}

var (finalAccuracy, confusion) = FashionTraining.Evaluate(model, Flat, data.Test);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"final test accuracy {finalAccuracy:F4}; mean epoch time {history.Average(h => h.Seconds):F1} s"));
FashionTraining.PrintConfusion(confusion);
FashionTraining.WritePlot(history, "Fashion-MNIST, MLP 784-256-128-10, Adam 1e-3, batch 64", Path.Combine(options.OutDir, "fashion-mnist-training.png"));
return 0;
