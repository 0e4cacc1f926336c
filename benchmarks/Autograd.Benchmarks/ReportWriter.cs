using System.Globalization;
using System.Text;

namespace Autograd.Benchmarks;

/// <summary>Everything one report is made of.</summary>
public sealed record ReportData(
    Machine Machine,
    IReadOnlyDictionary<string, Measurement> Ours,
    PeerResults? Peers,
    EpochTiming? OurEpoch,
    string? EpochNote,
    IReadOnlyList<string> Problems,
    string? LoadAverageAtEnd = null)
{
    /// <summary>
    /// The limits measured again after the last benchmark (null when not measured): beside those of the start, a sign of
    /// how much the machine's speed moved during the run (a virtual machine shares its host).
    /// </summary>
    public Limits? LimitsAtEnd { get; init; }

    /// <summary>Our CNN epoch on Fashion-MNIST (null when the data set is missing).</summary>
    public EpochTiming? OurCnn { get; init; }

    /// <summary>Our GPT training steps (null when the word list is missing).</summary>
    public GptTiming? OurGpt { get; init; }

    /// <summary>Why the GPT was not timed, if it was not.</summary>
    public string? GptNote { get; init; }

    /// <summary>The plain-program timings, one per setting (null when they were not run).</summary>
    public IReadOnlyList<PlainResult>? Plain { get; init; }

    /// <summary>The memory the tape keeps with and without checkpointing (null when not measured).</summary>
    public CheckpointResult? Checkpoint { get; init; }
}

/// <summary>Writes docs/benchmarks.md: the targets, then a table per question with our time, PyTorch's and the ratio.</summary>
public static class ReportWriter
{
    /// <summary>
    /// Renders docs/benchmarks.md: the top (title, intro, how it is measured), then <paramref name="existing"/>'s
    /// sections with this machine's replaced by this run's (<see cref="ReportSections.Merge"/>).
    /// </summary>
    public static string Render(ReportData data, string? existing = null) =>
        ReportSections.Merge(existing, RenderTop(), data.Machine.SectionKey, RenderSection(data));

    /// <summary>The top of the file, the same for every machine: title, intro and how it is measured.</summary>
    public static string RenderTop()
    {
        var sb = new StringBuilder();
        Line(sb, "# Benchmarks");
        Line(sb);
        Line(sb, "Each section below is one run of `dotnet run --project benchmarks/Autograd.Benchmarks -c Release -- --report` on one");
        Line(sb, "kind of CPU and vector path (add `--isa avx2` or `--isa vector128` to measure a narrower path than the machine would");
        Line(sb, "pick), dated and with its commit; a run replaces only its own section. Within a section both sides are measured one");
        Line(sb, "after the other; ratios are **ours ÷ PyTorch** from that same run (below 1× we are faster); they are the figures to");
        Line(sb, "quote. Absolute times move with the machine and with the kernels; rerun the command after changing either.");
        Line(sb);
        Line(sb, "## How it is measured");
        Line(sb);
        Line(sb, "- **Ours**: `benchmarks/Autograd.Benchmarks` (BenchmarkDotNet, Release, each benchmark in a process of its own, so");
        Line(sb, "  that none inherits the garbage collector's state from the ones before it, as BenchmarkDotNet does by default): it");
        Line(sb, "  gets a pilot stage, 3 warm-up and 9 measured iterations of about 100 ms (500 ms for the layers of §5, whose calls");
        Line(sb, "  take milliseconds and allocate megabytes: a 100 ms iteration of a few calls measures whether a collection fell inside");
        Line(sb, "  it more than what a call costs in a steady loop); the figure is the median iteration.");
        Line(sb, "  No full collection is forced between iterations (BenchmarkDotNet's default forces one), so both sides time a");
        Line(sb, "  steady loop; the GC settings in each section's table keep tensors below 32 MB out of the large object heap.");
        Line(sb, "  *Allocated* is BenchmarkDotNet's MemoryDiagnoser, per operation.");
        Line(sb, "- **PyTorch**: `benchmarks/peers/*.py` time the same workloads (same shapes, dtypes, chain, model, batch and seeds");
        Line(sb, "  where the generators allow): a warm-up, then the median of 11 samples of at least 20 ms each.");
        Line(sb, "- **Threads**: matmul runs at `Gemm.MaxThreads = 1` and at all cores against `torch.set_num_threads(1)` and all");
        Line(sb, "  cores, the peer also setting OpenBLAS's own threads to match (`openblas_set_num_threads`: `torch.set_num_threads`");
        Line(sb, "  alone does not reach them: without it PyTorch's one-thread matmul ran OpenBLAS on every core).");
        Line(sb, "  Everything else uses all cores on both sides (ours: the default; PyTorch: `torch.set_num_threads(cores)`).");
        Line(sb, "- **A narrower path** (`--isa avx2` or `vector128` on a CPU with wider vectors) narrows PyTorch too: its peers run with");
        Line(sb, "  `ONEDNN_MAX_CPU_ISA`, `ATEN_CPU_CAPABILITY` and `OPENBLAS_CORETYPE` set to that path (shown in the section's environment");
        Line(sb, "  row), so the section compares with what both would do on a CPU that has only that path.");
        Line(sb, "- **Physical limits** of each machine are measured at the start of its run (`Limits.Measure`, stated in its table):");
        Line(sb, "  the float32 FMA peak of one core from 12 independent FMA chains on the vectors .NET uses there (float64: half),");
        Line(sb, "  and one thread's copy bandwidth over 256 MiB (memory) and within 128 KiB (L2). Matmul is stated as a fraction of");
        Line(sb, "  the FMA peak of the cores it used. Softmax is stated as bytes that must move (forward: read x, write y; backward:");
        Line(sb, "  read g and y, write dx; forward+backward: both) per second, as a fraction of the L2 bandwidth when the arrays fit in");
        Line(sb, "  one core's L2 and of the memory bandwidth when they do not (arrays that miss L2 but stay in L3 can beat it, so more");
        Line(sb, "  than 100% is possible). The same limits are measured again after the last benchmark and stated beside them: on a");
        Line(sb, "  virtual machine that shares its host, how far the two sets lie apart shows how much the machine's speed moved.");
        Line(sb, "- **The machine** is read from /proc/cpuinfo (vendor, model name, family and model, flags), the caches from");
        Line(sb, "  /sys/devices/system/cpu/cpu0/cache or, where a virtual machine does not expose them, from CPUID; the instruction");
        Line(sb, "  sets are those the .NET runtime reports it uses (`Avx512F.IsSupported`, `Avx2.IsSupported`, `AdvSimd.IsSupported`, …).");
        Line(sb, "  The core design (Zen 3, Zen 4, Zen 5, …) is named from the family and model numbers where they are known: a virtual");
        Line(sb, "  machine may call different designs by one model name (\"AMD EPYC\"), so each design gets a section of its own.");
        Line(sb, "- **A plain program**: the report also runs a few workloads as a user's console program would time them, in child");
        Line(sb, "  processes (`--plain`): a Stopwatch, 0.5 s of warm-up, then batches of about 1 ms (several calls per batch when a");
        Line(sb, "  call is shorter) for 2 s; the median time per call over all batches, and over the first and the last second apart");
        Line(sb, "  (code still in a slow tier shows as a slower first second). Each setting is a set of environment variables over");
        Line(sb, "  the runtime's defaults; the child reports the GC configuration in effect (`GC.GetConfigurationVariables`).");
        Line(sb, "- BenchmarkDotNet's own output for each benchmark of a run (every iteration, its table with error bars and GC counts) is");
        Line(sb, "  a log of its own in `BenchmarkDotNet.Artifacts/`, which is not committed.");
        return sb.ToString();
    }

