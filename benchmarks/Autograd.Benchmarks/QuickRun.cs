using System.Diagnostics;
using System.Globalization;
using Autograd.Nn.Data;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Running;

namespace Autograd.Benchmarks;

/// <summary>
/// <c>--quick</c>: every benchmark once, in this process (BenchmarkDotNet's Dry job), then the epoch timer on a small
/// synthetic data set, one call of each plain-program workload in a child process per setting, the section merge of
/// docs/benchmarks.md and the report writer on those figures, so a broken benchmark or report fails CI. Times are not
/// checked; <c>--out PATH</c> writes the report of those figures to PATH (merged into it like a real run) as a preview.
/// BenchmarkDotNet's log is printed only for a class that failed. Exits 1 on any failure.
/// </summary>
public static class QuickRun
{
    public static int Run(string[] args)
    {
        var artifacts = Path.Combine(Path.GetTempPath(), $"autograd-benchmarks-quick-{Environment.ProcessId}");
        var failures = new List<string>();
        var measurements = new Dictionary<string, Measurement>();
        var clock = Stopwatch.StartNew();
        var total = 0;
        var outAt = Array.IndexOf(args, "--out");
        var outPath = outAt >= 0 && outAt + 1 < args.Length ? Path.GetFullPath(args[outAt + 1]) : null;
        var filter = args.Where((_, i) => outAt < 0 || (i != outAt && i != outAt + 1)).FirstOrDefault();
        foreach (var type in Suite.QuickClasses.Where(t => filter is null || t.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)))
        {
            var log = new AccumulationLogger();
            var config = Suite.Config(Suite.QuickJob, log, artifacts, exporters: false)
                .WithOptions(BenchmarkDotNet.Configs.ConfigOptions.DisableOptimizationsValidator | BenchmarkDotNet.Configs.ConfigOptions.DisableLogFile);
            var summary = BenchmarkRunner.Run(type, config);
            var problems = Suite.Problems(summary);
            total += summary.BenchmarksCases.Length;
            foreach (var m in Results.From(summary))
            {
                measurements[m.Key] = m;
            }

            Console.WriteLine($"quick: {type.Name}: {summary.BenchmarksCases.Length - problems.Count} of {summary.BenchmarksCases.Length} benchmarks ran ({clock.Elapsed.TotalSeconds:F0} s so far)");
            if (problems.Count > 0)
            {
                Console.WriteLine($"quick: {type.Name} failed; from BenchmarkDotNet's log:");
                Console.WriteLine(Excerpt(log.GetLog()));
                foreach (var problem in problems)
                {
                    Console.WriteLine($"quick: {type.Name}: {problem}");
                }

                failures.AddRange(problems.Select(p => $"{type.Name}: {p}"));
            }
        }

        if (filter is null)
        {
            failures.AddRange(CheckEpochAndReport(measurements, outPath));
        }

        Console.WriteLine($"quick: {total} benchmarks, {failures.Count} problems, {clock.Elapsed.TotalSeconds:F0} s");
        foreach (var failure in failures)
        {
            Console.Error.WriteLine($"quick: {failure}");
        }

        try
        {
            Directory.Delete(artifacts, recursive: true);
        }
        catch (IOException)
        {
        }

