using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Evaluation;

namespace Whittle.Tests.Methods;

/// <summary>One trained model for the whole class (training takes a few seconds).</summary>
public sealed class TrainedMlpFixture
{
    internal TrainedMlp Mlp { get; } = TrainedMlp.Train();
}

public class JointLowRankTests(TrainedMlpFixture fixture) : IClassFixture<TrainedMlpFixture>
{
    private TrainedMlp Mlp => fixture.Mlp;

    /// <summary>Runs on the paper's loss, cross-entropy against the calibration labels (the default is KL to the original).</summary>
    private CompressionResult Compress(JointLowRankOptions options) =>
        Assert.Single(new JointLowRank(options with { Loss = LowRankLoss.Task }).Compress(new CompressionJob(Mlp.Model, Mlp.Calibration), [CompressionBudget.MethodDefault]));

    /// <summary>Mean cross-entropy of <paramref name="model"/> on <paramref name="batches"/>, computed here from ORT's logits.</summary>
    private static double CrossEntropy(OnnxModel model, BatchSet batches)
    {
        using var session = TappedSession.Create(model, []);
        double sum = 0;
        int count = 0;
        for (int b = 0; b < batches.Count; b++)
        {
            var logits = session.Run(batches[b])["logits"].AsFloats();
            var labels = batches.Labels![b].AsInt64();
            for (int i = 0; i < labels.Length; i++)
            {
                sum -= EvalTestModels.LogSoftmax(logits.AsSpan(i * TrainedMlp.Classes, TrainedMlp.Classes))[labels[i]];
                count++;
            }
        }
        return sum / count;
    }

