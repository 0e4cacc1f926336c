using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Autograd.Benchmarks;

/// <summary>
/// The physical limits of the machine the report runs on, measured rather than assumed: the float32 FMA peak of one
/// core on the widest vector path .NET uses here (so <c>DOTNET_EnableAVX512=0</c> measures the 256-bit path; on .NET 10 <c>DOTNET_EnableAVX512F=0</c> no longer turns 512-bit vectors off), and the
/// copy bandwidth from memory (all cores' share, one thread) and from L2 (one core).
/// </summary>
/// <param name="VectorBits">The width of the vectors the FMA loop ran on: 512, 256 or 128 (0 without acceleration).</param>
/// <param name="PeakGflopsPerCoreF32">float32 multiply-adds × 2 per second of one core, in GFLOP/s (float64: half).</param>
/// <param name="MemoryGBps">Bytes read and written per second by a copy of 256 MiB, in GB/s.</param>
/// <param name="L2GBps">Bytes read and written per second by copies within 128 KiB, in GB/s.</param>
/// <param name="Fused">Whether the loop ran fused multiply-adds; false on an x86 path without FMA (<c>DOTNET_EnableAVX2=0</c>
/// turns it off too), where it runs a multiply and an add, as the kernels then do.</param>
public sealed record Limits(int VectorBits, double PeakGflopsPerCoreF32, double MemoryGBps, double L2GBps, bool Fused = true)
{
    /// <summary>Measures the limits on the calling thread (about a second).</summary>
    public static Limits Measure()
    {
        var bits = VectorPath.CurrentBits;
        var fused = !(System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture is System.Runtime.InteropServices.Architecture.X64 or System.Runtime.InteropServices.Architecture.X86)
            || System.Runtime.Intrinsics.X86.Fma.IsSupported;
        return new Limits(bits, FmaPeak(fused ? bits : -bits), CopyBandwidth(256 << 20, 2), CopyBandwidth(128 << 10, 2000), fused);
    }

    /// <summary>
    /// The best of a few timed runs of 12 independent FMA chains (enough to fill two pipelines of latency 4–6); a
    /// negative width runs multiply-then-add chains on vectors of that width.
    /// </summary>
    private static double FmaPeak(int bits)
    {
        const int Iterations = 2_000_000;
        var lanes = bits == 0 ? 1 : Math.Abs(bits) / 32;
        var best = double.MaxValue;
        for (var run = 0; run < 5; run++)
        {
            var watch = Stopwatch.StartNew();
            var sink = bits switch
            {
                512 => Chains<Vector512<float>, Ops512>(Iterations),
                256 => Chains<Vector256<float>, Ops256>(Iterations),
                128 => Chains<Vector128<float>, Ops128>(Iterations),
                -512 => Chains<Vector512<float>, MulAdd512>(Iterations),
                -256 => Chains<Vector256<float>, MulAdd256>(Iterations),
                -128 => Chains<Vector128<float>, MulAdd128>(Iterations),
                _ => ChainsScalar(Iterations),
            };
            var seconds = watch.Elapsed.TotalSeconds;
            GC.KeepAlive(sink);
            best = Math.Min(best, seconds);
        }

        return 12.0 * 2 * lanes * Iterations / best / 1e9;
    }

    private static double CopyBandwidth(int bytes, int repeats)
    {
        var a = GC.AllocateUninitializedArray<byte>(bytes);
        var b = GC.AllocateUninitializedArray<byte>(bytes);
        a.AsSpan().Fill(1);
        b.AsSpan().Fill(2);
        var best = double.MaxValue;
        for (var run = 0; run < 5; run++)
        {
            var watch = Stopwatch.StartNew();
            for (var r = 0; r < repeats; r++)
            {
                (r % 2 == 0 ? a : b).AsSpan().CopyTo(r % 2 == 0 ? b : a);
            }

            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }

        return 2.0 * bytes * repeats / best / 1e9;
    }

