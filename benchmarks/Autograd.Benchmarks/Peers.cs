using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Autograd.Benchmarks;

/// <summary>The PyTorch side of one report: medians per key, the epoch time, versions and what went wrong.</summary>
public sealed record PeerResults(
    string Torch,
    string? TorchPackage,
    string Python,
    IReadOnlyDictionary<string, double> MedianNs,
    EpochTiming? Epoch,
    IReadOnlyDictionary<string, string?> Environment,
    IReadOnlyList<string> Errors)
{
    /// <summary>One epoch of peers/fashion_cnn.py (null when the data set is missing or the run failed).</summary>
    public CnnEpoch? Cnn { get; init; }

    /// <summary>The training steps of peers/char_gpt.py (null when the word list is missing or the run failed).</summary>
    public GptTiming? Gpt { get; init; }
}

/// <summary>One timed CNN epoch: its time, batches, mean training loss and the test accuracy after it.</summary>
public sealed record CnnEpoch(double Seconds, int Batches, double MeanLoss, double TestAccuracy);

/// <summary>Runs benchmarks/peers/*.py (PyTorch) on the same workloads and reads their JSON.</summary>
public static class Peers
{
    /// <summary>
    /// Runs every peer with <paramref name="python"/>; softmax, tape and training at all cores, matmul at each of
    /// <paramref name="threadCounts"/>. Returns null when that Python cannot import torch.
    /// </summary>
    /// <remarks>
    /// With <paramref name="dataDirectory"/> it also times one epoch of fashion_cnn.py; with <paramref name="wordList"/>
    /// <paramref name="gptSteps"/> steps of char_gpt.py (both print their JSON as the last line of their output).
    /// </remarks>
    public static PeerResults? Run(string python, string peersDirectory, IReadOnlyList<int> threadCounts, string? dataDirectory, TextWriter log, string? wordList = null, int gptSteps = 300)
    {
        var torch = Machine.Run(python, ["-c", "import sys, torch; print(torch.__version__, sys.version.split()[0])"])?.Trim().Split(' ');
        if (torch is not { Length: 2 })
        {
            return null;
        }

        var package = Machine.Run("dpkg-query", ["-W", "-f", "${Version}", "python3-torch"])?.Trim();
        var medians = new Dictionary<string, double>();
        var errors = new List<string>();
        IReadOnlyDictionary<string, string?> env = new Dictionary<string, string?>();
        EpochTiming? epoch = null;
        var all = Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture);
        var runs = new List<(string Script, string[] Args)>
        {
            ("softmax.py", ["--threads", all, "--shapes", string.Join(',', Workloads.SoftmaxShapes)]),
            ("tape.py", ["--threads", all, "--ops", Workloads.TapeChainLength.ToString(CultureInfo.InvariantCulture)]),
        };
        foreach (var t in threadCounts)
        {
            runs.Add(("matmul.py", ["--threads", t.ToString(CultureInfo.InvariantCulture), "--shapes", string.Join(',', Workloads.MatMulShapes)]));
        }

        runs.Add(("training.py", dataDirectory is null ? ["--threads", all] : ["--threads", all, "--data", dataDirectory]));
        runs.Add(("layers.py", ["--threads", all]));
        foreach (var (script, args) in runs)
        {
            var output = Path.Combine(Path.GetTempPath(), $"autograd-peer-{Environment.ProcessId}-{Path.GetFileNameWithoutExtension(script)}-{string.Join('-', args.Take(2))}.json");
            log.WriteLine($"peer: {python} {script} {string.Join(' ', args)}");
            var clock = Stopwatch.StartNew();
            var stdout = Machine.Run(python, [Path.Combine(peersDirectory, script), .. args, "--out", output], TimeSpan.FromMinutes(15));
            if (stdout is null || !File.Exists(output))
            {
                errors.Add($"{script} {string.Join(' ', args)} failed (run it by hand to see why)");
                continue;
            }

            using var doc = JsonDocument.Parse(File.ReadAllText(output));
            File.Delete(output);
            foreach (var result in doc.RootElement.GetProperty("results").EnumerateObject())
            {
                medians[result.Name] = result.Value.GetProperty("median_ns").GetDouble();
            }

            env = doc.RootElement.GetProperty("env").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.Null ? null : p.Value.GetString());
            if (doc.RootElement.TryGetProperty("epoch", out var e))
            {
                epoch = new EpochTiming(e.GetProperty("seconds").GetDouble(), e.GetProperty("batches").GetInt32(), e.GetProperty("samples").GetInt32(), e.GetProperty("mean_loss").GetDouble());
            }

            log.WriteLine($"peer: {script} done in {clock.Elapsed.TotalSeconds:F0} s");
        }

        CnnEpoch? cnn = null;
        using var c = dataDirectory is null ? null : LastJson(python, peersDirectory, "fashion_cnn.py", ["--threads", all, "--epochs", "1", "--data", dataDirectory], log, errors);
        if (c is not null)
        {
            var e = c.RootElement.GetProperty("epochs")[0];
            cnn = new CnnEpoch(e.GetProperty("seconds").GetDouble(), e.GetProperty("steps").GetInt32(), e.GetProperty("mean_loss").GetDouble(), e.GetProperty("test_accuracy").GetDouble());
        }

        GptTiming? gpt = null;
        var steps = gptSteps.ToString(CultureInfo.InvariantCulture);
        using var g = wordList is null ? null : LastJson(python, peersDirectory, "char_gpt.py", ["--threads", all, "--steps", steps, "--every", steps, "--words", wordList], log, errors);
        if (g is not null)
        {
            var entry = g.RootElement.GetProperty("log")[0];
            gpt = new GptTiming(entry.GetProperty("ms_per_step").GetDouble(), gptSteps, g.RootElement.GetProperty("parameters").GetInt64(), entry.GetProperty("train").GetDouble());
        }

        return new PeerResults(torch[0], package, torch[1], medians, epoch, env, errors) { Cnn = cnn, Gpt = gpt };
    }

    /// <summary>Runs a peer that prints its results as JSON on its last line of output, and parses that line.</summary>
    private static JsonDocument? LastJson(string python, string peersDirectory, string script, string[] args, TextWriter log, List<string> errors)
    {
        log.WriteLine($"peer: {python} {script} {string.Join(' ', args)}");
        var clock = Stopwatch.StartNew();
        var stdout = Machine.Run(python, [Path.Combine(peersDirectory, script), .. args], TimeSpan.FromMinutes(15));
        var last = stdout?.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault(l => l.StartsWith('{'));
        if (last is null)
        {
            errors.Add($"{script} {string.Join(' ', args)} failed (run it by hand to see why)");
            return null;
        }

        log.WriteLine($"peer: {script} done in {clock.Elapsed.TotalSeconds:F0} s");
        return JsonDocument.Parse(last);
    }
}
