using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Methods;
using Whittle.Tests.Onnx;

namespace Whittle.Tests.Compression;

/// <summary>
/// With an output folder, a compression run writes each block's new weights to disk as it goes: the results are the
/// in-memory results bit for bit, saving moves the files into place, and a failed or cancelled run leaves nothing.
/// </summary>
public class StagedOutputTests
{
    // Width 256: the new factors (64 KiB and more) are large enough to be moved to disk.
    private static OnnxModel Transformer() => TransformerGraphs.Build(Family.Llama, 3, d: 256, heads: 4, seed: 13);

    /// <summary>The transformer as a large model is stored: weights in external data, read from there.</summary>
    private static OnnxModel ExternalTransformer(TempFolder dir)
    {
        Directory.CreateDirectory(dir.File("in"));
        string path = Path.Combine(dir.File("in"), "model.onnx");
        Transformer().Save(path, new OnnxSaveOptions { ExternalData = OnnxExternalData.Always });
        return OnnxModel.Load(path);
    }

    private static BatchSet Data() => TransformerGraphs.Batches(3, 2, 7, mask: false, seed: 17);

    private static readonly CompressionBudget[] TwoBudgets = [CompressionBudget.KeepParameters(0.6), CompressionBudget.KeepParameters(0.8)];

    public static TheoryData<string> Methods => new() { "whitened-svd", "id" };

    private static ICompressionMethod Method(string name) => name == "id" ? new InterpolativePruning() : new WhitenedSvd();

    [Theory]
    [MemberData(nameof(Methods))]
    public void StagedResultsAreTheInMemoryResultsAndSavingMovesThemIntoPlace(string method)
    {
        using var input = new TempFolder();
        var model = ExternalTransformer(input);
        var data = Data();
        var inMemory = Method(method).Compress(new CompressionJob(model, data), TwoBudgets);
        using var dir = new TempFolder();
        var staged = Method(method).Compress(new CompressionJob(model, data) { OutputDirectory = dir.Path }, TwoBudgets);

        Assert.Equal(2, Directory.GetDirectories(dir.Path).Length); // one staging folder per result
        foreach (var r in staged)
        {
            Assert.NotNull(r.Model.Staging);
            // Only tensors under 64 KiB stay in memory.
            var largestInline = r.Model.Proto.Graph.Initializer.Where(t => !ExternalDataInfo.IsExternal(t)).Select(t => r.Model.Tensor(t).ByteLength).DefaultIfEmpty(0).Max();
            Assert.True(largestInline < 64 << 10, $"a tensor of {largestInline} bytes is still in memory");
            Assert.Contains(r.Model.Proto.Graph.Initializer, t => t.ExternalData.Any(e => e.Key == "location" && e.Value == r.Model.Staging!.DataFileName));
        }
        for (int b = 0; b < TwoBudgets.Length; b++)
        {
            string path = dir.File($"m{b}.onnx");
            staged[b].Model.Save(path);
            var saved = OnnxModel.Load(path);
            AssertSameTensors(inMemory[b].Model, saved);
            Assert.Equal(inMemory[b].Report.After.Parameters, staged[b].Report.After.Parameters);
        }
        // The original keeps its weights in external data, so do the results; no staging folder is left.
        Assert.Equal(["m0.onnx", "m0.onnx.data", "m1.onnx", "m1.onnx.data"], dir.Entries());
    }

    [Fact]
    public void AStagedResultSavedWithExternalDataRunsInOnnxRuntime()
    {
        var model = Transformer();
        var data = Data();
        using var dir = new TempFolder();
        var result = new WhitenedSvd().Compress(new CompressionJob(model, data) { OutputDirectory = dir.Path }, [CompressionBudget.KeepParameters(0.7)])[0];
        var expected = RunAll(result.Model, data); // the staged model itself runs: its staged tensors are read back for ONNX Runtime
        string path = dir.File("out.onnx");
        result.Model.Save(path, new OnnxSaveOptions { ExternalData = OnnxExternalData.Always });
        Assert.Equal(["out.onnx", "out.onnx.data"], dir.Entries());
        Assert.Equal(expected, RunAll(OnnxModel.Load(path), data));
    }

    [Fact]
    public void ACancelledRunLeavesNoStagingFolder()
    {
        using var dir = new TempFolder();
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Stage == Stages.Calibration && p.Detail?.Contains("block 1", StringComparison.Ordinal) == true) cancel.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() => new WhitenedSvd().Compress(
            new CompressionJob(Transformer(), Data()) { OutputDirectory = dir.Path, Progress = progress }, TwoBudgets, cancel.Token));
        Assert.Empty(dir.Entries());
    }

    private sealed class Progress(Action<CompressionProgress> report) : IProgress<CompressionProgress>
    {
        public void Report(CompressionProgress value) => report(value);
    }

    private static List<float[]> RunAll(OnnxModel model, BatchSet data)
    {
        using var session = TappedSession.Create(model, []);
        return [.. Enumerable.Range(0, data.Count).Select(b => session.Run(data[b]).Values.First().AsFloats())];
    }

    private static void AssertSameTensors(OnnxModel expected, OnnxModel actual)
    {
        var e = expected.Proto.Graph.Initializer.ToDictionary(t => t.Name);
        var a = actual.Proto.Graph.Initializer.ToDictionary(t => t.Name);
        Assert.Equal(e.Keys.Order(StringComparer.Ordinal), a.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, t) in e)
            Assert.True(expected.Tensor(t).ReadBytes().AsSpan().SequenceEqual(actual.Tensor(a[name]).ReadBytes()), $"tensor '{name}' differs");
    }
}
