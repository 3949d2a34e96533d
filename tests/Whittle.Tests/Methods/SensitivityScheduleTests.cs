using Whittle.Compression;
using Whittle.Data;
using Whittle.Methods;
using Whittle.Methods.Pruning;
using Whittle.Onnx;
using Whittle.Runtime;
using Whittle.Tests.Evaluation;
using Whittle.Tests.Fixtures;

namespace Whittle.Tests.Methods;

/// <summary>The sensitivity schedule of structured pruning (<see cref="PruningSchedule.Sensitivity"/>, <see cref="SensitivityCurve"/>).</summary>
public class SensitivityScheduleTests
{
    /// <summary>A path whose proxy falls linearly from 1 at k = 0 to 0 at the full width.</summary>
    private sealed class LinearPath(int width) : IUnitPath
    {
        public int Width => width;
        public int MaxKeep => width;
        public double Ratio(int k) => k >= width ? 0 : 1 - (double)k / width;
        public UnitChoice Choose(int k) => throw new NotSupportedException();
    }

    [Fact]
    public void TheCurveInterpolatesTheRootOfTheMeasuredDivergenceMonotonically()
    {
        // √KL: 0.2 at ε = 0.1, 0.1 at 0.2 (noise below the running maximum, so 0.2), 0.4 at 0.4.
        var curve = new SensitivityCurve(new LinearPath(10), [(0.4, 0.16), (0.1, 0.04), (0.2, 0.01)]);
        Assert.Equal([(0.1, 0.2), (0.2, 0.2), (0.4, 0.4)], curve.Points.Select(p => (Math.Round(p.Epsilon, 12), Math.Round(p.Effect, 12))));
        Assert.Equal(0, curve.Effect(0));
        Assert.Equal(0.1, curve.Effect(0.05), 12);   // from the origin to the first point
        Assert.Equal(0.2, curve.Effect(0.15), 12);   // flat where the measurement did not grow
        Assert.Equal(0.3, curve.Effect(0.3), 12);
        Assert.Equal(0.8, curve.Effect(0.8), 12);    // past the last point along its chord
        // Ratio(k) maps the path's ε_k: k = 7 of 10 → ε = 0.3.
        Assert.Equal(0.3, curve.Ratio(7), 12);
        for (int k = 1; k <= 10; k++) Assert.True(curve.Ratio(k) <= curve.Ratio(k - 1));
        // Nothing measured: the proxy itself; nothing lost where measured: still ordered by ε beyond.
        Assert.Equal(0.3, new SensitivityCurve(new LinearPath(10), []).Ratio(7), 12);
        var free = new SensitivityCurve(new LinearPath(10), [(0.2, 0)]);
        Assert.True(free.Effect(0.5) > free.Effect(0.3) && free.Effect(0.5) < 1e-9);
    }

    [Fact]
    public void WeighingEachSiteByItsMeasuredEffect_LosesLessOfTheOriginalAtTheSameMacs()
    {
        var model = OnnxModel.Load(RepoFixtures.Path("fashion-mnist", "vgg.onnx"));
        BatchSet Images(string file, int count) =>
            ModelData.Load(model, new DataSource(RepoFixtures.Path("fashion-mnist", file))).Batches(batchSize: 64, new DataSelection(Limit: count));
        var calibration = Images("calib-images-idx3-ubyte.gz", 256);
        var budget = CompressionBudget.KeepMacs(0.5) with { Scope = BudgetScope.Model };
        CompressionResult Prune(PruningSchedule schedule) =>
            Assert.Single(new InterpolativePruning(PruningOptions.Default with { Schedule = schedule }).Compress(new CompressionJob(model, calibration), [budget]));
        var plain = Prune(PruningSchedule.Bisection);
        var weighed = Prune(PruningSchedule.Sensitivity);

        Assert.Equal("sensitivity", Assert.IsType<PruningRunDetails>(weighed.Report.Details).Schedule);
        Assert.True(weighed.Report.After.MacsPerExample <= 0.5 * weighed.Report.Before.MacsPerExample);
        static int[] Widths(CompressionResult r) => [.. r.Report.Sites.Select(s => s.NewSize)];
        Assert.NotEqual(Widths(plain), Widths(weighed));

        // Held-out KL(original ‖ pruned), from ORT's logits (measured 2026-12-07 with 512 calibration / 2,000 held-out
        // images: 0.042 bisection, 0.019 sensitivity; agreement 96.60 → 98.25 %).
        var heldOut = Images("heldout-images-idx3-ubyte.gz", 1000);
        double Kl(OnnxModel pruned)
        {
            using var a = TappedSession.Create(model, []);
            using var b = TappedSession.Create(pruned, []);
            double sum = 0;
            int rows = 0;
            foreach (var batch in heldOut)
            {
                var p = a.Run(batch)["logits"].AsFloats();
                var q = b.Run(batch)["logits"].AsFloats();
                for (int r = 0; r < p.Length / 10; r++, rows++) sum += EvalTestModels.Kl(p.AsSpan(r * 10, 10), q.AsSpan(r * 10, 10));
            }
            return sum / rows;
        }
        double klPlain = Kl(plain.Model), klWeighed = Kl(weighed.Model);
        Assert.True(klWeighed < 0.8 * klPlain, $"held-out KL: sensitivity {klWeighed:G4}, bisection {klPlain:G4}");
    }
}