    private static long Parameters(OnnxModel model) => model.Proto.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));

    private static JointLowRankSiteDetails Details(SiteReport s) => Assert.IsType<JointLowRankSiteDetails>(s.Details);

    [Fact]
    public void TheFixtureIsTrainedAndItsLayersAreFactorizable()
    {
        Assert.True(Mlp.TrainLoss < 0.5, $"training loss {Mlp.TrainLoss}");
        var sites = ModelStructure.Analyze(Mlp.Model).LinearSites;
        Assert.Equal(["fc1", "fc2", "fc3"], sites.Select(s => s.Name));
    }

    [Theory]
    [InlineData(GradientSource.Exact)]
    [InlineData(GradientSource.CentralDifference)]
    public void LosslessModeNeverRaisesTheCalibrationLossAndFollowsItsRule(GradientSource gradient)
    {
        var result = Compress(new JointLowRankOptions { Gradient = gradient });
        double original = CrossEntropy(Mlp.Model, Mlp.Calibration);
        double final = CrossEntropy(result.Model, Mlp.Calibration);
        Assert.True(final <= original + 1e-9, $"final {final} > original {original}");

        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        Assert.Equal(original, details.OriginalLoss, 1e-6);
        Assert.Equal(final, details.FinalLoss, 1e-6);
        Assert.Equal("cross-entropy", details.Loss);
        Assert.Equal(3, result.Report.Sites.Count);
        foreach (var s in result.Report.Sites)
        {
            var d = Details(s);
            Assert.All(d.Candidates, c => Assert.True(c.Rank >= 1 && c.Rank <= d.MaxSavingRank));
            Assert.Equal(s.Site == "fc3" && gradient == GradientSource.Exact ? "exact" : "central-difference", d.Gradient);
            var eligible = d.Candidates.Where(c => c.PredictedChange <= 0 && c.MeasuredLoss is not null).ToList();
            if (s.Skipped is null)
            {
                // The kept rank: predicted not to hurt, the lowest measured loss of those, within the original's loss.
                var chosen = Assert.Single(d.Candidates, c => c.Chosen);
                Assert.Equal(chosen.Rank, s.NewSize);
                Assert.True(chosen.PredictedChange <= 0);
                Assert.Equal(eligible.Min(c => c.MeasuredLoss), chosen.MeasuredLoss);
                Assert.True(chosen.MeasuredLoss <= details.Threshold);
                Assert.Equal(chosen.Parameters, s.ParametersAfter);
            }
            else
            {
                Assert.DoesNotContain(d.Candidates, c => c.Chosen);
                Assert.All(eligible, c => Assert.True(c.MeasuredLoss > details.Threshold));
            }
        }
        // Smaller or the same, never larger.
        Assert.True(Parameters(result.Model) <= Parameters(Mlp.Model));
        Assert.Equal(Parameters(result.Model), result.Report.After.Parameters);
        Assert.True(result.Report.Sites.Any(s => s.Skipped is null), "lossless mode factorized no layer of the trained MLP");
    }

    [Fact]
    public void CompactModeSharesOneThresholdOnEachLayersLossIncreaseAloneCheckedIndependently()
    {
        const double tolerance = 0.01;
        var result = Compress(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = tolerance });
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        double original = CrossEntropy(Mlp.Model, Mlp.Calibration);
        double threshold = original + tolerance;
        Assert.True(CrossEntropy(result.Model, Mlp.Calibration) <= threshold + 1e-6);
        double t = details.SharedThreshold!.Value;
        Assert.InRange(t, 0, tolerance + 1e-9);

        // Every layer alone on the original (own SVD, own graph edit, own loss): the kept rank and every larger candidate
        // raise the loss by at most t; the next-smaller candidate by more (or was never measured: a larger one failed first).
        var sites = ModelStructure.Analyze(Mlp.Model).LinearSites;
        int factorized = 0;
        foreach (var report in result.Report.Sites)
        {
            var site = sites.Single(s => s.Name == report.Site);
            var d = Details(report);
            var ranks = JointLowRank.CandidateRanks(d.MaxSavingRank, JointLowRankOptions.DefaultRankGrid);
            Assert.Equal(ranks, d.Candidates.Select(c => c.Rank));
            Assert.Equal(original, d.LossBefore, 1e-6);
            if (report.Skipped is null)
            {
                int at = ranks.ToList().IndexOf(report.NewSize);
                for (int k = at; k < ranks.Count; k++)
                    Assert.True(CrossEntropy(WithRank(Mlp.Model, site, ranks[k]), Mlp.Calibration) - original <= t + 1e-6, $"{site.Name} rank {ranks[k]}");
                if (at > 0 && d.Candidates[at - 1].MeasuredLoss is not null)
                    Assert.True(CrossEntropy(WithRank(Mlp.Model, site, ranks[at - 1]), Mlp.Calibration) - original > t - 1e-6,
                        $"{site.Name}: rank {ranks[at - 1]} is within t, yet rank {report.NewSize} was kept");
                factorized++;
            }
            else if (ranks.Count > 0)
                Assert.True(CrossEntropy(WithRank(Mlp.Model, site, ranks[^1]), Mlp.Calibration) - original > t - 1e-6);
        }
        Assert.True(factorized > 0, "compact mode factorized no layer of the trained MLP");
        Assert.Equal(factorized, details.LayersFactorized);
        Assert.True(result.Report.After.Parameters < result.Report.Before.Parameters);
    }

    [Fact]
    public void InCompactModeALargerToleranceNeverCompressesLess()
    {
        double[] tolerances = [0.002, 0.01, 0.05, 0.2];
        var sizes = tolerances.Select(t => Compress(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = t }).Report.After.Parameters).ToList();
        for (int i = 1; i < sizes.Count; i++)
            Assert.True(sizes[i] <= sizes[i - 1], $"tolerance {tolerances[i]}: {sizes[i]} parameters, more than {sizes[i - 1]} at {tolerances[i - 1]}");
        Assert.True(sizes[^1] < sizes[0]);
    }

    [Fact]
    public void TheDefaultLossIsKlToTheOriginalWithinOnePercentOfItsEntropy()
    {
        var result = Assert.Single(new JointLowRank().Compress(new CompressionJob(Mlp.Model, Mlp.Calibration), [CompressionBudget.MethodDefault]));
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        Assert.Equal("KL(reference ‖ model)", details.Loss);
        Assert.Equal(0, details.OriginalLoss, 1e-12);
        Assert.Equal(0.01, details.RelativeLossTolerance);
        Assert.True(details.Threshold > 0);
        // The labels are there, yet not used (no warning about their absence either).
        Assert.DoesNotContain(result.Report.Warnings, w => w.Contains("no labels"));

        // KL(original ‖ compressed) of the calibration rows, computed here from ORT's logits.
        using var a = TappedSession.Create(Mlp.Model, []);
        using var b = TappedSession.Create(result.Model, []);
        double kl = 0;
        int rows = 0;
        foreach (var batch in Mlp.Calibration)
        {
            var p = a.Run(batch)["logits"].AsFloats();
            var q = b.Run(batch)["logits"].AsFloats();
            for (int r = 0; r < p.Length / TrainedMlp.Classes; r++, rows++)
                kl += EvalTestModels.Kl(p.AsSpan(r * TrainedMlp.Classes, TrainedMlp.Classes), q.AsSpan(r * TrainedMlp.Classes, TrainedMlp.Classes));
        }
        Assert.True(kl / rows <= details.Threshold + 1e-6, $"KL {kl / rows} > {details.Threshold}");
        Assert.Equal(kl / rows, details.FinalLoss, 1e-5);
    }

    [Fact]
    public void RelativeToleranceScalesWithTheOriginalLoss_AndAddsToTheAbsoluteOne()
    {
        var result = Compress(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = 0.001, RelativeLossTolerance = 0.02 });
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        double original = CrossEntropy(Mlp.Model, Mlp.Calibration);
        Assert.Equal(original, details.OriginalLoss, 1e-6);
        Assert.Equal(original + 0.001 + 0.02 * original, details.Threshold, 1e-6);
        Assert.Equal(0.02, details.RelativeLossTolerance);
        Assert.True(CrossEntropy(result.Model, Mlp.Calibration) <= details.Threshold + 1e-6);
    }

    [Fact]
    public void LargestFirstVisitsTheBiggestLayerFirstAndKeepsTheGuarantee()
    {
        var result = Compress(new JointLowRankOptions { LossTolerance = 0.01, Order = LayerOrder.LargestFirst });
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        Assert.Equal("largest-first", details.Order);
        // fc2 (48 → 32, 1,568 parameters) is the largest: it is searched on the original model.
        var largest = result.Report.Sites.MaxBy(s => s.ParametersBefore)!;
        Assert.Equal("fc2", largest.Site);
        Assert.Equal(details.OriginalLoss, Details(largest).LossBefore, 1e-12);
        Assert.NotEqual(details.OriginalLoss, Details(result.Report.Sites.Single(s => s.Site == "fc1")).LossBefore);
        Assert.Equal(["fc1", "fc2", "fc3"], result.Report.Sites.Select(s => s.Site));   // reported in graph order
        Assert.True(CrossEntropy(result.Model, Mlp.Calibration) <= details.Threshold + 1e-6);
    }

    [Fact]
    public void TheExactLogitLayerGradientAgreesWithCentralDifferencesOfTheMeasuredLoss()
    {
        // fc1 and fc2 take central differences in both runs (with the same step), so both reach the last layer with the same model.
        var exact = Compress(new JointLowRankOptions { Gradient = GradientSource.Exact, DifferenceStep = 0.05, RankGrid = 8 });
        var central = Compress(new JointLowRankOptions { Gradient = GradientSource.CentralDifference, DifferenceStep = 0.05, RankGrid = 8 });
        var a = Details(exact.Report.Sites.Single(s => s.Site == "fc3"));
        var b = Details(central.Report.Sites.Single(s => s.Site == "fc3"));
        Assert.Equal(("exact", "central-difference"), (a.Gradient, b.Gradient));
        Assert.Equal(a.LossBefore, b.LossBefore, 1e-12);
        int compared = 0;
        foreach (var (x, y) in a.Candidates.Zip(b.Candidates))
        {
            if (x.PredictedChange is not { } p || y.PredictedChange is not { } q) continue;
            Assert.True(Math.Abs(p - q) <= 0.05 * Math.Abs(p) + 1e-4, $"rank {x.Rank}: exact {p} vs central difference {q}");
            compared++;
        }
        Assert.True(compared > 0);
    }

    [Fact]
    public void BudgetsAreRefusedAndOptionsChecked()
    {
        var e = Assert.Throws<ArgumentException>(() => new JointLowRank().Compress(new CompressionJob(Mlp.Model, Mlp.Calibration), [CompressionBudget.KeepParameters(0.5)]));
        Assert.Contains("takes no budget", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new JointLowRank(new JointLowRankOptions { RankGrid = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new JointLowRank(new JointLowRankOptions { LossTolerance = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new JointLowRank(new JointLowRankOptions { DifferenceStep = 0 }));
    }

    [Fact]
    public void CandidateRanksAreEquallySpacedSavingRanks()
    {
        Assert.Equal([3, 6, 9, 12], JointLowRank.CandidateRanks(12, 4));
        Assert.Equal([1, 2, 3], JointLowRank.CandidateRanks(3, 16));
        Assert.Equal([2, 4, 5], JointLowRank.CandidateRanks(5, 3));
        Assert.Empty(JointLowRank.CandidateRanks(0, 4));
    }

    [Fact]
    public void TheTaskLossWithoutLabelsIsKlToTheOriginalAndTheRunWarns()
    {
        var unlabeled = new BatchSet([.. Mlp.Calibration], null, "unlabeled");
        // Asked for the task's loss, a classifier without labels falls back to KL and says so.
        var result = Assert.Single(new JointLowRank(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = 1e-3, Loss = LowRankLoss.Task })
            .Compress(new CompressionJob(Mlp.Model, unlabeled), [CompressionBudget.MethodDefault]));
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        Assert.Equal("KL(reference ‖ model)", details.Loss);
        Assert.Equal(0, details.OriginalLoss, 1e-12);
        Assert.True(details.FinalLoss <= 1e-3 + 1e-9);
        Assert.Contains(result.Report.Warnings, w => w.Contains("no labels"));
    }

    [Fact]
    public void ConvolutionsAreSearchedTooAndKlToTheOriginalStaysWithinTheTolerance()
    {
        // A generic model (no labels, 4-D output): x → Conv 3→8 → Relu → Conv 8→6; KL over the output's last axis.
        var (model, calibration) = NearlyLowRankConvs();
        const double tolerance = 0.02;
        var result = Assert.Single(new JointLowRank(new JointLowRankOptions { Mode = LowRankMode.Compact, LossTolerance = tolerance })
            .Compress(new CompressionJob(model, calibration), [CompressionBudget.MethodDefault]));

        using var a = TappedSession.Create(model, []);
        using var b = TappedSession.Create(result.Model, []);
        var p = a.Run(calibration[0])[a.OutputNames[0]].AsFloats();
        var q = b.Run(calibration[0])[b.OutputNames[0]].AsFloats();
        double kl = Enumerable.Range(0, p.Length / 10).Average(r => EvalTestModels.Kl(p.AsSpan(r * 10, 10), q.AsSpan(r * 10, 10)));
        Assert.True(kl <= tolerance + 1e-6, $"KL {kl}");
        Assert.Equal(kl, Assert.IsType<JointLowRankDetails>(result.Report.Details).FinalLoss, 1e-6);
        Assert.Equal(["conv1", "conv2"], result.Report.Sites.Select(s => s.Site));
        Assert.All(result.Report.Sites, s => Assert.Equal("conv", Details(s).Layer));
        Assert.Contains(result.Report.Sites, s => s.Skipped is null && s.NewSize <= 3);
        Assert.True(result.Model.Graph.Nodes.Count(n => n.OpType == "Conv") > 2);
        Assert.True(result.Report.After.Parameters < result.Report.Before.Parameters);
    }

    /// <summary>Two convolutions with nearly rank-2 kernels, writing a [4, 6, 10, 10] output, and one random calibration batch.</summary>
    private static (OnnxModel Model, BatchSet Calibration) NearlyLowRankConvs()
    {
        var g = new Whittle.Tests.Analysis.GraphBuilder();
        var x = g.Input("x", 4, 3, 10, 10);
        var h = g.Shape(g.Node("Relu", "relu", [g.Conv("conv1", x, 3, 8, 3, [4, 8, 10, 10], pad: 1)]), 4, 8, 10, 10);
        g.Output(g.Conv("conv2", h, 8, 6, 3, [4, 6, 10, 10], pad: 1));
        var model = g.Build();
        foreach (var (name, rows, cols, seed) in new[] { ("conv1.weight", 8, 27, 60), ("conv2.weight", 6, 72, 61) })
        {
            // Nearly rank-2 kernels plus a little noise, so small ranks can stay within the tolerance.
            var w = Blas.Multiply<float>(RandomMatrix.Gaussian<float>(rows, 2, seed: seed), RandomMatrix.Gaussian<float>(2, cols, seed: seed + 10));
            var noise = RandomMatrix.Gaussian<float>(rows, cols, seed: seed + 20);
            for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) w[i, j] += 0.05f * noise[i, j];
            model.Graph.ReplaceInitializer(OnnxTensors.FromMatrix(name, w, OnnxDataType.Float, [rows, cols / 9, 3, 3]));
        }
        var input = Whittle.Tests.Runtime.RuntimeModels.RandomFloats(62, 4, 3, 10, 10);
        var calibration = new BatchSet([new InputBatch("x", input, "random")], description: "random");
        return (model, calibration);
    }

    [Fact]
    public void RelativeToleranceOfAKlObjective_IsAShareOfTheOriginalsEntropy()
    {
        var (model, calibration) = NearlyLowRankConvs();
        var result = Assert.Single(new JointLowRank(new JointLowRankOptions { Mode = LowRankMode.Compact, RelativeLossTolerance = 0.01 })
            .Compress(new CompressionJob(model, calibration), [CompressionBudget.MethodDefault]));

        // KL starts at 0, so the scale is the mean entropy (nats) of the original's rows of 10, computed here.
        using var a = TappedSession.Create(model, []);
        var p = a.Run(calibration[0])[a.OutputNames[0]].AsFloats();
        double entropy = Enumerable.Range(0, p.Length / 10).Average(r => -EvalTestModels.LogSoftmax(p.AsSpan(r * 10, 10)).Sum(l => Math.Exp(l) * l));
        var details = Assert.IsType<JointLowRankDetails>(result.Report.Details);
        Assert.Equal(0, details.OriginalLoss, 1e-9);
        Assert.Equal(0.01 * entropy, details.Threshold, 1e-6);
        Assert.True(details.FinalLoss <= details.Threshold + 1e-9);
    }

    /// <summary>A copy of <paramref name="model"/> with <paramref name="site"/> replaced by its rank-c SVD factors (computed here).</summary>
    private static OnnxModel WithRank(OnnxModel model, LinearSite site, int rank)
    {
        var copy = OnnxModel.FromProto(model.Proto.Clone());
        var w = SiteWeights.Weight(copy, site);
        var wd = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]);
        var svd = Svd.Compute<double>(wd);
        var l = Matrix<float>.Create(w.Rows, rank, (i, j) => (float)(svd.U[i, j] * svd.S[j]));
        var r = Matrix<float>.Create(rank, w.Cols, (i, j) => (float)svd.Vt[i, j]);
        FactorChain.Replace(copy, site, [l, r]);
        FactorChain.Tidy(copy);
        return copy;
    }
}
