using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Autograd.Benchmarks;

/// <summary>What the report says about the machine and the software that ran it.</summary>
public sealed record Machine(
    string Cpu,
    int LogicalCores,
    int? PhysicalCores,
    long? MemoryBytes,
    long? L2BytesPerCore,
    bool Avx512,
    string Os,
    string DotNet,
    DateTime Date,
    string? Commit,
    bool? UncommittedChanges,
    string? LoadAverage,
    IReadOnlyDictionary<string, string?> Environment,
    string Gc,
    Limits Limits)
{
    /// <summary>The CPU's vendor ("AuthenticAMD", "GenuineIntel", an ARM implementer), or null when unknown.</summary>
    public string? Vendor { get; init; }

    /// <summary>"family 26, model 2, stepping 1" on x86 (decimal, as /proc/cpuinfo writes them), the part on ARM, or null.</summary>
    public string? FamilyModel { get; init; }

    /// <summary>The instruction sets the runtime uses in this process (<see cref="VectorPath.InstructionSets"/>).</summary>
    public string InstructionSets { get; init; } = "";

    /// <summary>The caches of one core's view, smallest level first, and where their sizes came from.</summary>
    public IReadOnlyList<CacheLevel> Caches { get; init; } = [];

    /// <summary>The widest vectors the CPU offers (<see cref="VectorPath.HardwareBits"/>); more than the path in use when a switch narrowed it.</summary>
    public int HardwareBits { get; init; }

    /// <summary>The vector path that ran, e.g. "256-bit on an AVX-512 CPU (DOTNET_EnableAVX512=0)".</summary>
    public string VectorPathText => VectorPath.Describe(Limits.VectorBits, HardwareBits, VectorPath.SwitchedOffHere(Limits.VectorBits));

    /// <summary>
    /// The kind of CPU within its model name (<see cref="Microarchitecture.Kind"/>: "Zen 4: family 25, model 17"), or null
    /// when unknown. A virtual machine can name CPUs of different designs alike ("AMD EPYC"); this tells them apart.
    /// </summary>
    public string? CpuKind { get; init; }

    /// <summary>The key of this machine's section in docs/benchmarks.md: vendor, model name, kind of CPU and vector path.</summary>
    public string SectionKey => $"{Vendor ?? "unknown vendor"} | {Cpu} | {CpuKind ?? "unknown kind"} | {VectorPathText}";

    /// <summary>
    /// Reads /proc/cpuinfo, /proc/meminfo, sysfs and git (read-only) for the current machine and checkout, and measures its
    /// FMA peak and copy bandwidths (<see cref="Limits"/>, about a second).
    /// </summary>
    public static Machine Collect(string? repository)
    {
        var cpuinfo = ReadOrEmpty("/proc/cpuinfo");
        var cpu = Field(cpuinfo, "model name") ?? RuntimeInformation.ProcessArchitecture.ToString();
        var physicalIds = cpuinfo.Split('\n').Where(l => l.StartsWith("physical id", StringComparison.Ordinal)).Distinct().Count();
        int? physical = int.TryParse(Field(cpuinfo, "cpu cores"), CultureInfo.InvariantCulture, out var perSocket) ? perSocket * Math.Max(1, physicalIds) : null;
        var memKb = Field(ReadOrEmpty("/proc/meminfo"), "MemTotal")?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        long? memory = long.TryParse(memKb, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
        var env = new[] { "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "DOTNET_PROCESSOR_COUNT", "DOTNET_GCRegionSize", "DOTNET_GCLOHThreshold", "DOTNET_GCRegionRange", "DOTNET_gcConcurrent", "DOTNET_EnableAVX512", "DOTNET_EnableAVX2", "DOTNET_TieredCompilation", "DOTNET_TieredPGO" }
            .ToDictionary(k => k, System.Environment.GetEnvironmentVariable);
        string? commit = null;
        bool? dirty = null;
        if (repository is not null)
        {
            commit = Run("git", ["-C", repository, "rev-parse", "--short", "HEAD"])?.Trim();
            // The report writes its section into docs/benchmarks.md, so a change there (the section of the run before,
            // not yet committed) is not a change to the code measured.
            var status = Run("git", ["-C", repository, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/benchmarks.md"]);
            dirty = status is null ? null : status.Trim().Length > 0;
        }

        var caches = CacheLevel.Detect();
        var l2 = caches.FirstOrDefault(c => c.Level == 2)?.Bytes;
        var vendor = Field(cpuinfo, "vendor_id") ?? Field(cpuinfo, "CPU implementer");
        var family = Field(cpuinfo, "cpu family") is { } f
            ? $"family {f}, model {Field(cpuinfo, "model")}, stepping {Field(cpuinfo, "stepping")}"
            : Field(cpuinfo, "CPU part") is { } part ? $"part {part}, variant {Field(cpuinfo, "CPU variant")}, revision {Field(cpuinfo, "CPU revision")}" : null;
        return new Machine(cpu, System.Environment.ProcessorCount, physical, memory, l2, Vector512.IsHardwareAccelerated,
            RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, DateTime.UtcNow, commit, dirty, ReadLoadAverage(), env, GcSettings(), Limits.Measure())
        {
            Vendor = vendor,
            FamilyModel = family,
            CpuKind = Microarchitecture.Kind(vendor, Field(cpuinfo, "cpu family"), Field(cpuinfo, "model"), Field(cpuinfo, "CPU part")),
            InstructionSets = VectorPath.InstructionSets(),
            Caches = caches,
            HardwareBits = VectorPath.HardwareBits(CpuFlags()),
        };
    }

    /// <summary>The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on ARM), or "" when unknown.</summary>
    public static string CpuFlags()
    {
        var cpuinfo = ReadOrEmpty("/proc/cpuinfo");
        return Field(cpuinfo, "flags") ?? Field(cpuinfo, "Features") ?? "";
    }

    /// <summary>The GC's mode and the runtimeconfig settings that decide where large tensors live (see docs/design.md).</summary>
    public static string GcSettings()
    {
        static string Setting(string name) => AppContext.GetData(name) is { } v ? Convert.ToString(v, CultureInfo.InvariantCulture) ?? "?" : "default";
        var mode = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation";
        var concurrent = Convert.ToString(AppContext.GetData("System.GC.Concurrent"), CultureInfo.InvariantCulture) switch
        {
            "false" or "False" => "non-concurrent",
            "true" or "True" => "concurrent",
            _ => "concurrent (default)",
        };
        return $"{mode}, {concurrent}; System.GC.RegionSize = {Setting("System.GC.RegionSize")}, System.GC.LOHThreshold = {Setting("System.GC.LOHThreshold")}, System.GC.RegionRange = {Setting("System.GC.RegionRange")} (runtimeconfig)";
    }

    /// <summary>Runs a program and returns its standard output, or null when it cannot be started or fails.</summary>
    public static string? Run(string file, IEnumerable<string> arguments, TimeSpan? timeout = null)
    {
        try
        {
            var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in arguments)
            {
                info.ArgumentList.Add(a);
            }

            using var process = Process.Start(info);
            if (process is null)
            {
                return null;
            }

            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(30)))
            {
                process.Kill(entireProcessTree: true);
                return null;
            }

            return process.ExitCode == 0 ? stdout.Result : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    /// <summary>The 1-, 5- and 15-minute load averages from /proc/loadavg, or null.</summary>
    public static string? ReadLoadAverage()
    {
        var fields = ReadOrEmpty("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 3 ? string.Join(' ', fields[..3]) : null;
    }

    internal static string? Field(string text, string name)
    {
        foreach (var line in text.Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Trim() == name)
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return null;
    }

    internal static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }
}
