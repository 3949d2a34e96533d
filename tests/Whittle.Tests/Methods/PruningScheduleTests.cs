using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Analysis;
using Whittle.Tests.Fixtures;
using Whittle.Tests.Rewriting;

namespace Whittle.Tests.Methods;

/// <summary>Schedules and targets on the exported fixtures (random weights): budgets met, models run, reports consistent.</summary>
public class PruningScheduleTests
{
    private static OnnxModel Fixture(string name) => OnnxModel.Load(FixtureModelsTests.Fixture(name + ".onnx"));

    private static BatchSet Images(int batches, int seed) =>
        new([.. Enumerable.Range(0, batches).Select(b => new InputBatch("input", PruningModels.Input(seed + b, 16, 3, 32, 32)))]);

    private static BatchSet Tokens(int batches, int seed)
    {
        var rng = new Random(seed);
        return new([.. Enumerable.Range(0, batches).Select(_ =>
        {
            var ids = new long[4 * 16];
            for (int i = 0; i < ids.Length; i++) ids[i] = rng.Next(256);
            return new InputBatch("input_ids", HostTensor.Int64(ids, 4, 16));
        })]);
    }

    private static int[] OutputShape(OnnxModel model, InputBatch batch)
    {
        using var session = TappedSession.Create(model, []);
        return session.Run(batch).Values.Single().Shape;
    }

