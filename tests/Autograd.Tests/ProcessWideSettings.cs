namespace Autograd.Tests;

/// <summary>
/// Tests that change process-wide settings (the GEMM's forced micro-kernel width, its thread count and threshold) run in
/// this collection, alone, so no other test computes with their settings.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideSettings
{
    /// <summary>The collection's name.</summary>
    public const string Name = "Process-wide settings";
}
