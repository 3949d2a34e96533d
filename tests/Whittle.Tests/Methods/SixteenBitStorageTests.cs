using Whittle.Compression;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Methods;

/// <summary>
/// Models whose matrices are stored in bfloat16 behind a <c>Cast</c> to float (what <c>import hf</c> writes for a bf16 checkpoint):
/// the methods read them, keep that storage in what they write, and give the model they give the float32 twin.
/// </summary>
public class SixteenBitStorageTests
{
    private static readonly OnnxModel Llama = OnnxModel.Load(RepoFixtures.Path("text", "llama.onnx"));

    /// <summary>The trained Llama fixture with every matrix rounded to bfloat16: stored in float32, and stored in bfloat16 behind Casts.</summary>
    private static (OnnxModel Wide, OnnxModel Narrow) Twins() => Twins(Llama);

    /// <summary><paramref name="model"/> with every float matrix rounded to bfloat16: stored in float32, and stored in bfloat16 behind Casts.</summary>
    internal static (OnnxModel Wide, OnnxModel Narrow) Twins(OnnxModel model)
    {
        var wide = model.Clone();
        var narrow = model.Clone();
        foreach (var t in model.Proto.Graph.Initializer.Where(t => t.Dims.Count >= 2 && t.DataType == (int)OnnxDataType.Float).ToList())
        {
            var stored = OnnxTensors.FromArray(t.Name + ".bfloat16", model.Tensor(t).ToArray<float>(), [.. t.Dims], OnnxDataType.BFloat16);
            wide.Graph.ReplaceInitializer(OnnxTensors.FromArray(t.Name, OnnxTensor.Of(stored).ToArray<float>(), [.. t.Dims], OnnxDataType.Float));
            narrow.Graph.RemoveInitializer(t.Name);
            narrow.Graph.AddInitializer(stored);
            narrow.Proto.Graph.Node.Insert(0, new NodeProto
            {
                OpType = "Cast", Name = t.Name + "/widen", Input = { stored.Name }, Output = { t.Name },
                Attribute = { OnnxAttributes.Int("to", (long)OnnxDataType.Float) },
            });
            narrow.Graph.Invalidate();
        }
        narrow.Validate();
        return (wide, narrow);
    }

    private static IEnumerable<TensorProto> Matrices(OnnxModel model) => model.Proto.Graph.Initializer.Where(t => t.Dims.Count >= 2);

    [Fact]
    public void TheNarrowTwinHalvesTheBytesAndRunsAsTheWideOne()
    {
        var (wide, narrow) = Twins();
        long wideBytes = OnnxModelSummary.Of(wide).InitializerBytes, narrowBytes = OnnxModelSummary.Of(narrow).InitializerBytes;
        Assert.InRange(narrowBytes, 0.45 * wideBytes, 0.55 * wideBytes);
        // ONNX Runtime folds each Cast when it loads the model: the same float32 weights, the same logits.
        var (_, maxDiff) = StreamSlicingTests.Compare(wide, narrow, StreamSlicingTests.Text(Llama, "heldout-excerpt.txt", 4));
        Assert.Equal(0, maxDiff);
    }

    public static TheoryData<string> Methods => ["whitened-svd", "svd", "id", "slice"];

    [Theory]
    [MemberData(nameof(Methods))]
    public void MethodsKeepTheStorageAndGiveTheFloat32TwinsResult(string method)
    {
        var (wide, narrow) = Twins();
        var calibration = StreamSlicingTests.Text(Llama, "calib-excerpt.txt", 8);
        ICompressionMethod Method() => method switch
        {
            "whitened-svd" => new WhitenedSvd(),
            "svd" => new PlainSvd(),
            "id" => new InterpolativePruning(),
            _ => new StreamSlicing(),
        };
        CompressionBudget[] budget = [CompressionBudget.KeepParameters(0.7) with { Scope = BudgetScope.Model }];
        var fromWide = Assert.Single(Method().Compress(new CompressionJob(wide, calibration), budget));
        var fromNarrow = Assert.Single(Method().Compress(new CompressionJob(narrow, calibration), budget));

        // The same decisions, every matrix still (or newly) stored in bfloat16 behind a Cast, about half the bytes.
        Assert.Equal(fromWide.Report.After.Parameters, fromNarrow.Report.After.Parameters);
        var graph = fromNarrow.Model.Graph;
        Assert.All(Matrices(fromNarrow.Model), t =>
        {
            Assert.Equal((int)OnnxDataType.BFloat16, t.DataType);
            Assert.Equal("Cast", Assert.Single(graph.Consumers(t.Name)).OpType);
        });
        // rewritten (new, or of a new shape), not only kept
        int rewritten = Matrices(fromNarrow.Model).Count(t => !narrow.Graph.TryGetInitializer(t.Name, out var old) || !old.Shape.SequenceEqual(t.Dims));
        Assert.True(rewritten > 0, $"{method}: no matrix was rewritten");
        Assert.InRange(fromNarrow.Report.After.StoredBytes, 0.4 * fromWide.Report.After.StoredBytes, 0.6 * fromWide.Report.After.StoredBytes);
        // What differs is the rounding of the new weights to bfloat16: far below what the compression itself changes.
        var heldOut = StreamSlicingTests.Text(Llama, "heldout-excerpt.txt", 6);
        var (twins, _) = StreamSlicingTests.Compare(fromWide.Model, fromNarrow.Model, heldOut);
        var (compression, _) = StreamSlicingTests.Compare(wide, fromWide.Model, heldOut);
        Assert.True(twins < 0.05 * compression, $"{method}: KL between the twins' results {twins:G3}, of the compression {compression:G3}");
    }
}
