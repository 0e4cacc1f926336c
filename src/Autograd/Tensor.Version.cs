using System.Globalization;
using System.Runtime.CompilerServices;

namespace Autograd;

/// <summary>
/// The version counter of one storage, shared by every tensor that views it (<see cref="Tensor.Detach"/>, reshapes), with
/// the site of the last write. Created on the first write to the storage or the first view of it; a storage that was
/// never written or viewed has none, and its version is 0.
/// </summary>
internal sealed class StorageVersion
{
    /// <summary>The number of writes to the storage's elements since it was made.</summary>
    internal int Value;

    /// <summary>The line of the last write (see <see cref="File"/>).</summary>
    internal int Line;

    /// <summary>What wrote last, e.g. <c>Sgd.Step</c> (a literal or a string the writer made once).</summary>
    internal string? Operation;

    /// <summary>The member that called <see cref="Operation"/> (from caller information).</summary>
    internal string? Member;

    /// <summary>The source file that called <see cref="Operation"/> (from caller information).</summary>
    internal string? File;

    /// <summary>
    /// The shapes of a tensor that requires grad and of a view of it made on this storage ("[2, 3] and [6]"), or null: an
    /// in-place write to either while recording is refused, because the other's history would not see it.
    /// </summary>
    internal string? TapeViewShapes;

    /// <summary>The last write, e.g. <c>Sgd.Step in Main at Program.cs:12</c>.</summary>
    internal string DescribeLastWrite()
    {
        if (Operation is null)
        {
            return "an unrecorded write";
        }

        var member = string.IsNullOrEmpty(Member) || Member.StartsWith('<') || Member == Operation ? string.Empty : " in " + Member;
        var file = string.IsNullOrEmpty(File) ? "an unknown file" : Path.GetFileName(File.Replace('\\', '/'));
        return string.Create(CultureInfo.InvariantCulture, $"{Operation}{member} at {file}:{Line}");
    }
}

/// <content>Versions: a counter per storage that every in-place write bumps, checked when a saved tensor is read back.</content>
public sealed partial class Tensor
{
    /// <summary>
    /// Creates a view of <paramref name="source"/> with another shape: it shares the storage, the offset and the version
    /// counter, so a write through either is seen by both.
    /// </summary>
    internal Tensor(Shape shape, Tensor source)
        : this(shape, source.DType, source.Storage, source.Offset, source)
    {
        var counter = source.VersionCounter;
        _aux = counter;
        if (source._requiresGrad)
        {
            counter.TapeViewShapes ??= $"{source.Shape} and {shape}";
        }
    }

    /// <summary>
    /// The number of times the elements of this tensor's storage were changed in place since it was made, shared by every
    /// tensor that views the same storage (<see cref="Detach"/>, <c>Reshape</c>, <c>View</c>, …), as PyTorch's
    /// <c>_version</c>. A fresh tensor has version 0.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Every write the library makes to an existing tensor bumps it: an optimiser's <c>Step</c> (the parameters), a
    /// module's <c>LoadSafeTensors</c> (parameters and buffers), batch normalisation in training (its running statistics
    /// and batch count), <c>GradClip.ClipGradNorm</c> and <see cref="ZeroGrad"/> with <c>setToNull: false</c> (the
    /// gradients), the backward walk adding a gradient into an existing <see cref="Grad"/>, and the in-place writes
    /// <see cref="this[ReadOnlySpan{int}]"/> (setter) and the in-place operators of <c>Autograd.Ops.InPlace</c>
    /// (<c>AddInPlace</c>, <c>MulInPlace</c>, <c>FillInPlace</c>, <c>CopyFrom</c>, …). An operator filling its own fresh
    /// result does not.
    /// </para>
    /// <para>
    /// The rule: a node records the version of each tensor it saves for its backward rule, and reading a saved tensor
    /// whose version has changed since then throws an <see cref="InvalidOperationException"/> naming the operator, the
    /// tensor (shape, dtype, producer), both versions and the write that changed it (its operation, and the member, file
    /// and line that called it), instead of silently computing the gradient from the new values. Recompute the forward
    /// after the change, or save a <see cref="Clone"/>.
    /// </para>
    /// </remarks>
    public int Version => _aux switch
    {
        null => 0,
        StorageVersion v => v.Value,
        AccumulateGrad a => a.StorageVersion?.Value ?? 0,
        _ => 0,
    };

