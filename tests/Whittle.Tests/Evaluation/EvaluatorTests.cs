using System.Text.Json;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Runtime;
using Whittle.Tests.Onnx;
using static Whittle.Tests.Evaluation.EvalTestModels;

namespace Whittle.Tests.Evaluation;

public class EvaluatorTests
{
    private static OnnxModel Fixture(string name) => OnnxModel.Load(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture(name + ".onnx"));

    private static JsonElement Recorded(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Whittle.Tests.Fixtures.FixtureModelsTests.Fixture("fixtures.json")));
        return doc.RootElement.GetProperty("models").GetProperty(model).Clone();
    }

    private static OnnxModel WithMetadata(OnnxModel model, string key, string value)
    {
        var proto = model.Proto.Clone();
        proto.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return OnnxModel.FromProto(proto);
    }

    private static readonly EvaluationOptions Fast = new() { LatencyWarmup = 1, LatencyRepeats = 3 };

    /// <summary>Random images for the mlp fixture (input [N,784]) with labels 0..9, in batches of 16.</summary>
    private static BatchSet MlpData(int n, int batchSize = 16)
    {
        var x = Whittle.Tests.Runtime.RuntimeModels.RandomFloats(11, n, 784);
        var labels = HostTensor.Int64([.. Enumerable.Range(0, n).Select(i => (long)(i * 3 % 10))], n);
        var data = new InputDataset(new InputBatch("input", x, "mem"), "mem");
        return new ModelData(data, labels, DataKind.Arrays, "random").Batches(batchSize);
    }

    private static float[] Logits(OnnxModel model, BatchSet data, string output = "logits")
    {
        using var s = TappedSession.Create(model, []);
        return [.. data.SelectMany(b => s.Run(b)[output].AsFloats())];
    }

    [Fact]
    public void TasksComeFromMetadataThenHeuristics()
    {
        var mlp = DetectedTask.Detect(Fixture("mlp"));
        Assert.Equal(ModelTask.Classifier, mlp.Task);
        Assert.Equal("logits", mlp.Output);
        Assert.StartsWith("guessed", mlp.Reason);
        Assert.Contains("--task", mlp.Reason);
        Assert.Equal(ModelTask.LanguageModel, DetectedTask.Detect(Fixture("gpt2_tiny")).Task);
        Assert.Equal(ModelTask.LanguageModel, DetectedTask.Detect(Fixture("llama_tiny")).Task);
        Assert.Equal(ModelTask.Classifier, DetectedTask.Detect(Fixture("resnet_cifar")).Task);

        var declared = DetectedTask.Detect(WithMetadata(Fixture("gpt2_tiny"), "whittle.task", "classifier"));
        Assert.Equal(ModelTask.Classifier, declared.Task);
        Assert.Equal("metadata whittle.task = classifier", declared.Reason);
        Assert.Equal(ModelTask.Generic, DetectedTask.Detect(WithMetadata(Fixture("mlp"), "whittle.task", "classifier"), ModelTask.Generic).Task);
        var bad = Assert.Throws<InvalidDataException>(() => DetectedTask.Detect(WithMetadata(Fixture("mlp"), "whittle.task", "detector")));
        Assert.Contains("'detector' is not a task", bad.Message);

        // Two outputs: neither a classifier nor a language model.
        var proto = TestModels.Dense(4, 3);
        proto.Graph.Output.Add(TestModels.Tensor("Z", OnnxDataType.Float, null, 3));
        Assert.Equal(ModelTask.Generic, DetectedTask.Detect(OnnxModel.FromProto(proto)).Task);
        Assert.Equal("language-model", DetectedTask.Name(ModelTask.LanguageModel));
        Assert.Equal(ModelTask.LanguageModel, DetectedTask.Parse("language-model"));
        Assert.Null(DetectedTask.Parse("lm"));
    }

    [Fact]
    public void ClassifierAgainstItselfAgreesCompletely()
    {
        var model = Fixture("mlp");
        var data = MlpData(40);
        var report = Evaluator.Evaluate(model, model, data, Fast);
        var c = report.Comparison!;
        Assert.Equal(40, c.Compared);
        Assert.Equal(1.0, c.Agreement);
        Assert.Equal(0.0, c.MeanKl);
        Assert.Equal(0.0, c.MaxKl);
        Assert.Equal(new FlipCounts(0, 0), c.Flips);
        var o = Assert.Single(c.Outputs);
        Assert.Equal(("logits", 1.0, 0.0, 0.0), (o.Name, o.MeanCosine, o.RelativeError, o.MaxAbsDifference), new CosineComparer());
        Assert.Equal(report.Model.Loss, report.Reference!.Loss);
        Assert.Equal(report.Model.Correct, report.Reference.Correct);

        // Size and cost against the PyTorch-side counts of the fixture.
        var recorded = Recorded("mlp");
        Assert.Equal(recorded.GetProperty("parameters").GetInt64(), report.Model.Parameters);
        Assert.Equal(4 * recorded.GetProperty("parameters").GetInt64(), report.Model.StoredBytes);
        Assert.Equal(recorded.GetProperty("total_macs").GetDouble(), report.Model.MacsPerExample);
        Assert.Equal(0, report.Model.MacsUnknownLayers);
        Assert.Equal([1, 16], report.Model.Latency.Select(l => l.BatchSize));
        Assert.All(report.Model.Latency.Concat(report.Reference.Latency), l =>
        {
            Assert.Equal(3, l.Runs);
            Assert.InRange(l.MedianMilliseconds, l.MinMilliseconds, l.MaxMilliseconds);
            Assert.True(l.MinMilliseconds > 0);
        });
        Assert.Equal(Environment.ProcessorCount, report.Runtime.IntraOpThreads); // the default: one per core
    }

    private sealed class CosineComparer : IEqualityComparer<(string, double, double, double)>
    {
        public bool Equals((string, double, double, double) a, (string, double, double, double) b) =>
            a.Item1 == b.Item1 && Math.Abs(a.Item2 - b.Item2) < 1e-12 && a.Item3 == b.Item3 && a.Item4 == b.Item4;

        public int GetHashCode((string, double, double, double) obj) => obj.Item1.GetHashCode();
    }

    [Fact]
    public void PerturbedClassifierFiguresMatchAnIndependentComputation()
    {
        var model = Fixture("mlp");
        var perturbed = Perturbed(model, 0.5, seed: 3);
        var data = MlpData(60);
        var report = Evaluator.Evaluate(perturbed, model, data, Fast);

        var p = Logits(model, data);
        var q = Logits(perturbed, data);
        var labels = data.Labels!.SelectMany(l => l.AsInt64()).ToArray();
        int n = labels.Length, agree = 0, correct = 0, refCorrect = 0, lost = 0, gained = 0;
        double kl = 0, maxKl = 0, ce = 0, refCe = 0, cos = 0, minCos = 1, dist = 0, norm = 0, maxAbs = 0;
        for (int i = 0; i < n; i++)
        {
            var pr = p.AsSpan(i * 10, 10);
            var qr = q.AsSpan(i * 10, 10);
            int a = ArgMax(pr), b = ArgMax(qr);
            if (a == b) agree++;
            bool refOk = a == labels[i], ok = b == labels[i];
            if (ok) correct++;
            if (refOk) refCorrect++;
            if (refOk && !ok) lost++;
            if (!refOk && ok) gained++;
            double k = Kl(pr, qr);
            kl += k;
            maxKl = Math.Max(maxKl, k);
            ce -= LogSoftmax(qr)[labels[i]];
            refCe -= LogSoftmax(pr)[labels[i]];
            double dot = 0, qq = 0, pp = 0;
            for (int j = 0; j < 10; j++)
            {
                dot += (double)pr[j] * qr[j];
                pp += (double)pr[j] * pr[j];
                qq += (double)qr[j] * qr[j];
                dist += ((double)qr[j] - pr[j]) * ((double)qr[j] - pr[j]);
                maxAbs = Math.Max(maxAbs, Math.Abs((double)qr[j] - pr[j]));
            }
            norm += pp;
            double c = dot / Math.Sqrt(pp * qq);
            cos += c;
            minCos = Math.Min(minCos, c);
        }
        var cmp = report.Comparison!;
        Assert.InRange(agree, 1, n - 1); // the perturbation changes some predictions, not all
        Assert.Equal((double)agree / n, cmp.Agreement);
        Assert.True(cmp.MeanKl > 0);
        Assert.Equal(kl / n, cmp.MeanKl!.Value, 1e-9);
        Assert.Equal(maxKl, cmp.MaxKl!.Value, 1e-9);
        Assert.Equal(new FlipCounts(lost, gained), cmp.Flips);
        Assert.Equal(correct, report.Model.Correct);
        Assert.Equal((double)correct / n, report.Model.Accuracy);
        Assert.Equal(refCorrect, report.Reference!.Correct);
        Assert.Equal(ce / n, report.Model.Loss!.Value, 1e-9);
        Assert.Equal(refCe / n, report.Reference.Loss!.Value, 1e-9);
        var o = Assert.Single(cmp.Outputs);
        Assert.Equal(cos / n, o.MeanCosine, 1e-12);
        Assert.Equal(minCos, o.MinCosine, 1e-12);
        Assert.Equal(Math.Sqrt(dist / norm), o.RelativeError, 1e-12);
        Assert.Equal(maxAbs, o.MaxAbsDifference, 1e-12);
        Assert.Null(report.Model.Perplexity);
    }

    [Fact]
    public void LanguageModelPerplexityAndAgreementOnPredictedPositions()
    {
        var model = Fixture("gpt2_tiny");
        var perturbed = Perturbed(model, 0.3, seed: 5);
        const int T = 16;
        var ids = HostTensor.Int64([.. Enumerable.Range(0, 5 * T).Select(i => (long)((i * 37 + 11) % 256))], 5, T);
        var data = new ModelData(new InputDataset(new InputBatch("input_ids", ids, "mem"), "mem"), null, DataKind.Text, "mem").Batches(2);
        var report = Evaluator.Evaluate(perturbed, model, data, Fast);
        Assert.Equal(ModelTask.LanguageModel, report.Task.Task);

        var p = Logits(model, data);
        var q = Logits(perturbed, data);
        var tokens = ids.AsInt64();
        double nll = 0, refNll = 0, kl = 0;
        int agree = 0, count = 0;
        for (int w = 0; w < 5; w++)
            for (int t = 0; t < T - 1; t++) // the last position predicts nothing
            {
                var pr = p.AsSpan((w * T + t) * 256, 256);
                var qr = q.AsSpan((w * T + t) * 256, 256);
                long target = tokens[w * T + t + 1];
                nll -= LogSoftmax(qr)[target];
                refNll -= LogSoftmax(pr)[target];
                kl += Kl(pr, qr);
                if (ArgMax(pr) == ArgMax(qr)) agree++;
                count++;
            }
        Assert.Equal(5 * (T - 1), report.Data.PredictedTokens);
        Assert.Equal(count, report.Comparison!.Compared);
        Assert.Equal(nll / count, report.Model.Loss!.Value, 1e-9);
        Assert.Equal(Math.Exp(nll / count), report.Model.Perplexity!.Value, 1e-9 * Math.Exp(nll / count));
        Assert.Equal(Math.Exp(refNll / count), report.Reference!.Perplexity!.Value, 1e-9 * Math.Exp(refNll / count));
        Assert.Equal((double)agree / count, report.Comparison.Agreement);
        Assert.Equal(kl / count, report.Comparison.MeanKl!.Value, 1e-9);
        Assert.Null(report.Comparison.Flips);
        Assert.Null(report.Model.Accuracy);

        // MACs at T = 16 from the probed shapes: PyTorch's count of the layers plus the attention products.
        var recorded = Recorded("gpt2_tiny");
        Assert.Equal(recorded.GetProperty("total_macs").GetDouble() + recorded.GetProperty("attention_matmul_macs").GetDouble(), report.Model.MacsPerExample);
    }

    [Fact]
    public void GenericModelsCompareEveryOutput()
    {
        var proto = TestModels.Dense(4, 3);
        proto.Graph.Output.Add(TestModels.Tensor("Z", OnnxDataType.Float, null, 3));
        var model = OnnxModel.FromProto(proto);
        var other = Perturbed(model, 0.2, seed: 1);
        var x = Whittle.Tests.Runtime.RuntimeModels.RandomFloats(2, 9, 4);
        var data = new BatchSet([new InputBatch("X", x)]);
        var report = Evaluator.Evaluate(other, model, data, Fast with { LatencyRepeats = 0 });
        Assert.Equal(ModelTask.Generic, report.Task.Task);
        Assert.Empty(report.Model.Latency);
        Assert.Null(report.Comparison!.Agreement);
        Assert.Null(report.Model.Loss);
        Assert.Equal(["Y", "Z"], report.Comparison.Outputs.Select(o => o.Name));

        using var a = TappedSession.Create(other, []);
        using var b = TappedSession.Create(model, []);
        var z = a.Run(data[0])["Z"].AsFloats();
        var zr = b.Run(data[0])["Z"].AsFloats();
        double d = z.Zip(zr, (u, v) => ((double)u - v) * ((double)u - v)).Sum(), r = zr.Sum(v => (double)v * v);
        Assert.Equal(Math.Sqrt(d / r), report.Comparison.Outputs[1].RelativeError, 1e-12);
        Assert.True(report.Comparison.Outputs[1].RelativeError > 0);
    }

    [Fact]
    public void WrongShapesForTheTaskAreClearErrors()
    {
        var lm = Fixture("gpt2_tiny");
        var ids = HostTensor.Int64(new long[2 * 8], 2, 8);
        var data = new BatchSet([new InputBatch("input_ids", ids)]);
        var e = Assert.Throws<InvalidDataException>(() => Evaluator.Evaluate(lm, null, data, Fast with { Task = ModelTask.Classifier }));
        Assert.Contains("output 'logits' is float32[2,8,256] for a batch of 2; a classifier's logits are float32[2,classes]", e.Message);
        var unlabelled = Evaluator.Evaluate(Fixture("mlp"), null, MlpData(4).WithoutLabels(), Fast);
        Assert.Null(unlabelled.Model.Accuracy);
        Assert.Null(unlabelled.Comparison);
    }
}

internal static class BatchSetExtensions
{
    public static BatchSet WithoutLabels(this BatchSet set) => new([.. set], null, set.Description);
}
