using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Autograd.Benchmarks;

/// <summary>
/// The vector width the runtime uses and the <c>--isa</c> switch that picks a narrower one. The runtime reads its
/// instruction-set switches once, at start-up, so <c>--isa</c> re-launches this program as a child process with the
/// switch in its environment (<c>DOTNET_EnableAVX512=0</c> for 256-bit, <c>DOTNET_EnableAVX2=0</c> for 128-bit; on
/// .NET 10 <c>DOTNET_EnableAVX512F=0</c> leaves 512-bit vectors on), and the child checks that it got the width asked for.
/// </summary>
public static class VectorPath
{
    /// <summary>The environment variable through which the parent tells the child which width it must run.</summary>
    public const string RequestVariable = "AUTOGRAD_BENCH_ISA";

    /// <summary>The names <c>--isa</c> accepts, widest first, with their vector width in bits.</summary>
    public static readonly (string Name, int Bits)[] Names = [("avx512", 512), ("avx2", 256), ("vector128", 128)];

    /// <summary>The width of the vectors the runtime accelerates in this process: 512, 256, 128 or 0.</summary>
    public static int CurrentBits =>
        Vector512.IsHardwareAccelerated ? 512 : Vector256.IsHardwareAccelerated ? 256 : Vector128.IsHardwareAccelerated ? 128 : 0;

    /// <summary>
    /// The widest vectors the CPU itself offers, whatever the runtime was told: from the flags of /proc/cpuinfo
    /// (avx512f; avx2 with fma; sse2 or asimd), or what the runtime uses when there are no flags to read.
    /// </summary>
    public static int HardwareBits(string cpuFlags)
    {
        var flags = cpuFlags.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return flags.Count == 0 ? CurrentBits
            : flags.Contains("avx512f") ? 512 : flags.Contains("avx2") && flags.Contains("fma") ? 256 : flags.Contains("sse2") || flags.Contains("asimd") ? 128 : 0;
    }

    /// <summary>
    /// What <c>--isa</c> in <paramref name="args"/> asks for: no request (Bits 0, no error), the width to run and the
    /// arguments without the switch, or the message refusing it (unknown name, or wider than the CPU's
    /// <paramref name="cpuFlags"/> allow).
    /// </summary>
    public static (int Bits, string[] Arguments, string? Error) Plan(string[] args, string cpuFlags)
    {
        var at = Array.IndexOf(args, "--isa");
        if (at < 0)
        {
            return (0, args, null);
        }

        var names = string.Join('|', Names.Select(n => n.Name));
        if (at + 1 >= args.Length || Parse(args[at + 1]) is not { } bits)
        {
            return (0, args, $"--isa: expected one of {names}, got '{(at + 1 < args.Length ? args[at + 1] : "")}'");
        }

        var hardware = HardwareBits(cpuFlags);
        if (bits > hardware)
        {
            return (0, args, $"--isa {args[at + 1]}: this CPU offers {(hardware == 0 ? "no" : $"{hardware}-bit")} vectors at most, so it cannot run the {bits}-bit paths");
        }

        return (bits, [.. args.Take(at), .. args.Skip(at + 2)], null);
    }

    /// <summary>The environment switch that turns off the wider paths for a width, or null when none is needed.</summary>
    public static (string Name, string Value)? Switch(int bits) => bits switch
    {
        256 => ("DOTNET_EnableAVX512", "0"),
        128 => ("DOTNET_EnableAVX2", "0"),
        _ => null,
    };

    /// <summary>
    /// "512-bit", "256-bit on an AVX-512 CPU (DOTNET_EnableAVX512=0)" and the like: the path in use and, when the CPU
    /// offers wider vectors, that they were switched off and by what (<paramref name="switchedOff"/>), or that the runtime
    /// chose the narrower path itself.
    /// </summary>
    public static string Describe(int bits, int hardwareBits, bool switchedOff = true)
    {
        var path = bits == 0 ? "scalar" : $"{bits}-bit";
        if (hardwareBits <= bits)
        {
            return path;
        }

        var cpu = hardwareBits switch { 512 => "an AVX-512 CPU", 256 => "an AVX2 CPU", _ => $"a {hardwareBits}-bit CPU" };
        var how = !switchedOff ? " (the runtime's choice)" : Switch(bits) is { } s ? $" ({s.Name}={s.Value})" : "";
        return $"{path} on {cpu}{how}";
    }

