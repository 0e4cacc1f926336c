namespace Autograd;

/// <summary>The element type of a <see cref="Tensor"/>.</summary>
public enum DType
{
    /// <summary>64-bit IEEE floating point (<see cref="double"/>); the default, as in the article Autograd started from.</summary>
    Float64,

    /// <summary>32-bit IEEE floating point (<see cref="float"/>).</summary>
    Float32,

    /// <summary>64-bit signed integers (<see cref="long"/>): indices such as those returned by ArgMax. Not differentiable.</summary>
    Int64,
}

/// <summary>Helpers for <see cref="DType"/>.</summary>
public static class DTypeExtensions
{
    /// <summary>The lower-case name used in messages and printing: <c>float64</c>, <c>float32</c>, <c>int64</c>.</summary>
    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float64 => "float64",
        DType.Float32 => "float32",
        DType.Int64 => "int64",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };

    /// <summary>True for the floating-point types, the only ones that can carry gradients.</summary>
    public static bool IsFloatingPoint(this DType dtype) => dtype is DType.Float64 or DType.Float32;

    /// <summary>The size of one element in bytes.</summary>
    public static int ElementSize(this DType dtype) => dtype == DType.Float32 ? 4 : 8;
}
