using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Autograd.Kernels;

namespace Autograd.Tests;

/// <summary>
/// Kernels run at full speed from their first call, whatever the process's JIT settings: every method of the span
/// kernels that loops is compiled optimized at once (<see cref="MethodImplOptions.AggressiveOptimization"/>) or inlined
/// into one that is. A method with a loop otherwise starts in unoptimized code, and on one CPU the runtime waits a
/// second after the last new method before it recompiles it: a softmax fwd+bwd of 1024×1024 float32 took 13 ms per
/// call through its first second instead of 0.9 ms (docs/design.md, "Optimized from the first call").
/// </summary>
public sealed class JitTierTests
{
    /// <summary>Methods that loop but are not compute kernels: the helper threads' plumbing and size planning.</summary>
    private static readonly HashSet<string> NotKernels =
    [
        "Workers.For", "Workers.StartHelpers", "Workers.Loop", "Workers.Execute", "Workers.Wait",
        "AttentionKernels.BlockExtent", "AttentionLayout.RowEnds", "IndexKernels.FirstOutOfRange",
    ];

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>
    /// Whether the IL branches backwards (a loop): walks the instructions with their operand sizes and looks for a
    /// branch or switch target before the instruction after it.
    /// </summary>
    internal static bool HasLoop(byte[] il)
    {
        var i = 0;
        while (i < il.Length)
        {
            var value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            var op = OpCodesByValue[value];
            i += op.Size;
            switch (op.OperandType)
            {
                case OperandType.ShortInlineBrTarget or OperandType.InlineBrTarget:
                    var isShort = op.OperandType == OperandType.ShortInlineBrTarget;
                    if ((isShort ? (sbyte)il[i] : BitConverter.ToInt32(il, i)) < 0)
                    {
                        return true;
                    }

                    i += isShort ? 1 : 4;
                    break;
                case OperandType.InlineSwitch:
                    var count = BitConverter.ToInt32(il, i);
                    i += 4;
                    for (var c = 0; c < count; c++)
                    {
                        if (BitConverter.ToInt32(il, i + (4 * c)) < 0)
                        {
                            return true;
                        }
                    }

                    i += 4 * count;
                    break;
                case OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineNone:
                    break;
                default:
                    i += 4;
                    break;
            }
        }

        return false;
    }

    /// <summary>The methods with a body declared by the types of an assembly (nested and compiler-generated ones too).</summary>
    private static IEnumerable<MethodBase> Methods(Assembly assembly) =>
        assembly.GetTypes().SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
            .Cast<MethodBase>()
            .Concat(t.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly)))
        .Where(m => m.GetMethodBody() is not null);

    private static string Name(MethodBase m)
    {
        // The outermost type: an operator's file is one static class, its jobs and rule kernels nested in it.
        var type = m.DeclaringType!;
        while (type.DeclaringType is { } outer)
        {
            type = outer;
        }

        var name = type.Name;
        var tick = name.IndexOf('`', StringComparison.Ordinal);
        return (tick < 0 ? name : name[..tick]) + "." + m.Name;
    }

    private static bool OptimizedAtOnce(MethodBase m) =>
        (m.MethodImplementationFlags & (MethodImplAttributes.AggressiveOptimization | MethodImplAttributes.AggressiveInlining)) != 0;

    [Fact]
    public void LoopDetectionSeesLoopsAndOnlyLoops()
    {
        // The detector itself: a method known to loop, and one known not to.
        var loops = typeof(JitTierTests).GetMethod(nameof(HasLoop), BindingFlags.NonPublic | BindingFlags.Static)!;
        var straight = typeof(JitTierTests).GetMethod(nameof(OptimizedAtOnce), BindingFlags.NonPublic | BindingFlags.Static)!;
        Assert.True(HasLoop(loops.GetMethodBody()!.GetILAsByteArray()!));
        Assert.False(HasLoop(straight.GetMethodBody()!.GetILAsByteArray()!));
    }

    [Fact]
    public void EveryKernelLoopIsOptimizedFromItsFirstCall()
    {
        var kernels = Methods(typeof(Gemm).Assembly)
            .Where(m => HasLoop(m.GetMethodBody()!.GetILAsByteArray()!))
            .ToList();
        Assert.True(kernels.Count > 50, $"only {kernels.Count} methods with loops were found in Autograd.Kernels");

        var slow = kernels
            .Where(m => !OptimizedAtOnce(m) && !NotKernels.Contains(Name(m)))
            .Select(m => $"{m.DeclaringType!.FullName}.{m.Name}")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();
        Assert.True(slow.Count == 0, "methods with loops that start in unoptimized code: " + string.Join(", ", slow));
        Assert.All(NotKernels, n => Assert.Contains(kernels, m => Name(m) == n));
    }

    [Fact]
    public void OperatorSpanLoopsAreOptimizedFromTheirFirstCall()
    {
        // The span loops that sit beside their operators in src/Ops: the convolution's jobs, elementwise maps, the
        // in-place copies the optimizers run.
        var ops = Methods(typeof(Convolution).Assembly).ToList();
        string[] expected =
        [
            "Convolution.Chunk", "Convolution.ForwardBlock", "Convolution.BackwardBlock", "Convolution.Expand", "Convolution.WithBias", "Convolution.Gradient",
            "Elementwise.Map", "Elementwise.SignOf", "Elementwise.PositiveOf", "InPlace.Copy", "InPlace.CopyRows",
        ];
        foreach (var name in expected)
        {
            var found = ops.Where(m => Name(m) == name && HasLoop(m.GetMethodBody()!.GetILAsByteArray()!)).ToList();
            Assert.True(found.Count > 0, $"{name}: no method with a loop of that name");
            Assert.All(found, m => Assert.True(OptimizedAtOnce(m), $"{name} starts in unoptimized code"));
        }
    }

    [Fact]
    public void ProgramsGetMethodsWithLoopsOptimizedFromTheirFirstCall()
    {
        // The test host is a program built here, so it imports src/Autograd/buildTransitive/Autograd.targets, which turns
        // the quick JIT for loops off in the application (for the System.Numerics.Tensors loops the operators call).
        Assert.Equal("false", AppContext.GetData("System.Runtime.TieredCompilation.QuickJitForLoops") as string, ignoreCase: true);
    }
}
