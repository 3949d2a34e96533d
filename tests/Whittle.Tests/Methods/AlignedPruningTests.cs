using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Methods;

/// <summary>ID pruning with aligned widths (<see cref="PruningOptions.Align"/>) on the trained VGG fixture.</summary>
public class AlignedPruningTests
{
    [Fact]
    public void AlignedWidthsAreMultiplesWhereTheSiteAllowsAndTheBudgetIsSpent()
    {
        var model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", "vgg.onnx"));
        var calibration = ModelData.Load(model, new DataSource(RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz")))
            .Batches(batchSize: 64, new DataSelection(Limit: 256));
        const int align = 16;
        var result = Assert.Single(new InterpolativePruning(PruningOptions.Default with { Align = align })
            .Compress(new CompressionJob(model, calibration), [CompressionBudget.KeepMacs(0.5)]));

        var pruned = result.Report.Sites.Where(s => s.Skipped is null).ToList();
        Assert.NotEmpty(pruned);
        foreach (var s in pruned)
            if (s.OldSize >= 4 * align) Assert.True(s.NewSize % align == 0, $"{s.Site}: {s.OldSize} → {s.NewSize}, not a multiple of {align}");
        Assert.Contains(pruned, s => s.OldSize >= 4 * align && s.NewSize < s.OldSize);

        // Steps of 16 leave much of the budget between ε's breakpoints; the remainder is spent (before: 0.434 of 0.5).
        double kept = result.Report.Compressible!.MacsAfter!.Value / result.Report.Compressible.MacsBefore!.Value;
        Assert.InRange(kept, 0.48, 0.5 + 1e-9);
    }
}
