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
        var env = new[] { "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "DOTNET_PROCESSOR_COUNT", "DOTNET_GCRegionSize", "DOTNET_GCLOHThreshold", "DOTNET_gcConcurrent" }
            .ToDictionary(k => k, System.Environment.GetEnvironmentVariable);
        string? commit = null;
        bool? dirty = null;
        if (repository is not null)
        {
            commit = Run("git", ["-C", repository, "rev-parse", "--short", "HEAD"])?.Trim();
            var status = Run("git", ["-C", repository, "status", "--porcelain", "--untracked-files=no"]);
            dirty = status is null ? null : status.Trim().Length > 0;
        }

        return new Machine(cpu, System.Environment.ProcessorCount, physical, memory, L2Size(), Vector512.IsHardwareAccelerated,
            RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, DateTime.UtcNow, commit, dirty, ReadLoadAverage(), env, GcSettings(), Limits.Measure());
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
        return $"{mode}, {concurrent}; System.GC.RegionSize = {Setting("System.GC.RegionSize")}, System.GC.LOHThreshold = {Setting("System.GC.LOHThreshold")} (runtimeconfig)";
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

    private static long? L2Size()
    {
        // index2 is the unified L2 on x86 Linux; its size reads like "2048K".
        var text = ReadOrEmpty("/sys/devices/system/cpu/cpu0/cache/index2/size").Trim();
        if (text.Length == 0)
        {
            return null;
        }

        var scale = text[^1] switch { 'K' => 1024L, 'M' => 1024L * 1024, _ => 1L };
        var digits = char.IsDigit(text[^1]) ? text : text[..^1];
        return long.TryParse(digits, CultureInfo.InvariantCulture, out var n) ? n * scale : null;
    }

    private static string? Field(string text, string name)
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

    private static string ReadOrEmpty(string path)
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
