using System.Globalization;
using MathNet.Numerics.LinearAlgebra;

namespace Autograd.Tests;

/// <summary>The article's numbers: softmax of 1..9 and the gradient for dL = 11..19, three ways.</summary>
public class ArticleTests
{
    private static readonly string[] ExpectedSoftmax =
        "0.00021208 0.00057649 0.00156706 0.00425972 0.01157912 0.03147531 0.08555877 0.23257286 0.63219858".Split(' ');

    private static readonly string[] ExpectedGrad =
        "-0.00157344 -0.00370057 -0.00849213 -0.01882428 -0.03959057 -0.07614301 -0.12141937 -0.09747922 0.36722258".Split(' ');

    private static string[] Fmt(double[] v) => v.Select(e => e.ToString("F8", CultureInfo.InvariantCulture)).ToArray();

    [Fact]
    public void ComposedSoftmaxReproducesTheArticle()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var s = x.SoftmaxComposed(0);
        s.Backward(Tensor.Arange(11, 20));
        Assert.Equal(ExpectedSoftmax, Fmt(s.ToArray()));
        Assert.Equal(ExpectedGrad, Fmt(x.Grad!.ToArray()));
    }

    [Fact]
    public void FusedSoftmaxReproducesTheArticle()
    {
        var x = Tensor.Arange(1, 10).WithRequiresGrad();
        var s = x.Softmax(0);
        Assert.Equal("Softmax", s.OpName);
        s.Backward(Tensor.Arange(11, 20));
        Assert.Equal(ExpectedSoftmax, Fmt(s.ToArray()));
        Assert.Equal(ExpectedGrad, Fmt(x.Grad!.ToArray()));
    }

    [Fact]
    public void ExplicitJacobianReproducesTheArticle()
    {
        var s = Tensor.Arange(1, 10).Softmax(0);
        var sv = Vector<double>.Build.DenseOfArray(s.ToArray());
        var j = Matrix<double>.Build.DenseOfDiagonalVector(sv) - sv.OuterProduct(sv);
        var dx = j * Vector<double>.Build.DenseOfArray(Tensor.Arange(11, 20).ToArray());
        Assert.Equal(ExpectedSoftmax, Fmt(sv.ToArray()));
        Assert.Equal(ExpectedGrad, Fmt(dx.ToArray()));
    }
}
