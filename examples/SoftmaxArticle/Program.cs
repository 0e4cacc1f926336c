// The article Autograd started from: softmax of x = 1..9 and its gradient for dL = 11..19, three ways.
using System.Globalization;
using Autograd;
using Autograd.Ops;
using MathNet.Numerics.LinearAlgebra;

var x = Tensor.Arange(1, 10);
var dL = Tensor.Arange(11, 20);

// 1. Composed from primitives (max, sub, exp, sum, div), differentiated by the tape.
var xc = x.Clone().WithRequiresGrad();
var sc = xc.SoftmaxComposed(0);
sc.Backward(dL);

// 2. The fused operator: one forward kernel, one backward kernel dx = y ⊙ (g − Σ g⊙y).
var xf = x.Clone().WithRequiresGrad();
var sf = xf.Softmax(0);
sf.Backward(dL);

// 3. The explicit Jacobian, as the article wrote it by hand: J = diag(s) − s sᵀ, dx = J · dL.
var s = Vector<double>.Build.DenseOfArray(sf.ToArray());
var jacobian = Matrix<double>.Build.DenseOfDiagonalVector(s) - s.OuterProduct(s);
var dxJ = jacobian * Vector<double>.Build.DenseOfArray(dL.ToArray());

static string Row(IEnumerable<double> v) => string.Join(" ", v.Select(e => e.ToString("F8", CultureInfo.InvariantCulture)));

Console.WriteLine("Softmax of x = 1..9 and its gradient for dL = 11..19");
Console.WriteLine();
Console.WriteLine("composed (tape: max, sub, exp, sum, div)");
Console.WriteLine("softmax: " + Row(sc.ToArray()));
Console.WriteLine("grad x:  " + Row(xc.Grad!.ToArray()));
Console.WriteLine();
Console.WriteLine("fused (one kernel each way)");
Console.WriteLine("softmax: " + Row(sf.ToArray()));
Console.WriteLine("grad x:  " + Row(xf.Grad!.ToArray()));
Console.WriteLine();
Console.WriteLine("explicit Jacobian J = diag(s) - s s^T, dx = J dL");
Console.WriteLine("softmax: " + Row(s));
Console.WriteLine("grad x:  " + Row(dxJ));
Console.WriteLine();

static double MaxDiff(double[] a, double[] b) => a.Zip(b, (p, q) => Math.Abs(p - q)).Max();
var valueDiff = Math.Max(MaxDiff(sc.ToArray(), sf.ToArray()), MaxDiff(sf.ToArray(), s.ToArray()));
var gradDiff = Math.Max(
    Math.Max(MaxDiff(xc.Grad.ToArray(), xf.Grad.ToArray()), MaxDiff(xf.Grad.ToArray(), dxJ.ToArray())),
    MaxDiff(xc.Grad.ToArray(), dxJ.ToArray()));
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"largest difference between the three ways: softmax {valueDiff:E2}, grad x {gradDiff:E2}"));
