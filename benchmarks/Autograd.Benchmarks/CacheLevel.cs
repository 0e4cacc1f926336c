using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Benchmarks;

/// <summary>One cache level as the report states it.</summary>
/// <param name="Level">1, 2, 3…</param>
/// <param name="Type">"Data", "Instruction" or "Unified".</param>
/// <param name="Bytes">Its size.</param>
/// <param name="SharedBy">How many logical processors share one such cache, or null when the source does not say.</param>
/// <param name="Source">Where the size came from: "sysfs" or "CPUID".</param>
public sealed record CacheLevel(int Level, string Type, long Bytes, int? SharedBy, string Source)
{
    /// <summary>"L1d 48 KiB", "L2 1 MiB per core", "L3 32 MiB shared by 16".</summary>
    public override string ToString()
    {
        var name = Type switch { "Data" => $"L{Level}d", "Instruction" => $"L{Level}i", _ => $"L{Level}" };
        var size = Bytes >= 1024 * 1024 && Bytes % (1024 * 1024) == 0 ? $"{Bytes / (1024 * 1024)} MiB"
            : Bytes >= 1024 * 1024 ? (Bytes / (1024.0 * 1024)).ToString("0.#", CultureInfo.InvariantCulture) + " MiB"
            : $"{Bytes / 1024} KiB";
        var scope = SharedBy switch { null => "", <= 2 when Level <= 2 => " per core", var n => $" shared by {n} logical processors" };
        return $"{name} {size}{scope}";
    }

    /// <summary>
    /// The caches of cpu0: from /sys/devices/system/cpu/cpu0/cache/index*/{level,type,size,shared_cpu_list} when the
    /// kernel exposes them, else from CPUID (leaf 4 on Intel, 0x8000001D or else 0x80000005/6 on AMD; a virtual
    /// machine may report the host's L3 there). Empty when neither says anything.
    /// </summary>
    public static IReadOnlyList<CacheLevel> Detect()
    {
        var fromSysfs = FromSysfs("/sys/devices/system/cpu/cpu0/cache");
        return fromSysfs.Count > 0 ? fromSysfs : FromCpuid();
    }

    /// <summary>The caches described under a sysfs cache directory (index0, index1, …), smallest level first.</summary>
    public static IReadOnlyList<CacheLevel> FromSysfs(string directory)
    {
        var caches = new List<CacheLevel>();
        if (!Directory.Exists(directory))
        {
            return caches;
        }

        foreach (var index in Directory.GetDirectories(directory, "index*").Order(StringComparer.Ordinal))
        {
            string Read(string name) => Machine.ReadOrEmpty(Path.Combine(index, name)).Trim();
            if (int.TryParse(Read("level"), CultureInfo.InvariantCulture, out var level) && ParseSize(Read("size")) is { } bytes)
            {
                caches.Add(new CacheLevel(level, Read("type"), bytes, CountCpus(Read("shared_cpu_list")), "sysfs"));
            }
        }

        return [.. caches.OrderBy(c => c.Level).ThenBy(c => c.Type, StringComparer.Ordinal)];
    }

    /// <summary>A sysfs size such as "48K", "1024K" or "32M" in bytes, or null.</summary>
    public static long? ParseSize(string text)
    {
        if (text.Length == 0)
        {
            return null;
        }

        var scale = text[^1] switch { 'K' => 1024L, 'M' => 1024L * 1024, 'G' => 1024L * 1024 * 1024, _ => 1L };
        var digits = char.IsDigit(text[^1]) ? text : text[..^1];
        return long.TryParse(digits, CultureInfo.InvariantCulture, out var n) ? n * scale : null;
    }

    /// <summary>The number of CPUs in a list such as "0-3,8-11", or null when it is empty or malformed.</summary>
    public static int? CountCpus(string list)
    {
        var count = 0;
        foreach (var part in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var dash = part.IndexOf('-', StringComparison.Ordinal);
            if (dash < 0 ? !int.TryParse(part, CultureInfo.InvariantCulture, out _) : !(int.TryParse(part[..dash], CultureInfo.InvariantCulture, out var a) && int.TryParse(part[(dash + 1)..], CultureInfo.InvariantCulture, out var b) && b >= a))
            {
                return null;
            }

            count += dash < 0 ? 1 : int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture) - int.Parse(part[..dash], CultureInfo.InvariantCulture) + 1;
        }

        return count == 0 ? null : count;
    }

    private static List<CacheLevel> FromCpuid()
    {
        var caches = new List<CacheLevel>();
        if (!X86Base.IsSupported || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            return caches;
        }

        var (maxLeaf, vendorB, vendorC, vendorD) = X86Base.CpuId(0, 0);
        var (maxExtended, _, _, _) = X86Base.CpuId(unchecked((int)0x80000000), 0);
        var amd = vendorB == 0x68747541; // "Auth" of AuthenticAMD
        _ = (vendorC, vendorD);
        var leaf = amd ? unchecked((int)0x8000001D) : 4;
        if ((amd && (uint)maxExtended >= 0x8000001D) || (!amd && maxLeaf >= 4))
        {
            for (var sub = 0; sub < 8; sub++)
            {
                var (a, b, c, _) = X86Base.CpuId(leaf, sub);
                var type = a & 0x1f;
                if (type == 0)
                {
                    break;
                }

                var bytes = (((b >> 22) & 0x3ffL) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) * ((uint)c + 1L);
                caches.Add(new CacheLevel((a >> 5) & 7, type switch { 1 => "Data", 2 => "Instruction", _ => "Unified" }, bytes, ((a >> 14) & 0xfff) + 1, "CPUID"));
            }
        }

        if (caches.Count == 0 && amd && (uint)maxExtended >= 0x80000006)
        {
            var (_, _, l1c, l1d) = X86Base.CpuId(unchecked((int)0x80000005), 0);
            var (_, _, l2c, l3d) = X86Base.CpuId(unchecked((int)0x80000006), 0);
            AddIfAny(caches, 1, "Data", ((uint)l1c >> 24) * 1024L);
            AddIfAny(caches, 1, "Instruction", ((uint)l1d >> 24) * 1024L);
            AddIfAny(caches, 2, "Unified", ((uint)l2c >> 16) * 1024L);
            AddIfAny(caches, 3, "Unified", ((uint)l3d >> 18) * 512L * 1024);
        }

        return [.. caches.OrderBy(c => c.Level).ThenBy(c => c.Type, StringComparer.Ordinal)];
    }

    private static void AddIfAny(List<CacheLevel> caches, int level, string type, long bytes)
    {
        if (bytes > 0)
        {
            caches.Add(new CacheLevel(level, type, bytes, null, "CPUID"));
        }
    }
}
