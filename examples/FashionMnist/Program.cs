// Fashion-MNIST: an MLP 784-256-128-10 with ReLU, Adam (lr 1e-3), batch 64, float32, trained for 10 epochs.
// Reports test accuracy after every epoch, then writes a loss/accuracy plot and the model as model.onnx, and prints the
// confusion matrix.
using Autograd;
using Autograd.Examples;
using Autograd.Nn;
using Autograd.Onnx;

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
FashionTraining.Train(model, static rows => rows, data, options, "Fashion-MNIST, MLP 784-256-128-10, Adam 1e-3, batch 64", "fashion-mnist-training.png");
var onnx = Path.Combine(options.OutDir, "model.onnx");
model.Eval().ExportOnnx(onnx, Tensor.Zeros(new Shape(1, 784), DType.Float32));
Console.WriteLine($"ONNX model (opset 17, dynamic batch) written to {Path.GetFullPath(onnx)}");
return 0;
