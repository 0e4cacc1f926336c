// A character-level GPT trained on Debian's word list (wamerican): 2 pre-LayerNorm transformer blocks, 4 causal heads,
// d_model 64, context 16; AdamW 3e-3 (weight decay 0.01), batch 64, float32. Prints the training and validation loss
// every 500 steps, then 20 new words sampled with a temperature; writes the loss curves and the weights (safetensors,
// under the names of benchmarks/peers/char_gpt.py's model).
using System.Diagnostics;
using System.Globalization;
using Autograd;
using Autograd.Nn;
using Autograd.Nn.Data;
using Autograd.Nn.Optim;
using Autograd.Nn.Serialization;
using Spectre.Console;

var o = GptOptions.Parse(args);
CharCorpus corpus;
try
{
    corpus = CharCorpus.Load(o.Words, validationFraction: 0.1, seed: o.Seed);
}
catch (FileNotFoundException e)
{
    Console.Error.WriteLine(e.Message);
    return 2;
}

Console.WriteLine($"{corpus.TrainWords.Count:N0} training and {corpus.ValidationWords.Count:N0} validation words from {o.Words}; vocabulary {corpus.VocabularySize} characters");
var model = new Gpt(corpus.VocabularySize, dModel: 64, context: o.Context, layers: 2, heads: 4, o.Seed);
Console.WriteLine(model);
Console.WriteLine($"{model.ParameterCount:N0} parameters; batch {o.Batch} × context {o.Context}, {o.Steps} steps, seed {o.Seed}");
var optimizer = new AdamW(model.Parameters(), learningRate: 3e-3, weightDecay: 0.01);
var random = new Random(o.Seed);

double Evaluate(bool validation)
{
    model.Eval();
    using var _ = Tensor.NoGrad();
    var sum = 0.0;
    for (var i = 0; i < 20; i++)
    {
        var (x, y) = corpus.SampleBatch(validation, o.Batch, o.Context, random);
        sum += model.Loss(x, y).Item();
    }

    model.Train();
    return sum / 20;
}

var log = new List<(int Step, double Train, double Validation)>();
var clock = new Stopwatch();
AnsiConsole.Progress()
    .AutoClear(true)
    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
    .Start(ctx =>
    {
        var task = ctx.AddTask("training", maxValue: o.Steps);
        for (var step = 1; step <= o.Steps; step++)
        {
            clock.Start();

            // The step's tensors end with the scope; the next step works in their memory (docs/design.md).
            using (Tensor.NewScope())
            {
                var (x, y) = corpus.SampleBatch(validation: false, o.Batch, o.Context, random);
                optimizer.ZeroGrad();
                var loss = model.Loss(x, y);
                loss.Backward();
                optimizer.Step();
            }

            clock.Stop();
            task.Increment(1);
            if (step % o.Every == 0 || step == o.Steps)
            {
                var (train, validation) = (Evaluate(false), Evaluate(true));
                log.Add((step, train, validation));
                AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture, $"step {step,5}  train loss {train:F4}  validation loss {validation:F4}  {clock.Elapsed.TotalMilliseconds / step:F1} ms/step"));
            }
        }
    });

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{clock.Elapsed.TotalMilliseconds / o.Steps:F1} ms per training step (evaluation not counted)"));
Console.WriteLine($"20 words sampled at temperature {o.Temperature.ToString(CultureInfo.InvariantCulture)}:");
Console.WriteLine(string.Join(' ', Enumerable.Range(0, 20).Select(_ => model.Sample(corpus, o.Temperature, random))));
WritePlot(log, Path.Combine(o.OutDir, "char-gpt-losses.png"));
var weights = Path.Combine(o.OutDir, "char-gpt.safetensors");
model.SaveSafeTensors(weights, new Dictionary<string, string> { ["format"] = "pt" });
Console.WriteLine($"weights written to {Path.GetFullPath(weights)}");
return 0;

static void WritePlot(List<(int Step, double Train, double Validation)> log, string path)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    var steps = log.Select(l => (double)l.Step).ToArray();
    var plot = new ScottPlot.Plot();
    plot.Add.Scatter(steps, log.Select(l => l.Train).ToArray()).LegendText = "training loss";
    plot.Add.Scatter(steps, log.Select(l => l.Validation).ToArray()).LegendText = "validation loss";
    plot.XLabel("step");
    plot.YLabel("cross-entropy (nats per character)");
    plot.Title("Character-level GPT on the wamerican word list");
    plot.ShowLegend(ScottPlot.Alignment.UpperRight);
    plot.SavePng(path, 900, 600);
    Console.WriteLine($"loss curves written to {Path.GetFullPath(path)}");
}

internal sealed record GptOptions(string Words, int Steps, int Every, int Batch, int Context, double Temperature, int Seed, string OutDir)
{
    public static GptOptions Parse(string[] args)
    {
        var o = new GptOptions(CharCorpus.DefaultWordList, 2000, 500, 64, 16, 0.8, 1, ".");
        for (var i = 0; i < args.Length; i++)
        {
            o = args[i] switch
            {
                "--words" => o with { Words = args[++i] },
                "--steps" => o with { Steps = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                "--every" => o with { Every = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                "--batch" => o with { Batch = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                "--temperature" => o with { Temperature = double.Parse(args[++i], CultureInfo.InvariantCulture) },
                "--seed" => o with { Seed = int.Parse(args[++i], CultureInfo.InvariantCulture) },
                "--out" => o with { OutDir = args[++i] },
                _ => throw new ArgumentException($"unknown argument '{args[i]}'; use --words FILE, --steps N, --every N, --batch N, --temperature T, --seed N, --out DIR"),
            };
        }

        return o;
    }
}