    /// <summary>
    /// The environment that holds PyTorch's own kernels to <paramref name="bits"/> when that is narrower than the CPU's
    /// <paramref name="hardwareBits"/> on x86: oneDNN's (its convolutions) through <c>ONEDNN_MAX_CPU_ISA</c>, ATen's
    /// vectorised loops through <c>ATEN_CPU_CAPABILITY</c>, OpenBLAS's through <c>OPENBLAS_CORETYPE</c>. A section measured
    /// on 256-bit paths of an AVX-512 CPU then compares with what PyTorch runs on an AVX2-only CPU: on the AMD EPYC (Zen 5)
    /// VM, PyTorch's softmax fwd+bwd of 1024×1024 float32 took 564 µs with the AVX-512 kernels it picks there and 877 µs
    /// with its AVX2 ones, and its Conv2d fwd+bwd 32→64 on [64, 32, 14, 14] 6.5 ms with oneDNN's AVX-512 code and 10.4 ms
    /// with its AVX2 code. Empty on the CPU's own width and off x86.
    /// </summary>
    public static IReadOnlyList<(string Name, string Value)> PeerLimits(int bits, int hardwareBits)
        => RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.X86) || bits >= hardwareBits
            ? []
            : bits switch
            {
                256 => [("ONEDNN_MAX_CPU_ISA", "AVX2"), ("ATEN_CPU_CAPABILITY", "avx2"), ("OPENBLAS_CORETYPE", "Haswell")],
                128 => [("ONEDNN_MAX_CPU_ISA", "SSE41"), ("ATEN_CPU_CAPABILITY", "default"), ("OPENBLAS_CORETYPE", "Nehalem")],
                _ => [],
            };

    /// <summary>
    /// Sets each of <see cref="PeerLimits"/> for this process's width that the environment does not set already, so the
    /// PyTorch peers it starts inherit them; returns the ones it set.
    /// </summary>
    public static IReadOnlyList<(string Name, string Value)> LimitPeers(string cpuFlags)
    {
        var set = new List<(string Name, string Value)>();
        foreach (var (name, value) in PeerLimits(CurrentBits, HardwareBits(cpuFlags)))
        {
            if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name)))
            {
                Environment.SetEnvironmentVariable(name, value);
                set.Add((name, value));
            }
        }

        return set;
    }

    /// <summary>Whether this process's environment holds the switch that narrows the vectors to <paramref name="bits"/>.</summary>
    public static bool SwitchedOffHere(int bits) =>
        Switch(bits) is { } s && Environment.GetEnvironmentVariable(s.Name) is { } v && v.Trim() == s.Value;

    /// <summary>
    /// The instruction sets the runtime uses in this process, as the report names them: "AVX-512 F/BW/CD/DQ/VL/VBMI,
    /// AVX2, FMA" on x86, "AdvSimd (NEON), …" on ARM64.
    /// </summary>
    public static string InstructionSets()
    {
        var sets = new List<string>();
        if (RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86)
        {
            var avx512 = new List<string>();
            void Add512(bool supported, string name)
            {
                if (supported)
                {
                    avx512.Add(name);
                }
            }

            Add512(Avx512F.IsSupported, "F");
            Add512(Avx512BW.IsSupported, "BW");
            Add512(Avx512CD.IsSupported, "CD");
            Add512(Avx512DQ.IsSupported, "DQ");
            Add512(Avx512F.VL.IsSupported, "VL");
            Add512(Avx512Vbmi.IsSupported, "VBMI");
            if (avx512.Count > 0)
            {
                sets.Add("AVX-512 " + string.Join('/', avx512));
            }

            if (Avx10v1.IsSupported)
            {
                sets.Add("AVX10.1");
            }

            if (AvxVnni.IsSupported)
            {
                sets.Add("AVX-VNNI");
            }

            sets.Add(Avx2.IsSupported ? "AVX2" : Avx.IsSupported ? "AVX" : Sse42.IsSupported ? "SSE4.2" : "SSE2");
            if (Fma.IsSupported)
            {
                sets.Add("FMA");
            }
        }
        else if (RuntimeInformation.ProcessArchitecture == Architecture.Arm64)
        {
            if (System.Runtime.Intrinsics.Arm.AdvSimd.Arm64.IsSupported)
            {
                sets.Add("AdvSimd (NEON)");
            }

            if (System.Runtime.Intrinsics.Arm.Dp.IsSupported)
            {
                sets.Add("DotProd");
            }
        }

        return sets.Count == 0 ? "none accelerated" : string.Join(", ", sets);
    }

    /// <summary>The width named by an <c>--isa</c> value, or null for an unknown name.</summary>
    public static int? Parse(string name) =>
        Names.FirstOrDefault(n => n.Name.Equals(name, StringComparison.OrdinalIgnoreCase)) is { Name: not null } hit ? hit.Bits : null;

    /// <summary>
    /// Handles <c>--isa NAME</c> anywhere in <paramref name="args"/>: returns null when there is none (run here), else
    /// re-launches this program without it and with the width's switch set, and returns the child's exit code (2 when
    /// the name is unknown or the CPU cannot run that width).
    /// </summary>
    public static int? RelaunchIfAsked(string[] args, string cpuFlags)
    {
        var (bits, rest, error) = Plan(args, cpuFlags);
        if (error is not null)
        {
            Console.Error.WriteLine(error);
            return 2;
        }

        if (bits == 0)
        {
            return null;
        }

        var info = ChildStartInfo(rest);
        foreach (var variable in new[] { "DOTNET_EnableAVX512", "DOTNET_EnableAVX512F", "DOTNET_EnableAVX2", "DOTNET_EnableAVX", "DOTNET_EnableHWIntrinsic" })
        {
            info.Environment.Remove(variable);
        }

        if (Switch(bits) is { } s)
        {
            info.Environment[s.Name] = s.Value;
        }

        info.Environment[RequestVariable] = bits.ToString(System.Globalization.CultureInfo.InvariantCulture);
        Console.WriteLine($"--isa: running the {bits}-bit paths in a child process{(Switch(bits) is { } sw ? $" with {sw.Name}={sw.Value}" : "")}");
        using var child = Process.Start(info) ?? throw new InvalidOperationException("--isa: the child process did not start");
        child.WaitForExit();
        return child.ExitCode;
    }

    /// <summary>
    /// In a child started by <see cref="RelaunchIfAsked"/>: null when the runtime uses the width the parent asked for
    /// (or none was asked), else the message to fail with.
    /// </summary>
    public static string? CheckRequest()
    {
        var requested = Environment.GetEnvironmentVariable(RequestVariable);
        if (string.IsNullOrEmpty(requested))
        {
            return null;
        }

        var bits = int.Parse(requested, System.Globalization.CultureInfo.InvariantCulture);
        var fmaOk = bits == 128 || !(RuntimeInformation.ProcessArchitecture is Architecture.X64) || (Avx2.IsSupported && Fma.IsSupported);
        return CurrentBits == bits && fmaOk
            ? null
            : $"--isa: asked for the {bits}-bit paths but the runtime uses {CurrentBits}-bit vectors (Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, AVX2 {Avx2.IsSupported}, FMA {Fma.IsSupported}); the switch did not take effect";
    }

    /// <summary>
    /// A start info that runs this program again with <paramref name="args"/>: the app host directly, or
    /// <c>dotnet Autograd.Benchmarks.dll</c> when the program was started through the muxer. Output is not redirected.
    /// </summary>
    public static ProcessStartInfo ChildStartInfo(IEnumerable<string> args)
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this program is unknown");
        var info = new ProcessStartInfo(process) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            info.ArgumentList.Add(typeof(VectorPath).Assembly.Location);
        }

        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        return info;
    }

    /// <summary>
    /// Runs a child started from <paramref name="info"/> to its end with its standard output read line by line: the last
    /// line that starts with <paramref name="prefix"/> is the child's result (returned without the prefix, or null when
    /// there is none), every other line goes to <paramref name="echo"/>. Standard error is returned when
    /// <paramref name="info"/> redirects it, else it goes to this program's.
    /// </summary>
    public static (string? Result, int ExitCode, string Error) RunForResult(ProcessStartInfo info, string prefix, Action<string> echo)
    {
        info.RedirectStandardOutput = true;
        using var child = Process.Start(info) ?? throw new InvalidOperationException("the child did not start");
        var stderr = info.RedirectStandardError ? child.StandardError.ReadToEndAsync() : Task.FromResult("");
        string? result = null;
        while (child.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                result = line[prefix.Length..];
            }
            else
            {
                echo(line);
            }
        }

        child.WaitForExit();
        return (result, child.ExitCode, stderr.Result.Trim());
    }
}
