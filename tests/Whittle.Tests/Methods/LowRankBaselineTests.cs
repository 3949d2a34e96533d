using Whittle.Analysis;
using Whittle.Compression;
using Whittle.Data;
using Whittle.Decompositions;
using Whittle.LinearAlgebra;
using Whittle.LinearAlgebra.Factorizations;
using Whittle.Methods;
using Whittle.Onnx;
using Whittle.Rewriting;
using Whittle.Runtime;
using Whittle.Tests.Analysis;

namespace Whittle.Tests.Methods;

public class LowRankBaselineTests(TrainedMlpFixture fixture) : IClassFixture<TrainedMlpFixture>
{
    private const int In = 24, Out = 16, Rows = 32, Batches = 4;

    private TrainedMlp Mlp => fixture.Mlp;

    private static long Parameters(OnnxModel model) => model.Proto.Graph.Initializer.Sum(t => t.Dims.Aggregate(1L, (a, d) => a * d));

    private static IReadOnlyList<CompressionResult> Run(ICompressionMethod method, OnnxModel model, BatchSet calibration, params CompressionBudget[] budgets) =>
        method.Compress(new CompressionJob(model, calibration), budgets);

    public static TheoryData<string> Methods => new() { "svd", "asvd", "whitened-svd" };

    private static ICompressionMethod Method(string name, LowRankBaselineOptions? options = null) => name switch
    {
        "asvd" => new ActivationAwareSvd(options: options),
        "whitened-svd" => new WhitenedSvd(options),
        _ => new PlainSvd(options),
    };

    /// <summary>For models whose only layer writes the output.</summary>
    private static readonly LowRankBaselineOptions WithOutputLayer = new() { IncludeOutputLayer = true };

    [Theory]
    [MemberData(nameof(Methods))]
    public void KeepParametersGivesOneUniformRatioThatMeetsTheBudgetAndNoLargerRatioDoes(string name)
    {
        double[] keeps = [0.3, 0.5, 0.8];
        var results = Run(Method(name, new LowRankBaselineOptions { Allocation = RankAllocation.Uniform }), Mlp.Model, Mlp.Calibration, [.. keeps.Select(CompressionBudget.KeepParameters)]);
        var sites = ModelStructure.Analyze(Mlp.Model).LinearSites.Where(s => s.Name != "fc3").ToList();
        // The budget counts the layers it may factorize (not fc3, which writes the output): weights and biases.
        long total = Parameters(Mlp.Model), compressible = sites.Sum(s => s.Parameters);
        for (int b = 0; b < keeps.Length; b++)
        {
            var r = results[b];
            long kept = compressible - (total - Parameters(r.Model));
            Assert.True(kept <= keeps[b] * compressible, $"{name} keep {keeps[b]}: {kept} of {compressible} compressible parameters");
            Assert.Equal((compressible, kept), (r.Report.Compressible!.ParametersBefore, r.Report.Compressible.ParametersAfter));
            Assert.Equal(Parameters(r.Model), r.Report.After.Parameters);
            double rho = Assert.IsType<LowRankBaselineDetails>(r.Report.Details).Ratio!.Value;

            // Every site at the same ratio, a parameter-saving rank: c = clamp(⌊ρ·mn/(m+n)⌋, 1, r_max), computed here.
            int Rank(double ratio, LinearSite s) =>
                (int)Math.Clamp(Math.Floor(ratio * s.OutFeatures * s.InFeatures / (s.OutFeatures + s.InFeatures)), 1, (s.OutFeatures * s.InFeatures - 1) / (s.OutFeatures + s.InFeatures));
            foreach (var s in sites)
            {
                var report = r.Report.Sites.Single(x => x.Site == s.Name);
                Assert.Null(report.Skipped);
                Assert.Equal(Rank(rho, s), report.NewSize);
                Assert.True(report.NewSize * (s.OutFeatures + s.InFeatures) < s.OutFeatures * s.InFeatures);
                Assert.Equal((long)report.NewSize * (s.OutFeatures + s.InFeatures) + s.OutFeatures, report.ParametersAfter);
            }
            // The output layer is kept by default.
            Assert.Contains("output layer is kept", r.Report.Sites.Single(x => x.Site == "fc3").Skipped);
            // The ratio is the largest that meets the budget.
            long Kept(double ratio) => total - sites.Sum(s => (long)s.OutFeatures * s.InFeatures - (long)Rank(ratio, s) * (s.OutFeatures + s.InFeatures));
            Assert.True(rho >= 1 || Kept(rho + 2e-9) > keeps[b] * total, $"ratio {rho} is not the largest for keep {keeps[b]}");
        }
    }

