using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// Checks that a run meant for one vector width or one processor really has it. A run that turns wide vectors off
/// (<c>DOTNET_EnableAVX512=0</c>, <c>DOTNET_EnableAVX2=0</c>) or runs under an emulator sets
/// <c>AUTOGRAD_EXPECT_VECTOR_BITS</c> (512, 256 or 128: the widest accelerated vector, which is also the GEMM's
/// micro-kernel width) and may set <c>AUTOGRAD_EXPECT_ARCHITECTURE</c> (X64 or Arm64); without them these tests have
/// nothing to check and pass.
/// </summary>
/// <remarks>
/// The class is in a collection that runs alone, because <see cref="GemmTests"/> forces the GEMM's width while it runs.
/// </remarks>
[Collection(ProcessWideSettings.Name)]
public class VectorWidthTests(ITestOutputHelper output)
{
    [Fact]
    public void TheProcessHasTheExpectedVectorWidth()
    {
        output.WriteLine(
            $"{RuntimeInformation.ProcessArchitecture}: Vector512 {Vector512.IsHardwareAccelerated}, Vector256 {Vector256.IsHardwareAccelerated}, " +
            $"Vector128 {Vector128.IsHardwareAccelerated}, Avx512F {Avx512F.IsSupported}, Avx2 {Avx2.IsSupported}, " +
            $"GEMM {Gemm.VectorBits<float>()} bits (float32), {Gemm.VectorBits<double>()} bits (float64)");
        var text = Environment.GetEnvironmentVariable("AUTOGRAD_EXPECT_VECTOR_BITS");
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        var bits = int.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        Assert.Contains(bits, new[] { 128, 256, 512 });
        Assert.Equal(-1, Gemm.ForcedVectorBits);
        Assert.Equal(bits, Gemm.VectorBits<float>());
        Assert.Equal(bits, Gemm.VectorBits<double>());
        Assert.Equal(bits >= 512, Vector512.IsHardwareAccelerated);
        Assert.Equal(bits >= 256, Vector256.IsHardwareAccelerated);
        Assert.True(Vector128.IsHardwareAccelerated);
        if (RuntimeInformation.ProcessArchitecture == Architecture.X64)
        {
            Assert.Equal(bits >= 512, Avx512F.IsSupported);
            Assert.Equal(bits >= 256, Avx2.IsSupported);
        }
    }

    [Fact]
    public void TheProcessRunsOnTheExpectedArchitecture()
    {
        var text = Environment.GetEnvironmentVariable("AUTOGRAD_EXPECT_ARCHITECTURE");
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        Assert.Equal(Enum.Parse<Architecture>(text, ignoreCase: true), RuntimeInformation.ProcessArchitecture);
    }
}
