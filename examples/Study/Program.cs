// Studying autodiff on the article's example: softmax of x = 1..9, backward with dL = 11..19.
// For the softmax composed from primitives (Max, Sub, Exp, Sum, Div) and for the fused Softmax node it prints the tape
// as a Wengert list and explains every step of the backward walk; both arrive at the same x.grad, the article's. Then it
// draws the composed graph with its values and gradients: DOT (SVG too when Graphviz's dot is installed) and Mermaid.
//
//   dotnet run --project examples/Study -c Release [-- --out DIR] [--precision N]
using System.Globalization;
using Autograd;
using Autograd.Ops;
using Autograd.Study;

var outDir = "out";
var precision = 8;
for (var i = 0; i < args.Length; i += 2)
{
    var value = i + 1 < args.Length ? args[i + 1] : null;
    switch (args[i])
    {
        case "--out" when value is not null:
            outDir = value;
            break;
        case "--precision" when value is not null && int.TryParse(value, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 17:
            precision = p;
            break;
        default:
            Console.Error.WriteLine("usage: Study [--out DIR] [--precision 0..17]");
            return 1;
    }
}

var dL = Tensor.Arange(11, 20);

var (xc, sc, composedTape) = Study("composed softmax", x => x.SoftmaxComposed(0));
var (xf, _, _) = Study("fused softmax", x => x.Softmax(0));

var diff = xc.Grad!.ToArray().Zip(xf.Grad!.ToArray(), (a, b) => Math.Abs(a - b)).Max();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"composed and fused arrive at the same x.grad: largest difference {diff:E2}"));
Console.WriteLine();

// The listing watched the forward pass and the backward walk, so the graph shows every value and every gradient.
Console.WriteLine("== the graph of the composed softmax");
var options = new GraphOptions { Title = "softmax composed from primitives, after s.Backward(dL)" };
var result = Graph.Render(sc, Path.Combine(outDir, "study-softmax.svg"), options, composedTape);
Console.WriteLine(result.Message);
Console.WriteLine();
Console.WriteLine("as Mermaid, for Markdown:");
Console.WriteLine("```mermaid");
Console.Write(Graph.ToMermaid(sc, new GraphOptions { MaxValueElements = 0 }, composedTape));
Console.WriteLine("```");
return 0;

// Records the forward pass of one softmax on x = 1..9, prints its tape, then explains its backward walk with dL.
(Tensor X, Tensor S, TapeListing Tape) Study(string title, Func<Tensor, Tensor> softmax)
{
    var x = Tensor.Arange(1, 10).WithRequiresGrad();
    var tape = new TapeListing(); // records every operation on this thread until disposed
    using (tape)
    {
        tape.Name(x, "x");
        var s = softmax(x);
        Console.WriteLine($"== {title}: the tape, as a Wengert list");
        tape.WriteTo(Console.Out);
        Console.WriteLine();

        Console.WriteLine($"== {title}: the backward walk, step by step: s.Backward(dL) with dL = 11..19");
        using (new ExplainBackward(Console.Out, tape, precision))
        {
            s.Backward(dL);
        }

        return (x, s, tape);
    }
}
