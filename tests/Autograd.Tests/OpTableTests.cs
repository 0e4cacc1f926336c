namespace Autograd.Tests;

/// <summary>
/// Runs every row of <see cref="OpTable"/> through the gradient checker, to first order and, up to the row's
/// <see cref="OpCase.Order"/>, to second order; and checks that the table covers every public differentiable operator.
/// </summary>
public class OpTableTests
{
    /// <summary>One test per row and order: the operator, the row's name and the derivative order checked.</summary>
    public static TheoryData<string, string, int> Checks()
    {
        var data = new TheoryData<string, string, int>();
        foreach (var c in OpTable.Cases)
        {
            for (var order = 1; order <= c.Order; order++)
            {
                data.Add(c.Op, c.Name, order);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Checks))]
    public void GradientsMatchFiniteDifferences(string op, string name, int order)
    {
        var c = OpTable.Find(op, name);
        var result = order switch
        {
            1 => GradCheck.Check(c.F, c.Inputs(), c.Eps, c.Atol, c.Rtol),
            2 => GradCheck.GradGradCheck(x => [c.F(x)], c.Inputs(), eps: c.Eps, atol: c.Atol, rtol: c.Rtol, seed: c.GradGradSeed),
            _ => throw new ArgumentOutOfRangeException(nameof(order), order, "orders 1 and 2 are checked"),
        };
        Assert.True(result.Passed, $"{c} (order {order}): {result.Message}");
    }

    [Fact]
    public void EveryPublicDifferentiableOperatorHasARow()
    {
        var covered = OpTable.Cases.Select(c => c.Op).ToHashSet();
        var missing = Operators.PublicDifferentiable.Where(op => !covered.Contains(op)).ToList();
        Assert.True(missing.Count == 0, "public differentiable operators without a row in OpTable: " + string.Join(", ", missing));
    }

    [Fact]
    public void EveryRowNamesAnOperator()
    {
        var unknown = OpTable.Cases
            .Select(c => c.Op)
            .Distinct()
            .Where(op => op != OpTable.Composition && !Operators.Public.Contains(op) && !Operators.Internal.Contains(op) && !Operators.Functions.Contains(op))
            .ToList();
        Assert.True(unknown.Count == 0, "OpTable rows whose Op names no operator of Autograd.Ops or function of Autograd.Nn.Functional: " + string.Join(", ", unknown));
    }

    [Fact]
    public void TableCoversTheRequiredLengths()
    {
        var shapes = OpTable.Cases.Select(c => c.Inputs().Select(x => x.Shape).ToArray()).ToList();
        foreach (var n in OpTable.Lengths)
        {
            Assert.Contains(shapes, s => s.Any(shape => shape.Dims.Contains(n)));
        }

        Assert.Contains(shapes, s => s.Any(shape => shape.Rank == 0));
        Assert.True(shapes.Count > 400, $"only {shapes.Count} cases");
    }
}