    /// <summary>This run's section: the machine, problems, targets and the tables, headings one level below the top's.</summary>
    public static string RenderSection(ReportData data)
    {
        var sb = new StringBuilder();
        var m = data.Machine;
        var threads = m.LogicalCores;
        var p = data.Peers;
        var lim = m.Limits;
        Line(sb, $"# {m.Cpu} ({m.Vendor ?? "unknown vendor"}{(m.CpuKind is null ? "" : $", {m.CpuKind}")}), {m.VectorPathText}: {m.Date:yyyy-MM-dd}{(m.Commit is null ? "" : $", `{m.Commit}`")}");
        Line(sb);
        Line(sb, $"Measured on {m.Date:yyyy-MM-dd} (UTC) on the current code{(m.Commit is null ? "" : $" (commit `{m.Commit}`{(m.UncommittedChanges == true ? " plus uncommitted changes in the working tree" : "")})")}.{(m.HardwareBits > lim.VectorBits ? $" Vector path: {m.VectorPathText}, narrower than the CPU offers." : "")}");
        Line(sb);
        Line(sb, "| | |");
        Line(sb, "|---|---|");
        Line(sb, $"| CPU | {m.Cpu}{(m.Vendor is null ? "" : $", {m.Vendor}")}{(m.FamilyModel is null ? "" : $" ({m.FamilyModel})")}; {(m.PhysicalCores is { } pc ? $"{pc} cores, " : "")}{m.LogicalCores} logical processors |");
        Line(sb, $"| vector path | **{m.VectorPathText}**; instruction sets the runtime uses: {m.InstructionSets}{(lim.Fused ? "" : "; no FMA (multiply, then add)")} |");
        Line(sb, $"| caches | {(m.Caches.Count == 0 ? "unknown" : string.Join(", ", m.Caches) + $" (from {string.Join(" and ", m.Caches.Select(c => c.Source).Distinct())}{(m.Caches.Any(c => c.Source == "CPUID") ? "; a virtual machine may report its host's L3 there" : "")})")} |");
        Line(sb, $"| measured limits | {Num(lim.PeakGflopsPerCoreF32, "0")} GFLOP/s per core in float32 ({Num(lim.PeakGflopsPerCoreF32 / 2, "0")} in float64) on the {(lim.VectorBits == 0 ? "scalar" : $"{lim.VectorBits}-bit")} {(lim.Fused ? "FMA" : "multiply-add")} path; copy {Num(lim.MemoryGBps, "0.0")} GB/s from memory, {Num(lim.L2GBps, "0")} GB/s within L2 (one thread){(data.LimitsAtEnd is { } end ? $"; again at the end of the run: {Num(end.PeakGflopsPerCoreF32, "0")} GFLOP/s, {Num(end.MemoryGBps, "0.0")} GB/s from memory, {Num(end.L2GBps, "0")} GB/s within L2 (how far the machine's speed moved during the run)" : "")} |");
        Line(sb, $"| memory | {(m.MemoryBytes is { } mb ? $"{mb / (1024.0 * 1024 * 1024):0.#} GiB" : "unknown")} |");
        Line(sb, $"| OS | {m.Os} |");
        Line(sb, $"| .NET | {m.DotNet}, BenchmarkDotNet 0.15.8 |");
        Line(sb, p is null
            ? "| PyTorch | not available: `apt-get install -y python3-torch libopenblas0-pthread` to compare |"
            : $"| PyTorch | {p.Torch}{(p.TorchPackage is null ? "" : $" (Debian python3-torch {p.TorchPackage})")}, Python {p.Python} |");
        Line(sb, $"| threads | softmax, tape and training: {threads} on both sides (ours: all cores; PyTorch: `torch.set_num_threads({threads})`); matmul: 1 and {threads} |");
        Line(sb, $"| load average | {m.LoadAverage ?? "unknown"} at the start, {data.LoadAverageAtEnd ?? "unknown"} at the end (1, 5, 15 min; {m.LogicalCores} cores: above {m.LogicalCores} means other work competed for the CPU) |");
        Line(sb, $"| .NET GC | {m.Gc} |");
        Line(sb, $"| environment | {string.Join(", ", m.Environment.Select(kv => $"`{kv.Key}`={(kv.Value is null ? "(unset)" : $"`{kv.Value}`")}"))} |");
        Line(sb);
        if (data.Problems.Count > 0 || p is { Errors.Count: > 0 })
        {
            Line(sb, "**Problems in this run:**");
            foreach (var problem in data.Problems.Concat(p?.Errors ?? []))
            {
                Line(sb, $"- {problem}");
            }

            Line(sb);
        }

        WriteTargets(sb, data);
        WritePlain(sb, data);
        WriteSoftmax(sb, data);
        WriteTape(sb, data);
        WriteMatMul(sb, data);
        WriteTraining(sb, data);
        WriteCheckpoint(sb, data);
        WriteForwardMode(sb, data);
        WriteLayers(sb, data);
        WriteNetworks(sb, data);

        // The section's headings sit one level below the file's title.
        var lines = sb.ToString().Split('\n').Select(l => l.StartsWith('#') ? "#" + l : l);
        return string.Join('\n', lines);
    }

    /// <summary>
    /// The plain-program table: per workload and setting, the median time per call over the 2 s and the medians of the
    /// first and last second; BenchmarkDotNet's and PyTorch's figures for the same work from this run beside them.
    /// </summary>
    private static void WritePlain(StringBuilder sb, ReportData data)
    {
        if (data.Plain is not { Count: > 0 } plain)
        {
            return;
        }

        Line(sb, "## The speed a plain program gets (`--plain`)");
        Line(sb);
        Line(sb, "Our workloads timed as a user's console program times them (see \"How it is measured\"), in a child process per");
        Line(sb, "setting: each cell is the median per call over 2 s, then (first second → last second). *BenchmarkDotNet* and");
        Line(sb, "*PyTorch* are the figures for the same work from this run's tables (non-concurrent GC, all cores).");
        Line(sb);
        sb.Append(PlainTable(plain, key => Ours(data, key), key => Peer(data, key)));
        Line(sb);
    }

    /// <summary>
    /// The plain-program table and, below it, one line per setting (its environment and the GC the child reported).
    /// <paramref name="benchmarkDotNet"/> and <paramref name="pyTorch"/> give the figure for a workload's key, or null.
    /// </summary>
    public static string PlainTable(IReadOnlyList<PlainResult> plain, Func<string, double?> benchmarkDotNet, Func<string, double?> pyTorch)
    {
        var sb = new StringBuilder();
        var header = new StringBuilder("| workload |");
        var rule = new StringBuilder("|---|");
        foreach (var r in plain)
        {
            header.Append(CultureInfo.InvariantCulture, $" {r.Setting.Name} |");
            rule.Append("---:|");
        }

        Line(sb, header.Append(" BenchmarkDotNet | PyTorch |").ToString());
        Line(sb, rule.Append("---:|---:|").ToString());
        foreach (var (name, title, key, _) in PlainRun.Workloads)
        {
            var row = new StringBuilder($"| {title} |");
            foreach (var r in plain)
            {
                var t = r.Report?.Timings.FirstOrDefault(x => x.Workload == name);
                row.Append(t is null ? " – |" : $" {Time(t.MedianNs)} ({Time(t.FirstSecondNs)} → {Time(t.LastSecondNs)}) |");
            }

            row.Append(CultureInfo.InvariantCulture, $" {Time(key is null ? null : benchmarkDotNet(key))} | {Time(key is null ? null : pyTorch(key))} |");
            Line(sb, row.ToString());
        }

        Line(sb);
        foreach (var r in plain)
        {
            Line(sb, $"- *{r.Setting.Name}*: {r.Setting.Description}; environment `{r.Setting.EnvironmentText}`; "
                + (r.Report is { } rep ? $"the child reported: {rep.Gc}, {rep.ProcessorCount} processor{(rep.ProcessorCount == 1 ? "" : "s")}, {rep.VectorBits}-bit vectors, methods with loops {(rep.QuickJitForLoops ? "starting unoptimized (quick JIT for loops)" : "optimized from their first call")}." : $"failed: {r.Error}"));
        }

        return sb.ToString();
    }

    private static void WriteTargets(StringBuilder sb, ReportData data)
    {
        Line(sb, "## Targets");
        Line(sb);
        Line(sb, "| target | PyTorch here | ours | ours ÷ PyTorch | goal | met |");
        Line(sb, "|---|---:|---:|---:|---|:-:|");
        var key = "softmax/fwdbwd/fused/f32/1024x1024";
        var ours = Ours(data, key);
        var peer = Peer(data, key);
        var ratio = Div(ours, peer);
        Line(sb, $"| softmax fwd+bwd, float32, 1024×1024 | {Time(peer)} | {Time(ours)} | {Ratio(ratio)} | ≤ 0.8× PyTorch | {Met(ratio, r => r <= 0.8)} |");
        var composed = Ours(data, "softmax/fwdbwd/composed/f32/1024x1024");
        var speedup = Div(composed, ours);
        Line(sb, $"| … fused vs composed (ours) | | composed {Time(composed)} | | fused ≥ 3× faster (here {Times(speedup)}) | {Met(speedup, s => s >= 3)} |");
        key = "softmax/fwdbwd/fused/f64/9";
        ours = Ours(data, key);
        peer = Peer(data, key);
        Line(sb, $"| softmax fwd+bwd, float64, [9] | {Time(peer)} | {Time(ours)} | {Ratio(Div(ours, peer))} | ≤ 1 µs | {Met(ours, t => t <= 1000)} |");
        ours = Ours(data, "tape/fwdbwd");
        peer = Peer(data, "tape/fwdbwd");
        var alloc = data.Ours.GetValueOrDefault("tape/fwdbwd")?.AllocatedBytes;
        var recording = Sub(data.Ours.GetValueOrDefault("tape/recorded")?.AllocatedBytes, data.Ours.GetValueOrDefault("tape/nograd")?.AllocatedBytes);
        Line(sb, $"| per recorded op, one-element tensors, fwd+bwd | {Time(peer)} | {Time(ours)} | {Ratio(Div(ours, peer))} | ≤ 0.5 µs | {Met(ours, t => t <= 500)} |");
        Line(sb, $"| … allocated per recorded op | | {Bytes(alloc)} fwd+bwd; recording adds {Bytes(recording)} | | no per-op closure | see §2 |");
        var chainPlain = Ours(data, "ForwardModeBenchmarks/Chain_NoGrad");
        var chainRecorded = Ours(data, "ForwardModeBenchmarks/Chain_Recorded");
        var chainJvp = Ours(data, "ForwardModeBenchmarks/Chain_Jvp");
        Line(sb, $"| forward mode: JVP of the {Workloads.TapeChainLength}-op chain, per op | | {Time(chainJvp)} (plain forward {Time(chainPlain)}, recorded {Time(chainRecorded)}) | | ≤ 2× the plain forward (here {Times(Div(chainJvp, chainPlain))}; {Times(Div(chainJvp, chainRecorded))} the recorded one) | {Met(Div(chainJvp, chainPlain), r => r <= 2)} |");
        var softmaxForward = Ours(data, "ForwardModeBenchmarks/Softmax_Forward");
        var softmaxJvp = Ours(data, "ForwardModeBenchmarks/Softmax_Jvp");
        Line(sb, $"| forward mode: JVP of softmax 1024×1024, float32 | | {Time(softmaxJvp)} (fused forward {Time(softmaxForward)}) | | ≤ 2.5× the fused forward (here {Times(Div(softmaxJvp, softmaxForward))}) | {Met(Div(softmaxJvp, softmaxForward), r => r <= 2.5)} |");
        key = "matmul/matmul/f32/512x512x512/t1";
        ours = Ours(data, key);
        peer = Peer(data, key);
        var flops = Workloads.MatMulFlops("512x512x512");
        Line(sb, $"| matmul float32 512×512, one thread | {Gflops(flops, peer)} | {Gflops(flops, ours)} | {Ratio(Div(ours, peer))} | ≥ 40 GFLOP/s | {Met(ours, t => flops / t >= 40)} |");
        var kernel512 = Ours(data, "matmul/kernel/f32/512x512x512/t1");
        var corePeak = data.Machine.Limits.PeakGflopsPerCoreF32;
        var path = data.Machine.Limits.VectorBits == 0 ? "scalar" : $"{data.Machine.Limits.VectorBits}-bit";
        double? kernelShare = kernel512 is { } k5 ? flops / k5 / corePeak : null;
        double? matMulShare = ours is { } o5 ? flops / o5 / corePeak : null;
        Line(sb, $"| … of this {path} path's FMA peak ({Num(corePeak, "0")} GFLOP/s per core) | | blocked kernel {Gflops(flops, kernel512)} ({Percent(kernelShare)}); MatMul with a new result per call {Percent(matMulShare)} | | kernel ≥ 75% of the peak | {Met(kernelShare, f => f >= 0.75)} |");
        WriteFamilyTargets(sb, data);
        WriteMatMulTarget(sb, data);
        var oursEpoch = data.OurEpoch?.Seconds;
        var peerEpoch = data.Peers?.Epoch?.Seconds;
        Line(sb, $"| Fashion-MNIST MLP epoch (60 000 images, batch 64, {data.Machine.LogicalCores} threads) | {Seconds(peerEpoch)} | {Seconds(oursEpoch)} | {Ratio(Div(oursEpoch, peerEpoch))} | ≤ 5 s | {Met(oursEpoch, s => s <= 5)} |");
        var cnnOurs = data.OurCnn?.Seconds;
        var cnnPeer = data.Peers?.Cnn?.Seconds;
        Line(sb, $"| Fashion-MNIST CNN epoch (60 000 images, batch 64, {data.Machine.LogicalCores} threads) | {Seconds(cnnPeer)} | {Seconds(cnnOurs)} | {Ratio(Div(cnnOurs, cnnPeer))} | ≤ 1.0× PyTorch | {Met(Div(cnnOurs, cnnPeer), r => r <= 1.0)} |");
        key = "LayerBenchmarks/Conv2d_ForwardBackward/large";
        ours = Ours(data, key);
        peer = Peer(data, key);
        Line(sb, $"| Conv2d fwd+bwd 32→64 3×3 on [64, 32, 14, 14], float32 | {Time(peer)} | {Time(ours)} | {Ratio(Div(ours, peer))} | ≥ 0.8× PyTorch's speed (ratio ≤ 1.25×) | {Met(Div(ours, peer), r => r <= 1.25)} |");
        var gptOurs = data.OurGpt?.MsPerStep * 1e6;
        var gptPeer = data.Peers?.Gpt?.MsPerStep * 1e6;
        Line(sb, $"| character-level GPT training step (batch 64 × context 16) | {Time(gptPeer)} | {Time(gptOurs)} | {Ratio(Div(gptOurs, gptPeer))} | ≤ 0.5× PyTorch | {Met(Div(gptOurs, gptPeer), r => r <= 0.5)} |");
        foreach (var (family, name) in new[] { ("LayerNorm", "layer norm"), ("Attention", "causal attention") })
        {
            foreach (var c in new[] { "small", "large" })
            {
                var fused = Ours(data, $"LayerBenchmarks/{family}_Fused/{c}");
                var composedForm = Ours(data, $"LayerBenchmarks/{family}_Composed/{c}");
                peer = Peer(data, $"LayerBenchmarks/{family}_{(family == "LayerNorm" ? "Fused" : "Composed")}/{c}");
                var faster = Div(composedForm, fused);
                var vsPeer = Div(fused, peer);
                var met = faster is { } f && vsPeer is { } v ? (f >= 2 && v <= 1.0 ? "yes" : "no") : "–";
                Line(sb, $"| {name} fwd+bwd fused, {LayerShape(family, c)}, float32 | {Time(peer)} | {Time(fused)} (composed {Time(composedForm)}) | {Ratio(vsPeer)} | ≥ 2× faster than composed (here {Times(faster)}) and ≤ 1.0× PyTorch | {met} |");
            }
        }

        Line(sb);
        Line(sb, "The issue quoted PyTorch at 1.10 ms (softmax 1024×1024), 14 µs (softmax [9]), ≈ 10 µs per op, 31–36 GFLOP/s");
        Line(sb, "(OpenBLAS, 512×512) and 14.4 s per epoch; the column \"PyTorch here\" is what this run measured.");
        Line(sb);
    }

    /// <summary>
    /// Each softmax-family cell's ratio to PyTorch (keys with <paramref name="suffix"/> after the variant: "" or
    /// "scoped"), the operators' apart from the composed softmax's, and how many cells have no ratio.
    /// </summary>
    private static (List<(string Cell, double Ratio)> Operators, List<(string Cell, double Ratio)> Composed, int Missing) FamilyCells(ReportData data, string suffix)
    {
        var operators = new List<(string Cell, double Ratio)>();
        var composed = new List<(string Cell, double Ratio)>();
        var missing = 0;
        foreach (var mode in new[] { "fwd", "bwd", "fwdbwd" })
        {
            foreach (var shape in Workloads.SoftmaxShapes)
            {
                foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                {
                    var dt = Workloads.DTypeName(dtype);
                    foreach (var variant in new[] { "fused", "logsoftmax", "logsumexp", "composed" })
                    {
                        var key = $"softmax/{mode}/{variant}{suffix}/{dt}/{shape}";
                        if (Div(Ours(data, key), Peer(data, key)) is not { } r)
                        {
                            missing++;
                            continue;
                        }

                        var cell = $"{VariantText(variant)} {ModeText(mode)} {ShapeText(shape)} {dt} {Ratio(r)}";
                        (variant == "composed" ? composed : operators).Add((cell, r));
                    }
                }
            }
        }

        return (operators, composed, missing);
    }

    /// <summary>
    /// The softmax family's targets: no cell of the operators (fused softmax, log-softmax, logsumexp) nor of the composed
    /// softmax above 1.2× PyTorch, over forward, backward and forward+backward, both dtypes and every shape; and the long
    /// row's forward+backward in float32 at most PyTorch's time.
    /// </summary>
    private static void WriteFamilyTargets(StringBuilder sb, ReportData data)
    {
        static string Above(List<(string Cell, double Ratio)> cells) => Misses(cells, r => r > 1.2, r => -r, "above 1.2×", shown: 6);
        var (operators, composed, missing) = FamilyCells(data, "");
        var worst = operators.Concat(composed).Select(c => (double?)c.Ratio).Max();
        var met = missing > 0 || worst is null ? "–" : worst <= 1.2 ? "yes" : "no";
        Line(sb, $"| softmax, log-softmax and logsumexp cells (fwd, bwd, fwd+bwd; float32, float64; every shape of §1) | | operators: {Above(operators)}; composed softmax: {Above(composed)}{(missing > 0 ? $"; {missing} cells not measured" : "")} | worst {Ratio(worst)} | none above 1.2× PyTorch (set for AVX2-only CPUs) | {met} |");
        var (scoped, scopedComposed, _) = FamilyCells(data, "scoped");
        if (scoped.Count + scopedComposed.Count > 0)
        {
            var worstScoped = scoped.Concat(scopedComposed).Max(c => c.Ratio);
            var fb = "softmax/fwdbwd/fusedscoped/f32/1024x1024";
            Line(sb, $"| … each call in a TensorScope (§1, last table) | | operators: {Above(scoped)}; composed softmax: {Above(scopedComposed)}; softmax fwd+bwd 1024×1024 float32 {Time(Ours(data, fb))} ({Ratio(Div(Ours(data, fb), Peer(data, fb)))}) | worst {Ratio(worstScoped)} | none above 1.2× PyTorch | {(worstScoped <= 1.2 ? "yes" : "no")} |");
        }

        var key1m = "softmax/fwdbwd/fused/f32/1x1000000";
        var ours = Ours(data, key1m);
        var peer = Peer(data, key1m);
        Line(sb, $"| softmax fwd+bwd, float32, 1×1 000 000 | {Time(peer)} | {Time(ours)} | {Ratio(Div(ours, peer))} | ≤ 1.0× PyTorch | {Met(Div(ours, peer), r => r <= 1.0)} |");
    }

    /// <summary>
    /// The matmul target: on one thread, at least 0.85× the speed of OpenBLAS through PyTorch at 256³ to 1024³ and at the
    /// MLP's shapes, float32 and float64, each with a new result per call as PyTorch makes one.
    /// </summary>
    private static void WriteMatMulTarget(StringBuilder sb, ReportData data)
    {
        // Every shape of §3 but the two smallest squares: 256³, 512³, 1024³ and the MLP's forward and backward products.
        var cells = new List<(string Cell, double Speed)>();
        var missing = 0;
        foreach (var shape in Workloads.MatMulShapes.Where(s => s is not ("64x64x64" or "128x128x128")))
        {
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            {
                var key = $"matmul/matmul/{Workloads.DTypeName(dtype)}/{shape}/t1";
                if (Div(Peer(data, key), Ours(data, key)) is { } speed)
                {
                    cells.Add(($"{ShapeText(shape)} {Workloads.DTypeName(dtype)} {Significant(speed)}×", speed));
                }
                else
                {
                    missing++;
                }
            }
        }

        var slowest = cells.Count > 0 ? cells.Min(c => c.Speed) : (double?)null;
        var text = Misses(cells, s => s < 0.85, s => s, "below 0.85× its speed") + (missing > 0 ? $"; {missing} not measured" : "");
        var met = missing > 0 || slowest is null ? "–" : slowest >= 0.85 ? "yes" : "no";
        Line(sb, $"| matmul one thread, 256³–1024³ and the MLP's products, float32 and float64 (a new result per call) | | {text} | slowest at {Times(slowest)} PyTorch's speed | ≥ 0.85× the speed of OpenBLAS through PyTorch (set for AVX2-only CPUs) | {met} |");
    }

    /// <summary>
    /// "N of M {phrase}" for the cells whose value <paramref name="misses"/> the goal, then the first
    /// <paramref name="shown"/> of them, the furthest from the goal first (smallest <paramref name="order"/>).
    /// </summary>
    private static string Misses(List<(string Cell, double Value)> cells, Func<double, bool> misses, Func<double, double> order, string phrase, int shown = int.MaxValue)
    {
        var missed = cells.Where(c => misses(c.Value)).OrderBy(c => order(c.Value)).ToList();
        var list = missed.Count == 0 ? "" : ": " + string.Join(", ", missed.Take(shown).Select(c => c.Cell)) + (missed.Count > shown ? $", and {missed.Count - shown} more" : "");
        return $"{missed.Count} of {cells.Count} {phrase}{list}";
    }

    private static string VariantText(string variant) => variant switch
    {
        "fused" => "softmax",
        "logsoftmax" => "log-softmax",
        _ => variant,
    };

    private static string ModeText(string mode) => mode == "fwdbwd" ? "fwd+bwd" : mode;

    private static void WriteSoftmax(StringBuilder sb, ReportData data)
    {
        Line(sb, "## 1. Softmax: fused vs composed (`SoftmaxBenchmarks`, `peers/softmax.py`)");
        Line(sb);
        Line(sb, "Softmax over the last dim. *Fused* is `x.Softmax(-1)` / `torch.softmax`; *composed* is max, subtract, exp, sum,");
        Line(sb, "divide recorded op by op (`x.SoftmaxComposed(-1)` / the same five ops in PyTorch); *log_softmax* is the fused");
        Line(sb, "`x.LogSoftmax(-1)` / `torch.log_softmax`; *logsumexp* is `x.LogSumExp(-1)` / `torch.logsumexp` (its upstream");
        Line(sb, "gradient has the reduced shape). Forward records the graph (the input requires grad); backward alone walks");
        Line(sb, "a kept graph (`Autodiff.Grad(y, x, g, retainGraph: true)` / `torch.autograd.grad(..., retain_graph=True)`);");
        Line(sb, "forward+backward does both. *c÷f* is our composed time over our fused time. Then our fused softmax's ns per");
        Line(sb, "element and effective bandwidth, and the fraction of the bandwidth limit that each of our variants reaches");
        Line(sb, "(the bytes that must move over the time: the same for the first three; logsumexp writes no full-size output");
        Line(sb, "forward and reads no saved output backward, so it moves one full-size array less in each direction).");
        Line(sb);
        foreach (var (mode, title, arrays, moved) in new[] { ("fwd", "forward", 2, 2), ("bwd", "backward", 3, 3), ("fwdbwd", "forward+backward", 4, 5) })
        {
            Line(sb, $"### {title}");
            Line(sb);
            Line(sb, "| shape | dtype | fused | PyTorch | ratio | composed | PyTorch | ratio | c÷f | log_softmax | PyTorch | ratio | logsumexp | PyTorch | ratio | ns/elem (fused) | GB/s (fused) | of limit: fused · composed · log_softmax · logsumexp |");
            Line(sb, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var shape in Workloads.SoftmaxShapes)
            {
                foreach (var dtype in new[] { DType.Float32, DType.Float64 })
                {
                    var dt = Workloads.DTypeName(dtype);
                    string K(string variant) => $"softmax/{mode}/{variant}/{dt}/{shape}";
                    var fused = Ours(data, K("fused"));
                    var composed = Ours(data, K("composed"));
                    var log = Ours(data, K("logsoftmax"));
                    var lse = Ours(data, K("logsumexp"));
                    var elements = Workloads.Elements(shape);
                    var bytes = (double)moved * elements * Workloads.ElementSize(dtype);
                    var lseBytes = (double)LogSumExpArrays(mode) * elements * Workloads.ElementSize(dtype);
                    var workingSet = (double)arrays * elements * Workloads.ElementSize(dtype);
                    var inL2 = data.Machine.L2BytesPerCore is { } l2 ? workingSet <= l2 : workingSet <= 2 * 1024 * 1024;
                    var limit = inL2 ? data.Machine.Limits.L2GBps : data.Machine.Limits.MemoryGBps;
                    double? Fraction(double? ns, double moving) => ns is { } t ? moving / t / limit : null;
                    Line(sb, $"| {ShapeText(shape)} | {dt} | {Time(fused)} | {Time(Peer(data, K("fused")))} | {Ratio(Div(fused, Peer(data, K("fused"))))} " +
                        $"| {Time(composed)} | {Time(Peer(data, K("composed")))} | {Ratio(Div(composed, Peer(data, K("composed"))))} | {Times(Div(composed, fused))} " +
                        $"| {Time(log)} | {Time(Peer(data, K("logsoftmax")))} | {Ratio(Div(log, Peer(data, K("logsoftmax"))))} " +
                        $"| {Time(lse)} | {Time(Peer(data, K("logsumexp")))} | {Ratio(Div(lse, Peer(data, K("logsumexp"))))} " +
                        $"| {Num(Div(fused, elements), "0.000")} | {Num(fused is { } f ? bytes / f : null, "0.0")} " +
                        $"| {Percent(Fraction(fused, bytes))} · {Percent(Fraction(composed, bytes))} · {Percent(Fraction(log, bytes))} · {Percent(Fraction(lse, lseBytes))} of {(inL2 ? "L2" : "memory")} |");
                }
            }

            Line(sb);
        }

        Line(sb, "### each call in a TensorScope");
        Line(sb);
        Line(sb, "The same calls, each inside `using (Tensor.NewScope()) { … }`: the call's tensors end with it and the next call works");
        Line(sb, "in their arrays, as PyTorch's allocator reuses freed memory (docs/design.md, \"Memory for large tensors\"). Each cell:");
        Line(sb, "our time, then its ratio to PyTorch's time for the same work in the tables above.");
        Line(sb);
        Line(sb, "| shape | dtype | pass | softmax | ratio | log_softmax | ratio | logsumexp | ratio | composed | ratio |");
        Line(sb, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var shape in Workloads.SoftmaxShapes)
        {
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            {
                var dt = Workloads.DTypeName(dtype);
                foreach (var mode in new[] { "fwd", "bwd", "fwdbwd" })
                {
                    var cells = new StringBuilder();
                    foreach (var variant in new[] { "fused", "logsoftmax", "logsumexp", "composed" })
                    {
                        var key = $"softmax/{mode}/{variant}scoped/{dt}/{shape}";
                        cells.Append(CultureInfo.InvariantCulture, $" {Time(Ours(data, key))} | {Ratio(Div(Ours(data, key), Peer(data, key)))} |");
                    }

                    Line(sb, $"| {ShapeText(shape)} | {dt} | {ModeText(mode)} |{cells}");
                }
            }
        }

        Line(sb);
    }

    /// <summary>
    /// The full-size arrays logsumexp must move: forward reads x; backward reads x and writes dx (its output and the
    /// upstream gradient have the reduced shape); forward+backward both.
    /// </summary>
    private static int LogSumExpArrays(string mode) => mode switch
    {
        "fwd" => 1,
        "bwd" => 2,
        _ => 3,
    };

    private static void WriteTape(StringBuilder sb, ReportData data)
    {
        Line(sb, "## 2. Tape overhead (`TapeOverheadBenchmarks`, `peers/tape.py`)");
        Line(sb);
        Line(sb, $"A chain of {Workloads.TapeChainLength} operations on one-element float64 tensors (y·a, y + b, tanh, y − c, repeated; a, b, c");
        Line(sb, "are leaves that require grad). Every figure is per operation of the chain.");
        Line(sb);
        Line(sb, "Recording allocates one node per operation (an object whose fields hold its edges and what its rule needs: no");
        Line(sb, "closure); the backward walk allocates each gradient and its own bookkeeping.");
        Line(sb);
        Line(sb, "| | ours per op | PyTorch per op | ours ÷ PyTorch | ours allocated per op |");
        Line(sb, "|---|---:|---:|---:|---:|");
        foreach (var (key, name) in new[] { ("tape/nograd", "grad off (kernels and results only)"), ("tape/recorded", "forward, recorded"), ("tape/fwdbwd", "forward + backward") })
        {
            var ours = Ours(data, key);
            var peer = Peer(data, key);
            Line(sb, $"| {name} | {Time(ours)} | {Time(peer)} | {Ratio(Div(ours, peer))} | {Bytes(data.Ours.GetValueOrDefault(key)?.AllocatedBytes)} |");
        }

        var recordOurs = Sub(Ours(data, "tape/recorded"), Ours(data, "tape/nograd"));
        var recordPeer = Sub(Peer(data, "tape/recorded"), Peer(data, "tape/nograd"));
        var walkOurs = Sub(Ours(data, "tape/fwdbwd"), Ours(data, "tape/nograd"));
        var walkPeer = Sub(Peer(data, "tape/fwdbwd"), Peer(data, "tape/nograd"));
        var recordBytes = Sub(data.Ours.GetValueOrDefault("tape/recorded")?.AllocatedBytes, data.Ours.GetValueOrDefault("tape/nograd")?.AllocatedBytes);
        var walkBytes = Sub(data.Ours.GetValueOrDefault("tape/fwdbwd")?.AllocatedBytes, data.Ours.GetValueOrDefault("tape/nograd")?.AllocatedBytes);
        Line(sb, $"| recording alone (recorded − grad off) | {Time(recordOurs)} | {Time(recordPeer)} | {Ratio(Div(recordOurs, recordPeer))} | {Bytes(recordBytes)} |");
        Line(sb, $"| tape and backward (fwd+bwd − grad off) | {Time(walkOurs)} | {Time(walkPeer)} | {Ratio(Div(walkOurs, walkPeer))} | {Bytes(walkBytes)} |");
        Line(sb);
    }

    private static void WriteMatMul(StringBuilder sb, ReportData data)
    {
        var threadCounts = Suite.ThreadCounts;
        Line(sb, "## 3. MatMul (`MatMulBenchmarks`, `peers/matmul.py`)");
        Line(sb);
        Line(sb, "[N,K]·[K,M] written N×K×M; inputs do not require grad. GFLOP/s = 2·N·K·M / median time; *of peak* divides by");
        Line(sb, $"the measured peak, {Num(data.Machine.Limits.PeakGflopsPerCoreF32, "0")} GFLOP/s per core used (float32) or half that (float64); *ratio* is our time ÷ PyTorch's. *row kernel* is the");
        Line(sb, "row-by-row `TensorPrimitives.MultiplyAdd` kernel the library started with, kept in the benchmark as a yardstick");
        Line(sb, "(BenchmarkDotNet's baseline for this class; it always runs on one thread). *blocked kernel* is `Gemm.Multiply`, the kernel");
        Line(sb, "MatMul runs, on one thread into a result allocated once: the vector path's own speed, without a new result per call.");
        Line(sb);
        var header = new StringBuilder("| shape | dtype |");
        var rule = new StringBuilder("|---|---|");
        foreach (var t in threadCounts)
        {
            var label = t == 1 ? "1 thread" : $"{t} threads";
            header.Append(CultureInfo.InvariantCulture, $" ours ({label}) | GFLOP/s | of peak | PyTorch GFLOP/s | ratio |");
            rule.Append("---:|---:|---:|---:|---:|");
        }

        header.Append(" blocked kernel (1 thread) GFLOP/s | of peak | row kernel GFLOP/s |");
        rule.Append("---:|---:|---:|");
        Line(sb, header.ToString());
        Line(sb, rule.ToString());
        foreach (var shape in Workloads.MatMulShapes)
        {
            foreach (var dtype in new[] { DType.Float32, DType.Float64 })
            {
                var dt = Workloads.DTypeName(dtype);
                var flops = Workloads.MatMulFlops(shape);
                var row = new StringBuilder($"| {ShapeText(shape)} | {dt} |");
                foreach (var t in threadCounts)
                {
                    var key = $"matmul/matmul/{dt}/{shape}/t{t}";
                    var ours = Ours(data, key);
                    var peer = Peer(data, key);
                    var peak = t * data.Machine.Limits.PeakGflopsPerCoreF32 / (dtype == DType.Float32 ? 1 : 2);
                    row.Append(CultureInfo.InvariantCulture,
                        $" {Time(ours)} | {Gflops(flops, ours, unit: false)} | {Percent(ours is { } o ? flops / o / peak : null)} | {Gflops(flops, peer, unit: false)} | {Ratio(Div(ours, peer))} |");
                }

                var kernel = Ours(data, $"matmul/kernel/{dt}/{shape}/t1");
                var corePeak = data.Machine.Limits.PeakGflopsPerCoreF32 / (dtype == DType.Float32 ? 1 : 2);
                row.Append(CultureInfo.InvariantCulture, $" {Gflops(flops, kernel, unit: false)} | {Percent(kernel is { } kt ? flops / kt / corePeak : null)} |");
                row.Append(CultureInfo.InvariantCulture, $" {Gflops(flops, Ours(data, $"matmul/rowkernel/{dt}/{shape}/t1"), unit: false)} |");
                Line(sb, row.ToString());
            }
        }

        Line(sb);
    }

    private static void WriteTraining(StringBuilder sb, ReportData data)
    {
        Line(sb, "## 4. Training step (`TrainingStepBenchmarks`, `peers/training.py`)");
        Line(sb);
        Line(sb, "The Fashion-MNIST MLP 784-256-128-10 (ReLU, float32, batch 64, Adam 1e-3, cross-entropy) on a synthetic batch of");
        Line(sb, "the same shape; the epoch is one pass over the real 60 000 training images, shuffled, each loss read back, after");
        Line(sb, "20 warm-up steps on a throwaway model (data loading included; data set from `apt-get install -y dataset-fashion-mnist`).");
        Line(sb);
        Line(sb, "| | ours | PyTorch | ours ÷ PyTorch | ours allocated |");
        Line(sb, "|---|---:|---:|---:|---:|");
        foreach (var (key, name) in new[] { ("training/forward", "forward + loss"), ("training/fwdbwd", "zero grad + forward + backward"), ("training/step", "whole step (+ Adam)") })
        {
            var ours = Ours(data, key);
            var peer = Peer(data, key);
            Line(sb, $"| {name} | {Time(ours)} | {Time(peer)} | {Ratio(Div(ours, peer))} | {Bytes(data.Ours.GetValueOrDefault(key)?.AllocatedBytes)} |");
        }

        var oursEpoch = data.OurEpoch;
        var peerEpoch = data.Peers?.Epoch;
        Line(sb, $"| epoch, {oursEpoch?.Batches ?? peerEpoch?.Batches ?? 938} steps | {Seconds(oursEpoch?.Seconds)} | {Seconds(peerEpoch?.Seconds)} | {Ratio(Div(oursEpoch?.Seconds, peerEpoch?.Seconds))} | |");
        Line(sb);
        if (oursEpoch is not null || peerEpoch is not null)
        {
            Line(sb, $"Mean training loss over that epoch: ours {Num(oursEpoch?.MeanLoss, "0.0000")}, PyTorch {Num(peerEpoch?.MeanLoss, "0.0000")} (different initial weights and shuffles, so close but not equal).");
            Line(sb);
        }

        if (data.EpochNote is not null)
        {
            Line(sb, data.EpochNote);
            Line(sb);
        }
    }

    private static void WriteCheckpoint(StringBuilder sb, ReportData data)
    {
        if (data.Checkpoint is not { } c)
        {
            return;
        }

        Line(sb, "## Checkpointing: the memory the tape keeps (`CheckpointMemory`)");
        Line(sb);
        Line(sb, $"A {CheckpointMemory.Layers}-layer MLP (MatMul then Tanh, width {CheckpointMemory.Width}, batch {CheckpointMemory.Batch}, float32), the bytes still reachable between");
        Line(sb, "its forward and its backward (a full collection before and after the forward), plain and with `Autodiff.Checkpoint`");
        Line(sb, $"every {CheckpointMemory.Every} layers, which drops what the layers saved for backward and recomputes it there.");
        Line(sb);
        Line(sb, "| | kept between forward and backward | weight gradients |");
        Line(sb, "|---|---:|---|");
        Line(sb, $"| plain | {c.PlainBytes / 1024.0:F0} KiB | |");
        Line(sb, $"| checkpoint every {CheckpointMemory.Every} layers | {c.CheckpointedBytes / 1024.0:F0} KiB ({(double)c.CheckpointedBytes / c.PlainBytes:P0}) | {(c.GradientsEqual ? "bitwise equal to the plain run's" : "differ from the plain run's")} |");
        Line(sb);
    }

    private static void WriteForwardMode(StringBuilder sb, ReportData data)
    {
        Line(sb, "## Forward mode: what a JVP costs (`ForwardModeBenchmarks`)");
        Line(sb);
        Line(sb, $"`Autodiff.Jvp` runs every operation's forward rule right after its kernel. The chain of §2 ({Workloads.TapeChainLength} operations on");
        Line(sb, "one-element float64 tensors, per operation) without recording, recorded, and its JVP under no-grad; softmax over the");
        Line(sb, "last dim of 1024×1024 float32, the fused forward and its JVP (y and ẏ = y ⊙ (ẋ − Σ y⊙ẋ) row by row).");
        Line(sb);
        Line(sb, "| | ours | ÷ plain forward | allocated |");
        Line(sb, "|---|---:|---:|---:|");
        foreach (var (baseline, rows) in new[]
        {
            ("Chain_NoGrad", new[] { ("Chain_NoGrad", "chain, plain forward (grad off), per op"), ("Chain_Recorded", "chain, recorded, per op"), ("Chain_Jvp", "chain, JVP, per op") }),
            ("Softmax_Forward", new[] { ("Softmax_Forward", "softmax 1024×1024 float32, fused forward"), ("Softmax_Jvp", "softmax 1024×1024 float32, JVP") }),
        })
        {
            var plain = Ours(data, "ForwardModeBenchmarks/" + baseline);
            foreach (var (method, name) in rows)
            {
                var key = "ForwardModeBenchmarks/" + method;
                Line(sb, $"| {name} | {Time(Ours(data, key))} | {Times(Div(Ours(data, key), plain))} | {Bytes(data.Ours.GetValueOrDefault(key)?.AllocatedBytes)} |");
            }
        }

        Line(sb);
    }

    private static string LayerShape(string family, string c) => (family, c) switch
    {
        ("Conv2d", "small") => "1→32 on [64, 1, 28, 28]",
        ("Conv2d", _) => "32→64 on [64, 32, 14, 14]",
        ("LayerNorm", "small") => "[1024, 64]",
        ("LayerNorm", _) => "[4096, 1024]",
        (_, "small") => "[64, 4, 16, 16]",
        _ => "[8, 8, 256, 64]",
    };

    /// <summary>Multiply-adds ×2 of one convolution forward at the benchmark's shapes (backward: twice that again).</summary>
    private static double ConvFlops(string c) => c == "small" ? 2.0 * 64 * 32 * 1 * 9 * 28 * 28 : 2.0 * 64 * 64 * 32 * 9 * 14 * 14;

    private static void WriteLayers(StringBuilder sb, ReportData data)
    {
        Line(sb, "## 5. Layers of a CNN and a transformer (`LayerBenchmarks`, `peers/layers.py`)");
        Line(sb);
        Line(sb, "float32, all cores. Convolutions: the two of the CNN at batch 64 (3×3, padding 1, bias), forward without");
        Line(sb, "recording and forward+backward (`Autodiff.Grad` to x, w and b / `torch.autograd.grad`); GFLOP/s counts");
        Line(sb, "2·N·Cout·Cin·9·H·W for the forward and three times that for forward+backward. Layer norm over the last dim with");
        Line(sb, "weight and bias, and causal attention (softmax(q·kᵀ/√d, causal)·v), forward+backward to every input: *fused*");
        Line(sb, "is our single operator (`LayerNorm`, `ScaledDotProductAttention`), *composed* the same built from primitives");
        Line(sb, "and differentiated by the tape (`LayerNormComposed`, `ScaledDotProductAttentionComposed`). PyTorch's layer norm");
        Line(sb, "is its fused `F.layer_norm`; PyTorch 1.13 has no fused attention, so its attention is the composed form.");
        Line(sb);
        Line(sb, "| layer | shape | ours | PyTorch | ours ÷ PyTorch | ours GFLOP/s or c÷f | PyTorch GFLOP/s | ours allocated |");
        Line(sb, "|---|---|---:|---:|---:|---:|---:|---:|");
        foreach (var c in new[] { "small", "large" })
        {
            foreach (var (method, name, flops) in new[] { ("Conv2d_Forward", "Conv2d forward", ConvFlops(c)), ("Conv2d_ForwardBackward", "Conv2d forward+backward", 3 * ConvFlops(c)) })
            {
                var key = $"LayerBenchmarks/{method}/{c}";
                var ours = Ours(data, key);
                var peer = Peer(data, key);
                Line(sb, $"| {name} | {LayerShape("Conv2d", c)} | {Time(ours)} | {Time(peer)} | {Ratio(Div(ours, peer))} | {Gflops(flops, ours, unit: false)} | {Gflops(flops, peer, unit: false)} | {Bytes(data.Ours.GetValueOrDefault(key)?.AllocatedBytes)} |");
            }
        }

        foreach (var family in new[] { "LayerNorm", "Attention" })
        {
            foreach (var c in new[] { "small", "large" })
            {
                var fusedKey = $"LayerBenchmarks/{family}_Fused/{c}";
                var composedKey = $"LayerBenchmarks/{family}_Composed/{c}";
                var fused = Ours(data, fusedKey);
                var composed = Ours(data, composedKey);
                var peerFused = family == "LayerNorm" ? Peer(data, fusedKey) : null;
                var peerComposed = Peer(data, composedKey);
                var name = family == "LayerNorm" ? "layer norm" : "causal attention";
                Line(sb, $"| {name} fused | {LayerShape(family, c)} | {Time(fused)} | {Time(peerFused ?? peerComposed)} | {Ratio(Div(fused, peerFused ?? peerComposed))} | {Times(Div(composed, fused))} | | {Bytes(data.Ours.GetValueOrDefault(fusedKey)?.AllocatedBytes)} |");
                Line(sb, $"| {name} composed | {LayerShape(family, c)} | {Time(composed)} | {Time(peerComposed)} | {Ratio(Div(composed, peerComposed))} | | | {Bytes(data.Ours.GetValueOrDefault(composedKey)?.AllocatedBytes)} |");
            }
        }

        Line(sb);
    }

    private static void WriteNetworks(StringBuilder sb, ReportData data)
    {
        Line(sb, "## 6. Small networks: a CNN epoch and a GPT step (`Networks`, `peers/fashion_cnn.py`, `peers/char_gpt.py`)");
        Line(sb);
        Line(sb, "The CNN of `examples/FashionCnn` (conv 1→32, pool, conv 32→64, pool, Linear 3136→128→10; Adam 1e-3, batch 64,");
        Line(sb, "float32) for one epoch over the 60 000 training images, shuffled, each loss read back (ours after 20 warm-up steps");
        Line(sb, "on a throwaway model). The GPT of `examples/CharGpt` (2 pre-LayerNorm blocks, 4 causal heads, d_model 64,");
        Line(sb, $"context 16, AdamW 3e-3, batch 64, float32) on the `wamerican` word list: the mean of {ReportRun.GptSteps} training steps");
        Line(sb, "(batch sampling, forward, loss, backward, optimizer step; ours after 20 warm-up steps), evaluation not counted.");
        Line(sb);
        Line(sb, "| | ours | PyTorch | ours ÷ PyTorch | ours: loss | PyTorch: loss |");
        Line(sb, "|---|---:|---:|---:|---:|---:|");
        var cnn = data.OurCnn;
        var peerCnn = data.Peers?.Cnn;
        Line(sb, $"| CNN epoch, {cnn?.Batches ?? peerCnn?.Batches ?? 938} steps | {Seconds(cnn?.Seconds)} | {Seconds(peerCnn?.Seconds)} | {Ratio(Div(cnn?.Seconds, peerCnn?.Seconds))} | {Num(cnn?.MeanLoss, "0.0000")} (mean) | {Num(peerCnn?.MeanLoss, "0.0000")} (mean; test accuracy {Num(peerCnn?.TestAccuracy, "0.0000")}) |");
        var gpt = data.OurGpt;
        var peerGpt = data.Peers?.Gpt;
        Line(sb, $"| GPT step ({gpt?.Parameters ?? peerGpt?.Parameters} parameters) | {Time(gpt?.MsPerStep * 1e6)} | {Time(peerGpt?.MsPerStep * 1e6)} | {Ratio(Div(gpt?.MsPerStep, peerGpt?.MsPerStep))} | {Num(gpt?.MeanLoss, "0.0000")} (mean of the steps) | {Num(peerGpt?.MeanLoss, "0.0000")} (after them, 20 batches) |");
        Line(sb);
        if (data.GptNote is not null)
        {
            Line(sb, data.GptNote);
            Line(sb);
        }
    }

    private static double? Ours(ReportData data, string key) => data.Ours.GetValueOrDefault(key)?.MedianNs;

    // A case run in a TensorScope (key …scoped…) is compared with PyTorch's figure for the same work.
    private static double? Peer(ReportData data, string key) =>
        data.Peers is { } p && p.MedianNs.TryGetValue(key.Replace("scoped", "", StringComparison.Ordinal), out var v) ? v : null;

    private static double? Div(double? a, double? b) => a is { } x && b is { } y && y != 0 ? x / y : null;

    private static double? Sub(double? a, double? b) => a is { } x && b is { } y ? x - y : null;

    private static string ShapeText(string shape) => shape.Contains('x', StringComparison.Ordinal) ? shape.Replace("x", "×", StringComparison.Ordinal) : $"[{shape}]";

    private static string Met(double? value, Func<double, bool> goal) => value is { } v ? (goal(v) ? "yes" : "no") : "–";

    private static string Num(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static string Ratio(double? ratio) => ratio is { } r ? Significant(r) + "×" : "–";

    private static string Times(double? ratio) => ratio is { } r ? Significant(r) + "×" : "–";

    private static string Percent(double? fraction) => fraction is { } f ? (f * 100).ToString(f < 0.1 ? "0.0" : "0", CultureInfo.InvariantCulture) + "%" : "–";

    private static string Seconds(double? seconds) => seconds is { } s ? Significant(s) + " s" : "–";

    private static string Gflops(double flops, double? ns, bool unit = true) =>
        ns is { } t ? Significant(flops / t) + (unit ? " GFLOP/s" : "") : "–";

    private static string Bytes(double? bytes) => bytes switch
    {
        null => "–",
        < 10_000 => Significant(bytes.Value) + " B",
        < 10_000_000 => Significant(bytes.Value / 1024) + " KiB",
        _ => Significant(bytes.Value / (1024 * 1024)) + " MiB",
    };

    /// <summary>A time in ns, in the unit that keeps it between 1 and 1000, to three significant digits.</summary>
    public static string Time(double? ns) => ns switch
    {
        null => "–",
        < 1e3 => Significant(ns.Value) + " ns",
        < 1e6 => Significant(ns.Value / 1e3) + " µs",
        < 1e9 => Significant(ns.Value / 1e6) + " ms",
        _ => Significant(ns.Value / 1e9) + " s",
    };

    private static string Significant(double v)
    {
        var a = Math.Abs(v);
        var format = a >= 100 ? "0" : a >= 10 ? "0.0" : a >= 1 ? "0.00" : "0.000";
        return v.ToString(format, CultureInfo.InvariantCulture);
    }

    private static void Line(StringBuilder sb, string text = "") => sb.Append(text).Append('\n');
}
