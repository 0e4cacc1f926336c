using System.Diagnostics;
using System.Globalization;

namespace Autograd.Benchmarks;

/// <summary>
/// The memory the tape keeps between forward and backward for a deep MLP, plain and with
/// <see cref="Autodiff.Checkpoint(Func{Tensor, Tensor}, Tensor)"/> every few layers: the bytes still reachable after the
/// forward (a full collection before and after), and whether the gradients of the two runs are bitwise equal.
/// </summary>
public static class CheckpointMemory
{
    /// <summary>The layers of the MLP.</summary>
    public const int Layers = 32;

    /// <summary>A checkpoint covers this many layers.</summary>
    public const int Every = 4;

    /// <summary>The batch and the width of every layer (float32).</summary>
    public const int Batch = 64, Width = 256;

    /// <summary>Measures both runs once.</summary>
    public static CheckpointResult Measure()
    {
        var weights = Enumerable.Range(0, Layers).Select(i => Tensor.RandN(new Shape(Width, Width), Workloads.Seed + i, DType.Float32, std: 1.0 / Math.Sqrt(Width)).WithRequiresGrad()).ToArray();
        var x = Tensor.RandN(new Shape(Batch, Width), Workloads.Seed + 100, DType.Float32);

        // Once each first, so that what the first run of the code allocates for good (compiled code's statics, the GEMM's
        // packing buffers, the worker threads) is not counted as held by the tape.
        Run(weights, x, checkpoint: false);
        Run(weights, x, checkpoint: true);
        var (plainBytes, plainGrads) = Run(weights, x, checkpoint: false);
        var (checkpointBytes, checkpointGrads) = Run(weights, x, checkpoint: true);
        var equal = plainGrads.Zip(checkpointGrads).All(p => p.First.AsSpan().SequenceEqual(p.Second));
        return new CheckpointResult(plainBytes, checkpointBytes, equal);
    }

    /// <summary>
    /// Measures in a child process of this program (<c>--checkpoint</c>), so that nothing a longer run keeps or releases
    /// meanwhile (pooled arrays trimmed by a full collection, say) moves the figures; in this process if the child fails.
    /// </summary>
    public static CheckpointResult MeasureInChild()
    {
        try
        {
            var info = VectorPath.ChildStartInfo(["--checkpoint"]);
            info.RedirectStandardOutput = true;
            using var child = Process.Start(info) ?? throw new InvalidOperationException("the child did not start");
            var output = child.StandardOutput.ReadToEnd();
            child.WaitForExit();
            var line = output.Split('\n').FirstOrDefault(l => l.StartsWith(BytesPrefix, StringComparison.Ordinal));
            if (line is not null)
            {
                var parts = line[BytesPrefix.Length..].Trim().Split(' ');
                return new CheckpointResult(long.Parse(parts[0], CultureInfo.InvariantCulture), long.Parse(parts[1], CultureInfo.InvariantCulture), parts[2] == "equal");
            }
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or FormatException or IndexOutOfRangeException)
        {
            Console.Error.WriteLine($"checkpoint: the child process failed ({e.Message}); measuring in this process");
        }

        return Measure();
    }

    /// <summary>The start of the line <c>--checkpoint</c> prints for <see cref="MeasureInChild"/>.</summary>
    public const string BytesPrefix = "checkpoint bytes:";

    private static (long Held, float[][] Grads) Run(Tensor[] weights, Tensor x, bool checkpoint)
    {
        foreach (var w in weights)
        {
            w.Grad = null;
        }

        var before = GC.GetTotalMemory(forceFullCollection: true);
        var h = x;
        for (var i = 0; i < Layers; i += Every)
        {
            var first = i;
            Tensor Block(Tensor t)
            {
                for (var j = first; j < first + Every; j++)
                {
                    t = t.MatMul(weights[j]).Tanh();
                }

                return t;
            }

            h = checkpoint ? Autodiff.Checkpoint(Block, h) : Block(h);
        }

        var loss = (h * h).Sum();
        var held = GC.GetTotalMemory(forceFullCollection: true) - before;
        loss.Backward();
        return (held, [.. weights.Select(w => w.Grad!.ToArray<float>())]);
    }
}

/// <summary>What <see cref="CheckpointMemory.Measure"/> found.</summary>
/// <param name="PlainBytes">Bytes kept between forward and backward without checkpointing.</param>
/// <param name="CheckpointedBytes">Bytes kept with a checkpoint every <see cref="CheckpointMemory.Every"/> layers.</param>
/// <param name="GradientsEqual">Whether every weight's gradient is bitwise the same in both runs.</param>
public sealed record CheckpointResult(long PlainBytes, long CheckpointedBytes, bool GradientsEqual)
{
    /// <summary>One line for a log.</summary>
    public override string ToString()
        => $"{CheckpointMemory.Layers}-layer MLP [{CheckpointMemory.Batch}, {CheckpointMemory.Width}] float32: tape keeps {PlainBytes / 1024.0:F0} KiB plain, {CheckpointedBytes / 1024.0:F0} KiB with a checkpoint every {CheckpointMemory.Every} layers ({(double)CheckpointedBytes / PlainBytes:P0}); gradients {(GradientsEqual ? "bitwise equal" : "DIFFER")}";
}
