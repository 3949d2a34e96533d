using Whittle.Compression;
using Whittle.Data;
using Whittle.Import;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Onnx.Proto;
using Whittle.Tests.Fixtures;
using Whittle.Tests.Import;

namespace Whittle.Tests.Methods;

/// <summary>Rank allocation of the SVD family on measured sensitivities (<see cref="RankAllocation.Sensitivity"/>, <see cref="LossCurve"/>).</summary>
public class SensitivityAllocationTests
{
    [Fact]
    public void TheLossCurvePassesThroughTheOriginAndTheMeasurementsAndOnlyRises()
    {
        // Measured: 0.1 at e² = 0.2, 0.4 at 0.5, and 0.3 at 0.8 (noise below 0.4: raised to keep the curve rising).
        var curve = new LossCurve([(0.5, 0.4), (0.2, 0.1), (0.8, 0.3)]);
        Assert.Equal(0, curve.At(0));
        Assert.Equal(0.05, curve.At(0.1), 12);   // from the origin to the first point
        Assert.Equal(0.1, curve.At(0.2), 12);
        Assert.Equal(0.25, curve.At(0.35), 12);
        Assert.Equal(0.4, curve.At(0.5), 12);
        // The flat stretch rises by the floor slope, 10⁻³ of the mean slope (0.4 / 0.8).
        double floor = 1e-3 * 0.4 / 0.8;
        Assert.Equal(0.4 + floor * 0.3, curve.At(0.8), 12);
        Assert.Equal(0.4 + floor * 0.5, curve.At(1.0), 12);  // beyond the last point along the last segment
        for (double e = 0.01; e <= 1; e += 0.01) Assert.True(curve.At(e) > curve.At(e - 0.01));
        // Nothing measurable: still rising, by a negligible amount, so directions keep their order by σ².
        var flat = new LossCurve([(0.3, 0), (0.6, 0)]);
        Assert.True(flat.At(0.6) > flat.At(0.3) && flat.At(0.3) > 0 && flat.At(1) < 1e-11);
        // A measurement that is not finite is left out.
        var gap = new LossCurve([(0.2, 0.1), (0.5, double.NaN), (0.8, double.PositiveInfinity)]);
        Assert.Equal(0.25, gap.At(0.5), 12);
    }

    [Fact]
    public void MeasuredGainsAreTheCurvesStepsAndAddUpToItsValueAtFullTruncation()
    {
        double[] sigma = [4, 2, 1, 0.5];
        double energy = sigma.Sum(s => s * s);
        var proxy = new SpectrumSite(6, 4, sigma);
        var curve = new LossCurve([(1 / energy, 0.02), (5 / energy, 0.3), (21 / energy, 2)]);
        var measured = proxy with { Loss = curve };
        // Without a curve: σ_j² / ‖M‖_F per parameter (m + n = 10).
        Assert.Equal(16 / Math.Sqrt(energy) / 10, proxy.GainPerParameter(0), 12);
        // With one: D(e²_j) − D(e²_{j+1}) per parameter, e²_j the energy left after j directions.
        double left = energy;
        double total = 0;
        for (int j = 0; j < sigma.Length; j++)
        {
            double after = left - sigma[j] * sigma[j];
            Assert.Equal((curve.At(left / energy) - curve.At(after / energy)) / 10, measured.GainPerParameter(j), 12);
            Assert.True(measured.GainPerParameter(j) > 0);
            total += measured.GainPerParameter(j) * 10;
            left = after;
        }
        Assert.Equal(curve.At(1), total, 12);
        Assert.Equal(0, measured.GainPerParameter(sigma.Length));
        Assert.Equal((1 + 0.25) / energy, proxy.RelativeSquaredError(2), 12);
    }

    private static OnnxModel Stories() => Llama2cImporter.Import(SharedModels.Stories260K("stories260K.bin"), SharedModels.Stories260K("tok512.bin"));

    /// <summary>Windows of 64 tokens from the stories stories260K wrote itself (scripts/stories_samples.cs), one story per document.</summary>
    private static BatchSet OwnStories(OnnxModel model, string file, int windows) =>
        ModelData.Load(model, new DataSource(Text: RepoFixtures.Path("text", file)) { WindowLength = 64, DocumentSeparator = TextDocuments.BlankLine })
            .Batches(8, new DataSelection(Limit: windows));