    /// <summary>The version counter of the storage, created on first use and shared by every view.</summary>
    internal StorageVersion VersionCounter
    {
        get
        {
            while (true)
            {
                ref var slot = ref _aux;
                var aux = slot;
                switch (aux)
                {
                    case StorageVersion v:
                        return v;
                    case AccumulateGrad a:
                        return a.StorageVersion ?? Interlocked.CompareExchange(ref a.StorageVersion, new StorageVersion(), null) ?? a.StorageVersion;
                    default:
                        var created = new StorageVersion();
                        if (aux is null && Interlocked.CompareExchange(ref slot, created, null) is null)
                        {
                            return created;
                        }

                        break;
                }
            }
        }
    }

    /// <summary>The last in-place write to the storage, e.g. <c>Sgd.Step in Main at Program.cs:12</c>, or null when none was made.</summary>
    internal string? LastWrite => Version > 0 ? VersionCounter.DescribeLastWrite() : null;

    /// <summary>Creates the accumulator of this leaf, which takes over the version counter if the storage has one.</summary>
    private AccumulateGrad CreateAccumulator()
    {
        while (true)
        {
            ref var slot = ref _aux;
            var aux = slot;
            if (aux is AccumulateGrad existing)
            {
                return existing;
            }

            var created = new AccumulateGrad(this) { StorageVersion = (StorageVersion?)aux };
            if (ReferenceEquals(Interlocked.CompareExchange(ref slot, created, aux), aux))
            {
                return created;
            }
        }
    }

    /// <summary>
    /// Bumps the version of this tensor's storage and records who wrote it: the internal entry point of every in-place
    /// write to an existing tensor. A public write passes on its own caller's information, so the site is the user's line;
    /// elsewhere the defaults name the library's line.
    /// </summary>
    /// <param name="operation">What writes, e.g. <c>Sgd.Step</c>.</param>
    /// <param name="member">The calling member.</param>
    /// <param name="file">The calling source file.</param>
    /// <param name="line">The calling line.</param>
    internal void MarkWritten(string operation, [CallerMemberName] string member = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        var v = VersionCounter;
        lock (v)
        {
            v.Value++;
            v.Operation = operation;
            v.Member = member;
            v.File = file;
            v.Line = line;
        }
    }

    /// <summary>
    /// The checks of a recorded in-place operator before anything is written: a float tensor; with grad mode on, not a leaf
    /// that requires grad, and (when the write will be recorded) not a storage shared with a view on the tape.
    /// </summary>
    /// <param name="op">The operator, e.g. <c>AddInPlace</c>.</param>
    /// <param name="operand">The tensor operand, or null for a number.</param>
    /// <returns>True when the write must be recorded (grad mode on and this tensor or the operand requires grad).</returns>
    internal bool CheckInPlace(string op, Tensor? operand)
    {
        if (!DType.IsFloatingPoint())
        {
            throw new ArgumentException($"{op}: expected a float64 or float32 tensor to write into, got {DType.Name()} (shape {Shape}).");
        }

        if (!GradMode.IsEnabled)
        {
            return false;
        }

        if (IsLeaf && _requiresGrad)
        {
            throw new InvalidOperationException(
                $"{op}: a leaf tensor that requires grad ({Shape} {DType.Name()}) cannot be changed in place while gradients are recorded; do it under Tensor.NoGrad() or on a clone.");
        }

        var recording = _requiresGrad || (operand is not null && operand._requiresGrad);
        var shapes = _aux switch
        {
            StorageVersion v => v.TapeViewShapes,
            AccumulateGrad a => a.StorageVersion?.TapeViewShapes,
            _ => null,
        };
        if (recording && shapes is not null)
        {
            throw new InvalidOperationException(
                $"{op}: this {Shape} {DType.Name()} tensor shares its storage with another tensor on the tape (shapes {shapes}: a view made by Reshape/View of a tensor that requires grad); " +
                "an in-place write through a view is not recorded for the other tensor. Clone it first, or write under Tensor.NoGrad().");
        }

        return recording;
    }

    /// <summary>
    /// Attaches <paramref name="node"/>, recorded for an in-place write into this tensor, as its producer: the node's input
    /// edge is this tensor's previous history (as PyTorch's rebase_history); the forward rule, if any, gives the new tangent.
    /// </summary>
    internal void RebaseHistory(Node node) => SetGradFn(node);

    /// <summary>Throws unless this tensor may be written in place: one that requires grad only with grad mode off.</summary>
    private void CheckWritable(string op)
    {
        if (_requiresGrad && GradMode.IsEnabled)
        {
            var what = IsLeaf ? "is a leaf that requires grad" : $"was produced by '{OpName}' on the tape";
            throw new InvalidOperationException(
                $"{op}: this {Shape} {DType.Name()} tensor {what}, so an in-place write would bypass the tape; write it inside Tensor.NoGrad(), as an optimiser does.");
        }
    }
}
