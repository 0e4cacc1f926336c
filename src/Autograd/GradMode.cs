namespace Autograd;

/// <summary>
/// Whether operations are recorded on the tape. Grad mode is per thread and on by default; inside a
/// <see cref="NoGrad"/> scope nothing is recorded.
/// </summary>
public static class GradMode
{
    [ThreadStatic]
    private static bool t_disabled;

    /// <summary>True when operations on this thread are being recorded.</summary>
    public static bool IsEnabled
    {
        get => !t_disabled;
        set => t_disabled = !value;
    }

    /// <summary>Disables recording on this thread until the returned scope is disposed (scopes nest).</summary>
    public static GradModeScope NoGrad() => new(false);

    /// <summary>Enables recording on this thread until the returned scope is disposed, even inside <see cref="NoGrad"/>.</summary>
    public static GradModeScope EnableGrad() => new(true);
}

/// <summary>A scope that sets grad mode and restores the previous mode when disposed. Allocation free.</summary>
public readonly struct GradModeScope : IDisposable
{
    private readonly bool _previous;

    internal GradModeScope(bool enabled)
    {
        _previous = GradMode.IsEnabled;
        GradMode.IsEnabled = enabled;
    }

    /// <summary>Restores the grad mode that was in force when the scope was created.</summary>
    public void Dispose() => GradMode.IsEnabled = _previous;
}
