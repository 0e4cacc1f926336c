using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Autograd.Nn.Data;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Running;

namespace Autograd.Benchmarks;

/// <summary>
/// <c>--report</c>: runs our side with a moderate job, then the PyTorch peers, times one Fashion-MNIST epoch on each
/// side (the MLP and the CNN) when the data set is installed, times <see cref="GptSteps"/> steps of the character-level GPT
/// on each side when the word list is installed, times the plain-program workloads in child processes
/// (<see cref="PlainRun"/>, one per <see cref="PlainSetting"/>), and writes this machine's section of docs/benchmarks.md,
/// keeping the sections of other machines (<see cref="ReportSections"/>). Options: <c>--out PATH</c>, <c>--python PATH</c>
/// (default /usr/bin/python3), <c>--no-peers</c>, <c>--no-plain</c>, <c>--data DIR</c>, <c>--words FILE</c>.
/// </summary>
public static class ReportRun
{
    /// <summary>The GPT training steps timed on each side.</summary>
    public const int GptSteps = 300;

    public static int Run(string[] args)
    {
        var root = RepositoryRoot();
        string? outPath = null;
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        var peers = true;
        var plain = true;
        var dataDir = FashionMnist.DefaultDirectory;
        var words = CharCorpus.DefaultWordList;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out": outPath = Path.GetFullPath(args[++i]); break;
                case "--python": python = args[++i]; break;
                case "--no-peers": peers = false; break;
                case "--no-plain": plain = false; break;
                case "--data": dataDir = Path.GetFullPath(args[++i]); break;
                case "--words": words = Path.GetFullPath(args[++i]); break;
                default:
                    Console.Error.WriteLine($"report: unknown argument '{args[i]}'; use --out PATH, --python PATH, --no-peers, --no-plain, --data DIR, --words FILE");
                    return 2;
            }
        }

        outPath ??= Path.Combine(root, "docs", "benchmarks.md");
        var clock = Stopwatch.StartNew();
        if (peers && VectorPath.LimitPeers(Machine.CpuFlags()) is { Count: > 0 } limits)
        {
            Console.WriteLine($"report: PyTorch held to the same vector path: {string.Join(", ", limits.Select(l => $"{l.Name}={l.Value}"))}");
        }

        var machine = Machine.Collect(root);
        Console.WriteLine($"report: {machine.Cpu} ({machine.Vendor}, {machine.CpuKind}), {machine.VectorPathText}; {machine.InstructionSets}; {string.Join(", ", machine.Caches)}");
        var ours = new Dictionary<string, Measurement>();
        var problems = new List<string>();

        foreach (var type in Suite.Classes)
        {
            var count = Cases(type, NullLogger.Instance).BenchmarksCases.Length;
            for (var i = 0; i < count; i++)
            {
                var (measurements, failures) = RunCase(type, i);
                problems.AddRange(failures);
                foreach (var m in measurements)
                {
                    ours[m.Key] = m;
                }
            }

            Console.WriteLine($"report: {type.Name} done after {clock.Elapsed.TotalMinutes:F1} min ({count} benchmarks, one process each)");
        }

        List<PlainResult>? plainResults = null;
        if (plain)
        {
            Console.WriteLine("report: timing the plain-program workloads in child processes");
            plainResults = PlainRun.RunSettings(PlainSetting.ForReport(root), smoke: false, Console.Out);
            problems.AddRange(plainResults.Where(r => r.Error is not null).Select(r => r.Error!));
        }

        EpochTiming? epoch = null;
        EpochTiming? cnn = null;
        string? epochNote = null;
        FashionMnistData? data = null;
        try
        {
            data = FashionMnist.Load(dataDir);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or InvalidDataException)
        {
            epochNote = $"The epoch was not timed: {e.Message}";
        }

        if (data is not null)
        {
            Console.WriteLine($"report: timing one epoch over {data.Train.Count} images from {data.Directory}");
            epoch = Mlp.TimeEpoch(data.Train);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"report: epoch {epoch.Seconds:F2} s, mean loss {epoch.MeanLoss:F4}"));
            Console.WriteLine("report: timing one epoch of the CNN");
            cnn = Networks.TimeEpoch(Networks.Cnn, Networks.AsImages, data.Train);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"report: CNN epoch {cnn.Seconds:F2} s, mean loss {cnn.MeanLoss:F4}"));
        }

        GptTiming? gpt = null;
        string? gptNote = null;
        try
        {
            var corpus = CharCorpus.Load(words);
            Console.WriteLine($"report: timing {GptSteps} GPT training steps on {words}");
            gpt = Networks.TimeGptSteps(corpus, GptSteps);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"report: GPT {gpt.MsPerStep:F1} ms per step, mean loss {gpt.MeanLoss:F4}"));
        }
        catch (FileNotFoundException e)
        {
            gptNote = $"The GPT was not timed: {e.Message}";
        }

        PeerResults? peerResults = null;
        if (peers)
        {
            peerResults = Peers.Run(python, Path.Combine(root, "benchmarks", "peers"), Suite.ThreadCounts, data is null ? null : dataDir, Console.Out, gpt is null ? null : words, GptSteps);
            if (peerResults is null)
            {
                Console.Error.WriteLine($"report: '{python}' cannot import torch; writing our side only (apt-get install -y python3-torch libopenblas0-pthread)");
            }
        }

        var checkpoint = CheckpointMemory.MeasureInChild();
        Console.WriteLine($"report: checkpointing: {checkpoint}");
        var existing = File.Exists(outPath) ? File.ReadAllText(outPath) : null;
        if (existing is not null && ReportSections.Parse(existing).Count == 0)
        {
            Console.WriteLine($"report: {outPath} has no machine sections (written before they existed): its old content is replaced");
        }

        var limitsAtEnd = Limits.Measure();
        Console.WriteLine($"report: limits at the end: {limitsAtEnd}");
        var markdown = ReportWriter.Render(new ReportData(machine, ours, peerResults, epoch, epochNote, problems, Machine.ReadLoadAverage())
        {
            LimitsAtEnd = limitsAtEnd,
            OurCnn = cnn,
            OurGpt = gpt,
            GptNote = gptNote,
            Plain = plainResults,
            Checkpoint = checkpoint,
        }, existing);
        Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
        File.WriteAllText(outPath, markdown);
        Console.WriteLine($"report: wrote the section '{machine.SectionKey}' of {outPath} after {clock.Elapsed.TotalMinutes:F1} min");
        foreach (var problem in problems.Concat(peerResults?.Errors ?? []))
        {
            Console.Error.WriteLine($"report: {problem}");
        }

        return problems.Count == 0 && (peerResults?.Errors.Count ?? 0) == 0 ? 0 : 1;
    }

    /// <summary>The directory holding Autograd.sln, searched upwards from this program and then from the current directory.</summary>
    public static string RepositoryRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Autograd.sln")))
                {
                    return dir.FullName;
                }
            }
        }

        return Directory.GetCurrentDirectory();
    }

    /// <summary>The line prefix of a case child's result (JSON), read by <see cref="RunCase"/>.</summary>
    private const string CasePrefix = "report-case: ";

    /// <summary>
    /// <c>--report-case CLASS INDEX</c>: runs benchmark <c>INDEX</c> of <see cref="Cases"/> of the class named CLASS with
    /// BenchmarkDotNet in this process, and prints its measurement and problems as one JSON line. The report runs every
    /// benchmark this way, in a process of its own, as BenchmarkDotNet does by default: in one shared process each
    /// benchmark inherited the collector's state from the ones before it (a young generation sized by the convolutions
    /// made layer norm [1024, 64] take 74 µs instead of its 38 µs alone, and a JVP that followed the layers took 2.6 ms
    /// instead of 0.37 ms while the collector settled).
    /// </summary>
    public static int Case(string[] args)
    {
        if (args is not [var name, var index] || Suite.Classes.FirstOrDefault(t => t.Name == name) is not { } type
            || !int.TryParse(index, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i))
        {
            Console.Error.WriteLine("--report-case: use --report-case CLASS INDEX");
            return 2;
        }

        var all = Cases(type, ConsoleLogger.Default);
        if (i < 0 || i >= all.BenchmarksCases.Length)
        {
            Console.Error.WriteLine($"--report-case: {name} has {all.BenchmarksCases.Length} benchmarks, no index {i}");
            return 2;
        }

        var benchmark = all.BenchmarksCases[i];
        var perCall = Settle(benchmark, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4));
        var summary = BenchmarkRunner.Run(new BenchmarkRunInfo([WithSteadyInvocations(benchmark, perCall)], all.Type, all.Config));
        var result = new CaseResult([.. Results.From(summary)], Suite.Problems(summary));
        Console.WriteLine(CasePrefix + JsonSerializer.Serialize(result));
        return 0;
    }

    /// <summary>
    /// Calls the benchmark's method on an instance of its own (parameters set, global setup and cleanup run) before
    /// BenchmarkDotNet starts, as a program's own loop warms up, and returns the fastest of its last 2 ×
    /// <see cref="SettleCalls"/> calls (the calls per iteration are set from it, so an iteration lasts at least the
    /// iteration time; a median taken while the collector still settled set 43 to 968 calls for the same benchmark,
    /// iterations of 6 ms to 130 ms). It calls for at least <paramref name="duration"/> and 2 ×
    /// <see cref="SettleCalls"/> times, then on until that median is no longer below 0.9 times the median of the calls
    /// before them, or for at most <paramref name="limit"/>. A new process starts with a small young generation on
    /// unmapped memory: without this, BenchmarkDotNet's pilot timed the first calls (softmax 1024×1024 fwd+bwd at
    /// several times its steady cost), chose too few calls per iteration, and the measured iterations watched the
    /// collector settle. A call that allocates a lot needs longer: softmax fwd+bwd 1024×1024 float64 (16 MB a call)
    /// still took 14–20 ms per call after 0.5 s, and 1.5 ms from about 2 s on.
    /// </summary>
    private static TimeSpan Settle(BenchmarkCase benchmark, TimeSpan duration, TimeSpan limit)
    {
        var descriptor = benchmark.Descriptor;
        var instance = Activator.CreateInstance(descriptor.Type)!;
        foreach (var parameter in benchmark.Parameters.Items)
        {
            if (descriptor.Type.GetProperty(parameter.Name) is { } property)
            {
                property.SetValue(instance, parameter.Value);
            }
            else
            {
                descriptor.Type.GetField(parameter.Name)?.SetValue(instance, parameter.Value);
            }
        }

        descriptor.GlobalSetupMethod?.Invoke(instance, null);
        // The last 2 × SettleCalls call times, in two windows of SettleCalls that the loop fills in turn; the test to stop
        // runs once a window is full (sorting a scratch copy), not after every call, so the warm-up allocates nothing.
        var times = new long[2 * SettleCalls];
        var scratch = new long[SettleCalls];
        long calls = 0;
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var start = Stopwatch.GetTimestamp();
            descriptor.WorkloadMethod.Invoke(instance, null);
            times[calls++ % times.Length] = Stopwatch.GetTimestamp() - start;
            if (calls % SettleCalls == 0 && calls >= times.Length && clock.Elapsed >= duration
                && (clock.Elapsed >= limit || Median(times, calls, 0, scratch) >= 0.9 * Median(times, calls, SettleCalls, scratch)))
            {
                break;
            }
        }

        descriptor.GlobalCleanupMethod?.Invoke(instance, null);
        return Stopwatch.GetElapsedTime(0, times.Min());
    }

    /// <summary>
    /// The median of <see cref="SettleCalls"/> call times in the ring <paramref name="times"/> after
    /// <paramref name="calls"/> calls: the latest ones, or the ones before them when <paramref name="back"/> is
    /// <see cref="SettleCalls"/>; sorted in <paramref name="window"/>, of <see cref="SettleCalls"/> elements.
    /// </summary>
    private static double Median(long[] times, long calls, int back, long[] window)
    {
        for (var k = 0; k < SettleCalls; k++)
        {
            window[k] = times[(calls - 1 - back - k) % times.Length];
        }

        Array.Sort(window);
        return (window[(SettleCalls - 1) / 2] + window[SettleCalls / 2]) / 2.0;
    }

    /// <summary>The calls over which <see cref="Settle"/> takes the steady cost per call (it makes at least twice as many).</summary>
    private const int SettleCalls = 20;

    /// <summary>The shortest steady call for which <see cref="WithSteadyInvocations"/> replaces the pilot.</summary>
    private static readonly TimeSpan MinSteadyCall = TimeSpan.FromMicroseconds(10);

    /// <summary>
    /// <paramref name="benchmark"/> with as many calls per iteration as fill its iteration time at the cost
    /// <paramref name="perCall"/>, in place of BenchmarkDotNet's pilot stage. The pilot times the benchmark's first calls
    /// on the new instance BenchmarkDotNet makes, whose new tensors land on freshly mapped memory: softmax fwd+bwd
    /// 1024×1024 float64 took 24–31 ms per call there against 1.3–1.7 ms steady, so the pilot chose 4 calls, iterations
    /// of 6 ms, and medians of 1.6–2.5 ms from run to run. A call longer than half an iteration keeps the pilot, and so
    /// does one shorter than <see cref="MinSteadyCall"/>, where the settle's per-call timer and reflection would weigh.
    /// </summary>
    private static BenchmarkCase WithSteadyInvocations(BenchmarkCase benchmark, TimeSpan perCall)
    {
        var iteration = TimeSpan.FromMilliseconds(benchmark.Job.Run.IterationTime.ToMilliseconds());
        if (perCall < MinSteadyCall || perCall > iteration / 2)
        {
            return benchmark;
        }

        var calls = (long)Math.Round(iteration / perCall);
        var job = new Job(benchmark.Job).WithInvocationCount(calls).WithUnrollFactor(1);
        return BenchmarkCase.Create(benchmark.Descriptor, job, benchmark.Parameters, benchmark.Config);
    }

    /// <summary>The report's benchmarks of <paramref name="type"/>, in a fixed order, with the report's job and filter.</summary>
    private static BenchmarkRunInfo Cases(Type type, ILogger logger)
    {
        var config = Suite.Config(Suite.ReportJobFor(type), logger, Path.Combine(RepositoryRoot(), "BenchmarkDotNet.Artifacts"), exporters: false);

        // The row kernel always runs on one thread: measure it once, in the one-thread cases; the blocked kernel is
        // stated against one core's peak, so one thread too.
        config.AddFilter(new SimpleFilter(c => c.Descriptor.WorkloadMethod.Name is not (nameof(MatMulBenchmarks.RowKernel) or nameof(MatMulBenchmarks.Kernel)) || (int)c.Parameters["Threads"] == 1));
        return BenchmarkConverter.TypeToBenchmarks(type, config);
    }

    /// <summary>Runs benchmark <paramref name="index"/> of <paramref name="type"/> in a child process (see <see cref="Case"/>).</summary>
    private static (List<Measurement> Measurements, List<string> Problems) RunCase(Type type, int index)
    {
        var info = VectorPath.ChildStartInfo(["--report-case", type.Name, index.ToString(CultureInfo.InvariantCulture)]);
        try
        {
            var (json, exitCode, _) = VectorPath.RunForResult(info, CasePrefix, Console.WriteLine);
            var result = json is null ? null : JsonSerializer.Deserialize<CaseResult>(json);
            return exitCode != 0 || result is null
                ? ([], [$"failed: {type.Name} benchmark {index}: the child exited with {exitCode}{(result is null ? " without a result" : "")}"])
                : (result.Measurements, result.Problems);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or JsonException)
        {
            return ([], [$"failed: {type.Name} benchmark {index}: {e.Message}"]);
        }
    }

    /// <summary>What a case child reports.</summary>
    private sealed record CaseResult(List<Measurement> Measurements, List<string> Problems);
}