    [Fact]
    public void OnStories260KMeasuredSensitivitiesLoseLessThanTheProxyAndTheUniformRatio()
    {
        // The proxy ‖E‖²/‖M‖ misjudges this small model's layers: at 0.6 of the parameters the global rule lost more than one
        // ratio for all (scripts/svd_allocation.sh, 2026-12-08, 64 windows of 128 tokens: held-out KL 3.215 global, 3.036
        // uniform, 2.698 measured; perplexity 96.4, 80.1, 57.0 against the original's 3.86).
        var model = Stories();
        var calibration = OwnStories(model, "stories-calib.txt", 32);
        var heldOut = OwnStories(model, "stories-heldout.txt", 32);
        var budget = CompressionBudget.KeepParameters(0.6);
        CompressionResult Run(RankAllocation allocation) =>
            Assert.Single(new WhitenedSvd(new LowRankBaselineOptions { Allocation = allocation }).Compress(new CompressionJob(model, calibration), [budget]));
        var measured = Run(RankAllocation.Sensitivity);
        var global = Run(RankAllocation.Global);
        var uniform = Run(RankAllocation.Uniform);

        var details = Assert.IsType<LowRankBaselineDetails>(measured.Report.Details);
        Assert.StartsWith("sensitivity:", details.Rule);
        Assert.StartsWith("global:", Assert.IsType<LowRankBaselineDetails>(global.Report.Details).Rule);
        foreach (var r in new[] { measured, global, uniform })
            Assert.True(r.Report.Compressible!.ParametersAfter <= 0.6 * r.Report.Compressible!.ParametersBefore);
        static int[] Ranks(CompressionResult r) => [.. r.Report.Sites.Select(s => s.NewSize)];
        Assert.NotEqual(Ranks(global), Ranks(measured));

        double kMeasured = StreamSlicingTests.Compare(model, measured.Model, heldOut).Kl;
        double kGlobal = StreamSlicingTests.Compare(model, global.Model, heldOut).Kl;
        double kUniform = StreamSlicingTests.Compare(model, uniform.Model, heldOut).Kl;
        Assert.True(kMeasured < 0.95 * Math.Min(kGlobal, kUniform), $"held-out KL: measured {kMeasured:G4}, global {kGlobal:G4}, uniform {kUniform:G4}");
    }

    [Fact]
    public void AutoMeasuresASmallLanguageModelAndKeepsTheProxyForAnEncoder()
    {
        var llama = OnnxModel.Load(RepoFixtures.Path("text", "llama.onnx"));
        var calibration = StreamSlicingTests.Text(llama, "calib-excerpt.txt", 4);
        var budget = CompressionBudget.KeepParameters(0.7);
        CompressionResult Run(OnnxModel model, RankAllocation allocation) =>
            Assert.Single(new WhitenedSvd(new LowRankBaselineOptions { Allocation = allocation }).Compress(new CompressionJob(model, calibration), [budget]));
        static string Rule(CompressionResult r) => Assert.IsType<LowRankBaselineDetails>(r.Report.Details).Rule;
        static int[] Ranks(CompressionResult r) => [.. r.Report.Sites.Select(s => s.NewSize)];

        // A language model of a few hundred thousand parameters: measuring costs well under the default limit.
        var auto = Run(llama, RankAllocation.Auto);
        Assert.StartsWith("sensitivity:", Rule(auto));
        var global = Run(llama, RankAllocation.Global);
        Assert.NotEqual(Ranks(global), Ranks(auto));
        // The same model past the cost limit (here 10⁹ multiply-adds, below what its 42 × 4 passes over 4 windows take): the proxy.
        var pastLimit = Assert.Single(new WhitenedSvd(new LowRankBaselineOptions { AutoSensitivityLimit = 1e9 }).Compress(new CompressionJob(llama, calibration), [budget]));
        Assert.StartsWith("global:", Rule(pastLimit));
        Assert.Equal(Ranks(global), Ranks(pastLimit));

        // Declared a generic model (no logits to take a KL of): auto keeps the proxy, an explicit request says why it cannot.
        var encoder = llama.Clone();
        foreach (var p in encoder.Proto.MetadataProps.Where(p => p.Key == Whittle.Evaluation.DetectedTask.MetadataKey).ToList()) encoder.Proto.MetadataProps.Remove(p);
        encoder.Proto.MetadataProps.Add(new StringStringEntryProto { Key = Whittle.Evaluation.DetectedTask.MetadataKey, Value = "generic" });
        var proxy = Run(encoder, RankAllocation.Auto);
        Assert.StartsWith("global:", Rule(proxy));
        Assert.Equal(Ranks(global), Ranks(proxy));
        var e = Assert.Throws<ArgumentException>(() => Run(encoder, RankAllocation.Sensitivity));
        Assert.Contains("--allocation global", e.Message);
        Assert.Contains("Generic", e.Message);
    }
}
