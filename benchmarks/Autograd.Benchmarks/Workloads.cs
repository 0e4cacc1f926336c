using System.Globalization;

namespace Autograd.Benchmarks;

/// <summary>
/// The workloads shared by the benchmark classes, the report and the PyTorch peers (benchmarks/peers): shapes are
/// written "AxB" (softmax over the last dim) and "NxKxM" (matmul of [N,K]·[K,M]); every input is seeded.
/// </summary>
public static class Workloads
{
    /// <summary>The seed of every benchmark input.</summary>
    public const int Seed = 20240611;

    /// <summary>Softmax shapes: the article's [9], then small to large; softmax runs over the last dim.</summary>
    public static readonly string[] SoftmaxShapes = ["9", "64x10", "32x1000", "256x1024", "1024x1024", "1x1000000"];

    /// <summary>MatMul shapes NxKxM: square 64…1024, then the Fashion-MNIST MLP's forward and backward products at batch 64.</summary>
    public static readonly string[] MatMulShapes =
    [
        "64x64x64", "128x128x128", "256x256x256", "512x512x512", "1024x1024x1024",
        "64x784x256",   // layer 1 forward: x · W1ᵀ
        "784x64x256",   // layer 1 weight gradient: xᵀ · g
        "64x256x128",   // layer 2 forward
        "256x64x128",   // layer 2 weight gradient
        "64x128x256",   // layer 2 input gradient: g · W2
        "64x128x10",    // layer 3 forward
    ];

    /// <summary>Operations recorded per invocation of the tape-overhead chain.</summary>
    public const int TapeChainLength = 1000;

    /// <summary>The Fashion-MNIST MLP: 784-256-128-10 with ReLU, float32, batch 64.</summary>
    public static readonly int[] MlpSizes = [784, 256, 128, 10];

    /// <summary>The training batch size.</summary>
    public const int BatchSize = 64;

    /// <summary>The dims of a shape written "AxBxC".</summary>
    public static int[] Dims(string shape) =>
        [.. shape.Split('x').Select(s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture))];

    /// <summary>The number of elements of a shape written "AxBxC".</summary>
    public static long Elements(string shape) => Dims(shape).Aggregate(1L, (a, b) => a * b);

    /// <summary>Floating-point operations of the matmul "NxKxM": 2·N·K·M.</summary>
    public static double MatMulFlops(string shape)
    {
        var d = Dims(shape);
        return 2.0 * d[0] * d[1] * d[2];
    }

    /// <summary>The short dtype name used in keys and tables.</summary>
    public static string DTypeName(DType dtype) => dtype switch
    {
        DType.Float32 => "f32",
        DType.Float64 => "f64",
        _ => dtype.ToString(),
    };

    /// <summary>Bytes per element of a floating dtype.</summary>
    public static int ElementSize(DType dtype) => dtype == DType.Float32 ? 4 : 8;
}