    [Theory]
    [InlineData("vgg_cifar")]
    [InlineData("resnet_cifar_bn")]
    public void GreedyMeetsMacBudgetsInDecreasingSteps(string name)
    {
        var model = Fixture(name);
        var set = Images(batches: 2, seed: 3);
        var options = new PruningOptions { Schedule = PruningSchedule.Greedy, GreedyFactor = 0.75 };
        var results = new InterpolativePruning(options).Compress(new CompressionJob(model, set), [CompressionBudget.KeepMacs(0.5), CompressionBudget.KeepMacs(0.8)]);
        Assert.Equal(CompressionBudget.KeepMacs(0.5), results[0].Report.Budget); // results follow the budgets' order
        int? previous = null;
        foreach (var r in new[] { results[1], results[0] })
        {
            var rep = r.Report;
            double fraction = rep.Compressible!.MacFraction!.Value; // the budget's default scope: the layers pruning touches
            Assert.True(fraction <= rep.Budget.Value, $"{rep.Budget}: {fraction}");
            if (name.StartsWith("resnet", StringComparison.Ordinal))
                Assert.True(rep.After.MacsPerExample / rep.Before.MacsPerExample > fraction, "the residual stream's convolutions count in the whole model's MACs only");
            var d = Assert.IsType<PruningRunDetails>(rep.Details);
            Assert.Equal("greedy", d.Schedule);
            Assert.True(d.GreedySteps > (previous ?? 0));
            previous = d.GreedySteps;
            Assert.Equal(OutputShape(model, set[0]), OutputShape(r.Model, set[0]));
            Assert.All(rep.Sites.Where(s => s.Skipped is null), s => Assert.True(s.MeasuredError is >= 0 and < 10, $"{s.Site}: {s.MeasuredError}"));
        }
        // Residual networks: block outputs summed with the shortcut are left alone, with the reason.
        if (name.StartsWith("resnet", StringComparison.Ordinal))
            Assert.Contains(results[0].Report.Sites, s => s.Skipped is { } why && why.Contains("residual", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("vgg_cifar", 0.5)]
    [InlineData("resnet_cifar_bn", 0.5)]
    [InlineData("vgg_cifar", 0.3)]
    public void BisectionMeetsTheBudgetClosely(string name, double keep)
    {
        var model = Fixture(name);
        var set = Images(batches: 4, seed: 1);
        var r = Assert.Single(new InterpolativePruning().Compress(new CompressionJob(model, set), [CompressionBudget.KeepMacs(keep)]));
        double fraction = r.Report.Compressible!.MacFraction!.Value;
        Assert.InRange(fraction, keep - 0.03, keep);
        // The report's per-site widths are the written model's.
        var structure = ModelStructure.Analyze(r.Model, ShapeProbe.Run(r.Model, set[0]).Shapes, 16);
        foreach (var site in r.Report.Sites.Where(s => s.Skipped is null))
            Assert.Equal(site.NewSize, structure.ConvSites.FirstOrDefault(c => c.Name == site.Site)?.OutChannels
                ?? structure.LinearSites.Single(l => l.Name == site.Site).OutFeatures);
    }

    [Theory]
    [InlineData("gpt2_tiny")]
    [InlineData("llama_tiny")]
    public void TransformerTargetsPruneOnlyWhatTheyName(string name)
    {
        var model = Fixture(name);
        var set = Tokens(batches: 4, seed: 2);
        foreach (var (targets, kinds) in new[] { (PruningTargets.FullyConnected, "neurons"), (PruningTargets.AttentionHeads, "heads") })
        {
            var r = Assert.Single(new InterpolativePruning(new PruningOptions { Targets = targets }).Compress(new CompressionJob(model, set), [CompressionBudget.KeepMacs(0.95)]));
            var pruned = r.Report.Sites.Where(s => s.NewSize < s.OldSize).ToList();
            Assert.NotEmpty(pruned);
            Assert.All(pruned, s => Assert.Equal(kinds, s.Kind));
            Assert.All(r.Report.Sites.Where(s => s.Kind != kinds && s.Kind is "heads" or "neurons"), s => Assert.Equal(s.OldSize, s.NewSize));
            Assert.Equal(OutputShape(model, set[0]), OutputShape(r.Model, set[0]));
            Assert.True(r.Report.Compressible!.MacFraction <= 0.95);
            if (targets == PruningTargets.AttentionHeads)
            {
                var blocks = ModelStructure.Analyze(r.Model, ShapeProbe.Run(r.Model, set[0]).Shapes, 4).Blocks;
                foreach (var s in pruned) Assert.Equal(s.NewSize, blocks[int.Parse(s.Site.Split(' ')[1])].Attention!.Heads);
                Assert.All(pruned, s => Assert.NotNull(Assert.IsType<PrunedSiteDetails>(s.Details).PredictedOutputError));
            }
        }
    }

    [Theory]
    [InlineData("gpt2_tiny", ColumnScaling.Auto)]
    [InlineData("llama_tiny", ColumnScaling.Auto)]
    [InlineData("llama_tiny", ColumnScaling.Off)]
    public void FirstBlockHeadErrorMeasuredInOrtIsTheLeastSquaresPrediction(string name, ColumnScaling scaling)
    {
        // Tolerance 1: every block keeps one key/value group. The first block sees the original input, so ORT's error at
        // its W_O is exactly what the correction predicts from the calibration statistics.
        var model = Fixture(name);
        var set = Tokens(batches: 3, seed: 5);
        var options = new PruningOptions { Targets = PruningTargets.AttentionHeads, Scaling = scaling };
        var r = Assert.Single(new InterpolativePruning(options).Compress(new CompressionJob(model, set), [CompressionBudget.Tolerance(1)]));
        var first = r.Report.Sites.Single(s => s.Site == "block 0 attention");
        var details = Assert.IsType<PrunedSiteDetails>(first.Details);
        Assert.Single(details.Kept);
        Assert.Equal(scaling != ColumnScaling.Off, details.Scaled);
        Assert.True(details.PredictedOutputError > 1e-3);
        Assert.Equal(details.PredictedOutputError!.Value, first.MeasuredError!.Value, 1e-4);
    }

    [Fact]
    public void AModelWithNothingPrunableSaysWhy()
    {
        var b = new GraphBuilder();
        b.Output(b.Linear("fc", b.Input("x", 4, 6), 6, 3, [4]));
        var model = PruningModels.DynamicBatch(b.Build());
        var set = new BatchSet([new InputBatch("x", PruningModels.Input(1, 4, 6))]);
        var ex = Assert.Throws<ArgumentException>(() => new InterpolativePruning().Compress(new CompressionJob(model, set), [CompressionBudget.KeepMacs(0.5)]));
        Assert.Contains("nothing prunable", ex.Message);
        Assert.Contains("graph output", ex.Message);
    }
}
