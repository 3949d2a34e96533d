using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Evaluation;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Methods;

/// <summary>Pruning to a measured-latency budget (<see cref="BudgetKind.KeepLatency"/>) on the trained VGG fixture.</summary>
public class LatencyBudgetTests
{
    private static readonly OnnxModel Model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", "vgg.onnx"));

    private static BatchSet Calibration() =>
        ModelData.Load(Model, new DataSource(RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz"))).Batches(batchSize: 64, new DataSelection(Limit: 128));

    /// <summary>A deterministic stand-in for the clock: a candidate's "latency" is its MACs per example over the original's.</summary>
    private sealed class MacsProbe(OnnxModel original, BatchSet data, Func<double, double>? map = null) : ILatencyProbe
    {
        private readonly InputBatch _example = data.FirstExample();
        private readonly double _original = ModelCost.Measure(original, data.FirstExample()).MacsPerExample;

        public int Calls { get; private set; }

        public List<double> Seen { get; } = [];

        public double Ratio(OnnxModel candidate, CancellationToken cancellationToken = default)
        {
            Calls++;
            double r = ModelCost.Measure(candidate, _example).MacsPerExample / _original;
            Seen.Add(r);
            return map?.Invoke(r) ?? r;
        }

        public void Dispose() { }
    }

    [Fact]
    public void TheSearchLandsOnTheLargestModelTheProbeAccepts()
    {
        var calibration = Calibration();
        MacsProbe? probe = null;
        var options = PruningOptions.Default with { LatencyProbe = (m, d, _) => probe = new MacsProbe(m, d) };
        var result = Assert.Single(new InterpolativePruning(options).Compress(new CompressionJob(Model, calibration), [CompressionBudget.KeepLatency(0.6)]));

        var details = Assert.IsType<PruningRunDetails>(result.Report.Details);
        Assert.True(details.BudgetMet);
        Assert.NotNull(probe);
        // The pruned model's MACs (with its ID correction folded in) are those of the candidate the probe timed last: within
        // the budget, and since ε moves over every breakpoint, not far below it.
        double kept = result.Report.After.MacsPerExample / result.Report.Before.MacsPerExample;
        Assert.Equal(details.MeasuredLatency!.Value, kept, 6);
        Assert.InRange(kept, 0.5, 0.6);
        // Bisection: about log2 of the breakpoints, not one call per breakpoint.
        Assert.InRange(probe!.Calls, 3, 16);
        Assert.Equal("latency-0.6", result.Report.Budget.Label);
    }

    [Fact]
    public void ABudgetNoWidthMeetsIsReportedAsMissed()
    {
        var options = PruningOptions.Default with { LatencyProbe = (m, d, _) => new MacsProbe(m, d, _ => 1.0) };
        var result = Assert.Single(new MagnitudePruning(options).Compress(new CompressionJob(Model, Calibration()), [CompressionBudget.KeepLatency(0.5)]));
        Assert.False(Assert.IsType<PruningRunDetails>(result.Report.Details).BudgetMet);
        Assert.Contains(result.Report.Warnings, w => w.Contains("cannot be met") && w.Contains("latency"));
    }

    [Fact]
    public void TheSvdFamilySpendsALatencyBudgetOnItsGlobalAllocation()
    {
        // The trained MLP: its hidden layer (1024 × 784, the one factorized) holds 0.99 of the MACs, so MACs follow its rank.
        // 1,000 images, so the whitened spectrum does not end at the sample count below the ranks the budget needs.
        var mlp = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", "mlp.onnx"));
        var data = ModelData.Load(mlp, new DataSource(RepoFixtures.Path("fashion-mnist", "calib-images-idx3-ubyte.gz"))).Batches(batchSize: 250, new DataSelection(Limit: 1000));
        MacsProbe? probe = null;
        var options = new LowRankBaselineOptions { LatencyProbe = (m, d, _) => probe = new MacsProbe(m, d) };
        var result = Assert.Single(new WhitenedSvd(options).Compress(new CompressionJob(mlp, data), [CompressionBudget.KeepLatency(0.6)]));
        var details = Assert.IsType<LowRankBaselineDetails>(result.Report.Details);
        double kept = result.Report.After.MacsPerExample / result.Report.Before.MacsPerExample;
        // The factorized model has the shapes of the last candidate timed: the same MACs, within the budget and near it.
        Assert.Equal(details.MeasuredLatency!.Value, kept, 6);
        Assert.True(kept is >= 0.45 and <= 0.6, $"{kept}; probed {string.Join(", ", probe!.Seen.Select(x => x.ToString("F3")))}");
        Assert.NotNull(details.Threshold);
        Assert.InRange(probe!.Calls, 3, 40);
    }

    [Fact]
    public void OtherMethodsRefuseALatencyBudgetNamingTheFlagsTheyTake()
    {
        var ex = Assert.Throws<ArgumentException>(() => new StreamSlicing().Compress(new CompressionJob(Model, Calibration()), [CompressionBudget.KeepLatency(0.5)]));
        Assert.Contains("--keep-params or --tolerance", ex.Message);
        Assert.Contains("measured latency", ex.Message);
    }
}