    /// <summary>The singular values a method decomposes for a site of the MLP: of W (svd), W·D (asvd) or W·S (whitened), D and S from the calibration Gram computed here.</summary>
    private double[] Spectrum(string name, LinearSite s)
    {
        var w = SiteWeights.Weight(Mlp.Model, s);
        var wd = Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]);
        if (name == "svd") return Svd.SingularValues<double>(wd);
        var gram = new double[s.InFeatures, s.InFeatures];
        long seen = 0;
        foreach (var batch in Mlp.Calibration)
        {
            using var session = TappedSession.Create(Mlp.Model, [s.Input]);
            var x = session.Run(batch)[s.Input].AsFloats();
            int rows = x.Length / s.InFeatures;
            seen += rows;
            for (int t = 0; t < rows; t++)
                for (int i = 0; i < s.InFeatures; i++)
                    for (int j = 0; j < s.InFeatures; j++) gram[i, j] += (double)x[t * s.InFeatures + i] * x[t * s.InFeatures + j];
        }
        var g = Matrix<double>.Create(s.InFeatures, s.InFeatures, (i, j) => gram[i, j]);
        return name == "asvd"
            ? LowRank.ActivationAwareSpectrum<double>(wd, [.. Enumerable.Range(0, s.InFeatures).Select(j => Math.Sqrt(gram[j, j] / seen))], ActivationAwareSvd.DefaultAlpha)
            : LowRank.WhitenedSpectrum<double>(wd, g);
    }

    /// <summary>The global allocation's objective Σ_i ‖E_i‖²/‖M_i‖ = Σ_i e_i²·‖M_i‖ over the factorized sites (e_i the reported relative error), dense sites 0.</summary>
    private double Objective(string name, CompressionResult r, IReadOnlyList<LinearSite> sites) =>
        r.Report.Sites.Where(x => x.Skipped is null).Sum(x => x.ErrorEstimate!.Value * x.ErrorEstimate.Value
            * Math.Sqrt(Spectrum(name, sites.Single(s => s.Name == x.Site)).Sum(v => v * v)));

    [Theory]
    [MemberData(nameof(Methods))]
    public void GlobalAllocationKeepsTheDirectionsAboveOneThresholdMeetsTheBudgetAndSpendsTheRest(string name)
    {
        double[] keeps = [0.3, 0.5, 0.8];
        var results = Run(Method(name, new LowRankBaselineOptions { Align = 1, Allocation = RankAllocation.Global }), Mlp.Model, Mlp.Calibration, [.. keeps.Select(CompressionBudget.KeepParameters)]);
        var sites = ModelStructure.Analyze(Mlp.Model).LinearSites.Where(s => s.Name != "fc3").ToList();
        var spectra = sites.ToDictionary(s => s.Name, s => Spectrum(name, s));
        long total = Parameters(Mlp.Model), compressible = sites.Sum(s => s.Parameters);
        for (int b = 0; b < keeps.Length; b++)
        {
            var r = results[b];
            var details = Assert.IsType<LowRankBaselineDetails>(r.Report.Details);
            double lambda = details.Threshold!.Value;
            Assert.Null(details.Ratio);
            Assert.Null(details.Tolerance);
            Assert.Contains("global", details.Rule);
            long kept = compressible - (total - Parameters(r.Model));
            Assert.True(kept <= keeps[b] * compressible, $"{name} keep {keeps[b]}: {kept} of {compressible}");
            foreach (var s in sites)
            {
                var report = r.Report.Sites.Single(x => x.Site == s.Name);
                var sigma = spectra[s.Name];
                int max = LowRank.MaxSavingRank(s.OutFeatures, s.InFeatures);
                if (report.Skipped is null && report.NewSize < max)
                {
                    // The first direction left out gains at most λ per parameter: σ_c² / ‖M‖_F / (m + n).
                    double gain = sigma[report.NewSize] * sigma[report.NewSize] / Math.Sqrt(sigma.Sum(v => v * v)) / (s.OutFeatures + s.InFeatures);
                    Assert.True(gain <= lambda * (1 + 1e-6) + 1e-15, $"{s.Name}: direction {report.NewSize} gains {gain} > λ = {lambda}");
                    // What the breakpoints left is spent: one more rank would not fit.
                    Assert.True(kept + s.OutFeatures + s.InFeatures > keeps[b] * compressible, $"{s.Name} could keep one more rank at keep {keeps[b]}");
                }
                else if (report.Skipped is not null) Assert.Contains("stays dense", report.Skipped);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Methods))]
    public void GlobalAllocationsObjectiveIsAtMostUniformsAndWellBelowForWhitenedSvd(string name)
    {
        var global = new LowRankBaselineOptions { Align = 1, Allocation = RankAllocation.Global };
        var uniform = global with { Allocation = RankAllocation.Uniform };
        CompressionBudget[] budgets = [CompressionBudget.KeepParameters(0.4), CompressionBudget.KeepParameters(0.7)];
        var sites = ModelStructure.Analyze(Mlp.Model).LinearSites;
        var g = Run(Method(name, global), Mlp.Model, Mlp.Calibration, budgets);
        var u = Run(Method(name, uniform), Mlp.Model, Mlp.Calibration, budgets);
        for (int b = 0; b < budgets.Length; b++)
        {
            // The threshold solves the continuous relaxation; whole ranks can leave it a little behind uniform's, never by
            // more than 1 % here. Whitened SVD's spectra differ most between layers, and there it gains most.
            double allocated = Objective(name, g[b], sites), even = Objective(name, u[b], sites);
            Assert.True(allocated <= 1.01 * even, $"{name} {budgets[b]}: global {allocated} > uniform {even}");
            if (name == "whitened-svd") Assert.True(allocated < 0.9 * even, $"{name} {budgets[b]}: global {allocated} not below uniform {even}");
            Assert.True(g[b].Report.Compressible!.ParametersAfter <= budgets[b].Value * g[b].Report.Compressible!.ParametersBefore);
        }
    }

    [Fact]
    public void AlignedRanksAreMultiplesOfTheAlignmentAndTheSmallestSuchWithinTheTolerance()
    {
        // Aligned to 4 (the MLP's layers are too small for 16): ranks of 4, 8, … where the saving range is at least 4·4.
        const int align = 4;
        const double epsilon = 0.3;
        var r = Assert.Single(Run(new PlainSvd(WithOutputLayer with { Align = align }), Mlp.Model, Mlp.Calibration, CompressionBudget.Tolerance(epsilon)));
        Assert.Equal(align, Assert.IsType<LowRankBaselineDetails>(r.Report.Details).Align);
        int checkedSites = 0;
        foreach (var s in ModelStructure.Analyze(Mlp.Model).LinearSites)
        {
            var w = SiteWeights.Weight(Mlp.Model, s);
            var sigma = Svd.SingularValues<double>(Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]));
            double Error(int c) => Math.Sqrt(sigma.Skip(c).Sum(x => x * x) / sigma.Sum(x => x * x));
            int max = LowRank.MaxSavingRank(s.OutFeatures, s.InFeatures);
            int needed = Enumerable.Range(1, sigma.Length).First(c => Error(c) <= epsilon);
            int aligned = (needed + align - 1) / align * align;
            var report = r.Report.Sites.Single(x => x.Site == s.Name);
            if (max < 4 * align) Assert.Equal(needed <= max ? needed : report.OldSize, report.NewSize);
            else if (aligned <= max)
            {
                Assert.Equal(aligned, report.NewSize);
                Assert.Equal(0, report.NewSize % align);
                checkedSites++;
            }
            else Assert.NotNull(report.Skipped);
        }
        Assert.True(checkedSites > 0, "no layer large enough to align");
    }

    [Fact]
    public void AnUnreachableBudgetIsAnErrorThatSaysWhatIsReachable()
    {
        var e = Assert.Throws<ArgumentException>(() => Run(new PlainSvd(), Mlp.Model, Mlp.Calibration, CompressionBudget.KeepParameters(0.01)));
        Assert.Contains("out of reach", e.Message);
        Assert.Contains("rank 1", e.Message);
        e = Assert.Throws<ArgumentException>(() => Run(new PlainSvd(new LowRankBaselineOptions { Allocation = RankAllocation.Uniform }), Mlp.Model, Mlp.Calibration, CompressionBudget.KeepParameters(0.01)));
        Assert.Contains("rank 1 at every factorizable layer keeps", e.Message);
        Assert.Throws<ArgumentException>(() => Run(new PlainSvd(), Mlp.Model, Mlp.Calibration, CompressionBudget.KeepMacs(0.5)));
    }

    [Fact]
    public void ToleranceGivesEachLayerTheSmallestRankWithinItsTruncationError()
    {
        const double epsilon = 0.2;
        var r = Assert.Single(Run(new PlainSvd(WithOutputLayer with { Align = 1 }), Mlp.Model, Mlp.Calibration, CompressionBudget.Tolerance(epsilon)));
        foreach (var s in ModelStructure.Analyze(Mlp.Model).LinearSites)
        {
            var w = SiteWeights.Weight(Mlp.Model, s);
            var sigma = Svd.SingularValues<double>(Matrix<double>.Create(w.Rows, w.Cols, (i, j) => w[i, j]));
            double Error(int c) => Math.Sqrt(sigma.Skip(c).Sum(x => x * x) / sigma.Sum(x => x * x));
            int needed = Enumerable.Range(1, sigma.Length).First(c => Error(c) <= epsilon);
            var report = r.Report.Sites.Single(x => x.Site == s.Name);
            if (needed <= LowRank.MaxSavingRank(s.OutFeatures, s.InFeatures))
            {
                Assert.Equal(needed, report.NewSize);
                Assert.Equal(Error(needed), report.ErrorEstimate!.Value, 1e-9);
                Assert.True(Assert.IsType<LowRankSiteDetails>(report.Details).WeightError <= epsilon + 1e-6);
            }
            else
            {
                Assert.NotNull(report.Skipped);
                Assert.Equal(report.OldSize, report.NewSize);
            }
        }
    }

    /// <summary>x [Rows, In] → x·B + b, B random; calibration inputs strongly correlated (x = z·A, A with decaying column scales).</summary>
    private static (OnnxModel Model, BatchSet Calibration) CorrelatedLinear()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        g.Initializer(OnnxTensors.FromMatrix("B", RandomMatrix.Gaussian<float>(In, Out, seed: 21), OnnxDataType.Float));
        g.Initializer(OnnxTensors.FromArray<float>("b", RandomMatrix.Gaussian<float>(1, Out, seed: 22).AsSpan(), [Out], OnnxDataType.Float));
        var y = g.Shape(g.Node("MatMul", "fc", [x, "B"]), Rows, Out);
        g.Output(g.Shape(g.Node("Add", "fc_bias", [y, "b"]), Rows, Out));
        var mixing = RandomMatrix.Gaussian<float>(In, In, seed: 23);
        for (int j = 0; j < In; j++) for (int i = 0; i < In; i++) mixing[i, j] *= MathF.Pow(0.7f, i);
        var batches = Enumerable.Range(0, Batches).Select(b =>
            new InputBatch("x", HostTensor.Float(Blas.Multiply<float>(RandomMatrix.Gaussian<float>(Rows, In, seed: 30 + b), mixing).AsSpan().ToArray(), Rows, In), "correlated")).ToList();
        return (g.Build(), new BatchSet(batches, description: "correlated"));
    }

    /// <summary>Σ‖ŷ − y‖² / Σ‖y − b‖² over the calibration batches, from ORT (for y = W x + b this is the layer's relative output error, squared).</summary>
    private static double OutputError(OnnxModel original, OnnxModel compressed, BatchSet batches, float[] bias)
    {
        using var a = TappedSession.Create(original, []);
        using var c = TappedSession.Create(compressed, []);
        double num = 0, den = 0;
        foreach (var batch in batches)
        {
            var y = a.Run(batch)[a.OutputNames[0]].AsFloats();
            var z = c.Run(batch)[c.OutputNames[0]].AsFloats();
            for (int i = 0; i < y.Length; i++)
            {
                num += (double)(z[i] - y[i]) * (z[i] - y[i]);
                double v = y[i] - bias[i % bias.Length];
                den += v * v;
            }
        }
        return Math.Sqrt(num / den);
    }

    [Fact]
    public void WhitenedSvdHasTheSmallestCalibrationOutputErrorAtEqualRankAndReportsIt()
    {
        var (model, calibration) = CorrelatedLinear();
        var bias = model.Graph.GetInitializer("b").ToArray<float>();
        var budget = CompressionBudget.KeepParameters(0.5);
        var plain = Assert.Single(Run(new PlainSvd(WithOutputLayer), model, calibration, budget));
        var asvd = Assert.Single(Run(new ActivationAwareSvd(options: WithOutputLayer), model, calibration, budget));
        var whitened = Assert.Single(Run(new WhitenedSvd(WithOutputLayer), model, calibration, budget));
        int rank = plain.Report.Sites[0].NewSize;
        Assert.Equal(rank, whitened.Report.Sites[0].NewSize);
        Assert.Equal(rank, asvd.Report.Sites[0].NewSize);

        double ePlain = OutputError(model, plain.Model, calibration, bias);
        double eAsvd = OutputError(model, asvd.Model, calibration, bias);
        double eWhitened = OutputError(model, whitened.Model, calibration, bias);
        Assert.True(eWhitened <= ePlain, $"whitened {eWhitened} > plain {ePlain}");
        Assert.True(eWhitened <= eAsvd, $"whitened {eWhitened} > asvd {eAsvd}");
        Assert.True(eWhitened < 0.8 * ePlain, $"whitening should matter on correlated inputs: {eWhitened} vs {ePlain}");
        // The reported output errors are the ones measured in ORT; for whitened SVD it is also the truncation error.
        Assert.Equal(ePlain, plain.Report.Sites[0].MeasuredError!.Value, 1e-4);
        Assert.Equal(eWhitened, whitened.Report.Sites[0].MeasuredError!.Value, 1e-4);
        Assert.Equal(eWhitened, whitened.Report.Sites[0].ErrorEstimate!.Value, 1e-4);
        Assert.Equal("whitened-cholesky", Assert.IsType<LowRankSiteDetails>(whitened.Report.Sites[0].Details).Decomposition);
    }

    [Fact]
    public void AsvdWithAlphaZeroIsPlainSvd()
    {
        var (model, calibration) = CorrelatedLinear();
        var budget = CompressionBudget.KeepParameters(0.6);
        var plain = Assert.Single(Run(new PlainSvd(WithOutputLayer), model, calibration, budget));
        var asvd = Assert.Single(Run(new ActivationAwareSvd(alpha: 0, WithOutputLayer), model, calibration, budget));
        var bias = model.Graph.GetInitializer("b").ToArray<float>();
        Assert.Equal(OutputError(model, plain.Model, calibration, bias), OutputError(model, asvd.Model, calibration, bias), 1e-6);
        Assert.Equal(0, Assert.IsType<LowRankBaselineDetails>(asvd.Report.Details).Alpha);
    }

    [Fact]
    public void ConvolutionsAreFactorizedToAnRChannelConvAndA1x1ConvAndWhiteningUsesThePatches()
    {
        // x [4, 3, 10, 10] smooth images (box-blurred noise: neighbouring patch entries correlate) → Conv 3 → 8, 3 × 3, pad 1.
        var g = new GraphBuilder();
        var x = g.Input("x", 4, 3, 10, 10);
        g.Output(g.Conv("conv", x, 3, 8, 3, [4, 8, 10, 10], pad: 1));
        var model = g.Build();
        model.Graph.ReplaceInitializer(OnnxTensors.FromMatrix("conv.weight", RandomMatrix.Gaussian<float>(8, 27, seed: 40), OnnxDataType.Float, [8, 3, 3, 3]));
        var noise = RandomMatrix.Gaussian<float>(1, 4 * 3 * 12 * 12, seed: 41).AsSpan();
        var images = new float[4 * 3 * 10 * 10];
        for (int p = 0; p < 12; p++)
            for (int i = 0; i < 10; i++)
                for (int j = 0; j < 10; j++)
                {
                    float s = 0;
                    for (int di = 0; di < 3; di++) for (int dj = 0; dj < 3; dj++) s += noise[(p * 12 + i + di) * 12 + j + dj];
                    images[(p * 10 + i) * 10 + j] = s / 9;
                }
        var calibration = new BatchSet([new InputBatch("x", HostTensor.Float(images, 4, 3, 10, 10), "smooth")], description: "smooth");
        var bias = model.Graph.GetInitializer("conv.bias").ToArray<float>();

        var budget = CompressionBudget.KeepParameters(0.5);
        var plain = Assert.Single(Run(new PlainSvd(WithOutputLayer), model, calibration, budget));
        var whitened = Assert.Single(Run(new WhitenedSvd(WithOutputLayer), model, calibration, budget));
        foreach (var r in new[] { plain, whitened })
        {
            Assert.Equal(2, r.Model.Graph.Nodes.Count(n => n.OpType == "Conv"));
            Assert.Equal("conv", Assert.IsType<LowRankSiteDetails>(r.Report.Sites[0].Details).Layer);
            Assert.True(Parameters(r.Model) <= 0.5 * Parameters(model));
        }
        // Per-channel bias: ŷ − y over the NCHW output, bias indexed by channel.
        double Error(OnnxModel compressed)
        {
            using var a = TappedSession.Create(model, []);
            using var c = TappedSession.Create(compressed, []);
            var y = a.Run(calibration[0])[a.OutputNames[0]].AsFloats();
            var z = c.Run(calibration[0])[c.OutputNames[0]].AsFloats();
            double num = 0, den = 0;
            for (int i = 0; i < y.Length; i++)
            {
                num += (double)(z[i] - y[i]) * (z[i] - y[i]);
                double v = y[i] - bias[i / 100 % 8];
                den += v * v;
            }
            return Math.Sqrt(num / den);
        }
        double ePlain = Error(plain.Model), eWhitened = Error(whitened.Model);
        Assert.True(eWhitened <= ePlain, $"whitened {eWhitened} > plain {ePlain}");
        Assert.Equal(eWhitened, whitened.Report.Sites[0].MeasuredError!.Value, 1e-4);
        Assert.Equal(ePlain, plain.Report.Sites[0].MeasuredError!.Value, 1e-4);
    }

    [Fact]
    public void TiedWeightsAreLeftAloneWithTheReason()
    {
        // Two MatMuls read the same weight: factorizing either would add parameters.
        var g = new GraphBuilder();
        var x = g.Input("x", Rows, In);
        var w = g.Weight("shared", In, In);
        var h = g.Shape(g.Node("MatMul", "first", [x, w]), Rows, In);
        g.Output(g.Shape(g.Node("MatMul", "second", [h, w]), Rows, In));
        var model = g.Build();
        var calibration = new BatchSet([new InputBatch("x", RandomModelsInput(), "random")]);
        var r = Assert.Single(Run(new PlainSvd(), model, calibration, CompressionBudget.Tolerance(0.5)));
        Assert.Equal(2, r.Report.Sites.Count);
        Assert.All(r.Report.Sites, s => Assert.Contains("tied", s.Skipped));
        Assert.Contains(r.Report.Warnings, w => w.Contains("no layer"));
        Assert.Equal(Parameters(model), Parameters(r.Model));
    }

    private static HostTensor RandomModelsInput() => HostTensor.Float(RandomMatrix.Gaussian<float>(Rows, In, seed: 50).AsSpan().ToArray(), Rows, In);
}
