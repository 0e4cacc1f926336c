namespace Autograd.Tests;

public class TapeObserverTests
{
    private sealed class Recorder : TapeObserver
    {
        public List<string> Events { get; } = [];

        protected override void OnOutputAllocated(Tensor output) => Events.Add($"alloc {output.Shape}");

        protected override void OnNodeCreated(Node node, ReadOnlySpan<Tensor> inputs) => Events.Add($"node {node.Name} inputs {inputs.Length}");

        protected override void OnRecorded(Node node, Tensor output) => Events.Add($"recorded {node.Name} {output.Shape}");

        protected override void OnBackwardStart(Node node, Tensor grad) => Events.Add($"start {node.Name}");

        protected override void OnBackwardEnd(Node node, Tensor grad, ReadOnlySpan<Tensor?> inputGrads) => Events.Add($"end {node.Name} {inputGrads.Length}");
    }

    [Fact]
    public void ObserverSeesEveryRecordedOperationAndEveryBackwardStepInOrder()
    {
        var x = Tensor.From(1.0, 2.0, 3.0).WithRequiresGrad();
        var recorder = new Recorder();
        using (TapeObserver.Attach(recorder))
        {
            var y = x.Exp().Sum();
            y.Backward();
        }

        Assert.Equal(
            [
                "alloc [3]", "node Exp inputs 1", "recorded Exp [3]",
                "alloc [1]", "node Sum inputs 1", "recorded Sum []",
                "alloc []",
                "start Sum", "alloc [3]", "end Sum 1",
                "start Exp", "alloc [3]", "end Exp 1",
                "start AccumulateGrad", "alloc [3]", "end AccumulateGrad 0",
            ],
            recorder.Events);
    }

    [Fact]
    public void DetachingStopsTheEventsAndObserversArePerThread()
    {
        var recorder = new Recorder();
        var x = Tensor.From(1.0).WithRequiresGrad();
        using (TapeObserver.Attach(recorder))
        {
            var t = new Thread(() => _ = x.Exp());
            t.Start();
            t.Join();
        }

        _ = x.Exp();
        Assert.Empty(recorder.Events);
    }
}
