// The tutorial docs/tutorial.md, runnable: from the article's hand-written softmax to the tape, section by section.
// Every output block of the tutorial is what one section prints; tests/Autograd.Tests/TutorialTests.cs checks it.
//
//   dotnet run --project examples/Tutorial -c Release [-- --section NAME]
//
// Sections: by-hand, vjp, tape, backward, fused, gradcheck, second-derivative, forward-mode, hooks, checkpointing,
// custom-operator, in-place.
using Autograd.Tutorial;

string? only = null;
if (args.Length == 2 && args[0] == "--section" && TutorialSteps.Sections.Contains(args[1]))
{
    only = args[1];
}
else if (args.Length != 0)
{
    Console.Error.WriteLine($"usage: Tutorial [--section {string.Join('|', TutorialSteps.Sections)}]");
    return 1;
}

foreach (var section in TutorialSteps.Sections)
{
    if (only is not null && section != only)
    {
        continue;
    }

    if (only is null)
    {
        Console.WriteLine($"== {section}: {TutorialSteps.Title(section)}");
    }

    TutorialSteps.Run(section, Console.Out);
    if (only is null)
    {
        Console.WriteLine();
    }
}

return 0;
