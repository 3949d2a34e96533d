using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests;

/// <summary>The NuGet package's readme: its code example is this file's, compiled here, and it runs.</summary>
public sealed class PackageReadmeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("whittle-package-readme-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string[] Lines(string text) =>
        [.. text.ReplaceLineEndings("\n").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("using ", StringComparison.Ordinal))];

    // Not [CallerFilePath]: a CI build (ContinuousIntegrationBuild) maps source paths to /_/.
    private static string ThisFile() => Path.Combine(RepoFixtures.Root, "tests", "Whittle.Tests", "PackageReadmeTests.cs");

    [Fact]
    public void TheReadmeExampleIsTheCodeThisTestRuns()
    {
        string readme = File.ReadAllText(Path.Combine(RepoFixtures.Root, "src", "Whittle", "PACKAGE.md"));
        int start = readme.IndexOf("```csharp\n", StringComparison.Ordinal) + "```csharp\n".Length;
        string example = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
        string source = File.ReadAllText(ThisFile());
        const string open = "// <package-readme>", close = "// </package-readme>";
        // The last markers: the first ones are these constants.
        int from = source.LastIndexOf(open, StringComparison.Ordinal) + open.Length;
        string tested = source[from..source.LastIndexOf(close, StringComparison.Ordinal)];
        Assert.Equal(Lines(tested), Lines(example));
    }

    [Fact]
    public void TheReadmeExamplePrunesAndQuantizesTheVggFixture()
    {
        string modelPath = RepoFixtures.Path("fashion-mnist", "vgg.onnx");
        string calibrationPath = RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz");
        string outputPath = Path.Combine(_dir, "vgg.small.onnx");
        // <package-readme>
        var model = OnnxModel.Load(modelPath);
        var calibration = ModelData.Load(model, new DataSource(calibrationPath)).Batches(batchSize: 32, new DataSelection(Limit: 256));
        var pruneThenQuantize = new CompressionPipeline(new InterpolativePruning(), new WeightQuantization(new WeightQuantizationOptions { Bits = 8, BlockSize = 128 }));
        var result = pruneThenQuantize.Compress(new CompressionJob(model, calibration), [CompressionBudget.KeepMacs(0.5)])[0];
        result.Model.Save(outputPath);
        Console.WriteLine($"MACs kept {result.Report.After.MacsPerExample / result.Report.Before.MacsPerExample:P0}, bytes kept {(double)result.Report.After.StoredBytes / result.Report.Before.StoredBytes:P0}");
        // </package-readme>
        Assert.InRange(result.Report.After.MacsPerExample / result.Report.Before.MacsPerExample, 0.4, 0.5);
        Assert.True(result.Report.After.StoredBytes < 0.1 * result.Report.Before.StoredBytes);
        var saved = OnnxModel.Load(outputPath);
        Assert.Contains(saved.Graph.Nodes, n => n.OpType == "DequantizeLinear");
    }
}
