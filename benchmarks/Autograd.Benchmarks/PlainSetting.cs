using System.Globalization;
using System.Xml.Linq;

namespace Autograd.Benchmarks;

/// <summary>A setting the plain program runs in: a name, what it stands for, and the environment variables that make it.</summary>
/// <param name="Name">Short name for logs and the table.</param>
/// <param name="Description">What the setting is, for the report.</param>
/// <param name="Environment">Variables set in the child over the inherited environment.</param>
public sealed record PlainSetting(string Name, string Description, IReadOnlyList<(string Name, string Value)> Environment)
{
    /// <summary>The variables as "A=1, B=0x10".</summary>
    public string EnvironmentText => string.Join(", ", Environment.Select(e => $"{e.Name}={e.Value}"));

    /// <summary>
    /// The runtime's own defaults, whatever this program's runtimeconfig.json says (it carries the package's settings):
    /// concurrent GC, the default region size, range and large-object threshold, and methods with loops starting in
    /// unoptimized code.
    /// </summary>
    public static IReadOnlyList<(string Name, string Value)> RuntimeDefaults { get; } =
        [("DOTNET_gcConcurrent", "1"), ("DOTNET_GCRegionSize", "0"), ("DOTNET_GCLOHThreshold", "0x14C08"), ("DOTNET_GCRegionRange", "0"), ("DOTNET_TC_QuickJitForLoops", "1")];

    /// <summary>Used when the package's settings file is missing: the runtime's defaults with the non-concurrent GC.</summary>
    public static IReadOnlyList<(string Name, string Value)> FallbackPackageSettings { get; } = [("DOTNET_gcConcurrent", "0")];

    /// <summary>The package's settings file, relative to the repository root.</summary>
    public const string PackageTargets = "src/Autograd/buildTransitive/Autograd.targets";

    /// <summary>
    /// The settings of the report: the runtime's defaults; the settings the Autograd package carries into a consuming
    /// application (read from <see cref="PackageTargets"/>, over the runtime's defaults); those on one CPU
    /// (<c>DOTNET_PROCESSOR_COUNT=1</c>, what a one-CPU container reports); and, when the package leaves the GC
    /// concurrent, its settings with the non-concurrent GC that the BenchmarkDotNet part runs with.
    /// </summary>
    public static IReadOnlyList<PlainSetting> ForReport(string repositoryRoot)
    {
        var path = Path.Combine(repositoryRoot, PackageTargets);
        string source;
        IReadOnlyList<(string Name, string Value)> package;
        if (File.Exists(path))
        {
            package = FromTargets(File.ReadAllText(path), out var ignored);
            source = $"`{PackageTargets}`" + (ignored.Count > 0 ? $" (not applied here: {string.Join(", ", ignored)})" : "");
        }
        else
        {
            package = FallbackPackageSettings;
            source = $"`{PackageTargets}` is missing: the non-concurrent GC";
        }

        var packaged = Overlay(RuntimeDefaults, package);
        List<PlainSetting> settings =
        [
            new PlainSetting("defaults", "the runtime's defaults (concurrent GC, default regions and large-object threshold, quick JIT for loops)", RuntimeDefaults),
            new PlainSetting("package", $"what the Autograd package carries into an application, from {source}", packaged),
            new PlainSetting("one CPU", "the package's settings on one CPU (`DOTNET_PROCESSOR_COUNT=1`, as a one-CPU container reports)", Overlay(packaged, [("DOTNET_PROCESSOR_COUNT", "1")])),
        ];
        if (packaged.Contains(("DOTNET_gcConcurrent", "1")))
        {
            settings.Add(new PlainSetting("non-concurrent", "the package's settings with the non-concurrent GC of this program's runtimeconfig, as the BenchmarkDotNet part runs", Overlay(packaged, [("DOTNET_gcConcurrent", "0")])));
        }

        return settings;
    }

    /// <summary>
    /// The environment variables equivalent to the runtime settings an MSBuild targets/props file sets: its
    /// <c>RuntimeHostConfigurationOption</c> items and the properties ConcurrentGarbageCollection, ServerGarbageCollection,
    /// TieredCompilation, TieredPGO and TieredCompilationQuickJitForLoops (conditions are not evaluated: the settings
    /// as an application without its own values gets them). Settings with no known variable go to <paramref name="ignored"/>.
    /// </summary>
    public static IReadOnlyList<(string Name, string Value)> FromTargets(string xml, out List<string> ignored)
    {
        ignored = [];
        var result = new List<(string, string)>();
        var doc = XDocument.Parse(xml);
        foreach (var element in doc.Descendants())
        {
            var local = element.Name.LocalName;
            if (local == "RuntimeHostConfigurationOption")
            {
                var name = (string?)element.Attribute("Include") ?? "";
                var value = (string?)element.Attribute("Value") ?? "";
                if (Variable(name, value) is { } v)
                {
                    result.Add(v);
                }
                else
                {
                    ignored.Add($"{name}={value}");
                }
            }
            else if (Property(local, element.Value.Trim()) is { } p)
            {
                result.Add(p);
            }
        }

        return result;
    }

    /// <summary>The settings of <paramref name="first"/> with those of <paramref name="second"/> replacing or adding to them.</summary>
    public static IReadOnlyList<(string Name, string Value)> Overlay(IReadOnlyList<(string Name, string Value)> first, IReadOnlyList<(string Name, string Value)> second) =>
        [.. first.Where(f => !second.Any(s => s.Name == f.Name)), .. second];

    private static (string, string)? Variable(string option, string value) => option switch
    {
        "System.GC.RegionSize" => ("DOTNET_GCRegionSize", Hex(value)),
        "System.GC.LOHThreshold" => ("DOTNET_GCLOHThreshold", Hex(value)),
        "System.GC.RegionRange" => ("DOTNET_GCRegionRange", Hex(value)),
        "System.GC.Concurrent" => ("DOTNET_gcConcurrent", Flag(value)),
        "System.GC.Server" => ("DOTNET_gcServer", Flag(value)),
        "System.GC.RetainVM" => ("DOTNET_GCRetainVM", Flag(value)),
        "System.GC.ConserveMemory" => ("DOTNET_GCConserveMemory", Hex(value)),
        "System.Runtime.TieredCompilation" => ("DOTNET_TieredCompilation", Flag(value)),
        "System.Runtime.TieredPGO" => ("DOTNET_TieredPGO", Flag(value)),
        "System.Runtime.TieredCompilation.QuickJitForLoops" => ("DOTNET_TC_QuickJitForLoops", Flag(value)),
        _ => null,
    };

    private static (string, string)? Property(string name, string value) => name switch
    {
        "ConcurrentGarbageCollection" => ("DOTNET_gcConcurrent", Flag(value)),
        "ServerGarbageCollection" => ("DOTNET_gcServer", Flag(value)),
        "TieredCompilation" => ("DOTNET_TieredCompilation", Flag(value)),
        "TieredPGO" => ("DOTNET_TieredPGO", Flag(value)),
        "TieredCompilationQuickJitForLoops" => ("DOTNET_TC_QuickJitForLoops", Flag(value)),
        _ => null,
    };

    /// <summary>GC settings are read from the environment as hexadecimal numbers.</summary>
    private static string Hex(string value) =>
        long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? "0x" + n.ToString("X", CultureInfo.InvariantCulture) : value;

    private static string Flag(string value) => value.Equals("true", StringComparison.OrdinalIgnoreCase) || value == "1" ? "1" : "0";
}
