using Google.Protobuf;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Evaluation;

/// <summary>Evaluation segment by segment gives the figures of the whole-model path, on a transformer, a residual CNN and an encoder with two outputs.</summary>
public class SegmentedEvaluationTests
{
    private static readonly EvaluationOptions Options = new() { LatencyWarmup = 0, LatencyRepeats = 1 };

    /// <summary>A copy of <paramref name="model"/> with its largest weight matrix scaled by 0.9, so the two models disagree a little.</summary>
    private static OnnxModel Perturbed(OnnxModel model)
    {
        var proto = model.Proto.Clone();
        var copy = OnnxModel.FromProto(proto, model.BaseDirectory);
        var w = proto.Graph.Initializer.Where(t => t.Dims.Count >= 2 && t.DataType == (int)OnnxDataType.Float).MaxBy(t => t.Dims.Aggregate(1L, (a, d) => a * d))!;
        var values = copy.Tensor(w).ToArray<float>();
        for (int i = 0; i < values.Length; i++) values[i] *= 0.9f;
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        w.ClearDataLocation();
        w.ExternalData.Clear();
        w.FloatData.Clear();
        w.RawData = ByteString.CopyFrom(bytes);
        return copy;
    }

    private static void AssertSameFigures(OnnxModel model, OnnxModel reference, BatchSet data, int expectedSegmentsAtLeast)
    {
        Assert.True(StreamedOutputs.Segments(model).Count >= expectedSegmentsAtLeast);
        var whole = Evaluator.Evaluate(model, reference, data, Options with { Execution = ModelExecution.Whole });
        var segments = Evaluator.Evaluate(model, reference, data, Options with { Execution = ModelExecution.Segments, BoundaryCacheBytes = 64 << 10 });
        static void Close(double? a, double? b, string what)
        {
            Assert.Equal(a.HasValue, b.HasValue);
            if (a is { } x) Assert.True(Math.Abs(x - b!.Value) <= 1e-5 * Math.Max(1, Math.Abs(x)), $"{what}: whole {x}, segments {b}");
        }
        foreach (var (w, s) in new[] { (whole.Model, segments.Model), (whole.Reference!, segments.Reference!) })
        {
            Assert.Equal(w.Parameters, s.Parameters);
            Assert.Equal(w.StoredBytes, s.StoredBytes);
            Assert.Equal(w.MacsPerExample, s.MacsPerExample);
            Close(w.Loss, s.Loss, "mean NLL");
            Close(w.Accuracy, s.Accuracy, "accuracy");
            Close(w.Perplexity, s.Perplexity, "perplexity");
        }
        var (cw, cs) = (whole.Comparison!, segments.Comparison!);
        Assert.Equal(cw.Compared, cs.Compared);
        Close(cw.Agreement, cs.Agreement, "agreement");
        Close(cw.MeanKl, cs.MeanKl, "mean KL");
        Assert.Equal(cw.Outputs.Select(o => o.Name), cs.Outputs.Select(o => o.Name));
        for (int i = 0; i < cw.Outputs.Count; i++) Close(cw.Outputs[i].MeanCosine, cs.Outputs[i].MeanCosine, "cosine of " + cw.Outputs[i].Name);
        Assert.Contains(segments.Warnings, w => w.Contains("latency is not measured", StringComparison.Ordinal));
        Assert.True(cw.MeanKl is null or > 0); // the perturbation shows
    }

    [Fact]
    public void LanguageModel_BlockByBlockMatchesTheWholeModel()
    {
        var model = OnnxModel.Load(RepoFixtures.Path("text", "llama.onnx"));
        var data = ModelData.Load(model, new DataSource(Text: RepoFixtures.Path("text", "heldout-excerpt.txt")) { WindowLength = 64 }).Batches(4, new DataSelection(Limit: 12));
        AssertSameFigures(Perturbed(model), model, data, expectedSegmentsAtLeast: 3);
    }

    [Fact]
    public void SixteenBitModel_BlockByBlockMatchesTheWholeModel_AndAutoCountsItsWeightsInFloat32()
    {
        var (wide, narrow) = Methods.SixteenBitStorageTests.Twins(OnnxModel.Load(RepoFixtures.Path("text", "llama.onnx")));
        var data = ModelData.Load(narrow, new DataSource(Text: RepoFixtures.Path("text", "heldout-excerpt.txt")) { WindowLength = 64 }).Batches(4, new DataSelection(Limit: 8));
        AssertSameFigures(narrow, Perturbed(wide), data, expectedSegmentsAtLeast: 3);
        // Under a limit between its stored bytes and the float32 bytes ONNX Runtime holds for it, auto runs it block by block.
        long stored = OnnxModelSummary.Of(narrow).InitializerBytes;
        Assert.True(OnnxModelSummary.Of(wide).InitializerBytes > 1.8 * stored);
        var report = Evaluator.Evaluate(narrow, null, data, Options with { WholeModelLimitBytes = (long)(1.5 * stored) });
        Assert.Contains(report.Warnings, w => w.Contains("segment by segment"));
        Assert.DoesNotContain(Evaluator.Evaluate(narrow, null, data, Options with { WholeModelLimitBytes = 3 * stored }).Warnings, w => w.Contains("segment by segment"));
    }

    [Fact]
    public void ResidualCnn_StretchByStretchMatchesTheWholeModel()
    {
        var model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", "resnet.onnx"));
        string f = RepoFixtures.Path("fashion-mnist");
        var data = ModelData.Load(model, new DataSource(Path.Combine(f, "heldout-images-idx3-ubyte.gz"), Path.Combine(f, "heldout-labels-idx1-ubyte.gz")))
            .Batches(50, new DataSelection(Limit: 200));
        AssertSameFigures(Perturbed(model), model, data, expectedSegmentsAtLeast: 2);
    }

    [Fact]
    public void Encoder_WithTwoOutputsMatchesTheWholeModel()
    {
        var model = HfImporter.Import(Import.HfImportTests.Fixture("bert")).Model;
        var batches = new List<InputBatch>();
        var random = new Random(7);
        for (int b = 0; b < 3; b++)
        {
            long[] ids = [.. Enumerable.Range(0, 2 * 8).Select(_ => (long)random.Next(5, 60))];
            long[] mask = [.. Enumerable.Range(0, 2 * 8).Select(i => i % 8 < 6 || b == 0 ? 1L : 0L)]; // padding in later batches
            long[] types = [.. Enumerable.Range(0, 2 * 8).Select(i => i % 8 < 4 ? 0L : 1L)];
            batches.Add(new InputBatch([new("input_ids", HostTensor.Int64(ids, 2, 8)), new("attention_mask", HostTensor.Int64(mask, 2, 8)),
                new("token_type_ids", HostTensor.Int64(types, 2, 8))]));
        }
        var data = new BatchSet(batches);
        AssertSameFigures(Perturbed(model), model, data, expectedSegmentsAtLeast: 3);
    }
}
