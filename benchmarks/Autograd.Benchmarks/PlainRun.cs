using System.Diagnostics;
using System.Globalization;
using System.Runtime;
using System.Text.Json;
using Autograd.Nn.Optim;

namespace Autograd.Benchmarks;

/// <summary>The timing of one workload in a plain program: per-call medians over the batches of a stretch of time.</summary>
/// <param name="Workload">The workload's name (<see cref="PlainRun.Workloads"/>).</param>
/// <param name="CallsPerBatch">Calls per timed batch, chosen after the warm-up so that a batch lasts about 1 ms.</param>
/// <param name="Batches">Timed batches.</param>
/// <param name="MedianNs">The median over all batches of the batch's time ÷ its calls.</param>
/// <param name="FirstSecondNs">The same median over the batches that started in the first second of the measurement.</param>
/// <param name="LastSecondNs">The same median over the batches that started in its last second.</param>
/// <param name="MinNs">The fastest batch, per call.</param>
public sealed record PlainTiming(string Workload, int CallsPerBatch, int Batches, double MedianNs, double FirstSecondNs, double LastSecondNs, double MinNs);

/// <summary>What one plain-program child process reported about itself and its workloads.</summary>
/// <param name="Gc">The GC configuration in effect in the child (<see cref="GC.GetConfigurationVariables"/>, latency mode).</param>
/// <param name="ProcessorCount">Environment.ProcessorCount in the child.</param>
/// <param name="VectorBits">The vector width the child's runtime used.</param>
/// <param name="Timings">One per workload.</param>
/// <param name="QuickJitForLoops">Whether methods with loops started in unoptimized code in the child (<see cref="PlainRun.QuickJitForLoopsInEffect"/>).</param>
public sealed record PlainReport(string Gc, int ProcessorCount, int VectorBits, IReadOnlyList<PlainTiming> Timings, bool QuickJitForLoops);

/// <summary>One setting the plain program ran in: its name, the environment it was given and what it reported (or why not).</summary>
public sealed record PlainResult(PlainSetting Setting, PlainReport? Report, string? Error);

/// <summary>
/// <c>--plain [WORKLOAD|all] [--warmup S] [--seconds S] [--smoke]</c>: runs workloads the way a user's console program
/// does, outside BenchmarkDotNet: a Stopwatch, a warm-up (0.5 s), then batches of about 1 ms (several calls per batch
/// when a call is shorter) for about 2 s; per workload the median time per call over all batches, over the batches of
/// the first second and over those of the last second (a kernel stuck in slow code shows as a first second slower than
/// the last). <c>--smoke</c> times one call of each, as a check that they run. The child prints one JSON line;
/// <see cref="RunSettings"/> runs it as child processes in the <see cref="PlainSetting"/>s and collects those lines.
/// </summary>
public static class PlainRun
{
    /// <summary>The prefix of the line that carries the child's <see cref="PlainReport"/> as JSON.</summary>
    public const string ReportPrefix = "plain-report: ";

    /// <summary>The workloads: name, what the report calls it, the BenchmarkDotNet/PyTorch key of the same work (null: none) and its set-up.</summary>
    public static readonly (string Name, string Title, string? Key, Func<Func<object>> Setup)[] Workloads =
    [
        ("softmax", "softmax fwd+bwd, float32, 1024×1024", "softmax/fwdbwd/fused/f32/1024x1024", Softmax),
        ("softmaxscope", "softmax fwd+bwd, float32, 1024×1024, each call in a TensorScope", "softmax/fwdbwd/fusedscoped/f32/1024x1024", () => InScope(Softmax())),
        ("matmul256", "matmul float32 256×256×256", $"matmul/matmul/f32/256x256x256/t{Environment.ProcessorCount}", () => MatMul(256)),
        ("matmul512", "matmul float32 512×512×512", $"matmul/matmul/f32/512x512x512/t{Environment.ProcessorCount}", () => MatMul(512)),
        ("conv", "Conv2d fwd+bwd 32→64 3×3 on [64, 32, 14, 14], float32", "LayerBenchmarks/Conv2d_ForwardBackward/large", Conv),
        ("mlpstep", "MLP training step (784-256-128-10, batch 64, Adam)", "training/step", MlpStep),
        ("mlpstepscope", "MLP training step (784-256-128-10, batch 64, Adam), each step in a TensorScope", "training/stepscoped", () => InScope(MlpStep())),
    ];