        return failures.Count == 0 ? 0 : 1;
    }

    /// <summary>The log lines that mention an exception or error, with what follows them; else the log's last lines.</summary>
    private static string Excerpt(string log)
    {
        var lines = log.Split('\n');
        var keep = new SortedSet<int>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Contains("Exception", StringComparison.Ordinal) || lines[i].Contains("error", StringComparison.OrdinalIgnoreCase))
            {
                for (var j = Math.Max(0, i - 3); j < Math.Min(lines.Length, i + 20); j++)
                {
                    keep.Add(j);
                }
            }
        }

        return keep.Count > 0
            ? string.Join('\n', keep.Take(400).Select(i => lines[i]))
            : string.Join('\n', lines.TakeLast(120));
    }

    private static List<string> CheckEpochAndReport(Dictionary<string, Measurement> measurements, string? outPath)
    {
        var failures = new List<string>();
        var epoch = Mlp.TimeEpoch(Mlp.SyntheticDataset(8 * Workloads.BatchSize, Workloads.Seed), warmupSteps: 2);
        if (epoch.Batches != 8 || !double.IsFinite(epoch.MeanLoss) || epoch.Seconds <= 0)
        {
            failures.Add($"epoch timer: expected 8 batches and a finite loss, got {epoch}");
        }

        Console.WriteLine($"quick: epoch timer on 512 synthetic images: {epoch.Batches} batches, mean loss {epoch.MeanLoss:F4}");
        var cnn = Networks.TimeEpoch(Networks.Cnn, Networks.AsImages, Mlp.SyntheticDataset(2 * Workloads.BatchSize, Workloads.Seed), warmupSteps: 1);
        if (cnn.Batches != 2 || !double.IsFinite(cnn.MeanLoss))
        {
            failures.Add($"CNN epoch timer: expected 2 batches and a finite loss, got {cnn}");
        }

        var words = Path.Combine(Path.GetTempPath(), $"autograd-quick-words-{Environment.ProcessId}.txt");
        GptTiming gpt;
        try
        {
            File.WriteAllLines(words, Enumerable.Range(0, 200).Select(i => $"word{i % 17}{(char)('a' + (i % 26))}"));
            gpt = Networks.TimeGptSteps(CharCorpus.Load(words), steps: 3, warmupSteps: 1);
        }
        finally
        {
            File.Delete(words);
        }

        if (gpt.Steps != 3 || !double.IsFinite(gpt.MeanLoss) || gpt.MsPerStep <= 0)
        {
            failures.Add($"GPT step timer: expected 3 steps and a finite loss, got {gpt}");
        }

        Console.WriteLine($"quick: CNN epoch timer {cnn.Batches} batches, mean loss {cnn.MeanLoss:F4}; GPT step timer {gpt.Steps} steps, mean loss {gpt.MeanLoss:F4}");
        var checkpoint = CheckpointMemory.Measure();
        Console.WriteLine($"quick: checkpointing: {checkpoint}");
        if (!checkpoint.GradientsEqual || checkpoint.CheckpointedBytes >= checkpoint.PlainBytes)
        {
            failures.Add($"checkpointing: expected less memory kept and bitwise equal gradients, got {checkpoint}");
        }

        var plain = PlainRun.RunSettings(PlainSetting.ForReport(ReportRun.RepositoryRoot()), smoke: true, Console.Out);
        foreach (var r in plain)
        {
            if (r.Error is not null || r.Report is null || r.Report.Timings.Count != PlainRun.Workloads.Length)
            {
                failures.Add($"plain program ({r.Setting.Name}): {r.Error ?? "not every workload reported"}");
            }
        }

        if (plain.FirstOrDefault(r => r.Setting.Name == "one CPU")?.Report is { ProcessorCount: not 1 } oneCpu)
        {
            failures.Add($"plain program (one CPU): the child saw {oneCpu.ProcessorCount} processors");
        }

        if (plain.FirstOrDefault(r => r.Setting.Name == "defaults")?.Report is { } defaults && !defaults.Gc.Contains(", concurrent", StringComparison.Ordinal))
        {
            failures.Add($"plain program (defaults): the child's GC is not concurrent: {defaults.Gc}");
        }

        failures.AddRange(CheckSections());
        failures.AddRange(CheckVectorPath());
        var machine = Machine.Collect(null);
        Console.WriteLine($"quick: machine: {machine.Cpu} ({machine.Vendor}, {machine.CpuKind}; {machine.FamilyModel}); {machine.VectorPathText}; {machine.InstructionSets}; caches {string.Join(", ", machine.Caches)}");
        var lim = machine.Limits;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"quick: measured limits: {lim.VectorBits}-bit vectors, {lim.PeakGflopsPerCoreF32:F0} GFLOP/s per core (float32 {(lim.Fused ? "FMA" : "multiply-add")}), memory {lim.MemoryGBps:F1} GB/s, L2 {lim.L2GBps:F0} GB/s"));
        if (!(lim.PeakGflopsPerCoreF32 > 0 && lim.MemoryGBps > 0 && lim.L2GBps > 0 && double.IsFinite(lim.PeakGflopsPerCoreF32 + lim.MemoryGBps + lim.L2GBps)))
        {
            failures.Add($"machine limits: not measured ({lim})");
        }

        var markdown = ReportWriter.Render(new ReportData(machine, measurements, null, epoch, "(quick mode: synthetic data)", []) { OurCnn = cnn, OurGpt = gpt, Plain = plain, LimitsAtEnd = lim with { MemoryGBps = 12.5 } });
        if (!markdown.Contains("again at the end of the run", StringComparison.Ordinal) || !markdown.Contains("12.5 GB/s from memory", StringComparison.Ordinal))
        {
            failures.Add("report writer: the limits measured at the end of the run are missing from the machine table");
        }

        foreach (var heading in new[] { "## How it is measured", "### Targets", "### The speed a plain program gets", "#### forward", "## 1. Softmax", "## 2. Tape overhead", "## 3. MatMul", "## 4. Training step", "## 5. Layers", "## 6. Small networks" })
        {
            if (!markdown.Contains(heading, StringComparison.Ordinal))
            {
                failures.Add($"report writer: the report lacks '{heading}'");
            }
        }

        foreach (var key in new[] { "softmax/fwdbwd/fused/f32/1024x1024", "softmax/fwdbwd/logsumexp/f32/1024x1024", "tape/fwdbwd", $"matmul/matmul/f32/512x512x512/t{Environment.ProcessorCount}", "training/step", "LayerBenchmarks/Conv2d_ForwardBackward/large", "LayerBenchmarks/Attention_Fused/small" })
        {
            if (!measurements.ContainsKey(key))
            {
                failures.Add($"report: no measurement under the key '{key}'");
            }
        }

        if (ReportSections.Parse(markdown) is not [{ } only] || only.Key != machine.SectionKey)
        {
            failures.Add($"report writer: expected one section keyed '{machine.SectionKey}'");
        }

        Console.WriteLine($"quick: report writer produced {markdown.Length} characters");
        if (outPath is not null)
        {
            // A preview of the report with the quick figures, merged into the file at that path like a real run.
            File.WriteAllText(outPath, ReportWriter.Render(new ReportData(machine, measurements, null, epoch, "(quick mode: synthetic data)", []) { OurCnn = cnn, OurGpt = gpt, Plain = plain },
                File.Exists(outPath) ? File.ReadAllText(outPath) : null));
            Console.WriteLine($"quick: wrote the section '{machine.SectionKey}' of {outPath} (quick figures, not measurements)");
        }

        return failures;
    }

    /// <summary>The <c>--isa</c> checks that need no child: refusals, and the descriptions of narrowed paths.</summary>
    private static List<string> CheckVectorPath()
    {
        var failures = new List<string>();
        if (VectorPath.Plan(["--quick", "--isa", "avx512"], "fpu sse2 avx avx2 fma") is not { Error: not null })
        {
            failures.Add("--isa: avx512 on a CPU whose flags stop at AVX2 was not refused");
        }

        if (VectorPath.Plan(["--quick", "--isa", "sse9"], "") is not { Error: not null })
        {
            failures.Add("--isa: an unknown name was not refused");
        }

        if (VectorPath.Plan(["--quick", "--isa", "AVX2", "--out", "x"], "sse2 avx2 fma") is not (256, ["--quick", "--out", "x"], null))
        {
            failures.Add("--isa: avx2 on an AVX2 CPU was not planned as 256-bit without the switch in the arguments");
        }

        foreach (var (bits, hardware, expected) in new[]
        {
            (512, 512, "512-bit"),
            (256, 512, "256-bit on an AVX-512 CPU (DOTNET_EnableAVX512=0)"),
            (128, 256, "128-bit on an AVX2 CPU (DOTNET_EnableAVX2=0)"),
            (128, 128, "128-bit"),
        })
        {
            if (VectorPath.Describe(bits, hardware) != expected)
            {
                failures.Add($"--isa: Describe({bits}, {hardware}) is '{VectorPath.Describe(bits, hardware)}', expected '{expected}'");
            }
        }

        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture is System.Runtime.InteropServices.Architecture.X64
            && (VectorPath.PeerLimits(512, 512).Count != 0
                || !VectorPath.PeerLimits(256, 512).Contains(("ONEDNN_MAX_CPU_ISA", "AVX2"))
                || !VectorPath.PeerLimits(128, 256).Contains(("ATEN_CPU_CAPABILITY", "default"))))
        {
            failures.Add("--isa: PeerLimits does not hold PyTorch to exactly the narrowed path (none on the CPU's own width, AVX2 for 256-bit, SSE for 128-bit)");
        }

        Console.WriteLine($"quick: --isa checks {(failures.Count == 0 ? "ok" : "FAILED")}");
        return failures;
    }

    /// <summary>The section merge: a run replaces its own section in place, keeps the others and rewrites the top.</summary>
    private static List<string> CheckSections()
    {
        var failures = new List<string>();
        var file = ReportSections.Merge(null, "# T\n\nold top\n", "A | cpu | 512-bit", "## A\n\nfirst A\n");
        file = ReportSections.Merge(file, "# T\n\nold top\n", "B | cpu | 256-bit on an AVX-512 CPU (DOTNET_EnableAVX512=0)", "## B\n\nfirst B\n");
        file = ReportSections.Merge(file, "# T\n\nnew top\n", "A | cpu | 512-bit", "## A\n\nsecond A\n");
        var sections = ReportSections.Parse(file);
        if (sections.Count != 2 || sections[0].Key != "A | cpu | 512-bit" || !sections[0].Text.Contains("second A", StringComparison.Ordinal)
            || sections[1].Title != "B" || !sections[1].Text.Contains("first B", StringComparison.Ordinal)
            || !file.StartsWith("# T\n\nnew top\n", StringComparison.Ordinal) || file.Contains("old top", StringComparison.Ordinal) || file.Contains("first A", StringComparison.Ordinal))
        {
            failures.Add($"report sections: the merge did not replace A and keep B:\n{file}");
        }

        if (ReportSections.Parse("# Benchmarks\n\nno markers\n").Count != 0)
        {
            failures.Add("report sections: a file without markers has no sections");
        }

        // Two CPUs that a virtual machine names alike get sections of their own: the key holds their kind.
        (string? Vendor, string Family, string Model, string? Expected)[] kinds =
        [
            ("AuthenticAMD", "25", "1", "Zen 3: family 25, model 1"),
            ("AuthenticAMD", "25", "17", "Zen 4: family 25, model 17"),
            ("AuthenticAMD", "26", "2", "Zen 5: family 26, model 2"),
            ("GenuineIntel", "6", "143", "Sapphire Rapids: family 6, model 143"),
            ("AuthenticAMD", "99", "1", "family 99, model 1"),
        ];
        foreach (var (vendor, family, model, expected) in kinds)
        {
            if (Microarchitecture.Kind(vendor, family, model, null) is var kind && kind != expected)
            {
                failures.Add($"report sections: {vendor} family {family} model {model} is '{kind}', expected '{expected}'");
            }
        }

        if (Microarchitecture.Kind(null, null, null, "0xd0c") != "part 0xd0c" || Microarchitecture.Kind(null, null, null, null) is not null)
        {
            failures.Add("report sections: an ARM part or an unknown CPU is not named as such");
        }

        Console.WriteLine($"quick: report sections: {(failures.Count == 0 ? "merge ok" : "merge FAILED")}");
        return failures;
    }
}
