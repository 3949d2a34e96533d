using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Runtime;

namespace Whittle.Tests.Evaluation;

public class TaskLossTests
{
    private const int N = 23;

    /// <summary>A 5-class MLP classifier on [N, 6] inputs, with labels 0..4.</summary>
    private static (OnnxModel Model, InputDataset Data, HostTensor Labels) Classifier()
    {
        var model = RuntimeModels.Mlp([6, 8, 5]);
        var x = RuntimeModels.RandomFloats(4, N, 6);
        var labels = HostTensor.Int64([.. Enumerable.Range(0, N).Select(i => (long)(i * 7 % 5))], N);
        return (model, new InputDataset(new InputBatch("X", x, "mem"), "mem").Bind(ModelInput.FromModel(model)), labels);
    }

    private static BatchSet Batches(InputDataset data, HostTensor? labels, int size) =>
        new ModelData(data, labels, DataKind.Arrays, "mem").Batches(size);

    private static float[] Logits(OnnxModel model, InputDataset data)
    {
        using var s = TappedSession.Create(model, []);
        return s.Run(data.Samples)["y"].AsFloats();
    }

    [Fact]
    public void CrossEntropyIsTheMeanNllOfTheLabelsWhateverTheBatching()
    {
        var (model, data, labels) = Classifier();
        var logits = Logits(model, data);
        var y = labels.AsInt64();
        double expected = Enumerable.Range(0, N).Average(i => -EvalTestModels.LogSoftmax(logits.AsSpan(i * 5, 5))[y[i]]);
        foreach (int size in new[] { 1, 4, N })
        {
            var batches = Batches(data, labels, size);
            using var runner = ModelRunner.Create(model, batches);
            var loss = TaskLoss.CrossEntropy(batches);
            var sum = runner.Loss(loss);
            Assert.Equal(N, sum.Count);
            Assert.Equal(expected, sum.Mean, 1e-6);
            Assert.Equal(sum.Mean, runner.MeanLoss(loss));
            Assert.Equal("cross-entropy", loss.Name);
        }
    }

    [Fact]
    public void KlToReferenceIsZeroForTheReferenceAndMatchesAnIndependentSumForACandidate()
    {
        var (model, data, _) = Classifier();
        var batches = Batches(data, null, 5);
        using var reference = ModelRunner.Create(model, batches);
        var kl = TaskLoss.KlToReference(reference);
        Assert.Equal(0, reference.MeanLoss(kl));

        // A candidate built in memory (never saved): its KL from the reference, summed here directly.
        var candidate = EvalTestModels.Perturbed(model, 0.3, seed: 9);
        Assert.Null(candidate.FilePath);
        var p = Logits(model, data);
        var q = Logits(candidate, data);
        double expected = Enumerable.Range(0, N).Average(i => EvalTestModels.Kl(p.AsSpan(i * 5, 5), q.AsSpan(i * 5, 5)));
        Assert.True(expected > 1e-4, $"the perturbation should move the outputs (KL {expected})");
        using var runner = ModelRunner.Create(candidate, batches);
        Assert.Equal(expected, runner.MeanLoss(kl), 1e-6);
        // Measured many times, the same figure.
        Assert.Equal(runner.MeanLoss(kl), runner.MeanLoss(kl));
    }

    [Fact]
    public void NextTokenLossPredictsTokensOneToTMinusOne()
    {
        // ids [B, L] → outputs [B, L, w]: treated as logits over a vocabulary of w = 6 tokens.
        const int B = 5, L = 4, W = 6;
        var model = RuntimeModels.Sequence(W, W);
        var ids = HostTensor.Int64([.. Enumerable.Range(0, B * L).Select(i => (long)((i * 5 + 1) % W))], B, L);
        var data = new InputDataset(new InputBatch("ids", ids, "mem"), "mem");
        using var s = TappedSession.Create(model, []);
        var logits = s.Run(data.Samples)["y"].AsFloats();
        var tokens = ids.AsInt64();
        double sum = 0;
        for (int n = 0; n < B; n++)
            for (int t = 0; t < L - 1; t++)
                sum -= EvalTestModels.LogSoftmax(logits.AsSpan((n * L + t) * W, W))[tokens[n * L + t + 1]];
        var batches = Batches(data, null, 2);
        using var runner = ModelRunner.Create(model, batches);
        var loss = runner.Loss(TaskLoss.NextToken(batches, "ids"));
        Assert.Equal(B * (L - 1), loss.Count);
        Assert.Equal(sum / (B * (L - 1)), loss.Mean, 1e-6);
    }

    [Fact]
    public void MisuseIsAClearError()
    {
        var (model, data, labels) = Classifier();
        var batches = Batches(data, labels, 4);
        var other = Batches(data, labels, 4);
        using var runner = ModelRunner.Create(model, batches);
        var e = Assert.Throws<ArgumentException>(() => runner.Loss(TaskLoss.CrossEntropy(other)));
        Assert.Contains("another batch set", e.Message);
        var noLabels = Assert.Throws<ArgumentException>(() => TaskLoss.CrossEntropy(Batches(data, null, 4)));
        Assert.Contains("needs labels", noLabels.Message);
        Assert.Throws<ArgumentException>(() => TaskLoss.NextToken(batches, "input_ids"));
        var unknown = Assert.Throws<ArgumentException>(() => runner.Loss(TaskLoss.CrossEntropy(batches, "logits")));
        Assert.Contains("'logits' is not an output", unknown.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => runner.Run(7));

        // A label that is not one of the 5 classes.
        var bad = HostTensor.Int64([.. Enumerable.Repeat(5L, N)], N);
        var badSet = Batches(data, bad, 8);
        using var badRunner = ModelRunner.Create(model, badSet);
        var label = Assert.Throws<InvalidDataException>(() => badRunner.Loss(TaskLoss.CrossEntropy(badSet, "y")));
        Assert.Contains("Label 5 of sample 0 in batch 0 is not a class of output 'y', which has 5", label.Message);
    }

    [Fact]
    public void RunnerReturnsOutputsOfEveryBatchInOrder()
    {
        var (model, data, labels) = Classifier();
        var batches = Batches(data, labels, 10);
        using var runner = ModelRunner.Create(model, batches);
        Assert.Equal(["X"], runner.InputNames);
        Assert.Equal(["y"], runner.OutputNames);
        var all = runner.RunAll();
        Assert.Equal([10, 10, 3], all.Select(t => t.Rows));
        Assert.Equal(Logits(model, data), all.SelectMany(t => t.AsFloats()));
        Assert.Equal(all[1].AsFloats(), runner.Run(1)["y"].AsFloats());
        // Labels follow their samples through the batching.
        Assert.Equal(labels.AsInt64(), batches.Labels!.SelectMany(l => l.AsInt64()));
    }
}