    /// <summary>The child: runs the workloads asked for and prints a <see cref="PlainReport"/> line. Exit 2 on bad arguments.</summary>
    public static int Child(string[] args)
    {
        var names = new List<string>();
        double warmup = 0.5, seconds = 2;
        var smoke = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--warmup" when i + 1 < args.Length: warmup = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--seconds" when i + 1 < args.Length: seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--smoke": smoke = true; break;
                case "all": names.AddRange(Workloads.Select(w => w.Name)); break;
                default:
                    if (!Workloads.Any(w => w.Name == args[i]))
                    {
                        Console.Error.WriteLine($"--plain: unknown argument '{args[i]}'; use all or {string.Join(", ", Workloads.Select(w => w.Name))}, --warmup S, --seconds S, --smoke");
                        return 2;
                    }

                    names.Add(args[i]);
                    break;
            }
        }

        if (names.Count == 0)
        {
            names.AddRange(Workloads.Select(w => w.Name));
        }

        var timings = new List<PlainTiming>();
        foreach (var name in names)
        {
            var call = Workloads.Single(w => w.Name == name).Setup();
            var timing = smoke ? Smoke(name, call) : Measure(name, call, warmup, seconds);
            timings.Add(timing);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"plain: {name}: median {ReportWriter.Time(timing.MedianNs)}, first second {ReportWriter.Time(timing.FirstSecondNs)}, last second {ReportWriter.Time(timing.LastSecondNs)} ({timing.Batches} batches of {timing.CallsPerBatch} calls)"));
        }

        var report = new PlainReport(GcInEffect(), Environment.ProcessorCount, VectorPath.CurrentBits, timings, QuickJitForLoopsInEffect());
        Console.WriteLine(ReportPrefix + JsonSerializer.Serialize(report));
        return 0;
    }

    /// <summary>The GC configuration in effect in this process, as the GC itself reports it (environment variables included).</summary>
    public static string GcInEffect()
    {
        var gc = GC.GetConfigurationVariables();
        string Get(string name) => gc.TryGetValue(name, out var v) ? Convert.ToString(v, CultureInfo.InvariantCulture) ?? "?" : "?";
        var region = Get("GCRegionSize");
        return $"{(Get("ServerGC") == "True" ? "server" : "workstation")}, {(Get("ConcurrentGC") == "True" ? "concurrent" : "non-concurrent")} " +
            $"(latency mode {GCSettings.LatencyMode}), region size {(region == "0" ? "default" : region)}, region range {Get("GCRegionRange")}, LOH threshold {Get("LOHThreshold")}";
    }

    /// <summary>
    /// Whether methods with loops start in unoptimized code in this process: DOTNET_TC_QuickJitForLoops (or its COMPlus_
    /// name) if set, else the runtimeconfig.json option System.Runtime.TieredCompilation.QuickJitForLoops, else the
    /// runtime's default (on). The runtime has no API that reports it.
    /// </summary>
    public static bool QuickJitForLoopsInEffect()
    {
        var variable = Environment.GetEnvironmentVariable("DOTNET_TC_QuickJitForLoops") ?? Environment.GetEnvironmentVariable("COMPlus_TC_QuickJitForLoops");
        if (!string.IsNullOrWhiteSpace(variable))
        {
            return variable.Trim() != "0";
        }

        var option = AppContext.GetData("System.Runtime.TieredCompilation.QuickJitForLoops") as string;
        return option is null || !option.Trim().Equals("false", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Runs <c>--plain all</c> as a child process in each setting (this program again, the settings' variables set over
    /// the inherited environment) and returns what each reported. <paramref name="smoke"/> passes <c>--smoke</c>.
    /// </summary>
    public static List<PlainResult> RunSettings(IReadOnlyList<PlainSetting> settings, bool smoke, TextWriter log)
    {
        var results = new List<PlainResult>();
        foreach (var setting in settings)
        {
            var info = VectorPath.ChildStartInfo(smoke ? ["--plain", "all", "--smoke"] : ["--plain", "all"]);
            info.RedirectStandardError = true;
            foreach (var (name, value) in setting.Environment)
            {
                info.Environment[name] = value;
            }

            log.WriteLine($"plain: {setting.Name} ({setting.EnvironmentText})");
            string? error = null;
            PlainReport? report = null;
            try
            {
                var (json, exitCode, stderr) = VectorPath.RunForResult(info, ReportPrefix, line => log.WriteLine("  " + line));
                report = json is null ? null : JsonSerializer.Deserialize<PlainReport>(json);
                if (exitCode != 0 || report is null)
                {
                    error = $"the plain program in setting '{setting.Name}' exited with {exitCode}{(report is null ? " without a report" : "")}: {stderr}";
                }
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or JsonException)
            {
                error = $"the plain program in setting '{setting.Name}' failed: {e.Message}";
            }

            if (report is not null)
            {
                log.WriteLine($"  GC in the child: {report.Gc}; {report.ProcessorCount} processor{(report.ProcessorCount == 1 ? "" : "s")}; {report.VectorBits}-bit vectors; quick JIT for loops {(report.QuickJitForLoops ? "on" : "off")}");
            }

            results.Add(new PlainResult(setting, report, error));
        }

        return results;
    }

    /// <summary>Times <paramref name="call"/> as described in the class summary.</summary>
    public static PlainTiming Measure(string name, Func<object> call, double warmupSeconds, double seconds)
    {
        object? sink = null;
        var clock = Stopwatch.StartNew();
        var fastest = double.MaxValue;
        do
        {
            var t0 = clock.Elapsed;
            sink = call();
            fastest = Math.Min(fastest, (clock.Elapsed - t0).TotalNanoseconds);
        }
        while (clock.Elapsed.TotalSeconds < warmupSeconds);

        var calls = (int)Math.Clamp(Math.Round(1e6 / Math.Max(fastest, 1)), 1, 1_000_000);
        var starts = new List<double>();
        var perCall = new List<double>();
        clock.Restart();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            var b0 = clock.Elapsed;
            for (var c = 0; c < calls; c++)
            {
                sink = call();
            }

            starts.Add(b0.TotalSeconds);
            perCall.Add((clock.Elapsed - b0).TotalNanoseconds / calls);
        }

        GC.KeepAlive(sink);
        var end = clock.Elapsed.TotalSeconds;
        var first = perCall.Where((_, i) => starts[i] < Math.Min(1, end / 2)).ToList();
        var last = perCall.Where((_, i) => starts[i] >= Math.Max(end - 1, end / 2)).ToList();
        return new PlainTiming(name, calls, perCall.Count, Median(perCall), Median(first.Count > 0 ? first : perCall), Median(last.Count > 0 ? last : perCall), perCall.Min());
    }

    /// <summary>The median of a non-empty list (the mean of the middle two for an even count).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static PlainTiming Smoke(string name, Func<object> call)
    {
        var watch = Stopwatch.StartNew();
        GC.KeepAlive(call());
        var ns = watch.Elapsed.TotalNanoseconds;
        return new PlainTiming(name, 1, 1, ns, ns, ns, ns);
    }

    private static Func<object> Softmax()
    {
        var x = Tensor.RandN(new Shape(1024, 1024), Benchmarks.Workloads.Seed, DType.Float32).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(1024, 1024), Benchmarks.Workloads.Seed + 1, DType.Float32);
        return () => Autodiff.Grad(x.Softmax(-1), x, g);
    }

    /// <summary>The workload <paramref name="call"/>, each call inside a <see cref="TensorScope"/>.</summary>
    private static Func<object> InScope(Func<object> call) => () =>
    {
        using (Tensor.NewScope())
        {
            return call();
        }
    };

    private static Func<object> MatMul(int n)
    {
        var a = Tensor.RandN(new Shape(n, n), Benchmarks.Workloads.Seed, DType.Float32);
        var b = Tensor.RandN(new Shape(n, n), Benchmarks.Workloads.Seed + 1, DType.Float32);
        return () => a.MatMul(b);
    }

    private static Func<object> Conv()
    {
        var seed = Benchmarks.Workloads.Seed;
        var x = Tensor.RandN(new Shape(64, 32, 14, 14), seed, DType.Float32).WithRequiresGrad();
        var w = Tensor.RandN(new Shape(64, 32, 3, 3), seed + 1, DType.Float32, std: 0.1).WithRequiresGrad();
        var b = Tensor.RandN(new Shape(64), seed + 2, DType.Float32).WithRequiresGrad();
        var g = Tensor.RandN(new Shape(64, 64, 14, 14), seed + 3, DType.Float32);
        return () => Autodiff.Grad([x.Conv2d(w, b, padding: 1)], [x, w, b], [g]);
    }

    private static Func<object> MlpStep()
    {
        var model = Mlp.Create(seed: 1);
        var optimizer = new Adam(model.Parameters(), learningRate: 1e-3);
        var (images, labels) = Mlp.SyntheticBatch(Benchmarks.Workloads.BatchSize, Benchmarks.Workloads.Seed);
        return () => Mlp.Step(model, optimizer, images, labels);
    }
}