    /// <summary>12 independent chains a ← a·m + c on vectors of type <typeparamref name="TV"/>, n steps each.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chains<TV, TOps>(int n)
        where TOps : IVectorOps<TV>
    {
        var m = TOps.Create(0.999999f);
        var c = TOps.Create(1e-7f);
        TV a0 = TOps.Create(1f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
        for (var i = 0; i < n; i++)
        {
            a0 = TOps.Fma(a0, m, c);
            a1 = TOps.Fma(a1, m, c);
            a2 = TOps.Fma(a2, m, c);
            a3 = TOps.Fma(a3, m, c);
            a4 = TOps.Fma(a4, m, c);
            a5 = TOps.Fma(a5, m, c);
            a6 = TOps.Fma(a6, m, c);
            a7 = TOps.Fma(a7, m, c);
            a8 = TOps.Fma(a8, m, c);
            a9 = TOps.Fma(a9, m, c);
            a10 = TOps.Fma(a10, m, c);
            a11 = TOps.Fma(a11, m, c);
        }

        return TOps.Sum(a0) + TOps.Sum(a1) + TOps.Sum(a2) + TOps.Sum(a3) + TOps.Sum(a4) + TOps.Sum(a5) + TOps.Sum(a6) + TOps.Sum(a7) + TOps.Sum(a8) + TOps.Sum(a9) + TOps.Sum(a10) + TOps.Sum(a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float ChainsScalar(int n)
    {
        float a0 = 1, a1 = 1, a2 = 1, a3 = 1, a4 = 1, a5 = 1, a6 = 1, a7 = 1, a8 = 1, a9 = 1, a10 = 1, a11 = 1;
        for (var i = 0; i < n; i++)
        {
            a0 = MathF.FusedMultiplyAdd(a0, 0.999999f, 1e-7f);
            a1 = MathF.FusedMultiplyAdd(a1, 0.999999f, 1e-7f);
            a2 = MathF.FusedMultiplyAdd(a2, 0.999999f, 1e-7f);
            a3 = MathF.FusedMultiplyAdd(a3, 0.999999f, 1e-7f);
            a4 = MathF.FusedMultiplyAdd(a4, 0.999999f, 1e-7f);
            a5 = MathF.FusedMultiplyAdd(a5, 0.999999f, 1e-7f);
            a6 = MathF.FusedMultiplyAdd(a6, 0.999999f, 1e-7f);
            a7 = MathF.FusedMultiplyAdd(a7, 0.999999f, 1e-7f);
            a8 = MathF.FusedMultiplyAdd(a8, 0.999999f, 1e-7f);
            a9 = MathF.FusedMultiplyAdd(a9, 0.999999f, 1e-7f);
            a10 = MathF.FusedMultiplyAdd(a10, 0.999999f, 1e-7f);
            a11 = MathF.FusedMultiplyAdd(a11, 0.999999f, 1e-7f);
        }

        return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    }

    /// <summary>What the FMA loop needs of a vector type.</summary>
    private interface IVectorOps<TV>
    {
        static abstract TV Create(float value);

        static abstract TV Fma(TV a, TV b, TV c);

        static abstract float Sum(TV v);
    }

    private readonly struct Ops512 : IVectorOps<Vector512<float>>
    {
        public static Vector512<float> Create(float value) => Vector512.Create(value);

        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);

        public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    }

    private readonly struct Ops256 : IVectorOps<Vector256<float>>
    {
        public static Vector256<float> Create(float value) => Vector256.Create(value);

        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);

        public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    }

    private readonly struct Ops128 : IVectorOps<Vector128<float>>
    {
        public static Vector128<float> Create(float value) => Vector128.Create(value);

        public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);

        public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    }

    private readonly struct MulAdd512 : IVectorOps<Vector512<float>>
    {
        public static Vector512<float> Create(float value) => Vector512.Create(value);

        public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => (a * b) + c;

        public static float Sum(Vector512<float> v) => Vector512.Sum(v);
    }

    private readonly struct MulAdd256 : IVectorOps<Vector256<float>>
    {
        public static Vector256<float> Create(float value) => Vector256.Create(value);

        public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => (a * b) + c;

        public static float Sum(Vector256<float> v) => Vector256.Sum(v);
    }

    private readonly struct MulAdd128 : IVectorOps<Vector128<float>>
    {
        public static Vector128<float> Create(float value) => Vector128.Create(value);

        public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => (a * b) + c;

        public static float Sum(Vector128<float> v) => Vector128.Sum(v);
    }
}
