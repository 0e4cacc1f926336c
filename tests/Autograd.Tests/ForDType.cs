namespace Autograd.Tests;

/// <summary>Values that depend on the dtype under test: tolerances, unit roundoffs.</summary>
internal static class ForDType
{
    /// <summary>
    /// <paramref name="float32"/> for a float32 tensor, <paramref name="float64"/> for any other (float64, and int64,
    /// which is exact).
    /// </summary>
    public static T Pick<T>(DType dtype, T float64, T float32) => dtype == DType.Float32 ? float32 : float64;
}
