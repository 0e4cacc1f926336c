using System.Text;

namespace Autograd.Study;

/// <summary>
/// A recording scope that lists the tape as a Wengert list: one line per operation in execution order, each result
/// named (<c>t0</c>, <c>t1</c>, …), leaves declared where first used (<c>x0</c> or the name given with
/// <see cref="GraphRecorder.Name"/>), and what each backward rule saved.
/// </summary>
/// <example>
/// <code>
/// using (var tape = new TapeListing())
/// {
///     tape.Name(x, "x");
///     var s = x.SoftmaxComposed(0);
///     Console.Write(tape);
/// }
/// // x  = leaf          [9] f64  requires grad
/// // t0 = Max(x)        [1] f64  saves: x=x, y=t0
/// // t1 = Sub(x, t0)    [9] f64
/// // t2 = Exp(t1)       [9] f64  saves: y=t2
/// // …
/// </code>
/// </example>
/// <remarks>
/// Saved tensors are read from the node (<see cref="Node.SavedTensor"/>), named as its rule names them, and shown as the
/// tensor they are (or view). Operations recorded by a backward walk with <c>createGraph</c> are listed too, marked with the
/// node whose rule recorded them. The listing is a <see cref="GraphRecorder"/>, so it can also be passed to
/// <see cref="Graph.ToDot"/> and <see cref="ExplainBackward"/>.
/// </remarks>
public sealed class TapeListing : GraphRecorder
{
    /// <summary>Creates a listing and attaches it to the tape on this thread until it is disposed.</summary>
    /// <param name="weakReferences">Hold recorded tensors weakly instead of keeping them alive.</param>
    public TapeListing(bool weakReferences = false)
        : base(weakReferences)
    {
    }

    /// <summary>Whether each line shows what the backward rule saved (default true).</summary>
    public bool ShowSaved { get; set; } = true;

    /// <summary>The lines of the listing, in execution order.</summary>
    public IReadOnlyList<string> Lines()
    {
        var rows = new List<string[]>();
        var declared = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in Entries)
        {
            foreach (var input in e.Inputs)
            {
                if (input.Kind is not (InputKind.Leaf or InputKind.Constant))
                {
                    continue;
                }

                var name = InputName(input);
                if (!declared.Add(name))
                {
                    continue;
                }

                rows.Add(input.Kind == InputKind.Leaf
                    ? [name, "= leaf", StudyText.ShapeAndType(input.Shape, input.DType), LeafNote(input)]
                    : [name, input.ConstantValue is null ? "= constant" : $"= constant {input.ConstantValue}", StudyText.ShapeAndType(input.Shape, input.DType), string.Empty]);
            }

            declared.Add(e.DisplayName);
            rows.Add([e.DisplayName, "= " + RightHandSide(e), e.HasOutput ? StudyText.ShapeAndType(e.Shape, e.DType) : "?", Notes(e)]);
        }

        return StudyText.Columns(rows, [" ", "   ", "  "]);
    }

    /// <summary>Writes the listing, one operation per line.</summary>
    public void WriteTo(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        foreach (var line in Lines())
        {
            writer.WriteLine(line);
        }
    }

    /// <summary>The listing as text, one operation per line.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var line in Lines())
        {
            sb.Append(line).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>"requires grad" and, in forward mode, the tangent the leaf carried.</summary>
    private string LeafNote(InputRef input)
    {
        var t = input.Tensor.Get();
        var notes = new List<string>();
        if (t is null || t.RequiresGrad)
        {
            notes.Add("requires grad");
        }

        if (t is not null && TangentOf(t) is { } tangent)
        {
            notes.Add("tangent " + StudyText.Values(tangent, 4, 6));
        }

        return string.Join("; ", notes);
    }

    private string Notes(Entry e)
    {
        var notes = new List<string>();
        if (ShowSaved && e.Saved.Length > 0)
        {
            var freed = e.Node.Get()?.IsReleased == true ? " (freed by backward)" : string.Empty;
            notes.Add("saves: " + string.Join(", ", e.Saved.Select(s => $"{s.Field}={SavedName(s)}")) + freed);
        }

        if (e.Tangent.Get() is { } tangent)
        {
            notes.Add("tangent " + StudyText.Values(tangent, 4, 6));
        }

        if (e.RecordedDuring is not null)
        {
            notes.Add($"recorded by the backward rule of {e.RecordedDuring}");
        }

        if (e.Adopted)
        {
            notes.Add("recorded before the listing started");
        }

        return string.Join("; ", notes);
    }
}
