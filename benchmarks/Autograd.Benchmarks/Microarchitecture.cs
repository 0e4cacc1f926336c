using System.Globalization;

namespace Autograd.Benchmarks;

/// <summary>
/// The core design of an x86 CPU from its vendor and its family and model numbers (as /proc/cpuinfo writes them,
/// decimal), for the families whose vector units differ in ways the report's figures show: a virtual machine often names
/// every AMD server "AMD EPYC", while Zen 3 has no AVX-512, Zen 4 runs 512-bit instructions on 256-bit units and Zen 5 on
/// 512-bit ones. Null for a family or model not in the table (the report then shows the numbers alone).
/// </summary>
public static class Microarchitecture
{
    /// <summary>The core design ("Zen 4", "Sapphire Rapids", …), or null when the table does not know it.</summary>
    public static string? Name(string? vendor, int family, int model) => vendor switch
    {
        "AuthenticAMD" => family switch
        {
            0x17 => model < 0x30 ? "Zen or Zen+" : "Zen 2",
            0x19 => model switch
            {
                (>= 0x10 and <= 0x1F) or (>= 0x60 and <= 0x7F) or (>= 0xA0 and <= 0xAF) => "Zen 4",
                (>= 0x00 and <= 0x0F) or (>= 0x20 and <= 0x5F) => "Zen 3",
                _ => null,
            },
            0x1A when model <= 0x4F => "Zen 5",
            _ => null,
        },
        "GenuineIntel" when family == 6 => model switch
        {
            0x55 => "Skylake-SP / Cascade Lake",
            0x6A or 0x6C => "Ice Lake-SP",
            0x8F => "Sapphire Rapids",
            0xCF => "Emerald Rapids",
            0xAD or 0xAE => "Granite Rapids",
            0x4F or 0x56 => "Broadwell",
            0x3F => "Haswell",
            0x97 or 0x9A => "Alder Lake",
            0xB7 or 0xBA or 0xBF => "Raptor Lake",
            _ => null,
        },
        _ => null,
    };

    /// <summary>
    /// What names the kind of CPU in the report: "Zen 4: family 25, model 17" (the core design where known, then the
    /// numbers, without the stepping), "part 0xd0c" on ARM, or null when /proc/cpuinfo gives neither.
    /// </summary>
    public static string? Kind(string? vendor, string? family, string? model, string? armPart)
    {
        if (int.TryParse(family, NumberStyles.Integer, CultureInfo.InvariantCulture, out var f)
            && int.TryParse(model, NumberStyles.Integer, CultureInfo.InvariantCulture, out var m))
        {
            var numbers = $"family {f}, model {m}";
            return Name(vendor, f, m) is { } name ? $"{name}: {numbers}" : numbers;
        }

        return armPart is null ? null : $"part {armPart}";
    }
}
