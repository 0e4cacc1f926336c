// Fashion-MNIST with a small CNN: conv 1→32 3×3 pad 1, ReLU, max-pool 2; conv 32→64 3×3 pad 1, ReLU, max-pool 2;
// flatten; Linear 3136→128, ReLU, Linear 128→10. Adam 1e-3, batch 64, float32, 5 epochs. Reports test accuracy and
// time after every epoch, prints the confusion matrix, writes the training curves and the weights (safetensors, under
// PyTorch's names, so benchmarks/peers/fashion_cnn.py's model loads them), and the model as model.onnx.
using Autograd;
using Autograd.Examples;
using Autograd.Nn;
using Autograd.Nn.Serialization;
using Autograd.Onnx;
using Autograd.Ops;

var options = FashionOptions.Parse(args, defaultEpochs: 5);
if (FashionTraining.Load(options.DataDir) is not { } data)
{
    return 2;
}

var seed = options.Seed;
var model = new Sequential(
    new Conv2d(1, 32, 3, seed: seed, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
    new Conv2d(32, 64, 3, seed: seed + 1, padding: 1, dtype: DType.Float32), new ReLU(), new MaxPool2d(2),
    new Flatten(),
    new Linear(3136, 128, seed: seed + 2, dtype: DType.Float32), new ReLU(),
    new Linear(128, 10, seed: seed + 3, dtype: DType.Float32));
FashionTraining.Train(
    model, static rows => rows.Reshape(rows.Shape[0], 1, 28, 28), data, options,
    "Fashion-MNIST, CNN (2 conv + 2 linear), Adam 1e-3, batch 64", "fashion-cnn-training.png");
var weights = Path.Combine(options.OutDir, "fashion-cnn.safetensors");
model.SaveSafeTensors(weights, new Dictionary<string, string> { ["format"] = "pt" });
Console.WriteLine($"weights written to {Path.GetFullPath(weights)}");
var onnx = Path.Combine(options.OutDir, "model.onnx");
model.Eval().ExportOnnx(onnx, Tensor.Zeros(new Shape(1, 1, 28, 28), DType.Float32));
Console.WriteLine($"ONNX model (opset 17, dynamic batch) written to {Path.GetFullPath(onnx)}");
return 0;
